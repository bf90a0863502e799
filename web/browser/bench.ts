// Figures, not a test (nothing here fails on a number): the portal's first load in headless
// Chromium on loopback, and what its bundle weighs gzipped. Run:
//
//   cd web && MEDVAULT_BROWSER_BENCH=1 npx vitest run --config vitest.browser.config.ts
//
// First load: a fresh browser context each time (no HTTP cache, no storage), from navigation
// start to the wallet's "Connect" button being in the page and visible; median of 5 after one
// unmeasured warm-up (the server's first read of the files).
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { test } from "vitest";
import { DESKTOP, useBrowser } from "./page";
import { useDemo, WEB } from "./stack";
import { ui, visible } from "./ui";
import { TestWallet } from "./wallet";

const RUNS = 5;
const demo = useDemo();
const browser = useBrowser();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const kB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;

test("bundle size, gzipped", async () => {
  const dist = path.join(WEB, "dist");
  const html = await readFile(path.join(dist, "index.html"), "utf8");
  const initial = new Set([...html.matchAll(/(?:src|href)="\/?(assets\/[^"]+)"/g)].map((m) => m[1]!));
  const rows: { file: string; raw: number; gzip: number; initial: boolean }[] = [];
  for (const name of (await readdir(path.join(dist, "assets"))).sort()) {
    if (!/\.(js|css)$/.test(name)) continue;
    const data = await readFile(path.join(dist, "assets", name));
    rows.push({ file: `assets/${name}`, raw: data.length, gzip: gzipSync(data, { level: 9 }).length, initial: initial.has(`assets/${name}`) });
  }
  const sum = (xs: typeof rows, key: "raw" | "gzip") => xs.reduce((n, r) => n + r[key], 0);
  const first = rows.filter((r) => r.initial);
  console.log(
    [
      "web/dist JS + CSS (gzip -9):",
      ...rows.map((r) => `  ${r.file.padEnd(40)} ${kB(r.raw).padStart(10)} raw ${kB(r.gzip).padStart(10)} gzipped${r.initial ? "  (index.html loads it)" : ""}`),
      `  all       ${kB(sum(rows, "raw")).padStart(10)} raw ${kB(sum(rows, "gzip")).padStart(10)} gzipped`,
      `  initial   ${kB(sum(first, "raw")).padStart(10)} raw ${kB(sum(first, "gzip")).padStart(10)} gzipped`,
    ].join("\n"),
  );
});

test("first load on loopback: navigation start to the Connect button visible", async () => {
  const times: number[] = [];
  const wallet = await TestWallet.create(demo(), { account: "alice" });
  for (let run = 0; run <= RUNS; run++) {
    const context = await browser().newContext({ viewport: DESKTOP });
    try {
      await wallet.install(context);
      await context.addInitScript(() => {
        const w = window as unknown as { connectVisibleAt?: number };
        const seen = () => {
          if (w.connectVisibleAt !== undefined) return;
          const button = [...document.querySelectorAll("button")].find((b) => /^Connect /.test(b.textContent ?? ""));
          if (button?.checkVisibility()) w.connectVisibleAt = performance.now(); // since navigation start
        };
        new MutationObserver(seen).observe(document, { childList: true, subtree: true });
      });
      const page = await context.newPage();
      await page.goto(demo().info.portal);
      await visible(ui.connect(page));
      const at = await page.evaluate(() => (window as unknown as { connectVisibleAt?: number }).connectVisibleAt ?? performance.now());
      if (run > 0) times.push(at);
    } finally {
      await context.close();
    }
  }
  console.log(
    `first load (fresh context, loopback, headless Chromium): median ${median(times).toFixed(0)} ms ` +
      `of ${RUNS} (${times.map((t) => t.toFixed(0)).join(", ")} ms)`,
  );
});
