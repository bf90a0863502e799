// The portal's entry: the deployment's configuration, a wallet, and what the chain says of
// the connected account. Everything goes to this page's own origin (its CSP allows no other).
import { createPublicClient, http, type Address, type EIP1193Provider } from "viem";
import "./style.css";

interface Config {
  chainId: number;
  keySuite: string;
  contracts: Record<string, { address: Address; abi: readonly unknown[] }>;
  devAccounts: { name: string; address: Address; role: string }[] | null;
}

const app = document.querySelector<HTMLElement>("#app")!;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, attrs: Record<string, string> = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // text only: nothing from the chain is parsed as HTML
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function main(): Promise<void> {
  const config = (await (await fetch("/config.json")).json()) as Config;
  const chain = createPublicClient({ transport: http(new URL("/rpc", location.href).toString()) });
  app.replaceChildren(el("h1", "medvault"), el("p", `Chain ${config.chainId}, key suite ${config.keySuite}`));
  const status = el("p", "", { role: "status" });
  const wallets = el("div");
  app.append(wallets, status);

  const show = async (address: Address, via: string) => {
    const participants = config.contracts["ParticipantRegistry"]!;
    const records = config.contracts["RecordRegistry"]!;
    const registered = await chain.readContract({ ...participants, functionName: "isRegistered", args: [address] });
    const [, count] = (await chain.readContract({ ...records, functionName: "logOf", args: [address] })) as [
      string,
      bigint,
    ];
    status.textContent = `${address} (${via}): ${registered ? "encryption key registered" : "no encryption key yet"}, ${count} records`;
  };

  // EIP-6963: every installed wallet announces itself; window.ethereum is the older way.
  const seen = new Set<string>();
  const offer = (name: string, provider: EIP1193Provider) => {
    if (seen.has(name)) return;
    seen.add(name);
    const button = el("button", `Connect ${name}`, { type: "button" });
    button.addEventListener("click", async () => {
      try {
        const [address] = (await provider.request({ method: "eth_requestAccounts" })) as Address[];
        if (address) await show(address, name);
      } catch (error) {
        status.textContent = `${name}: ${(error as Error).message}`;
      }
    });
    wallets.append(button);
  };
  window.addEventListener("eip6963:announceProvider", (event) => {
    const { info, provider } = (event as CustomEvent<{ info: { name: string }; provider: EIP1193Provider }>).detail;
    offer(info.name, provider);
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  const injected = (window as { ethereum?: EIP1193Provider }).ethereum;
  if (injected) offer("browser wallet", injected);

  if (config.devAccounts && config.chainId === 31337) {
    const pick = el("select", undefined, { "aria-label": "Development wallet account" });
    for (const account of config.devAccounts) pick.append(el("option", `${account.name}: ${account.role}`, { value: account.address }));
    const button = el("button", "Use the development wallet (local chain only)", { type: "button" });
    button.addEventListener("click", () => show(pick.value as Address, "development wallet"));
    wallets.append(pick, button);
  }
}

main().catch((error: unknown) => {
  app.textContent = `The portal could not start: ${(error as Error).message}`;
});
