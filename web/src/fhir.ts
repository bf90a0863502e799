// FHIR R4 resources for people: describe() turns a record into plain data (a title, a date, labelled
// facts, attachments and warnings) that the page puts into the DOM as text, never as HTML (a record's
// narrative, text.div, is not read at all). Records are hostile input: only own properties are read,
// every value's type is checked, long texts are cut and long lists capped, and whatever is not what
// FHIR says becomes a warning, never an exception. validateForUpload() is the check a provider's
// upload gets in the browser, mirroring medvault.fhir.validate_resource.

import { utf8 } from "./formats/bytes";

export interface Fact {
  label: string;
  value: string;
}

export interface Attachment {
  title: string;
  contentType: string;
  data?: Uint8Array;
  url?: string;
  size?: number;
}

export interface RecordView {
  kind: string;
  title: string;
  when?: string;
  status?: string;
  facts: Fact[];
  attachments: Attachment[];
  warnings: string[];
}

const MAX_TEXT = 2000; // characters of one text shown
const MAX_ITEMS = 100; // elements of one list shown
const MAX_WARNINGS = 50;

type Obj = { readonly [key: string]: unknown };
/** A reader of one FHIR value found at `where` (e.g. "component[0].valueQuantity"). */
type Show<T = string> = (r: Reader, value: unknown, where: string) => T | undefined;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
/** o[key] if it is o's own property: never an inherited one such as "constructor". */
const own = (o: Obj, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined);
// C0/C1 controls but tab and newline, and the bidi embeddings, overrides and isolates that could reorder text.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

class Reader {
  readonly facts: Fact[] = [];
  readonly attachments: Attachment[] = [];
  readonly warnings: string[] = [];

  warn(message: string): undefined {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(message.slice(0, 300).replace(UNSAFE, ""));
    else if (this.warnings.length === MAX_WARNINGS) this.warnings.push("more problems are not listed");
    return undefined;
  }

  wrong(where: string, what: string): undefined {
    return this.warn(`${where}: expected ${what}`);
  }

  fact(label: string, value: string | undefined): void {
    if (value) this.facts.push({ label, value });
  }

  /** Text as shown: unsafe characters dropped, cut at MAX_TEXT; undefined if blank. */
  clip(text: string, where: string): string | undefined {
    if (text.length > MAX_TEXT) this.warn(`${where}: shortened to ${MAX_TEXT} characters`);
    const shown = text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
    return shown.replace(UNSAFE, "").trim() || undefined;
  }

  /** o[key] read by show; a warning if it is needed but missing. */
  get<T>(o: Obj, key: string, at: string, show: Show<T>, needed = false): T | undefined {
    const value = own(o, key);
    if (value === undefined) return needed ? this.warn(`${at}${key}: required, but missing`) : undefined;
    return show(this, value, at + key);
  }

  /** The elements of the list o[key] (at most MAX_ITEMS), each with where it is. */
  items(o: Obj, key: string, at: string, needed = false): Array<[unknown, string]> {
    const value = own(o, key);
    if (value === undefined) {
      if (needed) this.warn(`${at}${key}: required, but missing`);
      return [];
    }
    if (!Array.isArray(value)) {
      this.wrong(at + key, "a list");
      return [];
    }
    if (value.length > MAX_ITEMS) this.warn(`${at}${key}: only the first ${MAX_ITEMS} of ${value.length} are shown`);
    return value.slice(0, MAX_ITEMS).map((v, i) => [v, `${at}${key}[${i}]`]);
  }

  /** Each element of the list o[key] read by show. */
  all(o: Obj, key: string, at: string, show: Show): string[] {
    return this.items(o, key, at).flatMap(([v, where]) => show(this, v, where) ?? []);
  }

  /** The objects of the list o[key], each with the prefix of the paths inside it ("component[0]."). */
  objects(o: Obj, key: string, at: string, needed = false): Array<[Obj, string]> {
    return this.items(o, key, at, needed).flatMap(([v, where]): Array<[Obj, string]> => {
      const found = object(this, v, where);
      return found ? [[found, `${where}.`]] : [];
    });
  }

  /** The choice element prefix[x] (valueQuantity, onsetDateTime...) read by its type. */
  choice(o: Obj, prefix: string, at: string, needed = false): string | undefined {
    const keys = Object.keys(o).filter(
      (k) => k.startsWith(prefix) && /^[A-Z]/.test(k.slice(prefix.length)) && o[k] !== undefined,
    );
    const key = keys[0];
    if (key === undefined) return needed ? this.warn(`${at}${prefix}[x]: required, but missing`) : undefined;
    if (keys.length > 1) this.warn(`${at}${prefix}[x]: only one of ${keys.join(", ")} may be given`);
    const show = CHOICE_TYPES.get(key.slice(prefix.length));
    return show ? show(this, o[key], at + key) : this.warn(`${at}${key}: this type of value is not shown`);
  }
}

// --- readers of FHIR data types -------------------------------------------------------------------

const object: Show<Obj> = (r, v, where) => (isObj(v) ? v : r.wrong(where, "a JSON object"));
const text: Show = (r, v, where) => (typeof v === "string" ? r.clip(v, where) : r.wrong(where, "a string"));
const decimal: Show<number> = (r, v, where) =>
  typeof v === "number" && Number.isFinite(v) ? v : r.wrong(where, "a number");
