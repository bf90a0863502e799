"""t-of-n escrow of record keys: any t shares rebuild the key, fewer say nothing about it."""

from __future__ import annotations

import itertools
import os

import pytest
from Crypto.Protocol.SecretSharing import _Element

from medvault.escrow import HALF, combine_key, split_key


def _interpolate(points: list[tuple[int, bytes]], at: int) -> bytes:
    """The value at ``at`` of the polynomial over GF(2^128) through ``points`` (16-byte values)."""
    total = _Element(0)
    for i, (xi, yi) in enumerate(points):
        term = _Element(yi)
        for j, (xj, _) in enumerate(points):
            if i != j:
                # In characteristic 2, subtraction is addition.
                term = term * (_Element(at) + _Element(xj)) * (_Element(xi) + _Element(xj)).inverse()
        total = total + term
    return bytes(total.encode())


def _completion(known: list[tuple[int, bytes]], candidate: bytes, x: int) -> tuple[int, bytes]:
    """The share at ``x`` that, with ``known``, makes a valid share set whose secret is ``candidate``:
    the polynomial through (0, candidate) and the known shares, half by half."""
    halves = []
    for half in (slice(0, HALF), slice(HALF, 2 * HALF)):
        points = [(0, candidate[half]), *((xi, share[half]) for xi, share in known)]
        halves.append(_interpolate(points, x))
    return x, halves[0] + halves[1]


@pytest.mark.parametrize(("threshold", "count"), [(1, 1), (1, 3), (2, 2), (2, 3), (3, 5), (5, 5)])
def test_any_threshold_shares_recover_the_key(threshold: int, count: int) -> None:
    key = os.urandom(32)
    shares = split_key(key, threshold, count)
    assert [x for x, _ in shares] == list(range(1, count + 1))
    assert all(len(share) == 32 for _, share in shares)
    for subset in itertools.combinations(shares, threshold):
        assert combine_key(list(subset)) == key
    assert combine_key(shares) == key  # more than enough works too


@pytest.mark.parametrize(("threshold", "count"), [(2, 3), (3, 5)])
def test_fewer_than_threshold_shares_are_consistent_with_every_key(threshold: int, count: int) -> None:
    """t-1 colluding keepers learn nothing: for ANY candidate key there is a valid share set
    containing exactly the shares they hold that rebuilds that candidate."""
    key = os.urandom(32)
    shares = split_key(key, threshold, count)
    known = shares[: threshold - 1]
    for candidate in (key, os.urandom(32), bytes(32), b"\xff" * 32):
        missing = [_completion(known, candidate, x) for x in range(threshold, count + 1)]
        completed = known + missing
        for subset in itertools.combinations(completed, threshold):
            assert combine_key(list(subset)) == candidate
    # And the real completion is among them: the known shares fix nothing by themselves.
    assert _completion(known, key, threshold) == shares[threshold - 1]


def test_fewer_than_threshold_shares_give_a_wrong_key() -> None:
    key = os.urandom(32)
    shares = split_key(key, 3, 5)
    assert combine_key(shares[:2]) != key


def test_wrong_or_duplicate_shares_fail() -> None:
    key = os.urandom(32)
    shares = split_key(key, 2, 3)
    other = split_key(os.urandom(32), 2, 3)
    assert combine_key([shares[0], other[1]]) != key  # a share of another key
    x, share = shares[1]
    tampered = (x, bytes([share[0] ^ 1]) + share[1:])
    assert combine_key([shares[0], tampered]) != key
    assert combine_key([shares[0], (3, shares[1][1])]) != key  # a share under the wrong x
    with pytest.raises(ValueError, match="duplicate"):
        combine_key([shares[0], shares[0]])
    with pytest.raises(ValueError, match="malformed"):
        combine_key([shares[0], (x, share[:16])])
    with pytest.raises(ValueError, match="no key shares"):
        combine_key([])


def test_split_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        split_key(b"short", 2, 3)
    for threshold, count in ((0, 3), (4, 3), (2, 256)):
        with pytest.raises(ValueError, match="threshold"):
            split_key(os.urandom(32), threshold, count)


def test_shares_are_fresh_each_time() -> None:
    key = os.urandom(32)
    assert split_key(key, 2, 3) != split_key(key, 2, 3)
