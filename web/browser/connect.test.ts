// The portal in real Chromium: it loads from its own origin, a MetaMask-like wallet connects,
// one on the wrong chain is asked to switch, nothing goes elsewhere, and axe finds no serious
// or critical barrier.
import { createPublicClient, type Hex, http, verifyTypedData } from "viem";
import { describe, expect, test } from "vitest";
import { axe, openPortal, shoot, useBrowser } from "./page";
import { useDemo } from "./stack";
import { openKeyView, ui, visible } from "./ui";

const demo = useDemo();
const browser = useBrowser();

describe("connecting", () => {
  test("the page loads from the portal and shows its chain, with no wallet to connect", async () => {
    const portal = await openPortal(browser(), demo(), { wallet: false });
    try {
      await visible(ui.chain(portal.page, demo().info.chainId));
      expect(await ui.connect(portal.page).count()).toBe(0);
      expect(portal.offOrigin()).toEqual([]);
      expect(portal.errors).toEqual([]);
    } finally {
      await portal.close();
    }
  });

  test("alice connects the Test Wallet: her address, her registered key and her 8 records", async () => {
    const { info } = demo();
    const portal = await openPortal(browser(), demo(), { wallet: { account: "alice" } });
    const { page, wallet } = portal;
    try {
      await visible(ui.chain(page, info.chainId));
      await visible(ui.connect(page));
      await shoot(page, "connect");
      expect(await axe(page)).toEqual([]);

      await ui.connect(page).click();
      await visible(ui.connected(page, info.accounts.alice));
      const listed = await demo().cli<unknown[]>(["record", "list", "--patient", "alice"]);
      expect(listed).toHaveLength(8);
      await visible(ui.records(page, listed.length));
      expect(await axe(page)).toEqual([]);
      await shoot(page, "connected");

      await openKeyView(page);
      await visible(ui.keyRegistered(page));
      expect(await axe(page)).toEqual([]);
      await shoot(page, "key");

      expect(wallet!.called("eth_requestAccounts")).toHaveLength(1);
      expect(wallet!.called("wallet_switchEthereumChain")).toEqual([]);
      expect(portal.requests.length).toBeGreaterThan(2);
      expect(portal.offOrigin()).toEqual([]);
      const secrets = [await demo().privateKey("alice"), info.passphrase];
      expect(portal.leaks(secrets).map((l) => `${l.secret} in ${l.request.method} ${l.request.url}`)).toEqual([]);
      expect(portal.errors).toEqual([]);
    } finally {
      await portal.close();
    }
  });

  test("a wallet on another chain is asked to switch to the deployment's", async () => {
    const { info } = demo();
    const portal = await openPortal(browser(), demo(), { wallet: { account: "alice", chainId: 1 } });
    const { page, wallet } = portal;
    try {
      await ui.connect(page).click();
      await visible(ui.connected(page, info.accounts.alice));
      const switches = wallet!.called("wallet_switchEthereumChain");
      expect(switches).toHaveLength(1);
      expect(switches[0]!.params).toEqual([{ chainId: `0x${info.chainId.toString(16)}` }]);
      expect(switches[0]!.error).toBeUndefined();
      expect(wallet!.chainId).toBe(info.chainId);
      expect(portal.offOrigin()).toEqual([]);
    } finally {
      await portal.close();
    }
  });

  test("a wallet that does not know the chain (4902) is told to add it", async () => {
    const portal = await openPortal(browser(), demo(), { wallet: { account: "alice", chainId: 1, knownChains: [1] } });
    const { page, wallet } = portal;
    try {
      await ui.connect(page).click();
      const said = await visible(ui.alert(page));
      expect(said).toMatch(new RegExp(`chain ${demo().info.chainId}`, "i"));
      expect(wallet!.called("wallet_switchEthereumChain")[0]!.error?.code).toBe(4902);
      expect(wallet!.chainId).toBe(1);
      expect(await axe(page)).toEqual([]);
      await shoot(page, "unknown-chain");
    } finally {
      await portal.close();
    }
  });
});

