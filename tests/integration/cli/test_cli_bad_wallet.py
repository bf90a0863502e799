"""Wallet-shaped input through the CLI: addresses in any case, signatures from any wallet,
typed data for a wallet outside the home, and deployments that are never silently replaced.

The table: each bad input is refused with its own words and exit status (1 refusal, 2 usage)
and leaves the chain, the Kubo pins and the home as they were. One deployment serves the module.
The round trips after it sign what ``--unsigned`` prints with eth-account, as a wallet does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from unchanged import unchanged

from medvault.accounts import TEST_SCRYPT_N, Keystore
from medvault.dev.anvil import fund

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import Cli
    from web3 import Web3

    from medvault.ipfs import IpfsClient

pytestmark = pytest.mark.integration

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class World:
    cli: Cli
    home: Path
    files: Path
    names: dict[str, str]  # placeholders in the rows: {bob}, {binary}, ...


def sign(key: bytes, document: dict[str, Any]) -> bytes:
    return bytes(Account.sign_typed_data(key, full_message=document).signature)


def signed_file(folder: Path, name: str, document: dict[str, Any], signature: bytes | str) -> str:
    text = signature if isinstance(signature, str) else "0x" + signature.hex()
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"typedData": document, "signature": text}))
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, make_cli: Callable[[Path], Cli]) -> World:
    home, files = tmp_path_factory.mktemp("wallet-home"), tmp_path_factory.mktemp("wallet-files")
    cli = make_cli(home)
    for name in ("admin", "alice", "bob"):
        cli.run("account", "new", name)
        cli.run("account", "fund", name)
    cli.run("deploy", "--account", "admin")
    for name in ("alice", "bob"):
        cli.run("register", "--account", name)
    bob = cli.run("account", "list")["bob"]
    alice_key = bytes(Keystore(home, scrypt_n=TEST_SCRYPT_N).unlock("alice", cli.passphrase).account.key)

    # A grant signed and relayed once: sending that file again is a replay.
    used = cli.invoke("consent", "grant", "bob", "--days", "1", "--sign-only", "--account", "alice")
    (files / "used.json").write_text(used.stdout)
    cli.run("relay", str(files / "used.json"), "--account", "bob")

    # The grant alice's next signature would make, and variants of it, each signed by alice.
    unsigned = cli.invoke("consent", "grant", "bob", "--days", "2", "--unsigned", "--account", "alice")
    assert unsigned.exit_code == 0, unsigned.output
    doc = json.loads(unsigned.stdout)
    (files / "bare.json").write_text(unsigned.stdout)
    good = sign(alice_key, doc)

    def variant(change: Any) -> dict[str, Any]:
        copy = json.loads(json.dumps(doc))
        change(copy)
        return copy

    other_chain = variant(lambda d: d["domain"].update(chainId=1))
    other_contract = variant(lambda d: d["domain"].update(verifyingContract="0x" + "11" * 20))
    expired = variant(lambda d: d["message"].update(deadline=1000))
    bad_chain_id = variant(lambda d: d["domain"].update(chainId="abc"))
    bad_name = variant(lambda d: d["domain"].update(name="Other App"))
    bad_types = variant(lambda d: d["types"][d["primaryType"]].reverse())
    checksum = variant(lambda d: d["message"].update(grantee=_break_checksum(d["message"]["grantee"])))
    r, s, v = good[:32], good[32:64], good[64]
    names = {
        "bob": bob,
        "bob_bad_checksum": _break_checksum(bob),
        "stranger": Account.create().address,
        "used": str(files / "used.json"),
        "bare": str(files / "bare.json"),
        "good": signed_file(files, "good", doc, good),
        "sig63": signed_file(files, "sig63", doc, good[:63]),
        "sig66": signed_file(files, "sig66", doc, good + b"\0"),
        "nonhex": signed_file(files, "nonhex", doc, "0x" + "zz" * 65),
        "v29": signed_file(files, "v29", doc, r + s + bytes([29])),
        "wrong_signer": signed_file(files, "wrong-signer", doc, sign(Account.create().key, doc)),
        "other_chain": signed_file(files, "other-chain", other_chain, sign(alice_key, other_chain)),
        "other_contract": signed_file(files, "other-contract", other_contract, sign(alice_key, other_contract)),
        "expired": signed_file(files, "expired", expired, sign(alice_key, expired)),
        "bad_chain_id": signed_file(files, "bad-chain-id", bad_chain_id, good),
        "bad_name": signed_file(files, "bad-name", bad_name, good),
        "bad_types": signed_file(files, "bad-types", bad_types, good),
        "bad_checksum": signed_file(files, "bad-checksum", checksum, good),
        "altered": signed_file(files, "altered", variant(lambda d: d["message"].update(scopes=1)), good),
        "sig": "0x" + good.hex(),
        "v": str(v),
    }
    (files / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (files / "notes.txt").write_text("grant bob please\n")
    (files / "list.json").write_text("[1, 2, 3]")
    names.update(binary=str(files / "binary.bin"), notes=str(files / "notes.txt"), jsonlist=str(files / "list.json"))
    return World(cli, home, files, names)


def _break_checksum(address: str) -> str:
    """``address`` with the case of one letter flipped: mixed case that fails EIP-55."""
    i = next(i for i, c in enumerate(address) if i > 1 and c.isalpha())
    return address[:i] + address[i].swapcase() + address[i + 1 :]


BAD = [
    # Addresses and account names, wherever an option or argument takes one.
    ("grant to 0x1234", ["consent", "grant", "0x1234", "--days", "1", "-a", "alice"], "'0x1234' is not an address", 2),
    ("grant to 41 hex digits", ["consent", "grant", "0x" + "a" * 41, "--days", "1", "-a", "alice"],
     "this has 41 characters", 2),
    ("grant to 40 non-hex", ["consent", "grant", "0x" + "g" * 40, "--days", "1", "-a", "alice"], "some not hex", 2),
    ("grant to a bad checksum", ["consent", "grant", "{bob_bad_checksum}", "--days", "1", "-a", "alice"],
     "fails its EIP-55 checksum", 2),
    ("grant to an unknown name", ["consent", "grant", "nobody", "--days", "1", "-a", "alice"],
     "unknown account 'nobody'", 1),
    ("list for 0x1234", ["consent", "list", "--patient", "0x1234"], "is not an address", 2),
    ("list for a bad checksum", ["consent", "list", "-p", "{bob_bad_checksum}"], "fails its EIP-55 checksum", 2),
    ("query for a short address", ["query", "records", "-p", "0xabc"], "is not an address", 2),
    ("writer 0x12", ["record", "writers", "add", "0x12", "--account", "alice"], "is not an address", 2),
    ("accredit a bad checksum", ["accredit", "{bob_bad_checksum}", "--role", "provider", "-a", "admin"],
     "fails its EIP-55 checksum", 2),
    ("delegate 0x", ["delegate", "appoint", "0x", "--account", "alice"], "is not an address", 2),
    ("signer 0x1234", ["consent", "revoke", "bob", "--account", "0x1234"], "is not an address", 2),
    ("signer with no keystore", ["consent", "revoke", "bob", "--account", "{stranger}"],
     "no account of this home holds", 1),
    ("unsigned for an unknown name", ["consent", "revoke", "bob", "--unsigned", "--account", "nobody"],
     "unknown account 'nobody'", 1),
    ("unsigned and sign-only", ["consent", "revoke", "bob", "--unsigned", "--sign-only", "-a", "alice"],
     "not both", 2),
    # Files given to relay.
    ("relay a binary file", ["relay", "{binary}", "-a", "bob"], "it is not text", 1),
    ("relay a text file", ["relay", "{notes}", "-a", "bob"], "it is not JSON", 1),
    ("relay a JSON list", ["relay", "{jsonlist}", "-a", "bob"], "not a JSON object", 1),
    ("relay typed data without signature", ["relay", "{bare}", "-a", "bob"], "no signature", 1),
    ("relay a signed file and --signature", ["relay", "{good}", "--signature", "{sig}", "-a", "bob"],
     "carries a signature already", 1),
    # Signatures.
    ("signature of 63 bytes", ["relay", "{sig63}", "-a", "bob"], "65 bytes, this one 63", 1),
    ("signature of 66 bytes", ["relay", "{sig66}", "-a", "bob"], "65 bytes, this one 66", 1),
    ("--signature of 63 bytes", ["relay", "{bare}", "--signature", "0x" + "ab" * 63, "-a", "bob"],
     "this one 63", 1),
    ("signature not hex", ["relay", "{nonhex}", "-a", "bob"], "is not hex", 1),
    ("signature with v 29", ["relay", "{v29}", "-a", "bob"], "v=29 is neither 27/28 nor 0/1", 1),
    ("wrong signer", ["relay", "{wrong_signer}", "-a", "bob"], "who is not the patient nor one of", 1),
    ("altered after signing", ["relay", "{altered}", "-a", "bob"], "the document was changed", 1),
    ("wrong chain id", ["relay", "{other_chain}", "-a", "bob"], "is for chain 1, this is chain 31337", 1),
    ("wrong contract", ["relay", "{other_contract}", "-a", "bob"], "is for the ConsentManager at 0x1111", 1),
    ("expired deadline", ["relay", "{expired}", "-a", "bob"], "expired at 1970-01-01 00:16:40 UTC", 1),
    ("replayed", ["relay", "{used}", "-a", "bob"], "it was relayed already", 1),
    ("chain id not a number", ["relay", "{bad_chain_id}", "-a", "bob"], "chainId must be a whole number", 1),
    ("another app's domain", ["relay", "{bad_name}", "-a", "bob"], "it was not made for medvault", 1),
    ("types not medvault's", ["relay", "{bad_types}", "-a", "bob"], "type of this document is not medvault", 1),
    ("bad checksum inside", ["relay", "{bad_checksum}", "-a", "bob"], "grantee 0x", 1),
    # Deployments.
    ("second deploy", ["deploy", "--account", "admin"], "has a medvault deployment already", 1),
]  # fmt: skip


@pytest.mark.parametrize(("args", "words", "status"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_wallet_input_is_refused_in_words(
    world: World, w3: Web3, ipfs: IpfsClient, args: list[str], words: str, status: int
) -> None:
    argv = [a.format(**world.names) for a in args]
    with unchanged(w3, ipfs, world.home):
        result = world.cli.invoke(*argv)
    assert result.exit_code == status, result.output
    assert words in result.output, result.output
    assert "Traceback" not in result.output


# -- what a wallet outside the home does, end to end --------------------------------------------


def _grants(world: World, patient: str) -> list[dict[str, Any]]:
    return list(world.cli.run("consent", "list", "--patient", patient))


@pytest.mark.parametrize("spelling", ["65 bytes, v 27/28", "65 bytes, v 0/1", "65 bytes, high s", "64 bytes, EIP-2098"])
def test_a_browser_wallet_signs_what_unsigned_prints(world: World, w3: Web3, spelling: str) -> None:
    wallet = Account.create()  # no keystore here: it signs as MetaMask would
    fund(w3, wallet.address)
    printed = world.cli.invoke(
        "consent", "grant", world.names["bob"].lower(), "--days", "3", "--unsigned", "--account", wallet.address.lower()
    )
    assert printed.exit_code == 0, printed.output
    document = json.loads(printed.stdout)
    assert document["message"]["patient"] == wallet.address
    assert document["message"]["keysCid"] == "0x"  # a wallet elsewhere shares no record keys
    signature = sign(wallet.key, document)
    r, s, v = signature[:32], int.from_bytes(signature[32:64]), signature[64]
    match spelling:
        case "65 bytes, v 0/1":
            signature = r + s.to_bytes(32) + bytes([v - 27])
        case "65 bytes, high s":
            signature = r + (SECP256K1_N - s).to_bytes(32) + bytes([55 - v])
        case "64 bytes, EIP-2098":
            signature = r + (s | (v - 27) << 255).to_bytes(32)
    bare = world.files / f"unsigned-{wallet.address}.json"
    bare.write_text(printed.stdout)

    world.cli.run("relay", str(bare), "--signature", "0x" + signature.hex(), "--account", "bob")

    (grant,) = _grants(world, wallet.address.lower())
    assert grant["grantee"] == world.names["bob"]
    assert grant["active"] is True


def test_a_chain_id_as_a_hex_string_and_lower_case_addresses_are_taken(world: World, w3: Web3) -> None:
    wallet = Account.create()
    fund(w3, wallet.address)
    printed = world.cli.invoke("consent", "grant", "bob", "--days", "1", "--unsigned", "--account", wallet.address)
    document = json.loads(printed.stdout)
    signature = sign(wallet.key, document)
    document["domain"]["chainId"] = hex(document["domain"]["chainId"])
    document["domain"]["verifyingContract"] = document["domain"]["verifyingContract"].lower()
    for field in ("patient", "grantee"):
        document["message"][field] = document["message"][field].upper().replace("0X", "0x")
    document["message"]["deadline"] = str(document["message"]["deadline"])
    assert Account.recover_message(encode_typed_data(full_message=document), signature=signature) == wallet.address
    path = world.files / "hex-chain-id.json"
    path.write_text(json.dumps({"typedData": document, "signature": "0x" + signature.hex()}))

    world.cli.run("relay", str(path), "--account", "bob")

    assert [g["grantee"] for g in _grants(world, wallet.address.lower())] == [world.names["bob"]]


def test_replace_deploys_anew_and_keeps_the_earlier_record(make_cli: Callable[[Path], Cli], tmp_path: Path) -> None:
    runner = make_cli(tmp_path)
    runner.run("account", "new", "admin")
    runner.run("account", "fund", "admin")
    first = runner.run("deploy", "--account", "admin")["deployment"]
    second = runner.run("deploy", "--account", "admin", "--replace")

    assert second["deployment"]["consent_manager"] != first["consent_manager"]
    listed = runner.run("deployments")
    assert [(e["state"], e["consent_manager"]) for e in listed] == [
        ("current", second["deployment"]["consent_manager"]),
        ("replaced", first["consent_manager"]),
    ]
    assert listed[1]["file"] in second["replaced"]


SIGNING_COMMANDS = [
    ["consent", "grant"], ["consent", "revoke"], ["delegate", "appoint"], ["delegate", "remove"],
    ["access", "approve"], ["access", "deny"],
]  # fmt: skip


@pytest.mark.parametrize("command", SIGNING_COMMANDS, ids=" ".join)
def test_every_command_that_signs_offers_unsigned(world: World, command: list[str]) -> None:
    help_text = world.cli.invoke(*command, "--help").output
    assert "--sign-only" in help_text
    assert "--unsigned" in help_text


def test_a_browser_wallet_appoints_a_delegate(world: World, w3: Web3) -> None:
    wallet = Account.create()
    fund(w3, wallet.address)
    printed = world.cli.invoke("delegate", "appoint", "bob", "--max-days", "7", "--unsigned", "-a", wallet.address)
    assert printed.exit_code == 0, printed.output
    document = json.loads(printed.stdout)
    assert document["primaryType"] == "AppointDelegate"
    path = world.files / "appoint.json"
    path.write_text(json.dumps({"typedData": document, "signature": "0x" + sign(wallet.key, document).hex()}))

    world.cli.run("relay", str(path), "--account", "bob")

    events = [e["event"] for e in world.cli.run("audit", "--patient", wallet.address.lower())]
    assert "DelegateAppointed" in events
