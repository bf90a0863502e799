"""Bad pointers and bad keys, refused by the contracts themselves and by the client before it
sends: a CID that is not a sha2-256 CIDv1 with the raw or dag-pb codec, and an encryption key
with an unknown suite tag or the wrong length for its suite. Each row leaves the chain, the pin
set and the home as they were.

The contract rows send the bytes straight to the contracts (``Chain.transact`` with a built
call, no client check on the way), as a faulty or hostile client would."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from helpers import new_wallet
from multiformats import CID
from unchanged import unchanged

from medvault.accounts import Keystore, Wallet
from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cids import cid_to_bytes, compute_cid
from medvault.client import Medvault
from medvault.errors import ContractError, IntegrityError, InvalidCidError
from medvault.ipfs import IpfsClient
from medvault.model import Category, Role

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.dev.node import NodeInfo

DIGEST = hashlib.sha256(b"a ciphertext").digest()
GOOD = bytes.fromhex("01551220") + DIGEST

# Binary CIDs the contracts refuse, each off the accepted layout one way.
BAD_CIDS = {
    "cidv0": bytes.fromhex("1220") + DIGEST,
    "dag-cbor": bytes.fromhex("01711220") + DIGEST,
    "dag-json": bytes.fromhex("01a9021220") + DIGEST,
    "sha2-512": bytes.fromhex("01551340") + hashlib.sha512(b"a ciphertext").digest(),
    "blake2b-256": bytes.fromhex("0155a0e40220") + hashlib.blake2b(b"a ciphertext", digest_size=32).digest(),
    "sha3-256": bytes.fromhex("01551620") + hashlib.sha3_256(b"a ciphertext").digest(),
    "identity-hash": bytes.fromhex("0155000c") + b"a ciphertext",
    "sha2-256-truncated-to-16": bytes.fromhex("01551210") + DIGEST[:16],
    "truncated-35-bytes": GOOD[:35],
    "37-bytes": GOOD + b"\x00",
    "empty": b"",
    "random-36-bytes": hashlib.sha256(b"random").digest() + b"\xde\xad\xbe\xef",
}


@dataclass(frozen=True)
class World:
    mv: Medvault
    w3: Web3
    ipfs: IpfsClient
    home: Path
    wallets: dict[str, Wallet]

    def refused(self, sender: str, call: Callable[[Any], Any], action: str = "bad input") -> ContractError:
        """Sends ``call(functions)`` from ``sender``; the contract's refusal, with nothing changed."""
        with unchanged(self.w3, self.ipfs, self.home), pytest.raises(ContractError) as caught:
            self.mv.chain.transact(self.wallets[sender], call(self.mv.chain), action)
        return caught.value


