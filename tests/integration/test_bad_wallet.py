"""Wallet-shaped input through the library: signed consent documents as any wallet writes
them, addresses in any case, deployments never silently replaced, keystore work factors and a
grant that gives up racing record writes.

Each bad input of the table is refused with a ConfigurationError or KeystoreError in words and
leaves the chain, the Kubo pins and the home as they were. One deployment serves the module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from data import ALL, DAY, LAB, PASSPHRASE
from eth_account import Account
from helpers import new_wallet
from unchanged import unchanged

from medvault.accounts import TEST_SCRYPT_N, Keystore, Wallet
from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.client.consent import GRANT_ATTEMPTS
from medvault.client.consent_sig import SignedConsent
from medvault.errors import ConfigurationError, KeystoreError
from medvault.formats.address import parse_address
from medvault.model import Category, GrantTerms, Purpose

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from web3 import Web3

    from medvault.dev.node import NodeInfo
    from medvault.ipfs import IpfsClient

pytestmark = pytest.mark.integration


@dataclass
class World:
    mv: Medvault
    home: Path
    patient: Wallet
    relayer: Wallet
    document: dict[str, Any]  # a Revoke the patient may sign, unsigned
    used: SignedConsent  # relayed once already


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, local_node: NodeInfo, w3: Web3) -> World:
    from medvault.ipfs import IpfsClient

    home = tmp_path_factory.mktemp("wallet-lib")
    keystore = Keystore(home, scrypt_n=TEST_SCRYPT_N)
    admin, patient, relayer = (new_wallet(keystore, w3, name) for name in ("admin", "patient", "relayer"))
    deployment, _ = deploy(w3, admin, home)
    mv = Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(local_node.ipfs_api))
    now = mv.now()
    mv.grant(patient, patient.address, relayer.address, GrantTerms(ALL, Purpose.TREAT, now, now + DAY))
    used = mv.sign(patient, mv.revoke_change(patient.address, relayer.address))
    mv.relay(relayer, used)
    mv.grant(patient, patient.address, relayer.address, GrantTerms(ALL, Purpose.TREAT, now, now + DAY))
    document = mv.unsigned(patient.address, mv.revoke_change(patient.address, relayer.address))
    return World(mv, home, patient, relayer, document, used)


def signed(world: World, change: Callable[[dict[str, Any]], Any] = lambda _: None, key: bytes | None = None) -> str:
    """The world's document, changed by ``change``, signed by ``key`` (default: the patient's)."""
    document = json.loads(json.dumps(world.document))
    change(document)
    signature = Account.sign_typed_data(key or bytes(world.patient.account.key), full_message=document).signature
    return json.dumps({"typedData": document, "signature": "0x" + bytes(signature).hex()})


def forged(world: World, change: Callable[[dict[str, Any]], Any]) -> str:
    """The world's document changed so that no wallet would sign it, with a made-up signature."""
    document = json.loads(json.dumps(world.document))
    change(document)
    return json.dumps({"typedData": document, "signature": "0x" + "11" * 64 + "1b"})


RELAYED: list[tuple[str, Callable[[World], str], str]] = [
    ("wrong signer", lambda w: signed(w, key=Account.create().key), "who is not the patient nor one of"),
    ("wrong chain id", lambda w: signed(w, lambda d: d["domain"].update(chainId=5)), "is for chain 5"),
    ("wrong chain id as hex", lambda w: signed(w, lambda d: d["domain"].update(chainId="0x5")), "is for chain 5"),
    ("wrong contract", lambda w: signed(w, lambda d: d["domain"].update(verifyingContract="0x" + "22" * 20)),
     "is for the ConsentManager at 0x2222"),
    ("expired", lambda w: signed(w, lambda d: d["message"].update(deadline=0)), "expired at 1970-01-01"),
    ("replayed", lambda w: w.used.to_json(), "it was relayed already"),
    ("nonce ahead", lambda w: signed(w, lambda d: d["message"].update(nonce=d["message"]["nonce"] + 9)),
     "it was altered"),
    ("another app", lambda w: signed(w, lambda d: d["domain"].update(version="2")), "not made for medvault"),
    ("unknown primary type", lambda w: forged(w, lambda d: d.update(primaryType="Transfer")),
     "primaryType 'Transfer' is none of"),
    ("types of another struct", lambda w: forged(w, lambda d: d.update(primaryType="Grant")),
     "the Grant type of this document is not medvault's"),
    ("a field too many", lambda w: signed(w, lambda d: d["message"].update(amount=1)), "needs exactly"),
    ("a negative deadline", lambda w: forged(w, lambda d: d["message"].update(deadline=-1)),
     "deadline must be a whole number"),
    ("a boolean nonce", lambda w: forged(w, lambda d: d["message"].update(nonce=True)),
     "nonce must be a whole number"),
    ("a short patient address", lambda w: forged(w, lambda d: d["message"].update(patient="0x1234")),
     "patient '0x1234' is not an address"),
    ("a bad checksum", lambda w: signed(w, lambda d: d["message"].update(grantee=_flip(d["message"]["grantee"]))),
     "fails its EIP-55 checksum"),
    ("not JSON", lambda w: "{typedData:", "it is not JSON"),
    ("a compact signature of 63 bytes", lambda w: json.dumps({"typedData": w.document, "signature": "0x" + "11" * 63}),
     "65 bytes, this one 63"),
]  # fmt: skip


