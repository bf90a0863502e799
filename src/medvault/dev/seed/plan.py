"""The seeding plan: every account, record and consent decision of a run, as a function of
(seed, patients, records per patient); see ``medvault.dev.seed``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak

from medvault.dev.synthetic import synthetic_patient, synthetic_records
from medvault.dev.wallets import dev_wallet
from medvault.errors import SeedError
from medvault.fhir import category_for, to_json_bytes
from medvault.formats import envelope
from medvault.model import Category

if TYPE_CHECKING:
    from medvault.accounts import Wallet

__all__ = ["GrantPlan", "PatientPlan", "RequestPlan", "SeedPlan", "plaintexts", "plan_seed"]

GRANT_SHARE = 0.30
REQUEST_SHARE = 0.10
APPROVE_SHARE = 0.70
DENY_SHARE = 0.15
GRANT_DAYS = 365
REQUEST_DAYS = 180
RESEARCH_SCOPES = (Category.LABORATORY, Category.CONDITIONS, Category.MEDICATIONS)
CONTENT_TYPE = "application/fhir+json"


@dataclass(frozen=True)
class GrantPlan:
    provider: int
    scopes: frozenset[Category]


@dataclass(frozen=True)
class RequestPlan:
    researcher: int
    scopes: frozenset[Category]
    study: bytes  # bytes32 study id
    decision: str  # "approve", "deny" or "pending"


@dataclass
class PatientPlan:
    index: int
    wallet: Wallet
    author: int  # the provider who writes this patient's records
    grant: GrantPlan | None
    request: RequestPlan | None
    _records: list[tuple[Category, bytes]] | None = field(default=None, repr=False)
    seed: str = ""
    record_count: int = 0

    def records(self) -> list[tuple[Category, bytes]]:
        """(category, plaintext) of each record, in log order: the Patient resource, then the
        chart. The plaintext is exactly what ``Medvault.add_record`` seals (a JSON header line
        with the content type and a name, then the FHIR JSON)."""
        if self._records is None:
            self._records = plaintexts(self.seed, self.index, self.record_count)
        return self._records


@dataclass
class SeedPlan:
    seed: str
    patients: list[PatientPlan]
    providers: list[Wallet]
    researchers: list[Wallet]
    records_per_patient: int

    @property
    def grants(self) -> list[PatientPlan]:
        return [p for p in self.patients if p.grant]

    @property
    def requests(self) -> list[PatientPlan]:
        return [p for p in self.patients if p.request]

    def decisions(self, kind: str) -> list[PatientPlan]:
        return [p for p in self.patients if p.request and p.request.decision == kind]

    def summary(self) -> dict[str, int]:
        return {
            "patients": len(self.patients),
            "providers": len(self.providers),
            "researchers": len(self.researchers),
            "records": len(self.patients) * self.records_per_patient,
            "grants": len(self.grants),
            "requests": len(self.requests),
            "approved": len(self.decisions("approve")),
            "denied": len(self.decisions("deny")),
            "pending": len(self.decisions("pending")),
        }


def _wallet(seed: str, role: str, index: int) -> Wallet:
    # Synthetic data on a dev chain: the key is a function of the seed, kept in memory only.
    return dev_wallet(f"seed-{role}-{index}", keccak(text=f"medvault seed {seed} {role} {index}"))


def plaintexts(seed: str, index: int, count: int) -> list[tuple[Category, bytes]]:
    """(category, plaintext) of the ``count`` records of the plan's patient ``index``
    (``PatientPlan.records``): a function of the seed and the index alone."""
    rng = random.Random(f"medvault seed {seed} fhir {index}")  # noqa: S311 - reproducible synthetic data
    patient = synthetic_patient(rng)
    resources = [patient, *synthetic_records(rng, patient, count - 1)]
    return [(Category[category_for(r).upper()], _plaintext(r)) for r in resources]


def _plaintext(resource: dict[str, Any]) -> bytes:
    name = f"{resource['resourceType']}/{resource.get('id', '')}"
    return envelope.pack(to_json_bytes(resource), CONTENT_TYPE, name)


def plan_seed(seed: str | int, patients: int, records_per_patient: int) -> SeedPlan:
    """Everything a seeding run does, as a function of (seed, patients, records_per_patient)."""
    if patients < 1 or records_per_patient < 1:
        raise SeedError("seeding needs at least one patient and one record per patient")
    seed = str(seed)
    rng = random.Random(f"medvault seed {seed} plan {patients} {records_per_patient}")  # noqa: S311 - as above
    providers = [_wallet(seed, "provider", i) for i in range(patients // 50 + 1)]
    researchers = [_wallet(seed, "researcher", i) for i in range(patients // 200 + 1)]
    granting = set(rng.sample(range(patients), round(GRANT_SHARE * patients)))
    requested = rng.sample(range(patients), max(1, round(REQUEST_SHARE * patients)))
    approved = round(APPROVE_SHARE * len(requested))
    denied = round(DENY_SHARE * len(requested))
    decisions = {
        p: "approve" if k < approved else "deny" if k < approved + denied else "pending"
        for k, p in enumerate(requested)
    }
    plans = []
    for i in range(patients):
        grant = request = None
        if i in granting:
            scopes = frozenset(rng.sample(list(Category), rng.randint(2, 5)))
            grant = GrantPlan(rng.randrange(len(providers)), scopes)
        if i in decisions:
            researcher = rng.randrange(len(researchers))
            scopes = frozenset(rng.sample(RESEARCH_SCOPES, rng.randint(1, len(RESEARCH_SCOPES))))
            study = f"SEED-STUDY-{researcher}".encode().ljust(32, b"\0")
            request = RequestPlan(researcher, scopes, study, decisions[i])
        author = rng.randrange(len(providers))
        wallet = _wallet(seed, "patient", i)
        plans.append(PatientPlan(i, wallet, author, grant, request, seed=seed, record_count=records_per_patient))
    return SeedPlan(seed, plans, providers, researchers, records_per_patient)
