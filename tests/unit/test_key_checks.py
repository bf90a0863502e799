"""Published keys no record key may be wrapped for: every low-order X25519 encoding (RFC 7748),
wrong lengths and unreduced ML-KEM keys, in both suites; and keys that are fine pass."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from medvault.crypto import (
    CURVE25519_P,
    LOW_ORDER_U,
    EncryptionKeyPair,
    KeySuite,
    PublicKey,
    RecordContext,
    is_low_order,
    seal_share,
    wrap_key,
)
from medvault.errors import UnusableKeyError

CONTEXT = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, 0)
READER = "0x" + "44" * 20
TOP_BIT = 1 << 255

# Every 32-byte encoding of a low-order point: the five u-coordinates, 0 and 1 also as u + p
# (non-canonical), and each of these with the top bit set (X25519 ignores it): 14 in all.
LOW_ORDER = sorted(
    {u + twin + top for u in LOW_ORDER_U for twin in (0, CURVE25519_P) for top in (0, TOP_BIT) if u + twin < TOP_BIT}
)


def encoding(u: int) -> bytes:
    return u.to_bytes(32, "little")


def hybrid_with(x_part: bytes) -> bytes:
    """A post-quantum key whose ML-KEM part is sound and whose X25519 part is ``x_part``."""
    good = EncryptionKeyPair.generate(KeySuite.MLKEM768_X25519).public_bytes
    return good[:-32] + x_part


def test_the_low_order_list_has_every_encoding_and_each_gives_a_zero_secret() -> None:
    assert len(LOW_ORDER) == 14
    for u in LOW_ORDER:
        peer = x25519.X25519PublicKey.from_public_bytes(encoding(u))
        with pytest.raises(ValueError, match="shared key"):  # OpenSSL: the shared secret is all zero
            x25519.X25519PrivateKey.generate().exchange(peer)


@pytest.mark.parametrize("u", LOW_ORDER, ids=lambda u: f"u={u:#x}"[:22])
def test_a_low_order_x25519_key_is_refused_with_its_reason(u: int) -> None:
    data = bytes([KeySuite.X25519]) + encoding(u)
    assert is_low_order(encoding(u))
    with pytest.raises(UnusableKeyError, match="low-order point"):
        PublicKey.from_bytes(data)
    with pytest.raises(UnusableKeyError, match="low-order point"):
        wrap_key(bytes(32), data, CONTEXT, READER)


@pytest.mark.parametrize("u", LOW_ORDER, ids=lambda u: f"u={u:#x}"[:22])
def test_a_post_quantum_key_with_a_low_order_x25519_part_is_refused(u: int) -> None:
    with pytest.raises(
        UnusableKeyError, match="the X25519 part of the MLKEM768_X25519 key is one of the low-order points"
    ):
        seal_share(bytes(32), hybrid_with(encoding(u)), b"info")


def test_generated_keys_and_points_near_the_low_order_ones_are_usable() -> None:
    for suite in KeySuite:
        public = EncryptionKeyPair.generate(suite).public_bytes
        assert PublicKey.from_bytes(public).suite is suite
        assert len(wrap_key(bytes(32), public, CONTEXT, READER)) in (80, 1168)
    for u in (2, 9, CURVE25519_P - 2):
        assert not is_low_order(encoding(u))


GOOD_HYBRID = EncryptionKeyPair.derive(b"\x05" * 32, KeySuite.MLKEM768_X25519).public_bytes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "is empty", id="empty"),
        pytest.param(b"\x00" + bytes(32), "unknown suite tag 0", id="tag-0"),
        pytest.param(b"\x03" + bytes(1216), "unknown suite tag 3", id="tag-3"),
        pytest.param(b"\x01", "has 0 bytes after its suite tag, not 32", id="x25519-tag-only"),
        pytest.param(
            b"\x01" + b"\x09" * 31,
            "X25519 encryption public key has 31 bytes after its suite tag, not 32",
            id="x25519-short",
        ),
        pytest.param(b"\x01" + b"\x09" * 33, "has 33 bytes", id="x25519-long"),
        pytest.param(b"\x01" + GOOD_HYBRID[1:], "has 1216 bytes", id="hybrid-key-tagged-x25519"),
        pytest.param(
            b"\x02",
            "MLKEM768_X25519 encryption public key has 0 bytes after its suite tag, not 1216",
            id="hybrid-tag-only",
        ),
        pytest.param(GOOD_HYBRID[:-1], "has 1215 bytes", id="hybrid-short"),
        pytest.param(GOOD_HYBRID + b"\x00", "has 1217 bytes", id="hybrid-long"),
        pytest.param(GOOD_HYBRID[:33], "has 32 bytes", id="x25519-key-tagged-hybrid"),
        pytest.param(b"\x02" + b"\xff" * 1184 + GOOD_HYBRID[-32:], "not below q = 3329", id="mlkem-unreduced"),
        pytest.param(GOOD_HYBRID[:1] + b"\x01\x0d" + GOOD_HYBRID[3:], "not below q", id="mlkem-coefficient-q"),
        pytest.param(GOOD_HYBRID[:-32] + bytes(32), "low-order", id="hybrid-x25519-zero"),
    ],
)
def test_malformed_keys_are_refused_with_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(UnusableKeyError, match=message):
        PublicKey.from_bytes(data)
    with pytest.raises(UnusableKeyError, match=message):
        wrap_key(bytes(32), data, CONTEXT, READER)
