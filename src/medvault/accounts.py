"""Accounts in encrypted keystores (Web3 Secret Storage, scrypt + AES-128-CTR, via eth-account).

A keystore is ``<home>/keystores/<name>.json``. The passphrase comes from
``MEDVAULT_PASSPHRASE_<NAME>``, then ``MEDVAULT_PASSPHRASE``, then a prompt; it is never
stored, and the private key is never written or logged in plaintext. The account's HPKE
encryption key pairs are derived from the account's signature over a fixed EIP-712 message (see
``medvault.crypto``), so unlocking the keystore again restores them, and a browser wallet holding
the same account derives the same ones.
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

from medvault.crypto import EncryptionKeyPair, KeySuite, encryption_key_typed_data
from medvault.errors import KeystoreError, UnknownAccountError, WrongPassphraseError

if TYPE_CHECKING:
    from collections.abc import Callable

    from eth_account.signers.local import LocalAccount
    from eth_typing import ChecksumAddress

__all__ = ["Keystore", "Wallet", "passphrase_from_env"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEFAULT_SCRYPT_N = 2**18  # eth-account's default work factor


def passphrase_from_env(name: str) -> str | None:
    env_name = "MEDVAULT_PASSPHRASE_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
    return os.environ.get(env_name) or os.environ.get("MEDVAULT_PASSPHRASE")


@dataclass
class Wallet:
    """An unlocked account: signs transactions and derives its encryption key pairs."""

    name: str
    account: LocalAccount = field(repr=False)
    _pairs: dict[tuple[KeySuite, int], EncryptionKeyPair] = field(default_factory=dict, repr=False)

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    def encryption_keys(self, suite: KeySuite, epoch: int = 0) -> EncryptionKeyPair:
        """The ``suite`` key pair of ``epoch``: from this account's signature over
        ``encryption_key_typed_data(suite, epoch)``, exactly as a browser wallet would derive it."""
        if (suite, epoch) not in self._pairs:
            document = encryption_key_typed_data(suite, epoch)
            signed = self.account.sign_message(encode_typed_data(full_message=document))
            self._pairs[suite, epoch] = EncryptionKeyPair.from_signature(bytes(signed.signature), suite, epoch)
        return self._pairs[suite, epoch]


class Keystore:
    """The keystore folder of one medvault home."""

    def __init__(self, home: Path) -> None:
        self.folder = Path(home) / "keystores"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def address(self, name: str) -> str:
        return "0x" + str(self._read(name)["address"]).removeprefix("0x")

    def addresses(self) -> dict[str, str]:
        return {name: self.address(name) for name in self.names()}

    def create(self, name: str, passphrase: str, private_key: bytes | None = None) -> str:
        """Writes a new keystore (a fresh key unless one is given); returns its address."""
        if not NAME_PATTERN.match(name):
            raise KeystoreError(f"invalid account name {name!r}: use letters, digits, '-' and '_'")
        if not passphrase:
            raise KeystoreError("an empty passphrase would leave the key unprotected")
        path = self.folder / f"{name}.json"
        if path.exists():
            raise KeystoreError(f"account {name!r} already exists in {self.folder}")
        account = Account.from_key(private_key) if private_key else Account.create()
        # The test suite lowers the work factor for its throwaway keystores; nothing else should.
        work = int(os.environ.get("MEDVAULT_KEYSTORE_SCRYPT_N", DEFAULT_SCRYPT_N))
        encrypted = Account.encrypt(account.key, passphrase, kdf="scrypt", iterations=work)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created with owner-only permissions from the start; never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(encrypted, out)
        return str(account.address)

    def unlock(self, name: str, passphrase: str | Callable[[str], str] | None = None) -> Wallet:
        """Decrypts ``name``; ``passphrase`` may be a string or a callable asked for one."""
        keystore = self._read(name)
        if passphrase is None or callable(passphrase):
            secret = passphrase_from_env(name)
            if secret is None:
                if passphrase is None:
                    raise KeystoreError(f"no passphrase for {name!r}: set MEDVAULT_PASSPHRASE or run interactively")
                secret = passphrase(name)
        else:
            secret = passphrase
        try:
            key = Account.decrypt(keystore, secret)
        except ValueError as exc:
            if "MAC mismatch" in str(exc):
                raise WrongPassphraseError(name) from None
            raise KeystoreError(f"keystore {name!r} cannot be decrypted: {exc}") from None
        return Wallet(name, Account.from_key(key))

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
