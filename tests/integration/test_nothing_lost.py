"""Nothing is lost and one bad record stays one finding: choosing keepers past a record whose key
bundle cannot be read, `gc` keeping what a pointer needs however it is pinned, and reads that
take no compressed answers."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner
from dags import expanding_dag, hostile_pointer
from data import DAY, LAB, LABS
from helpers import add, refused
from multiformats import CID
from unchanged import unchanged
from web3.exceptions import TimeExhausted

from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cids import cid_from_bytes, compute_cid
from medvault.cli import cli
from medvault.errors import BadRecordError, CidMismatchError, IntegrityError, IpfsError, IpfsUnavailableError
from medvault.ipfs import IpfsClient
from medvault.model import Category, GrantTerms, Purpose
from medvault.orphans import find_orphans
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


def test_keepers_are_chosen_past_a_record_whose_key_bundle_is_too_large(
    mv: Medvault, ipfs: IpfsClient, patient: Wallet, provider: Wallet, doctor: Wallet
) -> None:
    good = add(mv, provider, patient)
    bomb = expanding_dag(ipfs.api_url, 20)  # 20 MiB: over the 16 MiB limit for key bundles
    hostile_pointer(mv, provider, patient.address, good.cid, hashlib.sha256(b"").digest(), bomb)
    with pytest.raises(BadRecordError, match="over the limit"):
        mv.open_key(patient, mv.records(patient.address)[1])
    mv.set_keepers(patient, [doctor.address], 1)
    keepers = mv.keepers_of(patient.address)
    assert keepers.escrow_cid is not None
    reescrow = mv.key_bundle(keepers.escrow_cid, patient.address)
    assert [index for index, _ in reescrow.escrows] == [0]  # the good record, escrowed; the bad one passed over


def test_keepers_are_chosen_past_a_record_whose_bundle_the_node_serves_altered(
    mv: Medvault, patient: Wallet, provider: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    altered, good = add(mv, provider, patient), add(mv, provider, patient)
    cat = mv.ipfs.cat

    def corrupt(cid: str, **options: Any) -> bytes:
        """A node (or its disk) that serves one key bundle altered."""
        if cid == altered.keys_cid:
            raise CidMismatchError(cid, compute_cid(b"altered"))
        return cat(cid, **options)

    monkeypatch.setattr(mv.ipfs, "cat", corrupt)
    mv.set_keepers(patient, [doctor.address], 1)
    escrow_cid = mv.keepers_of(patient.address).escrow_cid
    assert escrow_cid is not None
    assert [index for index, _ in mv.key_bundle(escrow_cid, patient.address).escrows] == [good.index]


def _orphans(home: Path, node: NodeInfo) -> set[str]:
    """What `medvault gc` lists as orphans (listing only: the session's Kubo is shared)."""
    base = ["--home", str(home), "--rpc-url", node.rpc_url, "--ipfs-api", node.ipfs_api]
    result = CliRunner().invoke(cli, [*base, "gc", "--json"])
    assert result.exit_code == 0, result.output
    return {pin["cid"] for pin in json.loads(result.stdout)["orphans"]}


def test_gc_keeps_the_objects_of_a_deployment_this_home_replaced(
    mv: Medvault, w3: Web3, home: Path, local_node: NodeInfo, admin: Wallet, patient: Wallet, provider: Wallet
) -> None:
    pointer = add(mv, provider, patient)
    assert not {pointer.cid, pointer.keys_cid} & _orphans(home, local_node)
    later, _ = deploy(w3, admin, home, replace=True)  # the earlier record moves to deployments/replaced/
    assert pointer.cid in {p.cid for p in find_orphans(Chain(w3, later, load_artifacts()), mv.ipfs).orphans}
    assert not {pointer.cid, pointer.keys_cid} & _orphans(home, local_node)
    assert mv.read_record(patient, patient.address, 0).data == LAB


def test_gc_keeps_a_pin_of_a_referenced_block_under_another_codec(
    mv: Medvault, home: Path, local_node: NodeInfo, patient: Wallet, provider: Wallet
) -> None:
    # One dag-pb block, pinned as such; a pointer names the same block (multihash) as raw.
    params = {"cid-version": "1", "raw-leaves": "false", "pin": "true", "quieter": "true"}
    added = httpx.post(f"{local_node.ipfs_api}/api/v0/add", params=params, files={"file": b"one block"})
    pinned = str(added.raise_for_status().json()["Hash"])
    raw = str(CID.decode(pinned).set(codec="raw"))
    assert (pinned[:4], raw[:4]) == ("bafy", "bafk")
    hostile_pointer(mv, provider, patient.address, raw, hashlib.sha256(b"").digest(), raw)
    assert pinned not in _orphans(home, local_node)


def test_gc_keeps_a_pin_that_holds_a_referenced_object_deep_inside(
    mv: Medvault, home: Path, local_node: NodeInfo, patient: Wallet, provider: Wallet
) -> None:
    api = f"{local_node.ipfs_api}/api/v0/add"
    params = {"cid-version": "1", "raw-leaves": "true", "pin": "true", "quiet": "true"}
    record = b"a record filed two folders down"
    files = [
        ("file", ("outer", b"", "application/x-directory")),
        ("file", ("outer%2Finner", b"", "application/x-directory")),
        ("file", ("outer%2Finner%2Frecord", record, "application/octet-stream")),
    ]
    added = {e["Name"]: e["Hash"] for e in map(json.loads, httpx.post(api, params=params, files=files).text.split())}
    folder, inner = added["outer"], added["outer/inner/record"]
    # A file of two blocks whose second block a pointer names on its own.
    blob = bytes(range(256)) * 1100  # 281,600 bytes: two raw leaves under a dag-pb root
    file = str(httpx.post(api, params=params, files={"file": blob}).json()["Hash"])
    leaf = mv.ipfs.refs(file)[-1]
    for cid in (inner, leaf):
        hostile_pointer(mv, provider, patient.address, cid, hashlib.sha256(b"").digest(), cid)
    report = find_orphans(mv.chain, mv.ipfs)
    assert not {folder, file} & {p.cid for p in report.orphans}
    [kept] = [p for p in report.referenced if p.cid == folder]
    assert (kept.files, kept.referenced) == (1, 1)  # its one entry, the inner folder, holds the record
    assert file in {p.cid for p in report.referenced}


def test_a_write_whose_receipt_is_lost_keeps_its_objects_pinned(
    mv: Medvault, ipfs: IpfsClient, patient: Wallet, provider: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    mv.grant(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, mv.now(), mv.now() + DAY))

    def lost(tx_hash: object) -> None:
        """The transaction is sent (and mined) but its receipt never comes back: a timeout, a
        dropped connection or Ctrl-C while the client waits."""
        raise TimeExhausted(f"transaction {tx_hash!r} is not in the chain after 60 seconds")

    monkeypatch.setattr(mv.chain.w3.eth, "get_transaction_receipt", lost)
    for write in (
        lambda: mv.add_record(provider, patient.address, LAB, Category.LABORATORY),
        lambda: mv.set_keepers(patient, [doctor.address], 1),
        lambda: mv.share_keys(patient, doctor.address),
        lambda: mv.rotate_key(patient),
    ):
        with pytest.raises(TimeExhausted):
            write()
    monkeypatch.undo()
    records = mv.records(patient.address)  # every transaction landed all the same
    [keepers] = mv.chain.events("KeeperDirectory", "KeepersChosen")
    shared = mv.chain.events("ConsentManager", "KeysShared")
    assert len(records) == 2
    assert len(shared) == 2  # the grant's, and share_keys'; the rotation's never went out
    named = [*(c for r in records for c in (r.cid, r.keys_cid)), cid_from_bytes(bytes(keepers["args"]["escrowCid"]))]
    named += [cid_from_bytes(bytes(e["args"]["keysCid"])) for e in shared]
    assert [cid for cid in named if not ipfs.is_pinned(cid)] == []


class GzipKubo:
    """A Kubo stand-in whose every object states 64 bytes and streams a gzip body that expands
    to 256 MiB: a few hundred kilobytes on the wire."""

    def __init__(self) -> None:
        body = gzip.compress(b"\0" * (256 << 20), compresslevel=9)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                stat = self.path.startswith("/api/v0/files/stat")
                answer = b'{"Type":"file","Size":64}' if stat else body
                self.send_response(200)
                if not stat:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the reader hangs up at its limit
                    self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_compressed_answer_is_not_expanded_past_the_limit() -> None:
    kubo = GzipKubo()
    cid = compute_cid(b"x" * 64)
    tracemalloc.start()
    try:
        with IpfsClient(kubo.url) as client, pytest.raises(IntegrityError) as raised:
            client.cat(cid, kind="bundle")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        kubo.close()
    assert f"IPFS returned bytes for {cid} that hash to" in str(raised.value)  # as sent: no object
    assert peak < 4 << 20, peak  # not the 256 MiB they expand to, nor one 64 MiB chunk of it


class EndlessStatKubo:
    """A Kubo stand-in whose answer to `files/stat` never ends: JSON whitespace, ``step`` bytes
    at a time every ``pause`` seconds."""

    def __init__(self, step: int, pause: float) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body runs until the connection closes

            def do_POST(self) -> None:
                self.send_response(200)
                self.end_headers()
                with contextlib.suppress(OSError):  # the reader hangs up
                    while True:
                        self.wfile.write(b" " * step)
                        self.wfile.flush()
                        time.sleep(pause)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_stat_that_never_ends_is_cut_off_by_the_request_budget() -> None:
    kubo, cid = EndlessStatKubo(1, 0.1), compute_cid(b"x")
    started = time.monotonic()
    try:
        with IpfsClient(kubo.url) as client, pytest.raises(IpfsUnavailableError) as raised:
            client.budgeted(1 << 20, 1.0).cat(cid, kind="bundle")  # a keeper's read
    finally:
        kubo.close()
    assert time.monotonic() - started < 20  # its 1 s budget; the answer never ends
    assert "was not read within this request's time budget of 1 s" in str(raised.value)


def test_a_stat_that_never_ends_is_cut_off_with_little_memory() -> None:
    kubo, cid = EndlessStatKubo(1 << 20, 0), compute_cid(b"x")
    tracemalloc.start()
    try:
        with IpfsClient(kubo.url) as client, pytest.raises(IpfsError) as raised:
            client.cat(cid, kind="bundle")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        kubo.close()
    assert f"the node's answer about {cid} runs over" in str(raised.value)
    assert peak < 8 << 20, peak


def test_a_malformed_re_escrow_cid_is_refused_on_chain_and_stops_no_write(
    mv: Medvault, patient: Wallet, provider: Wallet, doctor: Wallet, w3: Web3, home: Path
) -> None:
    add(mv, provider, patient)
    set_keepers = mv.chain.keepers.functions.setKeepers([doctor.address], 1, b"\x01\x02\x03\x04")
    with unchanged(w3, mv.ipfs, home), refused("InvalidCid"):  # a wallet outside medvault sends any bytes
        mv.chain.transact(patient, set_keepers, "set keepers")
    later = add(mv, provider, patient)  # the patient's log takes records still
    assert mv.read_record(patient, patient.address, later.index).data == LAB
    assert verify_patient(mv, patient.address).ok
