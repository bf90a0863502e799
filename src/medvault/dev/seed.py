"""Seeding a development deployment with synthetic patients, providers, researchers and consent.

``medvault seed --patients N --records-per-patient R --seed S`` (and ``ape run seed``) fills a
deployment on a local anvil with realistic, entirely synthetic data:

* Accounts, derived from the seed value and held in memory only (never written to disk): the
  private key of the i-th account of a role is keccak256("medvault seed <seed> <role> <i>").
  ``N // 50 + 1`` providers, ``N // 200 + 1`` researchers and N patients. Every account is
  funded with ``anvil_setBalance`` and registers its encryption key; providers and researchers
  are accredited by the deployment's admin (impersonated on anvil unless an admin wallet is
  given).
* Per patient, R FHIR R4 records validated with ``fhir.resources``: record 0 is the Patient
  resource, the others come from ``medvault.fhir.synthetic_records`` (Observations with LOINC
  codes, DiagnosticReports, Conditions, MedicationRequests, Immunizations,
  AllergyIntolerances). Each patient is assigned one provider, who authors all their records
  in a single ``addRecords`` transaction. Each record is sealed as ``Medvault.add_record``
  seals it (AES-256-GCM bound to its place in the log); its key is wrapped for the patient,
  the author and every grantee whose planned grant covers its category. The wraps of one
  patient's batch share one key bundle (each wrap names its record index), so a batch costs
  R + 1 IPFS objects.
* Consent, in fixed proportions: round(30 %) of the patients grant one provider (TREAT, one
  year) access to two to five categories; round(10 %) of the patients (at least one) get a
  research request (HRESCH, 180 days, laboratory / conditions / medications) from one of the
  researchers; of those requests, round(70 %) are approved, round(15 %) denied and the rest left
  pending. Which patients, providers, researchers and scopes is drawn from the seed.

Grants and decisions are made before the records are written, so records are wrapped for the
grantees directly and no key-sharing bundles are needed.

The whole plan is a function of (seed, N, R). Each phase first reads what the chain already
holds (registered? accredited? grant present? request made or decided? how many records?) and
does only what is missing, so a run killed at any point (SIGKILL included) and started again
completes with no duplicate records, grants or requests and nothing lost. A patient's records
land all at once (one transaction); if a log holds some but not all, seeding continues from its
count. Objects added to IPFS by a killed run and never referenced on chain stay pinned.

Speed: reads and transactions go through ``medvault.chain.pipeline``: calldata encoded from
the ABI once per function, transactions signed locally with explicit nonces and a fixed gas
limit per kind, sent as JSON-RPC batches without waiting, and their receipts fetched in bulk
(every status is checked; a failure stops the run with the action and transaction named,
``SeedError``). The files of
``CHUNK_PATIENTS`` patients go to IPFS in one request, wrapped in one directory that one
recursive pin keeps (``IpfsClient.add_wrapped``: a pin per file costs ten times the add), in a
worker thread that overlaps with sealing and sending.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from eth_account import Account
from eth_utils.crypto import keccak

from medvault.accounts import Wallet
from medvault.chain.pipeline import BatchRpc, Method, PipelinedSender
from medvault.crypto import encrypt_record, new_record_key
from medvault.dev import anvil
from medvault.dev.synthetic import synthetic_patient, synthetic_records
from medvault.errors import ContractError, SeedError
from medvault.fhir import category_for, to_json_bytes
from medvault.formats import envelope
from medvault.formats.keybundle import wrap_for
from medvault.ipfs import cid_to_bytes
from medvault.model import Category, Purpose, RequestStatus, Role, scope_mask

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medvault.chain import Chain
    from medvault.client import Medvault
    from medvault.formats.keybundle import Wrap

__all__ = [
    "GAS",
    "PatientPlan",
    "Progress",
    "SealedChunks",
    "SeedError",
    "SeedPlan",
    "SeedReport",
    "chunk_files",
    "plan_seed",
    "run_seed",
    "seed_state",
]

GRANT_SHARE = 0.30
REQUEST_SHARE = 0.10
APPROVE_SHARE = 0.70
DENY_SHARE = 0.15
GRANT_DAYS = 365
REQUEST_DAYS = 180
RESEARCH_SCOPES = (Category.LABORATORY, Category.CONDITIONS, Category.MEDICATIONS)
CHUNK_PATIENTS = 20  # patients sealed, added to IPFS and sent together (about 220 files at R = 10)
FUNDS = 10**22
# Fixed gas limits per kind, generous (measured use is about half or less); a batch of records
# gets a base plus a per-record allowance.
GAS = {"register": 150_000, "accredit": 150_000, "grant": 200_000, "request": 200_000, "decide": 200_000}
GAS_BATCH_BASE, GAS_PER_RECORD = 100_000, 60_000
CONTENT_TYPE = "application/fhir+json"
# An AccessRequested event's fields that, with its studyId, make the request tuple.
REQUEST_FIELDS = ("patient", "researcher", "scopes", "purpose", "duration", "requestedAt")

Progress: TypeAlias = Callable[[str, int, int], None]
"""Told (phase, units done so far, units in all) as a phase starts and as units complete."""


# -- the plan ----------------------------------------------------------------------------------


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
            rng = random.Random(f"medvault seed {self.seed} fhir {self.index}")  # noqa: S311 - reproducible synthetic data
            patient = synthetic_patient(rng)
            resources = [patient, *synthetic_records(rng, patient, self.record_count - 1)]
            self._records = [(Category[category_for(r).upper()], _plaintext(r)) for r in resources]
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
    return Wallet(f"seed-{role}-{index}", Account.from_key(keccak(text=f"medvault seed {seed} {role} {index}")))


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


# -- chain state ---------------------------------------------------------------------------------


@dataclass
class _State:
    registered: set[str]
    providers: set[str]
    researchers: set[str]
    granted: set[int]  # patient indexes whose planned grant is on chain
    requests: dict[int, tuple[tuple[Any, ...], RequestStatus]]  # patient index -> (request tuple, status)
    counts: list[int]  # records in each patient's log


def _read_state(chain: Chain, rpc: BatchRpc, plan: SeedPlan) -> _State:
    wallets = [*plan.providers, *plan.researchers, *(p.wallet for p in plan.patients)]
    key_hash = Method.of(chain.participants, "encryptionKeyHash")
    keys = rpc.eth_calls([(key_hash, [w.address]) for w in wallets])
    is_provider, is_researcher = (
        Method.of(chain.participants, "isProvider"),
        Method.of(chain.participants, "isResearcher"),
    )
    roles = rpc.eth_calls([(is_provider, [w.address]) for w in plan.providers])
    roles += rpc.eth_calls([(is_researcher, [w.address]) for w in plan.researchers])
    grants = plan.grants
    grant_of = Method.of(chain.consent, "grantOf")
    grant_words = rpc.eth_calls(
        [(grant_of, [g.wallet.address, plan.providers[g.grant.provider].address]) for g in grants if g.grant]
    )
    log_of = Method.of(chain.records, "logOf")
    logs = rpc.eth_calls([(log_of, [q.wallet.address]) for q in plan.patients])
    return _State(
        registered={w.address for w, (k,) in zip(wallets, keys, strict=True) if k != bytes(32)},
        providers={w.address for w, (ok,) in zip(plan.providers, roles, strict=False) if ok},
        researchers={w.address for w, (ok,) in zip(plan.researchers, roles[len(plan.providers) :], strict=True) if ok},
        granted={g.index for g, ((_, until, *_),) in zip(grants, grant_words, strict=True) if until != 0},
        requests=_read_requests(chain, rpc, plan),
        counts=[int(count) for _, count in logs],
    )


def _read_requests(chain: Chain, rpc: BatchRpc, plan: SeedPlan) -> dict[int, tuple[tuple[Any, ...], RequestStatus]]:
    """The planned requests already made (matched by patient, researcher and study), with status."""
    wanted = {
        (q.wallet.address, plan.researchers[q.request.researcher].address, q.request.study): q.index
        for q in plan.requests
        if q.request
    }
    found: dict[int, tuple[Any, ...]] = {}
    ids: list[int] = []
    for researcher in {plan.researchers[q.request.researcher].address for q in plan.requests if q.request}:
        for event in chain.events("ConsentManager", "AccessRequested", researcher=researcher):
            a = event["args"]
            index = wanted.get((a["patient"], a["researcher"], bytes(a["studyId"])))
            if index is not None and index not in found:
                found[index] = (*(a[k] for k in REQUEST_FIELDS), bytes(a["studyId"]))
                ids.append(a["requestId"])
    request_status = Method.of(chain.consent, "requestStatus")
    statuses = rpc.eth_calls([(request_status, [i]) for i in ids])
    return {index: (request, RequestStatus(s)) for (index, request), (s,) in zip(found.items(), statuses, strict=True)}


def seed_state(chain: Chain, rpc_url: str, plan: SeedPlan) -> dict[str, Any]:
    """What of ``plan`` the chain holds now, in the terms of ``SeedPlan.summary``."""
    state = _read_state(chain, BatchRpc(rpc_url), plan)
    statuses = [s for _, s in state.requests.values()]
    return {
        "registered": len(state.registered),
        "providers": len(state.providers),
        "researchers": len(state.researchers),
        "records": sum(state.counts),
        "record_counts": state.counts,
        "grants": len(state.granted),
        "requests": len(state.requests),
        "approved": statuses.count(RequestStatus.APPROVED),
        "denied": statuses.count(RequestStatus.DENIED),
        "pending": statuses.count(RequestStatus.PENDING),
    }


# -- the run -------------------------------------------------------------------------------------


@dataclass
class SeedReport:
    plan: dict[str, int]
    done: dict[str, int]  # what this run sent (so 0 everywhere for a complete deployment)
    transactions: int
    ipfs_files: int
    seconds: float
    phases: dict[str, float]  # seconds per phase

    def to_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "done": self.done,
            "transactions": self.transactions,
            "ipfs_files": self.ipfs_files,
            "seconds": round(self.seconds, 2),
            "phases": {k: round(v, 2) for k, v in self.phases.items()},
        }


class _Counter:
    """Counts the units of work done and tells the progress callback, if there is one."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total, self.done, self.phase = total, 0, ""
        self.progress = progress

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        if self.progress is not None:
            self.progress(phase, self.done, self.total)

    def advance(self, units: int) -> None:
        self.done += units
        if self.progress is not None:
            self.progress(self.phase, self.done, self.total)


