"""Bad records written straight through the registry, as a careless or hostile writer (or an
older deployment) leaves them, for the containment tests.

Two families:

* ``WELL_FORMED``: pointers any contract accepts, CIDv1 sha2-256 raw, whose objects are bad (a
  ciphertext or key bundle the node never held, a bundle that is not JSON, a plaintext that is
  not a medvault envelope). These hold on every deployment.
Pointer bytes that are not a usable CID at all (random bytes, a sha-512 CID, a dag-cbor CID, a
CIDv0, a truncated CID) are refused by the contracts (contracts/libraries/Cids.sol); the unit
tests (tests/unit/test_pointers.py) feed them through the log, the index and the keepers.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from data import LABS
from helpers import add, grant, new_wallet
from multiformats import multihash

from medvault.accounts import Keystore
from medvault.chain import Chain, deploy, load_artifacts
from medvault.cids import cid_to_bytes, compute_cid
from medvault.client import Medvault
from medvault.crypto import encrypt_record, new_record_key
from medvault.formats import envelope
from medvault.formats.keybundle import escrow_key, wrap_for
from medvault.ipfs import IpfsClient
from medvault.model import Category, Role

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.dev.node import NodeInfo

__all__ = ["KINDS", "WELL_FORMED", "World", "bad_world", "never_added", "write_pointer"]


def never_added() -> bytes:
    """A well-formed CID (CIDv1, sha2-256, raw) of bytes no node holds."""
    return cid_to_bytes(compute_cid(os.urandom(32)))


_DIGEST = multihash.digest(b"some ciphertext", "sha2-256")

# name: (the keyword arguments of write_pointer, words the error or finding holds)
WELL_FORMED: dict[str, tuple[dict[str, Any], str]] = {
    "missing-ciphertext": ({"cid": "never-added"}, "its ciphertext"),
    "missing-key-bundle": ({"keys_cid": "never-added"}, "its key bundle"),
    "key-bundle-not-json": ({"bundle": b"\x00 this is not JSON"}, "is not a medvault key bundle"),
    "plaintext-not-an-envelope": ({"plaintext": b"no header line here"}, "no medvault header line"),
    "not-a-ciphertext": ({"blob": b"plain bytes, never sealed"}, "is not a medvault ciphertext"),
}
# Every kind: name -> (write_pointer's arguments, words the refusal holds)
KINDS: dict[str, tuple[dict[str, Any], str]] = dict(WELL_FORMED)


@dataclass
class World:
    """One deployment holding a patient's log with bad records among good ones."""

    mv: Medvault
    w3: Web3
    home: Path
    patient: Wallet
    doctor: Wallet
    bad: dict[str, int]  # each kind's record index
    good: list[int]


@contextmanager
def bad_world(node: NodeInfo, w3: Web3, home: Path, kinds: dict[str, tuple[dict[str, Any], str]]) -> Iterator[World]:
    """A deployment in ``home`` (keystore accounts admin, patient, provider, doctor): the
    patient's log holds a good record, then one bad record of each of ``kinds`` each followed by
    a good one; the doctor holds a grant of laboratory records with the keys shared."""
    keystore = Keystore(home)
    wallets = {name: new_wallet(keystore, w3, name) for name in ("admin", "patient", "provider", "doctor")}
    deployment, _ = deploy(w3, wallets["admin"], home)
    with IpfsClient(node.ipfs_api) as ipfs:
        mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
        patient, provider, doctor = wallets["patient"], wallets["provider"], wallets["doctor"]
        for wallet in (patient, provider, doctor):
            mv.register(wallet)
        mv.accredit(wallets["admin"], provider.address, Role.PROVIDER)
        mv.set_writer(patient, provider.address, frozenset(Category))
        good, bad = [add(mv, provider, patient).index], {}
        for name, (kwargs, _) in kinds.items():
            bad[name] = write_pointer(mv, provider, patient, **kwargs)
            good.append(add(mv, provider, patient).index)
        grant(mv, patient, doctor, LABS)
        yield World(mv, w3, home, patient, doctor, bad, good)


def write_pointer(
    mv: Medvault,
    author: Wallet,
    patient: Wallet,
    *,
    cid: bytes | str | None = None,
    keys_cid: bytes | str | None = None,
    bundle: bytes | None = None,
    plaintext: bytes | None = None,
    blob: bytes | None = None,
    category: Category = Category.LABORATORY,
) -> int:
    """Appends a record whose parts are genuine (sealed for its place, its key wrapped for the
    patient and escrowed with the patient's keepers) unless replaced: ``cid`` / ``keys_cid``
    (raw pointer bytes, or "never-added"), ``bundle`` (the key bundle's bytes), ``plaintext``
    (what is sealed), ``blob`` (the ciphertext). Returns the record's index."""
    seq = mv.next_seq(patient.address, author.address)
    context = mv.record_context(patient.address, author.address, seq)
    key = new_record_key()
    if blob is None:
        blob = encrypt_record(
            envelope.pack(b"{}", "application/fhir+json") if plaintext is None else plaintext, key, context
        )
    keepers = mv.keepers_of(patient.address, with_urls=False)
    keeper_keys = {k: mv.encryption_key(k) for k in keepers.keepers}
    escrow = escrow_key(context, key, keepers.threshold, keeper_keys) if keeper_keys else None
    wraps = [wrap_for(context, key, patient.address, mv.encryption_key(patient.address))]
    if bundle is None:
        bundle = mv.new_key_bundle(patient.address, wraps, escrow).to_bytes()
    raw_cid = _pointer(cid) if cid is not None else cid_to_bytes(mv.ipfs.add(blob))
    raw_keys = _pointer(keys_cid) if keys_cid is not None else cid_to_bytes(mv.ipfs.add(bundle))
    fn = mv.chain.records.functions.addRecord(
        patient.address, seq, raw_cid, hashlib.sha256(blob).digest(), int(category), raw_keys
    )
    mv.chain.transact(author, fn, "a bad record")
    return mv.record_count(patient.address) - 1


def _pointer(value: bytes | str) -> bytes:
    return never_added() if value == "never-added" else bytes(value)  # type: ignore[arg-type]
