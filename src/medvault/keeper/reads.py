"""The chain reads of a key release, in as few JSON-RPC round trips as the answers allow.

A release's questions go straight to the node's JSON-RPC endpoint in batches, over one kept-alive
connection per thread (``RpcConnection``: the standard library's HTTP client, Nagle off, a third
of a millisecond a round trip where httpx and requests take several), encoded and decoded from
the contracts' ABI with eth_abi (``Method``, ``Event``): web3's per-call machinery costs more than
the node's work. A keeper deciding at a pinned block asks:

1. the block (``pin``);
2. at that block, in one batch: the patient's keeper set, the length and head of its record
   log, the ``RecordAdded`` events of the record and of the one before it (one ``eth_getLogs``
   filtered by the indexed patient and index, not the patient's whole log) and the hash of the
   reader's published key (``release_facts``);
3. in one batch again: whether the chain lets the reader read the record's category at its
   time (skipped for the patient and the author) and, unless already known by its hash, the
   reader's key itself (``consent_and_key``).

The record is checked as the log is (``record_at``): exactly one event for it and one for the
record before, its hash recomputed from its fields and the previous record's hash, and against
the log's head when it is the last; anything else is an IntegrityError, as a log that does not
rebuild is. What cannot change is kept: a public key by its hash (``ParticipantRegistered``
carries the hash as a topic, and the preimage of a hash is one key).

What these checks prove: a record that is not the last is checked against the one before it,
not against the head, so a node that lies consistently (its own event and hash for record i)
is not caught by them. It need not go that far: the same node answers ``canReadRecord``. A
keeper trusts its endpoint for the chain's answers, as any light reader of ``eth_call`` does;
against a lying node it has the second endpoint (``KeeperService(second=...)``), which must hold
the same block and decide the same. The checks here catch a node that drops, repeats or
misorders events.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.chain.pipeline import Method
from medvault.cids import cid_from_bytes
from medvault.errors import ChainUnavailableError, IntegrityError, InvalidCidError
from medvault.formats.recordhash import GENESIS, record_hash_of_event
from medvault.keeper.settled import PinnedBlock
from medvault.model import Category, KeeperSet, RecordPointer

if TYPE_CHECKING:
    from web3.contract import Contract

    from medvault.chain import Chain

__all__ = [
    "ChainReads",
    "Event",
    "Log",
    "NodeAnswerError",
    "ReleaseFacts",
    "RpcConnection",
    "escrow_cid_text",
    "record_at",
]

KEY_CACHE = 4096  # published keys kept by their hash
RPC_TIMEOUT = 30.0


class NodeAnswerError(Exception):
    """The node answered a JSON-RPC request with an error."""


@dataclass(frozen=True)
class Log:
    """One decoded event log."""

    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True)
class Event:
    """One event of a deployed contract: its log query and decoding, from its ABI."""

    address: str
    topic: str  # topic 0, 0x-hex
    indexed: tuple[tuple[str, str], ...]  # (name, type) of the indexed arguments, in order
    data: tuple[tuple[str, str], ...]  # (name, type) of the others

    @classmethod
    def of(cls, contract: Contract, name: str) -> Event:
        events: list[Any] = [e for e in contract.abi if e.get("type") == "event" and e.get("name") == name]
        [abi] = events
        inputs = [(str(i["name"]), str(i["type"])) for i in abi["inputs"]]
        indexed = [i["indexed"] for i in abi["inputs"]]
        return cls(
            str(contract.address).lower(),
            "0x" + event_abi_to_log_topic(abi).hex(),
            tuple(p for p, i in zip(inputs, indexed, strict=True) if i),
            tuple(p for p, i in zip(inputs, indexed, strict=True) if not i),
        )

    def query(self, to_block: int | str, from_block: int, *values: Any) -> tuple[str, list[Any]]:
        """The ``eth_getLogs`` request for the logs whose indexed arguments are ``values``, in
        order (a list: any of them; None: any value)."""
        topics: list[Any] = [self.topic]
        for (_, kind), value in zip(self.indexed, values, strict=False):
            if value is None:
                topics.append(None)
            elif isinstance(value, list):
                topics.append([_topic(kind, v) for v in value])
            else:
                topics.append(_topic(kind, value))
        to = hex(to_block) if isinstance(to_block, int) else to_block
        query = {"address": self.address, "fromBlock": hex(from_block), "toBlock": to, "topics": topics}
        return "eth_getLogs", [query]

    def decode(self, log: dict[str, Any]) -> Log:
        """The log's arguments; IntegrityError if it is not this event's, or is malformed."""
        try:
            topics = [bytes.fromhex(str(t).removeprefix("0x")) for t in log["topics"]]
            if str(log["address"]).lower() != self.address or not topics or "0x" + topics[0].hex() != self.topic:
                raise ValueError("another contract's or another event's log")
            if len(topics) != len(self.indexed) + 1:
                raise ValueError(f"{len(topics) - 1} indexed arguments")
            pairs = zip(self.indexed, topics[1:], strict=True)
            args = {name: abi_decode([kind], topic)[0] for (name, kind), topic in pairs}
            values = abi_decode([k for _, k in self.data], bytes.fromhex(str(log["data"]).removeprefix("0x")))
            args |= {name: value for (name, _), value in zip(self.data, values, strict=True)}
            return Log(args, int(log["blockNumber"], 16), int(log["logIndex"], 16), str(log["transactionHash"]))
        except Exception as exc:  # eth_abi's decoding errors, missing fields, bad hex
            raise IntegrityError(f"the Ethereum node answered a log that is not a {self.topic} log: {exc}") from None


class RpcConnection:
    """HTTP POSTs to one JSON-RPC endpoint, over one kept-alive connection per thread."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChainUnavailableError(url, "not an http(s) URL")
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname, parts.port
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Content-Type": "application/json"}
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self.closed = False

    def post(self, body: bytes) -> bytes:
        """The body of the answer to ``body``; a kept-alive connection the node has closed
        meanwhile is opened again once (every request here is a read: it can be repeated)."""
        for attempt in (1, 2):
            connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._connect()
            try:
                connection.request("POST", self.path, body, self.headers)
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self._drop(connection)
                if attempt == 2:
                    raise
                continue
            if response.status != 200:
                raise http.client.HTTPException(f"HTTP {response.status}")
            return data
        raise AssertionError("unreachable")

    def _connect(self) -> http.client.HTTPConnection:
        if self.closed:
            raise OSError("the connection to the Ethereum node is closed")
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=RPC_TIMEOUT)
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.connection = connection
        self._open.add(connection)
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        self._open.discard(connection)
        self._local.connection = None

    def close(self) -> None:
        """Closes every thread's connection; no request is sent after."""
        self.closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()