def run_seed(
    mv: Medvault,
    rpc_url: str,
    plan: SeedPlan,
    *,
    admin: Wallet | None = None,
    progress: bool | Progress | None = None,
    stop_after: int | None = None,
    capture: SealedChunks | None = None,
    replay: SealedChunks | None = None,
) -> SeedReport:
    """Does what of ``plan`` the chain does not hold yet; see the module docstring.

    ``admin`` accredits providers and researchers (it must hold ACCREDITOR_ROLE); without it
    the deployer is impersonated, which only anvil allows. ``progress`` is told (phase, units
    done, units in all) as the run goes; ``True`` draws a progress bar on stderr
    (``medvault.dev.progress.TerminalProgress``). ``stop_after`` (for tests) stops after that
    many patients' record batches.

    For benchmarks: ``capture`` collects, chunk by chunk, the sealed records and the CIDs IPFS
    gave them; ``replay`` sends the records of such a capture (from a run of the same plan on
    another fresh deployment) instead of sealing and adding them: the chain calls alone.
    """
    if progress is not True:
        return _run(mv, rpc_url, plan, admin, progress or None, stop_after, capture, replay)
    from medvault.dev.progress import TerminalProgress  # click, only when a terminal bar is asked for

    bar = TerminalProgress("seeding")
    try:
        return _run(mv, rpc_url, plan, admin, bar, stop_after, capture, replay)
    finally:
        bar.close()


