"""Accounts in encrypted keystores, and their random encryption keys sealed beside them.

A keystore is ``<home>/keystores/<name>.json`` (Web3 Secret Storage, scrypt + AES-128-CTR, via
eth-account). Beside it, ``<name>.keys`` holds the account's HPKE key pairs, one per epoch and
suite, generated from the OS CSPRNG and sealed under the same passphrase
(``medvault.formats.keyfile``: scrypt, AES-256-GCM bound to the address and epoch). The
passphrase comes from ``MEDVAULT_PASSPHRASE_<NAME>``, then ``MEDVAULT_PASSPHRASE``, then a
prompt; it is never stored, and no private key is ever written or logged in plaintext.

The encryption keys are not derived from the account key nor from any signature, so a web page
that gets the wallet to sign whatever it likes learns nothing about them; losing the key file
loses them (``medvault keys export`` writes an encrypted backup of both files). Accounts of the
old scheme, whose key was derived from a signature, move with ``medvault keys migrate``
(``Wallet.legacy_encryption_keys`` is kept for that alone).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from eth_account import Account
from eth_account.messages import encode_typed_data

from medvault.crypto import EncryptionKeyPair, KeySuite, legacy_encryption_key_typed_data
from medvault.errors import IntegrityError, KeystoreError, UnknownAccountError, WrongPassphraseError
from medvault.formats.address import looks_like_address
from medvault.formats.keyfile import ACCOUNT_KEY, FLAG_LEGACY, KeyEntry, Sealer, open_key_file, read_header

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress

__all__ = [
    "DEFAULT_SCRYPT_N",
    "TEST_SCRYPT_N",
    "KeyRing",
    "Keystore",
    "Wallet",
    "backup_address",
    "passphrase_from_env",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEFAULT_SCRYPT_N = 2**18  # eth-account's default work factor; the key file uses the same
TEST_SCRYPT_N = 2**10  # the least a key file accepts: throwaway keystores of the test suite only


def passphrase_from_env(name: str) -> str | None:
    env_name = "MEDVAULT_PASSPHRASE_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
    return os.environ.get(env_name) or os.environ.get("MEDVAULT_PASSPHRASE")


KeyId = tuple[KeySuite, int, bool]  # suite, epoch, legacy


class KeyRing:
    """An account's HPKE key pairs by suite and epoch, and where they are sealed.

    ``save`` (set by the keystore) seals the ring to its key file after every change, before
    the new key is handed out, so a key published on chain is never one that was not kept.
    ``derive`` is for development wallets only (``medvault.dev``): missing epochs are computed
    from it instead of being generated at random.
    """

    def __init__(
        self,
        pairs: dict[KeyId, EncryptionKeyPair] | None = None,
        save: Callable[[KeyRing], None] | None = None,
        derive: Callable[[KeySuite, int], EncryptionKeyPair] | None = None,
    ) -> None:
        self.pairs: dict[KeyId, EncryptionKeyPair] = dict(pairs or {})
        self.save, self.derive = save, derive

    def get(self, suite: KeySuite, epoch: int) -> EncryptionKeyPair | None:
        """The pair of ``epoch`` (a random one before a legacy one of the same number)."""
        pair = self.pairs.get((suite, epoch, False)) or self.pairs.get((suite, epoch, True))
        if pair is None and self.derive is not None:
            pair = self.pairs[suite, epoch, False] = self.derive(suite, epoch)
        return pair

    def held(self, suite: KeySuite) -> Iterator[tuple[int, bool, EncryptionKeyPair]]:
        """(epoch, legacy, pair) of every ``suite`` pair held: random ones newest first, then legacy ones."""
        if self.derive is not None and not any(k[0] is suite for k in self.pairs):
            self.get(suite, 0)  # a development wallet holds epoch 0 from the start
        for key in sorted((k for k in self.pairs if k[0] is suite), key=lambda k: (not k[2], k[1]), reverse=True):
            yield key[1], key[2], self.pairs[key]

    def next_epoch(self, suite: KeySuite) -> int:
        return 1 + max((epoch for epoch, _, _ in self.held(suite)), default=-1)

    def generate(self, epoch: int) -> None:
        """Makes the random pairs of ``epoch`` for every suite it lacks (derived ones for a
        development wallet), and seals them."""
        make = self.derive or (lambda suite, _: EncryptionKeyPair.generate(suite))
        new = {(s, epoch, False): make(s, epoch) for s in KeySuite if (s, epoch, False) not in self.pairs}
        if new:
            self.pairs.update(new)
            if self.save is not None:
                try:
                    self.save(self)
                except BaseException:
                    for key in new:
                        del self.pairs[key]
                    raise

    def add_legacy(self, pairs: dict[tuple[KeySuite, int], EncryptionKeyPair]) -> None:
        """Keeps signature-derived pairs (migration), flagged legacy, and seals them."""
        self.pairs.update({(s, e, True): p for (s, e), p in pairs.items()})
        if self.save is not None:
            self.save(self)

    def entries(self) -> list[KeyEntry]:
        return [
            KeyEntry(suite, epoch, pair.private_bytes(), FLAG_LEGACY if legacy else 0)
            for (suite, epoch, legacy), pair in sorted(
                self.pairs.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])
            )
        ]

    @classmethod
    def from_entries(cls, entries: list[KeyEntry], save: Callable[[KeyRing], None] | None = None) -> KeyRing:
        pairs = {
            (KeySuite(e.kind), e.epoch, bool(e.flags & FLAG_LEGACY)): EncryptionKeyPair.from_private_bytes(
                e.secret, KeySuite(e.kind)
            )
            for e in entries
            if e.kind != ACCOUNT_KEY
        }
        return cls(pairs, save)


@dataclass
class Wallet:
    """An unlocked account: signs transactions and holds its encryption key pairs."""

    name: str
    account: LocalAccount = field(repr=False)
    keys: KeyRing = field(default_factory=KeyRing, repr=False)

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    def encryption_keys(self, suite: KeySuite, epoch: int = 0) -> EncryptionKeyPair:
        """The ``suite`` key pair of ``epoch``, as held in the account's key file."""
        pair = self.keys.get(suite, epoch)
        if pair is None:
            held = sorted({e for e, _, _ in self.keys.held(suite)})
            raise KeystoreError(
                f"account {self.name!r} holds no {suite.name} encryption key of epoch {epoch} "
                f"(it holds epochs {held or 'none'}): `medvault register` makes one, "
                "`medvault keys import` restores a backup"
            )
        return pair

    def generate_encryption_keys(self, suite: KeySuite, epoch: int) -> EncryptionKeyPair:
        """The ``suite`` pair of ``epoch``: the one held, else a fresh random one (of every suite
        for that epoch), sealed to the key file before it is returned."""
        if (suite, epoch, False) not in self.keys.pairs:
            self.keys.generate(epoch)
        return self.keys.pairs[suite, epoch, False]

    def legacy_encryption_keys(self, suite: KeySuite, epoch: int) -> EncryptionKeyPair:
        """Legacy, migration only: the pair the old scheme derived from this account's signature
        over ``legacy_encryption_key_typed_data(suite, epoch)`` (phishable, see ``medvault.crypto``)."""
        document = legacy_encryption_key_typed_data(suite, epoch)
        signed = self.account.sign_message(encode_typed_data(full_message=document))
        return EncryptionKeyPair.legacy_from_signature(bytes(signed.signature), suite, epoch)


