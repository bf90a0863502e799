"""Ethereum addresses as people and wallets write them: one parser for every input.

Wallets hand out addresses in lower case (``eth_requestAccounts``), people paste checksummed
ones (EIP-55 mixed case), some tools print them in upper case. All three are accepted; mixed
case is a checksum and must match, so a mistyped letter is caught instead of sending to the
wrong party.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

__all__ = ["looks_like_address", "parse_address"]

_HEX = frozenset(string.hexdigits)


def looks_like_address(text: str) -> bool:
    """Whether ``text`` is meant as an address (``0x...``) rather than an account name."""
    return text[:2] in ("0x", "0X")


def parse_address(text: object, what: str = "address") -> ChecksumAddress:
    """``text`` as a checksum address: 0x and 40 hex digits, in lower, upper or EIP-55 mixed
    case (then the checksum must hold). Raises ConfigurationError naming ``what`` otherwise."""
    if not isinstance(text, str) or not looks_like_address(text):
        raise ConfigurationError(f"{what} {text!r} is not an address: an address is 0x and 40 hex digits")
    body = text[2:]
    if len(body) != 40 or not _HEX.issuperset(body):
        raise ConfigurationError(
            f"{what} {text!r} is not an address: an address is 0x and 40 hex digits, this has {len(body)} characters"
            + ("" if _HEX.issuperset(body) else " with some not hex")
        )
    address = to_checksum_address("0x" + body)
    if body not in (body.lower(), body.upper()) and "0x" + body != address:
        raise ConfigurationError(
            f"{what} {text} fails its EIP-55 checksum (the mixed case does not match): a character is "
            "mistyped or was changed; copy it again from its source"
        )
    return address
