// "Research requests": what accredited researchers asked the connected patient for, each in
// words, to approve or deny. An approval by the patient shares the keys of the records already
// in scope with the researcher, in one key bundle, as `medvault request approve` does (Python:
// Consent.decision_change); records written later it reads through the keepers.
import { type Address, getAddress, type Hex, toHex } from "viem";
import type { App, View } from "../app/app";
import type { Keys } from "../app/keys";
import { type Session, UserFacingError } from "../app/session";
import { action, el, field, Notice, section, when } from "../app/ui";
import { recordLog } from "../app/records";
import { shareKeys } from "../app/share";
import { dryRun } from "../app/write";
import { utf8 } from "../formats/bytes";
import { type AccessRequest as RequestFields, categories, duration, purpose, study } from "../formats/consent";

/** ConsentManager.REQUEST_TTL: a request can be approved this long after it was made. */
export const REQUEST_TTL = 30n * 86400n;

export const STATUS = ["unknown", "pending", "approved", "denied"] as const;

/** One AccessRequested event with its status now: the fields are the AccessRequest struct. */
export interface AccessRequest extends RequestFields {
  requestId: bigint;
  status: (typeof STATUS)[number];
}

/** The research requests to `patient` or by `researcher`, oldest first, with their status now. */
export async function accessRequests(session: Session, args: { patient?: Address; researcher?: Address }): Promise<AccessRequest[]> {
  const events = await session.chain.getContractEvents({
    ...session.contract("ConsentManager"),
    eventName: "AccessRequested",
    args,
    fromBlock: BigInt(session.config.deploymentBlock),
  });
  const requests = events.map((e) => {
    const a = e.args as Omit<AccessRequest, "status"> & { duration: number | bigint; requestedAt: number | bigint };
    return {
      requestId: a.requestId,
      patient: getAddress(a.patient),
      researcher: getAddress(a.researcher),
      scopes: Number(a.scopes),
      purpose: Number(a.purpose),
      duration: Number(a.duration),
      requestedAt: Number(a.requestedAt),
      studyId: a.studyId,
    };
  });
  const statuses = await Promise.all(requests.map((r) => session.read<number>("ConsentManager", "requestStatus", [r.requestId])));
  return requests.map((r, i) => ({ ...r, status: STATUS[Number(statuses[i])] ?? "unknown" }));
}

/** The struct the contract takes back in approveRequest and denyRequest, field for field. */
export const requestStruct = (r: AccessRequest): RequestFields => ({
  patient: r.patient,
  researcher: r.researcher,
  scopes: r.scopes,
  purpose: r.purpose,
  duration: r.duration,
  requestedAt: r.requestedAt,
  studyId: r.studyId,
});

/** A study id as bytes32: 0x and 64 hex digits as they are, else a label of 1 to 32 UTF-8 bytes
 * padded with zero bytes (Python: consent.study_id). */
