"""Parsed key bundles are kept by CID and patient, within a byte budget; failures are not kept."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from medvault.client import core
from medvault.client.core import Core
from medvault.errors import IntegrityError, IpfsError
from medvault.formats.keybundle import KeyBundle, Wrap

PATIENT = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


def bundle(seq: int, wraps: int = 1) -> bytes:
    items = tuple(Wrap(PATIENT, seq, f"0x{i:040x}", bytes(48)) for i in range(wraps))
    return KeyBundle(31337, "0x" + "11" * 20, PATIENT, "X25519", items).to_bytes()


class Node:
    """An IPFS node holding ``objects`` by CID, counting reads, failing the CIDs in ``down``."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.reads: list[str] = []
        self.down: set[str] = set()

    def cat(self, cid: str, *, kind: Any = "record") -> bytes:
        self.reads.append(cid)
        if cid in self.down:
            raise IpfsError("cat", f"{cid} is not available")
        return self.objects[cid]


def client(node: Node) -> Core:
    chain = SimpleNamespace(deployment=SimpleNamespace(key_suite=None))
    return Core(chain, node)  # type: ignore[arg-type]


def test_a_bundle_is_fetched_once_and_kept_for_its_patient_only() -> None:
    node = Node({"a": bundle(0), "b": bundle(1)})
    mv = client(node)

    first = mv.key_bundle("a", PATIENT)
    assert mv.key_bundle("a", PATIENT.upper()) is first
    with pytest.raises(IntegrityError, match="not a medvault key bundle"):
        mv.key_bundle("a", OTHER)
    with pytest.raises(IntegrityError):
        mv.key_bundle("a", OTHER)  # a refusal is not kept either way
    assert node.reads == ["a", "a", "a"]


def test_a_failed_fetch_is_not_kept() -> None:
    node = Node({"a": bundle(0)})
    node.down.add("a")
    mv = client(node)
    with pytest.raises(IpfsError):
        mv.key_bundle("a", PATIENT)
    node.down.clear()

    assert mv.key_bundle("a", PATIENT).wraps_for("0x" + "00" * 20, PATIENT, 0) == [bytes(48)]
    assert node.reads == ["a", "a"]


def test_the_least_recently_used_bundles_leave_past_the_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = {f"c{i}": bundle(i, wraps=10) for i in range(4)}
    size = len(objects["c0"])
    monkeypatch.setattr(core, "BUNDLE_CACHE_BYTES", 2 * size + size // 2)  # room for two
    node = Node(objects)
    mv = client(node)
    for cid in ("c0", "c1", "c0", "c2"):  # c1 is now the least recently used
        mv.key_bundle(cid, PATIENT)
    node.reads.clear()

    mv.key_bundle("c0", PATIENT)
    mv.key_bundle("c2", PATIENT)
    assert node.reads == []
    mv.key_bundle("c1", PATIENT)
    assert node.reads == ["c1"]