@dataclass(frozen=True)
class ReleaseFacts:
    """What a keeper reads of one patient at one block to decide a release."""

    keepers: KeeperSet
    count: int  # records in the patient's log
    head: bytes  # the log's head hash
    events: list[Log]  # RecordAdded of the record asked for and of the one before it
    key_hash: bytes  # the reader's published key's hash (zero: none)


class ChainReads:
    """Batched, ABI-encoded reads of ``chain``'s endpoint, safe to share between threads."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.url = str(getattr(chain.w3.provider, "endpoint_uri", ""))
        self.rpc = RpcConnection(self.url)
        self.keepers_of = Method.of(chain.keepers, "keepersOf")
        self.log_of = Method.of(chain.records, "logOf")
        self.can_read_record = Method.of(chain.consent, "canReadRecord")
        self.key_hash = Method.of(chain.participants, "encryptionKeyHash")
        self.record_added = Event.of(chain.records, "RecordAdded")
        self.registered = Event.of(chain.participants, "ParticipantRegistered")
        self.announced = Event.of(chain.keepers, "KeeperAnnounced")
        self._keys: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The results of ``calls`` in one round trip; ChainUnavailableError if the node does not
        answer (or not JSON-RPC), NodeAnswerError if it answers one of them with an error."""
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        try:
            answers = {a["id"]: a for a in json.loads(self.rpc.post(json.dumps(payload).encode()))}
        except (OSError, http.client.HTTPException, ValueError, TypeError, KeyError) as exc:
            raise ChainUnavailableError(self.url, f"JSON-RPC batch failed: {str(exc) or type(exc).__name__}") from None
        results = []
        for i, (method, _) in enumerate(calls):
            answer = answers.get(i, {"error": {"message": "no answer"}})
            if "error" in answer:
                error = answer["error"]
                raise NodeAnswerError(f"{method}: {error.get('message', error) if isinstance(error, dict) else error}")
            results.append(answer["result"])
        return results

    def close(self) -> None:
        self.rpc.close()

    def call(self, method: Method, *args: Any, block: int | str = "latest") -> tuple[str, list[Any]]:
        """The ``eth_call`` request of ``method`` with ``args`` at ``block``."""
        tag = hex(block) if isinstance(block, int) else block
        return "eth_call", [{"to": method.address, "data": method.data(*args)}, tag]

    def pin(self, confirmations: int) -> PinnedBlock:
        """``latest - confirmations``: one round trip without confirmations, two with."""
        if confirmations == 0:
            [block] = self.batch([("eth_getBlockByNumber", ["latest", False])])
            return self.pinned(block, None)
        [number] = self.batch([("eth_blockNumber", [])])
        head = int(number, 16)
        [block] = self.batch([("eth_getBlockByNumber", [hex(max(head - confirmations, 0)), False])])
        return self.pinned(block, head)

    def pinned(self, block: Any, head: int | None) -> PinnedBlock:
        """``block`` (as eth_getBlockByNumber answers) as a PinnedBlock, seen with ``head`` (its own number if None)."""
        if not isinstance(block, dict):
            raise ChainUnavailableError(self.url, "it answered no block")
        number = int(block["number"], 16)
        hash_ = str(block["hash"]).removeprefix("0x").lower()
        return PinnedBlock(number, hash_, int(block["timestamp"], 16), number if head is None else head)

    def release_facts(self, block: PinnedBlock, patient: str, index: int, reader: str) -> ReleaseFacts:
        """The keeper set, the log's length and head, the record's events and the reader's key hash at ``block``."""
        at, start = block.number, self.chain.deployment.block_number
        wanted = [index - 1, index] if index > 0 else [index]
        keepers, log, events, key_hash = self.batch([
            self.call(self.keepers_of, patient, block=at),
            self.call(self.log_of, patient, block=at),
            self.record_added.query(at, start, patient, wanted),
            self.call(self.key_hash, reader, block=at),
        ])  # fmt: skip
        head, count = self.log_of.decode(log)
        decoded = [self.record_added.decode(e) for e in events]
        return ReleaseFacts(
            self._keeper_set(patient, keepers, {}), int(count), bytes(head), decoded, self._hash(key_hash)
        )

    def asking(self, patient: str, reader: str, named: list[str]) -> tuple[KeeperSet, bytes, int]:
        """For a reader about to ask keepers, in one round trip at the latest block: the
        patient's keeper set with the URLs the keepers in ``named`` announced last (the others'
        are absent: ``keeper_urls``), the hash of the reader's published key and the chain's time."""
        calls = [
            self.call(self.keepers_of, patient),
            self.call(self.key_hash, reader),
            ("eth_getBlockByNumber", ["latest", False]),
        ]
        if named:
            calls.append(self.announced.query("latest", self.chain.deployment.block_number, named))
        keepers, key_hash, block, *logs = self.batch(calls)
        urls = self._urls(named, logs[0]) if named else {}
        return self._keeper_set(patient, keepers, urls), self._hash(key_hash), self.pinned(block, None).timestamp

    def _keeper_set(self, patient: str, answer: str, urls: dict[str, str | None]) -> KeeperSet:
        members, threshold, escrow = self.keepers_of.decode(answer)
        keepers: list[str] = [to_checksum_address(k) for k in members]
        return KeeperSet(patient, keepers, int(threshold), urls, escrow_cid_text(bytes(escrow)) if escrow else None)

    def _hash(self, answer: str) -> bytes:
        return bytes(self.key_hash.decode(answer)[0])

    def consent_and_key(
        self, block: PinnedBlock, pointer: RecordPointer, reader: str, key_hash: bytes, *, ask: bool
    ) -> tuple[bool, bytes | None]:
        """Whether the chain lets ``reader`` read ``pointer`` at ``block`` (asked only if ``ask``,
        else True), and the reader's published key whose hash is ``key_hash`` (None if no
        ``ParticipantRegistered`` event of the reader carries it, or the hash is zero: none)."""
        key = self._keys.get(key_hash)
        lookup = key is None and key_hash != bytes(32)
        calls = []
        if ask:
            category, written_at = int(pointer.category), pointer.timestamp
            calls.append(
                self.call(self.can_read_record, pointer.patient, reader, category, written_at, block=block.number)
            )
        if lookup:
            start = self.chain.deployment.block_number
            calls.append(self.registered.query(block.number, start, reader, "0x" + key_hash.hex()))
        answers = self.batch(calls) if calls else []
        allowed = bool(self.can_read_record.decode(answers.pop(0))[0]) if ask else True
        if lookup:
            key = self._key_of(key_hash, [self.registered.decode(e) for e in answers.pop(0)])
        return allowed, key

    def _key_of(self, key_hash: bytes, events: list[Log]) -> bytes | None:
        """The key of ``events`` whose hash is ``key_hash``, remembered by it."""
        for event in reversed(events):
            key = bytes(event.args["encryptionKey"])
            if keccak(key) == key_hash:
                with self._lock:
                    if len(self._keys) >= KEY_CACHE:
                        self._keys.pop(next(iter(self._keys)))
                    self._keys[key_hash] = key
                return key
        return None

    def keeper_urls(self, keepers: list[str]) -> dict[str, str | None]:
        """The URL each of ``keepers`` announced last (None if it never announced one), in one query."""
        if not keepers:
            return {}
        [logs] = self.batch([self.announced.query("latest", self.chain.deployment.block_number, keepers)])
        return self._urls(keepers, logs)

    def _urls(self, keepers: list[str], logs: list[dict[str, Any]]) -> dict[str, str | None]:
        urls: dict[str, str | None] = dict.fromkeys(keepers)
        for event in sorted((self.announced.decode(e) for e in logs), key=lambda e: (e.block_number, e.log_index)):
            keeper = to_checksum_address(event.args["keeper"])
            if keeper in urls:
                urls[keeper] = str(event.args["url"])
        return urls


