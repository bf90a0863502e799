"""The R4 rules medvault checks beyond the fhir.resources models (which check structure and types,
not code values): the required value-set bindings of the status-like codes of the resource types
medvault writes, and the vital-signs profile that an Observation's LOINC code implies.

``problems(resource)`` lists what is wrong, each as ``"element: what is wrong"``. It names elements
and the codes allowed, never the values found: records are health data. It reads the raw JSON dict
and skips elements of the wrong shape, which the models already report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["BINDINGS", "VITAL_SIGNS", "Binding", "VitalSign", "problems"]

TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Binding:
    """A required binding: the element at ``path`` (a code, or a CodeableConcept when ``system`` is
    set) takes only ``codes``, the R4 value set ``value_set``. Lists on the path are walked."""

    path: str
    value_set: str
    codes: tuple[str, ...]
    system: str | None = None


def _code(path: str, value_set: str, codes: str) -> Binding:
    return Binding(path, value_set, tuple(codes.split()))


def _concept(path: str, code_system: str, codes: str) -> Binding:
    return Binding(path, code_system, tuple(codes.split()), TERMINOLOGY + code_system)


# The required bindings of R4 (4.0.1) for the resource types medvault writes and the ones it files
# under a category (medvault.fhir.CATEGORY_OF), from each resource's page of the specification.
BINDINGS: dict[str, tuple[Binding, ...]] = {
    "Observation": (
        _code(
            "status",
            "observation-status",
            "registered preliminary final amended corrected cancelled entered-in-error unknown",
        ),
    ),
    "DiagnosticReport": (
        _code(
            "status",
            "diagnostic-report-status",
            "registered partial preliminary final amended corrected appended cancelled entered-in-error unknown",
        ),
    ),
    "Condition": (
        _concept("clinicalStatus", "condition-clinical", "active recurrence relapse inactive remission resolved"),
        _concept(
            "verificationStatus",
            "condition-ver-status",
            "unconfirmed provisional differential confirmed refuted entered-in-error",
        ),
    ),
    "MedicationRequest": (
        _code(
            "status",
            "medicationrequest-status",
            "active on-hold cancelled completed entered-in-error stopped draft unknown",
        ),
        _code(
            "intent",
            "medicationrequest-intent",
            "proposal plan order original-order reflex-order filler-order instance-order option",
        ),
    ),
    "MedicationStatement": (
        _code(
            "status",
            "medication-statement-status",
            "active completed entered-in-error intended stopped on-hold unknown not-taken",
        ),
    ),
    "Immunization": (_code("status", "immunization-status", "completed entered-in-error not-done"),),
    "AllergyIntolerance": (
        _concept("clinicalStatus", "allergyintolerance-clinical", "active inactive resolved"),
        _concept(
            "verificationStatus", "allergyintolerance-verification", "unconfirmed confirmed refuted entered-in-error"
        ),
        _code("type", "allergy-intolerance-type", "allergy intolerance"),
        _code("category", "allergy-intolerance-category", "food medication environment biologic"),
        _code("criticality", "allergy-intolerance-criticality", "low high unable-to-assess"),
        _code("reaction.severity", "reaction-event-severity", "mild moderate severe"),
    ),
    "ImagingStudy": (
        _code("status", "imagingstudy-status", "registered available cancelled entered-in-error unknown"),
    ),
    "DocumentReference": (
        _code("status", "document-reference-status", "current superseded entered-in-error"),
        _code("docStatus", "composition-status", "preliminary final amended entered-in-error"),
    ),
    "Composition": (_code("status", "composition-status", "preliminary final amended entered-in-error"),),
    "Consent": (_code("status", "consent-state-codes", "draft proposed active rejected inactive entered-in-error"),),
    "Patient": (_code("gender", "administrative-gender", "male female other unknown"),),
}


@dataclass(frozen=True)
class VitalSign:
    """An R4 vital-signs profile: the LOINC code it fixes and the UCUM units its value may take."""

    profile: str
    loinc: str
    units: tuple[str, ...]


# http://hl7.org/fhir/R4/observation-vitalsigns.html: one profile per vital sign.
VITAL_SIGNS: dict[str, VitalSign] = {
    v.loinc: v
    for v in (
        VitalSign("resprate", "9279-1", ("/min",)),
        VitalSign("heartrate", "8867-4", ("/min",)),
        VitalSign("oxygensat", "2708-6", ("%",)),
        VitalSign("bodytemp", "8310-5", ("Cel", "[degF]")),
        VitalSign("bodyheight", "8302-2", ("cm", "[in_i]")),
        VitalSign("headcircum", "9843-4", ("cm", "[in_i]")),
        VitalSign("bodyweight", "29463-7", ("kg", "g", "[lb_av]")),
        VitalSign("bmi", "39156-5", ("kg/m2",)),
        VitalSign("bp", "85354-9", ()),  # its value is in the systolic and diastolic components
        VitalSign("vitalspanel", "85353-1", ()),  # its values are its members
    )
}
# More specific LOINC codes that imply a profile: R4 asks for the profile's code beside them.
SPECIFIC_CODES = {"59408-5": "2708-6", "8331-1": "8310-5", "8332-9": "8310-5", "3141-9": "29463-7"}
BP_COMPONENTS = (("8480-6", "systolic"), ("8462-4", "diastolic"))


def problems(resource: Mapping[str, Any]) -> list[str]:
    """What breaks a required binding or an implied vital-signs profile, in words ([] if nothing)."""
    found = [
        problem
        for binding in BINDINGS.get(resource.get("resourceType", ""), ())
        for problem in _bound(resource, binding)
    ]
    if resource.get("resourceType") == "Observation":
        found += _vital_signs(resource)
    if resource.get("resourceType") in ("Condition", "AllergyIntolerance"):
        found += _status_invariants(resource)
    return found


def _status_invariants(resource: Mapping[str, Any]) -> list[str]:
    """R4's invariants between the clinical and verification statuses (con-4, con-5, ait-1, ait-2)."""
    condition = resource["resourceType"] == "Condition"
    system = TERMINOLOGY + ("condition-" if condition else "allergyintolerance-")
    clinical = resource.get("clinicalStatus")
    refuted = "entered-in-error" in _codes(
        resource.get("verificationStatus"), system + ("ver-status" if condition else "verification")
    )
    if refuted:  # a record entered in error has no clinical status, abated or not
        return (
            [] if clinical is None else ["clinicalStatus: must be absent when verificationStatus is entered-in-error"]
        )
    if not condition and clinical is None:
        return ["clinicalStatus: required unless verificationStatus is entered-in-error"]
    abated = any(key.startswith("abatement") for key in resource)
    if condition and abated and not _codes(clinical, system + "clinical") & {"inactive", "resolved", "remission"}:
        return ["clinicalStatus: a condition with an abatement must be inactive, resolved or remission"]
    return []


