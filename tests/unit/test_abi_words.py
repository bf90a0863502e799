"""The word-by-word log decoder gives eth_abi's values for every encoding of medvault's types,
and refuses what eth_abi's strict decoder refuses."""

from __future__ import annotations

import pytest
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from medvault.chain.words import decode_words
from medvault.formats.recordhash import record_hash

TYPES = ("address", "bool", "uint8", "uint64", "uint256", "int64", "bytes32", "bytes4", "bytes", "string")


def _value(kind: str) -> st.SearchStrategy[object]:
    if kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if kind == "bool":
        return st.booleans()
    if kind.startswith("uint"):
        return st.integers(0, (1 << int(kind[4:])) - 1)
    if kind.startswith("int"):
        bits = int(kind[3:])
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if kind == "bytes":
        return st.binary(max_size=100)
    if kind == "string":
        return st.text(max_size=40)
    return st.binary(min_size=int(kind[5:]), max_size=int(kind[5:]))


signatures = st.lists(st.sampled_from(TYPES), min_size=1, max_size=6).map(tuple)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_decodes_what_eth_abi_encodes(data: st.DataObject) -> None:
    types = data.draw(signatures)
    values = [data.draw(_value(t)) for t in types]
    encoded = abi_encode(list(types), values)
    assert decode_words(types, encoded) == abi_decode(list(types), encoded)


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_refuses_what_eth_abi_refuses(data: st.DataObject) -> None:
    """Encodings with bytes flipped or cut: each decoder either refuses or gives the same values."""
    types = data.draw(signatures)
    encoded = bytearray(abi_encode(list(types), [data.draw(_value(t)) for t in types]))
    for _ in range(data.draw(st.integers(1, 3))):
        encoded[data.draw(st.integers(0, len(encoded) - 1))] = data.draw(st.integers(0, 255))
    blob = bytes(encoded[: data.draw(st.integers(0, len(encoded)))])
    try:
        expected = abi_decode(list(types), blob)
    except Exception:
        with pytest.raises((ValueError, UnicodeDecodeError)):
            decode_words(types, blob)
    else:
        assert decode_words(types, blob) == expected


def test_leaves_other_types_to_eth_abi() -> None:
    assert decode_words(("address[]",), bytes(64)) is None
    assert decode_words(("uint256", "(uint8,bool)"), bytes(96)) is None


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=20, max_size=20),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, 255),
    st.binary(max_size=40),
)
def test_record_hash_is_the_abi_encoding(previous: bytes, who: bytes, number: int, category: int, cid: bytes) -> None:
    address = to_checksum_address(who)
    types = ["bytes32", "address", "uint64", "address", "uint64", "uint8", "uint64", "bytes32", "bytes32", "bytes32"]
    fields = [previous, address, number, address, number, category, number, previous, keccak(cid), keccak(b"k")]
    expected = keccak(abi_encode(types, fields))
    assert record_hash(previous, address, number, address, number, category, number, previous, cid, b"k") == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("index", -1), ("index", 1 << 64), ("category", 256), ("seq", True), ("patient", "0x1234"), ("previous", b"x")],
)
def test_record_hash_refuses_what_abi_encoding_refuses(field: str, value: object) -> None:
    args: dict[str, object] = {
        "previous": bytes(32), "patient": "0x" + "11" * 20, "index": 0, "author": "0x" + "22" * 20, "seq": 0,
        "category": 1, "timestamp": 0, "content_hash": bytes(32), "cid": b"c", "keys_cid": b"k",
    }  # fmt: skip
    args[field] = value
    with pytest.raises(ValueError):  # noqa: PT011 - each refusal names its value
        record_hash(**args)  # type: ignore[arg-type]
