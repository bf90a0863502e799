"""The key-release protocol between a reader and the keepers of a patient's record keys.

A reader asks each keeper for its share of one record key with an EIP-712 ``KeyRequest``
(patient, index, reader, keeper, issuedAt) signed by the reader, in the domain ``medvault
keeper``/``1`` of the chain and its KeeperDirectory::

    POST /v1/key-shares   {"typedData": {...}, "signature": "0x..."}
    200  {"keeper": "0x..", "x": 2, "wrap": "<base64 HPKE to the reader>", "releaseId": "0x.."}
    4xx/5xx {"error": "<reason>", "message": "<text>"}

``reason`` is one of ``REASONS`` (with its HTTP status). ``releaseId`` is the EIP-712 digest
of the request: the same signed request, retried, is the same release. The share comes back
HPKE-wrapped to the reader's published key, bound to the record, the reader, the keeper and x.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from medvault.keeper.urls import join_keeper_url

if TYPE_CHECKING:
    from medvault.accounts import Wallet

__all__ = [
    "KEY_SHARES_PATH",
    "MAX_REQUEST_SKEW",
    "REASONS",
    "KeyRequest",
    "Refusal",
    "ShareRelease",
    "post_key_request",
    "sign_key_request",
    "verify_key_request",
]

DOMAIN_NAME = "medvault keeper"
DOMAIN_VERSION = "1"
KEY_SHARES_PATH = "/v1/key-shares"
MAX_ANSWER = 64 * 1024  # bytes of a keeper's answer a reader reads (after decompression); more is refused
MAX_REQUEST_SKEW = 300  # seconds a request's issuedAt may be from the chain's time, either way
_FIELDS = [
    ("patient", "address"),
    ("index", "uint64"),
    ("reader", "address"),
    ("keeper", "address"),
    ("issuedAt", "uint256"),
]
_DOMAIN_FIELDS = [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]
_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]  # a request's headers and body leave at once
_pool: httpx.Client | None = None
_pool_lock = threading.Lock()

# Every reason a keeper refuses for, with its HTTP status.
REASONS: dict[str, int] = {
    "malformed": 400,  # the body is not a JSON {typedData, signature} document
    "bad-signature": 401,  # not a KeyRequest of this deployment, or not signed by its reader
    "stale": 401,  # issuedAt more than MAX_REQUEST_SKEW seconds from the chain's time
    "wrong-keeper": 421,  # addressed to another keeper, or this keeper is not the patient's
    "unknown-record": 404,  # the patient's log has no such record
    "no-share": 404,  # the record's key bundle escrows no share with this keeper
    "bad-record": 422,  # the record's pointer is not a usable CID, or its key bundle is missing or malformed
    "no-grant": 403,  # the patient never granted the reader access
    "revoked": 403,  # the patient revoked the reader's grant
    "expired": 403,  # the grant's window has closed
    "not-yet-valid": 403,  # the grant's window has not opened
    "out-of-scope": 403,  # the record's category is outside the grant's scopes
    "no-encryption-key": 409,  # the reader has no published encryption key to wrap the share to
    "integrity": 502,  # the chain or IPFS returned data that fails verification
    "chain-unavailable": 503,  # the Ethereum node does not answer
    "chain-stale": 503,  # the block the keeper would decide on is older than its lag allows
    "chain-disagrees": 502,  # the second RPC endpoint holds another block or decides otherwise
    "rate-limited": 429,  # the reader asked for more releases than the keeper's rate allows
    "ipfs-unavailable": 503,  # the Kubo node does not answer, or not within the request's time budget
    "too-large": 502,  # the keeper set's re-escrow bundle is over the bundle limit (a record's own: bad-record)
    "internal": 500,
}


@dataclass(frozen=True)
class KeyRequest:
    patient: str
    index: int
    reader: str
    keeper: str
    issued_at: int

    def typed_data(self, chain_id: int, directory: str) -> dict[str, Any]:
        """The eth_signTypedData_v4 document a reader signs."""
        return {
            "types": {
                "EIP712Domain": [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS],
                "KeyRequest": [{"name": n, "type": t} for n, t in _FIELDS],
            },
            "primaryType": "KeyRequest",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": to_checksum_address(directory),
            },
            "message": {
                "patient": to_checksum_address(self.patient),
                "index": self.index,
                "reader": to_checksum_address(self.reader),
                "keeper": to_checksum_address(self.keeper),
                "issuedAt": self.issued_at,
            },
        }

    def release_id(self, chain_id: int, directory: str) -> bytes:
        """The EIP-712 digest the reader signs: the keeper's id of this release."""
        return _digest(encode_typed_data(full_message=self.typed_data(chain_id, directory)))


@dataclass(frozen=True)
class ShareRelease:
    """A keeper's answer: its share ``x``, HPKE-wrapped to the reader."""

    keeper: str
    x: int
    wrap: bytes
    release_id: str


