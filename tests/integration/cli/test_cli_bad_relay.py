"""What `medvault relay` refuses of a document any wallet or attacker may write: every
spelling the wallet would read otherwise, or a signature that is no signature, is refused in
words with exit 1, never a fault, and leaves the chain, the Kubo pins and the home as they were.
And what `--unsigned` prints: refused there when the chain would refuse it, and, when a
browser-wallet delegate signs it (a nonce above 2^53, as a string), relayed as printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from eth_account import Account
from unchanged import unchanged

from medvault.accounts import TEST_SCRYPT_N, Keystore
from medvault.client.consent_sig import TYPES
from medvault.dev.anvil import fund

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import Cli
    from web3 import Web3

    from medvault.ipfs import IpfsClient

pytestmark = pytest.mark.integration

ARABIC_INDIC = {ord("0") + i: 0x660 + i for i in range(10)}  # digits Python's int() reads, and wallets do not
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class World:
    cli: Cli
    home: Path
    files: Path
    document: dict[str, Any]  # alice's next grant to bob, unsigned
    key: bytes  # alice's
    names: dict[str, str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]) -> World:
    home, files = tmp_path_factory.mktemp("relay-home"), tmp_path_factory.mktemp("relay-files")
    cli = make_cli(home)
    for name in ("admin", "alice", "bob"):
        cli.run("account", "new", name)
        cli.run("account", "fund", name)
    cli.run("deploy", "--account", "admin")
    for name in ("alice", "bob"):
        cli.run("register", "--account", name)
    printed = cli.invoke("consent", "grant", "bob", "--days", "2", "--unsigned", "--account", "alice")
    assert printed.exit_code == 0, printed.output
    key = bytes(Keystore(home, scrypt_n=TEST_SCRYPT_N).unlock("alice", cli.passphrase).account.key)
    names = {"alice": cli.run("account", "list")["alice"], "stranger": Account.create().address}
    return World(cli, home, files, json.loads(printed.stdout), key, names)


def _copy(document: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(document))


def _with_signature(r: int, s: int, v: int) -> Callable[[World], str]:
    return lambda w: json.dumps({"typedData": w.document, "signature": "0x" + _sig(r, s, v).hex()})


def _with_compact(r: int, s: int) -> Callable[[World], str]:
    return lambda w: json.dumps({"typedData": w.document, "signature": "0x" + (r.to_bytes(32) + s.to_bytes(32)).hex()})


def _sig(r: int, s: int, v: int) -> bytes:
    return r.to_bytes(32) + s.to_bytes(32) + bytes([v])


def _signed(change: Callable[[dict[str, Any]], Any]) -> Callable[[World], str]:
    """Alice's signature of the document, the document then changed (as a wallet reads it, the
    same numbers; as medvault reads it, a spelling no wallet parses the same way)."""

    def make(w: World) -> str:
        signature = Account.sign_typed_data(w.key, full_message=w.document).signature
        document = _copy(w.document)
        change(document)
        return json.dumps({"typedData": document, "signature": "0x" + bytes(signature).hex()})

    return make


def _chain_id(spelling: Callable[[int], str]) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["domain"].update(chainId=spelling(d["domain"]["chainId"]))


def _twice(w: World) -> str:
    """The grantee twice: the first (a stranger) is what a reader of the file sees first."""
    text = _signed(lambda _: None)(w)
    grantee = w.document["message"]["grantee"]
    return text.replace(f'"grantee": "{grantee}"', f'"grantee": "{w.names["stranger"]}", "grantee": "{grantee}"')


def _deny(study: str) -> Callable[[dict[str, Any]], Any]:
    def change(d: dict[str, Any]) -> None:
        d["primaryType"] = "DenyRequest"
        d["types"] = {"EIP712Domain": d["types"]["EIP712Domain"]}
        d["types"]["DenyRequest"] = [{"name": n, "type": t} for n, t in TYPES["DenyRequest"]]
        m = d["message"]
        fields = {"researcher": m["grantee"], "scopes": 1, "purpose": 1, "duration": 60, "requestedAt": 1}
        d["message"] = {"patient": m["patient"], **fields, "studyId": study, "nonce": 0, "deadline": m["deadline"]}

    return change


RELAYED: list[tuple[str, Callable[[World], str], str]] = [
    ("signature all zeros", _with_signature(0, 0, 27), "is not a secp256k1 signature"),
    ("signature with s = n", _with_signature(1, SECP256K1_N, 27), "is not a secp256k1 signature"),
    ("signature with s above n", _with_signature(1, SECP256K1_N + 5, 28), "is not a secp256k1 signature"),
    ("signature with r = n", _with_signature(SECP256K1_N, 1, 27), "is not a secp256k1 signature"),
    ("signature whose r is no point", _with_signature(0x11 * (2**256 // 255), 7, 27), "recovers to no account"),
    ("compact signature whose r is no point", _with_compact(0x11 * (2**256 // 255), 7), "recovers to no account"),
    ("chain id hex with a trailing space", _signed(_chain_id(lambda c: f"{c:#x} ")), "chainId must be a whole"),
    ("chain id with a leading space", _signed(_chain_id(lambda c: f" {c}")), "chainId must be a whole number"),
    ("chain id with an underscore", _signed(_chain_id(lambda c: f"{c // 1000}_{c % 1000:03}")),
     "chainId must be a whole number"),
    ("chain id with a plus sign", _signed(_chain_id(lambda c: f"+{c}")), "chainId must be a whole number"),
    ("chain id in Arabic-Indic digits", _signed(_chain_id(lambda c: str(c).translate(ARABIC_INDIC))),
     "chainId must be a whole number"),
    ("chain id with a newline", _signed(_chain_id(lambda c: f"{c}\n")), "chainId must be a whole number"),
    ("chain id with 0X", _signed(_chain_id(lambda c: f"0X{c:x}")), "chainId must be a whole number"),
    ("chain id 31337.0", _signed(_chain_id(lambda c: f"{c}.0")), "chainId must be a whole number"),
    ("deadline in hex with an underscore", _signed(lambda d: d["message"].update(deadline="0x_1")),
     "deadline must be a whole number"),
    ("key bundle CID with a space", _signed(lambda d: d["message"].update(keysCid="0x01 55")),
     "keysCid must be 0x and pairs of hex digits"),
    ("key bundle CID of odd length", _signed(lambda d: d["message"].update(keysCid="0x015")),
     "keysCid must be 0x and pairs of hex digits"),
    ("study id of 33 bytes", _signed(_deny("0x" + "ab" * 33)), "studyId must be 0x and pairs of hex digits (32 bytes)"),
    ("study id of 2 bytes", _signed(_deny("0xabab")), "studyId must be 0x and pairs of hex digits (32 bytes)"),
    ("a key twice", _twice, "names 'grantee' twice"),
    ("a type too many", _signed(lambda d: d["types"].update(Mail=[{"name": "to", "type": "address"}])),
     "must be EIP712Domain and Grant alone"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "words"), [r[1:] for r in RELAYED], ids=[r[0] for r in RELAYED])
def test_a_document_no_wallet_signed_so_is_refused_in_words(
    world: World, w3: Web3, ipfs: IpfsClient, make: Callable[[World], str], words: str
) -> None:
    path = world.files / "document.json"
    path.write_text(make(world))
    with unchanged(w3, ipfs, world.home):
        result = world.cli.invoke("relay", str(path), "--account", "bob")
    assert isinstance(result.exception, SystemExit), result.exception  # a refusal, not a fault
    assert result.exit_code == 1, result.output
    assert words in result.output, result.output


UNSIGNED = [
    ("a grant to oneself", ["consent", "grant", "alice", "--days", "1"], "cannot be granted access to their own"),
    ("a revoke of nothing", ["consent", "revoke", "{stranger}"], "there is nothing to revoke"),
    ("removing no delegate", ["delegate", "remove", "{stranger}"], "cannot be appointed or removed as delegate"),
]


@pytest.mark.parametrize(("args", "words"), [r[1:] for r in UNSIGNED], ids=[r[0] for r in UNSIGNED])
def test_unsigned_refuses_what_the_chain_would_refuse(
    world: World, w3: Web3, ipfs: IpfsClient, args: list[str], words: str
) -> None:
    argv = [a.format(**world.names) for a in args]
    with unchanged(w3, ipfs, world.home):
        result = world.cli.invoke(*argv, "--unsigned", "--account", world.names["alice"].lower())
    assert result.exit_code == 1, result.output
    assert words in result.output, result.output


def test_a_browser_wallet_delegate_signs_a_nonce_above_2_53(world: World, w3: Web3) -> None:
    wallet = Account.create()  # a delegate whose key no keystore holds
    fund(w3, wallet.address)
    world.cli.run("delegate", "appoint", wallet.address, "--account", "alice")
    printed = world.cli.invoke(
        "consent", "grant", "bob", "--days", "1", "--patient", "alice", "--unsigned", "--account", wallet.address
    )
    assert printed.exit_code == 0, printed.output
    document = json.loads(printed.stdout)
    assert int(document["message"]["nonce"]) >= 1 << 64  # its appointment, in bits 64 up
    assert isinstance(document["message"]["nonce"], str)  # beyond what a JavaScript number holds exactly
    path = world.files / "delegate.json"
    path.write_text(printed.stdout)
    signature = Account.sign_typed_data(wallet.key, full_message=document).signature

    world.cli.run("relay", str(path), "--signature", "0x" + bytes(signature).hex(), "--account", "bob")

    (grant,) = world.cli.run("consent", "list", "--patient", "alice")
    assert grant["active"] is True
