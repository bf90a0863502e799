"""On-chain grants as HL7 FHIR R4 Consent resources.

``grant_to_fhir_consent`` writes a ``Grant`` (one patient's grant to one grantee, as the ConsentManager
contract holds it) as a FHIR R4 Consent, so that an EHR or a consent registry can read what the chain
enforces. The resource is a plain dict in the R4 JSON shape, validated like every other medvault
resource by ``medvault.fhir.validate_resource`` (the R4B Consent model, which keeps R4's Consent
shape). Serialise it with ``medvault.fhir.to_json_bytes``.

How the grant maps onto the Consent:

- ``status`` is the caller's: "active" for a grant in force, "inactive" for a revoked or expired one,
  "proposed" for one that starts later. It must be one of FHIR's consent-state-codes.
- ``scope`` is consentscope "patient-privacy"; ``category`` is LOINC 59284-0 "Patient Consent", plus
  consentcategorycodes "research" when the purpose is HRESCH.
- Accounts are Ethereum addresses, written as logical references by identifier: system
  ``urn:medvault:eth-address:<chainId>``, value the EIP-55 checksummed address. ``patient`` is the
  patient (with ``reference`` too, when ``patient_reference`` names their Patient resource).
- ``dateTime`` is ``recorded_at``; ``performer`` is who made the grant: the patient, or for an
  emergency (break-the-glass) grant the provider who took it, since the patient did not consent to it
  (R4 lets the performer be the grantor or the grantee).
- ``policy`` names the contract that enforces the grant: authority ``urn:medvault:chain:<chainId>``,
  uri ``urn:medvault:consent-manager:<contract address>``; ``policyRule`` is the code
  ``smart-contract-enforced`` of the system ``urn:medvault:consent-policy``.
- With ``tx_hash``, ``identifier`` and ``sourceReference`` carry the transaction that recorded the
  grant: system ``urn:medvault:eth-tx:<chainId>``, value the lowercase 0x-prefixed hash.
- ``provision`` permits: ``period`` is valid_from to valid_until (valid_until is exclusive on chain;
  FHIR's period end is the instant access ends); ``actor`` is the grantee with v3-ParticipationType
  role IRCP (information recipient); ``action`` is consentaction "access"; ``purpose`` is the grant's
  v3-ActReason code; ``class`` holds the FHIR resource types of the granted categories, from
  ``medvault.fhir.CATEGORY_OF``.
- A research grant (purpose HRESCH) names its study when ``study`` is given: ``provision`` carries
  the extension ``consent-ResearchStudyContext`` (HL7's, for Consent.provision since R4), a reference
  to the ResearchStudy by identifier, system ``urn:medvault:study``, value the study id as the
  access request held it (its label, or 0x and 64 hex digits).
- An emergency grant carries ``meta.tag`` code ``emergency-access`` of the system
  ``urn:medvault:consent-flag`` (and its purpose is ETREAT, which the contract sets).

Times are ISO 8601 in UTC, to the second, with a "Z" (as fhir.resources writes them back, so the JSON
round-trips through the Consent model unchanged). A valid_until past the year 9999 (a grant that never
expires) cannot be written as a FHIR dateTime, so the period is then left open-ended.

``provision.class`` is coarser than medvault's categories in two ways: an Observation or
DiagnosticReport with an imaging category is an imaging record in medvault, but its resource type is
listed under laboratory only; and "notes" also holds every resource type that no other category
names, which a list of types cannot say. The classes list the types each category is named for.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eth_utils.address import is_address, to_checksum_address

from medvault.fhir import CATEGORY_OF, FhirValidationError, validate_resource
from medvault.fhir.rules import BINDINGS
from medvault.model import Category, Purpose

if TYPE_CHECKING:
    from medvault.model import Grant

__all__ = [
    "CONSENT_STATES",
    "EMERGENCY_TAG",
    "RESOURCE_TYPES_OF",
    "grant_to_fhir_consent",
]

CONSENT_STATES = frozenset(next(b.codes for b in BINDINGS["Consent"] if b.path == "status"))

_TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
LOINC = "http://loinc.org"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
CONSENT_POLICY_SYSTEM = "urn:medvault:consent-policy"
CONSENT_FLAG_SYSTEM = "urn:medvault:consent-flag"
STUDY_SYSTEM = "urn:medvault:study"
STUDY_EXTENSION = "http://hl7.org/fhir/StructureDefinition/consent-ResearchStudyContext"

EMERGENCY_TAG: dict[str, str] = {
    "system": CONSENT_FLAG_SYSTEM,
    "code": "emergency-access",
    "display": "Emergency (break-the-glass) access",
}

# FHIR resource types by medvault category, in CATEGORY_OF's order.
RESOURCE_TYPES_OF: dict[Category, tuple[str, ...]] = {
    category: tuple(kind for kind, name in CATEGORY_OF.items() if name == category.name.lower())
    for category in Category
}

_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def grant_to_fhir_consent(
    grant: Grant,
    *,
    status: str,
    recorded_at: int,
    chain_id: int,
    consent_manager: str,
    tx_hash: str | None = None,
    patient_reference: str | None = None,
    study: bytes | None = None,
) -> dict[str, Any]:
    """``grant`` as a FHIR R4 Consent resource (a JSON-shaped dict), validated.

    ``status`` is the Consent's state ("active", "inactive", "proposed"...), ``recorded_at`` when the
    grant was recorded (unix seconds), ``chain_id`` and ``consent_manager`` the chain and contract that
    enforce it, ``tx_hash`` the transaction that recorded it, and ``patient_reference`` a reference to
    the patient's Patient resource (e.g. ``"Patient/123"``), and ``study`` the study id (bytes32) of
    the access request a research grant answers. The same arguments give the same dict.

    Raises FhirValidationError if ``status`` is not a consent-state code, an address or the
    transaction hash is malformed, the validity window is empty, a study is given for a grant that is
    not for research, or the result is not a valid Consent.
    """
    if status not in CONSENT_STATES:
        raise FhirValidationError("Consent", f"status: {status!r} is not one of {', '.join(sorted(CONSENT_STATES))}")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise FhirValidationError("Consent", f"chain id must be a positive integer, got {chain_id!r}")
    for element, seconds in (("dateTime", recorded_at), ("provision.period", grant.valid_from)):
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
            raise FhirValidationError("Consent", f"{element}: expected unix seconds, got {seconds!r}")
    if study is not None and grant.purpose is not Purpose.HRESCH:
        raise FhirValidationError("Consent", "provision: only a research grant (purpose HRESCH) names a study")
    if grant.valid_from >= grant.valid_until:
        raise FhirValidationError("Consent", "provision.period: the grant's validity window is empty")
    recorded, start = _datetime(recorded_at), _datetime(grant.valid_from)
    if recorded is None or start is None:
        raise FhirValidationError("Consent", "dateTime or provision.period.start is past the year 9999")
    period = {"start": start}
    end = _datetime(grant.valid_until)
    if end is not None:  # else the grant never expires: leave the period open
        period["end"] = end

    patient = _account(grant.patient, chain_id, "patient")
    if patient_reference is not None:
        patient = {"reference": patient_reference, **patient}
    grantee = _account(grant.grantee, chain_id, "grantee")
    manager = _address(consent_manager, "consent manager")

    category = [_concept(LOINC, "59284-0", "Patient Consent")]
    if grant.purpose is Purpose.HRESCH:
        category.append(_concept(_TERMINOLOGY + "consentcategorycodes", "research", "Research Information Access"))

    consent: dict[str, Any] = {"resourceType": "Consent"}
    if grant.emergency:
        consent["meta"] = {"tag": [dict(EMERGENCY_TAG)]}
    transaction: dict[str, str] | None = None
    if tx_hash is not None:
        if not isinstance(tx_hash, str) or not _TX_HASH.fullmatch(tx_hash):
            raise FhirValidationError("Consent", "identifier: the transaction hash is not 0x and 64 hex digits")
        transaction = {"system": f"urn:medvault:eth-tx:{chain_id}", "value": tx_hash.lower()}
        consent["identifier"] = [transaction]
    consent |= {
        "status": status,
        "scope": _concept(_TERMINOLOGY + "consentscope", "patient-privacy", "Privacy Consent"),
        "category": category,
        "patient": patient,
        "dateTime": recorded,
        "performer": [grantee if grant.emergency else patient],
        "policy": [{"authority": f"urn:medvault:chain:{chain_id}", "uri": f"urn:medvault:consent-manager:{manager}"}],
        "policyRule": {
            "coding": [
                {
                    "system": CONSENT_POLICY_SYSTEM,
                    "code": "smart-contract-enforced",
                    "display": "Enforced by the medvault ConsentManager smart contract",
                }
            ],
            "text": f"Enforced by the ConsentManager contract {manager} on chain {chain_id}",
        },
    }
    if transaction is not None:
        consent["sourceReference"] = {
            "identifier": transaction,
            "display": f"Ethereum transaction {transaction['value']} on chain {chain_id}",
        }
    consent["provision"] = {
        **({"extension": [_study(study)]} if study is not None else {}),
        "type": "permit",
        "period": period,
        "actor": [
            {
                "role": _concept(_TERMINOLOGY + "v3-ParticipationType", "IRCP", "information recipient"),
                "reference": grantee,
            }
        ],
        "action": [_concept(_TERMINOLOGY + "consentaction", "access", "Access")],
        "purpose": [
            {"system": _TERMINOLOGY + "v3-ActReason", "code": grant.purpose.name, "display": grant.purpose.display}
        ],
        "class": [
            {"system": RESOURCE_TYPES, "code": kind}
            for scope in sorted(grant.scopes)
            for kind in RESOURCE_TYPES_OF[scope]
        ],
    }
    return validate_resource(consent)


def _study(study: bytes) -> dict[str, Any]:
    """The extension naming a research grant's study: its label, or its 32 bytes in hex."""
    label = study.rstrip(b"\0").decode(errors="replace")
    value = label if label.isprintable() and label and "\ufffd" not in label else "0x" + study.hex()
    return {
        "url": STUDY_EXTENSION,
        "valueReference": {
            "type": "ResearchStudy",
            "identifier": {"system": STUDY_SYSTEM, "value": value},
            "display": f"Research study {value}",
        },
    }


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _address(value: str, what: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise FhirValidationError("Consent", f"the {what} is not an Ethereum address")
    return str(to_checksum_address(value))


def _account(address: str, chain_id: int, what: str) -> dict[str, Any]:
    """A logical reference to an Ethereum account by its address."""
    return {"identifier": {"system": f"urn:medvault:eth-address:{chain_id}", "value": _address(address, what)}}


def _datetime(seconds: int) -> str | None:
    """Unix seconds as an ISO 8601 dateTime in UTC, or None past the year 9999 (FHIR years have four digits)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):
        return None
