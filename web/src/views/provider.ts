// "Add a record": a provider (or the patient) encrypts a FHIR resource or a document in this
// browser for a patient and appends it to the patient's log (`medvault record add`). A FHIR
// resource is validated before anything is encrypted; its category follows from its type, as
// the CLI decides it (the category decides who may read the record).
import type { Address } from "viem";
import type { View } from "../app/app";
import { parseAddress, type Session, UserFacingError } from "../app/session";
import { action, el, field, input, Notice, section, select } from "../app/ui";
import { addRecord, isRegistered, writerOf } from "../app/write";
import { fromUtf8, utf8 } from "../formats/bytes";
import { CATEGORIES, categories } from "../formats/consent";
import { validateForUpload } from "../fhir";

const FHIR = "application/fhir+json";

// Python: medvault.fhir.CATEGORY_OF and category_for.
const CATEGORY_OF: Record<string, string> = {
  Observation: "laboratory",
  DiagnosticReport: "laboratory",
  ImagingStudy: "imaging",
  MedicationRequest: "medications",
  MedicationStatement: "medications",
  Condition: "conditions",
  AllergyIntolerance: "conditions",
  Immunization: "immunizations",
  DocumentReference: "notes",
  Composition: "notes",
};
const IMAGING_CODES = new Set(["imaging", "RAD", "CT", "NMR", "NMS", "RUS", "OUS", "VUS", "CUS", "LP29684-5"]);

/** The record category of a FHIR resource: by its type, imaging for an Observation or
 * DiagnosticReport with an imaging category code, notes for any other type. */
export function categoryFor(resource: Record<string, unknown>): string {
  const kind = resource.resourceType;
  const category = typeof kind === "string" && Object.hasOwn(CATEGORY_OF, kind) ? CATEGORY_OF[kind]! : "notes";
  if (kind !== "Observation" && kind !== "DiagnosticReport") return category;
  const concepts = Array.isArray(resource.category) ? resource.category : [resource.category];
  for (const concept of concepts) {
    const codings = (concept as { coding?: unknown } | null)?.coding;
    for (const coding of Array.isArray(codings) ? codings : []) {
      const code = (coding as { code?: unknown } | null)?.code;
      if (typeof code === "string" && IMAGING_CODES.has(code)) return "imaging";
    }
  }
  return category;
}

export const providerView: View = {
  id: "add",
  title: "Add a record",
  async render(app) {
    const { session } = app;
    const notice = new Notice();
    const patient = field("Patient", input({ spellcheck: "false" }), "An account address (0x…), or a demo name such as alice.");
    const standing = el("p", "", { class: "state", "aria-live": "polite" });
    patient.control.addEventListener("change", () => void showStanding(session, patient.control.value, standing));

    const kind = field("What to add", select([["fhir", "A FHIR resource (JSON)"], ["document", "A document (any file)"]]));
    const category = field(
      "Category",
      select([["", "As the FHIR resource says"], ...CATEGORIES.map((c, i): [string, string] => [String(i), c])]),
      "Who may read the record follows from its category.",
    );
    const fhirFile = field("FHIR JSON file", el("input", undefined, { type: "file", accept: ".json,application/json,application/fhir+json" }));
    const fhirText = field("Or paste the FHIR JSON", el("textarea", undefined, { rows: "8", spellcheck: "false" }));
    const fhir = el("div", [fhirFile.row, fhirText.row]);
    const docFile = field("Document file", el("input", undefined, { type: "file" }));
    const mediaType = field("Media type", input({ spellcheck: "false", placeholder: "application/pdf" }), "Taken from the file when the browser knows it.");
    const documentPart = el("div", [docFile.row, mediaType.row], { hidden: "" });
    docFile.control.addEventListener("change", () => {
      const type = docFile.control.files?.[0]?.type;
      if (type) mediaType.control.value = type;
    });
    kind.control.addEventListener("change", () => {
      const isFhir = kind.control.value === "fhir";
      fhir.hidden = !isFhir;
      documentPart.hidden = isFhir;
      category.control.options[0]!.textContent = isFhir ? "As the FHIR resource says" : "Choose a category";
    });

    const add = action(
      "Encrypt and add",
      notice,
      async () => {
        const to = parseAddress(patient.control.value, session);
        const content = kind.control.value === "fhir" ? await fhirContent(fhirFile.control, fhirText.control, category.control.value, session) : await documentContent(docFile.control, mediaType.control.value, category.control.value); // prettier-ignore
        notice.busy("Encrypting, storing and sending…");
        const added = await addRecord(session, app.keys, to, content.body, content.contentType, content.name, content.category);
        const readers = added.readers.map((r) => session.name(r)).join(", ");
        const skipped = [...added.skipped].map(([who, why]) => `${session.name(who)}: ${why}`);
        return (
          `Record #${added.index} (${CATEGORIES[content.category]}) was added to the log of ${session.name(to)}. ` +
          `It is readable by ${readers}, and by anyone the patient grants it to later, through the keepers.` +
          (skipped.length ? ` Left out: ${skipped.join("; ")}.` : "")
        );
      },
      "Checking…",
    );
    return el("div", [
      el("h2", "Add a record"),
      el("p", "The record is encrypted in this browser; only ciphertext and key wraps leave it."),
      section("For whom", patient.row, standing),
      section("The record", kind.row, fhir, documentPart, category.row, add, notice.node),
    ]);
  },
};

