"""Reading one record without rebuilding the log: the events it uses are still checked against
the chain's head, a lying endpoint's events are refused, and a head that moves another way (a
reorg) never serves the pointer checked before."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from data import LAB, MEDS
from helpers import add

from medvault.client import Medvault
from medvault.dev import anvil
from medvault.errors import ConfigurationError, IntegrityError
from medvault.formats.recordhash import record_hash_of_event
from medvault.model import Category

if TYPE_CHECKING:
    from collections.abc import Callable

    from medvault.accounts import Wallet

pytestmark = pytest.mark.integration


def fresh(mv: Medvault) -> Medvault:
    """Another client of the same deployment: it has checked nothing of any log yet."""
    return Medvault(mv.chain, mv.ipfs)


def lying_events(mv: Medvault, monkeypatch: pytest.MonkeyPatch, rewrite: Callable[[list[Any]], list[Any]]) -> None:
    """The endpoint answers every ``RecordAdded`` query with ``rewrite`` of the true events."""
    real = mv.chain.events

    def events(contract: str, event: str, **filters: Any) -> list[Any]:
        logs = real(contract, event, **filters)
        return rewrite(logs) if event == "RecordAdded" else logs

    monkeypatch.setattr(mv.chain, "events", events)


def altered(event: Any, **changes: Any) -> Any:
    return {**event, "args": {**event["args"], **changes}}


def queries(mv: Medvault, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The filters of every ``RecordAdded`` query from now on."""
    asked: list[dict[str, Any]] = []
    real = mv.chain.events

    def events(contract: str, event: str, **filters: Any) -> list[Any]:
        if event == "RecordAdded":
            asked.append(filters)
        return real(contract, event, **filters)

    monkeypatch.setattr(mv.chain, "events", events)
    return asked


