"""`medvault keys`: show, rotate and typed-data, with --json and --help."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from eth_account import Account

from medvault.accounts import Keystore
from medvault.cli import cli
from medvault.crypto import EncryptionKeyPair, KeySuite

if TYPE_CHECKING:
    from pathlib import Path

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

PASSPHRASE = "cli keys passphrase"
NOTE = {"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}


class Cli:
    def __init__(self, home: Path, node: NodeInfo) -> None:
        self.runner = CliRunner()
        self.base = ["--home", str(home), "--rpc-url", node.rpc_url, "--ipfs-api", node.ipfs_api]
        self.env = {"MEDVAULT_PASSPHRASE": PASSPHRASE}

    def run(self, *args: str, ok: bool = True) -> Any:
        result = self.runner.invoke(cli, [*self.base, *args, "--json"], env=self.env)
        assert result.exit_code == (0 if ok else 1), result.output
        return json.loads(result.stdout)

    def text(self, *args: str) -> str:
        result = self.runner.invoke(cli, [*self.base, *args], env=self.env)
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture
def medvault(tmp_path: Path, local_node: NodeInfo) -> Cli:
    runner = Cli(tmp_path, local_node)
    for name in ("admin", "alice", "clinic"):
        runner.run("account", "new", name)
        runner.run("account", "fund", name)
    runner.run("deploy", "--account", "admin")
    for name in ("alice", "clinic"):
        runner.run("register", "--account", name)
    runner.run("accredit", "clinic", "--role", "provider", "--account", "admin")
    return runner


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
    wallet = Keystore(tmp_path).unlock("alice", PASSPHRASE)
    signature = Account.sign_typed_data(wallet.account.key, full_message=document).signature
    derived = EncryptionKeyPair.from_signature(bytes(signature), KeySuite.MLKEM768_X25519, 2)
    assert derived.public_bytes == wallet.encryption_keys(KeySuite.MLKEM768_X25519, 2).public_bytes
    plain = medvault.run("keys", "typed-data")
    assert plain["message"] == {**document["message"], "suite": "X25519", "epoch": 0}


@pytest.mark.parametrize("command", ["show", "rotate", "typed-data"])
def test_keys_commands_have_help(medvault: Cli, command: str) -> None:
    assert "--json" in medvault.text("keys", command, "--help")
