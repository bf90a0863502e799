"""The clinical codes behind the synthetic FHIR data (``medvault.dev.synthetic``): real LOINC,
SNOMED CT, RxNorm, CVX and UCUM codes with plausible adult-outpatient values and reference
ranges, the made-up names, and how often each kind of record appears."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
# HL7's OID for examples ("Good Health Clinic"), so a synthetic MRN never looks like a real one.
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"


# --- code tables ---------------------------------------------------------------------------------


class Analyte(NamedTuple):
    loinc: str
    display: str
    unit: str  # UCUM
    low: float  # reference range (labs) or usual range (vital signs)
    high: float
    decimals: int


ANALYTES: dict[str, Analyte] = {
    a.loinc: a
    for a in (
        # CBC
        Analyte("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11.0, 1),
        Analyte("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 4.2, 5.9, 2),
        Analyte("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1),
        Analyte("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 36.0, 52.0, 1),
        Analyte("787-2", "MCV [Entitic volume] by Automated count", "fL", 80.0, 100.0, 1),
        Analyte("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0),
        # CMP
        Analyte("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
        Analyte("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
        Analyte("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.3, 2),
        Analyte("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 135, 145, 0),
        Analyte("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
        Analyte("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, 0),
        Analyte("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29, 0),
        Analyte("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, 1),
        Analyte("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 6.0, 8.3, 1),
        Analyte("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.5, 5.0, 1),
        Analyte("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 1.2, 1),
        Analyte("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 44, 147, 0),
        Analyte("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 7, 56, 0),
        Analyte(
            "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10, 40, 0
        ),
        # Lipid panel
        Analyte("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 125, 200, 0),
        Analyte("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 40, 150, 0),
        Analyte("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, 80, 0),
        Analyte("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", 50, 130, 0),
        # Ordered on their own
        Analyte("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
        Analyte("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 99, 0),
        Analyte("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.4, 4.0, 2),
    )
}
STANDALONE_LABS = ("4548-4", "2339-0", "2093-3", "718-7", "2160-0", "2823-3", "3016-3")


class Panel(NamedTuple):
    loinc: str
    display: str
    results: tuple[str, ...]  # LOINC codes in ANALYTES


PANELS = (
    Panel("58410-2", "CBC panel - Blood by Automated count", ("6690-2", "789-8", "718-7", "4544-3", "787-2", "777-3")),
    Panel(
        "24323-8",
        "Comprehensive metabolic 2000 panel - Serum or Plasma",
        (
            "2345-7",
            "3094-0",
            "2160-0",
            "2951-2",
            "2823-3",
            "2075-0",
            "2028-9",
            "17861-6",
            "2885-2",
            "1751-7",
            "1975-2",
            "6768-6",
            "1742-6",
            "1920-8",
        ),
    ),
    Panel("57698-3", "Lipid panel with direct LDL - Serum or Plasma", ("2093-3", "2571-8", "2085-9", "18262-6")),
)

VITALS: dict[str, Analyte] = {
    a.loinc: a
    for a in (
        Analyte("8867-4", "Heart rate", "/min", 56, 98, 0),
        Analyte("9279-1", "Respiratory rate", "/min", 12, 20, 0),
        Analyte("8310-5", "Body temperature", "Cel", 36.1, 37.4, 1),
        Analyte("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 94, 100, 0),
        Analyte("29463-7", "Body weight", "kg", 0, 0, 1),  # weight, height and BMI come from the patient's build
        Analyte("8302-2", "Body height", "cm", 0, 0, 1),
        Analyte("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 0, 0, 1),
        Analyte("8480-6", "Systolic blood pressure", "mm[Hg]", 105, 135, 0),
        Analyte("8462-4", "Diastolic blood pressure", "mm[Hg]", 62, 85, 0),
    )
}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
# The code an R4 vital-signs profile fixes, for a vital sign recorded with a more specific code: the
# oxygensat profile asks for 2708-6 beside pulse oximetry's 59408-5.
PROFILE_CODES = {"59408-5": ("2708-6", "Oxygen saturation in Arterial blood")}
WEIGHT, HEIGHT, BMI = "29463-7", "8302-2", "39156-5"
# Blood pressure is the vital sign taken most often, so it gets more weight than the others.
VITAL_WEIGHTS = {"85354-9": 4, "8867-4": 2, "9279-1": 1, "8310-5": 1, "59408-5": 1, WEIGHT: 2, HEIGHT: 1, BMI: 1}


class Medication(NamedTuple):
    rxnorm: str
    display: str
    sig: str
    per_day: int
    as_needed: bool = False


METFORMIN = Medication(
    "860975",
    "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    "1 tablet by mouth daily with supper",
    1,
)
LISINOPRIL = Medication("314076", "lisinopril 10 MG Oral Tablet", "1 tablet by mouth daily", 1)
AMLODIPINE = Medication("197361", "amlodipine 5 MG Oral Tablet", "1 tablet by mouth daily", 1)
HCTZ = Medication("310798", "hydrochlorothiazide 25 MG Oral Tablet", "1 tablet by mouth every morning", 1)
SIMVASTATIN = Medication("312961", "simvastatin 20 MG Oral Tablet", "1 tablet by mouth at bedtime", 1)
FLUTICASONE = Medication(
    "895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "2 puffs inhaled twice daily", 2
)
ACETAMINOPHEN = Medication(
    "313782", "acetaminophen 325 MG Oral Tablet", "2 tablets by mouth every 6 hours as needed for pain", 4, True
)


class Problem(NamedTuple):
    snomed: str
    display: str
    chronic: bool
    medications: tuple[Medication, ...]
    # (LOINC, low, high): where this condition moves a patient's results
    shifts: tuple[tuple[str, float, float], ...] = ()


PROBLEMS = (
    Problem(
        "44054006",
        "Diabetes mellitus type 2 (disorder)",
        True,
        (METFORMIN,),
        (("4548-4", 6.5, 9.5), ("2339-0", 126, 220), ("2345-7", 126, 220)),
    ),
    Problem(
        "38341003",
        "Hypertensive disorder, systemic arterial (disorder)",
        True,
        (LISINOPRIL, AMLODIPINE, HCTZ),
        (("8480-6", 132, 162), ("8462-4", 82, 98)),
    ),
    Problem(
        "55822004",
        "Hyperlipidemia (disorder)",
        True,
        (SIMVASTATIN,),
        (("2093-3", 200, 280), ("18262-6", 130, 190), ("2571-8", 150, 320)),
    ),
    Problem("195967001", "Asthma (disorder)", True, (FLUTICASONE,)),
    Problem("239873007", "Osteoarthritis of knee (disorder)", True, (ACETAMINOPHEN,)),
    Problem("10509002", "Acute bronchitis (disorder)", False, (ACETAMINOPHEN,)),
    Problem("444814009", "Viral sinusitis (disorder)", False, (ACETAMINOPHEN,)),
    Problem("195662009", "Acute viral pharyngitis (disorder)", False, (ACETAMINOPHEN,)),
)
CHRONIC = tuple(p for p in PROBLEMS if p.chronic)
ACUTE = tuple(p for p in PROBLEMS if not p.chronic)


class Vaccine(NamedTuple):
    cvx: str
    display: str
    dose_ml: float
    min_age: int  # years
    since: date  # first licensed or authorised in the US, so no dose predates it
    weight: int


VACCINES = (
    Vaccine("140", "Influenza, seasonal, injectable, preservative free", 0.5, 1, date(2000, 1, 1), 6),
    Vaccine(
        "208",
        "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose",
        0.3,
        16,
        date(2020, 12, 11),
        3,
    ),
    Vaccine("115", "Tdap", 0.5, 11, date(2005, 6, 10), 1),
    Vaccine("113", "Td (adult) preservative free", 0.5, 7, date(2000, 1, 1), 1),
    Vaccine("187", "zoster vaccine recombinant", 0.5, 50, date(2017, 10, 20), 1),
    Vaccine("133", "Pneumococcal conjugate PCV 13", 0.5, 65, date(2010, 2, 24), 1),
    Vaccine("43", "Hep B, adult", 1.0, 20, date(2000, 1, 1), 1),
)


class Allergy(NamedTuple):
    snomed: str
    display: str
    category: str
    criticality: str
    reaction: tuple[str, str]  # SNOMED manifestation
    severity: str


ALLERGIES = (
    Allergy("91936005", "Allergy to penicillin (finding)", "medication", "high", ("247472004", "Hives"), "moderate"),
    Allergy("91935009", "Allergy to peanuts (finding)", "food", "high", ("39579001", "Anaphylaxis"), "severe"),
    Allergy("300916003", "Latex allergy (finding)", "environment", "low", ("271807003", "Eruption of skin"), "mild"),
    Allergy(
        "418689008",
        "Allergy to grass pollen (finding)",
        "environment",
        "low",
        ("61582004", "Allergic rhinitis"),
        "mild",
    ),
)

GIVEN = {
    "female": ("Amara", "Beatriz", "Chen", "Danielle", "Elena", "Fatima", "Grace", "Hana", "Ingrid", "Leila", "Maria"),
    "male": ("Aarav", "Bruno", "Carlos", "David", "Emeka", "Felix", "Hiroshi", "Ivan", "James", "Luca", "Omar"),
}
FAMILY = (
    "Adeyemi",
    "Becker",
    "Costa",
    "Dubois",
    "Garcia",
    "Haddad",
    "Jensen",
    "Kim",
    "Kowalski",
    "Nguyen",
    "Okafor",
    "Patel",
    "Rossi",
    "Silva",
    "Smith",
    "Tanaka",
    "Walker",
    "Yilmaz",
)

# Relative frequency of each kind of record. A DiagnosticReport also brings its result Observations.
KIND_WEIGHTS = {
    "laboratory": 22,
    "vital-signs": 22,
    "DiagnosticReport": 6,
    "Condition": 10,
    "MedicationRequest": 16,
    "Immunization": 10,
    "AllergyIntolerance": 3,
}


OBSERVATION_CATEGORIES = {"laboratory": "Laboratory", "vital-signs": "Vital Signs"}
