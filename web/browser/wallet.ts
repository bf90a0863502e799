// A browser wallet for the tests that behaves as MetaMask does, its keys in Node: the page gets
// `window.ethereum` and an EIP-6963 announcement ("Test Wallet"); every request is forwarded
// through a Playwright binding to this process, where viem accounts answer it.
//
//   const wallet = await TestWallet.create(demo(), { account: "alice" });   // or { chainId: 1 } to start on another chain
//   await wallet.install(context);      // before the page is opened (page.ts's openPortal does it)
//   wallet.reject = true;                // the next signature or transaction: 4001, "User rejected the request."
//   wallet.calls                         // every request the page made, in order
//   await wallet.use("bob");             // another account: accountsChanged, as MetaMask does
import type { BrowserContext, Page } from "playwright-core";
import {
  type Address,
  type Chain,
  createWalletClient,
  defineChain,
  getAddress,
  type Hex,
  http,
  type TypedDataDomain,
  toHex,
} from "viem";
import { type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import type { DemoName, DemoStack } from "./stack";

/** An EIP-1193 error as the wallet returns it to the page. */
export interface ProviderError {
  code: number;
  message: string;
}

export interface WalletCall {
  method: string;
  params: unknown;
  result?: unknown;
  error?: ProviderError;
}

export interface WalletOptions {
  /** The demo account connected (default alice). */
  account?: DemoName;
  /** The accounts the wallet holds (default: the demo's people, not admin or relayer). */
  accounts?: DemoName[];
  /** The chain the wallet is on at first (default the demo's): another one tests the switch. */
  chainId?: number;
  /**
   * The chains the wallet knows besides the one it starts on (default: the demo's); switching to
   * any other gives 4902, as MetaMask does for a network not added. [1] with chainId 1: a wallet
   * that has never heard of the demo's chain.
   */
  knownChains?: number[];
  /** EIP-6963 info.name (default "Test Wallet"). */
  name?: string;
}

export const USER_REJECTED: ProviderError = { code: 4001, message: "User rejected the request." };
const UNAUTHORIZED: ProviderError = {
  code: 4100,
  message: "The requested account and/or method has not been authorized by the user.",
};

// What the wallet forwards to its node; anything else it does not do (-32601), as MetaMask.
const FORWARDED = /^(eth_|net_|web3_)/;
const NOT_FORWARDED = new Set(["eth_sign", "eth_signTransaction", "eth_sendRawTransaction", "eth_accounts", "eth_coinbase"]);
const SIGNING = new Set(["eth_signTypedData_v4", "eth_sendTransaction", "personal_sign"]);

export class TestWallet {
  /** When true, the next signing or sending request fails with 4001 (and this turns false again). */
  reject = false;
  readonly calls: WalletCall[] = [];
  readonly name: string;
  chainId: number;
  private connected = false;
  private current: DemoName;
  private readonly known: Set<number>;
  private readonly pages = new Set<Page>();
  private sending: Promise<unknown> = Promise.resolve();
  private readonly chain: Chain;

  private constructor(
    private readonly stack: DemoStack,
    private readonly keys: Map<DemoName, PrivateKeyAccount | undefined>,
    options: WalletOptions,
  ) {
    this.current = options.account ?? "alice";
    if (!keys.has(this.current)) throw new Error(`the wallet holds no key of ${this.current}`);
    this.name = options.name ?? "Test Wallet";
    const demoChain = stack.info.chainId;
    this.chainId = options.chainId ?? demoChain;
    this.known = new Set([this.chainId, ...(options.knownChains ?? [demoChain])]);
    this.chain = defineChain({
      id: demoChain,
      name: "medvault demo",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [stack.info.rpcUrl] } },
    });
  }

  /**
   * A wallet holding the demo accounts' keys: the connected one's decrypted from its keystore
   * now, the others when `use` first picks them (scrypt 2^18 in JS: a second or two each, once per stack).
   */
  static async create(stack: DemoStack, options: WalletOptions = {}): Promise<TestWallet> {
    const names = options.accounts ?? (["alice", "bob", "provider", "doctor", "researcher"] as DemoName[]);
    const first = options.account ?? "alice";
    if (!names.includes(first)) names.push(first);
    const keys = new Map<DemoName, PrivateKeyAccount | undefined>(names.map((n) => [n, undefined]));
    keys.set(first, privateKeyToAccount(await stack.privateKey(first)));
    return new TestWallet(stack, keys, options);
  }

  /** The connected account's address. */
  get address(): Address {
    return this.keys.get(this.current)!.address;
  }

  get account(): DemoName {
    return this.current;
  }

  /** The calls of one method, in order. */
  called(method: string): WalletCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /**
   * Injects the provider into every page of `context` opened from now on: addInitScript (so it
   * is there before the page's own scripts, as an extension's content script is) and a binding.
   */
  async install(context: BrowserContext): Promise<void> {
    await context.exposeBinding("__medvaultTestWallet", async (source, method: string, params: unknown) => {
      this.pages.add(source.page);
      source.page.once("close", () => this.pages.delete(source.page));
      return this.handle(method, params);
    });
    await context.addInitScript(injected, { name: this.name, uuid: crypto.randomUUID() });
  }

  /** Switches the wallet to another of its accounts; a connected page hears accountsChanged. */
  async use(name: DemoName): Promise<void> {
    if (!this.keys.has(name)) throw new Error(`the wallet holds no key of ${name}`);
    if (!this.keys.get(name)) this.keys.set(name, privateKeyToAccount(await this.stack.privateKey(name)));
    this.current = name;
    if (this.connected) await this.emit("accountsChanged", [this.address]);
  }

  /** Switches the chain from the wallet's side (the user picking another network); chainChanged. */
  async switchChain(chainId: number): Promise<void> {
    this.known.add(chainId);
    this.chainId = chainId;
    await this.emit("chainChanged", toHex(chainId));
  }

  private async emit(event: string, data: unknown): Promise<void> {
    for (const page of this.pages) {
      await page.evaluate(([e, d]) => (window as unknown as { __medvaultTestWalletEmit(e: string, d: unknown): void }).__medvaultTestWalletEmit(e, d), [event, data] as const).catch(() => undefined);
    }
  }

  /** One EIP-1193 request: {result} or {error: {code, message}} (a binding cannot throw a code). */
  private async handle(method: string, params: unknown): Promise<{ result?: unknown; error?: ProviderError }> {
    const call: WalletCall = { method, params };
    this.calls.push(call);
    try {
      call.result = await this.answer(method, Array.isArray(params) ? params : params === undefined ? [] : [params]);
      return { result: call.result ?? null };
    } catch (error) {
      const e = error as Partial<ProviderError> & { shortMessage?: string };
      call.error = { code: typeof e.code === "number" ? e.code : -32603, message: e.shortMessage ?? e.message ?? String(error) };
      return { error: call.error };
    }
  }

  private async answer(method: string, params: unknown[]): Promise<unknown> {
    if (SIGNING.has(method) && this.reject) {
      this.reject = false;
      throw USER_REJECTED;
    }
    switch (method) {
      case "eth_requestAccounts":
        this.connected = true;
        return [this.address];
      case "eth_accounts":
        return this.connected ? [this.address] : [];
      case "eth_chainId":
        return toHex(this.chainId);
      case "net_version":
        return String(this.chainId);
      case "wallet_switchEthereumChain": {
        const wanted = Number((params[0] as { chainId?: string } | undefined)?.chainId);
        if (!this.known.has(wanted)) {
          throw { code: 4902, message: `Unrecognized chain ID "${toHex(wanted)}". Try adding the chain using wallet_addEthereumChain first.` };
        }
        if (wanted !== this.chainId) {
          this.chainId = wanted;
          await this.emit("chainChanged", toHex(wanted));
        }
        return null;
      }
      case "wallet_addEthereumChain": {
        const wanted = Number((params[0] as { chainId?: string } | undefined)?.chainId);
        this.known.add(wanted);
        if (wanted !== this.chainId) {
          this.chainId = wanted;
          await this.emit("chainChanged", toHex(wanted));
        }
        return null;
      }
      case "eth_signTypedData_v4":
        return this.signTypedData(params);
      case "personal_sign": {
        const [message, from] = params as [Hex, string];
        return this.signer(from).signMessage({ message: { raw: message } });
      }
      case "eth_sendTransaction":
        return this.sendTransaction(params[0] as Record<string, string | undefined>);
      default:
        if (!FORWARDED.test(method) || NOT_FORWARDED.has(method)) {
          throw { code: -32601, message: `The method "${method}" does not exist / is not available.` };
        }
        return this.forward(method, params);
    }
  }

  /** The connected account, if `from` names it; else 4100, as MetaMask for an account not connected. */
  private signer(from: unknown): PrivateKeyAccount {
    if (!this.connected || typeof from !== "string" || from.toLowerCase() !== this.address.toLowerCase()) throw UNAUTHORIZED;
    return this.keys.get(this.current)!;
  }

  private async signTypedData(params: unknown[]): Promise<Hex> {
    const [from, data] = params as [string, unknown];
    const signer = this.signer(from);
    const typed = (typeof data === "string" ? JSON.parse(data) : data) as {
      types: Record<string, { name: string; type: string }[]>;
      primaryType: string;
      domain: Record<string, unknown>;
      message: Record<string, unknown>;
    };
    // MetaMask refuses typed data for a chain other than the one it is on.
    const domainChain = typed.domain?.chainId;
    if (domainChain !== undefined && Number(domainChain) !== this.chainId) {
      throw { code: -32603, message: `Provided chainId "${Number(domainChain)}" must match the active chainId "${this.chainId}"` };
    }
    const { EIP712Domain: _, ...types } = typed.types;
    const domain = normalize(typed.types, "EIP712Domain", typed.domain ?? {}) as TypedDataDomain;
    const message = normalize(typed.types, typed.primaryType, typed.message) as Record<string, unknown>;
    return signer.signTypedData({ domain, types, primaryType: typed.primaryType, message } as never);
  }

  private sendTransaction(tx: Record<string, string | undefined>): Promise<Hex> {
    const account = this.signer(tx.from);
    if (this.chainId !== this.chain.id) {
      return Promise.reject({ code: -32603, message: `the test wallet has no node for chain ${this.chainId}` });
    }
    const client = createWalletClient({ account, chain: this.chain, transport: http(this.stack.info.rpcUrl) });
    const send = () =>
      client.sendTransaction({
        to: tx.to ? getAddress(tx.to) : null,
        data: (tx.data ?? tx.input) as Hex | undefined,
        value: tx.value ? BigInt(tx.value) : undefined,
        gas: tx.gas ? BigInt(tx.gas) : undefined,
      } as never);
    // One at a time, as a person confirms them: each gets the next nonce.
    const sent = this.sending.then(send, send);
    this.sending = sent.catch(() => undefined);
    return sent;
  }

  private async forward(method: string, params: unknown[]): Promise<unknown> {
    if (this.chainId !== this.chain.id) throw { code: -32603, message: `the test wallet has no node for chain ${this.chainId}` };
    const answer = await fetch(this.stack.info.rpcUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    const reply = (await answer.json()) as { result?: unknown; error?: ProviderError };
    if (reply.error) throw reply.error;
    return reply.result;
  }
}

