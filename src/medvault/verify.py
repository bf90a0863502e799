"""Integrity verification of a patient's whole record log, chain and IPFS together.

``Medvault.records`` stops at the first problem, which is right for reading. An audit wants
every problem at once, each with the record it concerns, so ``verify_patient`` collects them:

* the log: the ``RecordAdded`` events are rebuilt into the hash chain and compared with the
  on-chain head and count (``logOf``). Each event's record hash is recomputed from its own
  fields and the record hash of the event before it, so an altered event is pinned to its own
  index rather than to every record after it. Events out of index order are *reordered*; an
  index the chain counts but no event carries is *missing*. Each author's sequence numbers
  (what its ciphertexts are bound to) must run 0, 1, 2, ... in log order; a gap or repeat is
  *altered*.
* the patient's flags: a record the patient flagged disputed or hidden is reported as such
  (``RecordSummary.disputed`` / ``hidden``, and the CLI's line for it); a flag is not a finding.
* the pointers: each CID is parsed as readers parse it (CIDv1, sha2-256, raw or dag-pb); one
  that is not usable is *malformed*, for its record alone: the rest are checked all the same.
* the objects: each record's ciphertext and key bundle are fetched from IPFS, checked against
  their CIDs and (for the ciphertext) the on-chain content hash, and checked to be pinned. A
  block the node does not hold is *missing*; it is asked for offline, so a missing block is an
  answer, not a wait on the network.
* the key bundles: every bundle the chain references, each record's ``keysCid`` and every
  ``KeysShared`` CID of the patient (object ``shared``, index -1, which a garbage collection
  would otherwise take from grantees unnoticed), is fetched, checked to be pinned and parsed; one
  that is not a key bundle of this patient is *malformed*. So is the keepers' re-escrow bundle the
  chain names with the patient's keeper set (object ``escrow``, index -1).
* with keepers set: a record whose escrow (its entry in the re-escrow bundle, else its own
  bundle's) names fewer of the chain's keepers than its threshold, or has a threshold below the
  patient's, is *malformed* (object ``escrow``): readers ask only on-chain keepers, so none could
  release it; or fewer keepers than the patient chose could recover it.
* with the patient's wallet (``wallet``, from the keystore): each record's key must open from a
  wrap for the patient (in its bundle or a bundle shared with the patient) and decrypt the
  ciphertext; a record the patient cannot open is *unopenable*, and one whose ciphertext is not
  medvault's or holds no medvault envelope is *malformed*.

A node that does not answer is an error (``NodeUnavailableError``), not a finding.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from eth_utils.address import to_checksum_address

from medvault.crypto import decrypt_record, unwrap_key
from medvault.errors import (
    CidMismatchError,
    DecryptionError,
    IntegrityError,
    InvalidCidError,
    IpfsError,
    MedvaultError,
)
from medvault.formats import envelope
from medvault.formats.keybundle import KeyBundle, served_escrow
from medvault.formats.recordhash import GENESIS, record_hash_of_event
from medvault.model import DISPUTED, HIDDEN, Category, pointer_cid

if TYPE_CHECKING:
    from collections.abc import Iterable

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.ipfs import IpfsClient

__all__ = ["Finding", "RecordSummary", "VerificationReport", "verify_patient"]

FindingKind = Literal["missing", "altered", "reordered", "unpinned", "malformed", "unopenable"]
# ciphertext in IPFS, its key bundle in IPFS, on-chain log entry, a KeysShared bundle in IPFS,
# the keepers' re-escrow bundle in IPFS (keepersOf)
FindingObject = Literal["record", "keys", "log", "shared", "escrow"]
KINDS: tuple[FindingKind, ...] = ("missing", "altered", "reordered", "unpinned", "malformed", "unopenable")
LABELS = {"record": "ciphertext", "keys": "key bundle", "shared": "shared key bundle"}
LABELS["escrow"] = "keepers' re-escrow bundle"
SHARED = -1  # the index of findings about KeysShared bundles (which belong to no one record)
FETCH_TIMEOUT = "10s"  # Kubo's own deadline for a block it has to look for
FETCH_WORKERS = 4  # fetches in flight at once


@dataclass(frozen=True)
class Finding:
    """One problem with record ``index`` of the log (``object`` says which part of it)."""

    kind: FindingKind
    index: int
    object: FindingObject
    message: str
    cid: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RecordSummary:
    """What the log says about one record (from its first event)."""

    index: int
    category: str
    cid: str | None
    keys_cid: str | None
    author: str
    seq: int
    disputed: bool = False
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VerificationReport:
    patient: str
    count: int  # records the chain counts (logOf)
    head: str
    events: int  # RecordAdded events read
    records: list[RecordSummary] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    shared: list[str] = field(default_factory=list)  # CIDs of the patient's KeysShared bundles
    keys_checked: bool = False  # whether the patient's wraps were opened (with its wallet)

    @property
    def indices(self) -> list[int]:
        """Every record index the report speaks of: the chain's count, plus any index only an event claims."""
        found = (f.index for f in self.findings if f.index != SHARED)
        return sorted({*range(self.count), *(r.index for r in self.records), *found})

    def findings_for(self, index: int) -> list[Finding]:
        return [f for f in self.findings if f.index == index]

    def tally(self) -> dict[str, int]:
        counts = Counter(f.kind for f in self.findings)
        return {kind: counts[kind] for kind in KINDS if counts[kind]}

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "count": self.count,
            "head": self.head,
            "events": self.events,
            "ok": self.ok,
            "summary": self.tally(),
            "records": [r.to_json() for r in self.records],
            "shared": self.shared,
            "keysChecked": self.keys_checked,
            "findings": [f.to_json() for f in self.findings],
        }


