"""Every custom error of every contract has its sentence: named values in words, no raw error
names, argument lists or unix seconds. A contract error added without words fails here."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3.exceptions import ContractLogicError

from medvault.chain.artifacts import load_artifacts
from medvault.chain.refusals import WORDS, describe
from medvault.chain.transact import decode_revert, error_table
from medvault.words import name_book

ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TIME = 1_796_256_000  # 2026-12-03 00:00:00 UTC
SAMPLES = {"address": ALICE, "bool": True, "bytes32": "0x" + "ab" * 32, "string": "a label", "bytes": "0x01"}


def _contract_errors() -> dict[str, list[dict[str, Any]]]:
    errors = {}
    for artifact in load_artifacts().values():
        for item in artifact.abi:
            if item["type"] == "error":
                errors[item["name"]] = item["inputs"]
    return errors


ERRORS = _contract_errors()


def _is_time(item: dict[str, Any]) -> bool:
    name = item["name"]
    return name == "deadline" or name.startswith("valid") or name.endswith(("At", "Timestamp"))


def _sample(item: dict[str, Any]) -> Any:
    kind = item["type"]
    if kind in SAMPLES:
        return SAMPLES[kind]
    return TIME if _is_time(item) else 1  # small ints: enums, scopes, categories, purposes, counts


def test_the_abis_hold_the_contracts_errors() -> None:
    assert len(ERRORS) >= 50
    assert {"ConsentManagerInvalidWindow", "RecordRegistryStaleSeq", "KeeperDirectoryNotAKeeper"} <= set(ERRORS)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_every_contract_error_has_words(name: str) -> None:
    assert name in WORDS, f"{name} has no words: add its sentence to medvault.chain.refusals.WORDS"
    arguments = {i["name"]: _sample(i) for i in ERRORS[name]}
    sentence = describe(name, arguments, name_book({"alice": ALICE}))
    assert sentence, f"the words for {name} do not render with its arguments"
    assert name not in sentence
    assert sentence[0].islower()
    assert "\n" not in sentence
    assert str(TIME) not in sentence, f"{name} shows a unix time: give the field the :time spec"
    if any(_is_time(i) for i in ERRORS[name]):
        assert "UTC" in sentence
    if any(i["type"] == "address" for i in ERRORS[name]):
        assert "alice (0x7099..79C8)" in sentence or ALICE in sentence


def test_no_words_for_an_error_no_contract_has() -> None:
    assert set(WORDS) <= set(ERRORS), f"words for errors no contract raises: {set(WORDS) - set(ERRORS)}"


def test_a_bad_window_reads_as_dates() -> None:
    later, earlier = 1_796_256_000, 1_796_083_200  # 2026-12-03 and 2026-12-01
    arguments = {"validFrom": later, "validUntil": earlier, "nowTimestamp": earlier}
    assert describe("ConsentManagerInvalidWindow", arguments) == (
        "the grant window ends before it starts (from 2026-12-03 00:00:00 UTC to 2026-12-01 00:00:00 UTC)"
    )
    over = describe(
        "ConsentManagerInvalidWindow", {"validFrom": earlier, "validUntil": earlier + 1, "nowTimestamp": later}
    )
    assert over is not None
    assert "already over" in over
    assert "chain time is 2026-12-03 00:00:00 UTC" in over


def test_scopes_purposes_and_statuses_are_words() -> None:
    assert "laboratory, medications" in str(describe("ConsentManagerInvalidScopes", {"scopes": 0b101 | 1 << 7}))
    assert "unknown category 7" in str(describe("ConsentManagerInvalidScopes", {"scopes": 1 << 7}))
    assert "unknown purpose 9" in str(describe("ConsentManagerInvalidPurpose", {"purpose": 9}))
    denied = describe("ConsentManagerRequestNotPending", {"requestId": 255, "status": 3})
    assert denied == "request 0xff was already denied"


def test_a_decoded_revert_is_worded() -> None:
    signature = "ConsentManagerNoActiveGrant(address,address)"
    data = function_signature_to_4byte_selector(signature) + abi_encode(["address", "address"], [ALICE, ALICE])
    error = decode_revert(
        ContractLogicError("reverted", data="0x" + data.hex()), "revoke", error_table(load_artifacts().values())
    )
    assert error.name == "ConsentManagerNoActiveGrant"
    assert str(error) == f"{ALICE} holds no current or future grant to {ALICE}: there is nothing to revoke"


def test_printed_values_cannot_carry_control_characters() -> None:
    sentence = describe("StringTooLong", {"str": "evil\n2026-12-03 forged line\x1b[2J"})
    assert sentence is not None
    assert "\n" not in sentence
    assert "\x1b" not in sentence
    assert "\\n" in sentence