@pytest.fixture(scope="module")
def world(local_node: NodeInfo, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One deployment for the module: patient, provider and doctor registered, the provider
    accredited and on the patient's care team, a stranger with no key."""
    home = tmp_path_factory.mktemp("bad-contracts") / "home"
    keystore = Keystore(home)
    wallets = {name: new_wallet(keystore, w3, name) for name in ("admin", "patient", "provider", "doctor", "stranger")}
    with IpfsClient(local_node.ipfs_api) as ipfs:
        deployment, _ = deploy(w3, wallets["admin"], home)
        mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
        for name in ("patient", "provider", "doctor"):
            mv.register(wallets[name])
        mv.accredit(wallets["admin"], wallets["provider"].address, Role.PROVIDER)
        mv.set_writer(wallets["patient"], wallets["provider"].address, frozenset(Category))
        yield World(mv, w3, ipfs, home, wallets)


def _address(world: World, name: str) -> str:
    return world.wallets[name].address


def _assert_invalid_cid(error: ContractError, cid: bytes) -> None:
    assert error.name == "InvalidCid"
    assert error.arguments == {"cid": "0x" + cid.hex()}


# -- malformed CIDs sent straight to the contracts -------------------------------------------


@pytest.mark.parametrize("cid", BAD_CIDS.values(), ids=BAD_CIDS.keys())
def test_a_provider_cannot_point_a_record_at_a_malformed_cid(world: World, cid: bytes) -> None:
    patient = _address(world, "patient")
    seq = world.mv.next_seq(patient, _address(world, "provider"))
    error = world.refused(
        "provider", lambda c: c.records.functions.addRecord(patient, seq, cid, DIGEST, 0, GOOD), "add record"
    )
    _assert_invalid_cid(error, cid)


@pytest.mark.parametrize("cid", BAD_CIDS.values(), ids=BAD_CIDS.keys())
def test_a_patient_cannot_name_a_malformed_key_bundle_cid(world: World, cid: bytes) -> None:
    patient = _address(world, "patient")
    seq = world.mv.next_seq(patient, patient)
    error = world.refused(
        "patient", lambda c: c.records.functions.addRecord(patient, seq, GOOD, DIGEST, 0, cid), "add record"
    )
    _assert_invalid_cid(error, cid)


# One bad CID per other place a CID enters the chain.
OTHER_PLACES: dict[str, tuple[str, Callable[[World, bytes], Callable[[Any], Any]]]] = {
    "addRecords-cid": (
        "provider",
        lambda w, cid: (
            lambda c: c.records.functions.addRecords(
                _address(w, "patient"),
                w.mv.next_seq(_address(w, "patient"), _address(w, "provider")),
                [(GOOD, DIGEST, 0, GOOD), (cid, DIGEST, 1, GOOD)],
            )
        ),
    ),
    "addRecords-keysCid": (
        "provider",
        lambda w, cid: (
            lambda c: c.records.functions.addRecords(
                _address(w, "patient"),
                w.mv.next_seq(_address(w, "patient"), _address(w, "provider")),
                [(GOOD, DIGEST, 0, cid)],
            )
        ),
    ),
    "setKeepers-escrow": (
        "patient",
        lambda w, cid: lambda c: c.keepers.functions.setKeepers([_address(w, "doctor")], 1, cid),
    ),
    "grant-keysCid": (
        "patient",
        lambda w, cid: lambda c: c.consent.functions.grant(_address(w, "doctor"), 1, 0, _now(w), _now(w) + 86_400, cid),
    ),
    "shareKeys": ("patient", lambda w, cid: lambda c: c.consent.functions.shareKeys(_address(w, "doctor"), cid)),
    "shareKeys-rotation": (
        "patient",
        lambda w, cid: lambda c: c.consent.functions.shareKeys(_address(w, "patient"), cid),
    ),
}
OTHER_ROWS = [
    pytest.param(place, BAD_CIDS[case], id=f"{place}-{case}")
    for place in OTHER_PLACES
    for case in ("cidv0", "dag-cbor", "sha2-512")
]


def _now(world: World) -> int:
    return int(world.w3.eth.get_block("latest")["timestamp"])


@pytest.mark.parametrize(("place", "cid"), OTHER_ROWS)
def test_every_other_cid_the_contracts_take_is_checked(world: World, place: str, cid: bytes) -> None:
    sender, build = OTHER_PLACES[place]
    _assert_invalid_cid(world.refused(sender, build(world, cid)), cid)


def test_a_conforming_dag_pb_cid_is_accepted(world: World) -> None:
    """The check refuses only what it should: a dag-pb pointer (content above one chunk) lands."""
    dag_pb = bytes.fromhex("01701220") + DIGEST
    patient = _address(world, "patient")
    fn = world.mv.chain.keepers.functions.setKeepers([_address(world, "doctor")], 1, dag_pb)
    world.mv.chain.transact(world.wallets["patient"], fn, "keepers with a dag-pb escrow")
    assert world.mv.keepers_of(patient, with_urls=False).escrow_cid == str(CID.decode(dag_pb).set(base="base32"))
    world.mv.chain.transact(world.wallets["patient"], world.mv.chain.keepers.functions.setKeepers([], 0, b""), "none")


# -- the client refuses the same before sending ------------------------------------------------

CLIENT_CIDS = {
    "cidv0-string": (str(CID.decode(BAD_CIDS["cidv0"])), "CIDv0 dag-pb"),
    "dag-cbor-string": (str(CID.decode(BAD_CIDS["dag-cbor"])), "CIDv1 dag-cbor"),
    "sha2-512-string": (str(CID.decode(BAD_CIDS["sha2-512"]).set(base="base32")), "hash function sha2-512"),
    "sha2-256-truncated": (BAD_CIDS["sha2-256-truncated-to-16"], "16-byte sha2-256"),
    "blake2b-256": (BAD_CIDS["blake2b-256"], "hash function blake2b-256 is not supported"),
    "empty": (b"", "not a valid CID"),
    "garbage-string": ("not a cid", "not a valid CID: 'not a cid'"),
    "random-bytes": (BAD_CIDS["random-36-bytes"], "not a valid CID"),
}


@pytest.mark.parametrize(("cid", "words"), CLIENT_CIDS.values(), ids=CLIENT_CIDS.keys())
def test_the_client_refuses_a_cid_the_contracts_would(world: World, cid: str | bytes, words: str) -> None:
    with unchanged(world.w3, world.ipfs, world.home), pytest.raises(InvalidCidError, match=words):
        cid_to_bytes(cid)


@pytest.mark.parametrize("case", ["cidv0", "dag-cbor"])
def test_a_record_is_not_sent_when_ipfs_names_it_by_a_cid_the_contracts_refuse(
    world: World, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """A node that answers ``add`` with a CIDv0 or a dag-cbor CID (bypassing ``add``'s own check):
    the write is refused before signing, in words."""
    prefix = BAD_CIDS[case][: -len(DIGEST)]
    monkeypatch.setattr(
        world.mv.ipfs, "add", lambda data, **_: str(CID.decode(prefix + hashlib.sha256(data).digest())), raising=True
    )
    with (
        unchanged(world.w3, world.ipfs, world.home),
        pytest.raises(InvalidCidError, match="the contracts accept only CIDv1, raw or dag-pb"),
    ):
        world.mv.add_record(world.wallets["provider"], _address(world, "patient"), b'{"n": 1}', Category.NOTES)


def test_the_client_cid_check_accepts_what_ipfs_add_makes() -> None:
    assert cid_to_bytes(compute_cid(b"x" * 10)).startswith(bytes.fromhex("01551220"))
    assert cid_to_bytes(compute_cid(b"x" * 300_000)).startswith(bytes.fromhex("01701220"))


# -- keys with an unknown suite tag or the wrong length ----------------------------------------

X25519, MLKEM = 1, 2
X25519_LENGTH, MLKEM_LENGTH = 32, 1216
BAD_KEYS: dict[str, tuple[bytes, str, dict[str, int]]] = {
    "empty": (b"", "ParticipantRegistryEmptyKey", {}),
    "tag-0": (b"\x00" + b"\x42" * 32, "ParticipantRegistryUnknownSuite", {"tag": 0}),
    "tag-3": (b"\x03" + b"\x42" * 32, "ParticipantRegistryUnknownSuite", {"tag": 3}),
    "tag-255": (b"\xff" + b"\x42" * 1216, "ParticipantRegistryUnknownSuite", {"tag": 255}),
    "untagged-x25519": (b"\x42" * 32, "ParticipantRegistryUnknownSuite", {"tag": 0x42}),
    "x25519-tag-only": (b"\x01", "ParticipantRegistryInvalidKeyLength", {"suite": 1, "length": 0, "expected": 32}),
    "x25519-31": (
        b"\x01" + b"\x42" * 31,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 1, "length": 31, "expected": 32},
    ),
    "x25519-33": (
        b"\x01" + b"\x42" * 33,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 1, "length": 33, "expected": 32},
    ),
    "x25519-mlkem-length": (
        b"\x01" + b"\x42" * 1216,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 1, "length": 1216, "expected": 32},
    ),
    "mlkem-x25519-length": (
        b"\x02" + b"\x42" * 32,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 2, "length": 32, "expected": 1216},
    ),
    "mlkem-1215": (
        b"\x02" + b"\x42" * 1215,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 2, "length": 1215, "expected": 1216},
    ),
    "mlkem-1217": (
        b"\x02" + b"\x42" * 1217,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 2, "length": 1217, "expected": 1216},
    ),
    "mlkem-ek-only": (
        b"\x02" + b"\x42" * 1184,
        "ParticipantRegistryInvalidKeyLength",
        {"suite": 2, "length": 1184, "expected": 1216},
    ),
}