def verify_patient(mv: Medvault, patient: str, wallet: Wallet | None = None) -> VerificationReport:
    """Checks every record of ``patient``'s log on chain and in IPFS, and every key bundle the
    chain references; with the patient's ``wallet``, that its wraps open every record. See the
    module docstring."""
    patient = to_checksum_address(patient)
    if wallet is not None and to_checksum_address(wallet.address) != patient:
        raise ValueError(f"the wallet of {wallet.address} cannot open the wraps of {patient}")
    head_raw, count = mv.chain.call(mv.chain.records.functions.logOf(patient), "logOf")
    head = bytes(head_raw)
    events = mv.chain.events("RecordRegistry", "RecordAdded", patient=patient)
    report = VerificationReport(patient, int(count), "0x" + head.hex(), len(events))
    found = report.findings.append

    # Which event stands for each index: the first one that claims it; any other is forged.
    by_index: dict[int, Any] = {}
    arrived: list[int] = []  # indices of those events, in the order they arrive
    for event in events:
        index = int(event["args"]["index"])
        if index in by_index:
            found(Finding("altered", index, "log", f"a second RecordAdded event claims index {index}"))
        elif index >= count:
            found(Finding("altered", index, "log", f"an event claims index {index}, but the chain counts {count}"))
        else:
            by_index[index] = event
            arrived.append(index)

    # Order: each event should arrive where its index puts it among the events present.
    for position, (index, expected) in enumerate(zip(arrived, sorted(arrived), strict=True)):
        if index != expected:
            message = f"the event for record {index} arrives at position {position}, where record {expected} belongs"
            found(Finding("reordered", index, "log", message))

    objects = _Objects(mv.ipfs)
    parsed: dict[str, KeyBundle | str] = {}
    objects.prefetch(
        cid
        for event in by_index.values()
        for raw in (event["args"]["cid"], event["args"]["keysCid"])
        if (cid := _usable_cid(raw)) is not None
    )
    shared: list[KeyBundle] = []  # the patient's KeysShared bundles that parse
    for event in mv.chain.events("ConsentManager", "KeysShared", patient=patient):
        cid = _cid(report, SHARED, "shared", event["args"]["keysCid"])
        if cid is None:
            continue
        report.shared.append(cid)
        data = objects.check(report, SHARED, "shared", cid)
        bundle = _parse(report, SHARED, "shared", cid, data, patient, parsed)
        if bundle is not None and event["args"]["grantee"] == patient:
            shared.append(bundle)
    keepers = mv.keepers_of(patient, with_urls=False)
    reescrow = None  # the re-escrow bundle the chain names with the patient's keeper set
    if keepers.escrow_cid:
        report.shared.append(keepers.escrow_cid)
        data = objects.check(report, SHARED, "escrow", keepers.escrow_cid)
        reescrow = _parse(report, SHARED, "escrow", keepers.escrow_cid, data, patient, parsed)
    report.keys_checked = wallet is not None
    flags = mv.record_flags(patient)
    seqs: dict[str, int] = {}  # each author's next sequence number
    gaps = 0  # records the chain counts but no event carries, so far
    for index in range(count):
        entry = by_index.get(index)
        if entry is None:
            found(Finding("missing", index, "log", f"the chain counts {count} records; no event carries this one"))
            gaps += 1
            continue
        args = entry["args"]
        _check_hash(report, patient, index, args, by_index.get(index - 1), head)
        cid = _cid(report, index, "record", args["cid"])
        keys_cid = _cid(report, index, "keys", args["keysCid"])
        author, seq = str(args["author"]), int(args["seq"])
        # A repeated seq is always wrong; a skipped one only if no record is missing before it.
        if seq < seqs.get(author, 0) or (seq > seqs.get(author, 0) and not gaps):
            message = f"{author}'s sequence number is {seq}, but it had written {seqs.get(author, 0)} records before"
            found(Finding("altered", index, "log", message))
        seqs[author] = seq + 1
        f = flags.get(index, 0)
        summary = RecordSummary(
            index, _category(args["category"]), cid, keys_cid, author, seq, bool(f & DISPUTED), bool(f & HIDDEN)
        )
        report.records.append(summary)
        blob = None
        if cid is not None:
            blob = objects.check(report, index, "record", cid)
            if blob is not None:
                actual, committed = hashlib.sha256(blob).digest(), bytes(args["contentHash"])
                if actual != committed:
                    message = (
                        f"ciphertext sha256 0x{actual.hex()} differs from the on-chain content hash 0x{committed.hex()}"
                    )
                    found(Finding("altered", index, "record", message, cid))
        if keys_cid is not None:
            data = objects.check(report, index, "keys", keys_cid)
            bundle = _parse(report, index, "keys", keys_cid, data, patient, parsed)
            if bundle is not None and keepers.keepers:
                _check_escrow(report, index, keys_cid, bundle, reescrow, keepers.keepers, keepers.threshold)
            if wallet is not None and bundle is not None:
                _check_opens(mv, report, wallet, summary, [bundle, *reversed(shared)], blob, keys_cid)
    objects.check_pins(report)
    report.findings.sort(key=lambda f: (f.index, KINDS.index(f.kind), f.object))  # stable: pins keep their order
    return report