class Refusal(Exception):
    """A keeper's refusal (or no answer: ``unreachable``), with its machine-readable reason."""

    def __init__(self, reason: str, message: str, status: int | None = None) -> None:
        self.reason, self.message = reason, message
        self.status = REASONS.get(reason, 500) if status is None else status
        super().__init__(f"{reason}: {message}")

    def to_json(self) -> dict[str, str]:
        return {"error": self.reason, "message": self.message}


def sign_key_request(signer: Wallet, request: KeyRequest, chain_id: int, directory: str) -> dict[str, Any]:
    """The request body: the typed data and ``signer``'s signature over it."""
    document = request.typed_data(chain_id, directory)
    signed = signer.account.sign_message(encode_typed_data(full_message=document))
    return {"typedData": document, "signature": "0x" + bytes(signed.signature).hex()}


def verify_key_request(body: Any, chain_id: int, directory: str) -> tuple[KeyRequest, bytes]:
    """The request in ``body`` and its release id, if the reader it names signed it for this
    deployment; else ``Refusal("bad-signature")``."""
    if not isinstance(body, dict) or not isinstance(body.get("typedData"), dict):
        raise Refusal("malformed", "expected a JSON object {typedData, signature}")
    try:
        document, signature = body["typedData"], bytes.fromhex(str(body["signature"]).removeprefix("0x"))
        m = document["message"]
        if document.get("primaryType") != "KeyRequest":
            raise ValueError("primaryType is not KeyRequest")
        if not all(is_address(m[k]) for k in ("patient", "reader", "keeper")):
            raise ValueError("an address field is not an address")
        request = KeyRequest(m["patient"], int(m["index"]), m["reader"], m["keeper"], int(m["issuedAt"]))
        if not 0 <= request.index < 2**64 or not 0 <= request.issued_at < 2**256:
            raise ValueError("index or issuedAt out of range")
        expected = request.typed_data(chain_id, directory)
        if document.get("domain") != expected["domain"]:
            raise ValueError("signed for another chain or keeper directory")
        signable = encode_typed_data(full_message=expected)
        signer = Account.recover_message(signable, signature=signature)
    except (KeyError, TypeError, ValueError) as exc:
        raise Refusal("bad-signature", f"not a valid signed KeyRequest: {exc}") from None
    except Exception as exc:  # eth_keys' BadSignature and friends
        raise Refusal("bad-signature", f"the signature does not verify: {type(exc).__name__}") from None
    if signer != to_checksum_address(request.reader):
        raise Refusal("bad-signature", f"signed by {signer}, not by the reader {to_checksum_address(request.reader)}")
    return request, _digest(signable)


def post_key_request(url: str | httpx.URL, body: dict[str, Any], timeout: float = 10.0) -> ShareRelease:
    """Sends a signed request to the keeper at ``url`` (checked with ``check_keeper_url`` by
    the caller), joined with ``KEY_SHARES_PATH`` by URL rules; its release, or the Refusal
    (reason ``unreachable`` if it does not answer, ``bad-response`` if the answer makes no sense).
    Redirects are not followed; an answer longer than ``MAX_ANSWER`` bytes (decompressed), or
    one that takes longer than ``timeout`` in all, is refused rather than read on.

    Requests share one pooled HTTP client (thread-safe), so each keeper's connection is kept
    alive for the next request instead of built anew (which costs more than a release)."""
    target = join_keeper_url(httpx.URL(str(url)), KEY_SHARES_PATH)
    deadline = time.monotonic() + timeout
    try:
        with _pooled().stream("POST", target, json=body, timeout=timeout, follow_redirects=False) as response:
            content = bytearray()
            for chunk in response.iter_bytes():
                content += chunk
                if len(content) > MAX_ANSWER:
                    raise Refusal("bad-response", f"{url} answered more than {MAX_ANSWER} bytes", response.status_code)
                if time.monotonic() > deadline:
                    raise Refusal("unreachable", f"{url}: its answer took longer than {timeout:.0f} s", 0)
    except httpx.TransportError as exc:
        raise Refusal("unreachable", f"{url}: {str(exc) or type(exc).__name__}", 0) from None
    try:
        answer = json.loads(bytes(content))
        if response.status_code != 200:
            raise Refusal(str(answer["error"]), str(answer.get("message", "")), response.status_code)
        return ShareRelease(
            to_checksum_address(answer["keeper"]),
            int(answer["x"]),
            base64.b64decode(answer["wrap"]),
            answer["releaseId"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise Refusal(
            "bad-response", f"{url} answered HTTP {response.status_code}: {exc}", response.status_code
        ) from None


def _pooled() -> httpx.Client:
    """The process's HTTP client for keepers: a connection pool per keeper origin."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = httpx.Client(transport=httpx.HTTPTransport(socket_options=_NODELAY), follow_redirects=False)
        return _pool


def _digest(signable: SignableMessage) -> bytes:
    return keccak(b"\x19" + signable.version + signable.header + signable.body)