const count: Show<number> = (r, v, where) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : r.wrong(where, "a whole number");
const integer: Show = (r, v, where) => count(r, v, where)?.toString();
const boolean: Show = (r, v, where) => (typeof v === "boolean" ? (v ? "yes" : "no") : r.wrong(where, "true or false"));
const date: Show = (r, v, where) => (typeof v === "string" && readableDate(v)) || r.wrong(where, "a FHIR date");
const time: Show = (r, v, where) =>
  typeof v === "string" && /^\d{2}:\d{2}:\d{2}(\.\d+)?$/.test(v) ? v : r.wrong(where, "a FHIR time (hh:mm:ss)");

const period: Show = (r, v, where) => {
  const o = object(r, v, where);
  const start = o && r.get(o, "start", `${where}.`, date);
  const end = o && r.get(o, "end", `${where}.`, date);
  return start && end ? `${start} – ${end}` : start ? `from ${start}` : end && `until ${end}`;
};

const amount: Show<{ value: string; unit?: string }> = (r, v, where) => {
  const o = object(r, v, where);
  const value = o && r.get(o, "value", `${where}.`, decimal);
  if (!o || value === undefined) return undefined;
  const comparator = r.get(o, "comparator", `${where}.`, text) ?? "";
  const unit = r.get(o, "unit", `${where}.`, text) ?? r.get(o, "code", `${where}.`, text);
  return { value: comparator + value, unit };
};
const withUnit = (value: string, unit?: string) => (unit ? `${value} ${unit}` : value);
const quantity: Show = (r, v, where) => {
  const a = amount(r, v, where);
  return a && withUnit(a.value, a.unit);
};

/** low–high of a Range or of an Observation's referenceRange, e.g. "70–99 mg/dL". */
function bounds(r: Reader, o: Obj, at: string): string | undefined {
  const low = r.get(o, "low", at, amount);
  const high = r.get(o, "high", at, amount);
  if (low && high) {
    return low.unit === high.unit
      ? withUnit(`${low.value}–${high.value}`, high.unit)
      : `${withUnit(low.value, low.unit)}–${withUnit(high.value, high.unit)}`;
  }
  return low ? `≥ ${withUnit(low.value, low.unit)}` : high && `≤ ${withUnit(high.value, high.unit)}`;
}
const range: Show = (r, v, where) => {
  const o = object(r, v, where);
  return o && bounds(r, o, `${where}.`);
};
const referenceRange: Show = (r, v, where) => {
  const o = object(r, v, where);
  const shown = o && bounds(r, o, `${where}.`);
  const note = o && r.get(o, "text", `${where}.`, text);
  return shown && note ? `${shown} (${note})` : (shown ?? note);
};
const ratio: Show = (r, v, where) => {
  const o = object(r, v, where);
  const top = o && r.get(o, "numerator", `${where}.`, quantity);
  const bottom = o && r.get(o, "denominator", `${where}.`, quantity);
  return top && bottom && `${top} / ${bottom}`;
};

/** A CodeableConcept's name: its text, else a coding's display, else a coding's code. */
const concept: Show = (r, v, where) => {
  const o = object(r, v, where);
  if (!o) return undefined;
  const codings = r.objects(o, "coding", `${where}.`);
  return (
    r.get(o, "text", `${where}.`, text) ??
    codings.map(([c, at]) => r.get(c, "display", at, text)).find(Boolean) ??
    codings.map(([c, at]) => r.get(c, "code", at, text)).find(Boolean) ??
    r.warn(`${where}: has no text, display or code to show`)
  );
};
const coding: Show = (r, v, where) => {
  const o = object(r, v, where);
  return o && (r.get(o, "display", `${where}.`, text) ?? r.get(o, "code", `${where}.`, text));
};
const reference: Show = (r, v, where) => {
  const o = object(r, v, where);
  return o && (r.get(o, "display", `${where}.`, text) ?? r.get(o, "reference", `${where}.`, text));
};
const annotation: Show = (r, v, where) => {
  const o = object(r, v, where);
  return o && r.get(o, "text", `${where}.`, text, true);
};
const humanName: Show = (r, v, where) => {
  const o = object(r, v, where);
  if (!o) return undefined;
  const at = `${where}.`;
  const parts = [
    ...r.all(o, "prefix", at, text),
    ...r.all(o, "given", at, text),
    r.get(o, "family", at, text),
    ...r.all(o, "suffix", at, text),
  ];
  return r.get(o, "text", at, text) ?? (parts.filter(Boolean).join(" ") || undefined);
};

const UNITS_OF_TIME = new Map([
  ["s", "second"],
  ["min", "minute"],
  ["h", "hour"],
  ["d", "day"],
  ["wk", "week"],
  ["mo", "month"],
  ["a", "year"],
]);
/** How often, from a Timing's repeat ("twice a day", "once every 8 hours"), else its code. */
const timing: Show = (r, v, where) => {
  const o = object(r, v, where);
  if (!o) return undefined;
  const repeat = r.get(o, "repeat", `${where}.`, object);
  const at = `${where}.repeat.`;
  const period = repeat && r.get(repeat, "period", at, decimal);
  const unit = repeat && r.get(repeat, "periodUnit", at, text);
  const name = unit && UNITS_OF_TIME.get(unit);
  if (unit && !name) r.warn(`${at}periodUnit: expected a unit of time (${[...UNITS_OF_TIME.keys()].join(", ")})`);
  if (!repeat || period === undefined || !name) return r.get(o, "code", `${where}.`, concept);
  const frequency = r.get(repeat, "frequency", at, count) ?? 1;
  const times = frequency === 1 ? "once" : frequency === 2 ? "twice" : `${frequency} times`;
  return `${times} ${period === 1 ? `${name === "hour" ? "an" : "a"} ${name}` : `every ${period} ${name}s`}`;
};

