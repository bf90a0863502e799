"""What a refused input must leave exactly as it was: the chain (no block mined, so no state
change and no log), the Kubo node's pin set, and every file of the medvault home (keystores,
key files, deployments, saved settings).

Bad-input tables use it as ``with unchanged(w3, ipfs, home): ...`` around the refused call."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.ipfs import IpfsClient

__all__ = ["World", "snapshot", "unchanged"]

# Caches a read may rebuild (the event index); they hold nothing that cannot be re-derived.
CACHES = ("index",)


@dataclass(frozen=True)
class World:
    block_number: int
    block_hash: str
    pins: frozenset[str]
    home: tuple[tuple[str, str], ...]  # (relative path, sha256) of every file


def snapshot(w3: Web3, ipfs: IpfsClient, home: Path) -> World:
    block = w3.eth.get_block("latest")
    files = []
    if home.exists():
        for path in sorted(p for p in home.rglob("*") if p.is_file()):
            relative = path.relative_to(home).as_posix()
            if not relative.startswith(CACHES):
                files.append((relative, hashlib.sha256(path.read_bytes()).hexdigest()))
    return World(block["number"], block["hash"].hex(), frozenset(ipfs.pins()), tuple(files))


@contextmanager
def unchanged(w3: Web3, ipfs: IpfsClient, home: Path) -> Iterator[None]:
    """Asserts that the block runs without mining a block, pinning or unpinning anything, or
    touching a file of ``home``."""
    before = snapshot(w3, ipfs, home)
    yield
    after = snapshot(w3, ipfs, home)
    assert after.block_number == before.block_number, "a block was mined"
    assert after.block_hash == before.block_hash, "the chain changed"
    assert after.pins == before.pins, f"pins changed: +{after.pins - before.pins} -{before.pins - after.pins}"
    assert after.home == before.home, "files of the home changed"
