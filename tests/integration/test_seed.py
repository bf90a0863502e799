"""`medvault seed` against a real anvil and Kubo: planned counts, decryptable valid FHIR,
reproducibility, resumption after SIGKILL, and batched records in the hash chain."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from medvault.cids import cid_to_bytes, compute_cid
from medvault.crypto import RecordContext, encrypt_record, new_record_key
from medvault.dev.seed import plan_seed, run_seed, seed_state
from medvault.fhir import validate_resource
from medvault.formats.keybundle import wrap_for
from medvault.model import Category, RequestStatus
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.dev.node import NodeInfo
    from medvault.dev.seed import SeedPlan
    from medvault.ipfs import IpfsClient

pytestmark = pytest.mark.integration


def _events_per_patient(mv: Medvault, plan: SeedPlan, contract: str, event: str) -> list[int]:
    return [len(mv.chain.events(contract, event, patient=p.wallet.address)) for p in plan.patients]


def _check_complete(mv: Medvault, rpc_url: str, plan: SeedPlan) -> None:
    """Everything planned is on chain exactly once."""
    summary, state = plan.summary(), seed_state(mv.chain, rpc_url, plan)
    assert state["record_counts"] == [plan.records_per_patient] * len(plan.patients)
    for key in ("providers", "researchers", "records", "grants", "requests", "approved", "denied", "pending"):
        assert state[key] == summary[key], key
    assert state["registered"] == summary["patients"] + summary["providers"] + summary["researchers"]
    # No duplicates: one RecordAdded per record, one grant and one request per planned one.
    assert _events_per_patient(mv, plan, "RecordRegistry", "RecordAdded") == [plan.records_per_patient] * len(
        plan.patients
    )
    assert _events_per_patient(mv, plan, "ConsentManager", "AccessGranted") == [int(p.grant is not None)
                                                                                for p in plan.patients]  # fmt: skip
    assert _events_per_patient(mv, plan, "ConsentManager", "AccessRequested") == [int(p.request is not None)
                                                                                  for p in plan.patients]  # fmt: skip


def test_seed_makes_the_planned_records_and_consent(mv: Medvault, local_node: NodeInfo) -> None:
    plan = plan_seed("test-1", 6, 4)
    assert plan.summary() == {"patients": 6, "providers": 1, "researchers": 1, "records": 24, "grants": 2,
                              "requests": 1, "approved": 1, "denied": 0, "pending": 0}  # fmt: skip
    report = run_seed(mv, local_node.rpc_url, plan)
    assert report.done["records"] == 24
    assert report.done["grants"] == 2
    _check_complete(mv, local_node.rpc_url, plan)

    kinds = set()
    for p in plan.patients:
        assert verify_patient(mv, p.wallet.address).ok  # every ciphertext and key bundle present and pinned
        pointers = mv.records(p.wallet.address)  # also checks the hash chain against the head
        assert {x.author for x in pointers} == {plan.providers[p.author].address}
        for index, (category, plaintext) in enumerate(p.records()):
            record = mv.read_record(p.wallet, p.wallet.address, index)
            assert record.pointer.category == category
            assert record.content_type == "application/fhir+json"
            assert record.data == plaintext.partition(b"\n")[2]
            resource = validate_resource(json.loads(record.data))
            kinds.add(resource["resourceType"])
        assert json.loads(mv.read_record(p.wallet, p.wallet.address, 0).data)["resourceType"] == "Patient"
        if p.grant:  # the granted provider reads the records in scope
            grantee = plan.providers[p.grant.provider]
            grant = mv.grant_of(p.wallet.address, grantee.address)
            assert grant is not None
            assert grant.scopes == p.grant.scopes
            for pointer in pointers:
                if pointer.category in p.grant.scopes:
                    mv.read_record(grantee, p.wallet.address, pointer.index)
        if p.request and p.request.decision == "approve":
            researcher = plan.researchers[p.request.researcher]
            (request,) = mv.requests(patient=p.wallet.address)
            assert request.status is RequestStatus.APPROVED
            for pointer in pointers:
                if pointer.category in p.request.scopes:
                    mv.read_record(researcher, p.wallet.address, pointer.index)
    assert {"Patient", "Observation"} <= kinds

    again = run_seed(mv, local_node.rpc_url, plan)
    assert again.transactions == 0
    assert set(again.done.values()) == {0}
    _check_complete(mv, local_node.rpc_url, plan)


def test_the_plan_is_reproducible() -> None:
    first, second, other = plan_seed(7, 30, 5), plan_seed("7", 30, 5), plan_seed(8, 30, 5)

    def shape(plan: SeedPlan) -> list[object]:
        return [(p.wallet.address, p.author, p.grant, p.request, p.records()) for p in plan.patients] + [
            [w.address for w in plan.providers],
            [w.address for w in plan.researchers],
        ]

    assert shape(first) == shape(second)
    assert shape(first) != shape(other)
    assert first.summary() == {"patients": 30, "providers": 1, "researchers": 1, "records": 150, "grants": 9,
                               "requests": 3, "approved": 2, "denied": 0, "pending": 1}  # fmt: skip
    for p in first.patients:
        for category, plaintext in p.records():
            validate_resource(json.loads(plaintext.partition(b"\n")[2]))
            assert isinstance(category, Category)


def test_seed_resumes_after_sigkill(mv: Medvault, home: Path, local_node: NodeInfo) -> None:
    patients, per_patient, seed = 150, 3, "sigkill"
    plan = plan_seed(seed, patients, per_patient)
    command = [str(Path(sys.executable).parent / "medvault"), "--home", str(home), "--rpc-url", local_node.rpc_url,
               "--ipfs-api", local_node.ipfs_api, "seed", "-n", str(patients), "-r", str(per_patient),
               "-s", seed, "--json"]  # fmt: skip
    records = mv.chain.records.functions
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        partial = 0
        participants = mv.chain.participants.functions
        # Kill as soon as the run has visibly started (the first patients registered): the
        # pipelined sender hands records to the chain in large batches, so waiting for records
        # could let every in-flight batch land before the kill.
        while time.monotonic() < deadline and process.poll() is None:
            partial = sum(participants.isRegistered(p.wallet.address).call() for p in plan.patients[:20])
            if partial:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # Transactions the killed run had already handed to anvil still land: wait until the
    # chain stops changing before counting what the rerun must still do.
    done, settled = -1, sum(records.logOf(p.wallet.address).call()[1] == per_patient for p in plan.patients)
    while done != settled:
        time.sleep(0.5)
        done, settled = settled, sum(records.logOf(p.wallet.address).call()[1] == per_patient for p in plan.patients)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    assert partial, "nothing landed before the run ended"
    assert done < patients, f"the kill should land midway ({done} of {patients} patients done)"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["done"]["records"] == (patients - done) * per_patient
    _check_complete(mv, local_node.rpc_url, plan)
    # Every record decrypts for its patient (a sample across the run's chunks).
    for p in plan.patients[:: patients // 10]:
        for index, (_, plaintext) in enumerate(p.records()):
            assert mv.read_record(p.wallet, p.wallet.address, index).data == plaintext.partition(b"\n")[2]


def test_batched_records_continue_the_hash_chain(
    mv: Medvault, provider: Wallet, patient: Wallet, ipfs: IpfsClient
) -> None:
    """Single adds, a batch, single adds again: one hash chain the client verifies and reads."""
    mv.add_record(provider, patient.address, b'{"n":0}', Category.NOTES)
    public = mv.encryption_key(patient.address)
    blobs, wraps = [], []
    for index in (1, 2, 3):  # the provider's seq is its record's index: it is the only author here
        context = RecordContext(mv.chain.chain_id, mv.chain.records.address, patient.address, provider.address, index)
        key = new_record_key()
        header = b'{"contentType":"application/json","name":""}\n'
        blobs.append(encrypt_record(header + b'{"n":%d}' % index, key, context))
        wraps.append(wrap_for(context, key, patient.address, public))
    cids = ipfs.add_many([*blobs, mv.new_key_bundle(patient.address, wraps).to_bytes()])
    pointers = [(cid_to_bytes(cid), hashlib.sha256(blob).digest(), int(Category.LABORATORY), cid_to_bytes(cids[-1]))
                for cid, blob in zip(cids, blobs, strict=False)]  # fmt: skip
    mv.chain.transact(provider, mv.chain.records.functions.addRecords(patient.address, 1, pointers), "batch")
    mv.add_record(provider, patient.address, b'{"n":4}', Category.NOTES)

    log = mv.records(patient.address)  # rebuilds every hash and compares the head
    assert [p.index for p in log] == [0, 1, 2, 3, 4]
    assert len({p.block_number for p in log[1:4]}) == 1
    for index in range(5):
        assert mv.read_record(patient, patient.address, index).data == b'{"n":%d}' % index


def test_add_many_and_add_wrapped(ipfs: IpfsClient) -> None:
    blobs = [f"medvault add_many {i} {time.time_ns()}".encode() for i in range(25)] + [b"same", b"same"]
    cids = ipfs.add_many(blobs)
    assert cids == [compute_cid(b) for b in blobs]
    assert all(ipfs.is_pinned(c) for c in cids)
    assert [ipfs.cat(c) for c in cids] == blobs
    assert ipfs.add_many([]) == []

    more = [f"medvault add_wrapped {i} {time.time_ns()}".encode() for i in range(10)]
    directory, wrapped = ipfs.add_wrapped(more)
    assert wrapped == [compute_cid(b) for b in more]
    assert ipfs.is_pinned(directory)
    assert all(ipfs.is_pinned(c) for c in wrapped)  # kept through the pinned directory
    assert [ipfs.cat(c) for c in wrapped] == more
