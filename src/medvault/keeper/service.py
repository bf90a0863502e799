"""The key-release keeper: releases its escrowed shares of record keys while consent holds.

A keeper is an account a patient named in the KeeperDirectory (``Medvault.set_keepers``).
Every record written from then on escrows its key t-of-n among the patient's keepers, each
share HPKE-sealed to its keeper (``formats.keybundle.escrow_key``). A keeper holds no
key of any patient: only its own account and, sealed beside it, its own random encryption
keys (``medvault.accounts``: not derived from the account key), which open its shares.

``POST /v1/key-shares`` takes a reader's signed ``KeyRequest`` (``medvault.keeper.protocol``) and
checks, in order: the signature (``bad-signature``), the request's age against chain time
(``stale``), that it is addressed to this keeper and this keeper is the patient's
(``wrong-keeper``), that the record exists in the patient's verified log (``unknown-record``),
then consent on chain at the latest block (``no-grant``, ``revoked``, ``expired``,
``not-yet-valid``, ``out-of-scope``). Only then does it open its share from the record's key
bundle, wrap it to the reader's published key, journal the release and answer.

The journal is SQLite in the keeper's state folder, one row per release keyed by its release id
(the EIP-712 digest of the request; a retried request is served again and journaled once). A
background thread posts the receipts in batches with ``KeeperDirectory.recordReleases`` and
marks them once mined. Before posting, and at start-up, it reconciles with the chain: pending
releases whose ``KeyReleased`` event exists are marked, so a crash between mining and marking
never posts a receipt twice, and a release journaled before a crash is posted after it.

Chain and IPFS are reached over HTTP per call (web3's HTTPProvider, httpx), so the keeper
carries on across restarts of either; while one is down, requests get HTTP 503 with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from eth_utils.address import to_checksum_address
from web3.exceptions import TimeExhausted, Web3RPCError

from medvault.crypto import open_share, seal_share
from medvault.errors import (
    ChainUnavailableError,
    ConfigurationError,
    ContractError,
    DecryptionError,
    IntegrityError,
    IpfsError,
    IpfsUnavailableError,
)
from medvault.keeper.journal import Journal, PendingRelease
from medvault.keeper.protocol import KEY_SHARES_PATH, MAX_REQUEST_SKEW, Refusal, verify_key_request

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.crypto import RecordContext

__all__ = ["BATCH_SIZE", "KeeperService"]

BATCH_SIZE = 20  # receipts per recordReleases transaction; a full batch is posted at once
MAX_BODY = 64 * 1024
log = logging.getLogger("medvault.keeper")


class KeeperService:
    """One keeper: an HTTP server and a receipt batcher, over one Medvault client."""

    def __init__(
        self,
        wallet: Wallet,
        client: Medvault,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_seconds: float = 2.0,
        announce: str | None = None,
    ) -> None:
        self.wallet, self.client = wallet, client
        self.address = to_checksum_address(wallet.address)
        self.state_dir = Path(state_dir)
        self.host, self.port, self.batch_seconds, self.announce = host, port, batch_seconds, announce
        self._journal: Journal | None = None
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._uncertain = True  # reconcile before the next post (set at start-up and after a failed post)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise ConfigurationError("the keeper is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KeeperService:
        """Opens the journal, reconciles it with the chain, announces, then serves and batches."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._journal = Journal(self.state_dir / "journal.sqlite3")
        self.reconcile()
        if self.announce and self.client.keeper_urls([self.address])[self.address] != self.announce:
            self.client.announce_keeper(self.wallet, self.announce)
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name=f"keeper-http-{self.address[:8]}", daemon=True),
            threading.Thread(target=self._batch_loop, name=f"keeper-batch-{self.address[:8]}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("keeper %s serving at %s (journal %s)", self.address, self.url, self.state_dir)
        return self

    def stop(self, *, flush: bool = True) -> None:
        """Stops serving; with ``flush``, posts the pending receipts once more first (what
        cannot be posted stays journaled for the next start)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if flush and self._journal is not None:
            try:
                self.flush()
            except Exception as exc:  # the journal keeps them for the next start
                log.warning("keeper %s: receipts left pending at stop: %s", self.address, exc)
        if self._journal is not None:
            self._journal.close()
        self._server, self._journal, self._threads = None, None, []

    def __enter__(self) -> KeeperService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- releasing ----------------------------------------------------------------------------

    def handle(self, body: Any) -> tuple[int, dict[str, Any]]:
        """The HTTP status and JSON answer to a key-share request."""
        try:
            return 200, self.release(body)
        except Refusal as refusal:
            log.info("keeper %s refused: %s", self.address, refusal)
            return refusal.status, refusal.to_json()
        except (ChainUnavailableError, requests.ConnectionError, requests.Timeout) as exc:
            return _refuse("chain-unavailable", f"the Ethereum node does not answer ({type(exc).__name__})")
        except Web3RPCError as exc:
            return _refuse("chain-unavailable", f"the Ethereum node answered an error: {exc}")
        except (IpfsUnavailableError, IpfsError) as exc:
            return _refuse("ipfs-unavailable", str(exc))
        except IntegrityError as exc:
            return _refuse("integrity", str(exc))
        except Exception as exc:
            log.exception("keeper %s: internal error", self.address)
            return _refuse("internal", type(exc).__name__)

    def release(self, body: Any) -> dict[str, Any]:
        """Checks a signed request (see the module docstring) and releases this keeper's share."""
        client = self.client
        request, digest = verify_key_request(body, client.chain.chain_id, client.chain.keepers.address)
        now = client.now()
        if abs(request.issued_at - now) > MAX_REQUEST_SKEW:
            raise Refusal(
                "stale", f"issued at {request.issued_at}, chain time {now} (at most {MAX_REQUEST_SKEW} s apart)"
            )
        patient, reader = to_checksum_address(request.patient), to_checksum_address(request.reader)
        if to_checksum_address(request.keeper) != self.address:
            raise Refusal("wrong-keeper", f"addressed to {request.keeper}; this is keeper {self.address}")
        if self.address not in client.keepers_of(patient, with_urls=False).keepers:
            raise Refusal("wrong-keeper", f"{self.address} is not a keeper of {patient}")
        pointers = client.records(patient)
        if request.index >= len(pointers):
            raise Refusal("unknown-record", f"{patient} has no record {request.index} (records: {len(pointers)})")
        pointer = pointers[request.index]
        denial = client.access_denial(reader, pointer)
        if denial is not None:
            raise Refusal(*denial)
        context = client.context_of(pointer)
        share = self._open_share(pointer.keys_cid, patient, context)
        x, secret = share
        try:
            recipient = client.encryption_key(reader)
        except ConfigurationError as exc:
            raise Refusal("no-encryption-key", str(exc)) from None
        wrap = seal_share(secret, recipient, context.release_info(reader, self.address, x))
        release_id = "0x" + digest.hex()
        inserted, pending = self._opened().record(release_id, patient, pointer.index, reader, now)
        if inserted and pending >= BATCH_SIZE:
            self._wake.set()
        log.info(
            "keeper %s released share %d of record %d of %s to %s", self.address, x, pointer.index, patient, reader
        )
        return {"keeper": self.address, "x": x, "wrap": base64.b64encode(wrap).decode(), "releaseId": release_id}

    def _open_share(self, keys_cid: str, patient: str, context: RecordContext) -> tuple[int, bytes]:
        escrow = self.client.key_bundle(keys_cid, patient).escrow
        share = escrow.share_of(self.address) if escrow else None
        if share is None:
            raise Refusal("no-share", f"{context.describe()} escrows no share with {self.address}")
        info = context.escrow_info(self.address)
        # The keeper's own random HPKE keys, sealed beside its account key (never derived from it).
        for _, _, pair in self.wallet.keys.held(self.client.suite):
            with contextlib.suppress(DecryptionError):
                return share.x, open_share(share.wrap, pair, info, f"the escrowed share of {context.describe()}")
        raise IntegrityError(
            f"no key of {self.address} opens its escrowed share of {context.describe()} "
            "(a keeper registered before keys were random runs `medvault keys migrate` first)"
        )

    # -- receipts -----------------------------------------------------------------------------

    def pending(self) -> list[PendingRelease]:
        """Journaled releases without a receipt yet: (release id, patient, index, grantee, released at)."""
        return self._opened().pending()

    def journal(self) -> list[dict[str, Any]]:
        return self._opened().rows()

    def _opened(self) -> Journal:
        if self._journal is None:
            raise ConfigurationError("the keeper is not running: its journal is closed")
        return self._journal

    def reconcile(self) -> int:
        """Marks pending releases whose receipt is already on chain; how many."""
        pending = {row[0] for row in self.pending()}
        if not pending:
            self._uncertain = False
            return 0
        marked = 0
        for event in self.client.chain.events("KeeperDirectory", "KeyReleased", keeper=self.address):
            release_id = "0x" + bytes(event["args"]["releaseId"]).hex()
            if release_id in pending:
                self._opened().mark([release_id], event["transactionHash"].to_0x_hex())
                pending.discard(release_id)
                marked += 1
        self._uncertain = False
        if marked:
            log.info("keeper %s: %d receipts were already on chain", self.address, marked)
        return marked

    def flush(self) -> int:
        """Posts every pending receipt, BATCH_SIZE per transaction; how many were posted."""
        posted = 0
        with self._flush_lock:
            if self._uncertain:
                self.reconcile()
            while rows := self.pending()[:BATCH_SIZE]:
                try:
                    posted += self._post(rows)
                except Exception:
                    self._uncertain = True  # it may have been mined all the same
                    raise
        return posted

    def _post(self, rows: list[PendingRelease]) -> int:
        directory = self.client.chain.keepers.functions
        releases = [(patient, idx, grantee, at, bytes.fromhex(rid[2:])) for rid, patient, idx, grantee, at in rows]
        try:
            tx = self.client.chain.transact(self.wallet, directory.recordReleases(releases), "record key releases")
        except ContractError as exc:
            if len(rows) == 1:  # the chain refuses this one receipt (the patient removed this keeper)
                log.warning("keeper %s: the chain refuses the receipt of %s: %s", self.address, rows[0][0], exc)
                self._opened().reject(rows[0][0], str(exc))
                return 0
            return sum(self._post([row]) for row in rows)
        self._opened().mark([row[0] for row in rows], tx.tx_hash)
        log.info("keeper %s posted %d receipts in %s", self.address, len(rows), tx.tx_hash)
        return len(rows)

    def _batch_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.batch_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except (requests.ConnectionError, requests.Timeout, ChainUnavailableError, TimeExhausted) as exc:
                log.warning("keeper %s: receipts wait for the chain: %s", self.address, type(exc).__name__)
            except Exception:
                log.exception("keeper %s: posting receipts failed; they stay journaled", self.address)


def _refuse(reason: str, message: str) -> tuple[int, dict[str, Any]]:
    refusal = Refusal(reason, message)
    log.warning("keeper refused: %s", refusal)
    return refusal.status, refusal.to_json()


def _handler(service: KeeperService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "medvault-keeper/1"
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path != KEY_SHARES_PATH:
                self._answer(404, {"error": "not-found", "message": f"POST {KEY_SHARES_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._answer(400, {"error": "malformed", "message": f"a body of 1 to {MAX_BODY} bytes is expected"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                self._answer(400, {"error": "malformed", "message": "the body is not JSON"})
                return
            self._answer(*service.handle(body))

        def do_GET(self) -> None:
            if self.path != "/v1/health":
                self._answer(404, {"error": "not-found", "message": "GET /v1/health"})
                return
            chain = service.client.chain
            self._answer(
                200, {"keeper": service.address, "chainId": chain.chain_id, "directory": chain.keepers.address}
            )

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s " + format, self.address_string(), *args)

    return Handler
