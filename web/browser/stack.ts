// The demo stack the browser tests run against: `medvault --json portal --demo --port 0` (a
// local anvil chain, Kubo, three keepers, a relayer and the portal, on free loopback ports),
// started once per test file and stopped after it; and the medvault CLI pointed at it.
//
//   const demo = useDemo();             // in a test file: beforeAll starts it, afterAll stops it
//   demo().info.portal                  // "http://127.0.0.1:36275/"
//   await demo().cli(["record", "list", "--patient", "alice"])   // parsed --json output
//   await demo().privateKey("alice")    // from <home>/keystores/alice.json
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Address, Hex } from "viem";
import { afterAll, beforeAll } from "vitest";
import { decryptKeystore } from "../src/formats/keystore";

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ROOT = path.resolve(WEB, "..");

/** The demo's people (see src/medvault/dev/portal_stack.py, CAST). */
export type DemoName = "admin" | "alice" | "bob" | "provider" | "doctor" | "researcher" | "relayer";

/** The one JSON line `medvault --json portal --demo` prints once everything answers. */
export interface DemoInfo {
  portal: string;
  rpcUrl: string;
  ipfsApi: string;
  chainId: number;
  home: string;
  passphrase: string;
  accounts: Record<DemoName, Address>;
  keepers: string[];
  relayer: string;
  aliceBackup: string;
}

/** The venv's medvault (MEDVAULT_BIN overrides), else the one on PATH. */
export function medvaultBin(): string {
  if (process.env.MEDVAULT_BIN) return process.env.MEDVAULT_BIN;
  const venv = path.join(ROOT, ".venv", "bin", "medvault");
  return existsSync(venv) ? venv : "medvault";
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
    /** The --json error document ({error, message, refusal?}), when the CLI printed one. */
    readonly json: unknown,
  ) {
    super(message);
  }
}

const run = promisify(execFile);

export class DemoStack {
  private readonly keys = new Map<string, Promise<Hex>>();
  private exited: Promise<void>;

  private constructor(
    readonly info: DemoInfo,
    private readonly child: ChildProcess,
    private readonly stderr: () => string,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  /** Starts the demo and waits until its portal answers (about 30-40 s on two cores). */
  static async start({ timeoutMs = 150_000 }: { timeoutMs?: number } = {}): Promise<DemoStack> {
    if (!existsSync(path.join(WEB, "dist", "index.html"))) {
      throw new Error("web/dist is not built: run `make install` (or `cd web && npx vite build`) first");
    }
    // Its own process group, so that what it leaves behind can be stopped with it, and only that.
    const child = spawn(medvaultBin(), ["--json", "portal", "--demo", "--port", "0"], {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-20_000);
    });
    // The runner exiting does not leave a chain running: SIGTERM, on which medvault stops its
    // chain and IPFS (in sessions of their own) and removes its home.
    const stopGroup = () => signalGroup(child, "SIGTERM");
    process.once("exit", stopGroup);
    child.once("exit", () => process.removeListener("exit", stopGroup));

    let info: DemoInfo;
    try {
      info = await firstLine(child, timeoutMs, () => stderr);
    } catch (error) {
      await new DemoStack({} as DemoInfo, child, () => stderr).stop(30_000);
      throw error;
    }
    const stack = new DemoStack(info, child, () => stderr);
    try {
      await stack.waitForPortal(Math.max(10_000, timeoutMs / 5));
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  }

  /** Whether the page is served: GET / answers 200. */
  private async waitForPortal(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < until) {
      try {
        const answer = await fetch(this.info.portal, { signal: AbortSignal.timeout(5_000) });
        if (answer.ok) return;
        last = `HTTP ${answer.status}`;
      } catch (error) {
        last = (error as Error).message;
      }
      await sleep(250);
    }
    throw new Error(`the portal at ${this.info.portal} did not answer (${last})`);
  }

  /** The account key of a demo account, from its keystore (scrypt 2^18: a second or two, once). */
  privateKey(name: DemoName | string): Promise<Hex> {
    let key = this.keys.get(name);
    if (!key) {
      key = (async () => {
        const file = path.join(this.info.home, "keystores", `${name}.json`);
        const { privateKey } = await decryptKeystore(await readFile(file, "utf8"), this.info.passphrase);
        return `0x${Buffer.from(privateKey).toString("hex")}` as Hex;
      })();
      this.keys.set(name, key);
    }
    return key;
  }

