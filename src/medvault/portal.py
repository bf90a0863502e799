"""The portal's server: the built single-page app (``web/dist``) and the deployment's own endpoints, on one origin.

The page talks to nothing but this origin (its Content-Security-Policy says ``connect-src
'self'``), so the server forwards what the page needs and nothing else:

- ``GET /config.json``: chain id, key suite, the contracts' addresses and ABIs;
- ``POST /rpc``: JSON-RPC *reads* to the chain (a method list; no signing, no sending: the
  wallet sends transactions through its own node);
- ``GET /ipfs/<cid>``: an object's bytes from Kubo, as they come (the page checks them against
  the CID and the chain: this server is not trusted with integrity), within the read limit;
- ``POST /ipfs``: add a ciphertext (the page encrypts before it sends), pinned, within the limit;
- ``POST /relay/...``: forwarded to the relayer (``medvault relay serve``), when one is given;
- ``POST /dev-wallet``: on a local chain started with ``medvault portal --demo`` only, the
  development wallet: the demo's throwaway accounts sign there, so the portal can be tried
  without a browser extension.

Nothing here holds a patient's key or sees a plaintext.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from medvault.chain.artifacts import load_artifacts
from medvault.errors import ConfigurationError, MedvaultError
from medvault.ipfs import ReadLimits

if TYPE_CHECKING:
    from medvault.chain.artifacts import Deployment

__all__ = ["CONTENT_SECURITY_POLICY", "READ_METHODS", "DevWallet", "Portal", "default_dist"]

log = logging.getLogger("medvault.portal")

# Scripts and styles from this origin only, no inline code, no frames, no form posts elsewhere,
# and every fetch to this origin: no other site is reachable from the page. (What the page adds
# to IPFS is public, so this origin is the one way out, and only the page's code decides what
# goes there.)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
READ_METHODS = frozenset(
    {
        "eth_chainId",
        "eth_blockNumber",
        "eth_call",
        "eth_getLogs",
        "eth_getBlockByNumber",
        "eth_getTransactionReceipt",
        "eth_getTransactionCount",
        "eth_getBalance",
        "eth_getCode",
        "eth_estimateGas",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "net_version",
    }
)
CONTRACTS = {
    "ParticipantRegistry": "participant_registry",
    "RecordRegistry": "record_registry",
    "ConsentManager": "consent_manager",
    "KeeperDirectory": "keeper_directory",
}
MAX_RPC_BODY = 256 * 1024
LOCAL_CHAIN_ID = 31337
LOOPBACK = frozenset({"127.0.0.1", "localhost"})
MAX_BATCH = 32
CID_PATH = re.compile(r"^/ipfs/(b[a-z2-7]{20,100})$")


class DevWallet(Protocol):
    """Signs for the demo's accounts (a local chain only): what the page's development wallet asks."""

    def accounts(self) -> list[dict[str, str]]: ...

    def request(self, method: str, params: list[Any]) -> Any: ...


def default_dist() -> Path:
    """``web/dist`` of the checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "web" / "dist"


