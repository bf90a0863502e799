"""Bounded IPFS reads on a real Kubo: a small DAG that expands to gigabytes, a root that
understates its size, objects over a configured limit; readers and keepers refuse them quickly,
with bounded memory, and say which CID, how large and which limit. The bad-input rows each leave
the chain, the pin set and the home as they were."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import tracemalloc
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from dags import LEAF, block_size, empty_directory, expanding_dag, hostile_pointer
from helpers import add, new_wallet
from unchanged import unchanged

from medvault.accounts import Keystore
from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cids import cid_to_bytes
from medvault.client import Medvault
from medvault.dev.node import free_port
from medvault.errors import BadRecordError, ConfigurationError, IpfsError, IpfsUnavailableError, ObjectTooLargeError
from medvault.ipfs import IpfsClient, ReadLimits
from medvault.keeper import KeeperService, service
from medvault.keeper.protocol import KeyRequest, Refusal, post_key_request, sign_key_request
from medvault.model import Category, Role
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

BOMB_LINKS = 7000  # a root of ~350 KB whose links stream 7,000 MiB


@dataclass
class World:
    """One deployment for the module: a patient whose record 1 is an expanding DAG and whose
    record 2 names one as its key bundle, and a keeper of the patient."""

    mv: Medvault
    api: str
    home: Path
    patient: Wallet
    other: Wallet  # a patient whose keeper set names the expanding DAG as its re-escrow bundle
    provider: Wallet
    keeper: KeeperService
    bomb: str  # 7,000 links to one 1 MiB leaf, stated truthfully
    liar: str  # 40 links to one 1 MiB leaf, each stated as 10 bytes
    blob: str  # 2 KiB raw block
    directory: str  # an empty UnixFS directory

    def mv_with(self, **env: str) -> Medvault:
        """The same deployment through a client made while the environment held ``env``."""
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            return Medvault(self.mv.chain, IpfsClient(self.api))

    def ask_keeper(self, index: int, patient: Wallet | None = None) -> Any:
        """The keeper's answer to the patient asking for its own record ``index``."""
        chain, patient = self.mv.chain, patient or self.patient
        request = KeyRequest(patient.address, index, patient.address, self.keeper.address, self.mv.now())
        return post_key_request(
            self.keeper.url, sign_key_request(patient, request, chain.chain_id, chain.keepers.address)
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, w3: Web3, local_node: NodeInfo) -> Iterator[World]:
    home = tmp_path_factory.mktemp("bad-ipfs") / "home"
    keystore = Keystore(home)
    admin, patient, other, provider, keeper = (
        new_wallet(keystore, w3, n) for n in ("admin", "patient", "other", "provider", "keeper")
    )
    deployment, _ = deploy(w3, admin, home)
    api = local_node.ipfs_api
    mv = Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(api))
    for wallet in (patient, other, provider, keeper):
        mv.register(wallet)
    mv.accredit(admin, provider.address, Role.PROVIDER)
    for wallet in (patient, other):
        mv.set_writer(wallet, provider.address, frozenset(Category))
        mv.set_keepers(wallet, [keeper.address], 1)
    port = free_port()
    service = KeeperService(
        keeper, Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(api)), home / "keeper",
        port=port, batch_seconds=0.2, announce=f"http://127.0.0.1:{port}",
    ).start()  # fmt: skip
    good = add(mv, provider, patient)
    bomb = expanding_dag(api, BOMB_LINKS)
    blob_bytes = mv.ipfs.cat(good.cid)
    hostile_pointer(mv, provider, patient.address, bomb, hashlib.sha256(b"").digest(), good.keys_cid)  # record 1
    hostile_pointer(mv, provider, patient.address, good.cid, hashlib.sha256(blob_bytes).digest(), bomb)  # record 2
    add(mv, provider, other)
    fn = mv.chain.keepers.functions.setKeepers([keeper.address], 1, cid_to_bytes(bomb))
    mv.chain.transact(other, fn, "name the expanding DAG as the re-escrow")
    liar = expanding_dag(api, 40, stated_leaf=10, fill=b"y")
    blob = mv.ipfs.add(b"z" * 2048, pin=False)
    yield World(mv, api, home, patient, other, provider, service, bomb, liar, blob, empty_directory(api))
    service.stop()


def peak_while(action: Callable[[], Any]) -> tuple[BaseException | None, int]:
    """What ``action`` raised and the most Python memory it held at once."""
    tracemalloc.start()
    try:
        action()
        raised = None
    except Exception as exc:
        raised = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return raised, peak


def test_the_expanding_dag_is_what_it_claims(world: World) -> None:
    assert block_size(world.api, world.bomb) < 400_000  # one small block ...
    assert world.mv.ipfs.stated_size(world.bomb) == BOMB_LINKS * LEAF  # ... that expands to 7,000 MiB