def _run(
    mv: Medvault,
    rpc_url: str,
    plan: SeedPlan,
    admin: Wallet | None,
    progress: Progress | None,
    stop_after: int | None,
    capture: SealedChunks | None,
    replay: SealedChunks | None,
) -> SeedReport:
    started = time.monotonic()
    rpc = BatchRpc(rpc_url)
    chain = mv.chain
    if not str(rpc.call("web3_clientVersion", [])).lower().startswith("anvil"):
        raise SeedError("seeding funds its accounts with anvil_setBalance: point --rpc-url at a local anvil")
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = phases.get(name, 0.0) + now - mark
        mark = now

    state = _read_state(chain, rpc, plan)
    lap("read state")
    wallets = [*plan.providers, *plan.researchers, *(p.wallet for p in plan.patients)]
    to_register = [w for w in wallets if w.address not in state.registered]
    to_accredit = [(w, Role.PROVIDER) for w in plan.providers if w.address not in state.providers] + [
        (w, Role.RESEARCHER) for w in plan.researchers if w.address not in state.researchers
    ]
    to_grant = [p for p in plan.grants if p.index not in state.granted]
    to_request = [p for p in plan.requests if p.index not in state.requests]
    to_record = [p for p in plan.patients if state.counts[p.index] < plan.records_per_patient]
    if stop_after is not None:
        to_record = to_record[:stop_after]
    decided = sum(1 for _, s in state.requests.values() if s in (RequestStatus.APPROVED, RequestStatus.DENIED))
    decisions_left = len(plan.decisions("approve")) + len(plan.decisions("deny")) - decided
    records_left = sum(plan.records_per_patient - state.counts[p.index] for p in to_record)
    total = len(to_register) + len(to_accredit) + len(to_grant) + len(to_request) + decisions_left + records_left
    counter = _Counter(total, progress)
    sender = PipelinedSender(rpc, chain.chain_id, counter.advance)
    done = {"registered": 0, "accredited": 0, "grants": 0, "requests": 0, "decisions": 0, "records": 0}
    try:
        # Fund every account (and the deployer, who may be impersonated): idempotent.
        anvil.fund_all(rpc, [w.address for w in wallets] + [chain.deployment.deployer], FUNDS)
        lap("fund")

        counter.set_phase("register")
        register = Method.of(chain.participants, "register")
        sender.send(
            [
                register.transaction(
                    w, [w.encryption_keys(mv.suite, 0).public_bytes], GAS["register"], f"register {w.name} {w.address}"
                )
                for w in to_register
            ]
        )
        done["registered"] = len(to_register)
        lap("register (sign + send)")

        counter.set_phase("accredit")
        _accredit(chain, rpc, sender, admin, to_accredit)
        done["accredited"] = len(to_accredit)
        sender.settle(wait=True)
        lap("register + accredit (receipts)")

        counter.set_phase("grants")
        now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        grant, request_access = Method.of(chain.consent, "grant"), Method.of(chain.consent, "requestAccess")
        txs = []
        for q in to_grant:
            assert q.grant is not None
            provider = plan.providers[q.grant.provider]
            until = now + GRANT_DAYS * 86400
            args = [provider.address, scope_mask(q.grant.scopes), int(Purpose.TREAT), now, until, b""]
            txs.append(
                grant.transaction(q.wallet, args, GAS["grant"], f"grant of patient {q.index} to {provider.name}")
            )
        for q in to_request:
            assert q.request is not None
            researcher = plan.researchers[q.request.researcher]
            mask, duration = scope_mask(q.request.scopes), REQUEST_DAYS * 86400
            args = [q.wallet.address, mask, int(Purpose.HRESCH), duration, q.request.study]
            action = f"research request to patient {q.index}"
            txs.append(request_access.transaction(researcher, args, GAS["request"], action))
        sender.send(txs)
        sender.settle(wait=True)
        done["grants"], done["requests"] = len(to_grant), len(to_request)
        lap("grants + requests")

        counter.set_phase("decisions")
        made = _read_requests(chain, rpc, plan) if to_request else state.requests
        approve, deny = Method.of(chain.consent, "approveRequest"), Method.of(chain.consent, "denyRequest")
        txs = []
        for q in plan.requests:
            assert q.request is not None
            request, status = made[q.index]
            if status != RequestStatus.PENDING or q.request.decision == "pending":
                continue
            action = f"{q.request.decision} request to patient {q.index}"
            if q.request.decision == "approve":
                txs.append(approve.transaction(q.wallet, [request, b""], GAS["decide"], action))
            else:
                txs.append(deny.transaction(q.wallet, [request], GAS["decide"], action))
        sender.send(txs)
        sender.settle(wait=True)
        done["decisions"] = len(txs)
        lap("decisions")

        counter.set_phase("records")
        files = _write_records(mv, plan, state, to_record, sender, lap, capture, replay)
        done["records"] = records_left
    except ContractError as exc:
        raise SeedError(f"{exc}; nothing after it was checked: run the same seed command again to resume") from exc
    return SeedReport(plan.summary(), done, sender.sent, files, time.monotonic() - started, phases)


