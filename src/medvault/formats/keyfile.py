"""The sealed key file: an account's random HPKE key pairs, encrypted under a passphrase.

One format serves two files (layout in docs/FORMATS.md, "Key file"):

* ``<home>/keystores/<name>.keys``, beside the account's keystore and sealed under the same
  passphrase: the HPKE private keys of every epoch (and suite) the account ever generated;
* a backup (``medvault keys export``): the same bytes plus the account's secp256k1 key, so one
  file and one passphrase restore the account on a new device.

The 32-byte *sealing key* comes from a KDF named in the header: scrypt of a passphrase (``KDF_SCRYPT``)
or HKDF-SHA256 of any 32-byte secret (``KDF_SECRET``: a browser can use a passkey's WebAuthn PRF
output). From it HKDF derives the AES-256-GCM key and a 16-byte check value, so a wrong
passphrase is told apart from a file that was altered. Every entry is sealed on its own with
AES-256-GCM; its associated data is the whole header (version, KDF, salt, account address,
entry count) plus the entry's position, kind, epoch and flags: a key cannot be moved to another
account, epoch or position, and no entry can be dropped, added or reordered unnoticed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from medvault.errors import IntegrityError, KeystoreError

__all__ = [
    "ACCOUNT_KEY",
    "FLAG_LEGACY",
    "KDF_SCRYPT",
    "KDF_SECRET",
    "MIN_SCRYPT_LOG2_N",
    "KeyEntry",
    "KeyFileHeader",
    "Sealer",
    "open_key_file",
    "read_header",
]

MAGIC = b"MVKF"
VERSION = 1
KDF_SCRYPT = 1  # sealing key = scrypt(passphrase UTF-8, salt, N, r, p, 32)
KDF_SECRET = 2  # sealing key = HKDF-SHA256(ikm = 32-byte secret, salt, info = "medvault/keyfile/v1 secret", 32)
MIN_SCRYPT_LOG2_N = 10  # files asking for less work are refused (the default is 2^18)
ACCOUNT_KEY = 0  # entry kind of the account's secp256k1 key (backups only); HPKE entries use the KeySuite tag
FLAG_LEGACY = 1  # a key derived from a wallet signature by the old scheme: kept to open old wraps only
SECRET_LENGTHS = {ACCOUNT_KEY: 32, 1: 32, 2: 96}  # account key; X25519; X25519 || ML-KEM-768 seed (d || z)
HEADER_LENGTH = 63
ENTRY_OVERHEAD = 1 + 4 + 1 + 12 + 16  # kind, epoch, flags, nonce, tag
LABEL = b"medvault/keyfile/v1"


@dataclass(frozen=True)
class KeyEntry:
    """One secret of a key file: ``kind`` is ``ACCOUNT_KEY`` or a KeySuite tag."""

    kind: int
    epoch: int
    secret: bytes = field(repr=False)  # never in a log line or a traceback's message
    flags: int = 0

    def __post_init__(self) -> None:
        if SECRET_LENGTHS.get(self.kind) != len(self.secret):
            raise KeystoreError(f"a key-file entry of kind {self.kind} cannot hold {len(self.secret)} bytes")
        if not 0 <= self.epoch < 2**32:
            raise KeystoreError(f"key epoch {self.epoch} is out of range")


@dataclass(frozen=True)
class KeyFileHeader:
    """The clear part of a key file: who it belongs to and how its sealing key is derived."""

    address: bytes
    kdf: int
    log2_n: int
    r: int
    p: int
    salt: bytes
    check: bytes
    count: int

    def to_bytes(self) -> bytes:
        return b"".join([MAGIC, bytes([VERSION, self.kdf, self.log2_n, self.r, self.p]), self.salt,
                         self.address, self.check, self.count.to_bytes(2)])  # fmt: skip


class Sealer:
    """A derived sealing key and the KDF parameters that produced it; seals key files."""

    def __init__(self, kdf: int, salt: bytes, log2_n: int, r: int, p: int, sealing_key: bytes) -> None:
        self.kdf, self.salt, self.log2_n, self.r, self.p = kdf, salt, log2_n, r, p
        hkdf = [HKDF(hashes.SHA256(), 32 if n == 0 else 16, None, LABEL + what) for n, what in enumerate(INFOS)]
        self._aead = AESGCM(hkdf[0].derive(sealing_key))
        self.check = hkdf[1].derive(sealing_key)

    @classmethod
    def from_passphrase(
        cls, passphrase: str, *, log2_n: int = 18, r: int = 8, p: int = 1, salt: bytes | None = None
    ) -> Sealer:
        if not passphrase:
            raise KeystoreError("an empty passphrase would leave the keys unprotected")
        _check_work(log2_n, r, p)
        salt = os.urandom(16) if salt is None else salt
        key = Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p).derive(passphrase.encode())
        return cls(KDF_SCRYPT, salt, log2_n, r, p, key)

    @classmethod
    def from_secret(cls, secret: bytes, *, salt: bytes | None = None) -> Sealer:
        """From a 32-byte secret held elsewhere (a passkey's PRF output, for example)."""
        if len(secret) != 32:
            raise KeystoreError(f"a sealing secret has 32 bytes, not {len(secret)}")
        salt = os.urandom(16) if salt is None else salt
        key = HKDF(hashes.SHA256(), 32, salt, LABEL + b" secret").derive(secret)
        return cls(KDF_SECRET, salt, 0, 0, 0, key)

    @classmethod
    def for_header(cls, header: KeyFileHeader, secret: str | bytes) -> Sealer:
        """The sealer of an existing file, from its passphrase (or 32-byte secret)."""
        if header.kdf == KDF_SCRYPT:
            if not isinstance(secret, str):
                raise KeystoreError("this key file is sealed under a passphrase")
            return cls.from_passphrase(secret, log2_n=header.log2_n, r=header.r, p=header.p, salt=header.salt)
        if isinstance(secret, str):
            raise KeystoreError("this key file is sealed under a 32-byte secret (a passkey), not a passphrase")
        return cls.from_secret(secret, salt=header.salt)

    def seal(self, address: bytes, entries: list[KeyEntry], nonces: list[bytes] | None = None) -> bytes:
        """The key file holding ``entries`` for the 20-byte ``address``; fresh random nonces
        unless ``nonces`` are given (test vectors only)."""
        if len(address) != 20:
            raise KeystoreError("an account address has 20 bytes")
        if len(entries) >= 2**16:
            raise KeystoreError("a key file holds at most 65535 entries")
        header = KeyFileHeader(address, self.kdf, self.log2_n, self.r, self.p, self.salt, self.check, len(entries))
        head = header.to_bytes()
        out = [head]
        for i, entry in enumerate(entries):
            nonce = os.urandom(12) if nonces is None else nonces[i]
            meta = bytes([entry.kind]) + entry.epoch.to_bytes(4) + bytes([entry.flags])
            out += [meta, nonce, self._aead.encrypt(nonce, entry.secret, _aad(head, i, meta))]
        return b"".join(out)

    def open(self, data: bytes, header: KeyFileHeader, what: str) -> list[KeyEntry]:
        if header.check != self.check:
            raise KeystoreError(f"wrong passphrase for {what}: its keys were not decrypted")
        head, entries, at = data[:HEADER_LENGTH], [], HEADER_LENGTH
        for i in range(header.count):
            if at + 6 > len(data) or (kind := data[at]) not in SECRET_LENGTHS:
                raise IntegrityError(f"{what} is damaged or was altered (entry {i} is malformed)")
            meta, end = data[at : at + 6], at + ENTRY_OVERHEAD + SECRET_LENGTHS[kind]
            if end > len(data):
                raise IntegrityError(f"{what} is damaged or was altered (entry {i} is cut short)")
            try:
                secret = self._aead.decrypt(data[at + 6 : at + 18], data[at + 18 : end], _aad(head, i, meta))
            except InvalidTag:
                raise IntegrityError(f"{what} is damaged or was altered (entry {i} fails authentication)") from None
            entries.append(KeyEntry(kind, int.from_bytes(meta[1:5]), secret, meta[5]))
            at = end
        if at != len(data):
            raise IntegrityError(f"{what} is damaged or was altered ({len(data) - at} bytes after the last entry)")
        return entries


INFOS = (b" aes-256-gcm", b" check")


def _aad(head: bytes, index: int, meta: bytes) -> bytes:
    return LABEL + head + index.to_bytes(2) + meta


def _check_work(log2_n: int, r: int, p: int) -> None:
    if not MIN_SCRYPT_LOG2_N <= log2_n <= 24 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise KeystoreError(
            f"scrypt parameters N=2^{log2_n}, r={r}, p={p} are refused "
            f"(N from 2^{MIN_SCRYPT_LOG2_N} to 2^24, r 1..32, p 1..16)"
        )


def read_header(data: bytes, what: str) -> KeyFileHeader:
    """The header of a key file, checked for format and version (nothing is decrypted)."""
    if len(data) < HEADER_LENGTH or not data.startswith(MAGIC):
        raise IntegrityError(f"{what} is not a medvault key file")
    if data[4] != VERSION:
        raise IntegrityError(f"{what} is a key file of version {data[4]}; this medvault reads version {VERSION}")
    kdf, log2_n, r, p = data[5], data[6], data[7], data[8]
    if kdf == KDF_SCRYPT:
        _check_work(log2_n, r, p)
    elif kdf != KDF_SECRET:
        raise IntegrityError(f"{what} names an unknown key derivation ({kdf})")
    return KeyFileHeader(data[25:45], kdf, log2_n, r, p, data[9:25], data[45:61], int.from_bytes(data[61:63]))


def open_key_file(data: bytes, secret: str | bytes, what: str) -> tuple[KeyFileHeader, Sealer, list[KeyEntry]]:
    """Decrypts a key file with its passphrase (or 32-byte secret): its header, the sealer to
    write it again, and its entries. Raises KeystoreError for a wrong passphrase and
    IntegrityError for a file that was altered or damaged."""
    header = read_header(data, what)
    sealer = Sealer.for_header(header, secret)
    return header, sealer, sealer.open(data, header, what)