def test_reader_and_keeper_refuse_an_expanding_dag_with_bounded_memory(world: World, w3: Web3) -> None:
    patient = world.patient
    for action, words in [
        (lambda: world.mv.read_record(patient, patient.address, 1), "for a record's ciphertext"),
        (lambda: world.mv.read_record(patient, patient.address, 2), "for a key bundle"),
        (lambda: world.ask_keeper(2), "for a key bundle"),
    ]:
        with unchanged(w3, world.mv.ipfs, world.home):
            raised, peak = peak_while(action)
        assert isinstance(raised, BadRecordError | Refusal), raised  # a bad record, and nothing else
        assert f"IPFS object {world.bomb} states 7,340,032,000 bytes" in str(raised)
        assert words in str(raised)
        assert peak < 8 << 20, peak  # it read the root's stated size, never the 7,000 MiB
    assert isinstance(raised, Refusal)
    assert (raised.reason, raised.status) == ("bad-record", 422)


def test_verify_reports_the_expanding_dags_and_carries_on(world: World) -> None:
    report = verify_patient(world.mv, world.patient.address)
    flagged = {(f.index, f.object) for f in report.findings if f"{world.bomb} states 7,340,032,000 bytes" in f.message}
    assert flagged == {(1, "record"), (2, "keys")}
    assert not report.findings_for(0)


