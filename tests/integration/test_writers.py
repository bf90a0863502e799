"""Writes under the patient's consent, against a real anvil, Kubo and keepers: only the patient
and its care team (in their categories) write; concurrent writers both land; a ciphertext is
bound to (patient, author, author's seq); the patient's flags reach every reader and verify;
a future-dated grantee holds no key before its window opens."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from data import DAY, LAB, LABS, MEDS
from helpers import add, grant, new_wallet
from test_keepers import Keepers

from medvault.cids import cid_to_bytes
from medvault.cli import cli
from medvault.crypto import encrypt_record, new_record_key
from medvault.dev import anvil
from medvault.errors import AccessDeniedError, ContractError, DecryptionError
from medvault.formats import envelope
from medvault.formats.keybundle import wrap_for
from medvault.model import Category, EmergencyMode, EmergencyStanding, Role
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from helpers import ChainClock
    from web3 import Web3

    from medvault.accounts import Keystore, Wallet
    from medvault.client import Medvault
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


def test_provider_without_consent_cannot_write(mv: Medvault, admin: Wallet, patient: Wallet, doctor: Wallet) -> None:
    # M-9: an accredited provider the patient never put on its care team writes nothing.
    mv.accredit(admin, doctor.address, Role.PROVIDER)
    with pytest.raises(ContractError) as refused:
        mv.add_record(doctor, patient.address, LAB, Category.LABORATORY)
    assert refused.value.name == "RecordRegistryUnauthorizedAuthor"
    assert mv.records(patient.address) == []

    # Allowed, it writes; removed, it is refused again, and what it wrote stays.
    mv.set_writer(patient, doctor.address, frozenset(Category))
    assert mv.writers(patient.address)[doctor.address] == frozenset(Category)
    add(mv, doctor, patient)
    mv.remove_writer(patient, doctor.address)
    assert doctor.address not in mv.writers(patient.address)
    with pytest.raises(ContractError) as again:
        mv.add_record(doctor, patient.address, LAB, Category.LABORATORY)
    assert again.value.name == "RecordRegistryUnauthorizedAuthor"
    assert [p.author for p in mv.records(patient.address)] == [doctor.address]


def test_provider_writes_only_inside_an_emergency_the_patient_permits(
    mv: Medvault, admin: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    # The record log asks the real consent contract (emergencyScopes), not a mock.
    mv.accredit(admin, doctor.address, Role.PROVIDER)
    mv.set_emergency_policy(patient, EmergencyMode.ANY, scopes=frozenset({Category.LABORATORY}))
    mv.take_emergency_access(doctor, patient.address, "unconscious in the emergency department")
    add(mv, doctor, patient, LAB, Category.LABORATORY)
    with pytest.raises(ContractError) as outside:
        mv.add_record(doctor, patient.address, MEDS, Category.MEDICATIONS)
    assert outside.value.name == "RecordRegistryCategoryNotAllowed"

    mv.set_emergency_standing(patient, doctor.address, EmergencyStanding.BLOCKED)
    with pytest.raises(ContractError) as blocked:
        mv.add_record(doctor, patient.address, LAB, Category.LABORATORY)
    assert blocked.value.name == "RecordRegistryUnauthorizedAuthor"
    assert [p.author for p in mv.records(patient.address)] == [doctor.address]


def test_writer_cannot_write_outside_its_categories(
    mv: Medvault, admin: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    mv.accredit(admin, doctor.address, Role.PROVIDER)
    mv.set_writer(patient, doctor.address, LABS)
    add(mv, doctor, patient, LAB, Category.LABORATORY)
    with pytest.raises(ContractError) as refused:
        mv.add_record(doctor, patient.address, MEDS, Category.NOTES)
    assert refused.value.name == "RecordRegistryCategoryNotAllowed"
    assert [p.category for p in mv.records(patient.address)] == [Category.LABORATORY]


def test_concurrent_writers_never_revert_stale(
    mv: Medvault, w3: Web3, admin: Wallet, patient: Wallet, provider: Wallet, doctor: Wallet
) -> None:
    # Two writers seal their records against the same log state and send them into one block.
    mv.accredit(admin, doctor.address, Role.PROVIDER)
    mv.set_writer(patient, doctor.address, frozenset(Category))
    add(mv, provider, patient)
    results: dict[str, Any] = {}

    def write(author: Wallet, data: bytes) -> None:
        try:
            results[author.address] = mv.add_record(author, patient.address, data, Category.LABORATORY)
        except BaseException as exc:  # reported by the assertion below
            results[author.address] = exc

    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        threads = [threading.Thread(target=write, args=(a, d)) for a, d in ((provider, LAB), (doctor, MEDS))]
        for thread in threads:
            thread.start()
        for _ in range(200):  # until both transactions wait in the pool
            pending = w3.provider.make_request("txpool_status", [])["result"]  # type: ignore[arg-type]
            if int(pending["pending"], 16) >= 2:
                break
            threading.Event().wait(0.05)
        anvil.mine(w3)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    for thread in threads:
        thread.join(30)

    receipts = [results[provider.address], results[doctor.address]]
    assert all(not isinstance(r, BaseException) for r in receipts), receipts
    assert receipts[0].tx.block_number == receipts[1].tx.block_number
    log = mv.records(patient.address)
    assert sorted(p.index for p in log) == [0, 1, 2]
    assert {(p.author, p.seq) for p in log[1:]} == {(provider.address, 1), (doctor.address, 0)}
    assert mv.read_record(patient, patient.address, receipts[0].pointer.index).data == LAB
    assert mv.read_record(patient, patient.address, receipts[1].pointer.index).data == MEDS


def test_ciphertext_moved_to_another_place_is_detected(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    # The author knows the record key, so it can post the same ciphertext again at its next
    # seq with a key wrap made for that place: the ciphertext's own binding still gives it away.
    original = add(mv, provider, patient)
    blob = mv.ipfs.cat(original.cid)
    key = mv.open_key(provider, original)
    seq = mv.next_seq(patient.address, provider.address)
    moved_context = mv.record_context(patient.address, provider.address, seq)
    wrap = wrap_for(moved_context, key, patient.address, mv.encryption_key(patient.address))
    keys_cid = mv.ipfs.add(mv.new_key_bundle(patient.address, [wrap]).to_bytes())
    fn = mv.chain.records.functions.addRecord(
        patient.address, seq, cid_to_bytes(original.cid), hashlib.sha256(blob).digest(), 0, cid_to_bytes(keys_cid)
    )
    mv.chain.transact(provider, fn, "the same ciphertext again")
    moved = mv.records(patient.address)[-1]
    assert (moved.author, moved.seq) == (provider.address, 1)

    assert mv.open_key(patient, moved) == key  # the wrap opens: it was made for this place
    with pytest.raises(DecryptionError, match="failed authentication"):
        mv.read_record(patient, patient.address, moved.index)
    # The original still reads.
    assert mv.read_record(patient, patient.address, original.index).data == LAB

    # Sealed for a seq its author has already used: the chain refuses it outright.
    context = mv.record_context(patient.address, provider.address, 0)
    stale = encrypt_record(envelope.pack(LAB, "application/fhir+json"), new_record_key(), context)
    fn = mv.chain.records.functions.addRecord(
        patient.address, 0, cid_to_bytes(mv.ipfs.add(stale)), hashlib.sha256(stale).digest(), 0, cid_to_bytes(keys_cid)
    )
    with pytest.raises(ContractError) as refused:
        mv.chain.transact(provider, fn, "a used seq")
    assert refused.value.name == "RecordRegistryStaleSeq"


def test_hidden_or_disputed_record_is_shown_by_readers_and_verify(
    mv: Medvault, home: Path, local_node: NodeInfo, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    first, second, third = add(mv, provider, patient), add(mv, provider, patient), add(mv, provider, patient)
    mv.flag_record(patient, first.index, disputed=True, hidden=False)
    mv.flag_record(patient, second.index, disputed=True, hidden=True)
    mv.flag_record(patient, third.index, disputed=False, hidden=True)
    mv.flag_record(patient, third.index, disputed=False, hidden=False)  # cleared again
    with pytest.raises(ContractError) as refused:  # the author cannot flag the patient's records
        mv.flag_record(provider, first.index, disputed=False, hidden=False)
    assert refused.value.name == "RecordRegistryUnknownRecord"

    log = mv.records(patient.address)
    assert [(p.disputed, p.hidden) for p in log] == [(True, False), (True, True), (False, False)]
    grant(mv, patient, doctor)
    read = mv.read_record(doctor, patient.address, second.index)
    assert (read.pointer.disputed, read.pointer.hidden) == (True, True)
    assert read.data == LAB  # flagged, not removed

    report = verify_patient(mv, patient.address)
    assert report.ok
    assert [(r.disputed, r.hidden) for r in report.records] == [(True, False), (True, True), (False, False)]
    assert [(r.author, r.seq) for r in report.records] == [(provider.address, n) for n in range(3)]

    runner = CliRunner()
    base = ["--home", str(home), "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api]
    listed = runner.invoke(cli, [*base, "record", "list", "-p", patient.address])
    assert listed.exit_code == 0, listed.output
    shown = [("DISPUTED" in line, "HIDDEN" in line) for line in listed.output.splitlines()]
    assert shown == [(True, False), (True, True), (False, False)]
    as_json = json.loads(runner.invoke(cli, [*base, "record", "list", "-p", patient.address, "--json"]).output)
    assert [(r["disputed"], r["hidden"]) for r in as_json] == [(True, False), (True, True), (False, False)]
    verified = runner.invoke(cli, [*base, "verify", "-p", patient.address])
    assert verified.exit_code == 0, verified.output
    assert "DISPUTED HIDDEN by the patient" in verified.output.splitlines()[1]


@pytest.fixture
def keepers(mv: Medvault, local_node: NodeInfo, tmp_path: Path) -> Iterator[Keepers]:
    group = Keepers(mv, local_node, tmp_path)
    yield group
    group.close()


def test_future_dated_grantee_gets_no_wrap_before_window(
    mv: Medvault,
    keystore: Keystore,
    w3: Web3,
    keepers: Keepers,
    clock: ChainClock,
    provider: Wallet,
    patient: Wallet,
    doctor: Wallet,
) -> None:
    # M-8: the patient grants the doctor from tomorrow; a record written today holds no key for
    # it, so the doctor cannot decrypt it today (whatever its client does), nor ever if the
    # patient revokes before the window opens.
    keeper_wallets = [new_wallet(keystore, w3, f"keeper{i}", "keeper passphrase") for i in (1, 2)]
    for wallet in keeper_wallets:
        mv.register(wallet)
    mv.set_keepers(patient, [k.address for k in keeper_wallets], 2)
    for wallet in keeper_wallets:
        keepers.start(wallet)
    start = mv.now() + DAY
    grant(mv, patient, doctor, start=start, end=start + DAY)
    pointer = add(mv, provider, patient)

    bundle = mv.key_bundle(pointer.keys_cid, patient.address)
    assert bundle.wraps_for(doctor.address, pointer.author, pointer.seq) == []
    assert {w.reader for w in bundle.wraps} == {patient.address, provider.address}
    with pytest.raises(AccessDeniedError, match="no key of record"):
        mv.open_key(doctor, pointer)  # the doctor's own key opens nothing of it
    with pytest.raises(AccessDeniedError):
        mv.release_key(doctor, pointer)  # and the keepers refuse outside the window

    # Once the window opens, the keepers serve it.
    clock.advance(DAY + 1)
    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB
