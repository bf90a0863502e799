// "Research access": an accredited researcher asks a patient for access to some categories of
// records for a while (`medvault request access`), follows its requests, and reads the records
// of a patient who approved: with the keys the approval shared, else from the patient's keepers.
import type { Address } from "viem";
import type { App, View } from "../app/app";
import { keeperSource, sharedKeySource } from "../app/release";
import { parseAddress, UserFacingError } from "../app/session";
import { action, el, field, input, Notice, section, select } from "../app/ui";
import { CATEGORIES, PURPOSES } from "../formats/consent";
import { timeline } from "./records";
import { type AccessRequest, accessRequests, describeRequest, statusWords, studyId } from "./requests";

const HRESCH = 2; // healthcare research: the purpose a research request is usually for
const MAX_DAYS = 365; // ConsentManager.MAX_REQUEST_DURATION

export const researcherView: View = {
  id: "research",
  title: "Research access",
  async render(app) {
    const { session } = app;
    const [accredited, requests, now] = await Promise.all([
      session.read<boolean>("ParticipantRegistry", "isResearcher", [session.account]),
      accessRequests(session, { researcher: session.account }),
      session.now(),
    ]);
    const root = el("div", [el("h2", "Research access")]);
    if (!accredited) {
      root.append(el("p", "This account is not an accredited researcher: patients' consent cannot be asked from it.", { class: "warning" }));
    } else {
      root.append(requestForm(app));
    }
    root.append(requestList(app, requests, now));
    return root;
  },
};

function requestForm(app: App): HTMLElement {
  const { session } = app;
  const notice = new Notice();
  const patient = field("Patient", input({ autocomplete: "off", spellcheck: "false" }), "An account address (0x…), or a demo name such as alice.");
  const boxes = CATEGORIES.map((name) => field(name, el("input", undefined, { type: "checkbox", value: name })));
  const scopes = el("fieldset", [el("legend", "Categories of records"), ...boxes.map((b) => b.row)]);
  const why = field("Purpose", select(PURPOSES.map(([code, words], i) => [String(i), `${words} (${code})`])));
  why.control.value = String(HRESCH);
  const days = field("Days of access from approval", input({ type: "number", min: "1", max: String(MAX_DAYS), value: "30", inputmode: "numeric" }));
  const studyField = field("Study id", input({ maxlength: "66" }), "A label of up to 32 bytes, or 0x and 64 hex digits.");
  return section(
    "Ask a patient for access",
    patient.row,
    scopes,
    why.row,
    days.row,
    studyField.row,
    action(
      "Send the request",
      notice,
      async () => {
        const who = parseAddress(patient.control.value, session);
        const mask = boxes.reduce((m, b, i) => (b.control.checked ? m | (1 << i) : m), 0);
        if (mask === 0) throw new UserFacingError("choose at least one category of records");
        const count = Number(days.control.value);
        if (!Number.isInteger(count) || count < 1 || count > MAX_DAYS) throw new UserFacingError(`the days of access must be a whole number from 1 to ${MAX_DAYS}`);
        const study = studyId(studyField.control.value.trim());
        await session.transact("ConsentManager", "requestAccess", [who, mask, Number(why.control.value), count * 86400, study]);
        app.refresh();
        return `Your request was sent to ${session.name(who)}.`;
      },
      "Sending the request…",
    ),
    notice.node,
  );
}

function requestList(app: App, requests: AccessRequest[], now: bigint): HTMLElement {
  const { session } = app;
  if (requests.length === 0) return section("Your requests", el("p", "You have not asked any patient yet."));
  const list = el("ul", undefined, { class: "requests" });
  const reading = el("div", undefined, { class: "reading" });
  const readable = new Set<string>(); // one grant per patient: the newest approval stands for it
  for (const r of [...requests].reverse()) {
    const item = el("li", [el("p", describeRequest(session, r, "researcher")), el("p", `Status: ${statusWords(r, now)}.`, { class: "meta" })], {
      class: "request",
    });
    if (r.status === "approved" && !readable.has(r.patient)) {
      readable.add(r.patient);
      const notice = new Notice();
      item.append(
        action(`Read the records of ${session.name(r.patient)}`, notice, async () => {
          reading.replaceChildren(await readRecords(app, r.patient));
          reading.scrollIntoView?.();
        }, "Reading the records…"), // prettier-ignore
        notice.node,
      );
    }
    list.append(item);
  }
  return section("Your requests", list, reading);
}

/** The patient's records this account may read: its own wraps, the keys the patient shared,
 * else the keepers (one wallet signature per keeper and record). */
async function readRecords(app: App, patient: Address): Promise<HTMLElement> {
  const { session } = app;
  if (!app.keys) {
    return el("p", [
      "Unlock your key first: the records' keys are sealed to it. ",
      el("a", "Unlock your key", { href: "#/keys" }),
    ]);
  }
  const pairs = app.keys.pairs(session);
  return timeline(app, patient, `Records of ${session.name(patient)}`, [
    { via: "shared", source: sharedKeySource(session, pairs) },
    { via: "keepers", source: keeperSource(session, app.keys) },
  ]);
}