class Keystore:
    """The keystore folder of one medvault home."""

    def __init__(self, home: Path, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        """``scrypt_n`` is the work factor of the files it writes: a power of two, at least
        DEFAULT_SCRYPT_N; TEST_SCRYPT_N is let through for the test suite's throwaway keystores.
        Nothing reads it from the environment, so the command line always writes the default."""
        if scrypt_n != TEST_SCRYPT_N and (scrypt_n < DEFAULT_SCRYPT_N or scrypt_n & (scrypt_n - 1)):
            raise KeystoreError(f"scrypt work factor {scrypt_n} refused: a power of two of at least {DEFAULT_SCRYPT_N}")
        self.folder = Path(home) / "keystores"
        self.scrypt_log2_n = scrypt_n.bit_length() - 1

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def address(self, name: str) -> str:
        return "0x" + str(self._read(name)["address"]).removeprefix("0x")

    def addresses(self) -> dict[str, str]:
        return {name: self.address(name) for name in self.names()}

    def name_of(self, address: str) -> str | None:
        """The account holding ``address`` (any case), if this keystore has one."""
        return next((n for n, a in self.addresses().items() if a.lower() == address.lower()), None)

    def keys_path(self, name: str) -> Path:
        """Where ``name``'s sealed encryption keys live: beside its keystore."""
        return self.folder / f"{name}.keys"

    def create(self, name: str, passphrase: str, private_key: bytes | None = None) -> str:
        """Writes a new keystore (a fresh key unless one is given) and its key file, with random
        encryption keys of epoch 0, both under ``passphrase``; returns the address."""
        if not NAME_PATTERN.match(name) or looks_like_address(name):
            raise KeystoreError(
                f"invalid account name {name!r}: use letters, digits, '-' and '_' (not starting with 0x)"
            )
        if not passphrase:
            raise KeystoreError("an empty passphrase would leave the key unprotected")
        path = self.folder / f"{name}.json"
        if path.exists():
            raise KeystoreError(f"account {name!r} already exists in {self.folder}")
        if self.keys_path(name).exists():
            raise KeystoreError(f"{self.keys_path(name)} exists without a keystore: move it away first")
        account = Account.from_key(private_key) if private_key else Account.create()
        ring = self._sealed_ring(name, bytes.fromhex(account.address[2:]), passphrase, None)
        ring.pairs = {(s, 0, False): EncryptionKeyPair.generate(s) for s in KeySuite}
        self._new_keystore(name, passphrase, account, ring)
        return str(account.address)

    def _new_keystore(self, name: str, passphrase: str, account: LocalAccount, ring: KeyRing) -> None:
        """Writes ``name``'s key file, then its keystore (an account never exists without its keys)."""
        if ring.save is not None:
            ring.save(ring)
        encrypted = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=2**self.scrypt_log2_n)
        _write_private(self.folder / f"{name}.json", json.dumps(encrypted).encode())

    def unlock(self, name: str, passphrase: str | Callable[[str], str] | None = None) -> Wallet:
        """Decrypts ``name`` and its key file; ``passphrase`` may be a string or a callable asked for one."""
        keystore = self._read(name)
        secret = self.passphrase(name, passphrase)
        try:
            key = Account.decrypt(keystore, secret)
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise WrongPassphraseError(name) from None
            raise KeystoreError(f"keystore {name!r} cannot be decrypted: {exc}") from None
        account = Account.from_key(key)
        address = bytes.fromhex(account.address[2:])
        sealed = self.keys_path(name)
        if not sealed.exists():  # an account of the old scheme: `medvault keys migrate`
            return Wallet(name, account, self._sealed_ring(name, address, secret, None))
        header, sealer, entries = open_key_file(sealed.read_bytes(), secret, f"the key file of {name!r}")
        if header.address != address:
            raise IntegrityError(f"{sealed} holds the keys of 0x{header.address.hex()}, not of {account.address}")
        ring = KeyRing.from_entries(entries)
        ring.save = self._sealed_ring(name, address, secret, sealer).save
        return Wallet(name, account, ring)

    def passphrase(self, name: str, passphrase: str | Callable[[str], str] | None) -> str:
        """The passphrase of ``name``: given, from the environment, else asked of ``passphrase``."""
        if passphrase is not None and not callable(passphrase):
            return passphrase
        secret = passphrase_from_env(name)
        if secret is None:
            if passphrase is None:
                raise KeystoreError(f"no passphrase for {name!r}: set MEDVAULT_PASSPHRASE or run interactively")
            secret = passphrase(name)
        return secret

    def export(self, wallet: Wallet, passphrase: str, out: Path) -> None:
        """Writes an encrypted backup of ``wallet`` (account key and every encryption key) to
        ``out``, sealed under ``passphrase`` with a fresh salt; never overwrites a file."""
        entries = [KeyEntry(ACCOUNT_KEY, 0, bytes(wallet.account.key)), *wallet.keys.entries()]
        sealer = Sealer.from_passphrase(passphrase, log2_n=self.scrypt_log2_n)
        _write_private(Path(out), sealer.seal(bytes.fromhex(wallet.address[2:]), entries))

    def import_backup(self, name: str, backup: Path, passphrase: str) -> tuple[str, int]:
        """Restores account ``name`` from a backup written by ``export``: a new keystore and key
        file, or, if ``name`` is that account already, its missing keys added. Returns the
        address and how many encryption keys the backup added."""
        data = Path(backup).read_bytes()
        header, _, entries = open_key_file(data, passphrase, f"backup {backup}")
        accounts = [e for e in entries if e.kind == ACCOUNT_KEY]
        if len(accounts) != 1:
            raise IntegrityError(f"{backup} is a key file, not a backup: it holds no account key")
        account = Account.from_key(accounts[0].secret)
        if bytes.fromhex(account.address[2:]) != header.address:
            raise IntegrityError(f"backup {backup} names {header.address.hex()} but holds the key of {account.address}")
        restored = KeyRing.from_entries(entries)
        if not (self.folder / f"{name}.json").exists():
            if self.keys_path(name).exists():  # keys no backup may hold: never replaced
                raise KeystoreError(f"{self.keys_path(name)} exists without a keystore: move it away first")
            ring = self._sealed_ring(name, header.address, passphrase, None)
            ring.pairs = restored.pairs
            self._new_keystore(name, passphrase, account, ring)
            return str(account.address), len(ring.pairs)
        wallet = self.unlock(name, passphrase)
        if wallet.address != account.address:
            raise KeystoreError(f"account {name!r} is {wallet.address}, the backup is of {account.address}")
        held, added = {p.public_bytes for p in wallet.keys.pairs.values()}, 0
        for (suite, epoch, legacy), pair in sorted(restored.pairs.items(), key=lambda kv: kv[0][1]):
            if pair.public_bytes in held:
                continue
            if (suite, epoch, legacy) in wallet.keys.pairs:  # this device made another key of that epoch
                epoch = wallet.keys.next_epoch(suite)
            wallet.keys.pairs[suite, epoch, legacy] = pair
            added += 1
        if added and wallet.keys.save is not None:
            wallet.keys.save(wallet.keys)
        return str(account.address), added

    def _sealed_ring(self, name: str, address: bytes, passphrase: str, sealer: Sealer | None) -> KeyRing:
        """An empty ring whose ``save`` seals it to ``name``'s key file under ``passphrase``
        (the scrypt key derived once, at the first save, then reused with fresh nonces)."""
        path = self.keys_path(name)
        held: list[Sealer | None] = [sealer]

        def save(ring: KeyRing) -> None:
            sealer = held[0] or Sealer.from_passphrase(passphrase, log2_n=self.scrypt_log2_n)
            held[0] = sealer
            _write_private(path, sealer.seal(address, ring.entries()), replace=True)

        return KeyRing(save=save)

    def _read(self, name: str) -> dict[str, object]:
        path = self.folder / f"{name}.json"
        if not path.exists():
            raise UnknownAccountError(name, self.names())
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise KeystoreError(f"keystore {path} is unreadable: {exc}") from None
        if not isinstance(data, dict) or "crypto" not in data:
            raise KeystoreError(f"{path} is not a Web3 Secret Storage keystore")
        return data


def _write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Writes ``data`` owner-only (never world-readable, not even for a moment); with
    ``replace``, atomically over an existing file, else refusing to overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not replace:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise KeystoreError(f"{path} exists already: it is not overwritten") from None
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def backup_address(backup: Path) -> str:
    """The account a backup file belongs to, read from its clear header (nothing is decrypted)."""
    return "0x" + read_header(Path(backup).read_bytes(), f"backup {backup}").address.hex()
