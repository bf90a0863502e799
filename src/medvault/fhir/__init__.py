"""FHIR R4 resources: validation, record categories and canonical bytes.

medvault stores FHIR R4 JSON resources as records. This package checks that a resource is valid
FHIR (``validate_resource``), maps it to a medvault record category (``category_for``) and
serialises it to canonical bytes (``to_json_bytes``); ``consent`` writes a grant as a FHIR Consent.

Resources are plain dicts in the R4 JSON shape. They are validated with the R4B (4.3.0) models of
``fhir.resources``, because that package ships no plain R4 models. R4B validates every R4 shape
medvault makes. The models check structure, types and required elements, but not code values;
``medvault.fhir.rules`` adds the required value-set bindings of status and intent codes and the
vital-signs profile a vital sign's LOINC code implies. Every problem is reported at once.
"""

from __future__ import annotations

import functools
import json
import re
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as _ResourceModel
from pydantic import ValidationError

from medvault.errors import FhirValidationError
from medvault.fhir import rules

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CATEGORY_OF",
    "RECORD_CATEGORIES",
    "FhirValidationError",
    "category_for",
    "to_json_bytes",
    "validate_resource",
]


# --- record categories ---------------------------------------------------------------------------

RECORD_CATEGORIES = ("laboratory", "imaging", "medications", "conditions", "immunizations", "notes")

# Category by resourceType. Any resourceType not listed here is "notes". For Observation and
# DiagnosticReport, category_for also looks at the resource's category codes.
CATEGORY_OF: dict[str, str] = {
    "Observation": "laboratory",  # includes vital signs and other measurements
    "DiagnosticReport": "laboratory",
    "ImagingStudy": "imaging",
    "MedicationRequest": "medications",
    "MedicationStatement": "medications",
    "Condition": "conditions",
    "AllergyIntolerance": "conditions",
    "Immunization": "immunizations",
    "DocumentReference": "notes",
    "Composition": "notes",
}

# Category codes that make an Observation or DiagnosticReport an imaging record: observation-category
# "imaging", the radiology/imaging sections of HL7 v2 table 0074, and LOINC's Radiology part.
_IMAGING_CODES = frozenset({"imaging", "RAD", "CT", "NMR", "NMS", "RUS", "OUS", "VUS", "CUS", "LP29684-5"})


def category_for(resource: Mapping[str, Any]) -> str:
    """The medvault record category of a FHIR resource, e.g. ``"laboratory"``.

    Every Observation is "laboratory" (vital signs too), except one whose category is imaging, which
    is "imaging". The same goes for a DiagnosticReport with a radiology category. Types that are not
    in ``CATEGORY_OF`` are "notes".
    """
    kind = resource.get("resourceType")
    category = CATEGORY_OF.get(kind, "notes") if isinstance(kind, str) else "notes"
    if kind in ("Observation", "DiagnosticReport") and _category_codes(resource) & _IMAGING_CODES:
        return "imaging"
    return category


def _category_codes(resource: Mapping[str, Any]) -> set[str]:
    concepts = resource.get("category")
    codes: set[str] = set()
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str):
                codes.add(code)
    return codes


# --- validation and serialisation ----------------------------------------------------------------


@functools.cache
def _model(kind: str) -> Any:
    """The fhir.resources model for a resource type, or None if ``kind`` names no concrete resource."""
    try:
        model = get_fhir_model_class(kind)
    except ValueError:
        return None
    # get_fhir_model_class also returns data types (Coding, Quantity...), which are not resources.
    if not issubclass(model, _ResourceModel) or kind in ("Resource", "DomainResource"):
        return None
    return model


_JSON_TYPES = {list: "a JSON array", str: "a JSON string", int: "a number", float: "a number", bool: "true or false"}


def validate_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """Return ``resource`` unchanged if it is valid FHIR for its resourceType, else raise
    FhirValidationError naming every problem found (``"element: what is wrong"``, joined by "; ")."""
    if not isinstance(resource, dict):
        what = "null" if resource is None else _JSON_TYPES.get(type(resource), type(resource).__name__)
        raise FhirValidationError(None, f"a FHIR resource is a JSON object, not {what}")
    kind = resource.get("resourceType")
    if kind is None:
        raise FhirValidationError(None, 'resourceType is missing (e.g. "resourceType": "Observation")')
    model = _model(kind) if isinstance(kind, str) else None
    if model is None:
        raise FhirValidationError(None, f"unknown resourceType {kind!r}")
    found = [*_model_problems(model, resource), *_top_level_gaps(model, resource), *rules.problems(resource)]
    if found:
        raise FhirValidationError(kind, "; ".join(dict.fromkeys(found)))
    return resource


def _model_problems(model: Any, resource: dict[str, Any]) -> list[str]:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        found = []
        for error in exc.errors():
            loc = error["loc"]
            if loc == () or (len(loc) == 1 and error["type"] == "model_field_validation.missing"):
                continue  # the resource's own required and choice elements: _top_level_gaps reports them
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            # Name the element, never echo its value: records are health data.
            found.append(f"{where or '(resource)'}: {_message(error['type'], ' '.join(error['msg'].split()))}")
        return found
    return []


def _message(kind: str, message: str) -> str:
    """The models' message in medvault's words where they read as Python ("Value error, ...")."""
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if pattern := re.fullmatch(r"Value error, (\w)(\w*) value string does not match spec regex\.", message):
        return f"not a valid FHIR {pattern[1].lower()}{pattern[2]}"  # "DateTime" -> "dateTime"
    return message.removeprefix("Value error, ")


_MESSAGES = {
    "missing": "required, but missing",
    "model_field_validation.missing": "required, but missing",
    "extra_forbidden": "not an element of this resource type in FHIR R4",
    "json_invalid": "expected a JSON object",
    "list_type": "expected a JSON array",
}


def _top_level_gaps(model: Any, resource: dict[str, Any]) -> list[str]:
    """The resource's missing required primitives and choice elements. The models check these only
    once every element is valid, so they would otherwise come one refusal later."""
    probe = model.model_construct()
    found = []
    for name, _ in probe.get_required_fields():
        extension = resource.get(f"_{name}")
        if resource.get(name) is None and not (isinstance(extension, dict) and extension.get("extension")):
            found.append(f"{name}: required, but missing")
    for prefix, fields in probe.get_one_of_many_fields().items():
        given = [f for f in fields if resource.get(f) is not None]
        if len(given) > 1:
            found.append(f"{prefix}[x]: only one of {', '.join(given)} may be given")
        elif not given and model.model_fields[fields[0]].json_schema_extra["one_of_many_required"]:
            found.append(f"{prefix}[x]: required, but missing (one of {', '.join(fields)})")
    return found


def to_json_bytes(resource: Mapping[str, Any]) -> bytes:
    """Compact canonical JSON (sorted keys, no whitespace), UTF-8: equal resources give equal bytes."""
    return json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
