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

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["GENESIS", "record_hash", "record_hash_of_event"]

GENESIS = bytes(32)  # the "previous" hash of a patient's first record
_TYPES = ["bytes32", "address", "uint64", "address", "uint64", "uint8", "uint64", "bytes32", "bytes32", "bytes32"]


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
    """The hash of one record (``cid`` and ``keys_cid`` in their binary form, as on chain)."""
    return keccak(
        abi_encode(
            _TYPES,
            [previous, patient, index, author, seq, category, timestamp, content_hash, keccak(cid), keccak(keys_cid)],
        )
    )


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