// The types of choice elements (value[x], onset[x]...) shown, by the suffix that names them.
const CHOICE_TYPES = new Map<string, Show>([
  ["Quantity", quantity],
  ["Age", quantity],
  ["Duration", quantity],
  ["CodeableConcept", concept],
  ["Coding", coding],
  ["Reference", reference],
  ["String", text],
  ["Boolean", boolean],
  ["Integer", integer],
  ["PositiveInt", integer],
  ["DateTime", date],
  ["Instant", date],
  ["Date", date],
  ["Time", time],
  ["Period", period],
  ["Range", range],
  ["Ratio", ratio],
]);

// --- dates ----------------------------------------------------------------------------------------

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const FHIR_DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2})))?)?)?$/;

/** A FHIR date, dateTime or instant as people read it: "2024", "Mar 2024", "5 Mar 2024",
 * "5 Mar 2024, 14:05 UTC"; undefined if it is not one (or names a day that does not exist). */
function readableDate(value: string): string | undefined {
  const m = FHIR_DATE.exec(value);
  if (!m) return undefined;
  const part = (i: number, otherwise: number) => (m[i] === undefined ? otherwise : Number(m[i]));
  const fields = [part(1, 0), part(2, 1), part(3, 1), part(4, 0), part(5, 0), part(6, 0)];
  const [year, month, day, hour, minute, second] = fields as [number, number, number, number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(year, month - 1, day);
  t.setUTCHours(hour, minute, second);
  const parsed = [t.getUTCFullYear(), t.getUTCMonth() + 1, t.getUTCDate()];
  parsed.push(t.getUTCHours(), t.getUTCMinutes(), t.getUTCSeconds());
  if (parsed.join() !== fields.join()) return undefined; // e.g. 31 February
  if (!m[2]) return m[1];
  if (!m[3]) return `${MONTHS[month - 1]} ${m[1]}`;
  if (!m[4]) return `${day} ${MONTHS[month - 1]} ${m[1]}`;
  const offset = m[8] ? (m[8] === "-" ? -1 : 1) * (part(9, 0) * 60 + part(10, 0)) : 0;
  const utc = new Date(t.getTime() - offset * 60_000);
  const hhmm = [utc.getUTCHours(), utc.getUTCMinutes()].map((n) => String(n).padStart(2, "0")).join(":");
  return `${utc.getUTCDate()} ${MONTHS[utc.getUTCMonth()]} ${utc.getUTCFullYear()}, ${hhmm} UTC`;
}

// --- attachments ----------------------------------------------------------------------------------

// Canonical standard base64: padded, and no bits set past the data in the last character.
const BASE64 = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;

/** The bytes of base64 text (whitespace allowed, as in FHIR's base64Binary); undefined if it is not strict base64. */
function decodeBase64(value: string): Uint8Array | undefined {
  const b64 = value.replace(/\s+/g, "");
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) return undefined;
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function attach(r: Reader, a: Obj, at: string): void {
  let contentType = r.get(a, "contentType", at, text);
  if (contentType && !/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/.test(contentType)) {
    contentType = r.warn(`${at}contentType: expected a media type such as application/pdf`);
  }
  const title = r.get(a, "title", at, text) ?? "Attachment";
  const view: Attachment = { title, contentType: contentType ?? "application/octet-stream" };
  const data = own(a, "data");
  const bytes = typeof data === "string" ? decodeBase64(data) : undefined;
  if (bytes) view.data = bytes;
  if (typeof data === "string") {
    if (!bytes) r.warn(`${at}data: not valid base64, so it cannot be downloaded`);
    else if (!own(a, "contentType")) r.warn(`${at}contentType: required when there is data`);
  } else if (data !== undefined) r.wrong(`${at}data`, "base64 text");
  const url = own(a, "url");
  if (typeof url === "string" && /^https?:\/\//i.test(url) && URL.canParse(url)) view.url = url;
  else if (url !== undefined) r.warn(`${at}url: not an http(s) address, so it is not linked`);
  const size = r.get(a, "size", at, count);
  if (bytes && size !== undefined && size !== bytes.length) {
    r.warn(`${at}size: says ${size} bytes, but the data has ${bytes.length}`);
  }
  const length = bytes?.length ?? size;
  if (length !== undefined) view.size = length;
  r.attachments.push(view);
}

// Extensions for the media types a download keeps; any other type is saved as .bin, so that a
// record cannot make the patient's computer run or render something it chose (.html, .svg, .exe).
const EXTENSIONS = new Map([
  ["application/pdf", "pdf"],
  ["image/jpeg", "jpg"],
  ["image/png", "png"],
  ["image/gif", "gif"],
  ["image/tiff", "tif"],
  ["application/dicom", "dcm"],
  ["text/plain", "txt"],
  ["text/csv", "csv"],
  ["application/json", "json"],
  ["application/fhir+json", "json"],
  ["application/xml", "xml"],
  ["text/xml", "xml"],
  ["application/fhir+xml", "xml"],
  ["audio/mpeg", "mp3"],
  ["video/mp4", "mp4"],
]);
const RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i; // names Windows refuses, whatever the extension

/** A filename to save an attachment under: letters, digits and a few marks of its title, at most
 * 100 characters, no leading dot, and an extension that its content type decides. */
export function safeFilename(title: string, contentType: string): string {
  const extension = EXTENSIONS.get(contentType.split(";")[0]!.trim().toLowerCase()) ?? "bin";
  let base = title
    .slice(0, 1000)
    .normalize("NFKC")
    .replace(/[^\p{L}\p{M}\p{N} ._(),-]+/gu, "_")
    .replace(/ +/g, " ");
  if (base.toLowerCase().endsWith(`.${extension}`)) base = base.slice(0, -extension.length - 1);
  base = Array.from(base.replace(/^[ ._-]+/, "")).slice(0, 100).join("").replace(/[ ._-]+$/, "");
  if (RESERVED.test(base)) base = `_${base}`;
  return `${base || "attachment"}.${extension}`;
}

// --- resources ------------------------------------------------------------------------------------

interface Head {
  title?: string;
  when?: string;
  status?: string;
}

/** An Observation's or a component's value[x], else why it has none. */
const observed = (r: Reader, o: Obj, at: string): string | undefined => {
  const absent = r.get(o, "dataAbsentReason", at, concept);
  return r.choice(o, "value", at) ?? (absent && `no value (${absent})`);
};

const DESCRIBERS = new Map<string, (r: Reader, o: Obj) => Head>([
  [
    "Observation",
    (r, o) => {
      r.fact("Value", observed(r, o, ""));
      for (const [c, at] of r.objects(o, "component", "")) {
        r.fact(r.get(c, "code", at, concept, true) ?? "Component", observed(r, c, at));
      }
      r.fact("Interpretation", r.all(o, "interpretation", "", concept).join(", "));
      for (const shown of r.all(o, "referenceRange", "", referenceRange)) r.fact("Reference range", shown);
      r.fact("Category", r.all(o, "category", "", concept).join(", "));
      return {
        title: r.get(o, "code", "", concept, true),
        when: r.choice(o, "effective", "") ?? r.get(o, "issued", "", date),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
  [
    "Condition",
    (r, o) => {
      r.fact("Verification status", r.get(o, "verificationStatus", "", concept));
      r.fact("Severity", r.get(o, "severity", "", concept));
      r.fact("Body site", r.all(o, "bodySite", "", concept).join(", "));
      r.fact("Abated", r.choice(o, "abatement", ""));
      r.fact("Category", r.all(o, "category", "", concept).join(", "));
      r.fact("Recorded", r.get(o, "recordedDate", "", date));
      return {
        title: r.get(o, "code", "", concept),
        when: r.choice(o, "onset", ""),
        status: r.get(o, "clinicalStatus", "", concept),
      };
    },
  ],
  [
    "MedicationRequest",
    (r, o) => {
      r.fact("Intent", r.get(o, "intent", "", text, true));
      for (const [d, at] of r.objects(o, "dosageInstruction", "")) {
        const doses = r.objects(d, "doseAndRate", at).map(([x, xat]) => r.choice(x, "dose", xat));
        const structured = [...doses, r.get(d, "timing", at, timing)].filter(Boolean).join(", ");
        r.fact("Dosage", r.get(d, "text", at, text) ?? structured);
        r.fact("Route", r.get(d, "route", at, concept));
      }
      r.fact("Reason", r.all(o, "reasonCode", "", concept).join(", "));
      return {
        title: r.choice(o, "medication", "", true),
        when: r.get(o, "authoredOn", "", date),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
  [
    "Immunization",
    (r, o) => {
      r.fact("Dose", r.get(o, "doseQuantity", "", quantity));
      const doses = r.objects(o, "protocolApplied", "").map(([p, at]) => r.choice(p, "doseNumber", at));
      r.fact("Dose number", doses.filter(Boolean).join(", "));
      r.fact("Lot number", r.get(o, "lotNumber", "", text));
      r.fact("Site", r.get(o, "site", "", concept));
      r.fact("Route", r.get(o, "route", "", concept));
      return {
        title: r.get(o, "vaccineCode", "", concept, true),
        when: r.choice(o, "occurrence", "", true),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
  [
    "AllergyIntolerance",
    (r, o) => {
      r.fact("Criticality", r.get(o, "criticality", "", text));
      r.fact("Category", r.all(o, "category", "", text).join(", "));
      for (const [x, at] of r.objects(o, "reaction", "")) {
        const signs = r.all(x, "manifestation", at, concept).join(", ");
        const severity = r.get(x, "severity", at, text);
        r.fact("Reaction", signs && severity ? `${signs} (${severity})` : signs || severity);
      }
      r.fact("Verification status", r.get(o, "verificationStatus", "", concept));
      return {
        title: r.get(o, "code", "", concept),
        when: r.choice(o, "onset", "") ?? r.get(o, "recordedDate", "", date),
        status: r.get(o, "clinicalStatus", "", concept),
      };
    },
  ],
  [
    "DiagnosticReport",
    (r, o) => {
      r.fact("Conclusion", r.get(o, "conclusion", "", text));
      for (const result of r.all(o, "result", "", reference)) r.fact("Result", result);
      r.fact("Category", r.all(o, "category", "", concept).join(", "));
      for (const [a, at] of r.objects(o, "presentedForm", "")) attach(r, a, at);
      return {
        title: r.get(o, "code", "", concept, true),
        when: r.choice(o, "effective", "") ?? r.get(o, "issued", "", date),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
  [
    "DocumentReference",
    (r, o) => {
      r.fact("Description", r.get(o, "description", "", text));
      r.fact("Category", r.all(o, "category", "", concept).join(", "));
      for (const [c, at] of r.objects(o, "content", "", true)) {
        const a = r.get(c, "attachment", at, object, true);
        if (a) attach(r, a, `${at}attachment.`);
      }
      return {
        title: r.get(o, "type", "", concept) ?? "Document",
        when: r.get(o, "date", "", date),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
  [
    "Patient",
    (r, o) => {
      r.fact("Birth date", r.get(o, "birthDate", "", date));
      r.fact("Gender", r.get(o, "gender", "", text));
      return { title: r.all(o, "name", "", humanName)[0] };
    },
  ],
  [
    "Encounter",
    (r, o) => {
      const kind = r.get(o, "class", "", coding, true);
      r.fact("Class", kind);
      r.fact("Reason", r.all(o, "reasonCode", "", concept).join(", "));
      return {
        title: r.all(o, "type", "", concept)[0] ?? kind,
        when: r.get(o, "period", "", period),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
  [
    "Procedure",
    (r, o) => {
      r.fact("Body site", r.all(o, "bodySite", "", concept).join(", "));
      r.fact("Outcome", r.get(o, "outcome", "", concept));
      r.fact("Reason", r.all(o, "reasonCode", "", concept).join(", "));
      return {
        title: r.get(o, "code", "", concept),
        when: r.choice(o, "performed", ""),
        status: r.get(o, "status", "", text, true),
      };
    },
  ],
]);

/** A FHIR R4 resource as plain data for people; anything wrong with it is in `warnings`. */
export function describe(resource: unknown): RecordView {
  const r = new Reader();
  if (!isObj(resource)) r.warn("the record is not a JSON object");
  const o = isObj(resource) ? resource : {};
  const type = own(o, "resourceType");
  const kind = typeof type === "string" && /^[A-Z][A-Za-z]{0,63}$/.test(type) ? type : undefined;
  if (isObj(resource) && !kind) r.warn("resourceType: missing, or not the name of a FHIR resource type");
  const describer = kind === undefined ? undefined : DESCRIBERS.get(kind);
  let head: Head;
  if (describer) {
    head = describer(r, o);
    for (const note of r.all(o, "note", "", annotation)) r.fact("Note", note);
  } else {
    r.warn(`${kind ?? "the record"} is not described here: shown as raw data`);
    head = { title: `${kind ?? "Unknown"} record`, status: r.get(o, "status", "", text) };
  }
  const { facts, attachments, warnings } = r;
  const title = head.title ?? kind ?? "Unknown record";
  const view: RecordView = { kind: kind ?? "Unknown", title, facts, attachments, warnings };
  if (head.when) view.when = head.when;
  if (head.status) view.status = head.status;
  return view;
}

// --- validation for upload ------------------------------------------------------------------------

// medvault.config.DEFAULT_MAX_RECORD_BYTES; the deployment's own limit is maxRecordBytes in the portal's config.json.
const MAX_RECORD_BYTES = 1 << 30;
const MAX_PROBLEMS = 20;

// The resource types of fhir.resources' R4B models, which medvault validates with, each with its
// required elements and then its choice elements: "occurrence[x]!DateTime,String" is
// occurrenceDateTime or occurrenceString, one of which is required ("!"), and never both.
// Printed from medvault.fhir._model (validating {"resourceType": kind}, and get_one_of_many_fields).
const SHAPES_TABLE = `
Account status
ActivityDefinition status product[x]CodeableConcept,Reference subject[x]Canonical,CodeableConcept,Reference timing[x]Age,DateTime,Duration,Period,Range,Timing
AdministrableProductDefinition routeOfAdministration status
AdverseEvent subject actuality
AllergyIntolerance patient onset[x]Age,DateTime,Period,Range,String
Appointment participant status
AppointmentResponse appointment participantStatus
AuditEvent agent source type recorded
Basic code
Binary contentType
BiologicallyDerivedProduct
BodyStructure patient
Bundle type
CapabilityStatement date fhirVersion format kind status
CarePlan subject intent status
CareTeam
CatalogEntry referencedItem orderable
ChargeItem code subject status occurrence[x]DateTime,Period,Timing product[x]CodeableConcept,Reference
ChargeItemDefinition status url
Citation status
Claim insurance patient priority provider type created status use
ClaimResponse insurer patient type created outcome status use
ClinicalImpression subject status effective[x]DateTime,Period
ClinicalUseDefinition type
CodeSystem content status
Communication status
CommunicationRequest status occurrence[x]DateTime,Period
CompartmentDefinition code name search status url
Composition author type date status title
ConceptMap status source[x]Canonical,Uri target[x]Canonical,Uri
Condition subject abatement[x]Age,DateTime,Period,Range,String onset[x]Age,DateTime,Period,Range,String
Consent category scope status source[x]Attachment,Reference
Contract legallyBinding[x]Attachment,Reference topic[x]CodeableConcept,Reference
Coverage beneficiary payor status
CoverageEligibilityRequest insurer patient created purpose status serviced[x]Date,Period
CoverageEligibilityResponse insurer patient request created outcome purpose status serviced[x]Date,Period
DetectedIssue status identified[x]DateTime,Period
Device
DeviceDefinition manufacturer[x]Reference,String
DeviceMetric type category
DeviceRequest subject intent code[x]!CodeableConcept,Reference occurrence[x]DateTime,Period,Timing
DeviceUseStatement device subject status timing[x]DateTime,Period,Timing
DiagnosticReport code status effective[x]DateTime,Period
DocumentManifest content status
DocumentReference content status
Encounter class status
Endpoint connectionType payloadType address status
EnrollmentRequest
EnrollmentResponse
EpisodeOfCare patient status
EventDefinition trigger status subject[x]CodeableConcept,Reference
Evidence variableDefinition status citeAs[x]Markdown,Reference
EvidenceReport subject status citeAs[x]Markdown,Reference
EvidenceVariable status
ExampleScenario status
ExplanationOfBenefit insurance insurer patient provider type created outcome status use
FamilyMemberHistory patient relationship status age[x]Age,Range,String born[x]Date,Period,String deceased[x]Age,Boolean,Date,Range,String
Flag code subject status
Goal description subject lifecycleStatus start[x]CodeableConcept,Date
GraphDefinition name start status
Group actual type
GuidanceResponse status module[x]!Canonical,CodeableConcept,Uri
HealthcareService
ImagingStudy subject status
Immunization patient vaccineCode status occurrence[x]!DateTime,String
ImmunizationEvaluation doseStatus immunizationEvent patient targetDisease status doseNumber[x]PositiveInt,String seriesDoses[x]PositiveInt,String
ImmunizationRecommendation patient recommendation date
ImplementationGuide fhirVersion name packageId status url
Ingredient role substance status
InsurancePlan
Invoice status
Library type status subject[x]CodeableConcept,Reference
Linkage item
List mode status
Location
ManufacturedItemDefinition manufacturedDoseForm status
Measure status subject[x]CodeableConcept,Reference
MeasureReport period measure status type
Media content status created[x]DateTime,Period
Medication
MedicationAdministration subject status effective[x]!DateTime,Period medication[x]!CodeableConcept,Reference
MedicationDispense status medication[x]!CodeableConcept,Reference statusReason[x]CodeableConcept,Reference
MedicationKnowledge
MedicationRequest subject intent status medication[x]!CodeableConcept,Reference reported[x]Boolean,Reference
MedicationStatement subject status effective[x]DateTime,Period medication[x]!CodeableConcept,Reference
MedicinalProductDefinition name
MessageDefinition date status event[x]!Coding,Uri
MessageHeader source event[x]!Coding,Uri
MolecularSequence coordinateSystem
NamingSystem uniqueId date kind name status
NutritionOrder patient dateTime intent status
NutritionProduct status
Observation code status effective[x]DateTime,Instant,Period,Timing value[x]Boolean,CodeableConcept,DateTime,Integer,Period,Quantity,Range,Ratio,SampledData,String,Time
ObservationDefinition code
OperationDefinition code instance kind name status system type
OperationOutcome issue
Organization
OrganizationAffiliation
PackagedProductDefinition
Parameters
Patient deceased[x]Boolean,DateTime multipleBirth[x]Boolean,Integer
PaymentNotice amount payment recipient created status
PaymentReconciliation paymentAmount created paymentDate status
Person
PlanDefinition status subject[x]Canonical,CodeableConcept,Reference
Practitioner
PractitionerRole
Procedure subject status performed[x]Age,DateTime,Period,Range,String
Provenance agent target recorded occurred[x]DateTime,Period
Questionnaire status
QuestionnaireResponse status
RegulatedAuthorization
RelatedPerson patient
RequestGroup intent status
ResearchDefinition population status subject[x]CodeableConcept,Reference
ResearchElementDefinition characteristic status type subject[x]CodeableConcept,Reference
ResearchStudy status
ResearchSubject individual study status
RiskAssessment subject status occurrence[x]DateTime,Period
Schedule actor
SearchParameter base code description name status type url
ServiceRequest subject intent status asNeeded[x]Boolean,CodeableConcept occurrence[x]DateTime,Period,Timing quantity[x]Quantity,Range,Ratio
Slot schedule end start status
Specimen
SpecimenDefinition
StructureDefinition abstract kind name status type url
StructureMap group name status url
Subscription channel criteria reason status
SubscriptionStatus subscription type
SubscriptionTopic status url
Substance code
SubstanceDefinition
SupplyDelivery occurrence[x]DateTime,Period,Timing
SupplyRequest quantity item[x]!CodeableConcept,Reference occurrence[x]DateTime,Period,Timing
Task intent status
TerminologyCapabilities date kind status
TestReport testScript result status
TestScript name status url
ValueSet status
VerificationResult status
VisionPrescription lensSpecification patient prescriber created dateWritten status
`;
const SHAPES = new Map(
  SHAPES_TABLE.trim()
    .split("\n")
    .map((line) => {
      const [kind, ...elements] = line.split(" ");
      return [kind!, elements];
    }),
);

const TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/";
// medvault.fhir.rules.BINDINGS: [path, value set, codes]; concept paths are CodeableConcepts whose
// coding from TERMINOLOGY + value set must use one of the codes.
type Binding = [path: string, valueSet: string, codes: string, concept?: "concept"];
const BINDINGS = new Map<string, Binding[]>([
  [
    "Observation",
    [["status", "observation-status", "registered preliminary final amended corrected cancelled entered-in-error unknown"]],
  ],
  [
    "DiagnosticReport",
    [
      [
        "status",
        "diagnostic-report-status",
        "registered partial preliminary final amended corrected appended cancelled entered-in-error unknown",
      ],
    ],
  ],
  [
    "Condition",
    [
      ["clinicalStatus", "condition-clinical", "active recurrence relapse inactive remission resolved", "concept"],
      [
        "verificationStatus",
        "condition-ver-status",
        "unconfirmed provisional differential confirmed refuted entered-in-error",
        "concept",
      ],
    ],
  ],
  [
    "MedicationRequest",
    [
      ["status", "medicationrequest-status", "active on-hold cancelled completed entered-in-error stopped draft unknown"],
      [
        "intent",
        "medicationrequest-intent",
        "proposal plan order original-order reflex-order filler-order instance-order option",
      ],
    ],
  ],
  [
    "MedicationStatement",
    [["status", "medication-statement-status", "active completed entered-in-error intended stopped on-hold unknown not-taken"]],
  ],
  ["Immunization", [["status", "immunization-status", "completed entered-in-error not-done"]]],
  [
    "AllergyIntolerance",
    [
      ["clinicalStatus", "allergyintolerance-clinical", "active inactive resolved", "concept"],
      [
        "verificationStatus",
        "allergyintolerance-verification",
        "unconfirmed confirmed refuted entered-in-error",
        "concept",
      ],
      ["type", "allergy-intolerance-type", "allergy intolerance"],
      ["category", "allergy-intolerance-category", "food medication environment biologic"],
      ["criticality", "allergy-intolerance-criticality", "low high unable-to-assess"],
      ["reaction.severity", "reaction-event-severity", "mild moderate severe"],
    ],
  ],
  ["ImagingStudy", [["status", "imagingstudy-status", "registered available cancelled entered-in-error unknown"]]],
  [
    "DocumentReference",
    [
      ["status", "document-reference-status", "current superseded entered-in-error"],
      ["docStatus", "composition-status", "preliminary final amended entered-in-error"],
    ],
  ],
  ["Composition", [["status", "composition-status", "preliminary final amended entered-in-error"]]],
  ["Consent", [["status", "consent-state-codes", "draft proposed active rejected inactive entered-in-error"]]],
  ["Patient", [["gender", "administrative-gender", "male female other unknown"]]],
]);

/** [where, value] of each element at path under value, walking lists (rules._at). */
function* elementsAt(value: unknown, path: string[], where: string): Generator<[string, unknown]> {
  const [name, ...rest] = path;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) yield* elementsAt(item, path, `${where}[${i}]`);
  } else if (name === undefined) {
    yield [where, value];
  } else if (isObj(value) && Object.hasOwn(value, name)) {
    yield* elementsAt(value[name], rest, where ? `${where}.${name}` : name);
  }
}

function bindingProblems(resource: Obj, [path, valueSet, codeList, isConcept]: Binding): string[] {
  const codes = codeList.split(" ");
  const allowed = `${valueSet} (${codes.join(", ")})`;
  const system = TERMINOLOGY + valueSet;
  return [...elementsAt(resource, path.split("."), "")].flatMap(([where, value]) => {
    if (!isConcept) {
      return typeof value === "string" && !codes.includes(value) ? [`${where}: not a code of ${allowed}`] : [];
    }
    const codings = isObj(value) && Array.isArray(value.coding) ? (value.coding as unknown[]) : [];
    const ours = [...codings.entries()].filter(([, c]) => isObj(c) && c.system === system);
    if (ours.length === 0) return [`${where}: needs a coding from ${system} (${codes.join(", ")})`];
    return ours.flatMap(([i, c]) =>
      codes.includes((c as Obj).code as string) ? [] : [`${where}.coding[${i}].code: not a code of ${allowed}`],
    );
  });
}

/** The codes of a CodeableConcept's codings from system (rules._codes). */
function codesOf(concept: unknown, system: string): string[] {
  const codings = isObj(concept) && Array.isArray(concept.coding) ? (concept.coding as unknown[]) : [];
  return codings.flatMap((c) => (isObj(c) && c.system === system && typeof c.code === "string" ? [c.code] : []));
}

/** R4's invariants between the clinical and verification statuses (con-4, con-5, ait-1, ait-2:
 * rules._status_invariants). */
function statusProblems(resource: Obj, kind: string): string[] {
  if (kind !== "Condition" && kind !== "AllergyIntolerance") return [];
  const condition = kind === "Condition";
  const system = TERMINOLOGY + (condition ? "condition-" : "allergyintolerance-");
  const clinical = own(resource, "clinicalStatus") ?? null;
  const verification = own(resource, "verificationStatus");
  if (codesOf(verification, system + (condition ? "ver-status" : "verification")).includes("entered-in-error")) {
    return clinical === null ? [] : ["clinicalStatus: must be absent when verificationStatus is entered-in-error"];
  }
  if (!condition) {
    return clinical === null ? ["clinicalStatus: required unless verificationStatus is entered-in-error"] : [];
  }
  const abated = Object.keys(resource).some((key) => key.startsWith("abatement"));
  const settled = codesOf(clinical, `${system}clinical`).some((c) => ["inactive", "resolved", "remission"].includes(c));
  return abated && !settled
    ? ["clinicalStatus: a condition with an abatement must be inactive, resolved or remission"]
    : [];
}

/** Keys that cannot be FHIR elements anywhere ("__proto__", "a-b", "Code"): FHIR names are lowerCamelCase. */
function foreignKeys(resource: Obj): string[] {
  const found: string[] = [];
  const stack: Array<[unknown, string]> = [[resource, ""]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [value, where] = next;
    if (Array.isArray(value)) value.forEach((item, i) => stack.push([item, `${where}[${i}]`]));
    else if (isObj(value)) {
      for (const [key, item] of Object.entries(value)) {
        const path = where ? `${where}.${key}` : key;
        if (/^_?[a-z][A-Za-z0-9_]*$/.test(key)) stack.push([item, path]);
        else found.push(`${path.slice(0, 200)}: not an element of this resource type in FHIR R4`);
      }
    }
  }
  return found;
}

function shapeProblems(resource: Obj, elements: string[]): string[] {
  const given = (name: string) => {
    const extension = own(resource, `_${name}`);
    return (own(resource, name) ?? null) !== null || (isObj(extension) && Boolean(extension.extension));
  };
  return elements.flatMap((element) => {
    const choice = /^(\w+)\[x\](!?)([\w,]+)$/.exec(element);
    if (!choice) return given(element) ? [] : [`${element}: required, but missing`];
    const [, prefix, required, types] = choice;
    const names = types!.split(",").map((type) => prefix! + type);
    const present = names.filter(given);
    if (present.length > 1) return [`${prefix}[x]: only one of ${present.join(", ")} may be given`];
    return present.length === 0 && required ? [`${prefix}[x]: required, but missing (one of ${names.join(", ")})`] : [];
  });
}

/** What a JSON value that is not an object is, in the Python validator's words. */
function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a JSON array";
  return typeof value === "string" ? "a JSON string" : typeof value === "number" ? "a number" : "true or false";
}

/** The resource in `json` if medvault would take it from a provider: within the record size limit,
 * a JSON object of a known resourceType, with its required elements, one value per choice element,
 * the required codes of its status-like elements and the invariants between a Condition's or an
 * AllergyIntolerance's statuses; else an error naming what is wrong, in the words of
 * medvault.fhir.validate_resource. The Python validation checks more, which is not mirrored here:
 * every element's name and type (here only names that no FHIR element has), and the vital-signs profiles. */
export function validateForUpload(json: string, maxBytes = MAX_RECORD_BYTES): { resource: object } | { error: string } {
  const bytes = utf8(json).length;
  if (bytes > maxBytes) {
    const [size, limit] = [bytes, maxBytes].map((n) => n.toLocaleString("en-US"));
    return { error: `the resource is ${size} bytes, over the limit of ${limit} bytes a record may have` };
  }
  if (!json.trim()) return { error: "the file is empty: a FHIR resource is a JSON object" };
  let resource: unknown;
  try {
    resource = JSON.parse(json);
  } catch (e) {
    const message = e instanceof Error ? e.message : "";
    // V8 quotes the JSON around a bad token; records are health data, so the message is kept only if it quotes nothing.
    return { error: message && !message.includes('"') ? `not valid JSON: ${message}` : "not valid JSON" };
  }
  if (!isObj(resource)) {
    return { error: `resource is not valid FHIR R4: a FHIR resource is a JSON object, not ${jsonType(resource)}` };
  }
  const kind = own(resource, "resourceType");
  if (kind === undefined || kind === null) {
    return { error: 'resource is not valid FHIR R4: resourceType is missing (e.g. "resourceType": "Observation")' };
  }
  if (typeof kind !== "string" || !SHAPES.has(kind)) {
    const named = typeof kind === "string" ? `'${kind}'` : JSON.stringify(kind);
    const shown = named.length > 80 ? `${named.slice(0, 80)}…` : named;
    return { error: `resource is not valid FHIR R4: unknown resourceType ${shown}` };
  }
  const found = [
    ...foreignKeys(resource),
    ...shapeProblems(resource, SHAPES.get(kind) ?? []),
    ...(BINDINGS.get(kind) ?? []).flatMap((binding) => bindingProblems(resource, binding)),
    ...statusProblems(resource, kind),
  ];
  const problems = [...new Set(found)];
  if (problems.length === 0) return { resource };
  const listed = problems.slice(0, MAX_PROBLEMS).join("; ");
  const more = problems.length > MAX_PROBLEMS ? `; and ${problems.length - MAX_PROBLEMS} more problems` : "";
  return { error: `${kind} is not valid FHIR R4: ${listed}${more}` };
}
