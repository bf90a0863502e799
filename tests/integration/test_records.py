"""Records end to end: a provider writes, the chain decides who reads, tampering is caught."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from data import LAB, MEDS
from helpers import add, grant

import medvault.client.records as records_module
from medvault.cids import cid_to_bytes
from medvault.crypto import RecordContext, encrypt_record, new_record_key
from medvault.dev.node import free_port
from medvault.errors import (
    AccessDeniedError,
    CidMismatchError,
    ContentHashMismatchError,
    ContractError,
    DecryptionError,
    IntegrityError,
    IpfsUnavailableError,
)
from medvault.ipfs import IpfsClient
from medvault.model import Category

if TYPE_CHECKING:
    from collections.abc import Generator

    from helpers import ChainClock

    from medvault.accounts import Wallet
    from medvault.client import Medvault

pytestmark = pytest.mark.integration


def wrapped_readers(mv: Medvault, patient: Wallet, index: int) -> set[str]:
    pointer = mv.records(patient.address)[index]
    bundle = json.loads(mv.ipfs.cat(pointer.keys_cid))
    return {w["reader"] for w in bundle["wraps"] if (w["author"], w["seq"]) == (pointer.author, pointer.seq)}


def test_provider_record_is_readable_by_patient_and_author(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    index = add(mv, provider, patient).index

    assert mv.read_record(patient, patient.address, index).data == LAB
    assert mv.read_record(provider, patient.address, index).data == LAB
    assert wrapped_readers(mv, patient, index) == {patient.address, provider.address}


def test_only_ciphertext_reaches_ipfs(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    index = add(mv, provider, patient).index
    pointer = mv.records(patient.address)[index]

    stored = mv.ipfs.cat(pointer.cid)
    assert b"HbA1c" not in stored
    assert b"HbA1c" not in mv.ipfs.cat(pointer.keys_cid)
    assert "0x" + hashlib.sha256(stored).hexdigest() == pointer.content_hash


def test_records_form_a_hash_chain_matching_the_head(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    for _ in range(3):
        add(mv, provider, patient)

    pointers = mv.records(patient.address)
    head, count = mv.chain.records.functions.logOf(patient.address).call()
    assert [p.index for p in pointers] == [0, 1, 2]
    assert count == 3
    assert pointers[-1].record_hash == "0x" + bytes(head).hex()


def test_an_altered_event_breaks_the_hash_chain(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    add(mv, provider, patient)
    real_events = mv.chain.events

    def altered(contract: str, event: str, **filters: Any) -> list[Any]:
        logs = real_events(contract, event, **filters)
        if event == "RecordAdded":
            logs[0] = {**logs[0], "args": {**logs[0]["args"], "category": int(Category.NOTES)}}
        return logs

    monkeypatch.setattr(mv.chain, "events", altered)
    with pytest.raises(IntegrityError, match="record 0 .* hash does not match"):
        mv.records(patient.address)


def test_stranger_is_refused(mv: Medvault, provider: Wallet, patient: Wallet, stranger: Wallet) -> None:
    index = add(mv, provider, patient).index

    with pytest.raises(AccessDeniedError, match="never granted one"):
        mv.read_record(stranger, patient.address, index)


def test_grant_shares_existing_records_and_new_ones_are_wrapped(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    before = add(mv, provider, patient).index
    with pytest.raises(AccessDeniedError):
        mv.read_record(doctor, patient.address, before)

    grant(mv, patient, doctor, end=mv.now() + 3600)
    after = add(mv, provider, patient, MEDS).index

    assert mv.read_record(doctor, patient.address, before).data == LAB
    assert mv.read_record(doctor, patient.address, after).data == MEDS
    assert doctor.address in wrapped_readers(mv, patient, after)
    assert mv.grants(patient.address)[0].active_at(mv.now())


def test_revoked_doctor_is_refused_and_later_records_never_wrapped_for_it(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    index = add(mv, provider, patient).index
    grant(mv, patient, doctor, end=mv.now() + 3600)
    mv.revoke(patient, patient.address, doctor.address)
    later = add(mv, provider, patient, MEDS).index

    for record in (index, later):
        with pytest.raises(AccessDeniedError, match="the patient revoked it"):
            mv.read_record(doctor, patient.address, record)
    # Forward security: even a client that skipped the chain's check has no key for it.
    assert doctor.address not in wrapped_readers(mv, patient, later)
    with pytest.raises(AccessDeniedError, match="was ever wrapped for it"):
        mv.open_key(doctor, mv.records(patient.address)[later])


def test_grant_lapses_when_chain_time_passes_its_end(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, clock: ChainClock
) -> None:
    index = add(mv, provider, patient).index
    grant(mv, patient, doctor, end=mv.now() + 600)
    assert mv.read_record(doctor, patient.address, index).data == LAB

    clock.advance(601)

    with pytest.raises(AccessDeniedError, match="expired"):
        mv.read_record(doctor, patient.address, index)
    assert doctor.address not in wrapped_readers(mv, patient, add(mv, provider, patient).index)


def test_unaccredited_author_is_refused_and_leaves_nothing_pinned(
    mv: Medvault, patient: Wallet, stranger: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    added: list[str] = []
    real_add = mv.ipfs.add

    def recording_add(data: bytes, **options: Any) -> str:
        added.append(real_add(data, **options))
        return added[-1]

    monkeypatch.setattr(mv.ipfs, "add", recording_add)
    with pytest.raises(ContractError) as refused:
        add(mv, stranger, patient)

    assert refused.value.name == "RecordRegistryUnauthorizedAuthor"
    assert refused.value.arguments["author"].lower() == stranger.address.lower()
    assert len(added) == 2
    assert not any(mv.ipfs.is_pinned(cid) for cid in added)
    assert mv.records(patient.address) == []


def test_kubo_down_during_add_writes_no_pointer(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    mv.ipfs = IpfsClient(f"http://127.0.0.1:{free_port()}", timeout=2)

    with pytest.raises(IpfsUnavailableError, match="IPFS \\(Kubo\\) node at .* is not reachable"):
        add(mv, provider, patient)

    assert mv.chain.records.functions.logOf(patient.address).call()[1] == 0


class LyingIpfs(IpfsClient):
    """A node that serves other bytes than the CID asked for."""

    def __init__(self, api_url: str, substitute: bytes) -> None:
        super().__init__(api_url)
        self.substitute = substitute

    def _stream(self, command: str, params: dict[str, str], seconds: float | None) -> Generator[bytes, None, None]:
        if command == "cat":
            yield self.substitute
        else:
            yield from super()._stream(command, params, seconds)


def test_bytes_that_do_not_match_the_cid_are_detected(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    index = add(mv, provider, patient).index
    pointer = mv.records(patient.address)[index]
    genuine = mv.ipfs.cat(pointer.cid)
    mv.ipfs = LyingIpfs(mv.ipfs.api_url, genuine[:-1] + bytes([genuine[-1] ^ 1]))

    with pytest.raises(CidMismatchError, match=pointer.cid):
        mv.read_record(patient, patient.address, index)


def _write_pointer(mv: Medvault, author: Wallet, patient: Wallet, blob: bytes, content_hash: bytes) -> int:
    """Appends a pointer to ``blob`` the way a faulty or malicious client might."""
    _, index = mv.chain.records.functions.logOf(patient.address).call()
    keys_cid = mv.records(patient.address)[0].keys_cid
    seq = mv.next_seq(patient.address, author.address)
    fn = mv.chain.records.functions.addRecord(
        patient.address, seq, cid_to_bytes(mv.ipfs.add(blob)), content_hash, 0, cid_to_bytes(keys_cid)
    )
    mv.chain.transact(author, fn, "raw addRecord")
    return int(index)


def test_tampered_ciphertext_is_an_integrity_error_without_plaintext(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ciphertext is altered after sealing; CID, content hash and key wrap all match it.
    real_encrypt = records_module.encrypt_record

    def tampering(plaintext: bytes, key: bytes, context: RecordContext) -> bytes:
        blob = real_encrypt(plaintext, key, context)
        return blob[:-20] + bytes([blob[-20] ^ 1]) + blob[-19:]

    monkeypatch.setattr(records_module, "encrypt_record", tampering)
    index = add(mv, provider, patient).index
    monkeypatch.undo()

    with pytest.raises(DecryptionError, match=f"record {index} .* failed authentication"):
        mv.read_record(patient, patient.address, index)


def test_ciphertext_differing_from_the_content_hash_is_refused(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add(mv, provider, patient)
    context = RecordContext(mv.chain.chain_id, mv.chain.records.address, patient.address, provider.address, 1)
    blob = encrypt_record(b"{}", new_record_key(), context)
    index = _write_pointer(mv, provider, patient, blob, hashlib.sha256(b"something else").digest())

    with pytest.raises(ContentHashMismatchError, match=f"record {index}"):
        mv.read_record(patient, patient.address, index)
