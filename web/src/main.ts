// The portal's entry: the deployment's configuration, a wallet, and the views of the connected
// account. Everything goes to this page's own origin (its CSP allows no other).
import type { Address, EIP1193Provider } from "viem";
import type { App } from "./app/app";
import { devWallet } from "./app/devwallet";
import { type Config, LOCAL_CHAIN_ID, loadConfig, publicClient, Session, asUserError } from "./app/session";
import { el, Notice, select } from "./app/ui";
import { VIEWS } from "./views";
import "./style.css";

const root = document.querySelector<HTMLElement>("#app")!;

async function main(): Promise<void> {
  const config = await loadConfig();
  const chain = publicClient();
  const notice = new Notice();
  const wallets = el("div", undefined, { class: "wallets" });
  const connect = el("section", [el("h2", "Connect a wallet"), wallets, notice.node], { "aria-label": "Connect" });
  root.replaceChildren(header(config), el("main", [connect]));

  const start = async (provider: EIP1193Provider, via: string) => {
    try {
      const [account] = (await provider.request({ method: "eth_requestAccounts" })) as Address[];
      if (!account) throw new Error("the wallet gave no account");
      const session = new Session(config, chain, provider, account, via);
      await session.ensureChain();
      open(session);
    } catch (error) {
      notice.fail(asUserError(error, "connect"));
    }
  };

  // EIP-6963: every installed wallet announces itself; window.ethereum is the older way.
  const seen = new Set<string>();
  const offer = (name: string, provider: EIP1193Provider) => {
    if (seen.has(name)) return;
    seen.add(name);
    const button = el("button", `Connect ${name}`, { type: "button" });
    button.addEventListener("click", () => start(provider, name));
    wallets.prepend(button);
  };
  window.addEventListener("eip6963:announceProvider", (event) => {
    const { info, provider } = (event as CustomEvent<{ info: { name: string }; provider: EIP1193Provider }>).detail;
    offer(info.name, provider);
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  const injected = (window as { ethereum?: EIP1193Provider }).ethereum;
  if (injected && seen.size === 0) offer("browser wallet", injected);
  if (seen.size === 0) wallets.append(el("p", "No browser wallet was found in this browser."));

  if (config.devAccounts && config.chainId === LOCAL_CHAIN_ID) {
    const pick = select(
      config.devAccounts.map((a) => [a.address, `${a.name}: ${a.role}`]),
      { "aria-label": "Development wallet account" },
    );
    const button = el("button", "Use the development wallet", { type: "button" });
    button.addEventListener("click", () => {
      const account = config.devAccounts!.find((a) => a.address === pick.value)!;
      void start(devWallet(config.chainId, account.address), `development wallet (${account.name})`);
    });
    wallets.append(
      el("div", [
        el("p", "Local chain only: the demo's accounts, whose keys stay in the demo's process.", { class: "dev" }),
        pick,
        button,
      ]),
    );
  }
}

function header(config: Config): HTMLElement {
  return el("header", [
    el("h1", "medvault"),
    el("p", `Your medical records, encrypted on your device. Chain ${config.chainId}.`, { class: "tagline" }),
  ]);
}

function open(session: Session): void {
  const nav = el("nav", undefined, { "aria-label": "Views" });
  const body = el("div", undefined, { class: "view" });
  const who = el("p", `Connected: ${session.account} (${session.via})`, { class: "account" });
  const app: App = {
    session,
    keys: undefined,
    refresh: () => void show(current),
    go: (id) => {
      location.hash = `#/${id}`;
    },
  };
  let current = VIEWS[0]!.id;
  let shown = 0;
  const show = async (id: string) => {
    const view = VIEWS.find((v) => v.id === id) ?? VIEWS[0]!;
    current = view.id;
    const mine = ++shown;
    for (const link of nav.querySelectorAll("a")) {
      if (link.dataset.view === view.id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    body.replaceChildren(el("p", `Loading ${view.title.toLowerCase()}…`, { role: "status" }));
    try {
      const content = await view.render(app);
      if (mine === shown) body.replaceChildren(content);
    } catch (error) {
      if (mine !== shown) return;
      const notice = new Notice();
      notice.fail(error);
      body.replaceChildren(el("h2", view.title), notice.node);
    }
  };
  for (const view of VIEWS) nav.append(el("a", view.title, { href: `#/${view.id}`, "data-view": view.id }));
  window.addEventListener("hashchange", () => void show(location.hash.replace(/^#\//, "")));
  root.replaceChildren(header(session.config), who, nav, el("main", [body]));
  void show(location.hash.replace(/^#\//, "") || current);
}

main().catch((error: unknown) => {
  root.textContent = `The portal could not start: ${(error as Error).message}`;
});