def record_at(facts: ReleaseFacts, patient: str, index: int) -> RecordPointer:
    """The pointer of record ``index`` (below ``facts.count``) of ``patient``, from its event,
    checked: exactly one event for it and one for the record before it, its hash recomputed from
    its fields and the previous hash, and the head if it is the last record; else IntegrityError."""
    by_index: dict[int, list[Log]] = {}
    for event in facts.events:
        a = event.args
        if to_checksum_address(a["patient"]) != patient or a["index"] not in (index - 1, index):
            raise IntegrityError(f"record log of {patient}: the Ethereum node answered an event it was not asked for")
        by_index.setdefault(int(a["index"]), []).append(event)
    for i in (index - 1, index) if index > 0 else (index,):
        if len(by_index.get(i, [])) != 1:
            raise IntegrityError(f"record log of {patient}: {len(by_index.get(i, []))} events for record {i}")
    previous = bytes(by_index[index - 1][0].args["recordHash"]) if index > 0 else GENESIS
    event = by_index[index][0]
    args = {**event.args, "author": to_checksum_address(event.args["author"])}
    recomputed = record_hash_of_event(previous, patient, args)
    if recomputed != bytes(args["recordHash"]):
        raise IntegrityError(f"record {index} of {patient}: its hash does not match its fields")
    if index == facts.count - 1 and recomputed != facts.head:
        raise IntegrityError(
            f"record log of {patient}: record {index}, the last, hashes to 0x{recomputed.hex()}, "
            f"but the chain holds head 0x{facts.head.hex()}"
        )
    return RecordPointer(
        patient=patient,
        index=index,
        author=args["author"],
        seq=args["seq"],
        record_hash="0x" + recomputed.hex(),
        category=Category(args["category"]),
        timestamp=args["timestamp"],
        content_hash="0x" + bytes(args["contentHash"]).hex(),
        raw_cid=bytes(args["cid"]),
        raw_keys_cid=bytes(args["keysCid"]),
        tx_hash=event.tx_hash,
        block_number=event.block_number,
    )


def escrow_cid_text(raw: bytes) -> str:
    """``raw`` as a CID, else as hex: a malformed re-escrow CID (setKeepers checks only its
    length) fails where it is read, for the records it covers, not every write of the patient."""
    try:
        return cid_from_bytes(raw)
    except InvalidCidError:
        return "0x" + raw.hex()


def _topic(kind: str, value: Any) -> str:
    if kind == "bytes32" and isinstance(value, str):
        value = bytes.fromhex(value.removeprefix("0x"))
    return "0x" + abi_encode([kind], [value]).hex()
