"""Values as people read them: times in UTC, categories and purposes in words, durations in
days, accounts by the name the home knows them by, request ids in hex, and free text with its
control characters escaped (so an event's author cannot forge lines or rewrite a terminal).

Every printed refusal (:mod:`medvault.chain.refusals`) and audit line uses these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from eth_utils.address import is_address, to_checksum_address

from medvault.model import Category, Purpose, categories_of

__all__ = [
    "Names", "categories", "duration", "name_book", "printable", "purpose", "request_id", "study", "utc", "who",
]  # fmt: skip

Names = Callable[[str], str | None]
"""Looks up the name the home knows an address by (None if it knows none)."""


def utc(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(int(timestamp), dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def categories(mask: int) -> str:
    """A scope bitmask in words: ``laboratory, imaging``, ``all categories``, or what is wrong with it."""
    mask = int(mask)
    known = sorted(categories_of(mask))
    unknown = [bit for bit in range(8) if mask >> bit & 1 and bit >= len(Category)]
    if not known and not unknown:
        return "no category"
    if len(known) == len(Category) and not unknown:
        return "all categories"
    words = [c.name.lower() for c in known] + [f"unknown category {bit}" for bit in unknown]
    return ", ".join(words)


def purpose(code: int) -> str:
    try:
        p = Purpose(int(code))
    except ValueError:
        return f"unknown purpose {int(code)} (one of: {', '.join(p.name for p in Purpose)})"
    return f"{p.display} ({p.name})"


def duration(seconds: int) -> str:
    seconds = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = f"{seconds / size:.2f}".rstrip("0").rstrip(".")  # never in exponent form (1e+06 days)
            return f"{n} {unit}{'s' * (n != '1')}"
    return f"{seconds} second{'s' * (seconds != 1)}"


def request_id(value: int | str) -> str:
    """A research request id, always as 0x-hex (as `access list` and `audit` both print it)."""
    return hex(int(value, 16) if isinstance(value, str) else int(value))


def study(value: bytes | str) -> str:
    """A study id (bytes32): its label if it is one, else its hex."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    label = raw.rstrip(b"\0").decode(errors="replace")
    return printable(label) if label and "\ufffd" not in label else "0x" + raw.hex()


def name_book(addresses: Mapping[str, str]) -> Names:
    """A lookup of names by address, from a mapping of name to address (a keystore's)."""
    by_address = {address.lower(): name for name, address in addresses.items()}
    return lambda address: by_address.get(str(address).lower())


def who(address: object, names: Names | None = None) -> str:
    """An address as ``name (0x1234..abcd)`` when the home knows it, else in full."""
    text = str(address)
    if not is_address(text):
        return printable(text)
    checksum = to_checksum_address(text)
    if int(checksum, 16) == 0:
        return "the zero address"
    name = names(checksum) if names else None
    return f"{printable(name)} ({checksum[:6]}..{checksum[-4:]})" if name else checksum


def printable(value: object) -> str:
    """``value`` as one line of plain text, its control characters (newlines, ANSI escapes) escaped."""
    text = str(value)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
