"""Keystores: encrypted at rest, clear errors for a wrong passphrase or an unknown name."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

import pytest

from medvault.accounts import Keystore
from medvault.errors import KeystoreError, UnknownAccountError, WrongPassphraseError

if TYPE_CHECKING:
    from pathlib import Path


def test_keystore_holds_no_plaintext_key_and_is_owner_only(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path)
    address = keystore.create("alice", "s3cret")
    wallet = keystore.unlock("alice", "s3cret")
    path = tmp_path / "keystores" / "alice.json"

    assert wallet.address == address
    assert bytes(wallet.account.key).hex() not in path.read_text()
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wrong_passphrase_is_named(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path)
    keystore.create("alice", "s3cret")

    with pytest.raises(WrongPassphraseError, match="wrong passphrase for keystore 'alice'"):
        keystore.unlock("alice", "guess")


def test_unknown_account_lists_the_known_ones(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path)
    keystore.create("alice", "s3cret")

    with pytest.raises(UnknownAccountError, match="unknown account 'bob' \\(known: alice\\)"):
        keystore.unlock("bob", "s3cret")


def test_passphrase_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keystore = Keystore(tmp_path)
    keystore.create("dr-who", "tardis")
    monkeypatch.setenv("MEDVAULT_PASSPHRASE", "wrong")
    monkeypatch.setenv("MEDVAULT_PASSPHRASE_DR_WHO", "tardis")

    assert keystore.unlock("dr-who").name == "dr-who"


def test_missing_passphrase_without_prompt_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDVAULT_PASSPHRASE", raising=False)
    keystore = Keystore(tmp_path)
    keystore.create("alice", "s3cret")

    with pytest.raises(KeystoreError, match="no passphrase for 'alice'"):
        keystore.unlock("alice")


@pytest.mark.parametrize(("name", "passphrase"), [("../escape", "x"), ("ok", "")])
def test_bad_names_and_empty_passphrases_are_refused(tmp_path: Path, name: str, passphrase: str) -> None:
    with pytest.raises(KeystoreError):
        Keystore(tmp_path).create(name, passphrase)
    assert not (tmp_path / "keystores").exists() or not list((tmp_path / "keystores").iterdir())


def test_existing_account_is_never_overwritten(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path)
    address = keystore.create("alice", "one")

    with pytest.raises(KeystoreError, match="already exists"):
        keystore.create("alice", "two")
    assert keystore.unlock("alice", "one").address == address
