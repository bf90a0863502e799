"""A small client for the Kubo RPC API (``/api/v0``), with local CID verification.

Kubo's RPC is plain HTTP POST; ``httpx`` speaks it directly (``ipfshttpclient`` refuses every
Kubo newer than 0.8). Content is added as CIDv1 with raw leaves and sha2-256, and every byte
fetched back is hashed locally into a CID and compared with the one asked for, so a node that
serves altered data is caught rather than trusted.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from aleph_cid import CidHasher
from multiformats import CID

from medvault.errors import CidMismatchError, InvalidCidError, IpfsError, IpfsUnavailableError

__all__ = ["IpfsClient", "cid_from_bytes", "cid_to_bytes", "compute_cid", "parse_cid"]

# How content is added; compute_cid must reproduce exactly this layout.
ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "hash": "sha2-256", "chunker": "size-262144"}


def parse_cid(value: str | bytes) -> CID:
    """Parses a CID string or binary CID, raising InvalidCidError with the reason."""
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
    return str(parse_cid(data).set(base="base32"))


def compute_cid(data: bytes) -> str:
    """The CID ``IpfsClient.add`` gives ``data``, computed offline."""
    hasher = CidHasher.for_ipfs_v1_raw_leaves()
    hasher.update(data)
    return str(hasher.finalize())


class IpfsClient:
    """Adds, pins and fetches bytes through a Kubo node's RPC API."""

    def __init__(self, api_url: str, timeout: float = 30.0) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.api_url}/api/v0", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IpfsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, data: bytes, *, pin: bool = True) -> str:
        """Stores ``data`` and returns its CIDv1 (base32); pinned unless ``pin`` is false."""
        params = {**ADD_PARAMS, "pin": "true" if pin else "false", "quieter": "true"}
        response = self._post("add", params=params, files={"file": ("blob", data)})
        cid = str(json.loads(response.text.splitlines()[-1])["Hash"])
        expected = compute_cid(data)
        if cid != expected:
            raise IpfsError("add", f"the node reported {cid} but the bytes hash to {expected}")
        return cid

    def add_many(self, blobs: list[bytes], *, pin: bool = True) -> list[str]:
        """Stores every blob in one request (one multipart ``file`` part each, no wrapping
        directory) and returns their CIDs in order, each checked against ``compute_cid``; each
        is pinned unless ``pin`` is false. Kubo answers one JSON line per file, named as sent.

        Kubo pins each file on its own (about 5 ms per pin on a local node, ten times the add);
        ``add_wrapped`` holds many small files with one pin instead."""
        return self._add_files(blobs, pin=pin, wrap=False)[1]

    def add_wrapped(self, blobs: list[bytes]) -> tuple[str, list[str]]:
        """Stores every blob in one request inside one new directory, pinned recursively, which
        keeps them all: one pin instead of one per file. Returns the directory's CID (unpin it
        to release them) and the files' CIDs in order, each checked against ``compute_cid``."""
        if not blobs:
            raise IpfsError("add", "add_wrapped needs at least one file")
        directory, cids = self._add_files(blobs, pin=True, wrap=True)
        if directory is None:
            raise IpfsError("add", "the node reported no wrapping directory")
        return directory, cids

    def _add_files(self, blobs: list[bytes], *, pin: bool, wrap: bool) -> tuple[str | None, list[str]]:
        if not blobs:
            return None, []
        params = {**ADD_PARAMS, "pin": "true" if pin else "false", "quiet": "true",
                  "wrap-with-directory": "true" if wrap else "false"}  # fmt: skip
        files = [("file", (str(i), blob, "application/octet-stream")) for i, blob in enumerate(blobs)]
        response = self._post("add", params=params, files=files)
        reported: dict[str, str] = {}
        for line in response.text.splitlines():
            if line.strip():
                entry = json.loads(line)
                reported[str(entry["Name"])] = str(entry["Hash"])
        cids = []
        for i, blob in enumerate(blobs):
            expected = compute_cid(blob)
            if reported.get(str(i)) != expected:
                got = reported.get(str(i))
                raise IpfsError("add", f"file {i}: the node reported {got} but the bytes hash to {expected}")
            cids.append(expected)
        return reported.get(""), cids

    def cat(self, cid: str, *, local_only: bool = False, timeout: str | None = None) -> bytes:
        """Fetches the bytes of ``cid`` and checks them against it locally.

        ``local_only`` keeps Kubo from searching the network for blocks it lacks (it answers at
        once that they are not found); ``timeout`` (e.g. "10s") bounds the request on Kubo's side.
        """
        parsed = parse_cid(cid)
        params = {"arg": str(parsed), "offline": "true" if local_only else None, "timeout": timeout}
        data = self._post("cat", params={k: v for k, v in params.items() if v}).content
        self.verify(str(parsed), data)
        return data

    @staticmethod
    def verify(cid: str, data: bytes) -> None:
        """Raises CidMismatchError unless ``data`` hashes to ``cid``."""
        try:
            hasher = CidHasher.for_expected(cid)
        except ValueError as exc:
            raise InvalidCidError(cid, f"cannot be checked locally: {exc}") from None
        hasher.update(data)
        actual = str(hasher.finalize())
        if CID.decode(actual) != CID.decode(cid):
            raise CidMismatchError(cid, actual)

    def pin(self, cid: str) -> None:
        self._post("pin/add", params={"arg": str(parse_cid(cid))})

    def unpin(self, cid: str) -> None:
        self._post("pin/rm", params={"arg": str(parse_cid(cid))})

    def is_pinned(self, cid: str) -> bool:
        """Whether ``cid`` is kept from garbage collection: pinned itself, or inside a pinned
        object (seeding pins one directory per batch of files)."""
        try:
            self._post("pin/ls", params={"arg": str(parse_cid(cid)), "type": "all"})
        except IpfsError as exc:
            if "not pinned" in str(exc):
                return False
            raise
        return True

    def pins(self) -> set[str]:
        """The CIDs (base32) of every object pinned recursively: what the node keeps for good."""
        response = self._post("pin/ls", params={"type": "recursive", "stream": "true"})
        found = set()
        for line in response.text.splitlines():
            if line.strip():
                found.add(str(CID.decode(json.loads(line)["Cid"]).set(base="base32")))
        return found

    def version(self) -> str:
        return str(self._post("version").json()["Version"])

    def _post(self, command: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.post(f"/{command}", **kwargs)
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(self.api_url, str(exc) or type(exc).__name__) from None
        if response.status_code != 200:
            try:
                message = str(response.json().get("Message", response.text))
            except ValueError:
                message = response.text.strip() or f"HTTP {response.status_code}"
            raise IpfsError(command, message)
        return response
