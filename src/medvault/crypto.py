"""Record encryption and key wrapping.

* A record is sealed with AES-256-GCM under a fresh 256-bit key. The associated data binds the
  ciphertext to where it belongs (chain id, registry contract, patient, position in the
  patient's log), so a ciphertext copied to another record or chain fails to decrypt.
* The record key is wrapped for each reader with HPKE (RFC 9180, base mode, from
  ``cryptography``). The HPKE ``info`` carries the same context plus the reader's address, so
  a wrap cannot be replayed for another record or another reader.
* A participant's HPKE key pair is random: generated from the OS CSPRNG
  (``EncryptionKeyPair.generate``) once per account, epoch and suite, and kept sealed beside the
  account key (``medvault.accounts``, ``medvault.formats.keyfile``). No signature, message or
  account key determines it, so no web page that obtains wallet signatures can derive it, and a
  rotation's key is unrelated to anything that existed before it.
* Legacy: accounts registered before that derived the pair from a wallet signature over a fixed
  EIP-712 message (``legacy_encryption_key_typed_data``, ``EncryptionKeyPair.legacy_from_signature``),
  which any website can ask a wallet to sign (review finding H-2). That derivation is kept only
  so ``medvault keys migrate`` can open records wrapped for such a key.

Two suites are supported; the suite is tagged in the first byte of a published public key:
``X25519`` (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) and ``MLKEM768_X25519``
(the post-quantum hybrid KEM), for records that must stay confidential for decades.
"""

from __future__ import annotations

import enum
import functools
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from medvault.errors import ConfigurationError, DecryptionError, IntegrityError, UnusableKeyError

__all__ = [
    "LEGACY_ENCRYPTION_KEY_PURPOSE",
    "EncryptionKeyPair",
    "KeySuite",
    "PublicKey",
    "RecordContext",
    "decrypt_record",
    "encrypt_record",
    "is_low_order",
    "legacy_encryption_key_typed_data",
    "new_record_key",
    "normalised_signature",
    "open_share",
    "seal_share",
    "unwrap_key",
    "wrap_key",
]

RECORD_MAGIC = b"MVR1"
NONCE_LENGTH = 12
KEY_LENGTH = 32

# Legacy: the EIP-712 message an account signed to derive its encryption key before keys were
# random (phishable: any website can ask for this signature). Kept for migration only.
ENCRYPTION_KEY_DOMAIN = {"name": "medvault encryption key", "version": "1"}
LEGACY_ENCRYPTION_KEY_PURPOSE = "Derive my medvault encryption key. Signing this does not authorize any transaction."
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ENCRYPTION_KEY_TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
    "EncryptionKey": [
        {"name": "purpose", "type": "string"},
        {"name": "suite", "type": "string"},
        {"name": "epoch", "type": "uint256"},
    ],
}

MLKEM_EK_LENGTH = 1184
MLKEM_Q = 3329  # FIPS 203: every 12-bit coefficient of an encapsulation key is below q
CURVE25519_P = 2**255 - 19
# RFC 7748: the u-coordinates of the points of order 1, 2, 4 and 8 (with their twins mod p and
# the ignored top bit, 14 encodings). Any private key's shared secret with one is all-zero, so
# a wrap "for" it is readable by anyone who knows the wrap's context.
LOW_ORDER_U = frozenset({
    0, 1, CURVE25519_P - 1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
})  # fmt: skip

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

    @property
    def label(self) -> str:
        """The suite's name on command lines: ``x25519``, ``mlkem768-x25519``."""
        return self.name.lower().replace("_", "-")

    @classmethod
    def labels(cls) -> list[str]:
        return [suite.label for suite in cls]

    @classmethod
    def from_label(cls, label: str) -> KeySuite:
        """The suite named ``label`` (see :attr:`label`)."""
        for suite in cls:
            if suite.label == label:
                return suite
        raise ConfigurationError(f"unknown key suite {label!r} (one of: {', '.join(cls.labels())})")


