"""`medvault verify`: every kind of corruption of a patient's log is found and named by record."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from data import LAB

from medvault.cids import cid_from_bytes, cid_to_bytes, compute_cid
from medvault.cli import cli
from medvault.dev.node import free_port
from medvault.formats.recordhash import record_hash_of_event
from medvault.ipfs import IpfsClient
from medvault.model import Category
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from collections.abc import Generator
    from pathlib import Path

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.dev.node import NodeInfo
    from medvault.verify import VerificationReport

pytestmark = pytest.mark.integration


def add_records(mv: Medvault, provider: Wallet, patient: Wallet, n: int) -> None:
    for i in range(n):
        mv.add_record(provider, patient.address, LAB + b" " * i, Category.LABORATORY)


def kinds(report: VerificationReport) -> set[tuple[str, int, str]]:
    return {(f.kind, f.index, f.object) for f in report.findings}


def collect_garbage(ipfs: IpfsClient) -> None:
    ipfs._post("repo/gc")


def patch_events(mv: Medvault, monkeypatch: pytest.MonkeyPatch, change: Any) -> None:
    """Serves RecordAdded events through ``change`` (a list in, a list out), as a lying RPC node would."""
    real_events = mv.chain.events

    def events(contract: str, event: str, **filters: Any) -> list[Any]:
        logs = real_events(contract, event, **filters)
        return list(change(logs)) if event == "RecordAdded" else logs

    monkeypatch.setattr(mv.chain, "events", events)


class LyingIpfs(IpfsClient):
    """Serves other bytes for one CID, the genuine bytes for the rest."""

    def __init__(self, api_url: str, cid: str, substitute: bytes) -> None:
        super().__init__(api_url)
        self.cid, self.substitute = cid, substitute

    def _stream(self, command: str, params: dict[str, str], seconds: float | None) -> Generator[bytes, None, None]:
        if command == "cat" and params["arg"] == self.cid:
            yield self.substitute
        else:
            yield from super()._stream(command, params, seconds)


def test_a_clean_log_verifies(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add_records(mv, provider, patient, 3)

    report = verify_patient(mv, patient.address)

    assert report.ok, report.findings
    assert report.count == report.events == 3
    assert [r.index for r in report.records] == [0, 1, 2]
    assert report.head == mv.records(patient.address)[-1].record_hash


def test_an_empty_log_verifies(mv: Medvault, patient: Wallet) -> None:
    report = verify_patient(mv, patient.address)

    assert report.ok
    assert report.count == 0


def test_unpinned_ciphertext_and_key_bundle(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add_records(mv, provider, patient, 3)
    pointers = mv.records(patient.address)
    mv.ipfs.unpin(pointers[1].cid)
    mv.ipfs.unpin(pointers[2].keys_cid)

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("unpinned", 1, "record"), ("unpinned", 2, "keys")}
    assert report.findings[0].cid == pointers[1].cid


@pytest.mark.parametrize("batch", [256, 3])
def test_pins_asked_in_batches_find_each_unpinned_cid_among_pinned_ones(
    ipfs: IpfsClient, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kubo fails a pin/ls of several CIDs when one is not pinned, and names the wrong one: the
    answer must still be exact, whichever CIDs of a batch are not pinned."""
    monkeypatch.setattr("medvault.ipfs.PIN_BATCH", batch)
    tag = os.urandom(8).hex()
    pinned = [ipfs.add(f"pinned {tag} {i}".encode()) for i in range(12)]
    loose = [ipfs.add(f"loose {tag} {i}".encode(), pin=False) for i in range(3)]
    absent = compute_cid(f"never stored {tag}".encode())
    asked = [*pinned[:4], loose[0], *pinned[4:9], loose[1], absent, *pinned[9:], loose[2], pinned[0]]

    assert ipfs.pinned(asked) == set(pinned)
    assert {cid for cid in asked if ipfs.is_pinned(cid)} == set(pinned)
    assert ipfs.pinned(pinned) == set(pinned)
    assert ipfs.pinned(loose) == set()
    assert ipfs.pinned([]) == set()


