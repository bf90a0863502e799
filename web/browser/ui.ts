// What the tests look for on the page, in one place: the portal's UI is being rebuilt, so every
// selector is by role, label or text, and when the page changes only this file should.
import type { Locator, Page } from "playwright-core";

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export const ui = {
  /** The button a wallet's EIP-6963 announcement (or window.ethereum) gets. */
  connect: (page: Page, wallet = "Test Wallet") => page.getByRole("button", { name: `Connect ${wallet}` }),
  /** Said when the browser has no wallet at all. */
  noWallet: (page: Page) => page.getByText(/no browser wallet/i),
  /** The deployment's chain, as the header says it ("Chain 31337"). */
  chain: (page: Page, chainId: number) => page.getByText(new RegExp(`\\bchain ${chainId}\\b`, "i")).first(),
  /** The connected account's address, where the page shows who is connected. */
  connected: (page: Page, address: string) => page.getByText(new RegExp(escape(address), "i")).first(),
  /** "N records" (the records view's count, or the first page's status line). */
  records: (page: Page, count: number) => page.getByText(new RegExp(`\\b${count} records\\b`, "i")).first(),
  /** The navigation link to the key view, when there is one. */
  keyLink: (page: Page) => page.getByRole("navigation").getByRole("link", { name: /key/i }),
  /** That the account's encryption key is on chain, in either of the page's words for it. */
  keyRegistered: (page: Page) =>
    page.getByText(/encryption key registered|your key is on chain|matches the one on chain|kept in this browser, sealed/i).first(),
  /** A refusal or error the page shows (role=alert). */
  alert: (page: Page) => page.getByRole("alert").first(),
};

/** Opens the key view if the page has one (its first view may already say it). */
export async function openKeyView(page: Page): Promise<void> {
  const link = ui.keyLink(page);
  if ((await link.count()) > 0) await link.first().click();
}

/** Waits for `locator` to be visible and returns its text (a clear timeout message otherwise). */
export async function visible(locator: Locator, timeout = 30_000): Promise<string> {
  await locator.waitFor({ state: "visible", timeout });
  return (await locator.textContent()) ?? "";
}
