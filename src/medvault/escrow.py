"""t-of-n escrow of a record key among key-release keepers (Shamir secret sharing).

A 32-byte record key is split into ``count`` shares, any ``threshold`` of which rebuild it;
fewer than ``threshold`` shares are consistent with every possible key, so that many keepers,
colluding, learn nothing about it. PyCryptodome's ``Shamir`` works in GF(2^128) on 16-byte
secrets: the two halves of the key are shared separately with the same x-coordinates (1 to
``count``), and a share is the two 16-byte y-values side by side.

Shares carry no integrity check: wrong shares combine into a wrong key, which the record's
AES-GCM tag then rejects (``decrypt_record`` raises ``DecryptionError``).
"""

from __future__ import annotations

from Crypto.Protocol.SecretSharing import Shamir

__all__ = ["HALF", "KEY_LENGTH", "combine_key", "split_key"]

KEY_LENGTH = 32
HALF = 16
MAX_SHARES = 255


def split_key(key: bytes, threshold: int, count: int) -> list[tuple[int, bytes]]:
    """``count`` shares ``(x, 32-byte share)`` of ``key``, any ``threshold`` of which rebuild it."""
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a record key has {KEY_LENGTH} bytes, this one {len(key)}")
    if not 1 <= threshold <= count <= MAX_SHARES:
        raise ValueError(f"need 1 <= threshold <= count <= {MAX_SHARES}, got threshold {threshold} of {count}")
    if threshold == 1:
        # A degree-0 polynomial: every share is the key itself (PyCryptodome needs k >= 2).
        return [(x, key) for x in range(1, count + 1)]
    low = Shamir.split(threshold, count, key[:HALF], ssss=False)
    high = Shamir.split(threshold, count, key[HALF:], ssss=False)
    return [(x, a + b) for (x, a), (x2, b) in zip(low, high, strict=True) if x == x2]


def combine_key(shares: list[tuple[int, bytes]]) -> bytes:
    """The key from ``threshold`` (or more) distinct shares.

    Raises ValueError for no shares, malformed or duplicate ones; shares from another split, or
    too few of them, give a wrong key (which decryption then rejects).
    """
    if not shares:
        raise ValueError("no key shares")
    xs = [x for x, _ in shares]
    if len(set(xs)) != len(xs):
        raise ValueError(f"duplicate key shares (x = {sorted(xs)})")
    for x, share in shares:
        if not 1 <= x <= MAX_SHARES or len(share) != KEY_LENGTH:
            raise ValueError(f"malformed key share (x = {x}, {len(share)} bytes)")
    if len(shares) == 1:
        return shares[0][1]
    low = Shamir.combine([(x, s[:HALF]) for x, s in shares], ssss=False)
    high = Shamir.combine([(x, s[HALF:]) for x, s in shares], ssss=False)
    return bytes(low + high)