def test_an_unpinned_object_among_many_is_the_only_finding(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add_records(mv, provider, patient, 6)
    pointers = mv.records(patient.address)
    mv.ipfs.unpin(pointers[3].keys_cid)

    report = verify_patient(mv, patient.address)

    assert [(f.kind, f.index, f.object, f.cid) for f in report.findings] == [
        ("unpinned", 3, "keys", pointers[3].keys_cid)
    ]
    assert report.findings[0].message == (
        f"key bundle {pointers[3].keys_cid} is stored but not pinned: garbage collection will drop it"
    )


def test_garbage_collected_ciphertext_is_missing(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add_records(mv, provider, patient, 3)
    pointers = mv.records(patient.address)
    mv.ipfs.unpin(pointers[0].cid)
    mv.ipfs.unpin(pointers[2].keys_cid)
    collect_garbage(mv.ipfs)

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("missing", 0, "record"), ("missing", 2, "keys")}
    assert pointers[0].cid in report.findings[0].message


def test_ciphertext_served_altered_is_reported(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add_records(mv, provider, patient, 2)
    cid = mv.records(patient.address)[1].cid
    genuine = mv.ipfs.cat(cid)
    mv.ipfs = LyingIpfs(mv.ipfs.api_url, cid, genuine[:-1] + bytes([genuine[-1] ^ 1]))

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("altered", 1, "record")}
    assert "hash to" in report.findings[0].message


def test_ciphertext_differing_from_its_content_hash_is_reported(
    mv: Medvault, provider: Wallet, patient: Wallet
) -> None:
    add_records(mv, provider, patient, 1)
    # A faulty client commits to a content hash that is not its ciphertext's.
    keys_cid = mv.records(patient.address)[0].keys_cid
    fn = mv.chain.records.functions.addRecord(
        patient.address,
        mv.next_seq(patient.address, provider.address),
        cid_to_bytes(mv.ipfs.add(b"ciphertext")),
        hashlib.sha256(b"something else").digest(),
        int(Category.NOTES),
        cid_to_bytes(keys_cid),
    )
    mv.chain.transact(provider, fn, "raw addRecord")

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("altered", 1, "record")}
    assert "content hash" in report.findings[0].message


def test_swapped_events_are_reordered(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(mv, provider, patient, 3)
    patch_events(mv, monkeypatch, lambda logs: [logs[1], logs[0], logs[2]])

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("reordered", 0, "log"), ("reordered", 1, "log")}


def test_an_altered_event_is_pinned_to_its_record(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(mv, provider, patient, 3)

    def recategorize(logs: list[Any]) -> list[Any]:
        logs[1] = {**logs[1], "args": {**logs[1]["args"], "category": int(Category.NOTES)}}
        return logs

    patch_events(mv, monkeypatch, recategorize)

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("altered", 1, "log")}
    assert "does not match" in report.findings[0].message


def test_an_altered_last_event_does_not_reach_the_head(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(mv, provider, patient, 2)

    def rehash(logs: list[Any]) -> list[Any]:
        # Fields and record hash changed consistently: only the on-chain head gives it away.
        args = {**logs[1]["args"], "category": int(Category.NOTES)}
        args["recordHash"] = record_hash_of_event(bytes(logs[0]["args"]["recordHash"]), patient.address, args)
        logs[1] = {**logs[1], "args": args}
        return logs

    patch_events(mv, monkeypatch, rehash)

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("altered", 1, "log")}
    assert "on-chain head" in report.findings[0].message


def test_a_dropped_event_is_missing(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(mv, provider, patient, 3)
    patch_events(mv, monkeypatch, lambda logs: [logs[0], logs[2]])

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("missing", 1, "log")}
    assert [r.index for r in report.records] == [0, 2]


