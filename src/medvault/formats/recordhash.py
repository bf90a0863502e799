"""The record hash that chains a patient's log: the Python twin of ``RecordRegistry._hashRecord``.

    recordHash = keccak256(abi.encode(previous, patient, index, author, seq, category, timestamp,
                                      contentHash, keccak256(cid), keccak256(keysCid)))

with ``previous`` the hash of the patient's record before (zero for the first) and ``seq`` the
author's sequence number in the patient's log (what the ciphertext is bound to, with the
patient and the author). The chain keeps
only the newest hash (the head); every reader rebuilds the chain from ``RecordAdded`` events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eth_hash.auto import keccak  # eth_utils' keccak adds a third to each hash in argument checks

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["GENESIS", "record_hash", "record_hash_of_event"]

GENESIS = bytes(32)  # the "previous" hash of a patient's first record


def record_hash(
    previous: bytes,
    patient: str,
    index: int,
    author: str,
    seq: int,
    category: int,
    timestamp: int,
    content_hash: bytes,
    cid: bytes,
    keys_cid: bytes,
) -> bytes:
    """The hash of one record (``cid`` and ``keys_cid`` in their binary form, as on chain).

    Every field is one static ABI word, packed here directly (eth_abi's encoder costs ten
    times as much; an index sync hashes every record), with eth_abi's checks of each value."""
    words = (
        _bytes32(previous), _address(patient), _uint(index, 64), _address(author), _uint(seq, 64),
        _uint(category, 8), _uint(timestamp, 64), _bytes32(content_hash), keccak(cid), keccak(keys_cid),
    )  # fmt: skip
    return keccak(b"".join(words))


def _uint(value: int, bits: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ValueError(f"{value!r} is not a uint{bits}")
    return value.to_bytes(32, "big")


def _address(value: str) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) and value[:2] in ("0x", "0X") else b""
    if len(raw) != 20:
        raise ValueError(f"{value!r} is not an address")
    return bytes(12) + raw


def _bytes32(value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{value!r} is not 32 bytes")
    return bytes(value)


def record_hash_of_event(previous: bytes, patient: str, args: Mapping[str, Any]) -> bytes:
    """The hash of the record a ``RecordAdded`` event describes (its decoded ``args``)."""
    return record_hash(
        previous,
        patient,
        args["index"],
        args["author"],
        args["seq"],
        args["category"],
        args["timestamp"],
        bytes(args["contentHash"]),
        bytes(args["cid"]),
        bytes(args["keysCid"]),
    )
