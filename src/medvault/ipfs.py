"""A small client for the Kubo RPC API (``/api/v0``), with local CID verification.

Kubo's RPC is plain HTTP POST; ``httpx`` speaks it directly (``ipfshttpclient`` refuses every
Kubo newer than 0.8). Content is added as CIDv1 with raw leaves and sha2-256, and every byte
fetched back is hashed locally into a CID and compared with the one asked for, so a node that
serves altered data is caught rather than trusted.

Reads are bounded (``ReadLimits``): an object's root states its size (``files/stat``, one block
read), which must be within the limit for what it should be before anything else is fetched; the
stream is then counted as it is hashed, so a root that understates its size (or a DAG whose links
repeat one leaf, kilobytes that expand to gigabytes) is cut off at the limit all the same.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from aleph_cid import CidHasher
from multiformats import CID

from medvault.cids import ADD_PARAMS, cid_text, compute_cid
from medvault.config import (
    DEFAULT_MAX_BUNDLE_BYTES,
    DEFAULT_MAX_RECORD_BYTES,
    MAX_BUNDLE_ENV,
    MAX_RECORD_ENV,
    size_setting,
)
from medvault.errors import (
    CidMismatchError,
    ConfigurationError,
    InvalidCidError,
    IpfsError,
    IpfsUnavailableError,
    ObjectTooLargeError,
)

if TYPE_CHECKING:
    from collections.abc import Generator

__all__ = [
    "Budget",
    "IpfsClient",
    "ObjectKind",
    "ReadLimits",
]

ObjectKind = Literal["record", "bundle"]
_KINDS: dict[ObjectKind, tuple[str, str]] = {  # what an object of the kind is called, its setting
    "record": ("a record's ciphertext", MAX_RECORD_ENV),
    "bundle": ("a key bundle", MAX_BUNDLE_ENV),
}

STAT_BYTES = 64 << 10  # Kubo states an object's size in ~200 bytes of JSON
PIN_BATCH = 256  # CIDs per pin/ls request: about 16 KiB of query string


@dataclass(frozen=True)
class ReadLimits:
    """The most bytes an object read from IPFS may have, by what it should be (see
    ``medvault.config`` for why the defaults are what they are)."""

    record: int = DEFAULT_MAX_RECORD_BYTES
    bundle: int = DEFAULT_MAX_BUNDLE_BYTES

    def __post_init__(self) -> None:
        for kind in _KINDS:
            value = getattr(self, kind)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"the size limit for {_KINDS[kind][0]} must be a whole number of bytes >= 1")

    @classmethod
    def from_env(cls) -> ReadLimits:
        """The limits ``$MEDVAULT_MAX_RECORD_BYTES`` and ``$MEDVAULT_MAX_BUNDLE_BYTES`` set, else the defaults."""
        return cls(
            size_setting(MAX_RECORD_ENV, DEFAULT_MAX_RECORD_BYTES),
            size_setting(MAX_BUNDLE_ENV, DEFAULT_MAX_BUNDLE_BYTES),
        )

    def of(self, kind: ObjectKind) -> int:
        return int(getattr(self, kind))


@dataclass
class Budget:
    """What every read through one client may take in all: bytes, and time until a deadline."""

    bytes_left: int
    seconds: float
    deadline: float  # time.monotonic()

    def remaining(self, api_url: str, cid: str) -> float:
        """The seconds left; IpfsUnavailableError (the node did not answer in time) if none."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            reason = f"{cid} was not read within this request's time budget of {self.seconds:g} s"
            raise IpfsUnavailableError(api_url, reason)
        return left


