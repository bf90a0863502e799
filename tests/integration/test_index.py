"""The local event index against the chain on anvil: every query agrees with the direct chain
reads, syncs are incremental, restarts and re-runs neither lose nor duplicate anything, a reorg
is rolled back, and grant windows follow chain time."""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from data import DAY, LAB, LABS, MEDS
from helpers import grant

from medvault.cli import cli
from medvault.dev.anvil import mine, revert, snapshot
from medvault.index import DecodedEvent, EventIndex, index_path, insert_event, open_database
from medvault.model import Category, EmergencyMode, EmergencyStanding, Purpose, RequestStatus, Role

if TYPE_CHECKING:
    from pathlib import Path

    from helpers import ChainClock

    from medvault.accounts import Wallet
    from medvault.client import Medvault

pytestmark = pytest.mark.integration


@pytest.fixture
def index(mv: Medvault, home: Path) -> Any:
    with EventIndex.open(home, mv.chain) as idx:
        yield idx


def _plain(entries: list[Any]) -> list[Any]:
    return [json.loads(json.dumps(e.__dict__, default=str)) for e in entries]


def _consent_story(
    mv: Medvault, admin: Wallet, patient: Wallet, provider: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    """Records, a grant, an emergency and its revocation, two requests (one approved, one denied)."""
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    mv.add_record(provider, patient.address, MEDS, Category.MEDICATIONS)
    grant(mv, patient, doctor, LABS)
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    mv.set_emergency_policy(patient, EmergencyMode.ANY)
    mv.take_emergency_access(provider, patient.address, "unconscious in A&E")
    mv.revoke(patient, patient.address, provider.address)  # which blocks the provider...
    mv.set_emergency_standing(patient, provider.address, EmergencyStanding.ALLOWED)  # ...until allowed again
    mv.take_emergency_access(provider, patient.address, "again")
    mv.register(stranger)
    mv.accredit(admin, stranger.address, Role.RESEARCHER)
    approved, _ = mv.request_access(stranger, patient.address, LABS, Purpose.HRESCH, 7 * DAY, "STUDY-1")
    denied, _ = mv.request_access(stranger, patient.address, frozenset(Category), Purpose.HRESCH, DAY, "STUDY-2")
    mv.request_access(stranger, patient.address, LABS, Purpose.PUBHLTH, DAY, "STUDY-3")  # stays pending
    mv.decide_request(patient, approved, approve=True)
    mv.decide_request(patient, denied, approve=False)
    mv.set_delegate(patient, doctor.address)


def test_queries_match_the_chain(
    mv: Medvault, index: EventIndex, admin: Wallet, patient: Wallet, provider: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    _consent_story(mv, admin, patient, provider, doctor, stranger)

    assert index.records_of(patient.address) == mv.records(patient.address)
    assert len(index.records_of(patient.address)) == 3
    pointers = mv.records(patient.address)
    for grantee in (doctor, provider, stranger, admin):
        expected = [p for p in pointers if mv.can_read(patient.address, grantee.address, p.category)]
        assert index.readable_by(grantee.address) == expected, grantee.address
    assert {p.index for p in index.readable_by(doctor.address)} == {0, 2}
    assert len(index.readable_by(provider.address)) == 3  # the second emergency: every category

    now = mv.now()
    readers = index.readers_of(patient.address)
    assert readers == sorted((g for g in mv.grants(patient.address) if g.active_at(now)), key=lambda g: g.grantee)
    assert {g.grantee for g in readers} == {doctor.address, provider.address, stranger.address}
    assert next(g for g in readers if g.grantee == provider.address).emergency

    assert index.requests() == mv.requests()
    assert [r.status for r in index.requests()] == [RequestStatus.APPROVED, RequestStatus.DENIED, RequestStatus.PENDING]
    assert len(index.requests(status=RequestStatus.PENDING)) == 1
    assert len(index.requests(status=RequestStatus.DENIED, patient=patient.address)) == 1
    assert len(index.requests(researcher=stranger.address)) == 3
    assert index.requests(researcher=doctor.address) == []

    assert _plain(index.history(patient.address)) == _plain(mv.audit(patient.address))
    assert index.counts()["delegations"] == 1
    report = index.verify()
    assert report.ok, report.problems
    assert (report.records, report.grants, report.requests) == (3, 3, 3)


def test_the_tables_hold_what_web3_decodes(
    mv: Medvault, index: EventIndex, admin: Wallet, patient: Wallet, provider: Wallet, doctor: Wallet, stranger: Wallet
) -> None:
    """The sync decodes logs with eth_abi straight from the node's JSON; the same chain decoded
    one log at a time by web3 (its formatters, ``process_log``) gives the very same rows."""
    _consent_story(mv, admin, patient, provider, doctor, stranger)
    mv.set_keepers(patient, [doctor.address, stranger.address], 2)  # an address[] and a bytes CID
    mv.announce_keeper(doctor, "http://127.0.0.1:9/keeper")  # a string
    mv.add_record(provider, patient.address, MEDS, Category.MEDICATIONS)
    assert index.sync().events > 0

    w3, expected = mv.chain.w3, open_database(":memory:")
    start = mv.chain.deployment.block_number
    decoded = []
    for name, contract in mv.chain.contracts.items():
        events = {e.topic: e for e in (cls() for cls in contract.events)}
        for log in w3.eth.get_logs({"fromBlock": start, "toBlock": index.last_block, "address": contract.address}):
            e = events[log["topics"][0].to_0x_hex()].process_log(log)
            where = (e["blockNumber"], e["blockHash"].to_0x_hex(), e["logIndex"], e["transactionHash"].to_0x_hex())
            decoded.append(DecodedEvent(name, e["event"], dict(e["args"]), *where))
    cur = expected.cursor()
    for e in sorted(decoded, key=lambda d: (d.block, d.log_index)):
        sender = w3.eth.get_transaction(e.tx)["from"]
        assert insert_event(cur, e, int(w3.eth.get_block(e.block)["timestamp"]), sender) == 1
    tables = ("events", "records", "grants", "requests", "delegations")
    for table in tables:
        query = f"SELECT * FROM {table} ORDER BY 1, 2, 3"  # noqa: S608 - fixed names
        rows = [tuple(r) for r in index.db.execute(query)]
        assert rows == [tuple(r) for r in expected.execute(query)], table
        assert rows, table
    kinds = {r[0] for r in index.db.execute("SELECT event FROM events")}
    assert {"KeepersChosen", "KeeperAnnounced", "EmergencyAccessTaken", "KeysShared", "RecordAdded"} <= kinds


def test_sync_is_incremental(
    mv: Medvault, index: EventIndex, patient: Wallet, provider: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = index.sync()
    assert first.from_block == mv.chain.deployment.block_number
    ranges: list[tuple[int, int]] = []
    fetch = index._fetch_logs

    def recording(start: int, end: int) -> Any:
        ranges.append((start, end))
        return fetch(start, end)

    monkeypatch.setattr(index, "_fetch_logs", recording)
    assert index.sync().blocks == 0
    assert ranges == []  # nothing new: no eth_getLogs at all

    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    second = index.sync()
    assert ranges == [(first.to_block + 1, second.to_block)]
    assert second.events == 1
    assert second.log_calls == 1
    assert len(index.records_of(patient.address)) == 1


def test_restart_keeps_the_index_consistent_with_the_chain(
    mv: Medvault, home: Path, patient: Wallet, provider: Wallet, doctor: Wallet
) -> None:
    path = index_path(home, mv.chain)
    with EventIndex(path, mv.chain) as index:
        mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
        index.sync()
        last = index.last_block

    grant(mv, patient, doctor, LABS)
    mv.add_record(provider, patient.address, MEDS, Category.MEDICATIONS)
    with EventIndex(path, mv.chain) as index:
        assert index.last_block == last
        result = index.sync()
        assert result.from_block == last + 1
        _, count = mv.chain.records.functions.logOf(patient.address).call()
        assert len(index.records_of(patient.address, sync=False)) == count == 2
        on_chain = mv.grant_of(patient.address, doctor.address)
        assert index.grants_of(patient.address, sync=False) == [on_chain]
        assert index.verify(sync=False).ok


def test_rerunning_an_indexed_range_adds_no_duplicates(
    mv: Medvault, index: EventIndex, patient: Wallet, provider: Wallet, doctor: Wallet
) -> None:
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    grant(mv, patient, doctor, LABS)
    mv.revoke(patient, patient.address, doctor.address)
    index.sync()
    before = index.counts()

    # A crash after the rows were written but before the last block was: the next sync starts over.
    index.db.execute("UPDATE meta SET value = ? WHERE key = 'last_block'", (str(mv.chain.deployment.block_number - 1),))
    again = index.sync()

    assert again.from_block == mv.chain.deployment.block_number
    assert again.events == 0
    assert index.counts() == before
    assert index.readers_of(patient.address) == []  # the revocation was not undone by replaying the grant
    assert index.verify().ok


def test_reorg_rolls_back_and_reindexes(mv: Medvault, index: EventIndex, patient: Wallet, provider: Wallet) -> None:
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    index.sync()
    saved = snapshot(mv.chain.w3)
    mv.add_record(provider, patient.address, MEDS, Category.MEDICATIONS)
    mv.add_record(provider, patient.address, MEDS, Category.MEDICATIONS)
    index.sync()
    assert len(index.records_of(patient.address, sync=False)) == 3

    revert(mv.chain.w3, saved)
    mine(mv.chain.w3)
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    result = index.sync()

    assert result.rewound_to is not None
    assert not result.rebuilt
    assert index.records_of(patient.address) == mv.records(patient.address)
    assert [p.category for p in index.records_of(patient.address)] == [Category.LABORATORY] * 2
    assert index.verify().ok


def test_readable_follows_chain_time(
    mv: Medvault, index: EventIndex, patient: Wallet, provider: Wallet, doctor: Wallet, clock: ChainClock
) -> None:
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    start = clock.now() + DAY
    grant(mv, patient, doctor, LABS, start)

    assert index.readable_by(doctor.address) == []  # not yet valid
    assert index.readable_by(doctor.address, start, sync=False) != []
    clock.advance(DAY)
    assert len(index.readable_by(doctor.address)) == 1
    assert [g.grantee for g in index.readers_of(patient.address)] == [doctor.address]
    clock.advance(DAY)
    assert index.readable_by(doctor.address) == []
    assert index.readers_of(patient.address) == []
    assert not mv.can_read(patient.address, doctor.address, Category.LABORATORY)


def test_cli_query_commands(mv: Medvault, home: Path, local_node: Any, patient: Wallet, provider: Wallet) -> None:
    mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    runner = CliRunner()
    base = ["--home", str(home), "--rpc-url", local_node.rpc_url]

    synced = runner.invoke(cli, [*base, "query", "sync", "--json"])
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.output)["counts"]["records"] == 1
    records = runner.invoke(cli, [*base, "query", "records", "--patient", patient.address, "--json"])
    assert records.exit_code == 0, records.output
    assert [r["category"] for r in json.loads(records.output)] == ["laboratory"]
    for args in (["readers", "-p", patient.address], ["readable", "-g", provider.address], ["requests"],
                 ["requests", "--status", "pending"], ["history", "-p", patient.address], ["verify"]):  # fmt: skip
        result = runner.invoke(cli, [*base, "query", *args])
        assert result.exit_code == 0, (args, result.output)
    text = runner.invoke(cli, [*base, "query", "records", "-p", patient.address])
    assert "laboratory" in text.output


def test_query_speed_with_synthetic_rows(mv: Medvault, index: EventIndex) -> None:
    """Not a timed assertion: fills the index with 10,000 records of 1,000 patients and 1,000
    grants inserted directly, and prints how long each query takes."""
    rng = random.Random(5)  # noqa: S311 - synthetic rows, not secrets
    patients = [f"0x{i:040x}" for i in range(1, 1001)]
    grantees = [f"0x{i:040x}" for i in range(5001, 5101)]
    records = [
        (p, i, p, i, rng.randrange(6), 0, "0x00", b"cid", b"keys", "0x00", 1_000_000 + n, 0, "0x")
        for n, (p, i) in enumerate((p, i) for p in patients for i in range(10))
    ]
    now = mv.now()
    grants = {(rng.choice(patients), rng.choice(grantees)) for _ in range(1000)}
    with index._transaction() as cur:
        cur.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", records)
        cur.executemany(
            "INSERT INTO grants VALUES (?, ?, ?, 0, ?, ?, 0, 0, 1, 0)",
            [(p, g, rng.randrange(1, 64), now - 10, now + DAY) for p, g in grants],
        )
        cur.executemany(
            "INSERT INTO events VALUES (?, 0, '0x', '0x', 0, 'RecordRegistry', 'RecordAdded', ?, '{}')",
            [(2_000_000 + n, patients[n % 1000]) for n in range(10_000)],
        )
    queries = {
        "records_of": lambda: index.records_of(patients[7]),
        "readable_by": lambda: index.readable_by(grantees[3]),
        "readers_of": lambda: index.readers_of(patients[7]),
        "requests": lambda: index.requests(status=RequestStatus.PENDING),
        "history": lambda: index.history(patients[7]),
    }
    index.sync()  # the deployment's own blocks, so that the timings below are of a caught-up index
    for name, query in queries.items():
        started = time.perf_counter()
        rows = query()
        print(
            f"{name}: {(time.perf_counter() - started) * 1000:.2f} ms, sync (no new blocks) included ({len(rows)} rows)"
        )
    assert len(index.records_of(patients[7], sync=False)) == 10
