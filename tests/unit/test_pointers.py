"""Containment of bad pointers, without a chain: malformed CID bytes (empty, random, CIDv0, a
sha-512 CID, a dag-cbor CID) through the pointer parser, the log the client builds from fake
``RecordAdded`` events, and the event index's derivation. One bad record is a problem of that
record (named by patient and index); the records around it are untouched."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from multiformats import CID, multihash

from medvault.cids import cid_to_bytes, compute_cid
from medvault.client import Medvault
from medvault.crypto import KeySuite
from medvault.errors import BadRecordError, InvalidCidError
from medvault.formats.recordhash import GENESIS, record_hash_of_event
from medvault.index import DecodedEvent, insert_event, open_database
from medvault.model import Category, RecordPointer, pointer_cid

PATIENT = to_checksum_address("0x" + "11" * 20)
AUTHOR = to_checksum_address("0x" + "33" * 20)
GOOD = cid_to_bytes(compute_cid(b"ciphertext"))
DIGEST = multihash.digest(b"ciphertext", "sha2-256")

# (id, raw bytes, words the reason holds)
MALFORMED = [
    ("empty", b"", "it is empty"),
    ("random", b"\xff\xb2U[" + os.urandom(32), "not a valid CID"),
    ("one-byte", b"\x01", "not a valid CID"),
    ("cidv0", bytes(CID("base58btc", 0, "dag-pb", DIGEST)), "a CIDv0; pointers are CIDv1"),
    ("sha-512", bytes(CID("base32", 1, "raw", multihash.digest(b"x", "sha2-512"))), "sha2-512 is not supported"),
    ("dag-cbor", bytes(CID("base32", 1, "dag-cbor", DIGEST)), "codec dag-cbor is not supported"),
    ("truncated", GOOD[:-4], "not a valid CID"),
]


@pytest.mark.parametrize(("raw", "words"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_the_parser_names_why_a_pointer_is_unusable(raw: bytes, words: str) -> None:
    with pytest.raises(InvalidCidError, match=words):
        pointer_cid(raw)


def test_the_parser_takes_raw_and_dag_pb_cidv1() -> None:
    assert pointer_cid(GOOD) == compute_cid(b"ciphertext")
    dag_pb = CID("base32", 1, "dag-pb", DIGEST)
    assert pointer_cid(bytes(dag_pb)) == str(dag_pb)
    for codec in ("raw", "dag-pb"):  # the direct encoding gives multiformats' text
        for _ in range(20):
            cid = CID("base32", 1, codec, multihash.digest(os.urandom(40), "sha2-256"))
            assert pointer_cid(bytes(cid)) == str(cid)


def pointer(index: int, raw_cid: bytes = GOOD, raw_keys_cid: bytes = GOOD) -> RecordPointer:
    return RecordPointer(
        patient=PATIENT, index=index, author=AUTHOR, seq=index, record_hash="0x" + "ab" * 32,
        category=Category.LABORATORY, timestamp=1, content_hash="0x" + "cd" * 32, raw_cid=raw_cid,
        raw_keys_cid=raw_keys_cid, tx_hash="0x" + "ef" * 32, block_number=1,
    )  # fmt: skip


@pytest.mark.parametrize("raw", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_bad_pointer_is_a_problem_of_its_record_alone(raw: bytes) -> None:
    bad = pointer(4, raw_keys_cid=raw)
    assert bad.cid == compute_cid(b"ciphertext")  # the usable CID of the same record still parses
    with pytest.raises(BadRecordError, match=f"record 4 of {PATIENT} cannot be used: its key bundle pointer") as caught:
        _ = bad.keys_cid
    assert (caught.value.patient, caught.value.index) == (PATIENT, 4)
    assert bad.problem == str(caught.value)
    assert bad.to_json()["keys_cid"] == "0x" + raw.hex()
    assert pointer(5).problem is None


# -- the client's log, built from fake events ---------------------------------------------------


def event(index: int, previous: bytes, raw_cid: bytes) -> dict[str, Any]:
    args: dict[str, Any] = {
        "patient": PATIENT, "index": index, "author": AUTHOR, "seq": index, "category": int(Category.LABORATORY),
        "timestamp": 100 + index, "contentHash": bytes(32), "cid": raw_cid, "keysCid": GOOD,
    }  # fmt: skip
    args["recordHash"] = record_hash_of_event(previous, PATIENT, args)
    return {"args": args, "transactionHash": HexBytes(bytes([index]) * 32), "blockNumber": 10 + index}


class FakeChain:
    """What ``Medvault.records`` reads: ``logOf`` and the ``RecordAdded`` / ``RecordFlagged`` events."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.deployment = SimpleNamespace(key_suite=KeySuite.X25519)
        self.records = SimpleNamespace(functions=SimpleNamespace(logOf=lambda patient: patient))
        self._events = events

    def call(self, fn: Any, name: str) -> tuple[bytes, int]:
        return self._events[-1]["args"]["recordHash"], len(self._events)

    def events(self, contract: str, name: str, **filters: Any) -> list[dict[str, Any]]:
        return self._events if name == "RecordAdded" else []


@pytest.mark.parametrize("raw", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_the_log_is_built_around_a_bad_record(raw: bytes) -> None:
    events, previous = [], GENESIS
    for index, cid in enumerate([GOOD, raw, cid_to_bytes(compute_cid(b"later"))]):
        events.append(event(index, previous, cid))
        previous = events[-1]["args"]["recordHash"]
    log = Medvault(FakeChain(events), None).records(PATIENT)  # type: ignore[arg-type]
    assert [p.index for p in log] == [0, 1, 2]
    assert [p.problem is None for p in log] == [True, False, True]
    assert f"record 1 of {PATIENT}" in str(log[1].problem)
    assert log[2].cid == compute_cid(b"later")


# -- the event index --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_the_index_stores_a_bad_pointer_as_the_chain_holds_it_and_carries_on(raw: bytes) -> None:
    db = open_database(":memory:")
    cur = db.cursor()
    previous = GENESIS
    for index, cid in enumerate([raw, GOOD]):
        args = event(index, previous, cid)["args"]
        previous = args["recordHash"]
        decoded = DecodedEvent(
            "RecordRegistry", "RecordAdded", args, index + 1, f"0x{index:064x}", 0, f"0x{index:064x}"
        )
        assert insert_event(cur, decoded, 100 + index, AUTHOR) == 1
    rows = db.execute("SELECT idx, cid FROM records ORDER BY idx").fetchall()
    assert [(r[0], bytes(r[1])) for r in rows] == [(0, raw), (1, GOOD)]
    stored = db.execute("SELECT args FROM events WHERE block = 1").fetchone()[0]
    assert json.loads(stored)["index"] == 0  # the event itself is indexed, as text