/** Whether the patient can receive records and has allowed this account to add them. */
async function showStanding(session: Session, text: string, out: HTMLElement): Promise<void> {
  let patient: Address;
  try {
    patient = parseAddress(text, session);
  } catch (error) {
    out.textContent = (error as Error).message;
    return;
  }
  out.textContent = "Checking…";
  try {
    const [registered, writer] = await Promise.all([isRegistered(session, patient), writerOf(session, patient, session.account)]);
    const who = session.name(patient);
    if (!registered) out.textContent = `${who} has not set up an encryption key yet: no record can be written for them.`;
    else if (patient === session.account) out.textContent = "This is your own log: you can add records of any category.";
    else if (writer.categories === 0) {
      out.textContent = `${who} has not allowed you to add records (unless you hold emergency access to their records).`;
    } else out.textContent = `${who} has allowed you to add records of: ${categories(writer.categories)}.`;
  } catch (error) {
    out.textContent = `The chain cannot tell: ${(error as Error).message}`;
  }
}

interface Content {
  body: Uint8Array;
  contentType: string;
  name: string;
  category: number;
}

/** The FHIR resource to add, validated before anything is encrypted; its category from its type. */
async function fhirContent(file: HTMLInputElement, text: HTMLTextAreaElement, chosen: string, session: Session): Promise<Content> {
  const picked = file.files?.[0];
  let body: Uint8Array;
  let json: string;
  if (picked) {
    body = new Uint8Array(await picked.arrayBuffer());
    try {
      json = fromUtf8(body);
    } catch {
      throw new UserFacingError(`${picked.name} is not text (not UTF-8): a FHIR JSON resource is UTF-8 JSON. Nothing was sent.`);
    }
  } else {
    json = text.value;
    body = utf8(json);
  }
  if (!picked && !json.trim()) throw new UserFacingError("Choose a FHIR JSON file or paste the resource. Nothing was sent.");
  const checked = validateForUpload(json, session.config.maxRecordBytes);
  if ("error" in checked) throw new UserFacingError(`${picked ? picked.name : "The resource"}: ${checked.error}. Nothing was sent.`);
  const implied = categoryFor(checked.resource as Record<string, unknown>);
  if (chosen !== "" && CATEGORIES[Number(chosen)] !== implied) {
    const kind = String((checked.resource as { resourceType?: unknown }).resourceType);
    throw new UserFacingError(
      `The category ${CATEGORIES[Number(chosen)]} contradicts the resource: ${kind} records are ${implied}, and the category ` +
        "decides who may read them. Choose “As the FHIR resource says”. Nothing was sent.",
    );
  }
  return { body, contentType: FHIR, name: picked?.name ?? "", category: CATEGORIES.indexOf(implied) };
}

async function documentContent(file: HTMLInputElement, mediaType: string, chosen: string): Promise<Content> {
  const picked = file.files?.[0];
  if (!picked) throw new UserFacingError("Choose the document's file. Nothing was sent.");
  if (chosen === "") throw new UserFacingError("Choose the category of the document: it decides who may read it. Nothing was sent.");
  const type = mediaType.trim() || "application/octet-stream";
  if (!/^[\w.+-]+\/[\w.+-]+(?:\s*;.*)?$/.test(type)) throw new UserFacingError(`"${type}" is not a media type (such as application/pdf). Nothing was sent.`);
  return { body: new Uint8Array(await picked.arrayBuffer()), contentType: type, name: picked.name, category: Number(chosen) };
}