export function studyId(text: string): Hex {
  if (text.startsWith("0x") && text.length === 66 && /^0x[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase() as Hex;
  const raw = utf8(text);
  if (raw.length === 0 || raw.length > 32) {
    throw new UserFacingError(`the study id must be 1 to 32 bytes of text, or 0x and 64 hex digits (this one is ${raw.length} bytes)`);
  }
  return toHex(raw, { size: 32 }); // padded on the right, as Python's ljust
}

/** Where the request stands, for people; a pending one past REQUEST_TTL can no longer be approved. */
export function statusWords(r: AccessRequest, now: bigint): string {
  const closes = BigInt(r.requestedAt) + REQUEST_TTL;
  if (r.status === "pending") return now >= closes ? "expired unanswered" : `waiting for an answer (until ${when(closes)})`;
  return r.status;
}

/** What was asked, in one sentence. */
export const describeRequest = (session: Session, r: AccessRequest, perspective: "patient" | "researcher") =>
  `${perspective === "patient" ? session.name(r.researcher) : `You asked ${session.name(r.patient)}`}` +
  `${perspective === "patient" ? " asks for" : " for"} ${categories(r.scopes)}, for ${purpose(r.purpose)}, ` +
  `${duration(r.duration)} from approval; study ${study(r.studyId)}; asked ${when(r.requestedAt)}.`;

/**
 * Approves (sharing the keys of the records in scope if `share`) or denies `r` from the
 * connected patient. The approval is tried against the chain first, so a refused one publishes
 * no key bundle.
 */
export async function decideRequest(session: Session, keys: Keys | undefined, r: AccessRequest, approve: boolean, share: boolean) {
  const request = requestStruct(r);
  if (!approve) {
    await session.transact("ConsentManager", "denyRequest", [request]);
    return `You denied the request of ${session.name(r.researcher)}.`;
  }
  if (!(await session.read<boolean>("ParticipantRegistry", "isResearcher", [r.researcher]))) {
    throw new UserFacingError(
      `${session.name(r.researcher)} is no longer an accredited researcher: approving its request would open nothing.`,
    );
  }
  let keysCid: Hex = "0x";
  let shared = "";
  if (share) {
    if (!keys) throw new UserFacingError("Unlock your key to share the keys of your records, or approve without sharing them.");
    await dryRun(session, "ConsentManager", "approveRequest", [request, "0x"]);
    const inScope = (await recordLog(session, r.patient)).filter((p) => (r.scopes >> p.category) & 1);
    const result = await shareKeys(session, keys, r.researcher, inScope);
    keysCid = result.keysCid;
    const left = [...result.skipped].map(([index, why]) => `record ${index}: ${why}`);
    shared =
      ` The keys of ${result.shared.length} record${result.shared.length === 1 ? "" : "s"} in scope were shared with it` +
      (left.length ? `; not ${left.join("; ")} (the keepers release those).` : ".");
  }
  await session.transact("ConsentManager", "approveRequest", [request, keysCid]);
  return `You approved the request of ${session.name(r.researcher)}: it may read ${categories(r.scopes)} for ${duration(r.duration)}.${shared}`;
}

export const requestsView: View = {
  id: "requests",
  title: "Research requests",
  async render(app) {
    const { session } = app;
    const [requests, now] = await Promise.all([accessRequests(session, { patient: session.account }), session.now()]);
    const root = el("div", [el("h2", "Research requests")]);
    if (requests.length === 0) {
      root.append(el("p", "No researcher has asked for access to your records."));
      return root;
    }
    const list = el("ul", undefined, { class: "requests" });
    for (const r of [...requests].reverse()) list.append(requestItem(app, r, now));
    root.append(list);
    return root;
  },
};

function requestItem(app: App, r: AccessRequest, now: bigint): HTMLElement {
  const { session } = app;
  const status = statusWords(r, now);
  const standing = el("p", `Status: ${status}.`, { class: "meta" });
  const what = el("p", describeRequest(session, r, "patient"), { id: `request-${toHex(r.requestId).slice(2, 18)}` });
  const item = el("li", [what, standing], {
    class: "request",
    "data-request": toHex(r.requestId),
  });
  if (r.status !== "pending" || status === "expired unanswered") return item;
  const notice = new Notice();
  const share = field(
    "Share the keys of my existing records in scope",
    el("input", undefined, { type: "checkbox", checked: "" }),
    app.keys ? undefined : "Needs your key unlocked. Unticked, the researcher reads them through your keepers.",
  );
  const controls = el("div", [share.row]);
  const decide = (approve: boolean) => async () => {
    const done = await decideRequest(session, app.keys, r, approve, approve && share.control.checked);
    controls.remove();
    standing.textContent = `Status: ${approve ? "approved" : "denied"}.`;
    return done;
  };
  const buttons = [action("Approve", notice, decide(true), "Approving…"), action("Deny", notice, decide(false), "Denying…")];
  for (const button of buttons) button.setAttribute("aria-describedby", what.id); // which request, when several wait
  controls.append(...buttons);
  item.append(section(`Answer ${session.name(r.researcher)}`, controls, notice.node));
  return item;
}
