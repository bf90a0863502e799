import { describe as group, expect, it } from "vitest";
import { describe, safeFilename, validateForUpload, type RecordView } from "../src/fhir";

// Records as medvault.dev.synthetic makes them (seed 7), and the resource types it does not make
// written in the same style.
const PATIENT_REF = { reference: "Patient/892f902b-d23f-4824-928b-2f330c5c7fd0" };
const UCUM = "http://unitsofmeasure.org";
const TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/";
const hl7 = (system: string, code: string, display: string) => ({ coding: [{ system: TERMINOLOGY + system, code, display }] });
const concept = (system: string, code: string, display: string, text = display) => ({ coding: [{ system, code, display }], text });
const quantity = (value: number, unit: string) => ({ value, unit, system: UCUM, code: unit });

const patient = {
  resourceType: "Patient",
  id: "892f902b-d23f-4824-928b-2f330c5c7fd0",
  identifier: [
    {
      use: "usual",
      type: { ...hl7("v2-0203", "MR", "Medical record number"), text: "Medical record number" },
      system: "urn:oid:2.16.840.1.113883.19.5",
      value: "22633920",
    },
  ],
  active: true,
  name: [{ use: "official", family: "Patel", given: ["Carlos", "Hiroshi"] }],
  gender: "male",
  birthDate: "1947-02-11",
};