@dataclass
class Portal:
    """Serves ``dist`` and the deployment's endpoints on ``host:port`` (0: a free port)."""

    deployment: Deployment
    rpc_url: str
    ipfs_api: str
    dist: Path = field(default_factory=default_dist)
    relayer_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    limits: ReadLimits = field(default_factory=ReadLimits.from_env)
    dev_wallet: DevWallet | None = None
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.dev_wallet is not None and self.deployment.chain_id != LOCAL_CHAIN_ID:
            raise ConfigurationError("the development wallet is for a local chain (chain id 31337) only")
        if self.dev_wallet is not None and self.host not in LOOPBACK:
            raise ConfigurationError(f"the development wallet is served on loopback only, not on {self.host}")
        if not (self.dist / "index.html").is_file():
            raise ConfigurationError(
                f"the portal is not built: no {self.dist / 'index.html'}; `make install` (tools/install) builds it"
            )
        self.http = httpx.Client(timeout=30.0)
        self.config = json.dumps(self._config()).encode()

    @property
    def hosts(self) -> frozenset[str]:
        """The Host headers the page's own requests carry."""
        if self._server is None:
            return frozenset()
        port = self._server.server_address[1]
        return frozenset(f"{name}:{port}" for name in {self.host, "127.0.0.1", "localhost"})

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the portal is not started")
        return f"http://{self.host}:{self._server.server_address[1]}/"

    def start(self) -> Portal:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="portal-http", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.http.close()

    def _config(self) -> dict[str, Any]:
        artifacts = load_artifacts()
        d = self.deployment
        return {
            "chainId": d.chain_id,
            "deploymentBlock": d.block_number,
            "keySuite": d.key_suite.name,
            "contracts": {
                name: {"address": getattr(d, attr), "abi": artifacts[name].abi} for name, attr in CONTRACTS.items()
            },
            "relayer": self.relayer_url is not None,
            "maxRecordBytes": self.limits.of("record"),
            "devAccounts": self.dev_wallet.accounts() if self.dev_wallet else None,
        }

    # -- what the handler forwards ----------------------------------------------------------

    def rpc(self, body: bytes) -> tuple[int, bytes]:
        try:
            request = json.loads(body)
        except ValueError:
            return 400, _rpc_error(None, -32700, "the body is not JSON")
        calls = request if isinstance(request, list) else [request]
        for call in calls:
            method = call.get("method") if isinstance(call, dict) else None
            if method not in READ_METHODS:
                return 403, _rpc_error(
                    call.get("id") if isinstance(call, dict) else None,
                    -32601,
                    f"{method!r} is not a read this portal forwards: the wallet signs and sends",
                )
        if len(calls) > MAX_BATCH:
            return 400, _rpc_error(None, -32600, f"a batch of at most {MAX_BATCH} calls")
        # What was checked is what is sent: the parsed calls, not the raw text (a duplicated key).
        answer = self.http.post(self.rpc_url, json=request)
        return answer.status_code, answer.content

    def ipfs_get(self, cid: str) -> tuple[int, bytes]:
        limit = self.limits.of("record")
        params = {"arg": cid, "length": str(limit + 1), "offline": "true"}
        answer = self.http.post(f"{self.ipfs_api}/api/v0/cat", params=params)
        if answer.status_code != 200:
            return 404, _error("not-found", f"IPFS has no object {cid}")
        if len(answer.content) > limit:
            return 502, _error("too-large", f"the object {cid} is larger than {limit} bytes")
        return 200, answer.content

    def ipfs_add(self, data: bytes) -> tuple[int, bytes]:
        params = {"cid-version": "1", "raw-leaves": "true", "hash": "sha2-256", "chunker": "size-262144", "pin": "true"}
        answer = self.http.post(f"{self.ipfs_api}/api/v0/add", params=params, files={"file": ("blob", data)})
        if answer.status_code != 200:
            return 502, _error("ipfs", "the IPFS node refused the object")
        return 200, json.dumps({"cid": answer.json()["Hash"]}).encode()

    def dev_wallet_request(self, body: bytes) -> tuple[int, bytes]:
        if self.dev_wallet is None:
            return 404, json.dumps(
                {"error": "no-dev-wallet", "message": "this portal has no development wallet"}
            ).encode()
        try:
            call = json.loads(body)
            result = self.dev_wallet.request(str(call["method"]), list(call.get("params") or []))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return 400, json.dumps({"error": {"code": -32602, "message": str(exc)}}).encode()
        except MedvaultError as exc:
            return 200, json.dumps({"error": {"code": -32000, "message": str(exc)}}).encode()
        return 200, json.dumps({"result": result}).encode()

    def relay(self, path: str, body: bytes) -> tuple[int, bytes]:
        if path != "/v1/consent":
            return 404, _error("not-found", "POST /relay/v1/consent")
        if self.relayer_url is None:
            return 404, _error("no-relayer", "this portal has no relayer")
        answer = self.http.post(
            self.relayer_url.rstrip("/") + path, content=body, headers={"Content-Type": "application/json"}
        )
        return answer.status_code, answer.content


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": code, "message": message}).encode()


