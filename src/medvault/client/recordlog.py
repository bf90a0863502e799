"""A patient's record log from ``RecordAdded`` events, checked against the head the chain holds.

``records`` rebuilds the whole log (listing, ``verify``, key rotation): every event from the
first, each author's sequence numbers in order, each hash recomputed from its fields and the one
before, the last equal to the head and count ``logOf`` reports.

``record`` finds one pointer in time that does not grow with the log: the events it needs are
asked for by their indexed topics (patient, index), and what it has checked is kept per patient
as a verified stretch of the log, records ``low`` to ``count - 1`` of the log whose head is
``head``. What it proves is what ``records`` proves of that record, against the same ``logOf``
answer: the head is a hash of the last record's fields and of the hash before it, so a stretch of
events whose recomputed hashes chain, record by record, into the head reported now is (short of
a keccak collision) the chain's own records; the hash of the record before the stretch, taken
from its event, is proven with them, as an input of the first hash. Checking one event against
the one before it only would prove nothing: a lying endpoint can forge both. So:

- a read inside the stretch, while ``logOf`` still reports its head and count, costs that call;
- records added since are checked from the stretch's head to the new one (a fresh client, or a
  record before the stretch, checks from that record to the stretch or the head);
- a head that does not extend the stretch (a reorg, a rewritten answer) drops it, and the read
  checks its stretch against the new head from scratch; only that can refuse it: an event whose
  fields do not hash to its ``recordHash``, a missing one or more than one for an index, a
  stretch that does not end at the head are IntegrityErrors worded as ``records`` words them.

Each author's sequence numbers are not re-counted here (that needs the whole log): they are in
the hashes the contract computed when it enforced them. The pointer's transaction and block are
not in the hash; everything a read checks or decrypts by is. Flags are read for the record alone
(``flagsOf``), never kept, as the patient may change them at any time.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any, cast

import requests
from eth_utils.address import to_checksum_address
from web3.types import RPCEndpoint

from medvault.chain.pipeline import Method
from medvault.client.core import Core
from medvault.errors import ChainUnavailableError, ConfigurationError, ContractError, IntegrityError
from medvault.formats.recordhash import GENESIS, record_hash_of_event
from medvault.model import DISPUTED, HIDDEN, Category, RecordPointer

if TYPE_CHECKING:
    from web3 import HTTPProvider

__all__ = ["RecordLog"]

# Past this many indexes, the events are asked for by patient alone (one topic list stays short).
MAX_INDEX_TOPICS = 64


@dataclasses.dataclass(frozen=True)
class _Stretch:
    """Records ``low`` to ``count - 1`` of a patient's log whose head is ``head``, checked;
    ``before`` is the hash of record ``low - 1`` (``GENESIS`` if ``low`` is 0)."""

    head: bytes
    count: int
    low: int
    before: bytes
    pointers: tuple[RecordPointer, ...]


class RecordLog(Core):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stretches: dict[str, _Stretch] = {}

    @functools.cached_property
    def _log_of_call(self) -> Method:
        return Method.of(self.chain.records, "logOf")

    @functools.cached_property
    def _flags_of_call(self) -> Method:
        return Method.of(self.chain.records, "flagsOf")

    def records(self, patient: str) -> list[RecordPointer]:
        """The patient's log from chain events, after checking its hash chain against the head."""
        patient = to_checksum_address(patient)
        head, count = self._log_of(patient)
        previous = GENESIS
        pointers: list[RecordPointer] = []
        seqs: dict[str, int] = {}  # each author's next sequence number
        for event in self.chain.events("RecordRegistry", "RecordAdded", patient=patient):
            a = event["args"]
            if a["index"] != len(pointers):
                raise IntegrityError(f"record log of {patient}: event for index {a['index']} out of order")
            if a["seq"] != seqs.get(a["author"], 0):
                raise IntegrityError(
                    f"record {a['index']} of {patient}: its author's sequence number is {a['seq']}, "
                    f"but {a['author']} had written {seqs.get(a['author'], 0)} records before it"
                )
            seqs[a["author"]] = a["seq"] + 1
            previous = _checked(patient, event, previous)
            pointers.append(_pointer(event, previous))
        _check_head(patient, len(pointers), previous, count, head)
        flags = self.record_flags(patient)
        return [_flagged(p, flags.get(p.index, 0)) for p in pointers]

    def record(self, patient: str, index: int, *, given: Any = None) -> RecordPointer:
        """Record ``index`` of ``patient``'s log with its flags, checked against the head the
        chain holds now (see the module docstring); ConfigurationError if there is none.
        ``given`` is its ``RecordAdded`` event if the caller holds it (a write's receipt): it is
        checked like any other, only not asked for again."""
        patient = to_checksum_address(patient)
        asked = index if 0 <= index < 1 << 64 else 0  # flagsOf takes a uint64; the count refuses the rest
        (head, count), (flags,) = self._views((self._log_of_call, (patient,)), (self._flags_of_call, (patient, asked)))
        if not 0 <= index < count:
            raise ConfigurationError(f"{patient} has no record {index} (records: {count})")
        stretch = self._stretches.get(patient)
        if stretch is not None and (stretch.head, stretch.count) != (head, count):
            stretch = self._extended(patient, stretch, head, count, given)
        if stretch is None:
            stretch = self._checked_stretch(patient, index, count, head, given=given)
        elif index < stretch.low:
            below = self._checked_stretch(patient, index, stretch.low, stretch.before)
            stretch = dataclasses.replace(
                stretch, low=index, before=below.before, pointers=below.pointers + stretch.pointers
            )
        self._stretches[patient] = stretch
        return _flagged(stretch.pointers[index - stretch.low], flags)

    def _extended(self, patient: str, stretch: _Stretch, head: bytes, count: int, given: Any) -> _Stretch | None:
        """``stretch`` with the records added since, if they chain from its head into ``head``;
        None if they do not (the chain's head moved another way: the stretch is checked again)."""
        if count <= stretch.count:
            return None
        try:
            added = self._checked_stretch(patient, stretch.count, count, head, stretch.head, given)
        except IntegrityError:
            return None
        return dataclasses.replace(stretch, head=head, count=count, pointers=stretch.pointers + added.pointers)

    def _checked_stretch(
        self, patient: str, low: int, stop: int, end: bytes, before: bytes | None = None, given: Any = None
    ) -> _Stretch:
        """Records ``low`` to ``stop - 1`` from their events (``given`` one of them), their
        hashes chained from ``before`` (default: the hash record ``low - 1``'s event states) into ``end``."""
        first = low if before is not None or low == 0 else low - 1
        found: dict[int, list[Any]] = {i: [] for i in range(first, stop)}
        if given is not None and given["args"]["index"] in found:
            found[given["args"]["index"]].append(given)
        if indexes := [i for i, events in found.items() if not events]:
            filters = {"index": indexes} if len(indexes) <= MAX_INDEX_TOPICS else {}
            for event in self.chain.events("RecordRegistry", "RecordAdded", patient=patient, **filters):
                if (i := event["args"]["index"]) in found:
                    found[i].append(event)
        for i, events in found.items():
            if len(events) != 1:
                raise IntegrityError(f"record log of {patient}: {len(events)} events for record {i}")
        if before is None:
            before = GENESIS if low == 0 else bytes(found[low - 1][0]["args"]["recordHash"])
        previous, pointers = before, []
        for i in range(low, stop):
            previous = _checked(patient, found[i][0], previous)
            pointers.append(_pointer(found[i][0], previous))
        if previous != end:
            raise IntegrityError(
                f"record log of {patient}: the events of records {low} to {stop - 1} rebuild "
                f"0x{previous.hex()}, but the chain holds 0x{end.hex()} there"
            )
        return _Stretch(end, stop, low, before, tuple(pointers))

    def _views(self, *calls: tuple[Method, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The answers of view calls that cannot revert, in one JSON-RPC batch encoded directly:
        web3's per-call work costs more than the node's answers."""
        provider = cast("HTTPProvider", self.chain.w3.provider)
        batch = [(RPCEndpoint("eth_call"), [{"to": m.address, "data": m.data(*args)}, "latest"]) for m, args in calls]
        try:
            answers = provider.make_batch_request(batch)
        except requests.RequestException as exc:
            raise ChainUnavailableError(str(provider.endpoint_uri), type(exc).__name__) from None
        if not isinstance(answers, list) or len(answers) != len(calls) or any("result" not in a for a in answers):
            raise ContractError(", ".join(m.signature for m, _ in calls), "RpcError", {"answer": answers})
        return [m.decode(a["result"]) for (m, _), a in zip(calls, answers, strict=True)]

    def _log_of(self, patient: str) -> tuple[bytes, int]:
        head, count = self.chain.call(self.chain.records.functions.logOf(patient), "logOf")
        return bytes(head), int(count)

    def record_flags(self, patient: str) -> dict[int, int]:
        """The patient's flags of its records, by index (only flagged ones): the latest
        ``RecordFlagged`` of each (bit 0 disputed, bit 1 hidden)."""
        flags: dict[int, int] = {}
        for event in self.chain.events("RecordRegistry", "RecordFlagged", patient=to_checksum_address(patient)):
            flags[int(event["args"]["index"])] = int(event["args"]["flags"])
        return {index: f for index, f in flags.items() if f}

    def record_count(self, patient: str) -> int:
        """How many records the patient's log holds (one call; ``records`` reads them all)."""
        return self._log_of(to_checksum_address(patient))[1]


def _checked(patient: str, event: Any, previous: bytes) -> bytes:
    """The hash of the record ``event`` describes after ``previous``, if its event states it."""
    recomputed = record_hash_of_event(previous, patient, event["args"])
    if recomputed != bytes(event["args"]["recordHash"]):
        raise IntegrityError(f"record {event['args']['index']} of {patient}: its hash does not match its fields")
    return recomputed


def _check_head(patient: str, rebuilt: int, previous: bytes, count: int, head: bytes) -> None:
    if rebuilt != count or previous != head:
        raise IntegrityError(
            f"record log of {patient}: {rebuilt} events rebuild head 0x{previous.hex()}, "
            f"but the chain holds {count} records with head 0x{head.hex()}"
        )


def _flagged(pointer: RecordPointer, flags: int) -> RecordPointer:
    if not flags:
        return pointer
    return dataclasses.replace(pointer, disputed=bool(flags & DISPUTED), hidden=bool(flags & HIDDEN))


def _pointer(event: Any, record_hash: bytes) -> RecordPointer:
    """The pointer a ``RecordAdded`` event describes."""
    a = event["args"]
    return RecordPointer(
        patient=a["patient"],
        index=a["index"],
        author=a["author"],
        seq=a["seq"],
        record_hash="0x" + record_hash.hex(),
        category=Category(a["category"]),
        timestamp=a["timestamp"],
        content_hash="0x" + bytes(a["contentHash"]).hex(),
        raw_cid=bytes(a["cid"]),
        raw_keys_cid=bytes(a["keysCid"]),
        tx_hash=event["transactionHash"].to_0x_hex(),
        block_number=event["blockNumber"],
    )
