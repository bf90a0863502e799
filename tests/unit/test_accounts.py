"""Keystores and the key files beside them: encrypted at rest, clear errors for a wrong
passphrase, an unknown name or an altered file; encrypted backups that restore an account."""

from __future__ import annotations

import json
import stat
from typing import TYPE_CHECKING

import pytest

from medvault.accounts import TEST_SCRYPT_N, Keystore, backup_address
from medvault.crypto import KeySuite
from medvault.errors import IntegrityError, KeystoreError, UnknownAccountError, WrongPassphraseError

if TYPE_CHECKING:
    from pathlib import Path


def test_keystore_holds_no_plaintext_key_and_is_owner_only(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    address = keystore.create("alice", "s3cret")
    wallet = keystore.unlock("alice", "s3cret")
    path = tmp_path / "keystores" / "alice.json"

    assert wallet.address == address
    assert bytes(wallet.account.key).hex() not in path.read_text()
    assert json.loads(path.read_text())["crypto"]["kdf"] == "scrypt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wrong_passphrase_is_named(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")

    with pytest.raises(WrongPassphraseError, match="wrong passphrase for keystore 'alice'"):
        keystore.unlock("alice", "guess")


def test_unknown_account_lists_the_known_ones(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")

    with pytest.raises(UnknownAccountError, match="unknown account 'bob' \\(known: alice\\)"):
        keystore.unlock("bob", "s3cret")


def test_passphrase_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("dr-who", "tardis")
    monkeypatch.setenv("MEDVAULT_PASSPHRASE", "wrong")
    monkeypatch.setenv("MEDVAULT_PASSPHRASE_DR_WHO", "tardis")

    assert keystore.unlock("dr-who").name == "dr-who"


def test_missing_passphrase_without_prompt_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDVAULT_PASSPHRASE", raising=False)
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")

    with pytest.raises(KeystoreError, match="no passphrase for 'alice'"):
        keystore.unlock("alice")


@pytest.mark.parametrize(("name", "passphrase"), [("../escape", "x"), ("ok", "")])
def test_bad_names_and_empty_passphrases_are_refused(tmp_path: Path, name: str, passphrase: str) -> None:
    with pytest.raises(KeystoreError):
        Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N).create(name, passphrase)
    assert not (tmp_path / "keystores").exists() or not list((tmp_path / "keystores").iterdir())


