"""The relayer: sends consent changes people signed as EIP-712 typed data, paying their gas.

``POST /v1/consent`` takes ``{"typedData": ..., "signature": "0x..."}``, what ``--sign-only``
prints (and what ``medvault relay FILE`` reads), spelled as any wallet writes it
(``SignedConsent.from_json``). The relayer checks the domain is its deployment's (chain id,
verifying contract; ``wrong-domain``), recovers the signer, limits each signer's rate (a token
bucket; ``rate-limited`` with Retry-After), then runs the ``...BySig`` call at the latest block:
a change the chain would refuse is answered with the contract's refusal in words
(``would-revert``, :mod:`medvault.chain.refusals`) and costs nothing. Only then does it send the
change from its own account, one at a time (one nonce sequence), and wait for the receipt; a
transaction mined but reverted is ``reverted``. ``GET /v1/health`` names the relayer, its chain
and its balance.

A browser page of another origin may call it only when the relayer was started with that
origin (CORS). Each request is logged on one line: the signer, the kind of change and the
outcome; never a body.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import requests
from web3.exceptions import TimeExhausted, Web3Exception, Web3RPCError

from medvault.client.consent_sig import SignedConsent, consent_call
from medvault.errors import ChainUnavailableError, ConfigurationError, ContractError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from medvault.accounts import Wallet
    from medvault.client import Medvault

__all__ = ["CONSENT_PATH", "DEFAULT_RATE", "HEALTH_PATH", "MAX_BODY", "RateLimiter", "RelayerService", "Reply"]

CONSENT_PATH, HEALTH_PATH = "/v1/consent", "/v1/health"
MAX_BODY = 64 * 1024  # a signed change is about 2 KiB
DEFAULT_RATE = 10  # changes per signer per minute
IDLE_SECONDS = 30.0  # a kept-alive connection idle this long is closed
STOP_SECONDS = 90.0  # at stop, a change being sent gets this long to be mined and answered
TRACKED_SIGNERS = 10_000  # buckets kept before the full ones are forgotten
METHODS = {CONSENT_PATH: "POST", HEALTH_PATH: "GET"}
log = logging.getLogger("medvault.relayer")


@dataclass
class Reply:
    """One answer: status, JSON body, extra headers, and what the log line says of the request."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    signer: str = "-"
    kind: str = "-"

    @classmethod
    def error(cls, status: int, code: str, message: str, **extra: Any) -> Reply:
        return cls(status, {"error": code, "message": message, **extra})


class RateLimiter:
    """A token bucket per key: ``rate`` requests a minute, in bursts of up to ``rate``."""

    def __init__(self, rate: int) -> None:
        if rate < 1:
            raise ConfigurationError(f"the rate must be at least 1 request a minute, not {rate}")
        self.rate, self.per_second = float(rate), rate / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Takes a token of ``key``'s bucket: 0 if there was one, else the seconds until there is."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if key not in self._buckets and len(self._buckets) >= TRACKED_SIGNERS:
                # Addresses cost nothing to make: forget the buckets that have filled up again.
                full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * self.per_second >= self.rate]
                for k in full:
                    del self._buckets[k]
            tokens, at = self._buckets.get(key, (self.rate, now))
            tokens = min(self.rate, tokens + (now - at) * self.per_second)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.per_second
            self._buckets[key] = (tokens - 1, now)
            return 0.0


