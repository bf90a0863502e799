"""Key bundles: who can unwrap a record's key, as one JSON document in IPFS.

A bundle belongs to one patient of one deployment and holds HPKE wraps of record keys, each for
one reader of one record (``wraps``; a record is named by its author and the author's sequence
number in the patient's log, as ``RecordAdded`` emits them), and, for a bundle written with a new record while the
patient has keepers, the record key split t-of-n among them (``escrow``)::

    {"format": "medvault/key-bundle/v2", "chainId": 31337, "registry": "0x…", "patient": "0x…",
     "suite": "X25519",
     "wraps": [{"author": "0x…", "seq": 0, "reader": "0x…", "wrap": "<base64>"}, …],
     "escrow": {"threshold": 2, "shares": [{"keeper": "0x…", "x": 1, "wrap": "<base64>"}, …]},
     "escrows": [{"index": 0, "threshold": 2, "shares": […]}, …]}

Compact JSON (no spaces), keys in that order, addresses EIP-55 (read without regard to case),
wraps in standard base64. A record's own bundle (``keysCid`` of ``RecordAdded``) wraps that
record's key; bundles announced with ``KeysShared`` (grants, ``shareKeys``, key rotations) wrap
keys of existing records. A re-escrow bundle (named by ``KeepersChosen``/``keepersOf`` when a
patient changes keepers) has ``escrows``: each existing record's key split afresh for the new
keepers, which then serve that record from it rather than from the record's own bundle.
A bundle is parsed once per read (``KeyBundle.parse``) and queried from then on.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medvault.crypto import seal_share, wrap_key
from medvault.errors import IntegrityError
from medvault.escrow import split_key

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from medvault.crypto import RecordContext

__all__ = ["FORMAT", "Escrow", "EscrowShare", "KeyBundle", "Wrap", "escrow_key", "served_escrow", "wrap_for"]

FORMAT = "medvault/key-bundle/v2"


@dataclass(frozen=True)
class Wrap:
    """The key of record ``seq`` by ``author``, HPKE-wrapped for ``reader`` (``crypto.wrap_key``)."""

    author: str
    seq: int
    reader: str
    wrap: bytes


@dataclass(frozen=True)
class EscrowShare:
    """Share ``x`` of a record key, HPKE-sealed to ``keeper`` (``crypto.seal_share``)."""

    keeper: str
    x: int
    wrap: bytes


@dataclass(frozen=True)
class Escrow:
    threshold: int
    shares: tuple[EscrowShare, ...]

    def share_of(self, keeper: str) -> EscrowShare | None:
        return next((s for s in self.shares if s.keeper.lower() == keeper.lower()), None)


@dataclass(frozen=True)
class KeyBundle:
    chain_id: int
    registry: str
    patient: str
    suite: str
    wraps: tuple[Wrap, ...]
    escrow: Escrow | None = None
    escrows: tuple[tuple[int, Escrow], ...] = ()  # (record index, its key's escrow): a re-escrow

    def escrow_of(self, index: int) -> Escrow | None:
        """The re-escrow of record ``index``'s key in this bundle, if it has one."""
        return next((e for i, e in self.escrows if i == index), None)

    def wraps_for(self, reader: str, author: str, seq: int) -> list[bytes]:
        """Every wrap for ``reader`` of the key of record ``seq`` by ``author``, in bundle order."""
        reader, author = reader.lower(), author.lower()
        return [
            w.wrap for w in self.wraps if w.seq == seq and w.author.lower() == author and w.reader.lower() == reader
        ]

    def to_bytes(self) -> bytes:
        document: dict[str, Any] = {
            "format": FORMAT,
            "chainId": self.chain_id,
            "registry": self.registry,
            "patient": self.patient,
            "suite": self.suite,
            "wraps": [{"author": w.author, "seq": w.seq, "reader": w.reader, "wrap": _b64(w.wrap)} for w in self.wraps],
        }
        if self.escrow is not None:
            document["escrow"] = _escrow_doc(self.escrow)
        if self.escrows:
            document["escrows"] = [{"index": i, **_escrow_doc(e)} for i, e in self.escrows]
        return json.dumps(document, separators=(",", ":")).encode()

    @classmethod
    def parse(cls, data: bytes, *, patient: str, name: str = "key bundle") -> KeyBundle:
        """The bundle in ``data``, if it is a medvault key bundle for ``patient``; ``name`` (its
        CID, say) is what an IntegrityError calls it.

        The document's shape is required (format, patient, chainId, registry, suite, a list of
        wraps); within it, a wrap or an escrow share that is malformed is left out rather than
        failing the whole bundle, so one bad item cannot keep the other readers from theirs.
        """
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        if (
            not isinstance(doc, dict)
            or doc.get("format") != FORMAT
            or not isinstance(doc.get("patient"), str)
            or doc["patient"].lower() != patient.lower()
            or not _is_int(doc.get("chainId"))
            or not isinstance(doc.get("registry"), str)
            or not isinstance(doc.get("suite"), str)
            or not isinstance(doc.get("wraps"), list)
        ):
            raise IntegrityError(f"{name} is not a medvault key bundle for {patient}")
        wraps = tuple(
            Wrap(w["author"], w["seq"], w["reader"], wrap)
            for w in doc["wraps"]
            if isinstance(w, dict) and isinstance(w.get("author"), str) and _is_int(w.get("seq"))
            if isinstance(w.get("reader"), str)
            if (wrap := _unb64(w.get("wrap"))) is not None
        )
        escrows = tuple(
            (e["index"], escrow)
            for e in (doc["escrows"] if isinstance(doc.get("escrows"), list) else [])
            if isinstance(e, dict) and _is_int(e.get("index"))
            if (escrow := _parse_escrow(e)) is not None
        )
        return cls(
            doc["chainId"], doc["registry"], patient, doc["suite"], wraps, _parse_escrow(doc.get("escrow")), escrows
        )


