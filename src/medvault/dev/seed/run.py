"""A seeding run: funds, registers, accredits, grants, requests, decides and writes the records
of a plan, doing only what the chain does not hold yet (see ``medvault.dev.seed``)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from medvault.chain.pipeline import BatchRpc, Method, PipelinedSender
from medvault.cids import cid_to_bytes
from medvault.dev import anvil
from medvault.dev.seed.plan import GRANT_DAYS, REQUEST_DAYS
from medvault.dev.seed.seal import Binding, Reader, RecordFeed, Sealed, SealJob, chunk_blobs
from medvault.dev.seed.state import read_requests, read_state
from medvault.errors import ContractError, SeedError
from medvault.model import ALL_CATEGORIES, Category, Purpose, RequestStatus, Role, scope_mask

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medvault.accounts import Wallet
    from medvault.chain import Chain
    from medvault.client import Medvault
    from medvault.dev.seed.plan import PatientPlan, SeedPlan

__all__ = ["GAS", "Progress", "SealedChunks", "SeedReport", "chunk_files", "record_feed", "run_seed", "seal_job"]

CHUNK_PATIENTS = 20  # patients sealed, added to IPFS and sent together (about 220 files at R = 10)
FUNDS = 10**22
# Fixed gas limits per kind, generous (measured use is about half or less); a batch of records
# gets a base plus a per-record allowance.
GAS = {
    "register": 150_000,
    "accredit": 150_000,
    "writer": 100_000,
    "grant": 200_000,
    "request": 200_000,
    "decide": 200_000,
}
GAS_BATCH_BASE, GAS_PER_RECORD = 100_000, 60_000

Progress: TypeAlias = Callable[[str, int, int], None]
"""Told (phase, units done so far, units in all) as a phase starts and as units complete."""


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

    state = read_state(chain, rpc, plan)
    lap("read state")
    wallets = [*plan.providers, *plan.researchers, *(p.wallet for p in plan.patients)]
    to_register = [w for w in wallets if w.address not in state.registered]
    to_accredit = [(w, Role.PROVIDER) for w in plan.providers if w.address not in state.providers] + [
        (w, Role.RESEARCHER) for w in plan.researchers if w.address not in state.researchers
    ]
    to_grant = [p for p in plan.grants if p.index not in state.granted]
    to_allow = [p for p in plan.patients if p.index not in state.writers]
    to_request = [p for p in plan.requests if p.index not in state.requests]
    to_record = [p for p in plan.patients if state.counts[p.index] < plan.records_per_patient]
    if stop_after is not None:
        to_record = to_record[:stop_after]
    decided = sum(1 for _, s in state.requests.values() if s in (RequestStatus.APPROVED, RequestStatus.DENIED))
    decisions_left = len(plan.decisions("approve")) + len(plan.decisions("deny")) - decided
    records_left = sum(plan.records_per_patient - state.counts[p.index] for p in to_record)
    total = len(to_register) + len(to_accredit) + len(to_allow) + len(to_grant) + len(to_request)
    total += decisions_left + records_left
    counter = _Counter(total, progress)
    sender = PipelinedSender(rpc, chain.chain_id, counter.advance, nudge=lambda: anvil.mine(rpc))
    done = {"registered": 0, "accredited": 0, "writers": 0, "grants": 0, "requests": 0, "decisions": 0, "records": 0}
    # The records are sealed and added to IPFS from now on, while the chain work goes out.
    jobs = [seal_job(mv, plan, q, state.counts[q.index], state.seqs[q.index]) for q in to_record]
    feed = None if replay is not None else record_feed(mv, jobs, mv.ipfs.add_wrapped)
    try:
        with feed if feed is not None else contextlib.nullcontext():
            # Fund every account (and the deployer, who may be impersonated): idempotent.
            anvil.fund_all(rpc, [w.address for w in wallets] + [chain.deployment.deployer], FUNDS)
            lap("fund")

            counter.set_phase("register")
            register = Method.of(chain.participants, "register")
            sender.send(
                [
                    register.transaction(
                        w,
                        [w.encryption_keys(mv.suite, 0).public_bytes],
                        GAS["register"],
                        f"register {w.name} {w.address}",
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
            set_writer = Method.of(chain.records, "setWriter")
            # Each patient puts its planned author on its care team, in the same pipeline as the grants.
            txs = [
                set_writer.transaction(
                    q.wallet,
                    [plan.providers[q.author].address, ALL_CATEGORIES],
                    GAS["writer"],
                    f"writer of patient {q.index}",
                )
                for q in to_allow
            ]
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
            done["writers"], done["grants"], done["requests"] = len(to_allow), len(to_grant), len(to_request)
            lap("writers + grants + requests")

            counter.set_phase("decisions")
            made = read_requests(chain, rpc, plan) if to_request else state.requests
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
            files = _write_records(mv, plan, feed if feed is not None else replay or [], sender, lap, capture)
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


def seal_job(mv: Medvault, plan: SeedPlan, q: PatientPlan, first: int, seq: int) -> SealJob:
    """Sealing records ``first``.. of ``q`` (bound to its author's sequence numbers ``seq``..),
    wrapped for the patient, the author and every grantee whose grant covers the category."""
    author = plan.providers[q.author]
    grantees: list[tuple[Wallet, frozenset[Category] | None]] = [(q.wallet, None), (author, None)]
    if q.grant:
        grantees.append((plan.providers[q.grant.provider], q.grant.scopes))
    if q.request and q.request.decision == "approve":
        grantees.append((plan.researchers[q.request.researcher], q.request.scopes))
    readers = tuple(Reader(w.address, w.encryption_keys(mv.suite, 0).public_bytes, scopes) for w, scopes in grantees)
    return SealJob(plan.seed, q.index, plan.records_per_patient, first, seq, q.wallet.address, author.address, readers)


def record_feed(
    mv: Medvault, jobs: list[SealJob], add: Callable[[list[bytes]], tuple[str, list[str]]] | None
) -> RecordFeed:
    """Seals ``jobs`` in chunks of ``CHUNK_PATIENTS`` on worker processes, each chunk added with
    ``add`` (``IpfsClient.add_wrapped``) once sealed, if given."""
    binding = Binding(mv.chain.chain_id, mv.chain.records.address, mv.suite)
    chunks = [jobs[start : start + CHUNK_PATIENTS] for start in range(0, len(jobs), CHUNK_PATIENTS)]
    return RecordFeed(binding, chunks, None if add is None else lambda blobs: add(blobs)[1])


SealedChunks = list[tuple[list[Sealed], list[str]]]
"""Per chunk of patients: their sealed records and key bundles, and the CIDs of those files in
the order they were added (each patient's records, then its bundle)."""


def chunk_files(chunks: SealedChunks) -> list[list[bytes]]:
    """The files of each captured chunk, in the order they were added to IPFS."""
    return [chunk_blobs(sealed) for sealed, _ in chunks]


def _cid_bytes(cid: str) -> bytes:
    """The binary form of a base32 CIDv1 string (what ``compute_cid`` gives), decoded directly:
    ``multiformats`` spends a millisecond validating each."""
    if not cid.startswith("b"):
        return cid_to_bytes(cid)
    body = cid[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def _write_records(
    mv: Medvault,
    plan: SeedPlan,
    chunks: Iterable[tuple[list[Sealed], list[str]]],
    sender: PipelinedSender,
    lap: Callable[[str], None],
    capture: SealedChunks | None,
) -> int:
    """Sends each chunk's record batches as soon as its files are in IPFS (sealing and adding
    run ahead, in ``RecordFeed``), or those of a captured run's chunks."""
    add_records = Method.of(mv.chain.records, "addRecords")
    files = 0
    for sealed, cids in chunks:
        lap("records: seal + ipfs (waiting)")
        if capture is not None:
            capture.append((sealed, cids))
        files += len(cids)
        txs, position = [], 0
        for s in sealed:
            q, n = plan.patients[s.patient], len(s.blobs)
            record_cids, keys_cid = cids[position : position + n], _cid_bytes(cids[position + n])
            position += n + 1
            pointers = [
                (_cid_bytes(cid), hashlib.sha256(blob).digest(), int(cat), keys_cid)
                for cid, blob, cat in zip(record_cids, s.blobs, s.categories, strict=True)
            ]
            action = f"records {s.first}..{s.first + n - 1} of patient {q.index}"
            gas = GAS_BATCH_BASE + GAS_PER_RECORD * n
            author, args = plan.providers[q.author], [q.wallet.address, s.seq, pointers]
            txs.append(add_records.transaction(author, args, gas, action, units=n))
        sender.send(txs)
        sender.settle(wait=False)
        lap("records: send")
    sender.settle(wait=True)
    lap("records: receipts")
    return files
