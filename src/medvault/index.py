"""A local event index (SQLite) of one deployment, for queries that never rescan the chain.

The index holds every event of the four medvault contracts, decoded, plus tables derived from
them: records (``RecordAdded``), grants (the current state per (patient, grantee), replayed from
``AccessGranted`` / ``RequestApproved`` / ``EmergencyAccessTaken`` / ``AccessRevoked`` in
(block, logIndex) order), research requests and their status, and delegations. It lives in
``<home>/index/<chain id>-<consent manager>.sqlite3`` (WAL mode, so readers never wait on a sync).

Sync (``EventIndex.sync``): from the block after the last indexed one to the latest, in chunks of
``CHUNK_BLOCKS`` blocks, one ``eth_getLogs`` per chunk for the four contract addresses (no topic
filter), read as the node's JSON and decoded with eth_abi from the contract ABIs (web3's per-log
formatters and decoding cost ten times the call). Each chunk is written in one transaction together with
the new last block; every event row is UNIQUE(block, log_index) and inserted with INSERT OR
IGNORE, and derived tables change only for rows that were new, so re-running a range (a crash
between the chunk and the meta update, two processes syncing at once) never counts anything
twice. Block timestamps and transaction senders come from each block that holds events (its
header, and its receipts for the senders), read in JSON-RPC batches while the logs decode, and
are cached in ``blocks``. Records keep their CIDs as the chain holds them (bytes, parsed only when a record is
used), so an unusable pointer is indexed like any other and never stops a sync; a log that does
not decode with the ABIs is passed over with a warning.

Reorgs, minimally: ``meta`` keeps the hash of the last indexed block, and ``blocks`` the hash of
each block that held events. If the last block's hash changed (or the chain got shorter), the
index walks back over its stored blocks to the newest one the chain still has, deletes every
row above it, recomputes grants and delegations by replaying the remaining events from the
local table (no chain access), and syncs forward from there. If no stored block survives, or the
deployment block itself changed (an anvil restarted and redeployed at the same addresses), or
the deployment record differs (chain id, addresses), the index is rebuilt from scratch.

The derivation needs no chain: ``open_database``, ``insert_event`` (one ``DecodedEvent`` into
``events`` and the derived tables) and ``drop_above`` (the rewind) work on a bare connection,
``":memory:"`` included, which is how the unit tests drive them.

Queries call ``sync()`` first (``sync=False`` skips it): ``records_of``, ``readable_by``,
``readers_of``, ``requests``, ``history``. ``verify`` compares the index with the chain's state
(``logOf``, ``grantOf``, ``requestStatus``) at the last indexed block.

Longer than the usual ~500 lines: one coherent capability (schema, sync, reorgs and queries
share the schema and must change together).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_abi.grammar import parse as parse_abi_type
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address

from medvault.chain.pipeline import BatchRpc
from medvault.chain.words import decode_words
from medvault.client.access import GRANT_EVENTS
from medvault.client.audit import AUDITED_EVENTS, event_value, with_signers
from medvault.errors import IntegrityError
from medvault.formats.recordhash import record_hash_of_event
from medvault.model import (
    AccessRequest,
    AuditEntry,
    Category,
    Grant,
    GrantKind,
    Purpose,
    RecordPointer,
    RequestStatus,
    categories_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from eth_abi.codec import ABICodec

    from medvault.chain import Chain

__all__ = [
    "DecodedEvent",
    "EventIndex",
    "SyncResult",
    "VerifyReport",
    "drop_above",
    "index_path",
    "insert_event",
    "open_database",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 3: records keep their CIDs as the chain holds them (bytes)
CHUNK_BLOCKS = 10_000  # blocks per eth_getLogs call
BATCH_SIZE = 200  # blocks per JSON-RPC batch of eth_getBlockByNumber
MAX_REORG_WALK = 256  # stored blocks checked when looking for a fork point, before rebuilding
_GRANT_EVENTS = {event for event, _ in GRANT_EVENTS} | {"AccessRevoked"}  # what moves a grant
_DELEGATE_EVENTS = {"DelegateAppointed", "DelegateRemoved"}
_AUDITED_PAIRS = [(contract, event) for contract, events in AUDITED_EVENTS.items() for event in events]

_HISTORY_SQL = (
    "SELECT timestamp, event, sender, args, tx FROM events WHERE patient = ? AND (contract, event) IN (VALUES "  # noqa: S608
    + ", ".join("(?, ?)" for _ in _AUDITED_PAIRS)
    + ") ORDER BY block, log_index"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL, sender TEXT NOT NULL,
    timestamp INTEGER NOT NULL, contract TEXT NOT NULL, event TEXT NOT NULL, patient TEXT, args TEXT NOT NULL,
    PRIMARY KEY (block, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_patient ON events (patient, block, log_index);
CREATE INDEX IF NOT EXISTS events_event ON events (event, block, log_index);
CREATE TABLE IF NOT EXISTS records (
    patient TEXT NOT NULL, idx INTEGER NOT NULL, author TEXT NOT NULL, seq INTEGER NOT NULL, category INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, content_hash TEXT NOT NULL, cid BLOB NOT NULL, keys_cid BLOB NOT NULL,
    record_hash TEXT NOT NULL, block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL,
    PRIMARY KEY (patient, idx), UNIQUE (block, log_index)
);
CREATE INDEX IF NOT EXISTS records_patient_category ON records (patient, category);
CREATE TABLE IF NOT EXISTS grants (
    patient TEXT NOT NULL, grantee TEXT NOT NULL, scopes INTEGER NOT NULL, purpose INTEGER NOT NULL,
    valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL, emergency INTEGER NOT NULL,
    revoked INTEGER NOT NULL, block INTEGER NOT NULL, log_index INTEGER NOT NULL,
    PRIMARY KEY (patient, grantee)
);
CREATE INDEX IF NOT EXISTS grants_grantee ON grants (grantee, revoked, valid_until);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY, patient TEXT NOT NULL, researcher TEXT NOT NULL, scopes INTEGER NOT NULL,
    purpose INTEGER NOT NULL, duration INTEGER NOT NULL, requested_at INTEGER NOT NULL, study_id TEXT NOT NULL,
    status INTEGER NOT NULL, block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL,
    decided_block INTEGER
);
CREATE INDEX IF NOT EXISTS requests_patient ON requests (patient, status);
CREATE INDEX IF NOT EXISTS requests_researcher ON requests (researcher, status);
DROP INDEX IF EXISTS requests_status;  -- replaced by one in the order queries return
CREATE INDEX IF NOT EXISTS requests_by_status ON requests (status, block, log_index);
CREATE TABLE IF NOT EXISTS delegations (
    patient TEXT NOT NULL, delegate TEXT NOT NULL, appointed INTEGER NOT NULL, block INTEGER NOT NULL,
    PRIMARY KEY (patient, delegate)
);
"""
_TABLES = ("meta", "blocks", "events", "records", "grants", "requests", "delegations")