def _flip(address: str) -> str:
    i = next(i for i, c in enumerate(address) if i > 1 and c.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1 :]


@pytest.mark.parametrize(("make", "words"), [r[1:] for r in RELAYED], ids=[r[0] for r in RELAYED])
def test_a_bad_signed_document_is_refused_before_sending(
    world: World, w3: Web3, ipfs: IpfsClient, make: Callable[[World], str], words: str
) -> None:
    text = make(world)
    with unchanged(w3, ipfs, world.home), pytest.raises(ConfigurationError, match=_escaped(words)):
        world.mv.relay(world.relayer, SignedConsent.from_json(text))


def _escaped(words: str) -> str:
    import re

    return re.escape(words)


ADDRESSES = [
    ("empty", "", "is not an address"),
    ("no 0x", "ab" * 20, "is not an address"),
    ("0x1234", "0x1234", "is not an address"),
    ("39 digits", "0x" + "a" * 39, "this has 39 characters"),
    ("42 digits", "0x" + "a" * 42, "this has 42 characters"),
    ("not hex", "0x" + "q" * 40, "with some not hex"),
    ("bad checksum", _flip(Account.from_key(b"\x01" * 32).address), "fails its EIP-55 checksum"),
    ("a number", 1234, "is not an address"),
]


@pytest.mark.parametrize(("value", "words"), [r[1:] for r in ADDRESSES], ids=[r[0] for r in ADDRESSES])
def test_a_bad_address_is_refused_in_words(world: World, w3: Web3, ipfs: IpfsClient, value: Any, words: str) -> None:
    with unchanged(w3, ipfs, world.home), pytest.raises(ConfigurationError, match=_escaped(words)):
        world.mv.grants(parse_address(value))


@pytest.mark.parametrize("spelling", [str.lower, str.upper, lambda a: a], ids=["lower", "upper", "checksum"])
def test_an_address_in_any_case_is_the_checksum_address(spelling: Callable[[str], str]) -> None:
    address = Account.from_key(b"\x02" * 32).address
    text = spelling(address[2:])
    assert parse_address("0x" + text) == parse_address("0X" + text) == address


def test_a_second_deploy_is_refused_and_replace_keeps_the_record(
    world: World, w3: Web3, ipfs: IpfsClient, admin: Wallet, home: Path
) -> None:
    first, _ = deploy(w3, admin, home)
    with unchanged(w3, ipfs, home), pytest.raises(ConfigurationError, match="has a medvault deployment already"):
        deploy(w3, admin, home)
    second, _ = deploy(w3, admin, home, replace=True)

    (kept,) = (home / "deployments" / "replaced").iterdir()
    assert type(first).model_validate_json(kept.read_text()) == first
    assert second.consent_manager != first.consent_manager


@pytest.mark.parametrize("n", [2**17, 2**11, 3 * 2**18, 0], ids=["below the floor", "small", "not a power of 2", "0"])
def test_a_keystore_refuses_a_work_factor_under_the_floor(tmp_path: Path, n: int) -> None:
    with pytest.raises(KeystoreError, match="a power of two of at least 262144"):
        Keystore(tmp_path, scrypt_n=n)
    assert not (tmp_path / "keystores").exists()


def test_an_account_name_that_reads_as_an_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="not starting with 0x"):
        Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N).create("0xcafe", PASSPHRASE)


def test_grant_gives_up_after_bounded_races_with_record_writes(
    mv: Medvault, patient: Wallet, doctor: Wallet, provider: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    submit = mv.submit

    def submit_while_records_land(*args: Any) -> Any:
        # A record in scope lands while each grant is in flight.
        result = submit(*args)
        mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
        return result

    monkeypatch.setattr(mv, "submit", submit_while_records_land)
    now = mv.now()
    with pytest.raises(
        ConfigurationError, match=f"records in scope kept landing while it was sent, {GRANT_ATTEMPTS} times"
    ):
        mv.grant(patient, patient.address, doctor.address, GrantTerms(ALL, Purpose.TREAT, now, now + DAY))
    assert mv.grant_of(patient.address, doctor.address) is not None  # the grant itself holds