class IpfsClient:
    """Adds, pins and fetches bytes through a Kubo node's RPC API."""

    def __init__(self, api_url: str, timeout: float = 30.0, *, limits: ReadLimits | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.limits = limits or ReadLimits.from_env()
        self._http = httpx.Client(base_url=f"{self.api_url}/api/v0", timeout=timeout)
        self.budget: Budget | None = None

    def budgeted(self, max_bytes: int, seconds: float) -> IpfsClient:
        """A view of this client (same connection: close this one, not the view) whose reads
        together take at most ``max_bytes`` and end within ``seconds`` from now: one request's
        budget, e.g. a keeper's."""
        view = copy.copy(self)
        view.budget = Budget(max_bytes, seconds, time.monotonic() + seconds)
        return view

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IpfsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, data: bytes, *, pin: bool = True, kind: ObjectKind = "record") -> str:
        """Stores ``data`` and returns its CIDv1 (base32); pinned unless ``pin`` is false.
        Refused, with nothing stored, if ``data`` is over the read limit for ``kind``: no reader
        here would fetch it."""
        self._check_writable(data, kind)
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
        for blob in blobs:
            self._check_writable(blob, "record")
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

    def _check_writable(self, data: bytes, kind: ObjectKind) -> None:
        limit, (what, setting) = self.limits.of(kind), _KINDS[kind]
        if len(data) > limit:
            raise IpfsError(
                "add",
                f"{what} of {len(data):,} bytes is over the limit of {limit:,} bytes that readers fetch "
                f"(raise {setting} for readers and writers alike); nothing was stored",
            )

    def cat(
        self, cid: str, *, kind: ObjectKind = "record", local_only: bool = False, timeout: str | None = None
    ) -> bytes:
        """Fetches the bytes of ``cid`` and checks them against it locally.

        ``kind`` says what the object should be, which sets its size limit (``ReadLimits``);
        ObjectTooLargeError if the object states or streams more. ``local_only`` keeps Kubo from
        searching the network for blocks it lacks (it answers at once that they are not found);
        ``timeout`` (e.g. "10s") bounds the request on Kubo's side.
        """
        parsed = cid_text(cid)
        what, setting = _KINDS[kind]
        limit, seconds = self.limits.of(kind), None
        if self.budget is not None:
            seconds = self.budget.remaining(self.api_url, parsed)
            timeout = f"{seconds:.3f}s"
            if self.budget.bytes_left < limit:
                limit, what = self.budget.bytes_left, f"{what} within this request's budget"
        options = {"offline": "true" if local_only else None, "timeout": timeout}
        params = {k: v for k, v in options.items() if v}
        stated = self.stated_size(parsed, seconds=seconds, **params)
        if stated > limit:
            raise ObjectTooLargeError(parsed, f"states {stated:,} bytes", limit, what, setting)
        hasher, chunks, total = _hasher(parsed), [], 0
        # Kubo stops at ``length``, but only where the root states the truth: count as well.
        stream = self._stream("cat", {"arg": parsed, "length": str(limit + 1), **params}, seconds)
        with contextlib.closing(stream):
            for chunk in stream:
                total += len(chunk)
                if total > limit:
                    stating = f"streams more than {limit:,} bytes (its root states {stated:,})"
                    raise ObjectTooLargeError(parsed, stating, limit, what, setting)
                if self.budget is not None:
                    self.budget.remaining(self.api_url, parsed)
                hasher.update(chunk)
                chunks.append(chunk)
        _check(hasher, parsed)
        if self.budget is not None:
            self.budget.bytes_left -= total
        return b"".join(chunks)

    def stated_size(self, cid: str, *, seconds: float | None = None, **params: str) -> int:
        """The byte length ``cid``'s root block states (a UnixFS file's size, a raw block's own
        length): read from that one block, before anything else of the object is fetched. The
        node's answer is read as it comes, up to STAT_BYTES and within the budget if there is one."""
        body = b""
        stream = self._stream("files/stat", {"arg": f"/ipfs/{cid_text(cid)}", **params}, seconds)
        with contextlib.closing(stream):
            for chunk in stream:
                body += chunk
                if len(body) > STAT_BYTES:
                    raise IpfsError("cat", f"the node's answer about {cid} runs over {STAT_BYTES:,} bytes: not Kubo's")
                if self.budget is not None:
                    self.budget.remaining(self.api_url, cid)
        try:
            stat = json.loads(body)
        except ValueError:
            raise IpfsError("cat", f"the node's answer about {cid} is not JSON: not Kubo's") from None
        kind, size = (stat.get("Type"), stat.get("Size")) if isinstance(stat, dict) else (None, None)
        if kind != "file":
            raise IpfsError("cat", f"{cid} is a {kind}, not a file")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise IpfsError("cat", f"the node states no size for {cid} ({size!r}): not Kubo's answer")
        return size

    @staticmethod
    def verify(cid: str, data: bytes) -> None:
        """Raises CidMismatchError unless ``data`` hashes to ``cid``."""
        hasher = _hasher(cid)
        hasher.update(data)
        _check(hasher, cid)

    def pin(self, cid: str) -> None:
        self._post("pin/add", params={"arg": cid_text(cid)})

    def unpin(self, cid: str) -> None:
        self._post("pin/rm", params={"arg": cid_text(cid)})

    def is_pinned(self, cid: str) -> bool:
        """Whether ``cid`` is kept from garbage collection: pinned itself, or inside a pinned
        object (seeding pins one directory per batch of files)."""
        return bool(self.pinned([cid]))

    def pinned(self, cids: list[str]) -> set[str]:
        """Those of ``cids`` that are kept from garbage collection (as ``is_pinned``), asked in
        ``PIN_BATCH`` at a time: each ``pin/ls`` walks every pinned DAG, whatever it is asked.

        Kubo fails a request with several CIDs as soon as one is not pinned, and then names the
        wrong one (0.40 also labels streamed answers wrongly): only a request that succeeds and
        lists every CID asked is taken as it stands; a failed one is split in two, down to
        single CIDs, whose answers are unambiguous."""
        texts = {cid: cid_text(cid) for cid in cids}
        asked = list(dict.fromkeys(texts.values()))
        found: set[str] = set()
        for start in range(0, len(asked), PIN_BATCH):
            found |= self._pinned(asked[start : start + PIN_BATCH])
        return {cid for cid, text in texts.items() if text in found}

    def _pinned(self, cids: list[str]) -> set[str]:
        try:
            response = self._post("pin/ls", params=[("type", "all"), *(("arg", cid) for cid in cids)])
        except IpfsError as exc:
            if "not pinned" not in str(exc):
                raise
            if len(cids) == 1:
                return set()
        else:
            keys = response.json().get("Keys")
            if len(cids) == 1 or (isinstance(keys, dict) and all(cid in keys for cid in cids)):
                return set(cids)
        half = len(cids) // 2
        return self._pinned(cids[:half]) | self._pinned(cids[half:])

    def pins(self) -> set[str]:
        """The CIDs (base32) of every object pinned recursively: what the node keeps for good."""
        response = self._post("pin/ls", params={"type": "recursive", "stream": "true"})
        found = set()
        for line in response.text.splitlines():
            if line.strip():
                found.add(str(CID.decode(json.loads(line)["Cid"]).set(base="base32")))
        return found

    def directory_entries(self, cid: str) -> list[str] | None:
        """The CIDs of the entries of UnixFS directory ``cid`` (one level), from the node's own
        store; None if ``cid`` is not a directory. Any pinned CID is asked about (no hash check:
        this reads no content)."""
        arg = str(CID.decode(cid))
        stat = self._post("files/stat", params={"arg": f"/ipfs/{arg}", "offline": "true"}).json()
        if stat.get("Type") != "directory":
            return None
        listing = self._post("ls", params={"arg": arg, "size": "false", "resolve-type": "false", "offline": "true"})
        return [str(link["Hash"]) for entry in listing.json()["Objects"] for link in entry["Links"]]

    def refs(self, cid: str) -> list[str]:
        """The CIDs of every block ``cid`` links to, at any depth, from the node's own store."""
        params = {"arg": str(CID.decode(cid)), "recursive": "true", "unique": "true", "offline": "true"}
        lines = self._post("refs", params=params).text.splitlines()
        found = [json.loads(line) for line in lines if line.strip()]
        if failed := next((entry["Err"] for entry in found if entry.get("Err")), None):
            raise IpfsError("refs", str(failed))
        return [str(entry["Ref"]) for entry in found]

    def version(self) -> str:
        return str(self._post("version").json()["Version"])

    def _stream(self, command: str, params: dict[str, str], seconds: float | None) -> Generator[bytes, None, None]:
        """The body of ``command``'s answer, chunk by chunk as it arrives (``seconds`` bounds
        each wait, else the client's timeout). Taken as sent: a compressed answer is not expanded
        (kilobytes of gzip expand to gigabytes before anything could count them), and as no
        object's bytes it fails the CID check."""
        timeout = seconds or httpx.USE_CLIENT_DEFAULT
        identity = {"Accept-Encoding": "identity"}
        try:
            with self._http.stream("POST", f"/{command}", params=params, headers=identity, timeout=timeout) as response:
                if response.status_code != 200:
                    head = b""
                    for chunk in response.iter_raw():  # the message, not an endless body
                        head += chunk
                        if len(head) > STAT_BYTES:
                            break
                    raise _failure(command, httpx.Response(response.status_code, content=head[:STAT_BYTES]))
                yield from response.iter_raw()
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(self.api_url, str(exc) or type(exc).__name__) from None

    def _post(self, command: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.post(f"/{command}", **kwargs)
        except httpx.TransportError as exc:
            raise IpfsUnavailableError(self.api_url, str(exc) or type(exc).__name__) from None
        if response.status_code != 200:
            raise _failure(command, response)
        return response


def _hasher(cid: str) -> CidHasher:
    try:
        return CidHasher.for_expected(cid)
    except ValueError as exc:
        raise InvalidCidError(cid, f"cannot be checked locally: {exc}") from None


def _check(hasher: CidHasher, cid: str) -> None:
    """Raises CidMismatchError unless what ``hasher`` took in hashes to ``cid``."""
    actual = str(hasher.finalize())
    if actual != cid and CID.decode(actual) != CID.decode(cid):
        raise CidMismatchError(cid, actual)


def _failure(command: str, response: httpx.Response) -> IpfsError:
    """The error Kubo answered ``command`` with."""
    try:
        message = str(response.json().get("Message", response.text))
    except ValueError:
        message = response.text.strip() or f"HTTP {response.status_code}"
    return IpfsError(command, message)
