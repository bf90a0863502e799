"""Unusable keys and records no key of the patient opens, made by hand as a buggy or hostile
participant would: for tests/integration/test_bad_keys.py and cli/test_cli_bad_keys.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import TYPE_CHECKING

from medvault.cids import cid_to_bytes, compute_cid
from medvault.crypto import CURVE25519_P, LOW_ORDER_U, EncryptionKeyPair, KeySuite
from medvault.model import Category

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault

__all__ = ["GOOD_HYBRID", "LOW", "LOW_ORDER", "add_raw", "garbage_wrap_bundle", "hybrid_key", "publish",
           "unopenable_records", "x25519_key"]  # fmt: skip

TOP_BIT = 1 << 255
# Every 32-byte encoding of a low-order X25519 point (see tests/unit/test_key_checks.py).
LOW_ORDER = sorted(
    {u + twin + top for u in LOW_ORDER_U for twin in (0, CURVE25519_P) for top in (0, TOP_BIT) if u + twin < TOP_BIT}
)


def x25519_key(u: int) -> bytes:
    return bytes([KeySuite.X25519]) + u.to_bytes(32, "little")


def hybrid_key(x_part: bytes) -> bytes:
    """A well-formed post-quantum key (right length, sound ML-KEM part) with ``x_part`` as its X25519 part."""
    return EncryptionKeyPair.generate(KeySuite.MLKEM768_X25519).public_bytes[:-32] + x_part


LOW = x25519_key(0)
GOOD_HYBRID = EncryptionKeyPair.generate(KeySuite.MLKEM768_X25519).public_bytes


def publish(mv: Medvault, wallet: Wallet, key: bytes) -> None:
    """Registers ``key`` as ``wallet``'s encryption key by calling the registry directly, as
    any account can (the client only ever publishes keys it generated)."""
    mv.chain.transact(wallet, mv.chain.participants.functions.register(key), f"register a key by hand for {wallet}")


def add_raw(mv: Medvault, author: Wallet, patient: Wallet, keys_cid: str) -> int:
    """A record by ``author`` whose key bundle is ``keys_cid`` (any CID, even one never added):
    the record a buggy or hostile writer leaves behind. Its index."""
    blob = b"MVR1" + os.urandom(40)
    seq = mv.next_seq(patient.address, author.address)
    fn = mv.chain.records.functions.addRecord(
        patient.address, seq, cid_to_bytes(mv.ipfs.add(blob)), hashlib.sha256(blob).digest(),
        int(Category.LABORATORY), cid_to_bytes(keys_cid),
    )  # fmt: skip
    mv.chain.transact(author, fn, "add a record no key of the patient opens")
    return mv.record_count(patient.address) - 1


def garbage_wrap_bundle(mv: Medvault, author: Wallet, patient: Wallet) -> str:
    """A well-formed key bundle whose wrap for the patient is random bytes."""
    seq = mv.next_seq(patient.address, author.address)
    wrap = {"author": author.address, "seq": seq, "reader": patient.address,
            "wrap": base64.b64encode(os.urandom(80)).decode()}  # fmt: skip
    bundle = {"format": "medvault/key-bundle/v2", "chainId": mv.chain.chain_id, "registry": mv.chain.records.address,
              "patient": patient.address, "suite": "X25519", "wraps": [wrap]}  # fmt: skip
    return mv.ipfs.add(json.dumps(bundle, separators=(",", ":")).encode())


def unopenable_records(mv: Medvault, author: Wallet, patient: Wallet) -> tuple[int, int]:
    """Two records the patient cannot open: a garbage wrap, and a key bundle IPFS never held."""
    garbage = add_raw(mv, author, patient, garbage_wrap_bundle(mv, author, patient))
    missing = add_raw(mv, author, patient, compute_cid(b"a key bundle nobody ever added"))
    return garbage, missing