const creatinine = {
  resourceType: "Observation",
  id: "2607679d-6050-414a-9d33-a01c353c631c",
  status: "final",
  category: [hl7("observation-category", "laboratory", "Laboratory")],
  code: concept("http://loinc.org", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma"),
  subject: PATIENT_REF,
  effectiveDateTime: "2012-10-08T14:45:00+00:00",
  issued: "2012-10-08T17:20:00+00:00",
  valueQuantity: quantity(0.59, "mg/dL"),
  interpretation: [hl7("v3-ObservationInterpretation", "L", "Low")],
  referenceRange: [{ low: quantity(0.6, "mg/dL"), high: quantity(1.3, "mg/dL") }],
};

const bloodPressure = {
  resourceType: "Observation",
  id: "dd2e1609-6e36-4ab0-91bc-52d9230d977e",
  status: "final",
  category: [hl7("observation-category", "vital-signs", "Vital Signs")],
  code: concept("http://loinc.org", "85354-9", "Blood pressure panel with all children optional"),
  subject: PATIENT_REF,
  effectiveDateTime: "2021-08-18T08:40:00+00:00",
  component: [
    { code: concept("http://loinc.org", "8480-6", "Systolic blood pressure"), valueQuantity: quantity(117, "mm[Hg]") },
    { code: concept("http://loinc.org", "8462-4", "Diastolic blood pressure"), valueQuantity: quantity(68, "mm[Hg]") },
  ],
};

const sinusitis = {
  resourceType: "Condition",
  id: "5d39d0a8-9a2e-480f-98ee-8571f4998d7c",
  clinicalStatus: hl7("condition-clinical", "resolved", "Resolved"),
  category: [hl7("condition-category", "encounter-diagnosis", "Encounter Diagnosis")],
  onsetDateTime: "2013-04-01T09:25:00+00:00",
  abatementDateTime: "2013-04-21T09:25:00+00:00",
  verificationStatus: hl7("condition-ver-status", "confirmed", "Confirmed"),
  code: concept("http://snomed.info/sct", "444814009", "Viral sinusitis (disorder)", "Viral sinusitis"),
  subject: PATIENT_REF,
  recordedDate: "2013-04-01T09:25:00+00:00",
};

const metformin = {
  resourceType: "MedicationRequest",
  id: "0a097c97-6bf4-4c69-bd2c-af82eeeacbe2",
  status: "completed",
  intent: "order",
  medicationCodeableConcept: concept(
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "860975",
    "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
  ),
  subject: PATIENT_REF,
  authoredOn: "2015-02-27T14:15:00+00:00",
  reasonCode: [concept("http://snomed.info/sct", "44054006", "Diabetes mellitus type 2 (disorder)", "Diabetes mellitus type 2")],
  dosageInstruction: [
    {
      sequence: 1,
      text: "1 tablet by mouth daily with supper",
      timing: { repeat: { frequency: 1, period: 1, periodUnit: "d" } },
      asNeededBoolean: false,
    },
  ],
};

const tdap = {
  resourceType: "Immunization",
  id: "0f88080b-10a3-46b2-aa05-e11ab2715945",
  status: "completed",
  vaccineCode: concept("http://hl7.org/fhir/sid/cvx", "115", "Tdap"),
  patient: PATIENT_REF,
  occurrenceDateTime: "2017-07-13T14:15:00+00:00",
  primarySource: true,
  lotNumber: "86EFU7",
  doseQuantity: quantity(0.5, "mL"),
};

const peanuts = {
  resourceType: "AllergyIntolerance",
  id: "ae2eb154-7f15-4524-b4b9-b5df9e7769b1",
  clinicalStatus: hl7("allergyintolerance-clinical", "active", "Active"),
  verificationStatus: hl7("allergyintolerance-verification", "confirmed", "Confirmed"),
  type: "allergy",
  category: ["food"],
  criticality: "high",
  code: concept("http://snomed.info/sct", "91935009", "Allergy to peanuts (finding)", "Allergy to peanuts"),
  patient: PATIENT_REF,
  recordedDate: "2011-11-26T08:15:00+00:00",
  reaction: [{ manifestation: [concept("http://snomed.info/sct", "39579001", "Anaphylaxis")], severity: "severe" }],
};

const PDF = "%PDF-1.4 lipid panel";
const cbc = {
  resourceType: "DiagnosticReport",
  id: "ae3a2b7f-dfe0-4893-b3ae-d0b6c7ac1491",
  status: "final",
  category: [hl7("v2-0074", "LAB", "Laboratory")],
  code: concept("http://loinc.org", "58410-2", "CBC panel - Blood by Automated count"),
  subject: PATIENT_REF,
  effectiveDateTime: "2019-10-23T14:35:00+00:00",
  issued: "2019-10-24T08:15:00+00:00",
  result: [
    { reference: "Observation/a8948c89-3b61-4676-a6bb-7dbd2d1c9af0", display: "Leukocytes [#/volume] in Blood by Automated count" },
    { reference: "Observation/88daf401-6b40-43ef-a54b-0c4e010c4759", display: "Hemoglobin [Mass/volume] in Blood" },
    { reference: "Observation/def88334-e647-4b8f-b4e6-9a5d0dd27a65" },
  ],
  conclusion: "Mild normocytic anemia.",
  presentedForm: [{ contentType: "application/pdf", title: "CBC report.pdf", data: btoa(PDF), size: PDF.length }],
};

const dischargeNote = {
  resourceType: "DocumentReference",
  id: "6f0c3f4e-2a51-4d1e-9c56-2b1a0d8e7f10",
  status: "current",
  docStatus: "final",
  type: concept("http://loinc.org", "18842-5", "Discharge summary"),
  category: [{ coding: [{ system: "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", code: "clinical-note", display: "Clinical Note" }] }],
  subject: PATIENT_REF,
  date: "2024-03-05T16:30:00+01:00",
  description: "Discharge after knee arthroscopy",
  content: [
    { attachment: { contentType: "text/plain; charset=utf-8", title: "Summary", data: "SGVs\nbG8=" } },
    { attachment: { contentType: "image/jpeg", title: "Knee", url: "https://pacs.example.org/wado/1.2.3", size: 48213 } },
  ],
};

const visit = {
  resourceType: "Encounter",
  id: "b1c2d3e4-0000-4000-8000-000000000001",
  status: "finished",
  class: { system: "http://terminology.hl7.org/CodeSystem/v3-ActCode", code: "AMB", display: "ambulatory" },
  type: [concept("http://snomed.info/sct", "185349003", "Encounter for check up (procedure)", "Check-up")],
  subject: PATIENT_REF,
  period: { start: "2024-03-05T09:00:00+00:00", end: "2024-03-05T09:30:00+00:00" },
  reasonCode: [concept("http://snomed.info/sct", "38341003", "Hypertensive disorder, systemic arterial (disorder)", "Hypertension")],
};

const arthroscopy = {
  resourceType: "Procedure",
  id: "b1c2d3e4-0000-4000-8000-000000000002",
  status: "completed",
  code: concept("http://snomed.info/sct", "76916001", "Arthroscopy of knee (procedure)", "Knee arthroscopy"),
  subject: PATIENT_REF,
  performedPeriod: { start: "2024-03-04T08:00:00Z", end: "2024-03-04T09:10:00Z" },
  bodySite: [concept("http://snomed.info/sct", "72696002", "Knee region structure (body structure)", "Left knee")],
  outcome: concept("http://snomed.info/sct", "385669000", "Successful (qualifier value)", "Successful"),
  note: [{ text: "No complications." }],
};

const FIXTURES: Record<string, object> = {
  patient,
  creatinine,
  bloodPressure,
  sinusitis,
  metformin,
  tdap,
  peanuts,
  cbc,
  dischargeNote,
  visit,
  arthroscopy,
};

const fact = (view: RecordView, label: string) => view.facts.filter((f) => f.label === label).map((f) => f.value);
const json = (value: unknown) => JSON.stringify(value);
const clone = <T>(value: T): T => structuredClone(value);

group("describe: the resources medvault records", () => {
  it("Observation: a lab result with its unit, interpretation and reference range", () => {
    expect(describe(creatinine)).toEqual({
      kind: "Observation",
      title: "Creatinine [Mass/volume] in Serum or Plasma",
      when: "8 Oct 2012, 14:45 UTC",
      status: "final",
      facts: [
        { label: "Value", value: "0.59 mg/dL" },
        { label: "Interpretation", value: "Low" },
        { label: "Reference range", value: "0.6–1.3 mg/dL" },
        { label: "Category", value: "Laboratory" },
      ],
      attachments: [],
      warnings: [],
    });
  });

  it("Observation: blood pressure shows its systolic and diastolic components", () => {
    const view = describe(bloodPressure);
    expect(view.title).toBe("Blood pressure panel with all children optional");
    expect(fact(view, "Systolic blood pressure")).toEqual(["117 mm[Hg]"]);
    expect(fact(view, "Diastolic blood pressure")).toEqual(["68 mm[Hg]"]);
    expect(view.warnings).toEqual([]);
  });

  it("Observation: coded, text, ranged and absent values; a date with an offset is shown in UTC", () => {
    const base = { resourceType: "Observation", status: "final", code: { coding: [{ system: "http://loinc.org", code: "883-9" }] } };
    const blood = describe({ ...base, valueCodeableConcept: concept("http://snomed.info/sct", "112144000", "Blood group A (finding)", "Group A"), effectiveDateTime: "2024-01-01T01:30:00+02:00" });
    expect(blood.title).toBe("883-9"); // no text and no display: the code
    expect(fact(blood, "Value")).toEqual(["Group A"]);
    expect(blood.when).toBe("31 Dec 2023, 23:30 UTC");
    expect(fact(describe({ ...base, valueString: "trace" }), "Value")).toEqual(["trace"]);
    const ranged = describe({ ...base, valueQuantity: { value: 7, comparator: ">", unit: "mmol/L" }, referenceRange: [{ high: quantity(5.6, "mmol/L"), text: "fasting" }, { text: "non-fasting: under 7.8" }] });
    expect(fact(ranged, "Value")).toEqual([">7 mmol/L"]);
    expect(fact(ranged, "Reference range")).toEqual(["≤ 5.6 mmol/L (fasting)", "non-fasting: under 7.8"]);
    const absent = describe({ ...base, dataAbsentReason: hl7("data-absent-reason", "asked-declined", "Asked But Declined"), effectivePeriod: { start: "2024-01-01" } });
    expect(fact(absent, "Value")).toEqual(["no value (Asked But Declined)"]);
    expect(absent.when).toBe("from 1 Jan 2024");
    expect(describe({ ...base, issued: "2024-05-02T10:00:00.123Z" }).when).toBe("2 May 2024, 10:00 UTC");
  });

  it("Condition: clinical and verification status, onset, abatement, severity and body site", () => {
    const view = describe({ ...sinusitis, severity: concept("http://snomed.info/sct", "255604002", "Mild"), bodySite: [{ text: "Maxillary sinus" }] });
    expect(view).toMatchObject({ kind: "Condition", title: "Viral sinusitis", when: "1 Apr 2013, 09:25 UTC", status: "Resolved", warnings: [] });
    expect(view.facts).toEqual([
      { label: "Verification status", value: "Confirmed" },
      { label: "Severity", value: "Mild" },
      { label: "Body site", value: "Maxillary sinus" },
      { label: "Abated", value: "21 Apr 2013, 09:25 UTC" },
      { label: "Category", value: "Encounter Diagnosis" },
      { label: "Recorded", value: "1 Apr 2013, 09:25 UTC" },
    ]);
    expect(describe({ ...sinusitis, onsetAge: { value: 45, unit: "a" }, onsetDateTime: undefined }).when).toBe("45 a");
  });

  it("MedicationRequest: the medication, the sig text, intent and reason", () => {
    const view = describe(metformin);
    expect(view).toMatchObject({ title: "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet", when: "27 Feb 2015, 14:15 UTC", status: "completed", warnings: [] });
    expect(view.facts).toEqual([
      { label: "Intent", value: "order" },
      { label: "Dosage", value: "1 tablet by mouth daily with supper" },
      { label: "Reason", value: "Diabetes mellitus type 2" },
    ]);
  });

  it("MedicationRequest: a structured dose, how often, and the route", () => {
    const dose = (repeat: object) => ({ doseAndRate: [{ doseQuantity: { value: 2, unit: "puff" } }], timing: { repeat }, route: { text: "Inhalation" } });
    const view = describe({
      ...metformin,
      medicationCodeableConcept: undefined,
      medicationReference: { reference: "Medication/fluticasone", display: "fluticasone 44 mcg inhaler" },
      dosageInstruction: [dose({ frequency: 2, period: 1, periodUnit: "d" }), dose({ frequency: 1, period: 8, periodUnit: "h" }), dose({ period: 1, periodUnit: "h" })],
    });
    expect(view.title).toBe("fluticasone 44 mcg inhaler");
    expect(fact(view, "Dosage")).toEqual(["2 puff, twice a day", "2 puff, once every 8 hours", "2 puff, once an hour"]);
    expect(fact(view, "Route")).toEqual(["Inhalation", "Inhalation", "Inhalation"]);
    expect(view.warnings).toEqual([]);
  });

  it("Immunization: vaccine, occurrence, lot number, dose and dose number", () => {
    const view = describe({ ...tdap, protocolApplied: [{ series: "Tdap booster", doseNumberPositiveInt: 2 }] });
    expect(view).toMatchObject({ kind: "Immunization", title: "Tdap", when: "13 Jul 2017, 14:15 UTC", status: "completed", warnings: [] });
    expect(view.facts).toEqual([
      { label: "Dose", value: "0.5 mL" },
      { label: "Dose number", value: "2" },
      { label: "Lot number", value: "86EFU7" },
    ]);
    expect(describe({ ...tdap, occurrenceDateTime: undefined, occurrenceString: "childhood" }).when).toBe("childhood");
  });

  it("AllergyIntolerance: substance, criticality, reaction and clinical status", () => {
    const view = describe(peanuts);
    expect(view).toMatchObject({ title: "Allergy to peanuts", when: "26 Nov 2011, 08:15 UTC", status: "Active", warnings: [] });
    expect(view.facts).toEqual([
      { label: "Criticality", value: "high" },
      { label: "Category", value: "food" },
      { label: "Reaction", value: "Anaphylaxis (severe)" },
      { label: "Verification status", value: "Confirmed" },
    ]);
  });

  it("DiagnosticReport: conclusion, results and the presented form as an attachment", () => {
    const view = describe(cbc);
    expect(view).toMatchObject({ title: "CBC panel - Blood by Automated count", when: "23 Oct 2019, 14:35 UTC", status: "final", warnings: [] });
    expect(fact(view, "Conclusion")).toEqual(["Mild normocytic anemia."]);
    expect(fact(view, "Result")).toEqual([
      "Leukocytes [#/volume] in Blood by Automated count",
      "Hemoglobin [Mass/volume] in Blood",
      "Observation/def88334-e647-4b8f-b4e6-9a5d0dd27a65",
    ]);
    expect(view.attachments).toEqual([{ title: "CBC report.pdf", contentType: "application/pdf", data: new TextEncoder().encode(PDF), size: PDF.length }]);
  });

  it("DocumentReference: its attachments, inline (base64 with line breaks) or by https address", () => {
    const view = describe(dischargeNote);
    expect(view).toMatchObject({ title: "Discharge summary", when: "5 Mar 2024, 15:30 UTC", status: "current", warnings: [] });
    expect(fact(view, "Description")).toEqual(["Discharge after knee arthroscopy"]);
    expect(view.attachments).toEqual([
      { title: "Summary", contentType: "text/plain; charset=utf-8", data: new TextEncoder().encode("Hello"), size: 5 },
      { title: "Knee", contentType: "image/jpeg", url: "https://pacs.example.org/wado/1.2.3", size: 48213 },
    ]);
  });

  it("Patient: name, birth date and gender", () => {
    expect(describe(patient)).toEqual({
      kind: "Patient",
      title: "Carlos Hiroshi Patel",
      facts: [
        { label: "Birth date", value: "11 Feb 1947" },
        { label: "Gender", value: "male" },
      ],
      attachments: [],
      warnings: [],
    });
    expect(describe({ resourceType: "Patient", name: [{ text: "Dr. Amara Okafor" }], birthDate: "1980-04" })).toMatchObject({ title: "Dr. Amara Okafor", facts: [{ label: "Birth date", value: "Apr 1980" }] });
  });

  it("Encounter: type, class, period and reason", () => {
    const view = describe(visit);
    expect(view).toMatchObject({ title: "Check-up", when: "5 Mar 2024, 09:00 UTC – 5 Mar 2024, 09:30 UTC", status: "finished", warnings: [] });
    expect(view.facts).toEqual([
      { label: "Class", value: "ambulatory" },
      { label: "Reason", value: "Hypertension" },
    ]);
    expect(describe({ ...visit, type: undefined }).title).toBe("ambulatory");
  });

  it("Procedure: code, when it was performed, body site, outcome and notes", () => {
    const view = describe(arthroscopy);
    expect(view).toMatchObject({ title: "Knee arthroscopy", when: "4 Mar 2024, 08:00 UTC – 4 Mar 2024, 09:10 UTC", status: "completed", warnings: [] });
    expect(view.facts).toEqual([
      { label: "Body site", value: "Left knee" },
      { label: "Outcome", value: "Successful" },
      { label: "Note", value: "No complications." },
    ]);
  });

  it("another resource type is shown as raw data, with its kind", () => {
    const view = describe({ resourceType: "Claim", status: "active", use: "claim" });
    expect(view).toMatchObject({ kind: "Claim", title: "Claim record", status: "active", facts: [], attachments: [] });
    expect(view.warnings).toEqual(["Claim is not described here: shown as raw data"]);
  });
});

group("describe: hostile records", () => {
  it("never throws on what is not a resource", () => {
    for (const value of [null, undefined, 0, "Observation", [], [creatinine], true, {}, { resourceType: 42 }, new Date()]) {
      const view = describe(value);
      expect(view.kind).toBe("Unknown");
      expect(view.warnings.at(-1)).toContain("shown as raw data");
    }
  });

  it("turns a wrong type at every element of every resource into a warning, never an exception", () => {
    const replacements = [null, 7, -1.5, "x", "", true, [], [null, 3], {}, JSON.parse('{"__proto__": 1}') as unknown];
    let cases = 0;
    const paths = (value: unknown, at: Array<string | number>): Array<Array<string | number>> =>
      typeof value !== "object" || value === null
        ? [at]
        : [at, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...at, Array.isArray(value) ? Number(k) : k]))];
    for (const resource of Object.values(FIXTURES)) {
      for (const path of paths(resource, []).slice(1)) {
        for (const replacement of replacements) {
          const copy = clone(resource) as Record<string | number, unknown>;
          let parent = copy;
          for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
          parent[path.at(-1)!] = replacement;
          const view = describe(copy);
          expect(typeof view.title).toBe("string");
          for (const f of view.facts) expect(typeof f.label === "string" && typeof f.value === "string" && f.value !== "").toBe(true);
          cases++;
        }
      }
    }
    expect(cases).toBeGreaterThan(2000);
  });

  it("names what is wrong: element by element", () => {
    const view = describe({
      resourceType: "Observation",
      status: 7,
      code: "glucose",
      valueQuantity: { value: "5.4", unit: "mmol/L" },
      interpretation: { text: "High" },
      component: ["systolic", { code: { coding: "8480-6" }, valueQuantity: quantity(120, "mm[Hg]") }],
      effectiveDateTime: "2024-02-30",
    });
    expect(view.title).toBe("Observation");
    expect(view.when).toBeUndefined();
    expect(view.status).toBeUndefined();
    expect(view.facts).toEqual([{ label: "Component", value: "120 mm[Hg]" }]);
    expect(view.warnings).toEqual(
      expect.arrayContaining([
        "status: expected a string",
        "code: expected a JSON object",
        "valueQuantity.value: expected a number",
        "interpretation: expected a list",
        "component[0]: expected a JSON object",
        "component[1].code.coding: expected a list",
        "component[1].code: has no text, display or code to show",
        "effectiveDateTime: expected a FHIR date",
      ]),
    );
  });

  it("warns about a missing required element", () => {
    expect(describe({ resourceType: "Observation" }).warnings).toEqual(["code: required, but missing", "status: required, but missing"]);
    expect(describe({ resourceType: "Immunization", status: "completed", vaccineCode: { text: "Tdap" } }).warnings).toEqual(["occurrence[x]: required, but missing"]);
    expect(describe({ resourceType: "DocumentReference", status: "current" }).warnings).toEqual(["content: required, but missing"]);
  });

  it("warns when a choice element is given twice, or in a type it does not show", () => {
    const view = describe({ ...creatinine, valueString: "low" });
    expect(view.warnings).toEqual(["value[x]: only one of valueQuantity, valueString may be given"]);
    expect(describe({ ...creatinine, valueQuantity: undefined, valueSampledData: { data: "1 2 3" } }).warnings).toEqual(["valueSampledData: this type of value is not shown"]);
  });

  it("reads own properties only: __proto__ keys and inherited properties are not data", () => {
    const parsed = JSON.parse(
      '{"resourceType":"Observation","__proto__":{"status":"final","polluted":true},"code":{"__proto__":{"text":"Injected"},"coding":[{"code":"2345-7"}]},"valueQuantity":{"value":5,"unit":"mmol/L","constructor":{"prototype":{"polluted":true}}}}',
    ) as unknown;
    const view = describe(parsed);
    expect(view.title).toBe("2345-7");
    expect(view.status).toBeUndefined();
    expect(fact(view, "Value")).toEqual(["5 mmol/L"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(describe(Object.create(creatinine) as unknown).kind).toBe("Unknown");
    expect(describe({ resourceType: "constructor" }).kind).toBe("Unknown");
    expect(describe({ resourceType: "toString" }).kind).toBe("Unknown");
    expect(describe({ resourceType: '<img src=x onerror="alert(1)">' }).kind).toBe("Unknown");
    expect(describe({ ...creatinine, valueQuantity: undefined, valueConstructor: 1 }).warnings).toEqual(["valueConstructor: this type of value is not shown"]);
  });

  it("cuts huge texts, caps huge lists and the number of warnings", () => {
    const huge = "A".repeat(5_000_000);
    const view = describe({ ...creatinine, code: { text: huge } });
    expect(view.title.length).toBe(2001);
    expect(view.title.endsWith("…")).toBe(true);
    expect(view.warnings).toEqual(["code.text: shortened to 2000 characters"]);
    const many = describe({ ...bloodPressure, component: Array.from({ length: 10_000 }, (_, i) => ({ code: { text: `c${i}` }, valueInteger: i })) });
    expect(many.facts).toHaveLength(101); // 100 components and the category
    expect(many.warnings).toEqual(["component: only the first 100 of 10000 are shown"]);
    const bad = describe({ ...bloodPressure, component: Array.from({ length: 100 }, () => 1) });
    expect(bad.warnings).toHaveLength(51);
    expect(bad.warnings.at(-1)).toBe("more problems are not listed");
    const longKey = describe({ ...creatinine, ["value" + "X".repeat(1_000_000)]: 1 });
    for (const w of longKey.warnings) expect(w.length).toBeLessThanOrEqual(300);
  });

  it("drops control and bidi-override characters from what it shows", () => {
    const view = describe({ ...creatinine, code: { text: "Glucose\u202E\u0000 (normal)\u2066" }, valueString: undefined });
    expect(view.title).toBe("Glucose (normal)");
  });

  it("refuses dates that do not exist and shows partial ones", () => {
    const when = (effectiveDateTime: string) => describe({ ...creatinine, effectiveDateTime, issued: undefined }).when;
    expect(when("2023-02-29")).toBeUndefined();
    expect(when("2024-02-29")).toBe("29 Feb 2024");
    expect(when("2024-13")).toBeUndefined();
    expect(when("2024-01-01T24:00:00Z")).toBeUndefined();
    expect(when("2024-01-01T10:00Z")).toBeUndefined(); // FHIR dateTime needs seconds
    expect(when("yesterday")).toBeUndefined();
    expect(when("2024")).toBe("2024");
    expect(when("2024-06-30T23:30:00-05:00")).toBe("1 Jul 2024, 04:30 UTC");
  });
});

