"""`medvault keys`: show, rotate and typed-data, with --json and --help."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from eth_account import Account

from medvault.accounts import Keystore
from medvault.crypto import EncryptionKeyPair, KeySuite

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cli

pytestmark = pytest.mark.integration

NOTE = {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}


@pytest.fixture(autouse=True)
def _json_after_the_subcommand(medvault: Cli) -> None:
    """These tests give --json where people type it: after the subcommand."""
    medvault.json_last = True


def test_keys_show_and_rotate(medvault: Cli, tmp_path: Path) -> None:
    shown = medvault.run("keys", "show", "--account", "alice")
    assert (shown["epoch"], shown["suite"], shown["matches_chain"], shown["registered"]) == (0, "X25519", True, True)
    assert len(bytes.fromhex(shown["public_key"][2:])) == 33
    note = tmp_path / "note.json"
    note.write_text(json.dumps(NOTE))
    medvault.run("record", "add", str(note), "--patient", "alice", "--category", "laboratory", "--account", "clinic")

    rotated = medvault.run("keys", "rotate", "--account", "alice")

    assert (rotated["old_epoch"], rotated["new_epoch"], rotated["rewrapped"]) == (0, 1, [0])
    assert rotated["keys_cid"]
    assert [t["action"].split()[0] for t in rotated["transactions"]] == ["rotate", "re-wrapped"]
    shown = medvault.run("keys", "show", "--account", "alice")
    assert (shown["epoch"], shown["matches_chain"]) == (1, True)
    assert shown["public_key"] == rotated["public_key"]
    assert medvault.run("record", "get", "0", "--patient", "alice", "--account", "alice")["content"] == NOTE
    assert "epoch    1" in medvault.text("keys", "show", "--account", "alice")
    assert "not registered" in medvault.text("keys", "show", "--account", "admin")
    assert medvault.run("keys", "rotate", "--account", "admin", ok=False)["error"] == "ConfigurationError"


def test_keys_typed_data_is_what_a_wallet_signs(medvault: Cli, tmp_path: Path) -> None:
    document = medvault.run("keys", "typed-data", "--suite", "mlkem768-x25519", "--epoch", "2")
    assert document["primaryType"] == "EncryptionKey"
    assert document["message"]["suite"] == "MLKEM768_X25519"
    assert document["message"]["epoch"] == 2
    assert "chainId" not in document["domain"]

    # Signing the printed document, as a browser wallet would, gives the keystore's key.
    wallet = Keystore(tmp_path).unlock("alice", medvault.passphrase)
    signature = Account.sign_typed_data(wallet.account.key, full_message=document).signature
    derived = EncryptionKeyPair.legacy_from_signature(bytes(signature), KeySuite.MLKEM768_X25519, 2)
    assert derived.public_bytes == wallet.encryption_keys(KeySuite.MLKEM768_X25519, 2).public_bytes
    plain = medvault.run("keys", "typed-data")
    assert plain["message"] == {**document["message"], "suite": "X25519", "epoch": 0}


@pytest.mark.parametrize("command", ["show", "rotate", "typed-data"])
def test_keys_commands_have_help(medvault: Cli, command: str) -> None:
    assert "--json" in medvault.text("keys", command, "--help")