/** Typed-data values as viem wants them: integers as bigint (MetaMask takes numbers and decimal or hex strings). */
function normalize(types: Record<string, { name: string; type: string }[]>, type: string, value: unknown): unknown {
  const array = type.match(/^(.*)\[\d*\]$/);
  if (array) return (value as unknown[]).map((v) => normalize(types, array[1]!, v));
  const fields = types[type] ?? (type === "EIP712Domain" ? DOMAIN_FIELDS : undefined);
  if (fields) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const field = fields.find((f) => f.name === k);
      out[k] = field ? normalize(types, field.type, v) : v;
    }
    return out;
  }
  if (/^u?int\d*$/.test(type) && (typeof value === "string" || typeof value === "number")) return BigInt(value);
  return value;
}

const DOMAIN_FIELDS = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
  { name: "salt", type: "bytes32" },
];

/**
 * Runs in the page before its scripts: window.ethereum and the EIP-6963 announcement, both
 * forwarding to the binding. Self-contained (it is serialized into the page).
 */
function injected({ name, uuid }: { name: string; uuid: string }): void {
  type Listener = (data: unknown) => void;
  const w = window as unknown as Record<string, unknown>;
  type Binding = (method: string, params: unknown) => Promise<{ result?: unknown; error?: { code: number; message: string } }>;
  const binding = (method: string, params: unknown) => (w.__medvaultTestWallet as Binding)(method, params);
  const listeners = new Map<string, Set<Listener>>();
  const provider = {
    isMetaMask: false,
    async request(args: { method: string; params?: unknown }) {
      if (!args || typeof args.method !== "string") throw Object.assign(new Error("Expected a single, non-array, object argument."), { code: -32600 });
      const reply = await binding(args.method, args.params);
      if (reply.error) {
        const error = new Error(reply.error.message) as Error & { code: number };
        error.code = reply.error.code;
        throw error;
      }
      return reply.result;
    },
    on(event: string, listener: Listener) {
      if (!listeners.has(event)) listeners.set(event, new Set());
      listeners.get(event)!.add(listener);
      return provider;
    },
    removeListener(event: string, listener: Listener) {
      listeners.get(event)?.delete(listener);
      return provider;
    },
  };
  w.__medvaultTestWalletEmit = (event: string, data: unknown) => {
    for (const listener of listeners.get(event) ?? []) listener(data);
  };
  Object.defineProperty(window, "ethereum", { value: provider, configurable: true });
  const icon = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'%3E%3Crect width='1' height='1'/%3E%3C/svg%3E";
  const detail = Object.freeze({ info: Object.freeze({ uuid, name, icon, rdns: "org.medvault.test-wallet" }), provider });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
}