@dataclass(frozen=True)
class RecordContext:
    """Where a record lives; bound into its ciphertext and into every wrap of its key.

    A record is named by its author and the author's sequence number in the patient's log
    (``seq``, from ``RecordAdded``): the author knows both before it writes, and the chain
    assigns and emits them, whereas the record's position is only known once it lands."""

    chain_id: int
    registry: str
    patient: str
    author: str
    seq: int

    def associated_data(self) -> bytes:
        return _associated_data(self.chain_id, self.registry, self.patient, self.author, self.seq)

    def describe(self) -> str:
        """How messages name the record: ``record <seq> by <author> of <patient>``."""
        return f"record {self.seq} by {self.author} of {self.patient}"

    def wrap_info(self, reader: str) -> bytes:
        """``abi.encode(bytes associatedData, address reader)``, written out by hand: it is
        computed for every reader of every record, and eth_abi's generic encoder is slow."""
        data = self.associated_data()
        padding = b"\0" * (-len(data) % 32)
        return b"".join([(64).to_bytes(32), bytes.fromhex(reader[2:]).rjust(32, b"\0"),
                         len(data).to_bytes(32), data, padding])  # fmt: skip

    def escrow_info(self, keeper: str) -> bytes:
        """HPKE info of a keeper's escrowed share of the record key (never a reader's wrap)."""
        return abi_encode(["bytes", "string", "address"], [self.associated_data(), "medvault/escrow/v1", keeper])

    def release_info(self, reader: str, keeper: str, x: int) -> bytes:
        """HPKE info of share ``x`` as ``keeper`` releases it to ``reader``."""
        return abi_encode(
            ["bytes", "string", "address", "address", "uint8"],
            [self.associated_data(), "medvault/release/v1", reader, keeper, x],
        )


@functools.lru_cache(maxsize=4096)
def _associated_data(chain_id: int, registry: str, patient: str, author: str, seq: int) -> bytes:
    # Cached: sealing a record and wrapping its key for each reader all need the same bytes.
    return abi_encode(
        ["string", "uint256", "address", "address", "address", "uint64"],
        ["medvault/record/v2", chain_id, registry, patient, author, seq],
    )


# A published key is its suite's tag, then exactly this many bytes (X-Wing: ML-KEM-768 ek || X25519).
PUBLIC_KEY_LENGTHS = {KeySuite.X25519: 32, KeySuite.MLKEM768_X25519: MLKEM_EK_LENGTH + 32}


@dataclass(frozen=True)
class PublicKey:
    """A participant's published HPKE public key: ``suite tag || raw key bytes``."""

    suite: KeySuite
    key: PublicKeyObject

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        """The key ``data`` publishes; UnusableKeyError, saying why, when nothing can be wrapped
        for it: an unknown suite, a wrong length, a low-order X25519 point, an ML-KEM key whose
        coefficients are not reduced (FIPS 203's check)."""
        if not data:
            raise UnusableKeyError("the encryption public key is empty")
        try:
            suite = KeySuite(data[0])
        except ValueError:
            raise UnusableKeyError(f"the encryption public key has an unknown suite tag {data[0]}") from None
        raw = data[1:]
        if len(raw) != PUBLIC_KEY_LENGTHS[suite]:
            raise UnusableKeyError(
                f"the {suite.name} encryption public key has {len(raw)} bytes after its suite tag, "
                f"not {PUBLIC_KEY_LENGTHS[suite]}"
            )
        if is_low_order(raw[-32:]):
            what = (
                "X25519 encryption public key" if suite is KeySuite.X25519 else f"X25519 part of the {suite.name} key"
            )
            raise UnusableKeyError(
                f"the {what} is one of the low-order points of RFC 7748: every shared secret with it is zero, "
                "so a key wrapped for it would be no secret"
            )
        x_key = x25519.X25519PublicKey.from_public_bytes(raw[-32:])
        if suite is KeySuite.X25519:
            return cls(suite, x_key)
        if not _mlkem_reduced(raw[:MLKEM_EK_LENGTH]):
            raise UnusableKeyError(
                f"the ML-KEM-768 part of the {suite.name} encryption public key is malformed "
                f"(a coefficient is not below q = {MLKEM_Q}, FIPS 203 section 7.2)"
            )
        return cls(suite, hpke.MLKEM768X25519PublicKey(mlkem.MLKEM768PublicKey.from_public_bytes(raw[:-32]), x_key))


def is_low_order(x25519_public: bytes) -> bool:
    """Whether a 32-byte X25519 public key is a point of small order (RFC 7748, section 6.1):
    any encoding of one, canonical or not, with or without the top bit X25519 ignores."""
    u = int.from_bytes(x25519_public, "little") & ((1 << 255) - 1)
    return u % CURVE25519_P in LOW_ORDER_U


