"""FHIR R4 resources: validation, record categories and canonical bytes.

medvault stores FHIR R4 JSON resources as records. This package checks that a resource is valid
FHIR (``validate_resource``), maps it to a medvault record category (``category_for``) and
serialises it to canonical bytes (``to_json_bytes``); ``consent`` writes a grant as a FHIR Consent.

Resources are plain dicts in the R4 JSON shape. They are validated with the R4B (4.3.0) models of
``fhir.resources``, because that package ships no plain R4 models. R4B validates every R4 shape
medvault makes. The models check structure, types and required elements. They do not check code
values against their value sets (``status: "bogus"`` passes).
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource as _ResourceModel
from pydantic import ValidationError

from medvault.errors import FhirValidationError

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


def validate_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """Return ``resource`` unchanged if it is valid FHIR for its resourceType, else raise FhirValidationError."""
    if not isinstance(resource, dict):
        raise FhirValidationError(None, f"expected a JSON object, got {type(resource).__name__}")
    kind = resource.get("resourceType")
    model = _model(kind) if isinstance(kind, str) else None
    if model is None:
        raise FhirValidationError(None, f"unknown resourceType {kind!r}")
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        # Name the element, never echo its value: records are health data.
        raise FhirValidationError(kind, f"{where or '(resource)'}: {' '.join(first['msg'].split())}{more}") from None
    return resource


def to_json_bytes(resource: Mapping[str, Any]) -> bytes:
    """Compact canonical JSON (sorted keys, no whitespace), UTF-8: equal resources give equal bytes."""
    return json.dumps(resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
