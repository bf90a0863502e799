"""The key-release keeper: releases its escrowed shares of record keys while consent holds.

A keeper is an account a patient named in the KeeperDirectory (``Medvault.set_keepers``).
Every record written from then on escrows its key t-of-n among the patient's keepers, each
share HPKE-sealed to its keeper (``formats.keybundle.escrow_key``). A keeper holds no
key of any patient: only its own account and, sealed beside it, its own random encryption
keys (``medvault.accounts``: not derived from the account key), which open its shares.

``POST /v1/key-shares`` takes a reader's signed ``KeyRequest`` (``medvault.keeper.protocol``)
and checks, in order: the signature (``bad-signature``), that it is addressed to this keeper
(``wrong-keeper``), the reader's request rate (``rate-limited``); then, on one settled block
(``medvault.keeper.settled``: head minus the confirmations, no older than the lag allows
(``chain-stale``), agreed by a second RPC endpoint if configured (``chain-disagrees``)), the
request's age against that block's time (``stale``), that this keeper is in the patient's
current set (``wrong-keeper``), that the record exists in the patient's log (``unknown-record``)
and that its event checks against the hash chain (``integrity``; ``medvault.keeper.reads``: the
record's and its predecessor's events alone, not the whole log), then consent (``no-grant``,
``revoked``, ``expired``, ``not-yet-valid``, ``out-of-scope``), then that the record's pointer
is usable (``bad-record``). Only then does it open its share, from the set's re-escrow of the
record if there is one, else from the record's key bundle (a missing or malformed one is
``bad-record`` too), wrap it to the reader's published key, journal the release and answer. A
bad record refuses that record alone: the patient's other records are served as before.

The journal is SQLite in the keeper's state folder, one row per release keyed by its release id
(the EIP-712 digest of the request; a retried request is served again and journaled once), and
one per reader, record and receipt bucket of chain time (distinct requests within a bucket are
served and accounted under the first). A receipt carries the reader's signature, which the chain
checks, and the block decided on. A background thread posts the receipts in batches with
``KeeperDirectory.recordReleases`` and marks them once mined. Before posting, and at start-up,
it reconciles with the chain: pending releases whose ``KeyReleased`` event exists are marked, so
a crash between mining and marking never posts a receipt twice, and a release journaled before a
crash is posted after it.

A decision reads the chain in three batched JSON-RPC round trips (``medvault.keeper.reads``);
bundles (by CID) and readers' keys (by hash) are kept, since they cannot change. Chain and IPFS
are reached over HTTP (kept-alive connections, opened again when dropped), so the keeper carries
on across restarts of either; while one is down, requests get HTTP 503 with the reason.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from eth_utils.address import to_checksum_address
from web3.exceptions import TimeExhausted, Web3RPCError

from medvault.chain import Chain, connect, load_artifacts
from medvault.crypto import open_share, seal_share
from medvault.errors import (
    BadRecordError,
    ChainUnavailableError,
    ConfigurationError,
    ContractError,
    DecryptionError,
    IntegrityError,
    InvalidCidError,
    IpfsError,
    IpfsUnavailableError,
    ObjectTooLargeError,
)
from medvault.formats.keybundle import served_escrow
from medvault.keeper.journal import Journal, Receipt
from medvault.keeper.protocol import MAX_REQUEST_SKEW, KeyRequest, Refusal, verify_key_request
from medvault.keeper.reads import ChainReads, NodeAnswerError, record_at
from medvault.keeper.server import key_share_handler
from medvault.keeper.settled import MAX_HEAD_GAP, Freshness, PinnedBlock, PinnedChain, Settlement
from medvault.keeper.urls import check_keeper_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.crypto import RecordContext
    from medvault.formats.keybundle import KeyBundle
    from medvault.model import KeeperSet, RecordPointer

__all__ = ["BATCH_SIZE", "RECEIPT_BUCKET", "KeeperService"]

BATCH_SIZE = 20  # receipts per recordReleases transaction; a full batch is posted at once
RECEIPT_BUCKET = 3600  # seconds of chain time: one receipt per reader, record and bucket
RATE_LIMIT = 600  # requests per reader ...
RATE_WINDOW = 3600.0  # ... per this many seconds
RATE_READERS = 10_000  # readers tracked before those idle for a whole window are forgotten
BUNDLE_CACHE = 256  # parsed key bundles kept ...
CACHE_ITEMS = 200_000  # ... holding at most this many wraps and shares in all (bundles may be large)
REQUEST_BUNDLES = 2  # bundles' worth one request may read from IPFS (the set's re-escrow, the record's own) ...
REQUEST_SECONDS = 10.0  # ... in at most this many seconds
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
        settlement: Settlement | None = None,
        receipt_bucket: int = RECEIPT_BUCKET,
        rate_limit: int = RATE_LIMIT,
        rate_window: float = RATE_WINDOW,
    ) -> None:
        self.wallet, self.client = wallet, client
        self.address = to_checksum_address(wallet.address)
        self.state_dir = Path(state_dir)
        self.host, self.port, self.batch_seconds, self.announce = host, port, batch_seconds, announce
        self.settlement = settlement or Settlement.for_chain(client.chain.chain_id)
        if receipt_bucket < 0 or rate_limit < 1 or rate_window <= 0:
            raise ConfigurationError("the rate limit and window must be positive, the receipt bucket 0 or more")
        self.receipt_bucket, self.rate_limit, self.rate_window = receipt_bucket, rate_limit, rate_window
        self._reads: ChainReads | None = None  # opened by start
        self._second: ChainReads | None = None
        self._freshness = Freshness()
        self._lock = threading.Lock()  # guards the in-memory state below (rate windows, bundle cache)
        self._requests: dict[str, collections.deque[float]] = {}
        self._bundles: dict[tuple[str, str], KeyBundle] = {}
        self._cached_items = 0
        self._journal: Journal | None = None
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._uncertain = True  # reconcile before the next post (set at start-up and after a failed post)
        self._server: ThreadingHTTPServer | None = None
        self.connections: set[socket.socket] = set()  # open HTTP connections (set operations are atomic)
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
        if self.announce:
            try:
                check_keeper_url(self.announce, allow_private=True)  # readers check the address themselves
            except ValueError as exc:
                raise ConfigurationError(f"cannot announce {self.announce}: {exc}") from None
        if self._reads is None:
            self._reads = ChainReads(self.client.chain)
        if self.settlement.second_rpc and self._second is None:
            chain = self.client.chain
            second = Chain(connect(self.settlement.second_rpc), chain.deployment, load_artifacts())
            if second.w3.eth.chain_id != chain.chain_id:
                raise ConfigurationError(f"the second RPC endpoint serves chain {second.w3.eth.chain_id}")
            self._second = ChainReads(second)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._journal = Journal(self.state_dir / "journal.sqlite3")
        self.reconcile()
        if self.announce and self.client.keeper_urls([self.address])[self.address] != self.announce:
            self.client.announce_keeper(self.wallet, self.announce)
        self._server = ThreadingHTTPServer((self.host, self.port), key_share_handler(self))
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
            for connection in list(self.connections):  # kept-alive ones: no request is served after stop
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if flush and self._journal is not None:
            try:
                self.flush()
            except Exception as exc:  # the journal keeps them for the next start
                log.warning("keeper %s: receipts left pending at stop: %s", self.address, exc)
        for reads in (self._reads, self._second):
            if reads is not None:
                reads.close()
        self._reads = self._second = None
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
        except (Web3RPCError, NodeAnswerError) as exc:
            return _refuse("chain-unavailable", f"the Ethereum node answered an error: {exc}")
        except ObjectTooLargeError as exc:
            return _refuse("too-large", str(exc))
        except (IpfsUnavailableError, IpfsError) as exc:
            return _refuse("ipfs-unavailable", str(exc))
        except (BadRecordError, InvalidCidError) as exc:  # a record's pointer, or its keeper set's re-escrow
            return _refuse("bad-record", str(exc))
        except IntegrityError as exc:
            return _refuse("integrity", str(exc))
        except Exception as exc:
            log.exception("keeper %s: internal error", self.address)
            return _refuse("internal", type(exc).__name__)

    def release(self, body: Any) -> dict[str, Any]:
        """Checks a signed request (see the module docstring) and releases this keeper's share."""
        client = self.client
        request, digest = verify_key_request(body, client.chain.chain_id, client.chain.keepers.address)
        if to_checksum_address(request.keeper) != self.address:
            raise Refusal("wrong-keeper", f"addressed to {request.keeper}; this is keeper {self.address}")
        patient, reader = to_checksum_address(request.patient), to_checksum_address(request.reader)
        self._limit(reader)
        reads = self._reads
        if reads is None:
            raise ConfigurationError("the keeper is not running")
        block = reads.pin(self.settlement.confirmations)
        self._freshness.check(block, self.settlement.max_lag)
        ipfs = client.ipfs.budgeted(REQUEST_BUNDLES * client.ipfs.limits.bundle, REQUEST_SECONDS)
        view = type(client)(PinnedChain(client.chain, block), ipfs)
        decision = self._decide(reads, view, block, request)
        if self._second is not None:
            self._agree(block, request, decision)
        if isinstance(decision, Refusal):
            raise decision
        pointer, keepers, recipient = decision
        context = client.context_of(pointer)
        x, secret = self._open_share(view, pointer, keepers, context)
        wrap = seal_share(secret, recipient, context.release_info(reader, self.address, x))
        receipt = Receipt(
            "0x" + digest.hex(), patient, pointer.index, reader, block.timestamp, request.issued_at,
            block.number, bytes.fromhex(str(body["signature"]).removeprefix("0x")),
        )  # fmt: skip
        bucket = block.timestamp // self.receipt_bucket if self.receipt_bucket else None
        release_id, inserted, pending = self._opened().record(receipt, bucket)
        if inserted and pending >= BATCH_SIZE:
            self._wake.set()
        log.info(
            "keeper %s released share %d of record %d of %s to %s at block %d",
            self.address, x, pointer.index, patient, reader, block.number,
        )  # fmt: skip
        return {"keeper": self.address, "x": x, "wrap": base64.b64encode(wrap).decode(), "releaseId": release_id}

    def _decide(
        self, reads: ChainReads, view: Medvault, block: PinnedBlock, request: KeyRequest
    ) -> tuple[RecordPointer, KeeperSet, bytes] | Refusal:
        """The record to release, the keeper set and the reader's published key to seal the
        share to, or why not, as the chain stood at ``block`` (all of it is what a second
        endpoint must agree on: a node lying about the reader's key alone would otherwise have
        the share sealed to a key of its choosing). ``reads`` ask the chain in two batches
        (``medvault.keeper.reads``); ``view``, pinned to the same block, words a refusal of consent."""
        if abs(request.issued_at - block.timestamp) > MAX_REQUEST_SKEW:
            return Refusal(
                "stale",
                f"issued at {request.issued_at}, chain time {block.timestamp} (at most {MAX_REQUEST_SKEW} s apart)",
            )
        patient, reader = to_checksum_address(request.patient), to_checksum_address(request.reader)
        facts = reads.release_facts(block, patient, request.index, reader)
        if self.address not in facts.keepers.keepers:
            return Refusal("wrong-keeper", f"{self.address} is not a keeper of {patient}")
        if request.index >= facts.count:
            return Refusal("unknown-record", f"{patient} has no record {request.index} (records: {facts.count})")
        pointer = record_at(facts, patient, request.index)
        own = reader in (pointer.patient, pointer.author)  # the chain's policy lets these read without asking
        allowed, key = reads.consent_and_key(block, pointer, reader, facts.key_hash, ask=not own)
        if not allowed and (denial := view.access_denial(reader, pointer)) is not None:
            return Refusal(*denial)
        if pointer.problem:
            return Refusal("bad-record", pointer.problem)
        if facts.key_hash == bytes(32):
            return Refusal("no-encryption-key", f"{reader} has not registered an encryption key (`medvault register`)")
        if key is None:
            raise IntegrityError(f"no ParticipantRegistered event of {reader} matches its stored key hash")
        return pointer, facts.keepers, key

    def _agree(
        self, block: PinnedBlock, request: KeyRequest, decision: tuple[RecordPointer, KeeperSet, bytes] | Refusal
    ) -> None:
        """Refuses unless the second endpoint holds ``block`` and decides the same on it."""
        assert self._second is not None
        second = self._second
        theirs, head = second.batch([("eth_getBlockByNumber", [hex(block.number), False]), ("eth_blockNumber", [])])
        if not isinstance(theirs, dict) or str(theirs.get("hash")).removeprefix("0x").lower() != block.hash:
            raise Refusal(
                "chain-disagrees", f"the second RPC endpoint holds another block {block.number} (a reorg or a fork)"
            )
        if int(head, 16) - block.head > MAX_HEAD_GAP:
            raise Refusal(
                "chain-stale",
                f"the Ethereum node's head {block.head} is {int(head, 16) - block.head} blocks behind "
                "the second RPC endpoint's",
            )
        view = type(self.client)(PinnedChain(second.chain, block), self.client.ipfs)
        other = self._decide(second, view, block, request)
        mine = (decision.reason, decision.message) if isinstance(decision, Refusal) else decision
        seen = (other.reason, other.message) if isinstance(other, Refusal) else other
        if mine != seen:
            raise Refusal("chain-disagrees", f"the second RPC endpoint decides otherwise at block {block.number}")

    def _limit(self, reader: str) -> None:
        """Refuses (``rate-limited``) a reader past ``rate_limit`` requests in ``rate_window`` seconds."""
        now = time.monotonic()
        with self._lock:
            if reader not in self._requests and len(self._requests) >= RATE_READERS:
                # Addresses cost nothing to make: forget the readers idle for a whole window.
                idle = [r for r, t in self._requests.items() if not t or t[-1] <= now - self.rate_window]
                for r in idle:
                    del self._requests[r]
            times = self._requests.setdefault(reader, collections.deque())
            while times and times[0] <= now - self.rate_window:
                times.popleft()
            if len(times) >= self.rate_limit:
                raise Refusal(
                    "rate-limited",
                    f"{reader} made {len(times)} requests in {self.rate_window:.0f} s (at most {self.rate_limit})",
                )
            times.append(now)

    def _open_share(
        self, view: Medvault, pointer: RecordPointer, keepers: KeeperSet, context: RecordContext
    ) -> tuple[int, bytes]:
        """This keeper's share of ``pointer``'s key, from the escrow readers ask for too
        (``served_escrow``: the set's re-escrow of the record, else the record's own)."""
        patient, escrow_cid = pointer.patient, keepers.escrow_cid
        reescrow = (
            self._bundle(escrow_cid, patient, lambda: view.key_bundle(escrow_cid, patient)) if escrow_cid else None
        )

        def own() -> KeyBundle:  # the record's own bundle: a bad one refuses this record alone (bad-record)
            return self._bundle(pointer.keys_cid, patient, lambda: view.record_bundle(pointer))

        escrow = served_escrow(pointer.index, reescrow, own)
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

    def _bundle(self, cid: str, patient: str, load: Callable[[], KeyBundle]) -> KeyBundle:
        """The key bundle ``cid``, parsed by ``load`` once (content-addressed: a bundle once read
        never changes)."""
        with self._lock:
            bundle = self._bundles.get((cid, patient))
        if bundle is None:
            bundle = load()
            with self._lock:
                if (cid, patient) not in self._bundles:
                    self._bundles[(cid, patient)] = bundle
                    self._cached_items += _items(bundle)
                while len(self._bundles) > BUNDLE_CACHE or self._cached_items > CACHE_ITEMS:
                    self._cached_items -= _items(self._bundles.pop(next(iter(self._bundles))))
        return bundle

    # -- receipts -----------------------------------------------------------------------------

    def pending(self) -> list[Receipt]:
        """Journaled releases without a receipt yet, oldest first."""
        return self._opened().pending()

    def journal(self) -> list[dict[str, Any]]:
        return self._opened().rows()

    def _opened(self) -> Journal:
        if self._journal is None:
            raise ConfigurationError("the keeper is not running: its journal is closed")
        return self._journal

    def reconcile(self) -> int:
        """Marks pending releases whose receipt is already on chain; how many."""
        pending = {row.release_id for row in self.pending()}
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

    def _post(self, rows: list[Receipt]) -> int:
        directory = self.client.chain.keepers.functions
        releases = [row.to_release() for row in rows]
        try:
            tx = self.client.chain.transact(self.wallet, directory.recordReleases(releases), "record key releases")
        except ContractError as exc:
            if len(rows) == 1:  # the chain refuses this one receipt for good
                log.warning("keeper %s: the chain refuses the receipt of %s: %s", self.address, rows[0].release_id, exc)
                self._opened().reject(rows[0].release_id, str(exc))
                return 0
            return sum(self._post([row]) for row in rows)
        self._opened().mark([row.release_id for row in rows], tx.tx_hash)
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


def _items(bundle: KeyBundle) -> int:
    """How many wraps and escrowed shares ``bundle`` holds: what its parsed size grows with."""
    return len(bundle.wraps) + sum(len(e.shares) for e in [bundle.escrow, *(e for _, e in bundle.escrows)] if e)


def _refuse(reason: str, message: str) -> tuple[int, dict[str, Any]]:
    refusal = Refusal(reason, message)
    log.warning("keeper refused: %s", refusal)
    return refusal.status, refusal.to_json()
