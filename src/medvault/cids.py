"""CIDs: parsed and checked, converted between text and the binary form the chain stores, and
computed offline exactly as ``IpfsClient.add`` makes them.

Parsing goes through multiformats (about 0.3 ms a CID); the pointers medvault writes, a fixed
shape, are encoded, decoded and refused directly in microseconds, with the same text and the
same reasons (tests/unit/test_ipfs_cids.py holds the two paths to each other).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools

from aleph_cid import CidHasher
from multiformats import CID

from medvault.errors import InvalidCidError

__all__ = [
    "ADD_PARAMS",
    "POINTER_LENGTH",
    "POINTER_PREFIXES",
    "cid_from_bytes",
    "cid_or_none",
    "cid_text",
    "cid_to_bytes",
    "compute_cid",
    "parse_cid",
]

# How content is added; compute_cid must reproduce exactly this layout.
ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "hash": "sha2-256", "chunker": "size-262144"}


def parse_cid(value: str | bytes) -> CID:
    """Parses a CID string or binary CID, raising InvalidCidError with the reason."""
    return _parse_text(value) if isinstance(value, str) else _parse(value)


@functools.lru_cache(maxsize=4096)  # CIDs are immutable, and one read parses its CID several times
def _parse_text(value: str) -> CID:
    return _parse(value)


def _parse(value: str | bytes) -> CID:
    try:
        cid = CID.decode(value)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCidError(value, str(exc) or type(exc).__name__) from None
    if cid.hashfun.name != "sha2-256":
        raise InvalidCidError(value, f"hash function {cid.hashfun.name} is not supported, only sha2-256")
    return cid


# The binary CIDs the contracts take as pointers (contracts/libraries/Cids.sol), all that ``add``
# makes: CIDv1, raw or dag-pb, a 32-byte sha2-256 digest.
POINTER_PREFIXES = (bytes.fromhex("01551220"), bytes.fromhex("01701220"))
POINTER_LENGTH = 36
POINTER_TEXT_LENGTH = 58  # its base32 characters, unpadded


def cid_text(cid: str) -> str:
    """``cid`` checked and as the node is asked for it: medvault's own pointers in base32 as
    they are (checked directly, µs), any other through ``parse_cid`` (about a millisecond)."""
    if len(cid) == 1 + POINTER_TEXT_LENGTH and cid[0] == "b":
        with contextlib.suppress(binascii.Error):
            raw = base64.b32decode(cid[1:].upper() + "======")
            if raw[:4] in POINTER_PREFIXES and cid_from_bytes(raw) == cid:
                return cid
    return str(parse_cid(cid))


def cid_to_bytes(cid: str | bytes) -> bytes:
    """The binary form stored on chain; InvalidCidError for a CID the contracts would refuse."""
    parsed = parse_cid(cid)
    binary = bytes(parsed)
    if len(binary) != POINTER_LENGTH or binary[:4] not in POINTER_PREFIXES:
        digest = f"{len(parsed.raw_digest)}-byte {parsed.hashfun.name} digest"
        raise InvalidCidError(
            cid,
            f"CIDv{parsed.version} {parsed.codec.name} with a {digest}; the contracts accept only CIDv1, "
            "raw or dag-pb, with a 32-byte sha2-256 digest",
        )
    return binary


def cid_from_bytes(data: bytes) -> str:
    """The base32 text of a binary CID; InvalidCidError, with ``parse_cid``'s reason, if it is none.

    The pointers medvault stores and the hashes beside them in events are encoded or refused
    directly (a few µs against multiformats' ~280 µs); any other input takes ``parse_cid``, and
    both give the same text and the same reasons (tests/unit/test_ipfs_cids.py)."""
    if len(data) == POINTER_LENGTH and data[:4] in POINTER_PREFIXES:
        return "b" + base64.b32encode(data).decode("ascii").lower().rstrip("=")
    if not data:  # an empty pointer (a grant that shares no keys)
        raise InvalidCidError(data, "Varints must be at least 1 byte long.")
    version = _version(data)
    if version is not None and version != 1 and not (len(data) == 34 and data[:2] == b"\x12\x20"):
        # A version varint that is neither 1 nor CIDv0's multihash prefix: never a CID.
        reason = {0: "CIDv0 is malformed.", 2: _RESERVED, 3: _RESERVED}.get(
            version, f"CIDv{version} is currently not supported."
        )
        raise InvalidCidError(data, reason)
    return str(parse_cid(data).set(base="base32"))


_RESERVED = "CID versions 2 and 3 are reserved for future use."


def cid_or_none(data: bytes) -> str | None:
    """What ``cid_from_bytes`` gives ``data``, or None where it refuses: without building a
    refusal for bytes that cannot be a CID by their lengths alone (the hashes and keys beside
    CIDs in events, which an index sync meets by the ten thousand)."""
    if not _may_be_cid(data):
        return None
    try:
        return cid_from_bytes(data)
    except InvalidCidError:
        return None


def _may_be_cid(data: bytes) -> bool:
    """False only for bytes no CID can be: not CIDv0's multihash, and not a version-1 varint, a
    codec, a multihash code and a digest length followed by exactly that many bytes."""
    if (len(data) == POINTER_LENGTH and data[:4] in POINTER_PREFIXES) or (len(data) == 34 and data[:2] == b"\x12\x20"):
        return True
    fields, position = [], 0
    for _ in range(4):  # version, codec, multihash code, digest length: varints
        value, shift = 0, 0
        while True:
            if position == len(data) or shift > 63:
                return False
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        fields.append(value)
    return fields[0] == 1 and len(data) - position == fields[3]


def _version(data: bytes) -> int | None:
    """The varint ``data`` starts with, if it is minimally encoded in at most 9 bytes (else None:
    multiformats words that refusal itself)."""
    value = 0
    for position, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << (7 * position)
        if byte < 0x80:
            return value if position == 0 or byte else None
    return None


def compute_cid(data: bytes) -> str:
    """The CID ``IpfsClient.add`` gives ``data``, computed offline."""
    hasher = CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    return str(hasher.finalize())