class RelayerService:
    """An HTTP server that relays signed consent changes from ``wallet``'s account."""

    def __init__(
        self,
        wallet: Wallet,
        client: Medvault,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate: int = DEFAULT_RATE,
        allow_origins: Iterable[str] = (),
    ) -> None:
        self.wallet, self.client, self.address = wallet, client, wallet.address
        self.host, self.port = host, port
        self.limiter = RateLimiter(rate)
        self.allow_origins = frozenset(allow_origins)
        self._send_lock = threading.Lock()  # one change sent at a time: one nonce sequence
        self._busy = threading.Condition()
        self._in_flight = 0
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.connections: set[socket.socket] = set()  # open HTTP connections (set operations are atomic)

    @property
    def url(self) -> str:
        if self._server is None:
            raise ConfigurationError("the relayer is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RelayerService:
        self._stopping = False
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="relayer-http", daemon=True)
        self._thread.start()
        log.info("relayer %s serving chain %d at %s", self.address, self.client.chain.chain_id, self.url)
        return self

    def stop(self) -> None:
        """Stops taking requests, lets a change being sent be mined and answered, then closes."""
        if self._server is None:
            return
        self._stopping = True  # a kept-alive connection's next request is refused from here on
        self._server.shutdown()
        self._server.server_close()
        with self._busy:
            self._busy.wait_for(lambda: self._in_flight == 0, timeout=STOP_SECONDS)
        for connection in list(self.connections):  # kept-alive ones: no request is served after stop
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._server, self._thread = None, None

    def __enter__(self) -> RelayerService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @contextlib.contextmanager
    def busy(self) -> Iterator[bool]:
        """Counts a request in flight for ``stop`` to wait on; gives False once stopping."""
        with self._busy:
            self._in_flight += 1
        try:
            yield not self._stopping
        finally:
            with self._busy:
                self._in_flight -= 1
                self._busy.notify_all()

    def health(self) -> Reply:
        chain = self.client.chain
        try:
            balance = chain.w3.eth.get_balance(self.address)
        except (requests.RequestException, Web3Exception, ChainUnavailableError) as exc:
            return Reply.error(503, "chain-unavailable", f"the Ethereum node does not answer ({type(exc).__name__})")
        # The balance as a decimal string: wei outgrow the numbers JavaScript holds exactly.
        return Reply(200, {"ok": True, "chainId": chain.chain_id, "relayer": self.address, "balanceWei": str(balance)})

    def relay(self, body: bytes) -> Reply:
        """Checks one signed change (see the module docstring), sends it and waits for it."""
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return Reply.error(400, "malformed", "the body is not JSON")
        if not isinstance(raw, dict) or "typedData" not in raw or "signature" not in raw:
            return Reply.error(400, "malformed", 'the body must be {"typedData": {...}, "signature": "0x..."}')
        try:
            signed = SignedConsent.from_json(body)
        except ConfigurationError as exc:
            return Reply.error(400, "malformed", str(exc))
        kind, chain = signed.action, self.client.chain
        domain = signed.typed_data["domain"]
        if (int(domain["chainId"]), domain["verifyingContract"]) != (chain.chain_id, chain.consent.address):
            message = (
                f"this {kind} is signed for chain {domain['chainId']} and the ConsentManager at "
                f"{domain['verifyingContract']}; this relayer serves chain {chain.chain_id}, whose ConsentManager "
                f"is at {chain.consent.address}: sign it again for this deployment"
            )
            return Reply(422, {"error": "wrong-domain", "message": message}, kind=kind)
        try:
            signer = signed.signer()
        except ConfigurationError as exc:
            return Reply(400, {"error": "bad-signature", "message": str(exc)}, kind=kind)
        reply = self._relay(signed, signer)
        reply.signer, reply.kind = signer, kind
        return reply

    def _relay(self, signed: SignedConsent, signer: str) -> Reply:
        wait = self.limiter.take(signer)
        if wait:
            retry = math.ceil(wait)
            reply = Reply.error(429, "rate-limited", f"{signer} sent too many changes: try again in {retry} s")
            reply.headers["Retry-After"] = str(retry)
            return reply
        chain, change = self.client.chain, signed.change
        action = f"{change.action} for {change.patient}"
        try:
            # What the chain would say, at the latest block, before any gas is spent.
            chain.dry_run(self.address, consent_call(chain, change, signed.authorization()), action)
            with self._send_lock:  # checked again inside: a change sent meanwhile may have spent the nonce
                result = self.client.relay(self.wallet, signed, clean_up=False)
        except ContractError as exc:
            if exc.name == "Reverted":
                return Reply.error(409, "reverted", str(exc), transactionHash=exc.arguments.get("tx"))
            if exc.name == "RpcError":
                return Reply.error(502, "chain-error", str(exc))
            return Reply.error(422, "would-revert", str(exc), refusal=exc.name)
        except ConfigurationError as exc:
            return Reply.error(422, "would-revert", str(exc))
        except TimeExhausted as exc:
            return Reply.error(504, "not-mined", str(exc))
        except Web3RPCError as exc:
            return Reply.error(502, "chain-error", f"the Ethereum node answered an error: {exc.message or exc}")
        except (requests.RequestException, ChainUnavailableError) as exc:
            return Reply.error(503, "chain-unavailable", f"the Ethereum node does not answer ({type(exc).__name__})")
        body = {"transactionHash": result.tx_hash, "blockNumber": result.block_number}
        return Reply(200, {**body, "signer": signer, "kind": signed.action})


