"""The data path walks forward: a read fetches each object once and decrypts once, a grant
reads the record log once, a write does not read it back (counted under a real client, anvil
and Kubo; the read through the keepers is in test_keepers.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from counting import counted_client
from data import ALL, DAY, LAB
from helpers import add

from medvault.model import Category, GrantTerms, Purpose

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.client import Medvault

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
