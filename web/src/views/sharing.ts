// "Who can see my records": every grant in words with revoke, a new grant signed in the wallet
// (relayed, so the patient pays no gas), and the providers allowed to add records.
import type { Address } from "viem";
import type { App, View } from "../app/app";
import { type Sent, sendChange, signAndRelay } from "../app/consent";
import { recordLog } from "../app/records";
import { type ContractName, parseAddress, type Session, UserFacingError } from "../app/session";
import { shareKeys } from "../app/share";
import { action, el, field, input, Notice, section, select, when } from "../app/ui";
import { CATEGORIES, PURPOSES } from "../formats/consent";

const KINDS = ["none", "granted by you", "granted by a delegate", "emergency access", "research approval"];
const DAY = 86_400n;

interface Grant {
  validFrom: bigint;
  validUntil: bigint;
  scopes: number;
  purpose: number;
  kind: number;
}

export const sharingView: View = {
  id: "sharing",
  title: "Sharing",
  async render(app) {
    const { session } = app;
    const notice = new Notice();
    const [grants, writers, now] = await Promise.all([grantsOf(session), writersOf(session), session.now()]);
    const list = el("ul", undefined, { class: "grants" });
    for (const [grantee, grant] of grants) list.append(grantItem(app, notice, grantee, grant, now));
    if (grants.size === 0) list.append(el("li", "Nobody but you can read your records."));
    const writerList = el("ul", undefined, { class: "writers" });
    for (const [writer, categories] of writers) writerList.append(writerItem(app, notice, writer, categories));
    if (writers.size === 0) writerList.append(el("li", "No provider may add records for you yet."));
    return el("div", [
      el("h2", "Who can see your records"),
      list,
      newGrant(app, notice),
      section("Who may add records", writerList, newWriter(app, notice)),
      notice.node,
    ]);
  },
};

export const scopeWords = (scopes: number) =>
  CATEGORIES.filter((_, bit) => scopes & (1 << bit)).join(", ") || "no categories";
export const purposeWords = (purpose: number) => PURPOSES[purpose]?.[1] ?? `purpose ${purpose}`;

/** Every account named as `field` by the patient's `eventName` events, once each. */
async function counterparts(session: Session, contract: ContractName, eventName: string, field: string): Promise<Address[]> {
  const events = await session.chain.getContractEvents({
    ...session.contract(contract),
    eventName,
    args: { patient: session.account },
    fromBlock: BigInt(session.config.deploymentBlock),
  });
  return [...new Set(events.map((e) => (e.args as Record<string, Address>)[field]!))];
}

/** The grants the chain holds now, by grantee (from the AccessGranted events, read back with grantOf). */
async function grantsOf(session: Session): Promise<Map<Address, Grant>> {
  const grantees = await counterparts(session, "ConsentManager", "AccessGranted", "grantee");
  const grants = await Promise.all(grantees.map((g) => session.read<Grant>("ConsentManager", "grantOf", [session.account, g])));
  return new Map(grantees.map((g, i) => [g, grants[i]!] as const).filter(([, g]) => g.kind !== 0));
}

function grantItem(app: App, notice: Notice, grantee: Address, grant: Grant, now: bigint): HTMLElement {
  const { session } = app;
  const state = now < grant.validFrom ? "not open yet" : now >= grant.validUntil ? "expired" : "open now";
  const words =
    `${session.name(grantee)} (${grantee}) may read ${scopeWords(grant.scopes)} for ${purposeWords(grant.purpose)}, ` +
    `from ${when(grant.validFrom)} until ${when(grant.validUntil)}: ${KINDS[grant.kind] ?? "kind " + grant.kind}, ${state}.`;
  const revoke = (relay: boolean) => async () => {
    const change = { action: "Revoke", message: { patient: session.account, grantee } } as const;
    const sent = relay ? await signAndRelay(session, change, grantee) : await sendChange(session, change);
    app.refresh();
    return `${session.name(grantee)} can no longer obtain your record keys. ${sentWords(sent)} What was already decrypted cannot be recalled.`;
  };
  const buttons = [action(`Revoke ${session.name(grantee)}`, notice, revoke(Boolean(session.config.relayer)))];
  return el("li", [el("p", words), ...buttons], { class: "grant", "data-grantee": grantee });
}

const sentWords = (sent: Sent) =>
  sent.relayed ? `Signed by you, relayed in ${sent.transactionHash.slice(0, 10)}….` : `Sent in ${sent.transactionHash.slice(0, 10)}….`;