group("describe: attachments", () => {
  const attachment = (a: object) => describe({ ...dischargeNote, content: [{ attachment: a }] });

  it("refuses base64 that is not strict: no data, a warning", () => {
    for (const data of ["SGVsbG8", "SGVsbG8==", "SGV$bG8=", "SGVsbG9=", "====", "SGVsbG8=SGVs", 42]) {
      const view = attachment({ contentType: "text/plain", data });
      expect(view.attachments[0]?.data).toBeUndefined();
      expect(view.warnings).toHaveLength(1);
    }
    expect(attachment({ contentType: "text/plain", data: "SGVsbG8=" }).attachments[0]?.data).toEqual(new TextEncoder().encode("Hello"));
  });

  it("decodes a large attachment", () => {
    const bytes = new Uint8Array(9 << 20).map((_, i) => i * 7);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    const view = attachment({ contentType: "application/dicom", data: btoa(binary), size: bytes.length });
    expect(view.warnings).toEqual([]);
    expect(view.attachments[0]?.size).toBe(bytes.length);
    expect(view.attachments[0]?.data?.subarray(0, 4)).toEqual(bytes.subarray(0, 4));
  });

  it("warns about a wrong size, a missing content type, a strange type and an address that is not http(s)", () => {
    expect(attachment({ contentType: "text/plain", data: "SGVsbG8=", size: 6 }).warnings).toEqual(["content[0].attachment.size: says 6 bytes, but the data has 5"]);
    const untyped = attachment({ data: "SGVsbG8=" });
    expect(untyped.attachments[0]?.contentType).toBe("application/octet-stream");
    expect(untyped.warnings).toEqual(["content[0].attachment.contentType: required when there is data"]);
    expect(attachment({ contentType: "text/html<script>", data: "SGVsbG8=" }).attachments[0]?.contentType).toBe("application/octet-stream");
    for (const url of ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "//evil.example/x", "https://", 5]) {
      const view = attachment({ contentType: "image/png", url });
      expect(view.attachments[0]?.url).toBeUndefined();
      expect(view.warnings).toEqual(["content[0].attachment.url: not an http(s) address, so it is not linked"]);
    }
  });
});

