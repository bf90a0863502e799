// "Your records": the patient's log, checked against the chain's head, each record fetched,
// checked against its CID and on-chain hash and decrypted here, then shown for people.
import type { Address } from "viem";
import type { App, View } from "../app/app";
import {
  categoryName,
  DISPUTED,
  HIDDEN,
  type KeySource,
  type OpenedRecord,
  readRecord,
  RecordProblem,
  type RecordPointer,
  recordLog,
} from "../app/records";
import { download, el, when } from "../app/ui";
import { fromUtf8 } from "../formats/bytes";
import { describe, type RecordView, safeFilename } from "../fhir";

export const recordsView: View = {
  id: "records",
  title: "Records",
  async render(app) {
    return timeline(app, app.session.account, "Your records");
  },
};

/** The records of `patient` that the connected account can read, `others` being key sources
 * beyond its own wraps (the keepers, for a grantee). */
export async function timeline(
  app: App,
  patient: Address,
  title: string,
  others: { via: OpenedRecord["via"]; source: KeySource }[] = [],
): Promise<HTMLElement> {
  const { session } = app;
  const root = el("div", [el("h2", title)]);
  let pointers: RecordPointer[];
  try {
    pointers = await recordLog(session, patient);
  } catch (error) {
    root.append(el("p", `The record log cannot be trusted: ${(error as Error).message}`, { role: "alert", class: "error" }));
    return root;
  }
  if (pointers.length === 0) {
    root.append(el("p", "No records yet."));
    return root;
  }
  const pairs = app.keys?.pairs(session) ?? [];
  if (!app.keys) {
    const link = el("a", "Unlock your key", { href: "#/keys" });
    root.append(el("p", [`${pointers.length} records. `, link, " to read them; until then only what the chain says is shown."]));
  }
  const list = el("ol", undefined, { class: "timeline", reversed: "" });
  root.append(list);
  const cards = [...pointers].reverse().map((pointer) => {
    const card = recordCard(session.name, pointer);
    list.append(card.node);
    return { pointer, card };
  });
  if (!app.keys && others.length === 0) return root;
  // A few at once: each is two fetches and some hashing, and the page stays responsive.
  const queue = [...cards];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      try {
        next.card.show(await readRecord(session, next.pointer, session.account, pairs, others));
      } catch (error) {
        next.card.problem(error);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  root.append(el("p", `${pointers.length} records checked against the chain.`, { role: "status", class: "ok" }));
  return root;
}

function recordCard(name: (a: string) => string, pointer: RecordPointer) {
  const flags = [pointer.flags & DISPUTED ? "disputed" : "", pointer.flags & HIDDEN ? "hidden" : ""].filter(Boolean);
  const meta = el(
    "p",
    `#${pointer.index} · ${categoryName(pointer.category)} · added ${when(pointer.timestamp)} by ${name(pointer.author)}` +
      (flags.length ? ` · ${flags.join(", ")}` : ""),
    { class: "meta" },
  );
  const body = el("div", [el("p", "Checking and decrypting…", { class: "busy" })]);
  const node = el("li", [meta, body], { class: "record", "data-index": String(pointer.index) });
  return {
    node,
    show(record: OpenedRecord) {
      body.replaceChildren(...render(record));
    },
    problem(error: unknown) {
      const integrity = error instanceof RecordProblem && error.integrity;
      const text = integrity ? `Integrity check failed: ${(error as Error).message}` : (error as Error).message;
      node.classList.add(integrity ? "tampered" : "unreadable");
      body.replaceChildren(el("p", text, { role: integrity ? "alert" : "note", class: integrity ? "error" : "muted" }));
    },
  };
}

function render(record: OpenedRecord): Node[] {
  const fhir = record.contentType === "application/fhir+json";
  if (!fhir) return [document(record)];
  let view: RecordView;
  try {
    view = describe(JSON.parse(fromUtf8(record.body)) as unknown); // plain JSON numbers, as fhir.ts reads them
  } catch (error) {
    return [el("p", `The record is not FHIR JSON: ${(error as Error).message}`, { class: "error", role: "alert" }), document(record)];
  }
  const facts = el("dl");
  for (const fact of view.facts) facts.append(el("dt", fact.label), el("dd", fact.value));
  const nodes: Node[] = [el("h3", view.title), el("p", [view.kind, view.when ? ` · ${view.when}` : "", view.status ? ` · ${view.status}` : ""].join(""), { class: "kind" }), facts];
  for (const attachment of view.attachments) {
    const name = safeFilename(attachment.title, attachment.contentType);
    if (attachment.data) {
      const button = el("button", `Download ${name}`, { type: "button" });
      button.addEventListener("click", () => download(attachment.data!, name, "application/octet-stream"));
      nodes.push(button);
    } else {
      nodes.push(el("p", `Attachment ${attachment.title} (${attachment.contentType}) is held elsewhere${attachment.url ? `: ${attachment.url}` : ""}.`));
    }
  }
  for (const warning of view.warnings) nodes.push(el("p", warning, { class: "warning" }));
  return nodes;
}

function document(record: OpenedRecord): HTMLElement {
  const name = safeFilename(record.name || `record-${record.pointer.index}`, record.contentType);
  const button = el("button", `Download ${name}`, { type: "button" });
  button.addEventListener("click", () => download(record.body, name, "application/octet-stream"));
  return el("div", [el("p", `A document (${record.contentType}, ${record.body.length} bytes).`), button]);
}
