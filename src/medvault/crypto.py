"""Record encryption and key wrapping.

* A record is sealed with AES-256-GCM under a fresh 256-bit key. The associated data binds the
  ciphertext to where it belongs (chain id, registry contract, patient, position in the
  patient's log), so a ciphertext copied to another record or chain fails to decrypt.
* The record key is wrapped for each reader with HPKE (RFC 9180, base mode, from
  ``cryptography``). The HPKE ``info`` carries the same context plus the reader's address, so
  a wrap cannot be replayed for another record or another reader.
* A participant's HPKE key pair is derived from their account key with HKDF, so the keystore
  holds one secret and the encryption key can always be derived again.

Two suites are supported; the suite is tagged in the first byte of a published public key:
``X25519`` (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) and ``MLKEM768_X25519``
(the post-quantum hybrid KEM), for records that must stay confidential for decades.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_abi.abi import encode as abi_encode

from medvault.errors import DecryptionError, IntegrityError

__all__ = [
    "EncryptionKeyPair",
    "KeySuite",
    "PublicKey",
    "RecordContext",
    "decrypt_record",
    "encrypt_record",
    "new_record_key",
    "unwrap_key",
    "wrap_key",
]

RECORD_MAGIC = b"MVR1"
NONCE_LENGTH = 12
KEY_LENGTH = 32

PrivateKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
PublicKeyObject = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey


class KeySuite(enum.IntEnum):
    """HPKE suites; the value is the tag byte of a published public key."""

    X25519 = 1
    MLKEM768_X25519 = 2

    @property
    def hpke(self) -> hpke.Suite:
        kem = hpke.KEM.X25519 if self is KeySuite.X25519 else hpke.KEM.MLKEM768_X25519
        return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class RecordContext:
    """Where a record lives; bound into its ciphertext and into every wrap of its key."""

    chain_id: int
    registry: str
    patient: str
    index: int

    def associated_data(self) -> bytes:
        return abi_encode(
            ["string", "uint256", "address", "address", "uint64"],
            ["medvault/record/v1", self.chain_id, self.registry, self.patient, self.index],
        )

    def wrap_info(self, reader: str) -> bytes:
        return abi_encode(["bytes", "address"], [self.associated_data(), reader])


@dataclass(frozen=True)
class PublicKey:
    """A participant's published HPKE public key: ``suite tag || raw key bytes``."""

    suite: KeySuite
    key: PublicKeyObject

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        if not data:
            raise IntegrityError("empty encryption public key")
        try:
            suite = KeySuite(data[0])
        except ValueError:
            raise IntegrityError(f"unknown key suite tag {data[0]} in encryption public key") from None
        raw = data[1:]
        try:
            if suite is KeySuite.X25519:
                return cls(suite, x25519.X25519PublicKey.from_public_bytes(raw))
            mlkem_raw, x_raw = raw[:-32], raw[-32:]
            key = hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(mlkem_raw),
                x25519.X25519PublicKey.from_public_bytes(x_raw),
            )
        except ValueError as exc:
            raise IntegrityError(f"malformed {suite.name} public key ({len(raw)} bytes): {exc}") from None
        return cls(suite, key)


class EncryptionKeyPair:
    """An HPKE key pair derived deterministically from a 32-byte account secret."""

    def __init__(self, suite: KeySuite, private_key: PrivateKey, public_bytes: bytes) -> None:
        self.suite = suite
        self._private_key = private_key
        self.public_bytes = public_bytes

    @classmethod
    def derive(cls, secret: bytes, suite: KeySuite = KeySuite.X25519, epoch: int = 0) -> EncryptionKeyPair:
        """Derives the pair for ``suite`` from ``secret``; a new ``epoch`` gives a new, unrelated pair."""
        info = f"medvault/encryption-key/{suite.name}/epoch-{epoch}".encode()
        seed = HKDF(hashes.SHA256(), length=96, salt=b"medvault", info=info).derive(secret)
        x_private = x25519.X25519PrivateKey.from_private_bytes(seed[:32])
        x_public = x_private.public_key().public_bytes_raw()
        if suite is KeySuite.X25519:
            return cls(suite, x_private, bytes([suite]) + x_public)
        m_private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed[32:])
        m_public = m_private.public_key().public_bytes_raw()
        hybrid = hpke.MLKEM768X25519PrivateKey(m_private, x_private)
        return cls(suite, hybrid, bytes([suite]) + m_public + x_public)


def new_record_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt_record(plaintext: bytes, key: bytes, context: RecordContext) -> bytes:
    """Returns ``MVR1 || nonce || AES-256-GCM(plaintext) || tag``."""
    nonce = os.urandom(NONCE_LENGTH)
    return RECORD_MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, context.associated_data())


def decrypt_record(blob: bytes, key: bytes, context: RecordContext) -> bytes:
    header = len(RECORD_MAGIC) + NONCE_LENGTH
    if len(blob) < header + 16 or not blob.startswith(RECORD_MAGIC):
        raise IntegrityError(f"record {context.index} of {context.patient} is not a medvault ciphertext")
    nonce = blob[len(RECORD_MAGIC) : header]
    try:
        return AESGCM(key).decrypt(nonce, blob[header:], context.associated_data())
    except InvalidTag:
        raise DecryptionError(f"record {context.index} of {context.patient}") from None


def wrap_key(record_key: bytes, recipient: bytes, context: RecordContext, reader: str) -> bytes:
    """Wraps ``record_key`` to the published public key ``recipient`` of ``reader``."""
    public = PublicKey.from_bytes(recipient)
    return public.suite.hpke.encrypt(record_key, public.key, info=context.wrap_info(reader))


def unwrap_key(wrapped: bytes, pair: EncryptionKeyPair, context: RecordContext, reader: str) -> bytes:
    try:
        key = pair.suite.hpke.decrypt(wrapped, pair._private_key, info=context.wrap_info(reader))
    except (InvalidTag, ValueError):
        raise DecryptionError(f"the key wrap of record {context.index} for {reader}") from None
    if len(key) != KEY_LENGTH:
        raise DecryptionError(f"the key wrap of record {context.index} for {reader}")
    return key