group("safeFilename", () => {
  it("keeps a readable title and gives the extension of its content type", () => {
    expect(safeFilename("CBC report", "application/pdf")).toBe("CBC report.pdf");
    expect(safeFilename("CBC report.PDF", "application/pdf")).toBe("CBC report.pdf");
    expect(safeFilename("Résumé de sortie", "text/plain; charset=utf-8")).toBe("Résumé de sortie.txt");
    expect(safeFilename("胸部X線", "image/jpeg")).toBe("胸部X線.jpg");
  });

  it("never makes a path, a hidden file, a reserved name or a dangerous extension", () => {
    expect(safeFilename("../../etc/passwd", "text/plain")).toBe("etc_passwd.txt");
    expect(safeFilename("C:\\Windows\\system32", "application/pdf")).toBe("C_Windows_system32.pdf");
    expect(safeFilename("a／b＼c", "application/pdf")).toBe("a_b_c.pdf");
    expect(safeFilename(".bashrc", "text/plain")).toBe("bashrc.txt");
    expect(safeFilename("invoice\u202Efdp.exe", "application/pdf")).toBe("invoice_fdp.exe.pdf");
    expect(safeFilename("CON", "text/plain")).toBe("_CON.txt");
    expect(safeFilename("lpt1.tar", "text/plain")).toBe("_lpt1.tar.txt");
    expect(safeFilename("page", "text/html")).toBe("page.bin");
    expect(safeFilename("logo", "image/svg+xml")).toBe("logo.bin");
    expect(safeFilename("setup.exe", "application/x-msdownload")).toBe("setup.exe.bin");
    expect(safeFilename("", "application/pdf")).toBe("attachment.pdf");
    expect(safeFilename("...", "")).toBe("attachment.bin");
    expect(safeFilename("line\nbreak\ttab\u0000nul", "text/plain")).toBe("line_break_tab_nul.txt");
  });

  it("caps the length", () => {
    const name = safeFilename("\u{20000}".repeat(10_000), "application/pdf"); // a CJK letter outside the BMP
    expect(Array.from(name)).toHaveLength(104);
    expect(name.endsWith("\u{20000}.pdf")).toBe(true);
    expect(safeFilename("😀 scan", "image/png")).toBe("scan.png"); // a symbol is not a letter
  });
});

