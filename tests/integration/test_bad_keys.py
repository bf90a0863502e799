"""Published keys that cannot be used: a reader's is skipped and named, the patient's, the
author's, a grantee's that keys are shared with or a keeper's (too few left) are refused in
words, leaving chain, pins and home as they were; and grants, approvals and key rotations
share what the patient's keys open and name the records they do not.

Keys of an unknown suite or a wrong length never reach the chain: the ParticipantRegistry
refuses them (test_bad_contracts.py); the keys here are ones it accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from data import DAY, LAB, PASSPHRASE
from helpers import new_wallet
from keyfaults import GOOD_HYBRID, LOW, LOW_ORDER, hybrid_key, publish, unopenable_records, x25519_key
from unchanged import unchanged

from medvault.accounts import Keystore
from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cids import compute_cid
from medvault.client import Medvault
from medvault.crypto import KeySuite
from medvault.errors import MedvaultError
from medvault.ipfs import IpfsClient
from medvault.model import Category, GrantTerms, Purpose, Role

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

LABS = frozenset({Category.LABORATORY})


def terms(mv: Medvault, scopes: frozenset[Category] = LABS) -> GrantTerms:
    return GrantTerms(scopes, Purpose.TREAT, mv.now(), mv.now() + DAY)


# -- writes: a reader whose key cannot be used is skipped and named -------------------------------


@pytest.mark.parametrize("u", [LOW_ORDER[0], LOW_ORDER[5], LOW_ORDER[-1]], ids=lambda u: f"u={u:#x}"[:22])
def test_a_grantee_with_a_low_order_key_does_not_stop_records_being_written(
    mv: Medvault, patient: Wallet, provider: Wallet, doctor: Wallet, stranger: Wallet, u: int
) -> None:
    mv.grant(patient, patient.address, doctor.address, terms(mv))
    publish(mv, stranger, x25519_key(u))
    mv.grant(patient, patient.address, stranger.address, terms(mv))  # no record yet: no key to share

    receipt = mv.add_record(provider, patient.address, LAB, Category.LABORATORY)

    assert receipt.readers == [patient.address, provider.address, doctor.address]
    assert list(receipt.skipped) == [stranger.address]
    assert "low-order point" in receipt.skipped[stranger.address]
    index = receipt.pointer.index
    assert mv.read_record(doctor, patient.address, index).data == LAB
    assert mv.read_record(patient, patient.address, index).data == LAB


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        pytest.param(GOOD_HYBRID, "this deployment wraps for X25519 keys", id="post-quantum-in-x25519-deployment"),
    ],
)
def test_a_grantee_with_a_malformed_key_is_skipped_with_why(
    mv: Medvault, patient: Wallet, provider: Wallet, doctor: Wallet, stranger: Wallet, key: bytes, reason: str
) -> None:
    """Keys of an unknown suite or a wrong length the registry refuses (test_bad_contracts.py)."""
    mv.grant(patient, patient.address, doctor.address, terms(mv))
    publish(mv, stranger, key)
    mv.grant(patient, patient.address, stranger.address, terms(mv))

    receipt = mv.add_record(provider, patient.address, LAB, Category.LABORATORY)

    assert reason in receipt.skipped[stranger.address]
    assert mv.read_record(doctor, patient.address, receipt.pointer.index).data == LAB


def test_a_post_quantum_grantee_with_a_low_order_x25519_part_is_skipped(
    w3: Web3, home: Path, ipfs: IpfsClient, wallets: dict[str, Wallet]
) -> None:
    deployment, _ = deploy(w3, wallets["admin"], home, KeySuite.MLKEM768_X25519)
    mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
    patient, doctor, stranger = wallets["patient"], wallets["doctor"], wallets["stranger"]
    for wallet in (patient, doctor):
        mv.register(wallet)
    publish(mv, stranger, hybrid_key(LOW_ORDER[3].to_bytes(32, "little")))
    for grantee in (doctor, stranger):
        mv.grant(patient, patient.address, grantee.address, terms(mv))

    receipt = mv.add_record(patient, patient.address, LAB, Category.LABORATORY)

    assert (
        "the X25519 part of the MLKEM768_X25519 key is one of the low-order points" in receipt.skipped[stranger.address]
    )
    assert mv.read_record(doctor, patient.address, receipt.pointer.index).data == LAB


def test_a_keeper_whose_key_went_bad_is_left_out_of_the_escrow(
    mv: Medvault, patient: Wallet, provider: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    mv.register(stranger)
    mv.set_keepers(patient, [doctor.address, stranger.address], 1)
    publish(mv, stranger, LOW)  # after being chosen

    receipt = mv.add_record(provider, patient.address, LAB, Category.LABORATORY)

    assert "keeper left out of the key escrow" in receipt.skipped[stranger.address]
    bundle = mv.key_bundle(receipt.pointer.keys_cid, patient.address)
    assert bundle.escrow is not None
    assert [s.keeper for s in bundle.escrow.shares] == [doctor.address]


# -- grants, approvals and rotations: a record the patient cannot open is named, not fatal ---------


def test_a_record_the_patient_cannot_open_does_not_stop_a_grant(
    mv: Medvault, patient: Wallet, provider: Wallet, doctor: Wallet
) -> None:
    first = mv.add_record(provider, patient.address, LAB, Category.LABORATORY).pointer.index
    garbage, missing = unopenable_records(mv, provider, patient)
    last = mv.add_record(provider, patient.address, LAB + b" ", Category.LABORATORY).pointer.index

    receipt = mv.grant(patient, patient.address, doctor.address, terms(mv))

    assert sorted(receipt.skipped) == [garbage, missing]
    assert "failed authentication" in receipt.skipped[garbage]
    assert compute_cid(b"a key bundle nobody ever added") in receipt.skipped[missing]
    assert mv.read_record(doctor, patient.address, first).data == LAB  # shared with the grant
    assert mv.read_record(doctor, patient.address, last).data == LAB + b" "


def test_a_record_the_patient_cannot_open_does_not_stop_an_approval(
    mv: Medvault, admin: Wallet, patient: Wallet, provider: Wallet, stranger: Wallet
) -> None:
    mv.register(stranger)
    mv.accredit(admin, stranger.address, Role.RESEARCHER)
    good = mv.add_record(provider, patient.address, LAB, Category.LABORATORY).pointer.index
    garbage, missing = unopenable_records(mv, provider, patient)
    request, _ = mv.request_access(stranger, patient.address, LABS, Purpose.HRESCH, DAY, "S-1")

    change = mv.decision_change(patient, request, approve=True)
    mv.submit(patient, change)

    assert sorted(change.skipped) == [garbage, missing]
    assert mv.read_record(stranger, patient.address, good).data == LAB


def test_a_record_the_patient_cannot_open_does_not_stop_a_key_rotation(
    mv: Medvault, patient: Wallet, provider: Wallet
) -> None:
    good = mv.add_record(provider, patient.address, LAB, Category.LABORATORY).pointer.index
    garbage, missing = unopenable_records(mv, provider, patient)

    rotation = mv.rotate_key(patient)

    assert rotation.rewrapped == [good]
    assert sorted(rotation.skipped) == [garbage, missing]
    assert "failed authentication" in rotation.skipped[garbage]


# -- the table of refusals: each leaves chain, pins and home as they were ------------------------


@dataclass
class World:
    """One deployment for the whole table. ``victim`` is the patient whose own key goes bad,
    ``lowkey`` a party whose key is low-order from the start."""

    home: Path
    mv: Medvault
    w: dict[str, Wallet]


@pytest.fixture(scope="module")
def world(w3: Web3, local_node: NodeInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home = tmp_path_factory.mktemp("bad-keys") / "home"
    keystore = Keystore(home)
    names = ("admin", "patient", "provider", "doctor", "lowkey", "unregistered", "victim", "author", "pq", "lonely")
    w = {name: new_wallet(keystore, w3, name, PASSPHRASE) for name in names}
    deployment, _ = deploy(w3, w["admin"], home)
    with IpfsClient(local_node.ipfs_api) as ipfs:
        mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
        for name in ("patient", "provider", "doctor", "victim", "author", "lonely", "lowkey"):
            mv.register(w[name])
        for name in ("provider", "author"):
            mv.accredit(w["admin"], w[name].address, Role.PROVIDER)
        mv.accredit(w["admin"], w["lowkey"].address, Role.RESEARCHER)
        for patient in ("patient", "victim", "lonely"):
            mv.set_writer(w[patient], w["provider"].address, frozenset(Category))
        mv.set_writer(w["patient"], w["author"].address, frozenset(Category))
        mv.set_keepers(w["lonely"], [w["doctor"].address], 1)
        mv.add_record(w["provider"], w["patient"].address, LAB, Category.LABORATORY)
        publish(mv, w["lowkey"], LOW)
        publish(mv, w["author"], x25519_key(1))
        publish(mv, w["pq"], GOOD_HYBRID)
        yield World(home, mv, w)


def lowkey_asks(world: World) -> None:
    world.mv.request_access(world.w["lowkey"], world.w["patient"].address, LABS, Purpose.HRESCH, DAY, "S-bad-key")


def approve_lowkey(world: World) -> Any:
    request = world.mv.requests(researcher=world.w["lowkey"].address)[-1]
    return world.mv.decision_change(world.w["patient"], request, approve=True)


def grant_to(name: str) -> Callable[[World], Any]:
    return lambda world: world.mv.grant(world.w["patient"], world.w["patient"].address, world.w[name].address,
                                        terms(world.mv))  # fmt: skip


def writes_for(author: str, patient: str) -> Callable[[World], Any]:
    return lambda world: world.mv.add_record(world.w[author], world.w[patient].address, LAB, Category.LABORATORY)


def key_of(name: str, key: bytes) -> Callable[[World], None]:
    return lambda world: publish(world.mv, world.w[name], key)


def share_with_lowkey(world: World) -> Any:
    return world.mv.share_keys(world.w["patient"], world.w["lowkey"].address, LABS)


def choose_lowkey_as_keeper(world: World) -> Any:
    return world.mv.set_keepers(world.w["patient"], [world.w["lowkey"].address], 1)


def nothing(world: World) -> None:
    pass


PATIENT_KEY = "the encryption key the patient"
ROWS = [
    *(
        pytest.param(key_of("victim", x25519_key(u)), writes_for("provider", "victim"),
                     f"{PATIENT_KEY} .* low-order point", id=f"patient-key-low-order-u={u:#x}"[:40])
        for u in LOW_ORDER
    ),
    pytest.param(key_of("victim", LOW), writes_for("victim", "victim"), f"{PATIENT_KEY} .* low-order", id="own-record"),
    pytest.param(nothing, writes_for("author", "patient"), "the encryption key the author .* low-order", id="author"),
    pytest.param(nothing, grant_to("lowkey"), "no record key can be shared with .* --no-share", id="grant-low-order"),
    pytest.param(nothing, grant_to("unregistered"), "has not registered an encryption key", id="grant-unregistered"),
    pytest.param(nothing, grant_to("pq"), "this deployment wraps for X25519 keys", id="grant-post-quantum-key"),
    pytest.param(nothing, share_with_lowkey, "no record key can be shared with", id="share-keys-low-order"),
    pytest.param(lowkey_asks, approve_lowkey, "no record key can be shared with", id="approve-low-order"),
    pytest.param(nothing, choose_lowkey_as_keeper, "keeper .* cannot be chosen", id="keeper-low-order"),
    pytest.param(key_of("doctor", LOW), writes_for("provider", "lonely"), "only 0 of its 1 keepers", id="sole-keeper"),
    # The registry takes any key of the right suite and length; only the client can judge this one.
    pytest.param(key_of("victim", b"\x02" + b"\xff" * 1216), writes_for("provider", "victim"), "not below q = 3329",
                 id="patient-key-ml-kem-unreduced"),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "call", "words"), ROWS)
def test_an_unusable_key_is_refused_in_words_and_changes_nothing(
    world: World, w3: Web3, setup: Callable[[World], Any], call: Callable[[World], Any], words: str
) -> None:
    setup(world)
    with unchanged(w3, world.mv.ipfs, world.home), pytest.raises(MedvaultError, match=words):
        call(world)
