// The development wallet (local chain only): an EIP-1193 provider whose keys stay in the
// `medvault portal --demo` process. It signs for whichever demo account was picked; the page
// never holds a key. It stands in for a browser wallet, so the page treats it as one.
import type { Address, EIP1193Provider } from "viem";

export function devWallet(chainId: number, account: Address): EIP1193Provider {
  const post = async (path: string, body: unknown) => {
    const answer = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const reply = (await answer.json()) as { result?: unknown; error?: { code: number; message: string } };
    if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
    return reply.result;
  };
  const request = async ({ method, params }: { method: string; params?: unknown }) => {
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return [account];
      case "eth_chainId":
        return `0x${chainId.toString(16)}`;
      case "wallet_switchEthereumChain":
        return null;
      case "eth_signTypedData_v4":
      case "eth_sendTransaction":
        return post("/dev-wallet", { method, params });
      default:
        return post("/rpc", { jsonrpc: "2.0", id: 1, method, params: params ?? [] });
    }
  };
  return { request, on: () => undefined, removeListener: () => undefined } as unknown as EIP1193Provider;
}