def _handler(service: RelayerService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "medvault-relayer/1"
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        timeout = IDLE_SECONDS

        def setup(self) -> None:
            super().setup()
            service.connections.add(self.connection)

        def finish(self) -> None:
            service.connections.discard(self.connection)
            super().finish()

        def _serve(self) -> None:
            method, path = self.command, self.path.split("?", 1)[0]
            with service.busy() as serving:
                try:
                    reply = self._reply(method, path) if serving else Reply.error(503, "stopping", "the relayer stops")
                    self.close_connection |= not serving
                except Exception:
                    log.exception("relayer: internal error on %s %s", method, path)
                    reply = Reply.error(500, "internal", "the relayer failed; see its log")
                self._answer(reply)
                outcome = reply.body.get("error") or reply.body.get("transactionHash") or "ok"
                log.info("%s %s %d %s signer=%s kind=%s", method, path, reply.status, outcome, reply.signer, reply.kind)

        do_GET = do_POST = do_OPTIONS = do_PUT = do_DELETE = do_PATCH = _serve

        def _reply(self, method: str, path: str) -> Reply:
            allowed = METHODS.get(path)
            if allowed is None:
                return Reply.error(404, "not-found", f"no {path}: POST {CONSENT_PATH} or GET {HEALTH_PATH}")
            if method == "OPTIONS":
                return Reply(204, {}, {"Allow": f"{allowed}, OPTIONS", "Access-Control-Max-Age": "600"})
            if method != allowed:
                reply = Reply.error(405, "method-not-allowed", f"{path} takes {allowed}")
                reply.headers["Allow"] = f"{allowed}, OPTIONS"
                return reply
            if method == "GET":
                return service.health()
            if self.headers.get_content_type() != "application/json":
                self.close_connection = True  # the body is left unread
                return Reply.error(415, "unsupported-media-type", "send the body as application/json")
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                length = -1
            if length > MAX_BODY:
                self.close_connection = True
                return Reply.error(413, "too-large", f"a body of at most {MAX_BODY} bytes is expected")
            if length <= 0:
                self.close_connection = True
                return Reply.error(400, "malformed", "a body with its Content-Length is expected")
            return service.relay(self.rfile.read(length))

        def _answer(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode() if reply.status != 204 else b""
            self.send_response(reply.status)
            headers = dict(reply.headers)
            origin = self.headers.get("Origin")
            if service.allow_origins:
                headers["Vary"] = "Origin"  # the answer differs by origin: caches must not mix them
            if origin is not None and origin in service.allow_origins:
                headers |= {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "Retry-After"}
                if self.command == "OPTIONS":
                    headers |= {"Access-Control-Allow-Methods": headers.get("Allow", "GET, POST, OPTIONS"),
                                "Access-Control-Allow-Headers": "Content-Type"}  # fmt: skip
            if data:
                headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(data))
            if self.close_connection:  # a body left unread, or stopping: the client must not reuse it
                headers["Connection"] = "close"
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