def test_existing_account_is_never_overwritten(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    address = keystore.create("alice", "one")

    with pytest.raises(KeystoreError, match="already exists"):
        keystore.create("alice", "two")
    assert keystore.unlock("alice", "one").address == address


def test_a_new_account_has_random_keys_sealed_beside_its_keystore(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    wallet = keystore.unlock("alice", "s3cret")
    sealed = tmp_path / "keystores" / "alice.keys"

    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    assert sealed.read_bytes().startswith(b"MVKF\x01")
    for suite in KeySuite:
        assert wallet.encryption_keys(suite, 0).private_bytes() not in sealed.read_bytes()
    assert keystore.names() == ["alice"]  # the key file is not taken for an account


def test_a_key_file_under_another_passphrase_is_named(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    keystore.create("bob", "other")
    (tmp_path / "keystores" / "alice.keys").write_bytes((tmp_path / "keystores" / "bob.keys").read_bytes())

    with pytest.raises(KeystoreError, match="wrong passphrase for the key file of 'alice'"):
        keystore.unlock("alice", "s3cret")


def test_an_altered_key_file_is_refused(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    path = tmp_path / "keystores" / "alice.keys"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))

    with pytest.raises(IntegrityError, match="damaged or was altered"):
        keystore.unlock("alice", "s3cret")


def test_backup_round_trip_restores_the_account_and_every_key(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path / "old-device", scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    wallet = keystore.unlock("alice", "s3cret")
    wallet.generate_encryption_keys(KeySuite.X25519, 1)
    backup = tmp_path / "alice.mvk"

    keystore.export(wallet, "s3cret", backup)
    restored_keystore = Keystore(tmp_path / "new-device", scrypt_n=TEST_SCRYPT_N)
    address, added = restored_keystore.import_backup("alice", backup, "s3cret")
    restored = restored_keystore.unlock("alice", "s3cret")

    assert address == wallet.address == restored.address
    assert backup_address(backup) == address.lower()
    assert added == len(wallet.keys.pairs) == 4
    for (suite, epoch, _), pair in wallet.keys.pairs.items():
        assert restored.encryption_keys(suite, epoch).public_bytes == pair.public_bytes
    assert bytes(wallet.account.key) not in backup.read_bytes()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    with pytest.raises(KeystoreError, match="not overwritten"):
        keystore.export(wallet, "s3cret", backup)
    assert restored_keystore.import_backup("alice", backup, "s3cret") == (address, 0)  # twice: nothing new


def test_backup_with_a_wrong_passphrase_is_refused_in_words(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    keystore.export(keystore.unlock("alice", "s3cret"), "s3cret", tmp_path / "alice.mvk")

    with pytest.raises(KeystoreError, match="wrong passphrase for backup"):
        Keystore(tmp_path / "new", scrypt_n=TEST_SCRYPT_N).import_backup("alice", tmp_path / "alice.mvk", "guess")
    assert not (tmp_path / "new" / "keystores" / "alice.json").exists()


@pytest.mark.parametrize("offset", [30, 70, -1])  # the address in the header, an entry's meta, a tag
def test_tampered_backup_is_refused(tmp_path: Path, offset: int) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    backup = tmp_path / "alice.mvk"
    keystore.export(keystore.unlock("alice", "s3cret"), "s3cret", backup)
    data = bytearray(backup.read_bytes())
    data[offset] ^= 1
    backup.write_bytes(bytes(data))

    with pytest.raises(IntegrityError, match="damaged or was altered"):
        Keystore(tmp_path / "new", scrypt_n=TEST_SCRYPT_N).import_backup("alice", backup, "s3cret")
    assert not (tmp_path / "new" / "keystores").exists()


def test_a_truncated_backup_is_refused(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    backup = tmp_path / "alice.mvk"
    keystore.export(keystore.unlock("alice", "s3cret"), "s3cret", backup)
    backup.write_bytes(backup.read_bytes()[:-10])

    with pytest.raises(IntegrityError, match="damaged or was altered"):
        Keystore(tmp_path / "new", scrypt_n=TEST_SCRYPT_N).import_backup("alice", backup, "s3cret")


def test_a_key_file_is_not_a_backup(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")

    with pytest.raises(IntegrityError, match="not a backup"):
        Keystore(tmp_path / "new", scrypt_n=TEST_SCRYPT_N).import_backup(
            "alice", tmp_path / "keystores" / "alice.keys", "s3cret"
        )


def test_a_backup_of_another_account_is_not_merged(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    keystore.create("bob", "s3cret")
    keystore.export(keystore.unlock("bob", "s3cret"), "s3cret", tmp_path / "bob.mvk")

    with pytest.raises(KeystoreError, match="the backup is of"):
        keystore.import_backup("alice", tmp_path / "bob.mvk", "s3cret")


def test_a_backup_import_never_overwrites_a_key_file_left_without_its_keystore(tmp_path: Path) -> None:
    """The keystore of alice is gone but her key file (with keys no backup holds) is not:
    importing some backup under her name must not replace it."""
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    alice = keystore.unlock("alice", "s3cret")
    alice.generate_encryption_keys(KeySuite.X25519, 1)  # newer than any backup
    sealed = keystore.keys_path("alice").read_bytes()
    keystore.create("old", "s3cret")
    keystore.export(keystore.unlock("old", "s3cret"), "s3cret", tmp_path / "old.mvk")
    (tmp_path / "keystores" / "alice.json").unlink()

    with pytest.raises(KeystoreError, match="exists without a keystore"):
        keystore.import_backup("alice", tmp_path / "old.mvk", "s3cret")
    assert keystore.keys_path("alice").read_bytes() == sealed
    assert not (tmp_path / "keystores" / "alice.json").exists()


def test_a_key_file_whose_scrypt_work_was_lowered_by_an_attacker_is_not_opened(tmp_path: Path) -> None:
    """Lowering N (byte 6) in the clear header changes the derived key: the file no longer opens,
    so a device never re-seals the keys under the attacker's weaker parameters."""
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    path = keystore.keys_path("alice")
    data = bytearray(path.read_bytes())
    assert data[6] == 10
    data[6] = 9  # below the floor: refused before any work
    path.write_bytes(bytes(data))
    with pytest.raises(KeystoreError, match="scrypt parameters"):
        keystore.unlock("alice", "s3cret")
    data[6], data[7] = 10, 1  # same N, r lowered from 8 to 1
    path.write_bytes(bytes(data))
    with pytest.raises(KeystoreError, match="wrong passphrase"):
        keystore.unlock("alice", "s3cret")


def test_a_key_file_entry_never_shows_its_secret_when_printed_or_logged() -> None:
    from medvault.formats.keyfile import KeyEntry

    secret = bytes(range(32))
    entry = KeyEntry(int(KeySuite.X25519), 3, secret)
    assert secret.hex() not in repr(entry)
    assert repr(secret) not in repr(entry)
    assert "epoch=3" in repr(entry)