@pytest.mark.parametrize(("key", "name", "arguments"), BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_the_registry_refuses_a_key_of_no_suite_or_the_wrong_length(
    world: World, key: bytes, name: str, arguments: dict[str, int]
) -> None:
    error = world.refused("stranger", lambda c: c.participants.functions.register(key), "register")
    assert (error.name, error.arguments) == (name, arguments)
    assert not world.mv.is_registered(_address(world, "stranger"))


CLIENT_KEYS = {
    "empty": (b"", "the encryption public key is empty"),
    "tag-3": (b"\x03" + b"\x42" * 32, "unknown suite tag 3"),
    "untagged-x25519": (b"\x42" * 32, "unknown suite tag 66"),
    "x25519-31": (b"\x01" + b"\x42" * 31, "X25519 encryption public key has 31 bytes after its suite tag, not 32"),
    "x25519-33": (b"\x01" + b"\x42" * 33, "X25519 encryption public key has 33 bytes after its suite tag, not 32"),
    "mlkem-1215": (b"\x02" + b"\x42" * 1215, "has 1215 bytes after its suite tag, not 1216"),
    "mlkem-1217": (b"\x02" + b"\x42" * 1217, "has 1217 bytes after its suite tag, not 1216"),
}


@pytest.mark.parametrize(("key", "words"), CLIENT_KEYS.values(), ids=CLIENT_KEYS.keys())
def test_the_client_does_not_send_a_key_the_registry_would_refuse(world: World, key: bytes, words: str) -> None:
    with unchanged(world.w3, world.ipfs, world.home), pytest.raises(IntegrityError, match=words):
        world.mv.register_call(key)