def index_path(home: Path, chain: Chain) -> Path:
    """``<home>/index/<chain id>-<consent manager address>.sqlite3``."""
    return Path(home) / "index" / f"{chain.chain_id}-{chain.consent.address}.sqlite3"


@dataclass(frozen=True)
class SyncResult:
    """What one ``sync`` did: the blocks it indexed (none if ``from_block > to_block``), the
    events it added, its ``eth_getLogs`` calls, whether it rewound for a reorg, and its time."""

    from_block: int
    to_block: int
    events: int
    log_calls: int
    rewound_to: int | None
    rebuilt: bool
    ms: float

    @property
    def blocks(self) -> int:
        return max(0, self.to_block - self.from_block + 1)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "blocks": self.blocks}


@dataclass
class VerifyReport:
    """The index against the chain at ``block``: what was compared and what differed."""

    block: int
    patients: int = 0
    records: int = 0
    grants: int = 0
    requests: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


@dataclass(frozen=True)
class DecodedEvent:
    """One log of a medvault contract, decoded with its ABI: ``args`` as web3 decodes them."""

    contract: str
    event: str
    args: dict[str, Any]
    block: int
    block_hash: str
    log_index: int
    tx: str


@dataclass(frozen=True)
class _EventAbi:
    """One event's ABI as eth_abi decodes its logs: the names and types of its indexed arguments
    (topics; a dynamic one is its 32-byte hash) and of the others (data), in web3's order."""

    contract: str
    name: str
    topic_names: tuple[str, ...]
    topic_types: tuple[str, ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    @classmethod
    def of(cls, contract: str, abi: Any) -> _EventAbi:
        topics = [i for i in abi["inputs"] if i["indexed"]]
        data = [i for i in abi["inputs"] if not i["indexed"]]
        topic_types = ("bytes32" if parse_abi_type(i["type"]).is_dynamic else i["type"] for i in topics)
        return cls(contract, abi["name"], tuple(i["name"] for i in topics), tuple(topic_types),
                   tuple(i["name"] for i in data), tuple(i["type"] for i in data))  # fmt: skip

    def decode(self, codec: ABICodec, topics: list[str], data: str, checksum: Callable[[str], str]) -> dict[str, Any]:
        """The arguments of a log with these ``topics`` (after the first) and ``data`` (hex), as
        web3 gives them: addresses checksummed (by ``checksum``, from lowercase)."""
        if len(topics) != len(self.topic_types):
            raise ValueError(f"expected {len(self.topic_types)} log topics, got {len(topics)}")
        if all(len(t) == 66 for t in topics):  # 32 bytes each: decoded together as web3 decodes them one by one
            words = b"".join(bytes.fromhex(t[2:]) for t in topics)
            indexed = decode_words(self.topic_types, words) or codec.decode(self.topic_types, words)
        else:
            indexed = tuple(
                codec.decode([k], bytes.fromhex(t[2:]))[0] for k, t in zip(self.topic_types, topics, strict=True)
            )
        body = bytes.fromhex(data[2:])
        values = (*indexed, *(decode_words(self.data_types, body) or codec.decode(self.data_types, body)))
        types = self.topic_types + self.data_types
        return {
            name: _addresses(kind, value, checksum)
            for name, kind, value in zip(self.topic_names + self.data_names, types, values, strict=True)
        }


def _addresses(kind: str, value: Any, checksum: Callable[[str], str]) -> Any:
    """``value`` of ABI type ``kind`` with its addresses checksummed (an address, or an array of them)."""
    if kind == "address":
        return checksum(value)
    if kind.startswith("address["):
        return tuple(_addresses(kind[: kind.rindex("[")], v, checksum) for v in value)  # the outer dimension
    return value


def open_database(path: Path | str) -> sqlite3.Connection:
    """The index database at ``path`` (``":memory:"`` for one in memory), in autocommit mode
    with WAL, its tables created if missing."""
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


# -- derivation: decoded events into the tables, pure over a connection -------------------------


def insert_event(cur: sqlite3.Cursor, e: DecodedEvent, timestamp: int, sender: str) -> int:
    """Stores one decoded event (sent by ``sender`` in a block of time ``timestamp``) and applies
    it to the derived tables; 1 if it was new, 0 if its (block, log_index) was indexed already."""
    return insert_events(cur, [(e, timestamp, sender)])


def insert_events(cur: sqlite3.Cursor, events: list[tuple[DecodedEvent, int, str]]) -> int:
    """``insert_event`` for many (event, timestamp, sender), in (block, log_index) order: the
    rows of ``events`` and ``records`` written with one ``executemany`` each; how many were new."""
    if not events:
        return 0
    low, high = min(e.block for e, _, _ in events), max(e.block for e, _, _ in events)
    stored = cur.execute("SELECT block, log_index FROM events WHERE block BETWEEN ? AND ?", (low, high))
    known = {(int(r[0]), int(r[1])) for r in stored}
    rows, records, fresh = [], [], []
    hashes: dict[tuple[str, int], bytes] = {}  # the record hashes of this batch, by (patient, index)
    for e, timestamp, sender in events:
        if (e.block, e.log_index) in known:
            continue  # indexed already
        known.add((e.block, e.log_index))
        a = e.args
        patient = a.get("account" if e.event == "ParticipantRegistered" else "patient")
        args = json.dumps({k: event_value(v) for k, v in a.items()}, separators=(",", ":"))
        rows.append((e.block, e.log_index, e.tx, sender, timestamp, e.contract, e.event, patient, args))
        if e.event == "RecordAdded":
            records.append(_record_row(cur, e, hashes))
        else:
            fresh.append((e, timestamp))
    cur.executemany(
        "INSERT OR IGNORE INTO events (block, log_index, tx, sender, timestamp, contract, event, patient, args) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    cur.executemany(
        "INSERT INTO records (patient, idx, author, seq, category, timestamp, content_hash, cid, keys_cid, "
        "record_hash, block, log_index, tx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        records,
    )
    for e, timestamp in fresh:  # grants, requests, delegations: few, and each may read the one before
        a = e.args
        if e.event == "AccessRequested":
            cur.execute(
                "INSERT OR IGNORE INTO requests (request_id, patient, researcher, scopes, purpose, duration, "
                "requested_at, study_id, status, block, log_index, tx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_request_key(a["requestId"]), a["patient"], a["researcher"], a["scopes"], a["purpose"],
                 a["duration"], a["requestedAt"], "0x" + bytes(a["studyId"]).hex(), int(RequestStatus.PENDING),
                 e.block, e.log_index, e.tx),
            )  # fmt: skip
        _derive(cur, e.event, a, e.block, e.log_index, timestamp)
    return len(rows)


