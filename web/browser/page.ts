// Chromium (headless, .venv/bin/medvault-chromium) on the demo's portal, with the test wallet
// injected; every request the page makes recorded, screenshots, and axe-core's verdict.
//
//   const browser = useBrowser();                       // beforeAll launches, afterAll closes
//   const portal = await openPortal(browser(), demo(), { wallet: { account: "alice" } });
//   portal.page, portal.wallet, portal.requests, portal.offOrigin(), portal.leaks([secret])
//   await shoot(portal.page, "connected");               // screenshots/connected-desktop.png, -390.png
//   expect(await axe(portal.page)).toEqual([]);          // serious and critical violations
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { type DemoStack, ROOT, WEB } from "./stack";
import { TestWallet, type WalletOptions } from "./wallet";

export const SCREENSHOTS = path.join(WEB, "browser", "screenshots");
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };

/** MEDVAULT_CHROMIUM, else the link tools/install makes. */
export function chromiumPath(): string {
  const found = process.env.MEDVAULT_CHROMIUM ?? path.join(ROOT, ".venv", "bin", "medvault-chromium");
  if (!existsSync(found)) throw new Error(`no Chromium at ${found}: run \`make install\` (it links one there)`);
  return found;
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // --no-sandbox: the test machines run as root, where Chromium's sandbox cannot start.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
  });
}

/** One Chromium for the test file that calls this. */
export function useBrowser(): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launch();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  }, 30_000);
  return () => {
    if (!browser) throw new Error("the browser is not launched (useBrowser() must be called at the top of the test file)");
    return browser;
  };
}

export interface RecordedRequest {
  url: string;
  method: string;
  resourceType: string;
  /** The body as sent (null for none, or for one Chromium does not report, such as a stream). */
  body: Buffer | null;
}

export interface Portal {
  page: Page;
  context: BrowserContext;
  /** Undefined when opened with `wallet: false` (a browser with no wallet). */
  wallet: TestWallet | undefined;
  /** The portal's origin, "http://127.0.0.1:PORT". */
  origin: string;
  /** Every request of the context's pages and workers, in order. */
  requests: RecordedRequest[];
  /** Console errors (a CSP violation is one) and uncaught exceptions of the page. */
  errors: string[];
  /** The requests that went anywhere but the portal's origin (data: and the origin's blob: allowed). */
  offOrigin(): RecordedRequest[];
  /** The requests whose URL or body holds one of `secrets` (a string as UTF-8; bytes raw, hex, base64 or base64url). */
  leaks(secrets: (string | Uint8Array)[]): { secret: string; request: RecordedRequest }[];
  close(): Promise<void>;
}

export interface OpenOptions {
  /** The wallet: options for a new TestWallet (default alice on the demo's chain), one made already, or false for none. */
  wallet?: WalletOptions | TestWallet | false;
  /** Path and hash opened on the portal (default "/"). */
  path?: string;
  viewport?: { width: number; height: number };
}

/** A new browser context (fresh storage, no cache) on the portal, the wallet injected before any script. */
export async function openPortal(browser: Browser, stack: DemoStack, options: OpenOptions = {}): Promise<Portal> {
  const context = await browser.newContext({ viewport: options.viewport ?? DESKTOP, locale: "en-GB", timezoneId: "UTC" });
  const wallet =
    options.wallet === false
      ? undefined
      : options.wallet instanceof TestWallet
        ? options.wallet
        : await TestWallet.create(stack, options.wallet ?? {});
  await wallet?.install(context);
  const requests: RecordedRequest[] = [];
  const errors: string[] = [];
  context.on("request", (request) => {
    requests.push({ url: request.url(), method: request.method(), resourceType: request.resourceType(), body: request.postDataBuffer() });
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(`uncaught: ${error.message}`));
  const origin = new URL(stack.info.portal).origin;
  await page.goto(new URL(options.path ?? "/", stack.info.portal).toString());
  return {
    page,
    context,
    wallet,
    origin,
    requests,
    errors,
    offOrigin: () =>
      requests.filter((r) => {
        if (r.url.startsWith("data:")) return false;
        if (r.url.startsWith("blob:")) return !r.url.startsWith(`blob:${origin}/`);
        return new URL(r.url).origin !== origin;
      }),
    leaks: (secrets) => {
      const found: { secret: string; request: RecordedRequest }[] = [];
      for (const secret of secrets) {
        const forms = forms_(secret);
        const label = typeof secret === "string" ? secret : `0x${Buffer.from(secret).toString("hex")}`;
        for (const request of requests) {
          const haystacks = [Buffer.from(request.url), ...(request.body ? [request.body] : [])];
          const decoded = haystacks.map((h) => Buffer.from(safeDecode(h.toString("latin1")), "latin1"));
          if ([...haystacks, ...decoded].some((h) => forms.some((f) => f.length > 0 && h.includes(f)))) found.push({ secret: label, request });
        }
      }
      return found;
    },
    close: () => context.close(),
  };
}

/** The byte strings a secret may travel as. */
function forms_(secret: string | Uint8Array): Buffer[] {
  if (typeof secret === "string") {
    const text = Buffer.from(secret, "utf8");
    return [text, Buffer.from(text.toString("base64")), Buffer.from(text.toString("hex"))];
  }
  const raw = Buffer.from(secret);
  const hex = raw.toString("hex");
  return [raw, Buffer.from(hex), Buffer.from(hex.toUpperCase()), Buffer.from(raw.toString("base64")), Buffer.from(raw.toString("base64url"))];
}

/** A URL- or form-encoded text decoded, where it is one (else itself). */
function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

/** Saves `name`-desktop.png (1280x900) and `name`-390.png (390x844, full page each); the viewport is restored. */
export async function shoot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const before = page.viewportSize();
  try {
    for (const [suffix, size] of [["desktop", DESKTOP], ["390", PHONE]] as const) {
      await page.setViewportSize(size);
      await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
      await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${suffix}.png`), fullPage: true, animations: "disabled" });
    }
  } finally {
    if (before) await page.setViewportSize(before);
  }
}

export interface AxeViolation {
  id: string;
  impact: string;
  help: string;
  helpUrl: string;
  /** CSS selectors of the offending nodes, and axe's summary of each. */
  nodes: { target: string; summary: string }[];
}

let axeSource: Promise<string> | undefined;

/**
 * axe-core run on the page as it is now: the violations of impact serious or critical.
 * axe's source goes in through the DevTools protocol (page.evaluate), not a <script> tag: the
 * portal's CSP (script-src 'self') refuses inline scripts, and the tests keep that CSP on.
 */
export async function axe(page: Page, { include = ["serious", "critical"] }: { include?: string[] } = {}): Promise<AxeViolation[]> {
  axeSource ??= readFile(path.join(WEB, "node_modules", "axe-core", "axe.min.js"), "utf8");
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe !== "undefined");
  if (!loaded) await page.evaluate(`${await axeSource};\nundefined`);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: RawViolation[] }> } }).axe;
    type RawViolation = { id: string; impact: string | null; help: string; helpUrl: string; nodes: { target: unknown[]; failureSummary?: string }[] };
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? "",
      help: v.help,
      helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target.map(String).join(" "), summary: n.failureSummary ?? "" })),
    }));
  });
  return violations.filter((v) => include.includes(v.impact));
}