def _at(value: Any, path: list[str], where: str) -> Iterator[tuple[str, Any]]:
    """(location, value) of each element at ``path`` under ``value``, walking lists."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _at(item, path, f"{where}[{i}]")
    elif not path:
        yield where, value
    elif isinstance(value, dict) and path[0] in value:
        yield from _at(value[path[0]], path[1:], f"{where}.{path[0]}".lstrip("."))


def _bound(resource: Mapping[str, Any], binding: Binding) -> Iterator[str]:
    allowed = f"{binding.value_set} ({', '.join(binding.codes)})"
    for where, value in _at(resource, binding.path.split("."), ""):
        if binding.system is None:
            if isinstance(value, str) and value not in binding.codes:
                yield f"{where}: not a code of {allowed}"
            continue
        codings = value.get("coding") if isinstance(value, dict) else None
        if not isinstance(codings, list):
            codings = []
        ours = [(i, c) for i, c in enumerate(codings) if isinstance(c, dict) and c.get("system") == binding.system]
        if not ours:
            yield f"{where}: needs a coding from {binding.system} ({', '.join(binding.codes)})"
        for i, coding in ours:
            if coding.get("code") not in binding.codes:
                yield f"{where}.coding[{i}].code: not a code of {allowed}"


def _codes(concept: Any, system: str) -> set[str]:
    codings = _list(concept.get("coding")) if isinstance(concept, dict) else []
    return {
        c["code"]
        for c in codings
        if isinstance(c, dict) and c.get("system") == system and isinstance(c.get("code"), str)
    }


def _vital_signs(observation: Mapping[str, Any]) -> list[str]:
    """The R4 vital-signs profile's rules, for an Observation whose LOINC code names a vital sign."""
    loinc = _codes(observation.get("code"), LOINC)
    implied = {SPECIFIC_CODES[c] for c in loinc if c in SPECIFIC_CODES} | (loinc & VITAL_SIGNS.keys())
    if not implied:
        return []
    found = [
        f"code: a vital sign of the {VITAL_SIGNS[code].profile} profile needs the LOINC code {code} as well"
        for code in sorted(implied - loinc)
    ]
    categories = observation.get("category")
    if not any("vital-signs" in _codes(c, TERMINOLOGY + "observation-category") for c in _list(categories)):
        found.append(f"category: a vital sign needs the category {TERMINOLOGY}observation-category vital-signs")
    if not isinstance(observation.get("subject"), dict):
        found.append("subject: a vital sign needs the patient it was measured on")
    moment = observation.get("effectiveDateTime")
    if moment is None and not isinstance(observation.get("effectivePeriod"), dict):
        found.append("effective[x]: a vital sign needs when it was measured (effectiveDateTime or effectivePeriod)")
    elif isinstance(moment, str) and len(moment) < len("2025-06-30"):
        found.append("effectiveDateTime: a vital sign's time must be precise to the day at least")
    for code in sorted(implied):
        sign = VITAL_SIGNS[code]
        if code == "85354-9":
            found += _blood_pressure(observation)
        elif sign.units:
            found += _value(observation, "", sign)
        elif not observation.get("hasMember"):
            found.append("hasMember: a vital-signs panel needs its members")
    return found


def _value(element: Mapping[str, Any], where: str, sign: VitalSign) -> list[str]:
    """A vital sign's value: a UCUM Quantity in the profile's units, or a dataAbsentReason."""
    quantity = element.get("valueQuantity")
    if quantity is None:
        if element.get("dataAbsentReason") is not None:
            return []
        return [f"{where}valueQuantity: a vital sign needs a value (a Quantity) or a dataAbsentReason"]
    if not isinstance(quantity, dict):
        return []
    units = " or ".join(sign.units)
    found = [
        f"{where}valueQuantity.{key}: required by the {sign.profile} profile"
        for key in ("value", "unit")
        if key not in quantity
    ]
    if quantity.get("system") != UCUM or quantity.get("code") not in sign.units:
        found.append(f"{where}valueQuantity: the {sign.profile} profile needs system {UCUM} and code {units}")
    return found


def _blood_pressure(observation: Mapping[str, Any]) -> list[str]:
    found = []
    components = list(enumerate(_list(observation.get("component"))))
    for loinc, name in BP_COMPONENTS:
        matches = [(i, c) for i, c in components if isinstance(c, dict) and loinc in _codes(c.get("code"), LOINC)]
        if not matches:
            found.append(f"component: a blood pressure needs a {name} component (LOINC {loinc})")
        for i, component in matches:
            found += _value(component, f"component[{i}].", VitalSign(f"bp {name}", loinc, ("mm[Hg]",)))
    return found


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