def _record_row(cur: sqlite3.Cursor, e: DecodedEvent, hashes: dict[tuple[str, int], bytes]) -> tuple[Any, ...]:
    """The ``records`` row of a ``RecordAdded`` event, its hash recomputed from its fields and
    the hash of the patient's record before (from ``hashes``, this batch's, else the table)."""
    a = e.args
    patient, index = str(a["patient"]), int(a["index"])
    previous = bytes(32)
    if index > 0:
        previous_hash = hashes.get((patient, index - 1))
        if previous_hash is not None:
            previous = previous_hash
        else:
            row = cur.execute("SELECT record_hash FROM records WHERE patient = ? AND idx = ?", (patient, index - 1))
            found = row.fetchone()
            if found is None:
                raise IntegrityError(f"record log of {patient}: record {index} arrived before record {index - 1}")
            previous = bytes.fromhex(found[0][2:])
    recomputed = record_hash_of_event(previous, patient, a)
    if recomputed != bytes(a["recordHash"]):
        raise IntegrityError(f"record {index} of {patient}: its hash does not match its fields")
    hashes[patient, index] = recomputed
    return (patient, index, a["author"], a["seq"], a["category"], a["timestamp"], "0x" + bytes(a["contentHash"]).hex(),
            bytes(a["cid"]), bytes(a["keysCid"]), "0x" + recomputed.hex(), e.block, e.log_index, e.tx)  # fmt: skip


