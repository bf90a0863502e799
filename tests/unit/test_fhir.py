"""Unit tests for medvault.fhir: validation, categories, canonical JSON and synthetic records."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from medvault.dev.synthetic import AS_OF, synthetic_patient, synthetic_records
from medvault.errors import MedvaultError
from medvault.fhir import RECORD_CATEGORIES, FhirValidationError, category_for, to_json_bytes, validate_resource

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
KINDS = {"Observation", "DiagnosticReport", "Condition", "MedicationRequest", "Immunization", "AllergyIntolerance"}
SYSTEMS = {
    "http://loinc.org",
    "http://snomed.info/sct",
    "http://www.nlm.nih.gov/research/umls/rxnorm",
    "http://hl7.org/fhir/sid/cvx",
    "http://unitsofmeasure.org",
}
DATE_KEYS = {
    "effectiveDateTime",
    "issued",
    "onsetDateTime",
    "abatementDateTime",
    "recordedDate",
    "authoredOn",
    "occurrenceDateTime",
}


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not secrets


def chart(seed: int, count: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = seeded(seed)
    patient = synthetic_patient(rng)
    return patient, synthetic_records(rng, patient, count)


@pytest.fixture(scope="module")
def charts() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    return [chart(seed, 200) for seed in range(5)]


def walk(value: Any) -> list[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a JSON value."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in [(k, v), *walk(v)]]
    if isinstance(value, list):
        return [pair for item in value for pair in walk(item)]
    return []


def codes(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in concept["coding"]}


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_does_not() -> None:
    def blob(seed: int) -> bytes:
        patient, records = chart(seed, 60)
        return b"\n".join(to_json_bytes(r) for r in [patient, *records])

    assert blob(11) == blob(11)
    assert blob(11) != blob(12)


def test_ids_are_unique_uuid4_strings(charts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    ids = [r["id"] for patient, records in charts for r in [patient, *records]]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)


# --- validity and realism ------------------------------------------------------------------------


def test_every_generated_resource_validates(charts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    for patient, records in charts:
        for resource in [patient, *records]:
            assert validate_resource(resource) is resource
            # Independently of validate_resource, straight against the R4B model.
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def test_patient_has_name_gender_birth_date_and_identifier() -> None:
    for seed in range(20):
        patient = synthetic_patient(seeded(seed))
        assert patient["gender"] in ("female", "male")
        assert patient["name"][0]["family"]
        assert len(patient["name"][0]["given"]) == 2
        assert patient["identifier"][0]["value"].isdigit()
        age = (AS_OF.date() - date.fromisoformat(patient["birthDate"])).days / 365.25
        assert 19.9 < age < 90.1


def test_mix_over_200_records_contains_every_kind(charts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    for _, records in charts:
        assert len(records) == 200
        assert {r["resourceType"] for r in records} == KINDS
        observation_categories = {
            c["code"] for r in records if r["resourceType"] == "Observation" for c in r["category"][0]["coding"]
        }
        assert observation_categories == {"laboratory", "vital-signs"}


@pytest.mark.parametrize("count", [0, 1, 2, 5, 6, 7, 8, 12, 30])
def test_exact_count_and_every_kind_from_seven(count: int) -> None:
    _, records = chart(count, count)
    assert len(records) == count
    if count >= 7:
        assert {r["resourceType"] for r in records} == KINDS


def test_records_use_standard_code_systems(charts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    for _, records in charts:
        for r in records:
            kind = r["resourceType"]
            if kind in ("Observation", "DiagnosticReport"):
                assert {s for s, _ in codes(r["code"])} == {"http://loinc.org"}
            if kind in ("Condition", "AllergyIntolerance"):
                assert {s for s, _ in codes(r["code"])} == {"http://snomed.info/sct"}
            if kind == "MedicationRequest":
                assert {s for s, _ in codes(r["medicationCodeableConcept"])} == {
                    "http://www.nlm.nih.gov/research/umls/rxnorm"
                }
            if kind == "Immunization":
                assert {s for s, _ in codes(r["vaccineCode"])} == {"http://hl7.org/fhir/sid/cvx"}
            for key, value in walk(r):
                if key == "valueQuantity" or key == "doseQuantity":
                    assert value["system"] == "http://unitsofmeasure.org"
                    assert value["code"]
                if key == "system":
                    assert value in SYSTEMS or value.startswith("http://terminology.hl7.org/CodeSystem/")


def test_records_refer_to_the_patient_and_reports_to_their_results(
    charts: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    for patient, records in charts:
        by_id = {r["id"]: r for r in records}
        for r in records:
            subject = r.get("subject") or r.get("patient")
            assert subject == {"reference": f"Patient/{patient['id']}"}
            if r["resourceType"] == "DiagnosticReport":
                assert r["result"]
                for ref in r["result"]:
                    kind, _, rid = ref["reference"].partition("/")
                    assert kind == "Observation"
                    assert category_for(by_id[rid]) == "laboratory"
                    assert by_id[rid]["effectiveDateTime"] == r["effectiveDateTime"]


def test_dates_are_iso_after_birth_and_in_the_past(charts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    now = datetime.now(UTC)
    for patient, records in charts:
        birth = datetime.fromisoformat(patient["birthDate"]).replace(tzinfo=UTC)
        for r in records:
            moments = [datetime.fromisoformat(v) for k, v in walk(r) if k in DATE_KEYS]
            assert moments, r["resourceType"]
            assert all(m.tzinfo is not None and birth < m <= AS_OF < now for m in moments)


def test_records_are_in_chronological_order(charts: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    keys = ("onsetDateTime", "effectiveDateTime", "authoredOn", "occurrenceDateTime", "recordedDate")
    for _, records in charts:
        moments = [datetime.fromisoformat(next(r[k] for k in keys if k in r)) for r in records]
        assert moments == sorted(moments)


def test_values_are_plausible_and_flags_match_reference_ranges(
    charts: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    for _, records in charts:
        for r in records:
            if r["resourceType"] != "Observation" or "valueQuantity" not in r:
                continue
            value = r["valueQuantity"]["value"]
            assert value > 0
            if "referenceRange" in r:
                low, high = r["referenceRange"][0]["low"]["value"], r["referenceRange"][0]["high"]["value"]
                assert 0.5 * low <= value <= 3 * high
                flag = r["interpretation"][0]["coding"][0]["code"]
                assert flag == ("L" if value < low else "H" if value > high else "N")
            if ("http://loinc.org", "2708-6") in codes(r["code"]):  # oxygen saturation
                assert 90 <= value <= 100


def test_a_diabetic_patient_gets_metformin_and_a_high_hba1c() -> None:
    hba1c: list[float] = []
    metformin_reasons: list[set[tuple[str, str]]] = []
    for seed in range(40):
        _, records = chart(seed, 120)
        coded = {(r["resourceType"], code) for r in records if "code" in r for _, code in codes(r["code"])}
        if ("Condition", "44054006") not in coded:
            continue
        for r in records:
            if r["resourceType"] == "Observation" and ("http://loinc.org", "4548-4") in codes(r["code"]):
                hba1c.append(r["valueQuantity"]["value"])
            if r["resourceType"] == "MedicationRequest" and (RXNORM, "860975") in codes(r["medicationCodeableConcept"]):
                metformin_reasons.append(codes(r["reasonCode"][0]))
    assert hba1c
    assert min(hba1c) >= 6.5
    assert metformin_reasons
    assert all(reason == {(SNOMED, "44054006")} for reason in metformin_reasons)


def test_synthetic_records_rejects_bad_arguments() -> None:
    rng = seeded(0)
    patient = synthetic_patient(rng)
    with pytest.raises(ValueError, match="negative"):
        synthetic_records(rng, patient, -1)
    with pytest.raises(ValueError, match="id"):
        synthetic_records(rng, {"resourceType": "Patient", "birthDate": "1980-01-01"}, 3)


# --- categories ----------------------------------------------------------------------------------


def coded(system: str, code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}]}]


OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"


@pytest.mark.parametrize(
    ("resource", "category"),
    [
        ({"resourceType": "Observation", "category": coded(OBS, "laboratory")}, "laboratory"),
        ({"resourceType": "Observation", "category": coded(OBS, "vital-signs")}, "laboratory"),
        ({"resourceType": "Observation"}, "laboratory"),
        ({"resourceType": "Observation", "category": coded(OBS, "imaging")}, "imaging"),
        ({"resourceType": "DiagnosticReport", "category": coded(V2_0074, "LAB")}, "laboratory"),
        ({"resourceType": "DiagnosticReport", "category": coded(V2_0074, "RAD")}, "imaging"),
        ({"resourceType": "ImagingStudy"}, "imaging"),
        ({"resourceType": "MedicationRequest"}, "medications"),
        ({"resourceType": "MedicationStatement"}, "medications"),
        ({"resourceType": "Condition"}, "conditions"),
        ({"resourceType": "AllergyIntolerance", "category": ["food"]}, "conditions"),
        ({"resourceType": "Immunization"}, "immunizations"),
        ({"resourceType": "DocumentReference"}, "notes"),
        ({"resourceType": "Composition"}, "notes"),
        ({"resourceType": "Procedure"}, "notes"),
        ({"resourceType": "Observation", "category": "not-a-list"}, "laboratory"),
        ({}, "notes"),
    ],
)
def test_category_for(resource: dict[str, Any], category: str) -> None:
    assert category_for(resource) == category


def test_generated_records_fall_in_the_expected_categories(
    charts: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    expected = {
        "Observation": "laboratory",
        "DiagnosticReport": "laboratory",
        "Condition": "conditions",
        "AllergyIntolerance": "conditions",
        "MedicationRequest": "medications",
        "Immunization": "immunizations",
    }
    for _, records in charts:
        for r in records:
            assert category_for(r) == expected[r["resourceType"]]
            assert category_for(r) in RECORD_CATEGORIES


# --- validation ----------------------------------------------------------------------------------


def valid_observation() -> dict[str, Any]:
    _, records = chart(3, 20)
    return copy.deepcopy(next(r for r in records if r["resourceType"] == "Observation"))


def test_validate_returns_the_resource_unchanged() -> None:
    observation = valid_observation()
    before = copy.deepcopy(observation)
    assert validate_resource(observation) is observation
    assert observation == before


def test_missing_required_element_names_type_and_element() -> None:
    observation = valid_observation()
    del observation["status"]
    with pytest.raises(FhirValidationError, match=r"^Observation is not valid FHIR R4: status: ") as caught:
        validate_resource(observation)
    assert caught.value.resource_type == "Observation"
    assert isinstance(caught.value, MedvaultError)
    assert isinstance(caught.value, ValueError)


def test_missing_code_is_named() -> None:
    observation = valid_observation()
    del observation["code"]
    with pytest.raises(FhirValidationError, match="code"):
        validate_resource(observation)


def test_wrong_type_names_the_nested_element_but_not_its_value() -> None:
    observation = valid_observation()
    observation["valueQuantity"]["value"] = "sixty-two point five"
    with pytest.raises(FhirValidationError, match=r"Observation .*valueQuantity\.value") as caught:
        validate_resource(observation)
    assert "sixty-two" not in str(caught.value)


def test_list_positions_are_named_and_every_problem_is_reported_at_once() -> None:
    observation = valid_observation()
    observation["category"][0]["coding"][0]["code"] = 7
    with pytest.raises(FhirValidationError, match=r": category\[0\]\.coding\[0\]\.code: .*string$"):
        validate_resource(observation)
    observation["status"] = 1
    del observation["code"]
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(observation)
    assert set(caught.value.problem.split("; ")) == {
        "category[0].coding[0].code: Input should be a valid string",
        "status: Input should be a valid string",
        "code: required, but missing",
    }


def test_missing_required_primitives_and_choices_come_with_the_other_problems() -> None:
    # fhir.resources checks a resource's own required codes only once its elements are valid.
    request = {"resourceType": "MedicationRequest", "subject": {"display": 7}, "colour": "blue"}
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(request)
    assert caught.value.problem.split("; ") == [
        "subject.display: Input should be a valid string",
        "colour: not an element of this resource type in FHIR R4",
        "intent: required, but missing",
        "status: required, but missing",
        "medication[x]: required, but missing (one of medicationCodeableConcept, medicationReference)",
    ]
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "aspirin"},
        "medicationReference": {"reference": "Medication/m"},
    }
    with pytest.raises(FhirValidationError, match=r"medication\[x\]: only one of"):
        validate_resource(request)


STATUS_CASES = [
    ("Observation", "status", "done", "observation-status"),
    ("DiagnosticReport", "status", "done", "diagnostic-report-status"),
    ("MedicationRequest", "status", "prescribed", "medicationrequest-status"),
    ("MedicationRequest", "intent", "prescription", "medicationrequest-intent"),
    ("Immunization", "status", "given", "immunization-status"),
    ("AllergyIntolerance", "criticality", "severe", "allergy-intolerance-criticality"),
]


@pytest.mark.parametrize(
    ("kind", "element", "code", "value_set"), STATUS_CASES, ids=[f"{k}.{e}" for k, e, *_ in STATUS_CASES]
)
def test_codes_outside_their_required_value_set_are_refused(kind: str, element: str, code: str, value_set: str) -> None:
    _, records = chart(4, 30)
    resource = copy.deepcopy(next(r for r in records if r["resourceType"] == kind))
    resource[element] = code
    with pytest.raises(
        FhirValidationError, match=rf"^{kind} is not valid FHIR R4: {element}: not a code of {value_set} \("
    ) as caught:
        validate_resource(resource)
    assert code not in str(caught.value)  # named, not echoed


@pytest.mark.parametrize(
    ("element", "system"),
    [
        ("clinicalStatus", "condition-clinical"),
        ("verificationStatus", "condition-ver-status"),
    ],
)
def test_condition_statuses_need_a_coding_from_their_code_system(element: str, system: str) -> None:
    _, records = chart(4, 30)
    condition = copy.deepcopy(next(r for r in records if r["resourceType"] == "Condition"))
    condition[element]["coding"][0]["code"] = "gone"
    with pytest.raises(FhirValidationError, match=rf"{element}\.coding\[0\]\.code: not a code of {system} "):
        validate_resource(condition)
    condition[element] = {"text": "active"}
    with pytest.raises(
        FhirValidationError, match=rf"{element}: needs a coding from http://terminology.hl7.org/CodeSystem/{system} "
    ):
        validate_resource(condition)


def test_clinical_and_verification_statuses_agree() -> None:
    _, records = chart(4, 30)
    condition = copy.deepcopy(next(r for r in records if r["resourceType"] == "Condition"))
    allergy = copy.deepcopy(next(r for r in records if r["resourceType"] == "AllergyIntolerance"))
    active = copy.deepcopy(condition["clinicalStatus"])
    active["coding"][0]["code"] = "active"
    with pytest.raises(FhirValidationError, match="a condition with an abatement must be inactive, resolved or remis"):
        validate_resource(condition | {"clinicalStatus": active, "abatementDateTime": "2025-01-01"})
    for resource, system in ((condition, "condition-ver-status"), (allergy, "allergyintolerance-verification")):
        error = {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": "entered-in-error"}]}
        with pytest.raises(FhirValidationError, match="clinicalStatus: must be absent when verificationStatus is ent"):
            validate_resource(resource | {"verificationStatus": error})
        retracted = {k: v for k, v in resource.items() if k != "clinicalStatus"} | {"verificationStatus": error}
        assert validate_resource(retracted) is retracted
    del allergy["clinicalStatus"]
    with pytest.raises(FhirValidationError, match="clinicalStatus: required unless verificationStatus is entered-in"):
        validate_resource(allergy)


def test_a_consent_state_is_checked_like_the_others() -> None:
    consent = {"resourceType": "Consent", "status": "granted", "scope": {"text": "x"}, "category": [{"text": "x"}]}
    with pytest.raises(FhirValidationError, match="status: not a code of consent-state-codes"):
        validate_resource(consent)


LOINC = "http://loinc.org"
OBS_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL = [{"coding": [{"system": OBS_SYSTEM, "code": "vital-signs"}]}]


def vital(codes: list[str], quantity: dict[str, Any] | None) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": copy.deepcopy(VITAL),
        "code": {"coding": [{"system": LOINC, "code": c} for c in codes]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2025-06-01T09:30:00+00:00",
    }
    if quantity is not None:
        observation["valueQuantity"] = quantity
    return observation


def ucum(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}


def test_a_vital_sign_meets_its_r4_profile() -> None:
    assert validate_resource(vital(["2708-6", "59408-5"], ucum(97, "%")))
    assert validate_resource(vital(["8310-5"], ucum(98.6, "[degF]")))
    with pytest.raises(
        FhirValidationError, match="code: a vital sign of the oxygensat profile needs the LOINC code 2708-6"
    ):
        validate_resource(vital(["59408-5"], ucum(97, "%")))
    with pytest.raises(
        FhirValidationError, match=r"valueQuantity: the heartrate profile needs system .* and code /min$"
    ):
        validate_resource(vital(["8867-4"], ucum(72, "beats/min")))
    with pytest.raises(FhirValidationError, match="needs a value .* or a dataAbsentReason"):
        validate_resource(vital(["29463-7"], None))
    lab_coded = vital(["8302-2"], ucum(170, "cm"))
    lab_coded["category"] = coded(OBS, "laboratory")
    del lab_coded["subject"]
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(lab_coded)
    assert caught.value.problem.split("; ") == [
        f"category: a vital sign needs the category {OBS_SYSTEM} vital-signs",
        "subject: a vital sign needs the patient it was measured on",
    ]


def test_a_blood_pressure_needs_both_components_in_mm_hg() -> None:
    bp = vital(["85354-9"], None)
    bp["component"] = [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": ucum(120, "mm[Hg]")}
    ]
    with pytest.raises(
        FhirValidationError,
        match=r"^Observation is not valid FHIR R4: component: a blood pressure needs a diastolic component \(LOINC",
    ):
        validate_resource(bp)
    bp["component"].append(
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": ucum(80, "cm[Hg]")}
    )
    with pytest.raises(
        FhirValidationError, match=r"component\[1\]\.valueQuantity: the bp diastolic profile needs .* mm\[Hg\]"
    ):
        validate_resource(bp)
    bp["component"][1]["valueQuantity"] = ucum(80, "mm[Hg]")
    assert validate_resource(bp) is bp


def test_synthetic_vital_signs_carry_their_profile_code_category_and_ucum_units(
    charts: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> None:
    from medvault.fhir.rules import SPECIFIC_CODES, VITAL_SIGNS

    seen = set()
    for _, records in charts:
        for r in records:
            if r["resourceType"] != "Observation" or r["category"][0]["coding"][0]["code"] != "vital-signs":
                continue
            loinc = {code for system, code in codes(r["code"]) if system == LOINC}
            profile = (loinc & VITAL_SIGNS.keys()) | {SPECIFIC_CODES[c] for c in loinc if c in SPECIFIC_CODES}
            assert len(profile) == 1, loinc
            seen |= profile
            for quantity in [r.get("valueQuantity")] + [c["valueQuantity"] for c in r.get("component", [])]:
                if quantity is not None:
                    assert quantity["system"] == "http://unitsofmeasure.org"
    assert {"2708-6", "8867-4", "9279-1", "8310-5", "29463-7", "8302-2", "39156-5", "85354-9"} <= seen


def test_wrong_shapes_are_named_in_fhir_terms() -> None:
    observation = valid_observation()
    observation |= {"effectiveDateTime": "yesterday", "subject": "Patient/p", "category": {"text": "lab"}}
    observation["valueQuantity"]["value"] = "6,1"
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(observation)
    assert set(caught.value.problem.split("; ")) == {
        "category: expected a JSON array",
        "effectiveDateTime: not a valid FHIR dateTime",
        "subject: expected a JSON object",
        "valueQuantity.value: not a valid FHIR decimal",
    }


def test_unknown_element_is_rejected() -> None:
    observation = valid_observation()
    observation["colour"] = "blue"
    with pytest.raises(FhirValidationError, match="colour"):
        validate_resource(observation)


@pytest.mark.parametrize("kind", ["Foo", "Coding", "Quantity", "Resource", "", 7])
def test_unknown_resource_type_is_rejected(kind: object) -> None:
    with pytest.raises(FhirValidationError, match=r"unknown resourceType") as caught:
        validate_resource({"resourceType": kind, "id": "x"})
    assert repr(kind) in str(caught.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"status": "final"}, 'resourceType is missing (e.g. "resourceType": "Observation")'),
        ([{"resourceType": "Observation"}], "a FHIR resource is a JSON object, not a JSON array"),
        ("Observation", "a FHIR resource is a JSON object, not a JSON string"),
        (None, "a FHIR resource is a JSON object, not null"),
        (3, "a FHIR resource is a JSON object, not a number"),
    ],
    ids=["no resourceType", "array", "string", "null", "number"],
)
def test_missing_resource_type_and_non_objects_are_rejected(value: Any, words: str) -> None:
    with pytest.raises(FhirValidationError) as caught:
        validate_resource(value)
    assert str(caught.value) == f"resource is not valid FHIR R4: {words}"


# --- canonical JSON ------------------------------------------------------------------------------


def test_to_json_bytes_is_compact_sorted_utf8() -> None:
    assert to_json_bytes({"b": [1, 2.5], "a": "Zoë"}) == '{"a":"Zoë","b":[1,2.5]}'.encode()
    assert to_json_bytes({"a": 1, "b": 2}) == to_json_bytes({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="Out of range float"):
        to_json_bytes({"value": float("nan")})