def _mlkem_reduced(ek: bytes) -> bool:
    """FIPS 203's modulus check of an ML-KEM-768 encapsulation key: its 768 coefficients, two
    12-bit numbers in every 3 bytes of the first 1152, are all below q (the last 32 bytes are rho)."""
    t = ek[: 3 * 384]
    return all(
        t[i] | (t[i + 1] & 0x0F) << 8 < MLKEM_Q and (t[i + 1] >> 4 | t[i + 2] << 4) < MLKEM_Q
        for i in range(0, len(t), 3)
    )


def legacy_encryption_key_typed_data(suite: KeySuite, epoch: int = 0) -> dict[str, Any]:
    """Legacy (migration only): the ``eth_signTypedData_v4`` document whose signature yielded the
    ``suite`` key of ``epoch`` under the old, phishable scheme."""
    if epoch < 0:
        raise ValueError(f"a key epoch is not negative, got {epoch}")
    return {
        "types": {name: [dict(field) for field in fields] for name, fields in _ENCRYPTION_KEY_TYPES.items()},
        "primaryType": "EncryptionKey",
        "domain": dict(ENCRYPTION_KEY_DOMAIN),
        "message": {"purpose": LEGACY_ENCRYPTION_KEY_PURPOSE, "suite": suite.name, "epoch": epoch},
    }


class EncryptionKeyPair:
    """An HPKE key pair: random (``generate``), or rebuilt from its sealed private bytes."""

    def __init__(self, suite: KeySuite, private_key: PrivateKey, public_bytes: bytes, secret: bytes) -> None:
        self.suite = suite
        self._private_key = private_key
        self._secret = secret
        self.public_bytes = public_bytes

    def __repr__(self) -> str:
        return f"EncryptionKeyPair({self.suite.name}, 0x{self.public_bytes[:9].hex()}...)"

    def open(self, sealed: bytes, info: bytes) -> bytes:
        """HPKE-decrypts ``sealed`` (a wrap or a share) with the private key; raises InvalidTag or
        ValueError when it was not sealed to this pair under ``info``. The private key never leaves."""
        return self.suite.hpke.decrypt(sealed, self._private_key, info=info)

    def private_bytes(self) -> bytes:
        """The private key, to be sealed in a key file: the X25519 scalar (32 bytes), then for
        ``MLKEM768_X25519`` the 64-byte ML-KEM-768 seed ``d || z``. Never write it in clear."""
        return self._secret

    @classmethod
    def generate(cls, suite: KeySuite = KeySuite.X25519) -> EncryptionKeyPair:
        """A fresh pair from the OS CSPRNG (``os.urandom``)."""
        return cls.from_private_bytes(os.urandom(SECRET_LENGTHS[suite]), suite)

    @classmethod
    def from_private_bytes(cls, secret: bytes, suite: KeySuite = KeySuite.X25519) -> EncryptionKeyPair:
        """The pair whose ``private_bytes`` are ``secret``."""
        if len(secret) != SECRET_LENGTHS[suite]:
            raise ValueError(f"a {suite.name} private key has {SECRET_LENGTHS[suite]} bytes, not {len(secret)}")
        x_private = x25519.X25519PrivateKey.from_private_bytes(secret[:32])
        x_public = x_private.public_key().public_bytes_raw()
        if suite is KeySuite.X25519:
            return cls(suite, x_private, bytes([suite]) + x_public, secret)
        m_private = mlkem.MLKEM768PrivateKey.from_seed_bytes(secret[32:])
        m_public = m_private.public_key().public_bytes_raw()
        hybrid = hpke.MLKEM768X25519PrivateKey(m_private, x_private)
        return cls(suite, hybrid, bytes([suite]) + m_public + x_public, secret)

    @classmethod
    def legacy_from_signature(
        cls, signature: bytes, suite: KeySuite = KeySuite.X25519, epoch: int = 0
    ) -> EncryptionKeyPair:
        """Legacy (migration only): the pair the old scheme derived from a 65-byte signature
        (r || s || v) over ``legacy_encryption_key_typed_data(suite, epoch)``.

        Wallets differ in how they spell the same signature: ``v`` may be 27/28 or 0/1, and ``s``
        may be high; both are normalised (v in 27/28, low s) before hashing.
        """
        r, s, v = normalised_signature(signature)
        return cls.derive(keccak(r + s.to_bytes(32) + bytes([v])), suite, epoch)

    @classmethod
    def derive(cls, secret: bytes, suite: KeySuite = KeySuite.X25519, epoch: int = 0) -> EncryptionKeyPair:
        """The pair HKDF expands from ``secret`` (a new ``epoch`` gives an unrelated pair): for the
        legacy scheme and test vectors. Never for a real account: its key is ``generate``d."""
        info = f"medvault/encryption-key/{suite.name}/epoch-{epoch}".encode()
        seed = HKDF(hashes.SHA256(), length=96, salt=b"medvault", info=info).derive(secret)
        return cls.from_private_bytes(seed[: SECRET_LENGTHS[suite]], suite)