def _derive(cur: sqlite3.Cursor, event: str, a: dict[str, Any], block: int, log_index: int, ts: int) -> None:
    """Applies one event to grants, request status and delegations; ``a`` holds the event's
    arguments, decoded or as stored in ``events.args`` (only ints and addresses are read)."""
    upsert = (
        "INSERT OR REPLACE INTO grants (patient, grantee, scopes, purpose, valid_from, valid_until, emergency, "
        "revoked, block, log_index) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
    )
    if event == "AccessGranted":
        cur.execute(upsert, (a["patient"], a["grantee"], a["scopes"], a["purpose"], a["validFrom"],
                             a["validUntil"], 0, block, log_index))  # fmt: skip
    elif event == "RequestApproved":
        key = _request_key(a["requestId"])
        found = cur.execute("SELECT scopes, purpose FROM requests WHERE request_id = ?", (key,)).fetchone()
        if found is None:
            raise IntegrityError(f"request {key} was approved in block {block} but never requested")
        cur.execute(upsert, (a["patient"], a["researcher"], found[0], found[1], ts, a["validUntil"], 0,
                             block, log_index))  # fmt: skip
        cur.execute(
            "UPDATE requests SET status = ?, decided_block = ? WHERE request_id = ?",
            (int(RequestStatus.APPROVED), block, key),
        )
    elif event == "RequestDenied":
        cur.execute(
            "UPDATE requests SET status = ?, decided_block = ? WHERE request_id = ?",
            (int(RequestStatus.DENIED), block, _request_key(a["requestId"])),
        )
    elif event == "EmergencyAccessTaken":
        cur.execute(upsert, (a["patient"], a["provider"], a["scopes"], int(Purpose.ETREAT), ts,
                             a["validUntil"], 1, block, log_index))  # fmt: skip
    elif event == "AccessRevoked":
        cur.execute(
            "UPDATE grants SET revoked = 1, block = ?, log_index = ? WHERE patient = ? AND grantee = ?",
            (block, log_index, a["patient"], a["grantee"]),
        )
    elif event in _DELEGATE_EVENTS:
        cur.execute(
            "INSERT OR REPLACE INTO delegations (patient, delegate, appointed, block) VALUES (?, ?, ?, ?)",
            (a["patient"], a["delegate"], int(event == "DelegateAppointed"), block),
        )