class TricklingKubo:
    """A Kubo stand-in: every object states 64 bytes, and streams them one every 0.5 s (32 s in all)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                stat = self.path.startswith("/api/v0/files/stat")
                body = b'{"Type":"file","Size":64}' if stat else b"x" * 64
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the reader hangs up once its budget is spent
                    for chunk in [body] if stat else [b"x"] * len(body):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(0 if stat else 0.5)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_keeper_gives_up_on_a_trickling_node_within_its_time_budget(
    world: World, w3: Web3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "REQUEST_SECONDS", 1.0)
    kubo = TricklingKubo()
    slow = KeeperService(
        world.keeper.wallet, Medvault(world.mv.chain, IpfsClient(kubo.url)), tmp_path / "slow", port=free_port()
    ).start()
    chain = world.mv.chain
    request = KeyRequest(world.patient.address, 0, world.patient.address, slow.address, world.mv.now())
    started = time.monotonic()
    try:
        with unchanged(w3, world.mv.ipfs, world.home), pytest.raises(Refusal) as refused:
            post_key_request(slow.url, sign_key_request(world.patient, request, chain.chain_id, chain.keepers.address))
        assert time.monotonic() - started < 15  # its 1 s budget, not the node's 32 s
    finally:
        slow.stop()
        kubo.close()
    assert refused.value.reason == "ipfs-unavailable"
    assert "was not read within this request's time budget of 1 s" in refused.value.message


def test_a_root_that_understates_its_size_is_cut_off_at_the_limit(world: World) -> None:
    assert world.mv.ipfs.stated_size(world.liar) == 400
    raised, peak = peak_while(lambda: world.mv.ipfs.cat(world.liar, kind="bundle"))
    assert isinstance(raised, ObjectTooLargeError)
    assert "streams more than 16,777,216 bytes (its root states 400)" in str(raised)
    assert peak < 24 << 20, peak  # the 16 MiB held, not the 40 MiB streamed


def test_an_object_just_under_a_configured_limit_is_read(world: World) -> None:
    data = bytes(range(256)) * (8 * 1024)  # 2 MiB: a dag-pb root over eight 256 KiB leaves
    cid = world.mv.ipfs.add(data, pin=False)
    mv = world.mv_with(MEDVAULT_MAX_RECORD_BYTES="2MiB")
    assert mv.ipfs.limits == ReadLimits(record=2 << 20)
    assert mv.ipfs.cat(cid) == data
    over = world.mv.ipfs.add(data + b"!", pin=False)
    with pytest.raises(ObjectTooLargeError, match="states 2,097,153 bytes, over the limit of 2,097,152"):
        mv.ipfs.cat(over)
    assert IpfsClient(world.api).cat(over) == data + b"!"  # the default is generous


def test_records_over_the_limit_are_not_written(world: World, w3: Web3) -> None:
    mv = world.mv_with(MEDVAULT_MAX_RECORD_BYTES="1KiB")
    with unchanged(w3, mv.ipfs, world.home), pytest.raises(IpfsError, match="over the limit of 1,024 bytes"):
        mv.add_record(
            world.provider, world.patient.address, b'{"resourceType": "Observation"}' * 64, Category.LABORATORY
        )


def _write_with(world: World, **env: str) -> None:
    mv = world.mv_with(**env)
    mv.add_record(world.provider, world.patient.address, b'{"resourceType": "Observation"}', Category.LABORATORY)


def _budget_spent(world: World) -> None:
    ipfs = world.mv.ipfs.budgeted(10**6, 0.01)
    time.sleep(0.02)
    ipfs.cat(world.blob)


def _twice_within(world: World, max_bytes: int) -> None:
    ipfs = world.mv.ipfs.budgeted(max_bytes, 10)
    ipfs.cat(world.blob)
    ipfs.cat(world.blob)


BAD_SIZES = ["-1", "0", "lots", "1.5GiB", "12 TB", "", "0x100", "1e9"]

ROWS: list[tuple[str, Callable[[World], Any], type[Exception], str]] = [
    ("record-is-an-expanding-dag", lambda w: w.mv.ipfs.cat(w.bomb), ObjectTooLargeError,
     "states 7,340,032,000 bytes, over the limit of 1,073,741,824 bytes for a record's ciphertext"),
    ("bundle-is-an-expanding-dag", lambda w: w.mv.ipfs.cat(w.bomb, kind="bundle"), ObjectTooLargeError,
     "over the limit of 16,777,216 bytes for a key bundle; it was not read (raise MEDVAULT_MAX_BUNDLE_BYTES"),
    ("root-understates-a-bundle", lambda w: w.mv.ipfs.cat(w.liar, kind="bundle"), ObjectTooLargeError,
     "streams more than 16,777,216 bytes (its root states 400)"),
    ("root-understates-a-record", lambda w: w.mv_with(MEDVAULT_MAX_RECORD_BYTES="4MiB").ipfs.cat(w.liar),
     ObjectTooLargeError, "streams more than 4,194,304 bytes (its root states 400)"),
    ("record-over-configured-limit", lambda w: w.mv_with(MEDVAULT_MAX_RECORD_BYTES="1KiB").ipfs.cat(w.blob),
     ObjectTooLargeError, "states 2,048 bytes, over the limit of 1,024 bytes for a record's ciphertext"),
    ("bundle-over-configured-limit",
     lambda w: w.mv_with(MEDVAULT_MAX_BUNDLE_BYTES="64").read_record(w.patient, w.patient.address, 0),
     BadRecordError, "over the limit of 64 bytes for a key bundle"),
    ("write-record-over-its-limit", lambda w: _write_with(w, MEDVAULT_MAX_RECORD_BYTES="16"), IpfsError,
     "bytes is over the limit of 16 bytes that readers fetch (raise MEDVAULT_MAX_RECORD_BYTES for readers"),
    ("write-bundle-over-its-limit", lambda w: _write_with(w, MEDVAULT_MAX_BUNDLE_BYTES="256"), IpfsError,
     "bytes is over the limit of 256 bytes that readers fetch (raise MEDVAULT_MAX_BUNDLE_BYTES for readers"),
    ("reader-record-is-an-expanding-dag", lambda w: w.mv.read_record(w.patient, w.patient.address, 1),
     BadRecordError, "record 1 of 0x"),
    ("keeper-bundle-is-an-expanding-dag", lambda w: w.ask_keeper(2), Refusal,
     "bad-record: record 2 of 0x"),
    ("keeper-re-escrow-is-an-expanding-dag", lambda w: w.ask_keeper(0, w.other), Refusal,
     "too-large: IPFS object bafybeidgacu5y232lpzupw2ekrn62kriekcucjgxlxtly3my7dm6cnclam states 7,340,032,000"),
    ("request-byte-budget", lambda w: _twice_within(w, 3000), ObjectTooLargeError,
     "over the limit of 952 bytes for a record's ciphertext within this request's budget"),
    ("request-time-budget", _budget_spent, IpfsUnavailableError,
     "was not read within this request's time budget of 0.01 s"),
    ("directory-is-not-a-file", lambda w: w.mv.ipfs.cat(w.directory), IpfsError, "is a directory, not a file"),
    ("dead-ipfs-endpoint", lambda w: IpfsClient(f"http://127.0.0.1:{free_port()}").cat(w.blob),
     IpfsUnavailableError, "is not reachable"),
    ("limit-of-zero-bytes", lambda w: ReadLimits(record=0), ConfigurationError,
     "the size limit for a record's ciphertext must be a whole number of bytes >= 1"),
    ("limit-not-a-number", lambda w: ReadLimits(bundle="1MiB"), ConfigurationError,  # type: ignore[arg-type]
     "the size limit for a key bundle must be a whole number"),
    *[(f"record-limit-{value or 'empty'}", lambda w, v=value: w.mv_with(MEDVAULT_MAX_RECORD_BYTES=v),
       ConfigurationError, f"MEDVAULT_MAX_RECORD_BYTES={value!r} is not a size") for value in BAD_SIZES],
    ("bundle-limit-negative", lambda w: w.mv_with(MEDVAULT_MAX_BUNDLE_BYTES="-5MiB"), ConfigurationError,
     "MEDVAULT_MAX_BUNDLE_BYTES='-5MiB' is not a size: give a whole number of bytes, at least 1, or one with"),
]  # fmt: skip


@pytest.mark.parametrize(("action", "error", "words"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_bad_ipfs_input_is_refused_in_words(
    world: World, w3: Web3, action: Callable[[World], Any], error: type[Exception], words: str
) -> None:
    with unchanged(w3, world.mv.ipfs, world.home), pytest.raises(error) as raised:
        action(world)
    assert words in str(raised.value)