def test_a_read_refuses_an_event_whose_fields_do_not_hash_to_its_record_hash(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    add(mv, provider, patient)
    lying_events(mv, monkeypatch, lambda logs: [altered(e, category=5) if e["args"]["index"] == 1 else e for e in logs])

    with pytest.raises(IntegrityError, match="record 1 of .* its hash does not match its fields"):
        fresh(mv).read_record(patient, patient.address, 1)


def test_a_read_refuses_a_previous_event_that_lies_about_its_hash(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    add(mv, provider, patient)
    zero = bytes(32)
    lying_events(
        mv, monkeypatch, lambda logs: [altered(e, recordHash=zero) if e["args"]["index"] == 0 else e for e in logs]
    )

    with pytest.raises(IntegrityError, match="record 1 of .* its hash does not match its fields"):
        fresh(mv).read_record(patient, patient.address, 1)


def test_a_read_refuses_forged_events_that_agree_with_each_other_but_not_with_the_head(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    add(mv, provider, patient)
    add(mv, provider, patient)

    def forged(logs: list[Any]) -> list[Any]:
        # Record 1 rewritten and every hash after it recomputed: each event checks against the one before.
        by_index = {e["args"]["index"]: e for e in logs}
        previous, out = None, []
        for i in sorted(by_index):
            event = by_index[i]
            if previous is not None:
                event = altered(event, category=5) if i == 1 else event
                event = altered(event, recordHash=record_hash_of_event(previous, patient.address, event["args"]))
            previous = bytes(event["args"]["recordHash"])
            out.append(event)
        return out

    lying_events(mv, monkeypatch, forged)
    with pytest.raises(IntegrityError, match="rebuild 0x[0-9a-f]+, but the chain holds 0x"):
        fresh(mv).read_record(patient, patient.address, 1)


@pytest.mark.parametrize("answer", ["none", "two"])
def test_a_read_refuses_a_missing_or_doubled_event(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    add(mv, provider, patient)
    add(mv, provider, patient)
    copies = 0 if answer == "none" else 2
    lying_events(
        mv, monkeypatch, lambda logs: [c for e in logs for c in ([e] * copies if e["args"]["index"] == 1 else [e])]
    )

    with pytest.raises(IntegrityError, match=f"{copies} events for record 1"):
        fresh(mv).read_record(patient, patient.address, 1)


@pytest.mark.parametrize("index", [2, 3, -1])
def test_a_read_past_the_count_is_refused(mv: Medvault, provider: Wallet, patient: Wallet, index: int) -> None:
    add(mv, provider, patient)
    add(mv, provider, patient)
    mv.read_record(patient, patient.address, 1)  # a checked stretch does not widen what exists

    with pytest.raises(ConfigurationError, match=rf"has no record {index} \(records: 2\)"):
        mv.read_record(patient, patient.address, index)


def test_a_read_inside_the_checked_stretch_asks_for_no_events_and_a_new_record_only_for_its_own(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        add(mv, provider, patient)
    reader, writer = fresh(mv), fresh(mv)
    asked = queries(mv, monkeypatch)

    first = reader.read_record(patient, patient.address, 1)
    assert asked == [{"patient": patient.address, "index": [0, 1, 2]}]  # record 0 for the hash before 1
    assert first.pointer == mv.records(patient.address)[1]
    asked.clear()
    assert reader.read_record(patient, patient.address, 1) == first
    assert reader.read_record(patient, patient.address, 2).pointer.index == 2
    assert asked == []

    writer.add_record(provider, patient.address, MEDS, Category.MEDICATIONS)
    asked.clear()
    assert reader.read_record(patient, patient.address, 3).data == MEDS
    assert asked == [{"patient": patient.address, "index": [3]}]
    asked.clear()
    assert reader.read_record(patient, patient.address, 0).data == LAB
    assert asked == [{"patient": patient.address, "index": [0]}]


def test_a_lying_answer_about_new_records_is_refused_after_a_checked_stretch(
    mv: Medvault, provider: Wallet, patient: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(mv, provider, patient)
    reader = fresh(mv)
    reader.read_record(patient, patient.address, 0)
    add(mv, provider, patient, MEDS)
    lying_events(mv, monkeypatch, lambda logs: [altered(e, category=5) if e["args"]["index"] == 1 else e for e in logs])

    with pytest.raises(IntegrityError, match="record 1 of .* its hash does not match its fields"):
        reader.read_record(patient, patient.address, 0)


@pytest.mark.parametrize("after", [1, 2])
def test_a_reorg_never_serves_the_pointer_checked_before(
    mv: Medvault, provider: Wallet, patient: Wallet, after: int
) -> None:
    """The chain's head moves another way under a checked stretch (anvil's revert stands in
    for a reorg): the same count with another head, or more records than before on another branch."""
    add(mv, provider, patient)
    snapshot = anvil.snapshot(mv.chain.w3)
    add(mv, provider, patient, LAB)
    reader = fresh(mv)
    checked = reader.read_record(patient, patient.address, 1)
    assert checked.data == LAB
    anvil.revert(mv.chain.w3, snapshot)
    for _ in range(after):
        add(mv, provider, patient, MEDS)

    record = reader.read_record(patient, patient.address, 1)
    assert record.data == MEDS
    assert record.pointer == mv.records(patient.address)[1]
    assert record.pointer.record_hash != checked.pointer.record_hash


def test_a_read_gives_the_flags_the_chain_holds_now(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    add(mv, provider, patient)
    assert not mv.read_record(patient, patient.address, 0).pointer.disputed

    mv.flag_record(patient, 0, disputed=True, hidden=False)
    pointer = mv.read_record(patient, patient.address, 0).pointer
    assert (pointer.disputed, pointer.hidden) == (True, False)
    assert pointer == mv.records(patient.address)[0]

    mv.flag_record(patient, 0, disputed=False, hidden=False)
    assert not mv.read_record(patient, patient.address, 0).pointer.disputed