// The wallet itself, driven from the page as the portal would: what other scenarios rely on.
describe("the test wallet", () => {
  test("signs typed data for its chain only, sends transactions, and says no when told to", async () => {
    const { info } = demo();
    const portal = await openPortal(browser(), demo(), { wallet: { account: "bob" } });
    const { page, wallet } = portal;
    try {
      await visible(ui.connect(page));
      const typed = (chainId: number) => ({
        types: {
          EIP712Domain: [
            { name: "name", type: "string" },
            { name: "chainId", type: "uint256" },
          ],
          Note: [
            { name: "text", type: "string" },
            { name: "count", type: "uint64" },
          ],
        },
        primaryType: "Note",
        domain: { name: "medvault test", chainId },
        message: { text: "hello", count: "7" },
      });
      const request = (method: string, params: unknown[]) =>
        page.evaluate(
          async ([method, params]) => {
            const ethereum = (window as unknown as { ethereum: { request(a: object): Promise<unknown> } }).ethereum;
            try {
              return { result: await ethereum.request({ method, params }) };
            } catch (error) {
              return { code: (error as { code: number }).code, message: (error as Error).message };
            }
          },
          [method, params] as const,
        );

      expect(await request("eth_accounts", [])).toEqual({ result: [] });
      const [address] = ((await request("eth_requestAccounts", [])) as { result: Hex[] }).result;
      expect(address).toBe(info.accounts.bob);
      expect(await request("eth_chainId", [])).toEqual({ result: `0x${info.chainId.toString(16)}` });

      const signed = (await request("eth_signTypedData_v4", [address, JSON.stringify(typed(info.chainId))])) as { result: Hex };
      const { EIP712Domain: _, ...types } = typed(info.chainId).types;
      const valid = await verifyTypedData({
        address: address!,
        domain: { name: "medvault test", chainId: info.chainId },
        types,
        primaryType: "Note",
        message: { text: "hello", count: 7n },
        signature: signed.result,
      });
      expect(valid).toBe(true);
      const wrongChain = await request("eth_signTypedData_v4", [address, JSON.stringify(typed(1))]);
      expect(wrongChain).toMatchObject({ code: -32603, message: expect.stringMatching(/must match the active chainId/) });

      wallet!.reject = true;
      expect(await request("eth_signTypedData_v4", [address, JSON.stringify(typed(info.chainId))])).toEqual({
        code: 4001,
        message: "User rejected the request.",
      });
      expect(wallet!.reject).toBe(false);

      const sent = (await request("eth_sendTransaction", [{ from: address, to: address, value: "0x1" }])) as { result: Hex };
      const chain = createPublicClient({ transport: http(info.rpcUrl) });
      const receipt = await chain.waitForTransactionReceipt({ hash: sent.result, pollingInterval: 200 });
      expect(receipt.status).toBe("success");
      expect(receipt.from.toLowerCase()).toBe(address!.toLowerCase());
      wallet!.reject = true;
      expect(await request("eth_sendTransaction", [{ from: address, to: address, value: "0x1" }])).toMatchObject({ code: 4001 });
      expect(await request("eth_sendTransaction", [{ from: info.accounts.alice, to: address }])).toMatchObject({ code: 4100 });
      expect(await request("eth_sign", [address, "0x00"])).toMatchObject({ code: -32601 });

      await page.evaluate(() => {
        const w = window as unknown as { ethereum: { on(e: string, f: (a: unknown) => void): void }; seen?: unknown };
        w.ethereum.on("accountsChanged", (accounts) => (w.seen = accounts));
      });
      await wallet!.use("alice");
      expect(await page.evaluate(() => (window as unknown as { seen?: unknown }).seen)).toEqual([info.accounts.alice]);
      expect(await request("eth_accounts", [])).toEqual({ result: [info.accounts.alice] });

      expect(await request("wallet_switchEthereumChain", [{ chainId: "0x1" }])).toMatchObject({ code: 4902 });
      expect(wallet!.chainId).toBe(info.chainId);
      expect(portal.offOrigin()).toEqual([]); // the wallet's own node traffic is Node's, not the page's
    } finally {
      await portal.close();
    }
  });
});
