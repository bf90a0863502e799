"""`medvault keys`: show, rotate, export and import, with --json and --help."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from medvault.accounts import TEST_SCRYPT_N, Keystore
from medvault.chain import Chain

if TYPE_CHECKING:
    from collections.abc import Callable
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


def test_keys_export_and_import_restore_the_account_on_a_new_device(
    medvault: Cli, tmp_path: Path, make_cli: Callable[[Path], Cli]
) -> None:
    note = tmp_path / "note.json"
    note.write_text(json.dumps(NOTE))
    medvault.run("record", "add", str(note), "--patient", "alice", "--category", "laboratory", "--account", "clinic")
    medvault.run("keys", "rotate", "--account", "alice")
    backup = tmp_path / "alice-backup.mvk"

    exported = medvault.run("keys", "export", "--out", str(backup), "--account", "alice")

    wallet = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N).unlock("alice", medvault.passphrase)
    assert exported["encryption_keys"] == len(wallet.keys.pairs) == 4  # epochs 0 and 1, both suites
    assert bytes(wallet.account.key) not in backup.read_bytes()
    assert all(p.private_bytes() not in backup.read_bytes() for p in wallet.keys.pairs.values())
    assert (
        "not overwritten"
        in medvault.run("keys", "export", "--out", str(backup), "--account", "alice", ok=False)["message"]
    )
    device = make_cli(tmp_path / "new-device")
    device.json_last = True
    (tmp_path / "new-device" / "deployments").mkdir(parents=True)
    for deployment in (tmp_path / "deployments").iterdir():
        (tmp_path / "new-device" / "deployments" / deployment.name).write_bytes(deployment.read_bytes())

    restored = device.run("keys", "import", str(backup), "--account", "alice")

    assert (restored["account"], restored["added"]) == (wallet.address, 4)
    shown = device.run("keys", "show", "--account", "alice")
    assert (shown["epoch"], shown["matches_chain"]) == (1, True)
    assert device.run("record", "get", "0", "--patient", "alice", "--account", "alice")["content"] == NOTE


def test_keys_import_refuses_a_tampered_backup(medvault: Cli, tmp_path: Path) -> None:
    backup = tmp_path / "alice.mvk"
    medvault.run("keys", "export", "--out", str(backup), "--account", "alice")
    data = bytearray(backup.read_bytes())
    data[100] ^= 0x40
    backup.write_bytes(bytes(data))

    refused = medvault.run("keys", "import", str(backup), "--account", "alice-again", ok=False)

    assert "damaged or was altered" in refused["message"]
    assert "alice-again" not in medvault.run("account", "list")


def test_keys_migrate_moves_an_old_scheme_account_to_a_random_key(medvault: Cli, tmp_path: Path) -> None:
    medvault.run("account", "new", "legacy")
    medvault.run("account", "fund", "legacy")
    (tmp_path / "keystores" / "legacy.keys").unlink()  # an account as the old medvault left it
    wallet = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N).unlock("legacy", medvault.passphrase)
    chain = Chain.open(medvault.base[medvault.base.index("--rpc-url") + 1], tmp_path)
    public = wallet.legacy_encryption_keys(chain.deployment.key_suite, 0).public_bytes
    chain.transact(wallet, chain.participants.functions.register(public), "old-scheme register")
    assert "keys migrate" in medvault.text("keys", "show", "--account", "legacy")
    assert "keys migrate" in medvault.run("keys", "rotate", "--account", "legacy", ok=False)["message"]

    migrated = medvault.run("keys", "migrate", "--account", "legacy")

    assert (migrated["old_epoch"], migrated["new_epoch"]) == (0, 1)
    assert migrated["public_key"] != "0x" + public.hex()
    shown = medvault.run("keys", "show", "--account", "legacy")
    assert (shown["epoch"], shown["matches_chain"], shown["legacy"]) == (1, True, False)


@pytest.mark.parametrize("command", ["show", "rotate", "migrate", "export", "import"])
def test_keys_commands_have_help(medvault: Cli, command: str) -> None:
    assert "--json" in medvault.text("keys", command, "--help")