  /**
   * `medvault --json --home <demo home> --rpc-url .. --ipfs-api .. ARGS`, the passphrase from
   * MEDVAULT_PASSPHRASE (stdin closed: never a prompt); the parsed JSON it printed. A non-zero
   * exit throws a CliError carrying the CLI's JSON error document.
   */
  async cli<T = unknown>(args: string[], { env = {}, timeoutMs = 120_000 }: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<T> {
    const { home, rpcUrl, ipfsApi, passphrase } = this.info;
    const argv = ["--json", "--home", home, "--rpc-url", rpcUrl, "--ipfs-api", ipfsApi, ...args];
    let stdout: string;
    try {
      const child = run(medvaultBin(), argv, {
        cwd: ROOT,
        env: { ...process.env, MEDVAULT_PASSPHRASE: passphrase, ...env },
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
      });
      child.child.stdin?.end();
      stdout = (await child).stdout;
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string; message: string };
      const out = e.stdout ?? "";
      let json: unknown;
      try {
        json = JSON.parse(out);
      } catch {
        json = undefined;
      }
      const said = (json as { message?: string } | undefined)?.message ?? (e.stderr?.trim() || e.message);
      throw new CliError(`medvault ${args.join(" ")}: ${said}`, typeof e.code === "number" ? e.code : null, out, e.stderr ?? "", json);
    }
    try {
      return JSON.parse(stdout) as T;
    } catch {
      throw new CliError(`medvault ${args.join(" ")} printed no JSON: ${stdout.slice(0, 300)}`, 0, stdout, "", undefined);
    }
  }

  /** What the demo wrote on stderr (the last 20 kB), for a failing test's message. */
  log(): string {
    return this.stderr();
  }

  /**
   * SIGTERM to the demo (it stops its chain, IPFS, keepers and removes its home), then, after
   * its exit or `graceMs`, SIGKILL to whatever of its process group is left.
   */
  async stop(graceMs = 60_000): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    const exited = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    signalGroup(this.child, "SIGKILL");
    if (!exited) {
      await this.exited;
      console.warn(`medvault portal --demo did not stop in ${graceMs / 1000} s of SIGTERM: killed`);
    } else if (this.child.exitCode !== 0) {
      console.warn(`medvault portal --demo exited with ${this.child.exitCode ?? this.child.signalCode}:\n${this.stderr().slice(-2000)}`);
    }
  }
}

/** Sends `signal` to the process group `child` leads (its own, from detached: true), if any is left. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // no process of that group is left
  }
}

function firstLine(child: ChildProcess, timeoutMs: number, stderr: () => string): Promise<DemoInfo> {
  return new Promise((resolve, reject) => {
    let out = "";
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`medvault portal --demo ${why}\n--- its stderr ---\n${stderr()}`));
    };
    const timer = setTimeout(() => fail(`printed nothing in ${timeoutMs / 1000} s`), timeoutMs);
    const onData = (chunk: string) => {
      out += chunk;
      const end = out.indexOf("\n");
      if (end < 0) return;
      cleanup();
      try {
        resolve(JSON.parse(out.slice(0, end)) as DemoInfo);
      } catch {
        reject(new Error(`medvault portal --demo printed no JSON: ${out.slice(0, end)}`));
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`exited (${signal ?? code}) before it was ready`);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.removeListener("data", onData);
      child.removeListener("exit", onExit);
      child.stdout!.resume(); // whatever follows is read and dropped: the pipe never fills
    };
    child.stdout!.setEncoding("utf8").on("data", onData);
    child.once("exit", onExit);
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One demo for the test file that calls this: started in beforeAll, stopped in afterAll. The
 * getter throws until it is up.
 */
export function useDemo(): () => DemoStack {
  let stack: DemoStack | undefined;
  beforeAll(async () => {
    stack = await DemoStack.start();
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  }, 90_000);
  return () => {
    if (!stack) throw new Error("the demo stack is not started (useDemo() must be called at the top of the test file)");
    return stack;
  };
}
