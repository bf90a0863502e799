"""Unit tests for medvault.fhir.consent: grants written as FHIR R4 Consent resources."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent

from medvault.errors import MedvaultError
from medvault.fhir import FhirValidationError, category_for, to_json_bytes
from medvault.fhir.consent import EMERGENCY_TAG, RESOURCE_TYPES_OF, grant_to_fhir_consent
from medvault.model import Category, Grant, Purpose

PATIENT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"  # lowercase on purpose: the export checksums it
PATIENT_CHECKSUMMED = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
PROVIDER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
CONSENT_MANAGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337
TX_HASH = "0x" + "AB12" * 16
NOW = int(datetime(2025, 6, 30, 17, 0, tzinfo=UTC).timestamp())
DAY = 86_400
ADDRESS_SYSTEM = f"urn:medvault:eth-address:{CHAIN_ID}"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"


def make_grant(
    *,
    scopes: frozenset[Category] = frozenset({Category.MEDICATIONS, Category.LABORATORY}),
    purpose: Purpose = Purpose.TREAT,
    valid_from: int = NOW,
    valid_until: int = NOW + 30 * DAY,
    emergency: bool = False,
) -> Grant:
    return Grant(PATIENT, PROVIDER, scopes, purpose, valid_from, valid_until, emergency)


def export(grant: Grant, status: str = "active", **kwargs: Any) -> dict[str, Any]:
    return grant_to_fhir_consent(
        grant, status=status, recorded_at=NOW, chain_id=CHAIN_ID, consent_manager=CONSENT_MANAGER, **kwargs
    )


def account(address: str) -> dict[str, Any]:
    return {"identifier": {"system": ADDRESS_SYSTEM, "value": address}}


def codes(concepts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for concept in concepts for c in concept["coding"]]


def test_treat_grant_for_two_categories() -> None:
    consent = export(make_grant())

    Consent.model_validate(consent)
    assert consent["resourceType"] == "Consent"
    assert consent["status"] == "active"
    assert codes([consent["scope"]]) == [("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")]
    assert codes(consent["category"]) == [("http://loinc.org", "59284-0")]
    assert consent["patient"] == account(PATIENT_CHECKSUMMED)
    assert consent["performer"] == [account(PATIENT_CHECKSUMMED)]
    assert consent["dateTime"] == "2025-06-30T17:00:00Z"
    assert consent["policy"] == [
        {"authority": "urn:medvault:chain:31337", "uri": f"urn:medvault:consent-manager:{CONSENT_MANAGER}"}
    ]
    assert codes([consent["policyRule"]]) == [("urn:medvault:consent-policy", "smart-contract-enforced")]
    assert CONSENT_MANAGER in consent["policyRule"]["text"]
    assert "meta" not in consent
    assert "identifier" not in consent
    assert "sourceReference" not in consent

    provision = consent["provision"]
    assert provision["type"] == "permit"
    assert provision["period"] == {"start": "2025-06-30T17:00:00Z", "end": "2025-07-30T17:00:00Z"}
    [actor] = provision["actor"]
    assert actor["reference"] == account(PROVIDER)
    assert codes([actor["role"]]) == [("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")]
    assert codes(provision["action"]) == [("http://terminology.hl7.org/CodeSystem/consentaction", "access")]
    assert provision["purpose"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT", "display": "treatment"}
    ]
    assert provision["class"] == [
        {"system": RESOURCE_TYPES, "code": kind}
        for kind in ("Observation", "DiagnosticReport", "MedicationRequest", "MedicationStatement")
    ]


@pytest.mark.parametrize(
    ("status", "valid_from", "valid_until"),
    [
        pytest.param("inactive", NOW - 10 * DAY, NOW + 20 * DAY, id="revoked"),
        pytest.param("inactive", NOW - 40 * DAY, NOW - 10 * DAY, id="expired"),
        pytest.param("proposed", NOW + 7 * DAY, NOW + 37 * DAY, id="future"),
        pytest.param("active", NOW - DAY, NOW + DAY, id="in-force"),
    ],
)
def test_status_is_the_callers(status: str, valid_from: int, valid_until: int) -> None:
    consent = export(make_grant(valid_from=valid_from, valid_until=valid_until), status)

    assert consent["status"] == status
    assert Consent.model_validate(consent).status == status
    period = Consent.model_validate(consent).provision.period
    assert (period.start.timestamp(), period.end.timestamp()) == (valid_from, valid_until)


@pytest.mark.parametrize("status", ["revoked", "expired", "Active", "", "in-force"])
def test_status_outside_consent_state_codes_is_refused(status: str) -> None:
    with pytest.raises(FhirValidationError, match="status") as caught:
        export(make_grant(), status)
    assert isinstance(caught.value, MedvaultError)
    assert caught.value.resource_type == "Consent"


@pytest.mark.parametrize("status", ["draft", "proposed", "active", "rejected", "inactive", "entered-in-error"])
def test_every_consent_state_code_is_accepted(status: str) -> None:
    assert export(make_grant(), status)["status"] == status


def test_emergency_grant_is_flagged() -> None:
    grant = make_grant(scopes=frozenset(Category), purpose=Purpose.ETREAT, valid_until=NOW + DAY, emergency=True)
    consent = export(grant)

    assert consent["meta"] == {"tag": [EMERGENCY_TAG]}
    assert consent["meta"]["tag"][0]["code"] == "emergency-access"
    assert consent["provision"]["purpose"][0]["code"] == "ETREAT"
    assert consent["provision"]["purpose"][0]["display"] == "emergency treatment"
    # The patient did not consent: the provider who took the access is the performer.
    assert consent["performer"] == [account(PROVIDER)]
    assert consent["patient"] == account(PATIENT_CHECKSUMMED)
    classes = [c["code"] for c in consent["provision"]["class"]]
    assert classes == [kind for category in Category for kind in RESOURCE_TYPES_OF[category]]
    assert Consent.model_validate(consent).meta.tag[0].code == "emergency-access"


def test_non_emergency_grant_with_etreat_purpose_is_not_flagged() -> None:
    consent = export(make_grant(purpose=Purpose.ETREAT))

    assert "meta" not in consent
    assert consent["performer"] == [account(PATIENT_CHECKSUMMED)]


def test_exported_json_round_trips_through_the_r4b_model() -> None:
    consent = export(make_grant(), tx_hash=TX_HASH, patient_reference="Patient/example")
    data = to_json_bytes(consent)

    model = Consent.model_validate_json(data)
    assert json.loads(model.model_dump_json()) == consent
    assert model.status == "active"
    assert model.patient.reference == "Patient/example"
    assert model.patient.identifier.value == PATIENT_CHECKSUMMED
    assert model.dateTime == datetime.fromtimestamp(NOW, UTC)
    assert model.provision.type == "permit"
    assert model.provision.period.start == datetime.fromtimestamp(NOW, UTC)
    assert model.provision.period.end == datetime.fromtimestamp(NOW + 30 * DAY, UTC)
    assert model.provision.actor[0].reference.identifier.value == PROVIDER
    assert model.provision.actor[0].role.coding[0].code == "IRCP"
    assert [p.code for p in model.provision.purpose] == ["TREAT"]
    assert [c.code for c in model.provision.class_fhir] == [
        "Observation",
        "DiagnosticReport",
        "MedicationRequest",
        "MedicationStatement",
    ]
    assert model.identifier[0].value == TX_HASH.lower()
    assert model.policy[0].uri == f"urn:medvault:consent-manager:{CONSENT_MANAGER}"


def test_transaction_hash_is_identifier_and_source() -> None:
    consent = export(make_grant(), tx_hash=TX_HASH)

    transaction = {"system": f"urn:medvault:eth-tx:{CHAIN_ID}", "value": TX_HASH.lower()}
    assert consent["identifier"] == [transaction]
    assert consent["sourceReference"]["identifier"] == transaction


@pytest.mark.parametrize("tx_hash", ["0x1234", "AB12" * 16, "0x" + "zz" * 32, "0x" + "ab" * 33])
def test_malformed_transaction_hash_is_refused(tx_hash: str) -> None:
    with pytest.raises(FhirValidationError, match="transaction hash"):
        export(make_grant(), tx_hash=tx_hash)


def test_patient_reference_is_kept_with_the_address() -> None:
    consent = export(make_grant(), patient_reference="Patient/123")

    expected = {"reference": "Patient/123", **account(PATIENT_CHECKSUMMED)}
    assert consent["patient"] == expected
    assert consent["performer"] == [expected]


def test_invalid_patient_reference_fails_validation() -> None:
    with pytest.raises(FhirValidationError, match=r"patient\.reference"):
        export(make_grant(), patient_reference="")


def test_output_is_deterministic() -> None:
    scopes = [Category.NOTES, Category.IMAGING, Category.CONDITIONS]
    first = export(make_grant(scopes=frozenset(scopes)), tx_hash=TX_HASH)
    second = export(make_grant(scopes=frozenset(reversed(scopes))), tx_hash=TX_HASH)

    assert first == second
    assert to_json_bytes(first) == to_json_bytes(second)
    assert [c["code"] for c in first["provision"]["class"]] == [
        "ImagingStudy",
        "Condition",
        "AllergyIntolerance",
        "DocumentReference",
        "Composition",
    ]


def test_research_purpose_adds_the_research_category() -> None:
    consent = export(make_grant(purpose=Purpose.HRESCH))

    assert codes(consent["category"]) == [
        ("http://loinc.org", "59284-0"),
        ("http://terminology.hl7.org/CodeSystem/consentcategorycodes", "research"),
    ]
    assert consent["provision"]["purpose"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": "HRESCH",
        "display": "healthcare research",
    }


@pytest.mark.parametrize(
    ("study", "value"),
    [(b"S-1".ljust(32, b"\0"), "S-1"), (bytes(range(32)), "0x" + bytes(range(32)).hex())],
    ids=["label", "bytes32"],
)
def test_research_grant_names_its_study(study: bytes, value: str) -> None:
    consent = export(make_grant(purpose=Purpose.HRESCH), study=study)

    Consent.model_validate(consent)
    assert consent["provision"]["extension"] == [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/consent-ResearchStudyContext",
            "valueReference": {
                "type": "ResearchStudy",
                "identifier": {"system": "urn:medvault:study", "value": value},
                "display": f"Research study {value}",
            },
        }
    ]
    assert "extension" not in export(make_grant(purpose=Purpose.HRESCH))["provision"]
    with pytest.raises(FhirValidationError, match=r"only a research grant \(purpose HRESCH\) names a study"):
        export(make_grant(), study=study)


def test_grant_that_never_expires_has_an_open_period() -> None:
    consent = export(make_grant(valid_until=2**40 - 1))  # uint40 max: past the year 9999

    assert consent["provision"]["period"] == {"start": "2025-06-30T17:00:00Z"}


@pytest.mark.parametrize(("valid_from", "valid_until"), [(NOW, NOW), (NOW + DAY, NOW), (0, 0)])
def test_empty_validity_window_is_refused(valid_from: int, valid_until: int) -> None:
    with pytest.raises(FhirValidationError, match="validity window"):
        export(make_grant(valid_from=valid_from, valid_until=valid_until))


def test_malformed_addresses_are_refused() -> None:
    bad_grantee = Grant(PATIENT, "0x1234", frozenset({Category.NOTES}), Purpose.TREAT, NOW, NOW + DAY, False)
    with pytest.raises(FhirValidationError, match="grantee"):
        export(bad_grantee)
    with pytest.raises(FhirValidationError, match="consent manager"):
        grant_to_fhir_consent(
            make_grant(), status="active", recorded_at=NOW, chain_id=CHAIN_ID, consent_manager="not-an-address"
        )


@pytest.mark.parametrize("category", list(Category))
def test_classes_are_the_resource_types_of_the_category(category: Category) -> None:
    kinds = RESOURCE_TYPES_OF[category]

    assert kinds
    assert all(category_for({"resourceType": kind}) == category.name.lower() for kind in kinds)
    consent = export(make_grant(scopes=frozenset({category})))
    assert consent["provision"]["class"] == [{"system": RESOURCE_TYPES, "code": kind} for kind in kinds]