def drop_above(cur: sqlite3.Cursor, fork: int) -> None:
    """Deletes every event, record, request and block above block ``fork``, sets requests
    decided above it back to pending, and replays grants and delegations from the events kept."""
    for table in ("events", "records", "requests", "blocks"):
        column = "number" if table == "blocks" else "block"
        cur.execute(f"DELETE FROM {table} WHERE {column} > ?", (fork,))  # noqa: S608 - fixed names
    cur.execute(
        "UPDATE requests SET status = ?, decided_block = NULL WHERE decided_block > ?",
        (int(RequestStatus.PENDING), fork),
    )
    cur.execute("DELETE FROM grants")
    cur.execute("DELETE FROM delegations")
    replayed = cur.execute(
        "SELECT event, args, block, log_index, timestamp FROM events WHERE event IN (?, ?, ?, ?, ?, ?) "
        "ORDER BY block, log_index",
        (*sorted(_GRANT_EVENTS), *sorted(_DELEGATE_EVENTS)),
    ).fetchall()
    for event, args, block, log_index, timestamp in replayed:
        _derive(cur, event, json.loads(args), block, log_index, timestamp)


class EventIndex:
    """The event index of ``chain``'s deployment in the SQLite file ``path``."""

    def __init__(self, path: Path, chain: Chain) -> None:
        self.path = Path(path)
        self.chain = chain
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = open_database(self.path)
        self.log_calls = 0  # eth_getLogs calls made by this instance (tests read it)
        self._events: dict[tuple[str, str], _EventAbi] = {}  # by (address, topic 0), lowercase hex
        self._addresses: list[str] = []
        for name, contract in chain.contracts.items():
            self._addresses.append(contract.address)
            for item in contract.abi:
                if item["type"] == "event":
                    topic = "0x" + event_abi_to_log_topic(item).hex()
                    self._events[(contract.address.lower(), topic)] = _EventAbi.of(name, item)
        endpoint = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        self._rpc = BatchRpc(endpoint, batch_size=BATCH_SIZE)
        self._block_rpc = BatchRpc(endpoint, batch_size=BATCH_SIZE)  # its own connection, for a thread
        self._checksums: dict[str, str] = {}  # lowercase address -> checksummed, computed once each
        self._fingerprint = self._deployment_fingerprint()
        if self._meta("deployment") != self._fingerprint:
            self._reset()

    @classmethod
    def open(cls, home: Path, chain: Chain) -> EventIndex:
        return cls(index_path(home, chain), chain)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> EventIndex:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- sync ------------------------------------------------------------------------------

    @property
    def last_block(self) -> int:
        """The last block indexed (the block before the deployment if none)."""
        value = self._meta("last_block")
        return int(value) if value is not None else self.chain.deployment.block_number - 1

    def sync(self) -> SyncResult:
        """Indexes the blocks after the last indexed one up to the latest; see the module docstring."""
        started = time.perf_counter()
        calls = self.log_calls
        w3 = self.chain.w3
        latest = w3.eth.get_block("latest")
        head = int(latest["number"])
        rewound: int | None = None
        rebuilt = False
        last = self.last_block
        if last >= self.chain.deployment.block_number:
            stored = self._meta("last_hash")
            if head < last:
                current = None
            elif head == last:
                current = latest["hash"].to_0x_hex()
            else:
                current = w3.eth.get_block(last)["hash"].to_0x_hex()
            if current != stored:
                rewound = self._rewind()
                rebuilt = rewound < self.chain.deployment.block_number
                last = self.last_block
        start = last + 1
        added = 0
        for chunk_start in range(start, head + 1, CHUNK_BLOCKS):
            chunk_end = min(chunk_start + CHUNK_BLOCKS - 1, head)
            end_hash = latest["hash"].to_0x_hex() if chunk_end == head else None
            added += self._index_chunk(chunk_start, chunk_end, end_hash, int(latest["timestamp"]))
        ms = (time.perf_counter() - started) * 1000
        return SyncResult(start, head, added, self.log_calls - calls, rewound, rebuilt, round(ms, 2))

    def _fetch_logs(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        """One ``eth_getLogs`` for every medvault contract over [from_block, to_block], as the node
        sent them (JSON: web3's result formatters cost more than the call)."""
        self.log_calls += 1
        logs = self._rpc.call("eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block),
                                               "address": self._addresses}])  # fmt: skip
        return list(logs)

    def _decode(self, logs: list[dict[str, Any]]) -> list[DecodedEvent]:
        decoded = []
        for log in logs:
            topics = log["topics"]
            if not topics:
                continue
            found = self._events.get((str(log["address"]).lower(), str(topics[0]).lower()))
            if found is None:
                continue  # an event these ABIs do not know: nothing a query reads
            try:
                args = found.decode(self.chain.w3.codec, topics[1:], log["data"], self._checksum)
            except Exception as exc:  # eth_abi raises many kinds for data its ABI cannot decode
                # A log that does not decode (only a lying node serves one) is passed over: one
                # event never stops the index of the whole deployment.
                where = f"{int(log['blockNumber'], 16)}/{int(log['logIndex'], 16)}"
                logger.warning(
                    "skipped the %s log at block/index %s: it does not decode (%s)", found.contract, where, exc
                )
                continue
            block, log_index = int(log["blockNumber"], 16), int(log["logIndex"], 16)
            block_hash, tx = str(log["blockHash"]).lower(), str(log["transactionHash"]).lower()
            decoded.append(DecodedEvent(found.contract, found.name, args, block, block_hash, log_index, tx))
        decoded.sort(key=lambda d: (d.block, d.log_index))
        return decoded

    def _checksum(self, address: str) -> str:
        checksummed = self._checksums.get(address)
        if checksummed is None:
            checksummed = self._checksums[address] = to_checksum_address(address)
        return checksummed

    def _blocks(self, numbers: list[int]) -> dict[int, tuple[str, int, dict[str, str]]]:
        """Hash, timestamp and transaction senders of each block, in JSON-RPC batches: each
        block's header and its receipts (a block with its transactions takes a node twenty times
        as long to serve: it recovers every sender)."""
        calls = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        answers = self._block_rpc.batch(calls + [("eth_getBlockReceipts", [hex(n)]) for n in numbers])
        result: dict[int, tuple[str, int, dict[str, str]]] = {}
        for number, block, receipts in zip(numbers, answers, answers[len(numbers) :], strict=False):
            if not block or "hash" not in block or not isinstance(receipts, list):
                raise IntegrityError(f"block {number}: the node returned no block or no receipts")
            block_hash = str(block["hash"]).lower()
            try:
                if any(str(r["blockHash"]).lower() != block_hash for r in receipts):
                    raise IntegrityError(f"block {number} changed while indexing it (a reorg); sync again")
                senders = {str(r["transactionHash"]).lower(): self._checksum(str(r["from"]).lower()) for r in receipts}
            except (KeyError, TypeError, ValueError) as exc:
                raise IntegrityError(f"block {number}: the node returned a malformed receipt ({exc})") from None
            result[number] = (block_hash, int(block["timestamp"], 16), senders)
        return result

    def _index_chunk(self, start: int, end: int, end_hash: str | None, end_timestamp: int) -> int:
        logs = self._fetch_logs(start, end)
        # The blocks are read while the logs decode: the node's time overlaps the decoding's.
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(self._blocks, sorted({int(log["blockNumber"], 16) for log in logs}))
            events = self._decode(logs)
            every_block = pending.result()
        blocks = {e.block: every_block[e.block] for e in events}  # not those of logs passed over
        for e in events:
            if blocks[e.block][0] != e.block_hash:
                raise IntegrityError(f"block {e.block} changed while indexing it (a reorg); sync again")
        if end_hash is None:
            if end in blocks:
                end_hash, end_timestamp = blocks[end][0], blocks[end][1]
            else:
                block = self.chain.w3.eth.get_block(end)
                end_hash, end_timestamp = block["hash"].to_0x_hex(), int(block["timestamp"])
        with self._transaction() as cur:
            cur.executemany(
                "INSERT OR REPLACE INTO blocks (number, hash, timestamp) VALUES (?, ?, ?)",
                [(n, h, ts) for n, (h, ts, _) in blocks.items()] + [(end, end_hash, end_timestamp)],
            )
            added = insert_events(cur, [(e, blocks[e.block][1], blocks[e.block][2].get(e.tx, "")) for e in events])
            previous = cur.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
            if previous is None or int(previous[0]) <= end:
                self._set_meta(cur, last_block=str(end), last_hash=end_hash)
        return added

    def _rewind(self) -> int:
        """After a reorg: drops everything above the newest stored block the chain still has,
        replays grants and delegations from the remaining events; the block it kept."""
        w3 = self.chain.w3
        deployment_block = self.chain.deployment.block_number
        fork = deployment_block - 1
        rows = self.db.execute(
            "SELECT number, hash FROM blocks WHERE number <= ? ORDER BY number DESC LIMIT ?",
            (self.last_block, MAX_REORG_WALK),
        ).fetchall()
        for number, stored in rows:
            with contextlib.suppress(Exception):  # a block above the new head does not exist
                if w3.eth.get_block(number)["hash"].to_0x_hex() == stored:
                    fork = int(number)
                    break
        if fork < deployment_block:
            self._reset()
            return fork
        with self._transaction() as cur:
            drop_above(cur, fork)
            fork_hash = cur.execute("SELECT hash FROM blocks WHERE number = ?", (fork,)).fetchone()[0]
            self._set_meta(cur, last_block=str(fork), last_hash=fork_hash)
        return fork

    def _reset(self) -> None:
        """Empties the index and stamps it with this deployment."""
        with self._transaction() as cur:
            for table in _TABLES:
                cur.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            self._set_meta(cur, deployment=self._fingerprint, schema=str(SCHEMA_VERSION))

    def _deployment_fingerprint(self) -> str:
        d = self.chain.deployment
        block = self.chain.w3.eth.get_block(d.block_number)
        return json.dumps(
            {
                "schema": SCHEMA_VERSION, "chain_id": d.chain_id, "block": d.block_number,
                "block_hash": block["hash"].to_0x_hex(),
                "addresses": [to_checksum_address(a) for a in self._addresses],
            },
            sort_keys=True,
        )  # fmt: skip

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _set_meta(cur: sqlite3.Cursor, **values: str) -> None:
        cur.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))

    # -- queries ---------------------------------------------------------------------------

    def now(self) -> int:
        """Chain time at the last indexed block (the latest one right after a sync)."""
        row = self.db.execute("SELECT timestamp FROM blocks WHERE number = ?", (self.last_block,)).fetchone()
        if row is None:
            return int(self.chain.w3.eth.get_block("latest")["timestamp"])
        return int(row[0])

    def records_of(self, patient: str, *, sync: bool = True) -> list[RecordPointer]:
        """The patient's log, oldest first."""
        if sync:
            self.sync()
        rows = self.db.execute("SELECT * FROM records WHERE patient = ? ORDER BY idx", (_address(patient),))
        return [_pointer(row) for row in rows]

    def readable_by(self, grantee: str, now: int | None = None, *, sync: bool = True) -> list[RecordPointer]:
        """Records whose patient holds an active grant (at chain time ``now``, by default the
        latest block's) to ``grantee`` covering the record's category; the grantee's own records
        and those it wrote are not included unless such a grant covers them."""
        if sync:
            self.sync()
        now = self.now() if now is None else now
        rows = self.db.execute(
            "SELECT r.* FROM grants g JOIN records r ON r.patient = g.patient AND (g.scopes >> r.category) & 1 = 1 "
            "WHERE g.grantee = ? AND g.revoked = 0 AND g.valid_from <= ? AND ? < g.valid_until "
            "ORDER BY r.patient, r.idx",
            (_address(grantee), now, now),
        )
        return [_pointer(row) for row in rows]

    def readers_of(self, patient: str, now: int | None = None, *, sync: bool = True) -> list[Grant]:
        """The grants of ``patient`` active at chain time ``now`` (default: the latest block's)."""
        if sync:
            self.sync()
        now = self.now() if now is None else now
        rows = self.db.execute(
            "SELECT * FROM grants WHERE patient = ? AND revoked = 0 AND valid_from <= ? AND ? < valid_until "
            "ORDER BY grantee",
            (_address(patient), now, now),
        )
        return [_grant(row) for row in rows]

    def grants_of(self, patient: str, *, sync: bool = True) -> list[Grant]:
        """Every grant the patient holds (expired and future ones included, revoked ones not)."""
        if sync:
            self.sync()
        rows = self.db.execute(
            "SELECT * FROM grants WHERE patient = ? AND revoked = 0 ORDER BY grantee", (_address(patient),)
        )
        return [_grant(row) for row in rows]

    def requests(
        self,
        status: RequestStatus | None = None,
        patient: str | None = None,
        researcher: str | None = None,
        *,
        sync: bool = True,
    ) -> list[AccessRequest]:
        """Research requests, oldest first, filtered by status, patient and researcher."""
        if sync:
            self.sync()
        where, params = [], []
        for column, value in (("status", status), ("patient", patient), ("researcher", researcher)):
            if value is not None:  # column names come from this fixed list, values are bound
                where.append(f"{column} = ?")
                params.append(int(value) if column == "status" else _address(str(value)))
        sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
        rows = self.db.execute(sql + " ORDER BY block, log_index", params)
        return [_request(row) for row in rows]

    def history(self, patient: str, *, sync: bool = True) -> list[AuditEntry]:
        """The patient's audit history, oldest first: the events ``Medvault.audit`` reads."""
        if sync:
            self.sync()
        rows = self.db.execute(_HISTORY_SQL, (_address(patient), *(x for pair in _AUDITED_PAIRS for x in pair)))
        entries = []
        for timestamp, event, sender, args, tx in rows:
            details = {k: v for k, v in json.loads(args).items() if k not in ("patient", "account")}
            entries.append(AuditEntry(timestamp, event, sender, details, tx))
        return with_signers(patient, entries)

    def counts(self) -> dict[str, int]:
        """Rows per table (events, records, grants, requests, delegations, blocks)."""
        tables = ("events", "records", "grants", "requests", "delegations", "blocks")
        return {t: int(self.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # noqa: S608

    def verify(self, *, sync: bool = True) -> VerifyReport:
        """Compares the index with the chain's state at the last indexed block: each patient's
        record count and head (``logOf``), each grant (``grantOf``), each request's status."""
        if sync:
            self.sync()
        block = self.last_block
        report = VerifyReport(block)
        functions = self.chain.consent.functions
        patients = [r[0] for r in self.db.execute("SELECT DISTINCT patient FROM records ORDER BY patient")]
        for patient in patients:
            head, count = self.chain.records.functions.logOf(patient).call(block_identifier=block)
            row = self.db.execute("SELECT count(*), max(idx) FROM records WHERE patient = ?", (patient,)).fetchone()
            last = self.db.execute(
                "SELECT record_hash FROM records WHERE patient = ? AND idx = ?", (patient, row[1])
            ).fetchone()
            if row[0] != count or last is None or last[0] != "0x" + bytes(head).hex():
                report.problems.append(f"{patient}: index holds {row[0]} records, the chain {count}")
            report.patients += 1
            report.records += int(row[0])
        for row in self.db.execute("SELECT * FROM grants"):
            valid_from, valid_until, scopes, purpose, kind, *_ = functions.grantOf(row["patient"], row["grantee"]).call(
                block_identifier=block
            )
            emergency = kind == GrantKind.EMERGENCY
            on_chain = None if valid_until == 0 else (valid_from, valid_until, scopes, purpose, emergency)
            indexed = None if row["revoked"] else (
                row["valid_from"], row["valid_until"], row["scopes"], row["purpose"], bool(row["emergency"])
            )  # fmt: skip
            if on_chain != indexed:
                report.problems.append(f"grant {row['patient']} -> {row['grantee']}: index {indexed}, chain {on_chain}")
            report.grants += 1
        for row in self.db.execute("SELECT request_id, status FROM requests"):
            status = functions.requestStatus(int(row[0], 16)).call(block_identifier=block)
            if status != row[1]:
                report.problems.append(f"request {row[0]}: index status {row[1]}, chain {status}")
            report.requests += 1
        return report


def _address(value: str) -> str:
    return to_checksum_address(value)


def _request_key(request_id: int) -> str:
    return f"0x{int(request_id):064x}"


def _pointer(row: sqlite3.Row) -> RecordPointer:
    return RecordPointer(
        patient=row["patient"], index=row["idx"], author=row["author"], seq=row["seq"], record_hash=row["record_hash"],
        category=Category(row["category"]), timestamp=row["timestamp"], content_hash=row["content_hash"],
        raw_cid=bytes(row["cid"]), raw_keys_cid=bytes(row["keys_cid"]), tx_hash=row["tx"], block_number=row["block"],
    )  # fmt: skip


# Enum members by value: a query of hundreds of rows would spend half its time in Enum.__call__.
_PURPOSES = {int(p): p for p in Purpose}
_STATUSES = {int(s): s for s in RequestStatus}


def _grant(row: sqlite3.Row) -> Grant:
    return Grant(
        row["patient"], row["grantee"], categories_of(row["scopes"]), _PURPOSES[row["purpose"]],
        row["valid_from"], row["valid_until"], bool(row["emergency"]),
    )  # fmt: skip


def _request(row: sqlite3.Row) -> AccessRequest:
    return AccessRequest(
        patient=row["patient"], researcher=row["researcher"], scopes=categories_of(row["scopes"]),
        purpose=_PURPOSES[row["purpose"]], duration=row["duration"], requested_at=row["requested_at"],
        study_id=bytes.fromhex(row["study_id"][2:]), request_id=int(row["request_id"], 16),
        status=_STATUSES[row["status"]], tx_hash=row["tx"],
    )  # fmt: skip
