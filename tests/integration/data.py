"""Test data the integration tests share: FHIR resources as the bytes a provider writes, the
scope most tests grant, a day of chain time, and the conftest keystores' passphrase.

Importable as ``from data import ...``: pytest puts this folder on ``sys.path`` (rootdir-less
``prepend`` imports, no ``__init__.py`` in ``tests/``)."""

from __future__ import annotations

import json

from medvault.model import Category

__all__ = ["ALL", "DAY", "LAB", "LABS", "MEDS", "PASSPHRASE"]

PASSPHRASE = "correct horse battery staple"  # every keystore account the fixtures create
LAB = json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}).encode()
MEDS = json.dumps({"resourceType": "MedicationRequest", "status": "active"}).encode()
LABS = frozenset({Category.LABORATORY})
ALL = frozenset(Category)
DAY = 86_400
