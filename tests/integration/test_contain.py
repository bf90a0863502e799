"""Containment: a bad record of a patient's log is a finding about that record and nothing else.

Around one bad record of each kind (see badrecords.py), the patient lists its log and reads the
good records, a grant shares the good keys and reports the bad ones, a key rotation carries
on, the event index syncs past them, ``verify`` names each by index and checks the rest, and a
keeper answers for the good records and refuses the bad one alone. A bad ``KeysShared`` bundle
is passed over by the grantee's reads.

The bad records use well-formed pointers whose objects are bad, which every deployment
accepts; pointer bytes that are not a usable CID are refused on chain, and the unit tests
(tests/unit/test_pointers.py) feed them through the log, the index and the keepers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from badrecords import WELL_FORMED, write_pointer
from click.testing import CliRunner
from data import DAY, LAB, LABS, PASSPHRASE
from helpers import add, grant, new_wallet

from medvault.chain import Chain, connect, load_artifacts
from medvault.cids import cid_to_bytes
from medvault.cli import cli
from medvault.client import Medvault
from medvault.dev.node import free_port
from medvault.errors import BadRecordError
from medvault.index import EventIndex
from medvault.ipfs import IpfsClient
from medvault.keeper.protocol import KeyRequest, sign_key_request
from medvault.keeper.service import KeeperService
from medvault.model import GrantTerms, Purpose
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Keystore, Wallet
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration
Kwargs = dict[str, Any]  # write_pointer's keyword arguments


def bad_log(
    mv: Medvault, provider: Wallet, patient: Wallet, bad: dict[str, Kwargs]
) -> tuple[list[int], dict[str, int]]:
    """A good record, then each bad one (``bad``: name -> write_pointer arguments) followed by a
    good one; the good indices and the bad ones by name."""
    good, written = [add(mv, provider, patient).index], {}
    for name, kwargs in bad.items():
        written[name] = write_pointer(mv, provider, patient, **kwargs)
        good.append(add(mv, provider, patient).index)
    return good, written


WELL = {name: kwargs for name, (kwargs, _) in WELL_FORMED.items()}
WORDS = {name: words for name, (_, words) in WELL_FORMED.items()}


def check_reads(mv: Medvault, reader: Wallet, patient: Wallet, good: list[int], bad: dict[str, int]) -> None:
    """``reader`` reads every good record, and each bad one fails naming its patient and index."""
    for index in good:
        assert mv.read_record(reader, patient.address, index).data == LAB
    for name, index in bad.items():
        with pytest.raises(BadRecordError, match=f"record {index} of {patient.address} cannot be used") as caught:
            mv.read_record(reader, patient.address, index)
        assert WORDS[name] in str(caught.value), name


def test_the_patient_lists_and_reads_around_bad_records(
    mv: Medvault,
    provider: Wallet,
    patient: Wallet,
    home: Path,
    local_node: NodeInfo,
) -> None:
    good, written = bad_log(mv, provider, patient, WELL)
    log = mv.records(patient.address)
    assert len(log) == len(good) + len(written)
    assert not any(p.problem for p in log)  # well-formed pointers: each is bad only when used
    check_reads(mv, patient, patient, good, written)

    base = ["--home", str(home), "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api]
    listed = CliRunner().invoke(cli, [*base, "record", "list", "--patient", patient.address])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert len(lines) == len(log)
    assert not any("UNUSABLE" in line for line in lines)
    assert all(log[i].cid in lines[i] for i in good)


def test_a_grant_shares_the_good_keys_and_reports_the_bad(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    good, written = bad_log(mv, provider, patient, WELL)
    receipt = mv.grant(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, mv.now(),
                       mv.now() + DAY))  # fmt: skip
    unshared = {i for i, why in receipt.skipped.items() if f"record {i} of {patient.address}" in why}
    # A key bundle that cannot be read keeps its key from the grantee; the others' keys are shared.
    assert unshared == {i for name, i in written.items() if "keys" in name or "key-bundle" in name}
    check_reads(mv, doctor, patient, good, written)


def test_key_rotation_carries_on_past_bad_records(
    mv: Medvault,
    provider: Wallet,
    patient: Wallet,
) -> None:
    good, written = bad_log(mv, provider, patient, WELL)
    rotation = mv.rotate_key(patient)
    unopened = {i for name, i in written.items() if "keys" in name or "key-bundle" in name}
    assert set(rotation.skipped) == unopened
    assert all(f"record {i} of {patient.address}" in rotation.skipped[i] for i in unopened)
    assert set(rotation.rewrapped) == set(good) | (set(written.values()) - unopened)
    check_reads(mv, patient, patient, good, written)
    mv.set_keepers(patient, [provider.address], 1)  # re-escrows every key the patient opens, past the bad ones
    escrow_cid = mv.keepers_of(patient.address).escrow_cid
    assert escrow_cid is not None
    assert {i for i, _ in mv.key_bundle(escrow_cid, patient.address).escrows} == set(rotation.rewrapped)


def test_verify_names_each_bad_record_and_checks_the_rest(
    mv: Medvault,
    provider: Wallet,
    patient: Wallet,
) -> None:
    good, written = bad_log(mv, provider, patient, WELL)
    report = verify_patient(mv, patient.address, patient)
    assert len(report.records) == len(good) + len(written)
    assert {f.index for f in report.findings} == set(written.values())
    for name, index in written.items():
        assert report.findings_for(index), name
        assert all(f.kind in ("missing", "malformed") for f in report.findings_for(index)), name


def test_the_index_syncs_past_bad_records(
    mv: Medvault,
    provider: Wallet,
    patient: Wallet,
    home: Path,
) -> None:
    bad_log(mv, provider, patient, WELL)
    after = add(mv, provider, patient)  # a record after them all, and another patient's event
    grant(mv, patient, provider, LABS)
    with EventIndex.open(home, mv.chain) as index:
        index.sync()
        indexed = index.records_of(patient.address, sync=False)
        assert [p.index for p in indexed] == [*range(after.index + 1)]
        assert {p.index for p in indexed if p.problem} == {p.index for p in mv.records(patient.address) if p.problem}
        assert indexed[after.index].cid == after.cid
        assert [g.grantee for g in index.readers_of(patient.address, sync=False)] == [provider.address]
        assert index.verify(sync=False).ok


def test_a_bad_keys_shared_bundle_is_passed_over(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    record = add(mv, provider, patient)
    grant(mv, patient, doctor, LABS)  # shares the key in a KeysShared bundle
    garbage = cid_to_bytes(mv.ipfs.add(b"\x00 not a key bundle"))
    not_a_bundle = cid_to_bytes(mv.ipfs.add(b'{"format": "something else"}'))
    for keys_cid in (garbage, not_a_bundle):
        mv.chain.transact(patient, mv.chain.consent.functions.shareKeys(doctor.address, keys_cid), "bad share")
    assert mv.read_record(doctor, patient.address, record.index).data == LAB
    report = verify_patient(mv, patient.address)
    shared = [f for f in report.findings if f.object == "shared"]
    assert [f.kind for f in shared] == ["malformed"] * 2
    assert {f.index for f in report.findings} == {-1}


# -- keepers -----------------------------------------------------------------------------------


@pytest.fixture
def keeper(mv: Medvault, keystore: Keystore, w3: Web3, local_node: NodeInfo, tmp_path: Path) -> Iterator[KeeperService]:
    wallet = new_wallet(keystore, w3, "keeper", PASSPHRASE)
    mv.register(wallet)
    with IpfsClient(local_node.ipfs_api) as ipfs:
        client = Medvault(Chain(connect(local_node.rpc_url), mv.chain.deployment, load_artifacts()), ipfs)
        port = free_port()
        yield KeeperService(wallet, client, tmp_path / "keeper", port=port, announce=f"http://127.0.0.1:{port}")


def test_a_keeper_answers_for_the_good_records_and_refuses_the_bad_one(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, keeper: KeeperService
) -> None:
    mv.set_keepers(patient, [keeper.address], 1)
    bad = {"missing-key-bundle": WELL["missing-key-bundle"], "key-bundle-not-json": WELL["key-bundle-not-json"]}
    good, written = bad_log(mv, provider, patient, bad)
    mv.grant(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, mv.now(), mv.now() + DAY),
             share_keys=False)  # fmt: skip
    keeper.start()
    try:

        def ask(index: int) -> tuple[int, dict[str, Any]]:
            request = KeyRequest(patient.address, index, doctor.address, keeper.address, mv.now())
            return keeper.handle(sign_key_request(doctor, request, mv.chain.chain_id, mv.chain.keepers.address))

        for index in good:
            status, answer = ask(index)
            assert status == 200, answer
        for name, index in written.items():
            status, answer = ask(index)
            assert (status, answer["error"]) == (422, "bad-record"), name
            assert f"record {index} of {patient.address} cannot be used" in answer["message"], name
        assert mv.read_record(doctor, patient.address, good[-1]).data == LAB  # through the keeper
    finally:
        keeper.stop()


def test_a_log_that_does_not_decode_is_passed_over_by_the_index(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    grant(mv, patient, doctor, LABS)  # AccessGranted and KeysShared
    add(mv, provider, patient)
    with EventIndex.open(home, mv.chain) as index:
        real = index._fetch_logs
        shared = mv.chain.consent.events.KeysShared().topic

        def lying(start: int, end: int) -> list[Any]:  # a node serving a KeysShared log whose data is cut short
            return [{**log, "data": "0x00"} if log["topics"][0] == shared else log for log in real(start, end)]

        monkeypatch.setattr(index, "_fetch_logs", lying)
        index.sync()
        assert [p.index for p in index.records_of(patient.address, sync=False)] == [0, 1]
        assert [g.grantee for g in index.readers_of(patient.address, sync=False)] == [doctor.address]
        events = {row[0] for row in index.db.execute("SELECT event FROM events")}
        assert "KeysShared" not in events
        assert {"RecordAdded", "AccessGranted"} <= events