def _rpc_error(call_id: Any, code: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": call_id, "error": {"code": code, "message": message}}).encode()


def _handler(portal: Portal) -> type[BaseHTTPRequestHandler]:
    dist = portal.dist.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "medvault-portal/1"
        protocol_version = "HTTP/1.1"

        timeout = 30  # a client that stops sending mid-request frees its thread

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if refusal := self._refusal(post=False):
                self._send(403, _error("refused", refusal))
            elif path == "/config.json":
                self._send(200, portal.config, "application/json", cache=False)
            elif match := CID_PATH.match(path):
                status, data = self._forward(lambda: portal.ipfs_get(match.group(1)))
                # Bytes from IPFS are never a page of this origin: a download, sandboxed.
                extra = {"Content-Disposition": "attachment", "Content-Security-Policy": "sandbox"}
                self._send(
                    status, data, "application/octet-stream" if status == 200 else "application/json", extra=extra
                )
            else:
                self._static(path)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if refusal := self._refusal(post=True, binary=path == "/ipfs"):
                self.close_connection = True  # the body is left unread
                self._send(403, _error("refused", refusal))
                return
            declared = self.headers.get("Content-Length") or "0"
            length = int(declared) if declared.isdigit() else -1
            limit = portal.limits.of("record") if path == "/ipfs" else MAX_RPC_BODY
            if not 0 < length <= limit:
                self.close_connection = True
                self._send(413, _error("too-large", f"a body of 1 to {limit} bytes is expected"))
                return
            body = self.rfile.read(length)
            if path == "/rpc":
                status, data = self._forward(lambda: portal.rpc(body))
            elif path == "/ipfs":
                status, data = self._forward(lambda: portal.ipfs_add(body))
            elif path == "/dev-wallet":
                status, data = self._forward(lambda: portal.dev_wallet_request(body))
            elif path.startswith("/relay/"):
                status, data = self._forward(lambda: portal.relay(path.removeprefix("/relay"), body))
            else:
                status, data = 404, _error("not-found", path)
            self._send(status, data)

        def _forward(self, call: Any) -> tuple[int, bytes]:
            try:
                result: tuple[int, bytes] = call()
                return result
            except httpx.HTTPError as exc:
                log.warning("portal: upstream failed: %s", exc)
                return 502, _error("unavailable", "the node behind the portal does not answer")
            except Exception:  # an upstream answer of the wrong shape: logged here, not shown
                log.exception("portal: request failed")
                return 500, _error("internal", "the portal could not answer this request")

        def _refusal(self, *, post: bool, binary: bool = False) -> str | None:
            """Why this request is not the page's own, if it is not: a Host other than the portal's
            (DNS rebinding), or a POST from another origin or of a type a form can send."""
            host = self.headers.get("Host", "")
            if host not in portal.hosts:
                return f"Host {host!r} is not this portal's"
            if not post:
                return None
            origin = self.headers.get("Origin")
            if origin is not None and origin != f"http://{host}":
                return f"a request from {origin} is not the portal page's"
            if self.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
                return "a cross-site request is not the portal page's"
            kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            wanted = "application/octet-stream" if binary else "application/json"
            if kind != wanted:
                return f"Content-Type {kind or 'none'!r}: {wanted} is expected"
            return None

        def _static(self, path: str) -> None:
            relative = path.lstrip("/") or "index.html"
            target = (dist / relative).resolve()
            if not target.is_relative_to(dist) or not target.is_file():
                target = dist / "index.html"  # one page: any other path is the app's
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            # Hashed asset names never change; the page itself is always fetched again.
            self._send(200, target.read_bytes(), kind, cache=target.parent.name == "assets")

        def _send(
            self,
            status: int,
            data: bytes,
            kind: str = "application/json",
            *,
            cache: bool = False,
            extra: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "public, max-age=31536000, immutable" if cache else "no-store")
            for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