def _parse(
    report: VerificationReport, index: int, what: FindingObject, cid: str, data: bytes | None, patient: str,
    parsed: dict[str, KeyBundle | str],
) -> KeyBundle | None:  # fmt: skip
    """The key bundle in ``data`` (None if it was not fetched), or None after a finding.
    ``parsed`` holds each CID's bundle or refusal: the records of a batch share one bundle."""
    if data is None:
        return None
    outcome = parsed.get(cid)
    if outcome is None:
        try:
            outcome = KeyBundle.parse(data, patient=patient, name=f"key bundle {cid}")
        except MedvaultError as exc:
            outcome = str(exc)
        parsed[cid] = outcome
    if isinstance(outcome, str):
        report.findings.append(Finding("malformed", index, what, outcome, cid))
        return None
    return outcome


def _check_escrow(
    report: VerificationReport, index: int, cid: str, bundle: KeyBundle, reescrow: KeyBundle | None,
    keepers: list[str], threshold: int,
) -> None:  # fmt: skip
    """Finds record ``index``'s escrow (the re-escrow bundle's entry, else its own bundle's, as
    keepers and readers take it) *malformed* if it names fewer of the chain's ``keepers`` than its
    threshold: readers ask only those, so the keepers could never release its key."""
    escrow = served_escrow(index, reescrow, lambda: bundle)
    if escrow is None:
        return  # written before the patient chose keepers, and not re-escrowed: nothing promised
    on_chain = {to_checksum_address(k) for k in keepers}
    named = sum(to_checksum_address(s.keeper) in on_chain for s in escrow.shares)
    if named < escrow.threshold:
        message = (
            f"record {index}'s key is escrowed {escrow.threshold}-of-{len(escrow.shares)} with keepers of whom only "
            f"{named} are in the patient's keeper set on chain: the keepers cannot release it"
        )
        report.findings.append(Finding("malformed", index, "escrow", message, cid))
    elif escrow.threshold < threshold:
        message = (
            f"record {index}'s key is escrowed {escrow.threshold}-of-{len(escrow.shares)}, below the patient's "
            f"threshold of {threshold}: fewer keepers than the patient chose can recover it"
        )
        report.findings.append(Finding("malformed", index, "escrow", message, cid))


def _check_opens(
    mv: Medvault, report: VerificationReport, wallet: Wallet, summary: RecordSummary, bundles: list[KeyBundle],
    blob: bytes | None, cid: str,
) -> None:  # fmt: skip
    """Finds the record ``summary`` names unopenable unless a wrap for the patient in ``bundles`` opens a key
    that decrypts ``blob`` (when the ciphertext was fetched)."""
    index = summary.index
    context = mv.record_context(report.patient, summary.author, summary.seq)
    epochs = range(mv.key_epoch(wallet), -1, -1)
    wraps = [w for b in bundles for w in b.wraps_for(report.patient, summary.author, summary.seq)]
    for wrapped in wraps:
        for epoch in epochs:
            try:
                key = unwrap_key(wrapped, wallet.encryption_keys(mv.suite, epoch), context, report.patient)
                if blob is not None:
                    envelope.unpack(decrypt_record(blob, key, context))
            except DecryptionError:
                continue
            except IntegrityError as exc:  # not a medvault ciphertext, or no envelope inside: this record alone
                report.findings.append(Finding("malformed", index, "record", f"record {index}: {exc}", summary.cid))
            return
    why = "no key bundle holds a wrap of its key for the patient" if not wraps else (
        f"none of the patient's {len(wraps)} wraps of its key opens with the patient's keys"
        + (" and decrypts the ciphertext" if blob is not None else "")
    )  # fmt: skip
    report.findings.append(Finding("unopenable", index, "keys", f"the patient cannot open record {index}: {why}", cid))


