"""The data path walks forward: a read fetches each object once and decrypts once, a grant
reads the record log once, a write does not read it back (counted under a real client, anvil
and Kubo; the read through the keepers is in test_keepers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from counting import counted_client
from data import ALL, DAY, LAB, LABS, MEDS
from helpers import add

from medvault.model import Category, GrantTerms, Purpose

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.client import Medvault
    from medvault.client.consent_sig import ConsentChange

pytestmark = pytest.mark.integration


def test_a_read_fetches_ciphertext_and_key_bundle_once_and_decrypts_once(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    pointer = add(mv, provider, patient)
    with counted_client(mv, monkeypatch) as (client, counts):
        assert client.read_record(patient, patient.address, pointer.index).data == LAB
    assert counts.cats == {pointer.cid: 1, pointer.keys_cid: 1}
    assert counts.decryptions == 1
    assert counts.logs["RecordAdded"] == 1


def test_a_grant_reads_the_record_log_once(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        add(mv, provider, patient)
    now = mv.now()
    with counted_client(mv, monkeypatch) as (client, counts):
        client.grant(patient, patient.address, doctor.address, GrantTerms(ALL, Purpose.TREAT, now, now + DAY))
    assert counts.logs["RecordAdded"] == 1
    assert mv.read_record(doctor, patient.address, 2).data == LAB  # the keys were shared all the same


def test_a_write_does_not_read_the_log_back(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    with counted_client(mv, monkeypatch) as (client, counts):
        receipt = client.add_record(provider, patient.address, LAB, Category.LABORATORY)
    assert counts.logs["RecordAdded"] == 0
    assert receipt.pointer == mv.records(patient.address)[receipt.pointer.index]


def test_a_grant_is_sent_again_when_a_record_in_scope_lands_meanwhile(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    landed = []
    submit = mv.submit

    def submit_after_a_write(actor: Wallet, change: ConsentChange) -> TxResult:
        if not landed:  # a provider's record lands between the log read and the grant
            landed.append(add(mv, provider, patient))
        return submit(actor, change)

    monkeypatch.setattr(mv, "submit", submit_after_a_write)
    now = mv.now()
    results = mv.grant(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    monkeypatch.undo()

    assert len(results.transactions) == 2
    assert mv.read_record(doctor, patient.address, landed[0].index).data == LAB  # its key was shared


def test_a_grant_is_not_sent_again_for_a_record_out_of_scope(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    submit = mv.submit

    def submit_after_a_write(actor: Wallet, change: ConsentChange) -> TxResult:
        add(mv, provider, patient, MEDS, Category.MEDICATIONS)
        return submit(actor, change)

    monkeypatch.setattr(mv, "submit", submit_after_a_write)
    now = mv.now()
    results = mv.grant(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    assert len(results.transactions) == 1


def test_a_write_that_lost_its_place_is_sealed_again_for_the_next(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    raced: list[Any] = []
    transact = mv.chain.transact

    def transact_after_another_write(wallet: Wallet, fn: Any, action: str) -> TxResult:
        if action.startswith("add record") and not raced:  # another record takes index 0 first
            raced.append(None)
            raced[0] = add(mv, provider, patient, MEDS, Category.MEDICATIONS)
        return transact(wallet, fn, action)

    monkeypatch.setattr(mv.chain, "transact", transact_after_another_write)
    receipt = mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    monkeypatch.undo()

    assert [raced[0].index, receipt.pointer.index] == [0, 1]
    assert [r.data for r in (mv.read_record(patient, patient.address, i) for i in (0, 1))] == [MEDS, LAB]