def test_a_forged_extra_event_is_altered(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(mv, provider, patient, 2)
    patch_events(mv, monkeypatch, lambda logs: [*logs, {**logs[1], "args": {**logs[1]["args"], "index": 2}}])

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {("altered", 2, "log")}


def test_several_findings_are_all_reported(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_records(mv, provider, patient, 5)
    pointers = mv.records(patient.address)
    mv.ipfs.unpin(pointers[0].cid)
    mv.ipfs.unpin(pointers[1].keys_cid)
    collect_garbage(mv.ipfs)

    def corrupt(logs: list[Any]) -> list[Any]:
        logs[2] = {**logs[2], "args": {**logs[2]["args"], "timestamp": logs[2]["args"]["timestamp"] + 1}}
        return [logs[0], logs[1], logs[3], logs[2]]  # record 4 dropped, 2 and 3 swapped

    patch_events(mv, monkeypatch, corrupt)

    report = verify_patient(mv, patient.address)

    assert kinds(report) == {
        ("missing", 0, "record"),
        ("missing", 1, "keys"),
        ("altered", 2, "log"),
        ("reordered", 2, "log"),
        ("reordered", 3, "log"),
        ("missing", 4, "log"),
    }
    assert not report.ok
    assert report.tally() == {"missing": 3, "altered": 1, "reordered": 2}


class TestCli:
    @staticmethod
    def run(home: Path, node: NodeInfo, *args: str) -> Any:
        base = ["--home", str(home), "--rpc-url", node.rpc_url, "--ipfs-api", node.ipfs_api]
        return CliRunner().invoke(cli, [*base, "verify", *args])

    def test_clean_log_exits_zero(
        self, mv: Medvault, provider: Wallet, patient: Wallet, home: Path, local_node: NodeInfo
    ) -> None:
        add_records(mv, provider, patient, 2)

        result = self.run(home, local_node, "--patient", patient.address)

        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == ["   0  ok", "   1  ok", f"{patient.address}: 2 records, all verified"]

    def test_patient_by_keystore_name_with_json(
        self, mv: Medvault, provider: Wallet, patient: Wallet, home: Path, local_node: NodeInfo
    ) -> None:
        add_records(mv, provider, patient, 1)

        result = self.run(home, local_node, "--patient", "patient", "--json")

        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["ok"] is True
        assert data["patient"] == patient.address
        assert data["records"][0]["cid"] == mv.records(patient.address)[0].cid

    def test_findings_exit_one(
        self, mv: Medvault, provider: Wallet, patient: Wallet, home: Path, local_node: NodeInfo
    ) -> None:
        add_records(mv, provider, patient, 2)
        mv.ipfs.unpin(mv.records(patient.address)[1].cid)

        text = self.run(home, local_node, "--patient", patient.address)
        as_json = self.run(home, local_node, "--patient", patient.address, "--json")

        assert text.exit_code == 1, text.output
        lines = text.stdout.splitlines()
        assert lines[0] == "   0  ok"
        assert lines[1].startswith("   1  UNPINNED  record ")
        assert lines[-1] == f"{patient.address}: 2 records, 1 finding (1 unpinned)"
        assert as_json.exit_code == 1
        data = json.loads(as_json.stdout)
        assert data["ok"] is False
        assert [(f["kind"], f["index"], f["object"]) for f in data["findings"]] == [("unpinned", 1, "record")]

    def test_kubo_down_is_an_error_not_a_finding(
        self, mv: Medvault, provider: Wallet, patient: Wallet, home: Path, local_node: NodeInfo
    ) -> None:
        add_records(mv, provider, patient, 1)
        base = ["--home", str(home), "--rpc-url", local_node.rpc_url, "--ipfs-api", f"http://127.0.0.1:{free_port()}"]

        result = CliRunner().invoke(cli, [*base, "verify", "--patient", patient.address, "--json"])

        assert result.exit_code == 1
        data = json.loads(result.stdout)
        assert data["error"] == "IpfsUnavailableError"
        assert "findings" not in data


def test_verify_reports_unpinned_keys_shared_bundle(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    """Issue 9 item 9: a grant's KeysShared bundle unpinned and collected is reported, not "ok"."""
    from data import ALL, DAY

    from medvault.model import GrantTerms, Purpose

    add_records(mv, provider, patient, 1)
    mv.grant(patient, patient.address, doctor.address, GrantTerms(ALL, Purpose.TREAT, mv.now(), mv.now() + DAY))
    [event] = mv.chain.events("ConsentManager", "KeysShared", patient=patient.address)
    shared = cid_from_bytes(bytes(event["args"]["keysCid"]))
    assert verify_patient(mv, patient.address).ok

    mv.ipfs.unpin(shared)
    assert kinds(verify_patient(mv, patient.address)) == {("unpinned", -1, "shared")}
    collect_garbage(mv.ipfs)
    report = verify_patient(mv, patient.address, patient)
    assert kinds(report) == {("missing", -1, "shared")}
    assert report.shared == [shared]
    assert "shared key bundle" in report.findings[0].message


def test_verify_reports_a_record_the_patient_cannot_open(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M-3: an author wraps a record's key for itself alone; verify with the patient's keys says so."""
    add_records(mv, provider, patient, 1)
    with monkeypatch.context() as patch:
        only_author = lambda p, author, c: {provider.address: mv.encryption_key(provider.address)}  # noqa: E731
        patch.setattr(mv, "_readers_of_new_record", only_author)
        add_records(mv, provider, patient, 1)

    assert verify_patient(mv, patient.address).ok  # without the patient's keys, nothing to see
    report = verify_patient(mv, patient.address, patient)
    assert kinds(report) == {("unopenable", 1, "keys")}
    assert "no key bundle holds a wrap of its key for the patient" in report.findings[0].message
    assert report.to_json()["keysChecked"] is True


def test_verify_reports_a_malformed_key_bundle(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    cid = mv.ipfs.add(b'{"format": "something else"}')
    keys = cid_to_bytes(cid)
    blob = b"not really a ciphertext"
    content = hashlib.sha256(blob).digest()
    fn = mv.chain.records.functions.addRecord(
        patient.address, 0, cid_to_bytes(mv.ipfs.add(blob)), content, int(Category.LABORATORY), keys
    )
    mv.chain.transact(patient, fn, "a record with a bundle that is no key bundle")
    report = verify_patient(mv, patient.address, patient)
    assert ("malformed", 0, "keys") in kinds(report)


def test_cli_open_keys_reports_an_unopenable_record(
    mv: Medvault, provider: Wallet, patient: Wallet, home: Path, local_node: NodeInfo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from data import PASSPHRASE

    add_records(mv, provider, patient, 1)
    with monkeypatch.context() as patch:
        only_author = lambda p, author, c: {provider.address: mv.encryption_key(provider.address)}  # noqa: E731
        patch.setattr(mv, "_readers_of_new_record", only_author)
        add_records(mv, provider, patient, 1)
    monkeypatch.setenv("MEDVAULT_PASSPHRASE", PASSPHRASE)
    base = ["--home", str(home), "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api]

    plain = CliRunner().invoke(cli, [*base, "verify", "--patient", "patient"])
    opened = CliRunner().invoke(cli, [*base, "verify", "--patient", "patient", "--open-keys", "--json"])

    assert plain.exit_code == 0, plain.output
    assert opened.exit_code == 1, opened.output
    data = json.loads(opened.stdout)
    assert data["keysChecked"] is True
    assert [(f["kind"], f["index"], f["object"]) for f in data["findings"]] == [("unopenable", 1, "keys")]


def test_verify_reports_an_unpinned_keeper_reescrow_bundle(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    """The keepers' re-escrow bundle (keepersOf) is a bundle the chain references: collected, the
    keepers could release none of the records written before the set; verify must say so."""
    add_records(mv, provider, patient, 1)
    mv.set_keepers(patient, [doctor.address, provider.address], 1)
    escrow_cid = mv.keepers_of(patient.address, with_urls=False).escrow_cid
    assert escrow_cid is not None
    assert verify_patient(mv, patient.address).ok

    mv.ipfs.unpin(escrow_cid)
    assert kinds(verify_patient(mv, patient.address)) == {("unpinned", -1, "escrow")}
    collect_garbage(mv.ipfs)
    report = verify_patient(mv, patient.address)
    assert kinds(report) == {("missing", -1, "escrow")}
    assert escrow_cid in report.shared


def test_verify_reports_a_record_escrowed_with_keepers_not_in_the_set(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An author escrows a new record's key with a keeper of its own choosing, not the patient's:
    the bundle parses, but readers ask only on-chain keepers, so no keeper can release it."""
    from dataclasses import replace

    mv.set_keepers(patient, [doctor.address], 1)
    real = mv.keepers_of
    with monkeypatch.context() as patch:
        patch.setattr(mv, "keepers_of", lambda p, **kw: replace(real(p, **kw), keepers=[provider.address]))
        add_records(mv, provider, patient, 1)

    report = verify_patient(mv, patient.address)
    assert kinds(report) == {("malformed", 0, "escrow")}
    assert "cannot release it" in report.findings[0].message


def test_verify_reports_a_record_escrowed_below_the_patients_threshold(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patient chose 2-of-2 keepers so that no one keeper can recover a key; a writer escrows
    its record 1-of-2, so either keeper alone holds the key. verify names it."""
    from dataclasses import replace

    mv.set_keepers(patient, [doctor.address, provider.address], 2)
    real = mv.keepers_of
    with monkeypatch.context() as patch:
        patch.setattr(mv, "keepers_of", lambda p, **kw: replace(real(p, **kw), threshold=1))
        add_records(mv, provider, patient, 1)
    add_records(mv, provider, patient, 1)

    report = verify_patient(mv, patient.address)
    assert kinds(report) == {("malformed", 0, "escrow")}
    assert "below the patient's threshold of 2" in report.findings[0].message
