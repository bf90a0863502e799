"""Faults under running keepers: a keeper SIGKILLed in the middle of serving and restarted, and
anvil and Kubo restarting under a keeper that keeps running.

Keepers run as real ``medvault keeper run`` processes (so they can be killed), each on its own
port and journal folder; the tests read the journals (SQLite) directly and compare them with the
``KeyReleased`` receipts on chain. Every process a test starts is stopped in its teardown.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from data import DAY, LAB, PASSPHRASE
from helpers import new_wallet, wait_for

from medvault.accounts import TEST_SCRYPT_N, Keystore, Wallet
from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev.node import LocalNode, NodeInfo, free_port
from medvault.ipfs import IpfsClient
from medvault.keeper.protocol import KeyRequest, Refusal, ShareRelease, post_key_request, sign_key_request
from medvault.model import Category, DelegateTerms, GrantTerms, Purpose, Role

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medvault.model import RecordPointer

pytestmark = pytest.mark.integration


# -- a deployment with a patient, a provider, a grantee and keepers, on a given node -----------


@dataclass
class World:
    home: Path
    node: NodeInfo
    mv: Medvault
    wallets: dict[str, Wallet]
    keepers: list[Wallet]
    pointers: list[RecordPointer] = field(default_factory=list)

    def client(self) -> Medvault:
        """A client of its own (own connections), for another thread."""
        return Medvault(Chain(connect(self.node.rpc_url), self.mv.chain.deployment, load_artifacts()), self.mv.ipfs)

    def request(self, keeper: Wallet, pointer: RecordPointer, issued_at: int) -> dict[str, Any]:
        """The grantee's signed request to ``keeper`` for ``pointer``'s share."""
        request = KeyRequest(pointer.patient, pointer.index, self.wallets["doctor"].address, keeper.address, issued_at)
        return sign_key_request(self.wallets["doctor"], request, self.mv.chain.chain_id, self.mv.chain.keepers.address)


def build_world(home: Path, node: NodeInfo, ipfs: IpfsClient, *, keepers: int, threshold: int, records: int) -> World:
    """Deploys, registers everyone, chooses ``keepers`` keepers t-of-n, adds ``records`` lab
    records, then lets a delegate grant the doctor access (so the doctor has no wrap of its own
    and reads only through the keepers)."""
    w3 = connect(node.rpc_url)
    keystore = Keystore(home, scrypt_n=TEST_SCRYPT_N)
    names = ["admin", "patient", "provider", "doctor"] + [f"keeper{i + 1}" for i in range(keepers)]
    wallets = {}
    for name in names:
        wallets[name] = new_wallet(keystore, w3, name)
    deployment, _ = deploy(w3, wallets["admin"], home)
    mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
    for name in names[1:]:  # the admin only deploys, accredits and grants as the patient's delegate
        mv.register(wallets[name])
    mv.accredit(wallets["admin"], wallets["provider"].address, Role.PROVIDER)
    keeper_wallets = [wallets[f"keeper{i + 1}"] for i in range(keepers)]
    patient = wallets["patient"]
    mv.set_writer(patient, wallets["provider"].address, frozenset(Category))
    mv.set_keepers(patient, [k.address for k in keeper_wallets], threshold)
    world = World(home, node, mv, wallets, keeper_wallets)
    for _ in range(records):
        world.pointers.append(mv.add_record(wallets["provider"], patient.address, LAB, Category.LABORATORY).pointer)
    # Terms that open earlier records: the doctor reads the records written before the grant.
    mv.set_delegate(patient, wallets["admin"].address, terms=DelegateTerms(frozenset(Category), DAY, open_history=True))
    now = mv.now()
    terms = GrantTerms(frozenset({Category.LABORATORY}), Purpose.TREAT, now - 60, now + DAY)
    mv.grant(wallets["admin"], patient.address, wallets["doctor"].address, terms)
    return world


# -- keepers as `medvault keeper run` processes ------------------------------------------------


class KeeperProcess:
    """One `medvault keeper run`, on a fixed port and journal folder across restarts."""

    def __init__(self, world: World, wallet: Wallet, state_dir: Path, *, batch_seconds: float) -> None:
        self.world, self.wallet, self.state_dir = world, wallet, state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.batch_seconds = batch_seconds
        self.log = state_dir.parent / f"{state_dir.name}.log"
        state_dir.parent.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        assert self.process is None or self.process.poll() is not None
        command = [
            str(Path(sys.executable).parent / "medvault"),
            "--home", str(self.world.home),
            "--rpc-url", self.world.node.rpc_url,
            "--ipfs-api", self.world.node.ipfs_api,
            "keeper", "run",
            "--account", self.wallet.name,
            "--port", str(self.port),
            "--announce", self.url,
            "--state", str(self.state_dir),
            "--batch-seconds", str(self.batch_seconds),
            # Every distinct signed request its own receipt, and no rate limit: these tests count
            # journal rows against receipts under load, not the deduplication.
            "--receipt-bucket", "0", "--rate-limit", "1000000",
        ]  # fmt: skip
        env = {**os.environ, "MEDVAULT_PASSPHRASE": PASSPHRASE}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        def healthy() -> bool:
            assert self.alive, f"the keeper exited:\n{self.tail()}"
            try:
                return httpx.get(self.url + "/v1/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, timeout, f"keeper {self.wallet.name} to serve at {self.url}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def journal(self) -> list[dict[str, Any]]:
        """The journal's rows, read from its SQLite file (the keeper may be running or dead)."""
        with contextlib.closing(sqlite3.connect(self.state_dir / "journal.sqlite3", timeout=10)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM releases ORDER BY rowid")]

    def pending(self) -> list[str]:
        return [r["release_id"] for r in self.journal() if r["receipt_tx"] is None and r["rejected"] is None]

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:]) if self.log.exists() else ""