def _accredit(
    chain: Chain, rpc: BatchRpc, sender: PipelinedSender, admin: Wallet | None, todo: list[tuple[Wallet, Role]]
) -> None:
    """Accredits with ``admin``, or else as the impersonated deployer (anvil only; the node
    signs and numbers those transactions, so they go one by one)."""
    grant_role = Method.of(chain.participants, "grantRole")
    if admin is not None:
        sender.send(
            [
                grant_role.transaction(admin, [role.role_id, w.address], GAS["accredit"], f"accredit {w.name}")
                for w, role in todo
            ]
        )
        return
    if not todo:
        return
    with anvil.impersonating(rpc, chain.deployment.deployer) as deployer:
        sender.send(
            [
                grant_role.transaction(
                    deployer, [role.role_id, w.address], GAS["accredit"], f"accredit {w.name} (as the deployer)"
                )
                for w, role in todo
            ]
        )


@dataclass
class _Sealed:
    patient: PatientPlan
    first: int
    blobs: list[bytes]
    bundle: bytes
    categories: list[Category]


def _seal(mv: Medvault, plan: SeedPlan, q: PatientPlan, first: int) -> _Sealed:
    """Seals records ``first``.. of ``q`` and wraps their keys for their readers, in one bundle."""
    author = plan.providers[q.author]
    readers = {q.wallet.address: q.wallet, author.address: author}
    grantees: list[tuple[Wallet, frozenset[Category]]] = []
    if q.grant:
        grantees.append((plan.providers[q.grant.provider], q.grant.scopes))
    if q.request and q.request.decision == "approve":
        grantees.append((plan.researchers[q.request.researcher], q.request.scopes))
    wraps: list[Wrap] = []
    blobs, categories = [], []
    for index, (category, plaintext) in enumerate(q.records()[first:], start=first):
        context = mv.record_context(q.wallet.address, index)
        key = new_record_key()
        blobs.append(encrypt_record(plaintext, key, context))
        categories.append(category)
        for_record = dict(readers)
        for grantee, scopes in grantees:
            if category in scopes:
                for_record[grantee.address] = grantee
        wraps += [wrap_for(context, key, a, w.encryption_keys(mv.suite, 0).public_bytes) for a, w in for_record.items()]
    return _Sealed(q, first, blobs, mv.new_key_bundle(q.wallet.address, wraps).to_bytes(), categories)