group("validateForUpload", () => {
  const error = (text: string, maxBytes?: number) => {
    const result = validateForUpload(text, maxBytes);
    return "error" in result ? result.error : undefined;
  };

  it("accepts the records medvault generates and the others above", () => {
    for (const resource of Object.values(FIXTURES)) expect(validateForUpload(json(resource))).toEqual({ resource });
    const extension = { _status: { extension: [{ url: "http://example.org/reason", valueString: "unknown" }] } };
    expect(error(json({ ...dischargeNote, status: undefined, ...extension }))).toBeUndefined();
  });

  it("refuses what is not JSON, without quoting it", () => {
    expect(error("")).toBe("the file is empty: a FHIR resource is a JSON object");
    expect(error(" \n")).toBe("the file is empty: a FHIR resource is a JSON object");
    expect(error("{")).toMatch(/^not valid JSON/);
    const quoted = error('{"resourceType":"Patient","name":[{"family":"Okafor"}] oops}');
    expect(quoted).toMatch(/^not valid JSON/);
    expect(quoted).not.toContain("Okafor");
  });

  it("refuses what is not a JSON object, in the Python validator's words", () => {
    expect(error("[]")).toBe("resource is not valid FHIR R4: a FHIR resource is a JSON object, not a JSON array");
    expect(error("null")).toBe("resource is not valid FHIR R4: a FHIR resource is a JSON object, not null");
    expect(error('"Patient"')).toBe("resource is not valid FHIR R4: a FHIR resource is a JSON object, not a JSON string");
    expect(error("1.5")).toBe("resource is not valid FHIR R4: a FHIR resource is a JSON object, not a number");
    expect(error("true")).toBe("resource is not valid FHIR R4: a FHIR resource is a JSON object, not true or false");
  });

  it("refuses a missing or unknown resourceType", () => {
    expect(error("{}")).toBe('resource is not valid FHIR R4: resourceType is missing (e.g. "resourceType": "Observation")');
    expect(error('{"resourceType":"Observaton"}')).toBe("resource is not valid FHIR R4: unknown resourceType 'Observaton'");
    expect(error('{"resourceType":5}')).toBe("resource is not valid FHIR R4: unknown resourceType 5");
    expect(error('{"resourceType":"Resource"}')).toBe("resource is not valid FHIR R4: unknown resourceType 'Resource'");
    expect(error('{"resourceType":"constructor"}')).toBe("resource is not valid FHIR R4: unknown resourceType 'constructor'");
    expect(error(json({ resourceType: "X".repeat(100_000) }))!.length).toBeLessThan(200);
  });

  it("names each missing required element and choice element", () => {
    expect(error('{"resourceType":"Observation"}')).toBe("Observation is not valid FHIR R4: code: required, but missing; status: required, but missing");
    expect(error(json({ ...metformin, medicationCodeableConcept: undefined }))).toBe(
      "MedicationRequest is not valid FHIR R4: medication[x]: required, but missing (one of medicationCodeableConcept, medicationReference)",
    );
    expect(error(json({ ...tdap, occurrenceString: "summer 2017" }))).toBe(
      "Immunization is not valid FHIR R4: occurrence[x]: only one of occurrenceDateTime, occurrenceString may be given",
    );
    expect(error(json({ ...creatinine, status: null }))).toBe("Observation is not valid FHIR R4: status: required, but missing");
  });

  it("refuses codes outside the required value sets", () => {
    expect(error(json({ ...creatinine, status: "done" }))).toBe(
      "Observation is not valid FHIR R4: status: not a code of observation-status (registered, preliminary, final, amended, corrected, cancelled, entered-in-error, unknown)",
    );
    expect(error(json({ ...sinusitis, abatementDateTime: undefined, clinicalStatus: hl7("condition-clinical", "cured", "Cured") }))).toBe(
      "Condition is not valid FHIR R4: clinicalStatus.coding[0].code: not a code of condition-clinical (active, recurrence, relapse, inactive, remission, resolved)",
    );
    expect(error(json({ ...sinusitis, abatementDateTime: undefined, clinicalStatus: { text: "active" } }))).toBe(
      "Condition is not valid FHIR R4: clinicalStatus: needs a coding from http://terminology.hl7.org/CodeSystem/condition-clinical (active, recurrence, relapse, inactive, remission, resolved)",
    );
    expect(error(json({ ...peanuts, reaction: [{ manifestation: [{ text: "Hives" }], severity: "awful" }] }))).toBe(
      "AllergyIntolerance is not valid FHIR R4: reaction[0].severity: not a code of reaction-event-severity (mild, moderate, severe)",
    );
    expect(error(json({ ...patient, gender: "f" }))).toBe("Patient is not valid FHIR R4: gender: not a code of administrative-gender (male, female, other, unknown)");
  });

  it("refuses statuses that contradict each other", () => {
    expect(error(json({ ...peanuts, clinicalStatus: undefined }))).toBe(
      "AllergyIntolerance is not valid FHIR R4: clinicalStatus: required unless verificationStatus is entered-in-error",
    );
    const inError = hl7("allergyintolerance-verification", "entered-in-error", "Entered in Error");
    expect(error(json({ ...peanuts, clinicalStatus: undefined, verificationStatus: inError }))).toBeUndefined();
    expect(error(json({ ...peanuts, verificationStatus: inError }))).toBe(
      "AllergyIntolerance is not valid FHIR R4: clinicalStatus: must be absent when verificationStatus is entered-in-error",
    );
    expect(error(json({ ...sinusitis, clinicalStatus: hl7("condition-clinical", "active", "Active") }))).toBe(
      "Condition is not valid FHIR R4: clinicalStatus: a condition with an abatement must be inactive, resolved or remission",
    );
  });

  it("refuses keys that are no FHIR element, such as __proto__", () => {
    const found = error('{"resourceType":"Observation","status":"final","code":{"text":"x","coding":[{"code":"1","__proto__":{}}]},"__proto__":{"a":1}}');
    expect(found).toContain("__proto__: not an element of this resource type in FHIR R4");
    expect(found).toContain("code.coding[0].__proto__: not an element of this resource type in FHIR R4");
    expect(error(json({ ...creatinine, "value-quantity": 1 }))).toBe("Observation is not valid FHIR R4: value-quantity: not an element of this resource type in FHIR R4");
  });

  it("lists at most 20 problems", () => {
    const keys = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`Bad${i}`, i]));
    const found = error(json({ ...creatinine, ...keys }))!;
    expect(found.split("; ")).toHaveLength(21);
    expect(found.endsWith("; and 980 more problems")).toBe(true);
  });

  it("refuses a resource over the size limit", () => {
    const text = json(creatinine);
    expect(error(text, text.length)).toBeUndefined();
    expect(error(text, 100)).toBe(`the resource is ${text.length} bytes, over the limit of 100 bytes a record may have`);
    const accented = json({ ...creatinine, code: { text: "é".repeat(600) } }); // 2 bytes a character in UTF-8
    const bytes = new TextEncoder().encode(accented).length;
    expect(bytes).toBeGreaterThan(accented.length);
    expect(error(accented, accented.length)).toBe(`the resource is ${bytes.toLocaleString("en-US")} bytes, over the limit of ${accented.length.toLocaleString("en-US")} bytes a record may have`);
  });
});