SECRET_LENGTHS = {KeySuite.X25519: 32, KeySuite.MLKEM768_X25519: 96}


def normalised_signature(signature: bytes) -> tuple[bytes, int, int]:
    """(r, s, v) of a 65-byte secp256k1 signature r || s || v, spelled one way: ``v`` in 27/28
    (wallets write 27/28 or the y-parity 0/1) and ``s`` low (EIP-2), flipping ``v`` with it.
    Raises ValueError for any other length or ``v``."""
    if len(signature) != 65:
        raise ValueError(f"an Ethereum signature has 65 bytes, this one {len(signature)}")
    r, s, v = signature[:32], int.from_bytes(signature[32:64]), signature[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise ValueError(f"signature recovery id v={signature[64]} is neither 27/28 nor 0/1")
    if s > SECP256K1_N // 2:
        s, v = SECP256K1_N - s, 55 - v
    return r, s, v


def new_record_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encrypt_record(plaintext: bytes, key: bytes, context: RecordContext) -> bytes:
    """Returns ``MVR1 || nonce || AES-256-GCM(plaintext) || tag``."""
    nonce = os.urandom(NONCE_LENGTH)
    return RECORD_MAGIC + nonce + AESGCM(key).encrypt(nonce, plaintext, context.associated_data())


def decrypt_record(blob: bytes, key: bytes, context: RecordContext) -> bytes:
    header = len(RECORD_MAGIC) + NONCE_LENGTH
    if len(blob) < header + 16 or not blob.startswith(RECORD_MAGIC):
        raise IntegrityError(f"{context.describe()} is not a medvault ciphertext")
    view = memoryview(blob)  # slicing bytes would copy the whole ciphertext first
    try:
        return AESGCM(key).decrypt(view[len(RECORD_MAGIC) : header], view[header:], context.associated_data())
    except InvalidTag:
        raise DecryptionError(context.describe()) from None


def wrap_key(record_key: bytes, recipient: bytes, context: RecordContext, reader: str) -> bytes:
    """Wraps ``record_key`` to the published public key ``recipient`` of ``reader``;
    UnusableKeyError if that key cannot be used."""
    return seal_share(record_key, recipient, context.wrap_info(reader))


def seal_share(share: bytes, recipient: bytes, info: bytes) -> bytes:
    """HPKE-encrypts a 32-byte key (share) to the published public key ``recipient`` under ``info``
    (``RecordContext.escrow_info`` or ``release_info``); UnusableKeyError if that key cannot be used."""
    public = PublicKey.from_bytes(recipient)
    try:
        return public.suite.hpke.encrypt(share, public.key, info=info)
    except ValueError:  # OpenSSL's own refusal of an all-zero X25519 shared secret
        raise UnusableKeyError(
            f"the {public.suite.name} encryption public key gives an all-zero shared secret (a low-order point)"
        ) from None


def open_share(sealed: bytes, pair: EncryptionKeyPair, info: bytes, what: str) -> bytes:
    try:
        share = pair.open(sealed, info)
    except (InvalidTag, ValueError):
        raise DecryptionError(what) from None
    if len(share) != KEY_LENGTH:
        raise DecryptionError(what)
    return share


def unwrap_key(wrapped: bytes, pair: EncryptionKeyPair, context: RecordContext, reader: str) -> bytes:
    try:
        key = pair.open(wrapped, context.wrap_info(reader))
    except (InvalidTag, ValueError):
        raise DecryptionError(f"the key wrap of {context.describe()} for {reader}") from None
    if len(key) != KEY_LENGTH:
        raise DecryptionError(f"the key wrap of {context.describe()} for {reader}")
    return key
