"""The record plaintext: a one-line JSON header, a newline, then the payload bytes.

The header is ``{"contentType":...,"name":...}`` in compact JSON (ASCII, keys in that order);
the payload follows the first newline untouched, so any bytes (FHIR JSON, a PDF, an image) fit.
The whole envelope is what ``crypto.encrypt_record`` seals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from medvault.errors import IntegrityError

__all__ = ["Envelope", "pack", "unpack"]


@dataclass(frozen=True)
class Envelope:
    content_type: str
    name: str
    body: bytes


def pack(body: bytes, content_type: str, name: str = "") -> bytes:
    """The plaintext to seal for ``body``."""
    header = json.dumps({"contentType": content_type, "name": name}, separators=(",", ":"))
    return header.encode() + b"\n" + body


def unpack(plaintext: bytes) -> Envelope:
    """The header and payload of a decrypted record."""
    header, newline, body = plaintext.partition(b"\n")
    try:
        meta = json.loads(header)
    except ValueError:
        meta = None
    if not newline or not isinstance(meta, dict) or not isinstance(meta.get("contentType"), str):
        raise IntegrityError("the record's plaintext has no medvault header line")
    return Envelope(meta["contentType"], str(meta.get("name", "")), body)