def _check_hash(report: VerificationReport, patient: str, index: int, args: Any, before: Any, head: bytes) -> None:
    """Record ``index``'s hash against its fields and its predecessor's hash; the last one against the head."""
    claimed = bytes(args["recordHash"])
    if index == 0 or before is not None:  # with the predecessor missing there is nothing to link to
        previous = GENESIS if index == 0 else bytes(before["args"]["recordHash"])
        if record_hash_of_event(previous, patient, args) != claimed:
            what = "its fields" if index == 0 else f"its fields and the hash of record {index - 1}"
            report.findings.append(
                Finding("altered", index, "log", f"record hash 0x{claimed.hex()} does not match {what}")
            )
    if index == report.count - 1 and claimed != head:
        report.findings.append(
            Finding(
                "altered", index, "log", f"the log ends in 0x{claimed.hex()}, but the on-chain head is 0x{head.hex()}"
            )
        )


def _cid(report: VerificationReport, index: int, what: FindingObject, raw: Any) -> str | None:
    """The CID of a pointer on chain, parsed as readers parse it; None after a finding (the
    rest of the log is checked all the same)."""
    try:
        return pointer_cid(bytes(raw))
    except InvalidCidError as exc:
        whose = f"record {index} of {report.patient}" if index != SHARED else f"a KeysShared event of {report.patient}"
        message = f"{whose}: its {LABELS.get(what, what)} pointer {exc.value} is not a usable CID ({exc.reason})"
        report.findings.append(Finding("malformed", index, what, message))
        return None


def _usable_cid(raw: Any) -> str | None:
    """``_cid`` without its finding: for fetching ahead (the check in order reports it)."""
    try:
        return pointer_cid(bytes(raw))
    except InvalidCidError:
        return None


def _category(value: Any) -> str:
    try:
        return Category(int(value)).name.lower()
    except ValueError:
        return str(value)


class _Objects:
    """The IPFS objects one run checks: each CID fetched once, and every object stored asked
    about its pin at the end, in batches (``findings`` reports one that is not pinned)."""

    def __init__(self, ipfs: IpfsClient) -> None:
        self.ipfs = ipfs
        self.fetched: dict[str, bytes | tuple[FindingKind, str]] = {}
        self.stored: list[tuple[int, FindingObject, str]] = []  # what to check for a pin, in order

    def prefetch(self, cids: Iterable[str]) -> None:
        """Fetches ``cids`` ahead, several at once: a fetch is two round trips to the node,
        mostly waiting, and the checks that follow read them in order."""
        todo = list(dict.fromkeys(cid for cid in cids if cid not in self.fetched))
        with ThreadPoolExecutor(max_workers=FETCH_WORKERS) as pool:
            self.fetched.update(zip(todo, pool.map(lambda cid: _fetch(self.ipfs, cid), todo), strict=True))

    def check(self, report: VerificationReport, index: int, what: FindingObject, cid: str) -> bytes | None:
        """The bytes of ``cid`` (fetched once per run), or None after a finding."""
        if cid not in self.fetched:
            self.fetched[cid] = _fetch(self.ipfs, cid)
        result = self.fetched[cid]
        if isinstance(result, tuple):
            kind, reason = result
            report.findings.append(Finding(kind, index, what, f"{LABELS.get(what, what)} {cid}: {reason}", cid))
            return None
        self.stored.append((index, what, cid))
        return result

    def check_pins(self, report: VerificationReport) -> None:
        pinned = self.ipfs.pinned([cid for _, _, cid in self.stored])
        for index, what, cid in self.stored:
            if cid not in pinned:
                message = f"{LABELS.get(what, what)} {cid} is stored but not pinned: garbage collection will drop it"
                report.findings.append(Finding("unpinned", index, what, message, cid))


def _fetch(ipfs: IpfsClient, cid: str) -> bytes | tuple[FindingKind, str]:
    """The bytes of ``cid`` from the node's own store, checked against the CID locally; or
    the kind of finding and why."""
    try:
        return ipfs.cat(cid, local_only=True, timeout=FETCH_TIMEOUT)
    except CidMismatchError as exc:
        return "altered", f"the node served bytes that hash to {exc.actual}"
    except (IpfsError, InvalidCidError) as exc:
        return "missing", f"the node cannot provide it ({exc})"
