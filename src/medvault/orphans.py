"""Pinned IPFS objects that nothing on chain references (``medvault gc``), and unpinning them.

A pin is referenced when a deployment's events name it: a record's ``cid`` or ``keysCid``
(``RecordAdded``), a shared key bundle (``KeysShared``), or a keeper set's re-escrow bundle
(``KeepersChosen``; earlier sets' too: nothing named on chain is dropped). Seeding pins one
wrapping directory per batch of files instead of one pin per file, so a directory pin is judged
by its entries: all of them referenced, kept; none, an orphan; some, kept for those (unpinning
it would drop them too) and reported as partly referenced, with its unreferenced entries. An
entry, or a pin that is no directory, counts as referenced if any block inside it is named.
Empty directories (Kubo pins one in every new repository) hold nothing and are left alone.
Pins and references are compared by multihash, as Kubo stores blocks: a pin keeps the block
whatever codec or CID version names it, so a pin of a referenced block is never an orphan.
The deployments this home replaced on the same chain (``deploy --replace`` keeps their records)
reference their objects as well, while their contracts are there.

Whatever a killed ``record add`` or seeding run pinned before its transaction landed is an orphan.
So is an object whose transaction is still on its way: run ``gc --unpin`` while nothing writes
to the deployment. The node is taken to serve this deployment alone: pins of another deployment
on the same node are not referenced by this one's events, and are listed as orphans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multiformats import CID
from pydantic import ValidationError

from medvault.chain import Chain
from medvault.chain.artifacts import Deployment, load_artifacts
from medvault.chain.deploy import replaced_deployments
from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from medvault.ipfs import IpfsClient

__all__ = ["REFERENCES", "Pin", "PinReport", "chain_references", "find_orphans", "replaced_chains", "unpin_orphans"]

# (contract, event, the fields that hold binary CIDs): every reference the chain can make.
REFERENCES = (
    ("RecordRegistry", "RecordAdded", ("cid", "keysCid")),
    ("ConsentManager", "KeysShared", ("keysCid",)),
    ("KeeperDirectory", "KeepersChosen", ("escrowCid",)),
)


@dataclass(frozen=True)
class Pin:
    """A recursive pin; for a directory, how many entries it has and how many are referenced."""

    cid: str
    files: int | None = None
    referenced: int = 0
    unreferenced: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.files is None:
            return self.cid
        return f"{self.cid} (a directory of {self.files} files, {self.referenced} referenced on chain)"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"cid": self.cid}
        if self.files is not None:
            document.update(files=self.files, referenced=self.referenced)
        if self.unreferenced:
            document["unreferenced"] = list(self.unreferenced)
        return document


@dataclass
class PinReport:
    """What the node pins, judged against what the chain references."""

    references: int  # distinct CIDs the chain names
    referenced: list[Pin] = field(default_factory=list)  # kept: named on chain, or every entry is
    partial: list[Pin] = field(default_factory=list)  # kept: directories some of whose entries are named
    orphans: list[Pin] = field(default_factory=list)  # nothing on chain names them or anything in them
    empty: list[str] = field(default_factory=list)  # empty directories: nothing to keep or free
    unreadable: int = 0  # references that are not CIDs (a bad pointer references no pin)
    unpinned: list[str] = field(default_factory=list)

    @property
    def pins(self) -> int:
        return len(self.referenced) + len(self.partial) + len(self.orphans) + len(self.empty)

    def to_json(self) -> dict[str, Any]:
        return {
            "pins": self.pins,
            "references": self.references,
            "unreadableReferences": self.unreadable,
            "referenced": [p.to_json() for p in self.referenced],
            "partlyReferenced": [p.to_json() for p in self.partial],
            "orphans": [p.to_json() for p in self.orphans],
            "emptyDirectories": self.empty,
            "unpinned": self.unpinned,
        }


def replaced_chains(chain: Chain, home: Path) -> list[Chain]:
    """The deployments ``home`` replaced on ``chain``'s chain whose contracts are still there."""
    chains = []
    for path in replaced_deployments(home, chain.chain_id):
        try:
            deployment = Deployment.model_validate_json(path.read_bytes())
        except ValidationError:
            raise ConfigurationError(
                f"{path} is not a readable deployment record, so what it references is unknown: "
                "fix it or move it out of deployments/replaced/ before running gc"
            ) from None
        try:
            chains.append(Chain(chain.w3, deployment, load_artifacts()))
        except ConfigurationError:
            continue  # its contracts are gone (a chain started afresh): it references nothing
    return chains


def chain_references(*chains: Chain) -> tuple[set[bytes], int]:
    """The multihash of every CID the deployments' events name, and how many named no CID."""
    found, unreadable = set(), 0
    for chain, (contract, event, fields) in ((c, r) for c in chains for r in REFERENCES):
        for log in chain.events(contract, event):
            for name in fields:
                raw = bytes(log["args"][name])
                if not raw:
                    continue  # "none": a record without keepers, a set without a re-escrow
                key = _key(raw)
                if key is None:
                    unreadable += 1
                else:
                    found.add(key)
    return found, unreadable


def find_orphans(chain: Chain, ipfs: IpfsClient, *, earlier: Sequence[Chain] = ()) -> PinReport:
    """Sorts every recursive pin of ``ipfs`` into referenced, partly referenced and orphaned by
    what ``chain`` and the ``earlier`` deployments (``replaced_chains``) reference."""
    references, unreadable = chain_references(chain, *earlier)
    report = PinReport(len(references), unreadable=unreadable)
    for cid in sorted(ipfs.pins()):
        if _key(cid) in references:
            report.referenced.append(Pin(cid))
            continue
        entries = ipfs.directory_entries(cid)
        if entries is None:
            (report.referenced if _holds(ipfs, cid, references) else report.orphans).append(Pin(cid))
            continue
        unreferenced = tuple(entry for entry in entries if not _holds(ipfs, entry, references))
        named = len(entries) - len(unreferenced)
        if not entries:
            report.empty.append(cid)
        elif not named:
            report.orphans.append(Pin(cid, len(entries)))
        elif unreferenced:
            report.partial.append(Pin(cid, len(entries), named, unreferenced))
        else:
            report.referenced.append(Pin(cid, len(entries), named))
    return report


def unpin_orphans(chain: Chain, ipfs: IpfsClient, report: PinReport, *, earlier: Sequence[Chain] = ()) -> list[str]:
    """Unpins the orphans of ``report`` that are orphans still (a transaction that landed since,
    while a prompt waited say, keeps its objects); the CIDs unpinned, kept in ``report.unpinned``."""
    still = {pin.cid for pin in find_orphans(chain, ipfs, earlier=earlier).orphans}
    for pin in report.orphans:
        if pin.cid in still:
            ipfs.unpin(pin.cid)
            report.unpinned.append(pin.cid)
    return report.unpinned


def _holds(ipfs: IpfsClient, cid: str, references: set[bytes]) -> bool:
    """Whether ``cid`` is, or links to at any depth, a block the chain names (a pointer may name
    a file inside a nested directory, or one block of a larger object)."""
    return _key(cid) in references or any(_key(ref) in references for ref in ipfs.refs(cid))


def _key(cid: str | bytes) -> bytes | None:
    """``cid``'s multihash: what names its block in Kubo's store, whatever codec or version."""
    try:
        return bytes(CID.decode(cid).digest)
    except (ValueError, KeyError, TypeError):
        return None
