"""ABI decoding of event logs, word by word, for the types medvault's events use.

eth_abi decodes any ABI type through a tree of decoder objects, tens of microseconds a value;
an index sync decodes tens of thousands of logs. Here each 32-byte word is read directly for
the elementary types (``address``, ``bool``, ``uintN``, ``intN``, ``bytesN``) and ``bytes`` /
``string``, held to eth_abi's strict rules (zero padding, pointers and lengths inside the data,
booleans 0 or 1), so that what it refuses is refused here too. Any other type (arrays, tuples)
returns None, for eth_abi to decode.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["decode_words"]

_ELEMENTARY = re.compile(r"address|bool|u?int(\d*)|bytes(\d*)|string")


def decode_words(types: tuple[str, ...], data: bytes) -> tuple[Any, ...] | None:
    """The values of ``types`` ABI-encoded in ``data`` (addresses as lowercase hex), ValueError
    if ``data`` is not a strict encoding of them; None if a type is not one decoded here."""
    kinds = [_ELEMENTARY.fullmatch(t) for t in types]
    if not all(kinds):
        return None
    if len(data) < 32 * len(types):
        raise ValueError(f"{len(data)} bytes hold no {len(types)} ABI words")
    values: list[Any] = []
    for position, (kind, match) in enumerate(zip(types, kinds, strict=True)):
        word = data[32 * position : 32 * position + 32]
        if kind in ("bytes", "string"):
            values.append(_dynamic(kind, word, data))
        else:
            assert match is not None
            values.append(_static(kind, match, word))
    return tuple(values)


def _static(kind: str, match: re.Match[str], word: bytes) -> Any:
    if kind == "address":
        _zero(word[:12], kind)
        return "0x" + word[12:].hex()
    if kind == "bool":
        _zero(word[:31], kind)
        if word[31] > 1:
            raise ValueError(f"a bool word ends in {word[31]}")
        return word[31] == 1
    if kind.startswith("bytes"):
        size = int(match.group(2))
        if not 1 <= size <= 32:
            raise ValueError(f"no ABI type {kind}")
        _zero(word[size:], kind)
        return word[:size]
    bits = int(match.group(1) or 256)
    if bits % 8 or not 8 <= bits <= 256:
        raise ValueError(f"no ABI type {kind}")
    if kind.startswith("uint"):
        _zero(word[: 32 - bits // 8], kind)
        return int.from_bytes(word, "big")
    value = int.from_bytes(word, "big", signed=True)
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueError(f"{value} overflows {kind}")
    return value


def _dynamic(kind: str, word: bytes, data: bytes) -> bytes | str:
    offset = int.from_bytes(word, "big")
    if offset + 32 > len(data):
        raise ValueError(f"a {kind} pointer {offset} runs past the {len(data)} bytes of data")
    length = int.from_bytes(data[offset : offset + 32], "big")
    start, end = offset + 32, offset + 32 + length
    padded = start + -(-length // 32) * 32
    if padded > len(data):
        raise ValueError(f"a {kind} of {length} bytes runs past the {len(data)} bytes of data")
    _zero(data[end:padded], kind)
    value = data[start:end]
    return value.decode("utf-8") if kind == "string" else value


def _zero(padding: bytes, kind: str) -> None:
    if padding.strip(b"\0"):
        raise ValueError(f"the padding of a {kind} word is not zero")