function categoryBoxes(legend: string): { node: HTMLElement; mask: () => number } {
  const boxes = CATEGORIES.map((name, bit) => {
    const box = el("input", undefined, { type: "checkbox", value: String(bit), id: `${legend}-${bit}`.replace(/\W/g, "-") });
    return { box, node: el("label", [box, ` ${name}`], { class: "check" }) };
  });
  return {
    node: el("fieldset", [el("legend", legend), ...boxes.map((b) => b.node)]),
    mask: () => boxes.reduce((m, b, bit) => (b.box.checked ? m | (1 << bit) : m), 0),
  };
}

function newGrant(app: App, notice: Notice): HTMLElement {
  const { session } = app;
  const who = field("Who (address or name)", input({ name: "grantee" }));
  const scopes = categoryBoxes("Which records");
  const purpose = field("For what", select(PURPOSES.map(([, words], i) => [String(i), words])));
  const days = field("For how many days", input({ type: "number", min: "1", max: "3650", value: "30", inputmode: "numeric" }));
  const grant = (relay: boolean) => async () => {
    const grantee = parseAddress(who.control.value, session);
    if (grantee === session.account) throw new UserFacingError("you can always read your own records");
    const mask = scopes.mask();
    if (mask === 0) throw new UserFacingError("choose at least one category of records");
    const count = BigInt(Number(days.control.value) || 0);
    if (count < 1n || count > 3650n) throw new UserFacingError("a grant lasts from 1 to 3650 days");
    const now = await session.now();
    // The keys of records in scope that exist already go with the grant (only the patient
    // holds them); without unlocked keys the grantee reads them through the keepers.
    let keysCid: `0x${string}` = "0x";
    let shared = "";
    if (app.keys) {
      const log = (await recordLog(session, session.account)).filter((p) => mask & (1 << p.category));
      const bundle = await shareKeys(session, app.keys, grantee, log);
      keysCid = bundle.keysCid;
      shared = ` The keys of ${bundle.shared.length} existing records went with it.`;
    }
    const change = {
      action: "Grant",
      message: {
        patient: session.account, grantee, scopes: mask, purpose: Number(purpose.control.value),
        validFrom: Number(now), validUntil: Number(now + count * DAY), keysCid,
      },
    } as const; // prettier-ignore
    const sent = relay ? await signAndRelay(session, change, grantee) : await sendChange(session, change);
    app.refresh();
    return `${session.name(grantee)} may now read ${scopeWords(mask)} for ${count} days. ${sentWords(sent)}${shared}`;
  };
  const buttons = [];
  if (session.config.relayer) buttons.push(action("Sign the grant (no gas)", notice, grant(true)));
  buttons.push(action("Send the grant as a transaction", notice, grant(false)));
  return section(
    "Give someone access",
    el("p", "Your wallet shows what you sign. The grant ends on its own; you can revoke it sooner."),
    who.row,
    scopes.node,
    purpose.row,
    days.row,
    ...buttons,
  );
}

/** The providers allowed to add records now (WriterSet events, read back with writerOf). */
async function writersOf(session: Session): Promise<Map<Address, number>> {
  const writers = await counterparts(session, "RecordRegistry", "WriterSet", "writer");
  const now = await Promise.all(writers.map((w) => session.read<[number, bigint]>("RecordRegistry", "writerOf", [session.account, w])));
  return new Map(writers.map((w, i) => [w, now[i]![0]] as const).filter(([, c]) => c !== 0));
}

function writerItem(app: App, notice: Notice, writer: Address, categories: number): HTMLElement {
  const { session } = app;
  const remove = action(`Stop ${session.name(writer)} adding records`, notice, async () => {
    await session.transact("RecordRegistry", "removeWriter", [writer]);
    app.refresh();
    return `${session.name(writer)} can no longer add records for you; what it added stays.`;
  });
  return el("li", [el("p", `${session.name(writer)} (${writer}) may add ${scopeWords(categories)}.`), remove]);
}

function newWriter(app: App, notice: Notice): HTMLElement {
  const { session } = app;
  const who = field("Provider (address or name)", input({ name: "writer" }));
  const scopes = categoryBoxes("Which categories it may add");
  return el("div", [
    who.row,
    scopes.node,
    action("Allow this provider", notice, async () => {
      const writer = parseAddress(who.control.value, session);
      const mask = scopes.mask();
      if (mask === 0) throw new UserFacingError("choose at least one category the provider may add");
      await session.transact("RecordRegistry", "setWriter", [writer, mask]);
      app.refresh();
      return `${session.name(writer)} may now add ${scopeWords(mask)} for you.`;
    }),
  ]);
}


