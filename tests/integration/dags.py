"""Hostile IPFS objects built on a real Kubo: dag-pb files whose root states one size and whose
links (one raw leaf, repeated) stream another."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import httpx

from medvault.cids import cid_to_bytes
from medvault.model import Category

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault

__all__ = ["LEAF", "block_size", "empty_directory", "expanding_dag", "hostile_pointer", "put_leaf"]

LEAF = 1 << 20  # Kubo's largest block: the most one link can expand to


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def put_leaf(api: str, data: bytes) -> str:
    """Stores ``data`` as one raw block (not pinned); its CID."""
    params = {"cid-codec": "raw", "mhtype": "sha2-256", "pin": "false"}
    response = httpx.post(f"{api}/api/v0/block/put", params=params, files={"file": data})
    response.raise_for_status()
    return str(response.json()["Key"])


def expanding_dag(api: str, links: int, *, stated_leaf: int = LEAF, fill: bytes = b"x") -> str:
    """A UnixFS file root (dag-pb, not pinned) whose ``links`` links all name one raw leaf of
    LEAF bytes, each stated as ``stated_leaf`` bytes: the root is ~50 bytes a link, what
    ``cat`` streams ``links`` MiB. With ``stated_leaf`` below LEAF the root understates it."""
    leaf = put_leaf(api, fill * LEAF)
    # UnixFS Data: Type=File (2), filesize, one blocksize per link.
    data = b"\x08\x02\x18" + _varint(links * stated_leaf) + (b"\x20" + _varint(stated_leaf)) * links
    node = {
        "Data": {"/": {"bytes": base64.b64encode(data).decode().rstrip("=")}},
        "Links": [{"Hash": {"/": leaf}, "Name": "", "Tsize": stated_leaf}] * links,
    }
    params = {"store-codec": "dag-pb", "input-codec": "dag-json", "pin": "false"}
    response = httpx.post(f"{api}/api/v0/dag/put", params=params, files={"file": json.dumps(node).encode()})
    response.raise_for_status()
    return str(response.json()["Cid"]["/"])


def empty_directory(api: str) -> str:
    """An empty UnixFS directory (dag-pb, not pinned)."""
    params = {"store-codec": "dag-pb", "input-codec": "dag-json", "pin": "false"}
    node = b'{"Data":{"/":{"bytes":"CAE"}},"Links":[]}'  # Data: Type=Directory
    response = httpx.post(f"{api}/api/v0/dag/put", params=params, files={"file": node})
    response.raise_for_status()
    return str(response.json()["Cid"]["/"])


def block_size(api: str, cid: str) -> int:
    """The size of ``cid``'s own block, as the node stores it."""
    response = httpx.post(f"{api}/api/v0/block/stat", params={"arg": cid})
    response.raise_for_status()
    return int(response.json()["Size"])


def hostile_pointer(mv: Medvault, author: Wallet, patient: str, cid: str, content_hash: bytes, keys_cid: str) -> None:
    """Appends a pointer to ``cid`` (ciphertext) and ``keys_cid`` (key bundle) to ``patient``'s
    log, straight to the registry, as a hostile author's own client would."""
    fn = mv.chain.records.functions.addRecord(
        patient, mv.next_seq(patient, author.address), cid_to_bytes(cid), content_hash,
        int(Category.LABORATORY), cid_to_bytes(keys_cid),
    )  # fmt: skip
    mv.chain.transact(author, fn, "add a hostile pointer")
