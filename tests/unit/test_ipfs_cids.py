"""CID parsing and offline CID computation (no node needed)."""

from __future__ import annotations

import base64
import random
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medvault.cids import POINTER_PREFIXES, cid_from_bytes, cid_or_none, cid_text, cid_to_bytes, compute_cid, parse_cid
from medvault.errors import CidMismatchError, InvalidCidError
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Callable

HELLO_CID = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"  # `ipfs add --cid-version=1` of b"hello\n"


def test_compute_cid_matches_kubo_for_a_small_file() -> None:
    assert compute_cid(b"hello\n") == HELLO_CID


def test_large_payloads_get_a_dag_pb_root() -> None:
    cid = parse_cid(compute_cid(b"\x00" * (256 * 1024 + 1)))
    assert cid.codec.name == "dag-pb"


def test_binary_form_round_trips() -> None:
    raw = cid_to_bytes(HELLO_CID)

    assert len(raw) == 36
    assert cid_from_bytes(raw) == HELLO_CID


@pytest.mark.parametrize("value", ["", "not-a-cid", "bafkrei", b"\x01\x55", "Qm" + "1" * 10])
def test_malformed_cids_are_rejected_with_the_reason(value: str | bytes) -> None:
    with pytest.raises(InvalidCidError, match="not a valid CID"):
        parse_cid(value)


def test_verify_accepts_matching_bytes_and_names_the_mismatch() -> None:
    IpfsClient.verify(HELLO_CID, b"hello\n")

    with pytest.raises(CidMismatchError, match=HELLO_CID):
        IpfsClient.verify(HELLO_CID, b"hello!\n")


def _general(data: bytes) -> str:
    """What ``cid_from_bytes`` gives through multiformats alone: the text, or the refusal."""
    try:
        return str(parse_cid(data).set(base="base32"))
    except InvalidCidError as exc:
        return f"refused: {exc}"


def _fast(data: bytes) -> str:
    try:
        return cid_from_bytes(data)
    except InvalidCidError as exc:
        return f"refused: {exc}"


def test_pointers_encode_as_multiformats_encodes_them() -> None:
    rng = random.Random(11)  # noqa: S311 - test values, not secrets
    pointers = [prefix + rng.randbytes(32) for prefix in POINTER_PREFIXES for _ in range(2000)]
    pointers += [prefix + bytes([b]) * 32 for prefix in POINTER_PREFIXES for b in (0, 0xFF)]

    assert [cid_from_bytes(p) for p in pointers] == [_general(p) for p in pointers]


def test_every_other_value_gets_the_same_text_or_refusal_as_multiformats() -> None:
    rng = random.Random(12)  # noqa: S311 - test values, not secrets
    values = [b"", bytes.fromhex("1220") + rng.randbytes(32), bytes.fromhex("0155") + rng.randbytes(34)]
    values += [bytes.fromhex("01711220") + rng.randbytes(32), bytes.fromhex("01551320") + rng.randbytes(32)]
    for first in range(256):  # every version byte, at the lengths events hold (hashes, pointers)
        for length in (1, 2, 32, 34, 36, 37):
            values.append(bytes([first]) + rng.randbytes(length - 1))
    values += [rng.randbytes(32) for _ in range(2000)]
    values += [
        bytes.fromhex(v) + bytes(32) for v in ("8100", "8001", "ff8000", "ff" * 8 + "7f", "ff" * 9 + "01", "ff" * 40)
    ]

    assert [_fast(v) for v in values] == [_general(v) for v in values]


def _cid_or_none(data: bytes) -> str | None:
    text = _general(data)
    return None if text.startswith("refused: ") else text


# Prefixes that are CIDs in part: a version, a codec, a multihash code, a length, or all of them.
_PARTS = ("", "01", "0155", "015512", "01551220", "01711220", "017112", "0170", "1220", "01" + "8001", "0155" + "9001")


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(_PARTS), st.binary(max_size=40))
def test_cid_or_none_finds_exactly_the_cids_multiformats_finds(prefix: str, tail: bytes) -> None:
    """Refusing by lengths alone never refuses a CID, and everything else goes to multiformats."""
    data = bytes.fromhex(prefix) + tail
    assert cid_or_none(data) == _cid_or_none(data)


def test_cid_or_none_is_multiformats_on_the_values_events_hold() -> None:
    rng = random.Random(13)  # noqa: S311 - test values, not secrets
    values = [prefix + rng.randbytes(32) for prefix in (*POINTER_PREFIXES, bytes.fromhex("01711220"))]
    values += [bytes([1]) + rng.randbytes(32) for _ in range(500)]  # registered keys: suite byte, key
    values += [rng.randbytes(n) for n in (0, 1, 20, 32, 33, 34, 36) for _ in range(300)]
    values += [bytes.fromhex("01551220") + rng.randbytes(n) for n in (31, 32, 33)]

    assert [cid_or_none(v) for v in values] == [_cid_or_none(v) for v in values]
    assert sum(cid_or_none(v) is not None for v in values) == len(POINTER_PREFIXES) + 2  # the CIDs among them


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=36, max_size=36), st.sampled_from((*POINTER_PREFIXES, bytes.fromhex("01711220"), b"")))
def test_cid_text_is_parse_cid_text(tail: bytes, prefix: bytes) -> None:
    """Pointer-shaped base32 text takes the direct path; both paths give the same text or refuse alike."""
    text = "b" + base64.b32encode((prefix + tail)[:36]).decode().lower().rstrip("=")
    for candidate in (text, text[:-1] + "1", text.upper(), "z" + text[1:]):
        assert _outcome(cid_text, candidate) == _outcome(lambda c: str(parse_cid(c)), candidate)


def _outcome(convert: Callable[[str], str], cid: str) -> str:
    try:
        return convert(cid)
    except InvalidCidError as exc:
        return f"refused: {exc.reason}"