@pytest.fixture
def processes() -> Iterator[list[KeeperProcess]]:
    """Keeper processes a test starts; each stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[KeeperProcess] = []
    yield started
    for keeper in started:
        keeper.stop()


def start_keepers(world: World, tmp_path: Path, started: list[KeeperProcess], batch_seconds: float) -> None:
    for wallet in world.keepers:
        started.append(KeeperProcess(world, wallet, tmp_path / "keepers" / wallet.name, batch_seconds=batch_seconds))
    for keeper in started:  # all at once: their start-up (imports, unlock, announce) overlaps
        keeper.spawn()
    for keeper in started:
        keeper.wait_healthy()


def receipts_by_keeper(mv: Medvault, patient: str) -> dict[str, collections.Counter[str]]:
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for receipt in mv.releases(patient):
        counts[receipt.keeper][receipt.release_id] += 1
    return counts


# -- 1. a keeper SIGKILLed while serving, then restarted ---------------------------------------


def test_keeper_killed_mid_serving_loses_and_duplicates_no_release(
    tmp_path: Path, local_node: NodeInfo, ipfs: IpfsClient, processes: list[KeeperProcess]
) -> None:
    world = build_world(tmp_path / "home", local_node, ipfs, keepers=3, threshold=2, records=4)
    patient, doctor = world.wallets["patient"], world.wallets["doctor"]
    start_keepers(world, tmp_path, processes, batch_seconds=1.0)
    victim = processes[0]
    killed_at: list[float] = []  # monotonic time of the SIGKILL, once sent
    restarted_at: list[float] = []

    # The grantee reads the records over and over through the keepers (2 of 3), in a thread.
    reads: list[tuple[float, BaseException | None]] = []
    stop_reading = threading.Event()

    def read_loop() -> None:
        reader = world.client()
        while not stop_reading.is_set():
            for pointer in world.pointers:
                try:
                    assert reader.read_record(doctor, patient.address, pointer.index).data == LAB
                    reads.append((time.monotonic(), None))
                except BaseException as exc:
                    reads.append((time.monotonic(), exc))

    # Meanwhile a burst of distinct signed requests hammers the victim, 8 at a time.
    answered: dict[str, ShareRelease] = {}
    refused: list[tuple[float, Refusal]] = []
    stop_burst = threading.Event()
    base, lock = world.mv.now(), threading.Lock()
    requests = iter(range(4 * 250))  # (record, issuedAt) pairs within the allowed skew

    def burst_worker() -> None:
        while not stop_burst.is_set():
            with lock:
                i = next(requests, None)
            if i is None:
                return
            pointer = world.pointers[i % len(world.pointers)]
            body = world.request(victim.wallet, pointer, base - i // len(world.pointers))
            try:
                release = post_key_request(victim.url, body, timeout=20)
                with lock:
                    answered[release.release_id] = release
            except Refusal as refusal:
                with lock:
                    refused.append((time.monotonic(), refusal))

    reader_thread = threading.Thread(target=read_loop, daemon=True)
    burst = ThreadPoolExecutor(max_workers=8)
    reader_thread.start()
    workers = [burst.submit(burst_worker) for _ in range(8)]
    try:

        def reads_ok_since(t: float, n: int) -> bool:
            return sum(at > t and exc is None for at, exc in reads) >= n

        # Kill the victim mid-serving: requests in flight, releases journaled and not yet posted.
        wait_for(lambda: len(answered) >= 15 and reads_ok_since(0, 2) and victim.pending(), 30, "releases in flight")
        killed_at.append(time.monotonic())
        victim.kill()
        journal_at_kill = victim.journal()
        pending_at_kill = {r["release_id"] for r in journal_at_kill if r["receipt_tx"] is None}
        stop_burst.set()
        for worker in workers:
            worker.result(timeout=30)

        # Two keepers still up: the grantee keeps reading.
        wait_for(lambda: reads_ok_since(killed_at[0], 6), 30, "reads with one keeper down")
        victim.spawn()  # same account, port and journal folder
        victim.wait_healthy()
        restarted_at.append(time.monotonic())
        wait_for(lambda: reads_ok_since(restarted_at[0], 4), 30, "reads after the restart")
    finally:
        stop_burst.set()
        stop_reading.set()
        burst.shutdown(wait=True)
        reader_thread.join(timeout=60)

    failures = [exc for _, exc in reads if exc is not None]
    assert failures == [], f"{len(failures)} of {len(reads)} reads failed; first: {failures[0]!r}"
    before_kill = [r for at, r in refused if at < killed_at[0]]
    assert before_kill == [], f"the victim refused before it was killed: {before_kill[:3]}"
    assert pending_at_kill, "the kill should leave journaled releases without a receipt"
    assert set(answered) <= {r["release_id"] for r in journal_at_kill}, "an answered release was not journaled"

    # The batchers (the restarted victim's after its start-up reconcile) post everything.
    wait_for(lambda: not any(k.pending() for k in processes), 30, "the journals to drain")
    journals = {k.wallet.address: k.journal() for k in processes}
    on_chain = receipts_by_keeper(world.mv, patient.address)

    for keeper in processes:
        rows = journals[keeper.wallet.address]
        ids = [r["release_id"] for r in rows]
        assert len(ids) == len(set(ids))
        assert [r for r in rows if r["rejected"]] == []
        # Every journaled release has exactly one receipt, and every receipt a journaled release.
        assert dict(on_chain[keeper.wallet.address]) == dict.fromkeys(ids, 1), keeper.wallet.name
        receipt_tx = {r.release_id: r.tx_hash for r in world.mv.releases(patient.address, keeper=keeper.wallet.address)}
        assert {r["release_id"]: r["receipt_tx"] for r in rows} == receipt_tx
    assert set(on_chain) == {k.wallet.address for k in processes}  # no receipt from anyone else
    victim_ids = {r["release_id"] for r in journals[victim.wallet.address]}
    assert {r["release_id"] for r in journal_at_kill} <= victim_ids  # the restart kept the journal
    assert pending_at_kill <= set(on_chain[victim.wallet.address])  # posted after the restart
    assert set(answered) <= set(on_chain[victim.wallet.address])

    print(  # shown with -rP: how much was in flight when the keeper died
        f"reads: {len(reads)}; victim answered {len(answered)} burst requests before the kill, "
        f"{len(pending_at_kill)} of its {len(journal_at_kill)} journaled releases had no receipt; "
        f"refused after the kill: {collections.Counter(r.reason for _, r in refused)}; "
        f"receipts on chain: {sum(sum(c.values()) for c in on_chain.values())}"
    )

    # Once more: a fresh start of every keeper (start-up reconcile) posts nothing twice.
    for keeper in processes:
        keeper.stop()
        keeper.spawn()
    for keeper in processes:
        keeper.wait_healthy()
    assert receipts_by_keeper(world.mv, patient.address) == on_chain


# -- 2. anvil and Kubo restarting under a running keeper ---------------------------------------


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[LocalNode]:
    """A node of this test's own, on fixed free ports, so the session's node is left alone."""
    node = LocalNode(tmp_path / "node", chain_port=free_port(), ipfs_port=free_port())
    node.up()
    try:
        yield node
    finally:
        node.down()


def refusal(keeper: KeeperProcess, body: dict[str, Any]) -> tuple[str, int]:
    with pytest.raises(Refusal) as refused:
        post_key_request(keeper.url, body, timeout=60)
    return refused.value.reason, refused.value.status


def test_keeper_carries_on_across_kubo_and_anvil_restarts(
    tmp_path: Path, own_node: LocalNode, processes: list[KeeperProcess]
) -> None:
    info = own_node.status()
    assert info is not None
    with IpfsClient(info.ipfs_api) as ipfs:
        world = build_world(tmp_path / "home", info, ipfs, keepers=1, threshold=1, records=2)
        patient, doctor = world.wallets["patient"], world.wallets["doctor"]
        # A long batching period: receipts are posted when 20 are pending (BATCH_SIZE), or at stop.
        start_keepers(world, tmp_path, processes, batch_seconds=60)
        [keeper] = processes
        directory = world.mv.chain.deployment
        base = world.mv.now()
        bodies = [world.request(keeper.wallet, world.pointers[i % 2], base - 1 - i // 2) for i in range(20)]
        for body in bodies[:18]:
            post_key_request(keeper.url, body)
        assert len(keeper.pending()) == 18
        assert world.mv.releases(patient.address) == []

        # Kubo stops: the keeper serves what it has read already (key bundles are content-
        # addressed, it keeps them parsed), and carries on once Kubo is back.
        ipfs_pid = info.ipfs.pid
        os.kill(ipfs_pid, signal.SIGTERM)
        wait_for(lambda: not own_node.running()["ipfs"], 20, "Kubo to stop")
        assert post_key_request(keeper.url, bodies[18]).keeper == keeper.wallet.address
        assert keeper.alive
        assert own_node.up().ipfs.pid != ipfs_pid  # Kubo again, same port and repo; anvil untouched
        assert post_key_request(keeper.url, bodies[18]).keeper == keeper.wallet.address
        assert len(keeper.pending()) == 19

        # anvil and Kubo both stop (anvil writes its state on the way out): 503 chain-unavailable.
        block = world.mv.chain.w3.eth.block_number
        assert sorted(own_node.down()) == ["chain", "ipfs"]
        assert refusal(keeper, bodies[19]) == ("chain-unavailable", 503)
        assert keeper.alive
        assert httpx.get(keeper.url + "/v1/health").status_code == 200

        # Both back on the same ports and state: the chain kept its blocks, contracts and logs.
        restarted = own_node.up()
        assert (restarted.rpc_url, restarted.ipfs_api) == (info.rpc_url, info.ipfs_api)
        w3 = world.mv.chain.w3  # the test's own connection, reused as the keeper reuses its own
        assert w3.eth.block_number >= block
        for address in (directory.keeper_directory, directory.record_registry, directory.consent_manager):
            assert w3.eth.get_code(w3.to_checksum_address(address))
        assert world.mv.keeper_urls([keeper.wallet.address]) == {keeper.wallet.address: keeper.url}

        # The same keeper process serves again; the 20th pending release wakes its batcher.
        assert keeper.alive
        assert world.mv.read_record(doctor, patient.address, world.pointers[1].index).data == LAB
        wait_for(lambda: not keeper.pending(), 30, "the pending receipts to be posted and marked")
        receipts, journal = world.mv.releases(patient.address), keeper.journal()
        assert len(journal) == 20
        assert all(row["receipt_tx"] for row in journal)
        assert sorted(r.release_id for r in receipts) == sorted(row["release_id"] for row in journal)  # once each
        assert {r.release_id: r.tx_hash for r in receipts} == {row["release_id"]: row["receipt_tx"] for row in journal}
        assert {(r.grantee, r.keeper) for r in receipts} == {(doctor.address, keeper.wallet.address)}
        keeper.stop()
        assert keeper.process is not None
        assert keeper.process.returncode == 0, keeper.tail()
