"""The data path walks forward: each read fetches what it needs once, each write reads the log once.

A counting IPFS client and counting chain reads sit under a real client, anvil and Kubo.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

import medvault.client.records as records_module
from medvault.client import Medvault
from medvault.ipfs import IpfsClient
from medvault.model import Category, Purpose

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medvault.accounts import Wallet

pytestmark = pytest.mark.integration

LAB = json.dumps({"resourceType": "Observation", "status": "final", "code": {"text": "HbA1c"}}).encode()
DAY = 86_400


class CountingIpfs(IpfsClient):
    """An IpfsClient that counts what it fetches, by CID."""

    def __init__(self, api: str) -> None:
        super().__init__(api)
        self.cats: Counter[str] = Counter()

    def cat(self, cid: str, *args: Any, **kwargs: Any) -> bytes:
        self.cats[cid] += 1
        return super().cat(cid, *args, **kwargs)


@pytest.fixture
def counted(mv: Medvault) -> Iterator[Medvault]:
    """The same deployment as ``mv``, through an IPFS client and chain that count their reads."""
    client = Medvault(mv.chain, CountingIpfs(mv.ipfs.api_url))
    events = client.chain.events
    client.chain.log_reads = Counter()  # type: ignore[attr-defined]

    def counting_events(contract: str, event: str, **filters: Any) -> list[Any]:
        client.chain.log_reads[event] += 1  # type: ignore[attr-defined]
        return events(contract, event, **filters)

    client.chain.events = counting_events  # type: ignore[method-assign]
    yield client
    client.ipfs.close()
    del client.chain.events  # back to the class's method, for the other fixtures sharing the chain


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    count: Counter[str] = Counter()
    real = records_module.decrypt_record

    def counting(blob: bytes, key: bytes, context: Any) -> bytes:
        count["decrypt"] += 1
        return real(blob, key, context)

    monkeypatch.setattr(records_module, "decrypt_record", counting)
    return count


def test_a_read_fetches_ciphertext_and_key_bundle_once_and_decrypts_once(
    mv: Medvault, counted: Medvault, decryptions: Counter[str], provider: Wallet, patient: Wallet
) -> None:
    pointer = mv.add_record(provider, patient.address, LAB, Category.LABORATORY).pointer

    record = counted.read_record(patient, patient.address, pointer.index)

    assert record.data == LAB
    assert counted.ipfs.cats == {pointer.cid: 1, pointer.keys_cid: 1}  # type: ignore[attr-defined]
    assert decryptions["decrypt"] == 1
    assert counted.chain.log_reads["RecordAdded"] == 1  # type: ignore[attr-defined]


def test_a_grant_reads_the_record_log_once(
    mv: Medvault, counted: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    for _ in range(3):
        mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    now = mv.now()

    counted.grant(patient, patient.address, doctor.address, frozenset(Category), Purpose.TREAT, now, now + DAY)

    assert counted.chain.log_reads["RecordAdded"] == 1  # type: ignore[attr-defined]
    assert mv.read_record(doctor, patient.address, 2).data == LAB  # the keys were shared all the same


def test_a_write_does_not_read_the_log_back(counted: Medvault, provider: Wallet, patient: Wallet) -> None:
    receipt = counted.add_record(provider, patient.address, LAB, Category.LABORATORY)

    assert counted.chain.log_reads["RecordAdded"] == 0  # type: ignore[attr-defined]
    assert receipt.pointer == counted.records(patient.address)[receipt.pointer.index]