SealedChunks = list[tuple[list[_Sealed], list[str]]]
"""Per chunk of patients: their sealed records and key bundles, and the CIDs of those files in
the order they were added (each patient's records, then its bundle)."""


def chunk_files(chunks: SealedChunks) -> list[list[bytes]]:
    """The files of each captured chunk, in the order they were added to IPFS."""
    return [[b for s in sealed for b in (*s.blobs, s.bundle)] for sealed, _ in chunks]


def _cid_bytes(cid: str) -> bytes:
    """The binary form of a base32 CIDv1 string (what ``compute_cid`` gives), decoded directly:
    ``multiformats`` spends a millisecond validating each."""
    if not cid.startswith("b"):
        return cid_to_bytes(cid)
    body = cid[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def _chunks(items: list[PatientPlan], size: int) -> Iterator[list[PatientPlan]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_records(
    mv: Medvault,
    plan: SeedPlan,
    state: _State,
    todo: list[PatientPlan],
    sender: PipelinedSender,
    lap: Callable[[str], None],
    capture: SealedChunks | None = None,
    replay: SealedChunks | None = None,
) -> int:
    """Seals a chunk of patients while the previous chunk is added to IPFS, then sends its batches."""
    add_records = Method.of(mv.chain.records, "addRecords")
    files = 0

    def send(chunk: list[_Sealed], cids: list[str]) -> None:
        txs, position = [], 0
        for s in chunk:
            n = len(s.blobs)
            record_cids, keys_cid = cids[position : position + n], _cid_bytes(cids[position + n])
            position += n + 1
            pointers = [
                (_cid_bytes(cid), hashlib.sha256(blob).digest(), int(cat), keys_cid)
                for cid, blob, cat in zip(record_cids, s.blobs, s.categories, strict=True)
            ]
            action = f"records {s.first}..{s.first + n - 1} of patient {s.patient.index}"
            gas = GAS_BATCH_BASE + GAS_PER_RECORD * n
            author, args = plan.providers[s.patient.author], [s.patient.wallet.address, s.first, pointers]
            txs.append(add_records.transaction(author, args, gas, action, units=n))
        sender.send(txs)

    def add(chunk: list[_Sealed]) -> list[str]:
        return mv.ipfs.add_wrapped([b for s in chunk for b in (*s.blobs, s.bundle)])[1]

    if replay is not None:
        for sealed_chunk, chunk_cids in replay:
            files += sum(len(s.blobs) + 1 for s in sealed_chunk)
            send(sealed_chunk, chunk_cids)
            lap("records: send")
            sender.settle(wait=False)
            lap("records: receipts")
        sender.settle(wait=True)
        lap("records: receipts")
        return files

    def flush(done: tuple[list[_Sealed], Future[list[str]]]) -> None:
        cids = done[1].result()
        if capture is not None:
            capture.append((done[0], cids))
        send(done[0], cids)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="medvault-seed-ipfs") as pool:
        previous: tuple[list[_Sealed], Future[list[str]]] | None = None
        for chunk in _chunks(todo, CHUNK_PATIENTS):
            sealed = [_seal(mv, plan, q, state.counts[q.index]) for q in chunk]
            files += sum(len(s.blobs) + 1 for s in sealed)
            lap("records: seal")
            future = pool.submit(add, sealed)
            if previous is not None:
                flush(previous)
                lap("records: ipfs wait + send")
                sender.settle(wait=False)
                lap("records: receipts")
            previous = (sealed, future)
        if previous is not None:
            flush(previous)
            lap("records: ipfs wait + send")
    sender.settle(wait=True)
    lap("records: receipts")
    return files