def served_escrow(index: int, reescrow: KeyBundle | None, own: Callable[[], KeyBundle]) -> Escrow | None:
    """Record ``index``'s escrow as keepers serve it and readers ask for it: the entry of the
    keeper set's re-escrow bundle (``reescrow``) if it has one, else the record's own bundle's
    (``own`` is read only then)."""
    escrow = reescrow.escrow_of(index) if reescrow is not None else None
    return escrow if escrow is not None else own().escrow


def wrap_for(context: RecordContext, key: bytes, reader: str, public_key: bytes) -> Wrap:
    """Wraps record key ``key`` (of the record ``context`` names) for ``reader``."""
    return Wrap(context.author, context.seq, reader, wrap_key(key, public_key, context, reader))


def escrow_key(context: RecordContext, key: bytes, threshold: int, keepers: Mapping[str, bytes]) -> Escrow:
    """``key`` split ``threshold``-of-n (n = len(keepers)), each share HPKE-sealed to its keeper's
    published key under ``context.escrow_info(keeper)``."""
    shares = split_key(key, threshold, len(keepers))
    return Escrow(
        threshold,
        tuple(
            EscrowShare(keeper, x, seal_share(share, public, context.escrow_info(keeper)))
            for (keeper, public), (x, share) in zip(keepers.items(), shares, strict=True)
        ),
    )


def _escrow_doc(escrow: Escrow) -> dict[str, Any]:
    return {
        "threshold": escrow.threshold,
        "shares": [{"keeper": s.keeper, "x": s.x, "wrap": _b64(s.wrap)} for s in escrow.shares],
    }


def _parse_escrow(doc: Any) -> Escrow | None:
    """The escrow of a parsed bundle; None when there is none or its threshold is unusable."""
    if not isinstance(doc, dict) or not _is_int(doc.get("threshold")) or doc["threshold"] < 1:
        return None
    shares = doc.get("shares")
    return Escrow(
        doc["threshold"],
        tuple(
            EscrowShare(s["keeper"], s["x"], wrap)
            for s in (shares if isinstance(shares, list) else [])
            if isinstance(s, dict) and isinstance(s.get("keeper"), str) and _is_int(s.get("x"))
            if (wrap := _unb64(s.get("wrap"))) is not None
        ),
    )


def _is_int(value: Any) -> bool:
    return type(value) is int  # not bool, not float, not a numeric string


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes | None:
    """The bytes of a standard base64 string, or None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None
