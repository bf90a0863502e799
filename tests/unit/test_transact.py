"""Revert decoding without a node: custom-error data as a node returns it, for the contracts'
own ABIs and a hand-written one, becomes the error's name and its arguments."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3.exceptions import ContractLogicError

from medvault.chain.artifacts import load_artifacts
from medvault.chain.transact import ErrorTable, decode_revert, error_table

PATIENT = "0x" + "11" * 20
OTHER = "0x" + "22" * 20


@pytest.fixture(scope="module")
def errors() -> ErrorTable:
    return error_table(load_artifacts().values())


def revert_data(signature: str, types: list[str], values: list[Any]) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + abi_encode(types, values)).hex()


def test_the_table_holds_every_contracts_errors_by_selector(errors: ErrorTable) -> None:
    selector = function_signature_to_4byte_selector("RecordRegistryStaleSeq(address,address,uint64,uint64)")
    name, inputs = errors[selector]
    assert name == "RecordRegistryStaleSeq"
    assert [i["name"] for i in inputs] == ["author", "patient", "expected", "given"]
    names = {name for name, _ in errors.values()}
    assert {"ConsentManagerExpiredSignature", "KeeperDirectoryNotAKeeper", "ParticipantRegistryUnknownSuite"} <= names
    assert "InvalidCid" in names  # a library's error is in the ABI of each contract that uses it


def test_a_custom_error_is_decoded_with_its_arguments(errors: ErrorTable) -> None:
    data = revert_data(
        "ConsentManagerInvalidNonce(address,address,uint64,uint256)",
        ["address", "address", "uint64", "uint256"],
        [PATIENT, OTHER, 3, 7],
    )
    error = decode_revert(ContractLogicError("execution reverted", data=data), "grant", errors)
    assert (error.action, error.name, error.arguments) == (
        "grant", "ConsentManagerInvalidNonce", {"patient": PATIENT, "counterpart": OTHER, "expected": 3, "given": 7}
    )  # fmt: skip


def test_bytes_arguments_are_shown_as_hex(errors: ErrorTable) -> None:
    data = revert_data("ECDSAInvalidSignatureS(bytes32)", ["bytes32"], [b"\xab" * 32])
    error = decode_revert(ContractLogicError("execution reverted", data=data), "relay", errors)
    assert (error.name, error.arguments) == ("ECDSAInvalidSignatureS", {"s": "0x" + "ab" * 32})


def test_an_error_without_arguments(errors: ErrorTable) -> None:
    data = revert_data("RecordRegistryEmptyBatch()", [], [])
    error = decode_revert(ContractLogicError("execution reverted", data=data), "add records", errors)
    assert (error.name, error.arguments) == ("RecordRegistryEmptyBatch", {})


def test_a_hand_written_abi_with_a_tuple_argument() -> None:
    abi = [{
        "type": "error", "name": "Refused",
        "inputs": [
            {"name": "who", "type": "address"},
            {"name": "items", "type": "tuple[]", "components": [
                {"name": "index", "type": "uint64"}, {"name": "tag", "type": "bytes4"},
            ]},
        ],
    }]  # fmt: skip
    table = error_table([SimpleNamespace(abi=abi)])
    assert list(table) == [function_signature_to_4byte_selector("Refused(address,(uint64,bytes4)[])")]
    data = revert_data("Refused(address,(uint64,bytes4)[])", ["address", "(uint64,bytes4)[]"],
                       [PATIENT, [(1, b"\1\2\3\4")]])  # fmt: skip
    error = decode_revert(ContractLogicError("execution reverted", data=data), "act", table)
    assert (error.name, error.arguments) == ("Refused", {"who": PATIENT, "items": ((1, b"\1\2\3\4"),)})


@pytest.mark.parametrize(
    "data",
    ["0xdeadbeef" + "00" * 32, "0x1234", "", None, {"message": "not revert data"}],
    ids=["unknown selector", "too short", "empty", "none", "not text"],
)
def test_anything_else_is_a_plain_revert_with_the_message(errors: ErrorTable, data: Any) -> None:
    error = decode_revert(ContractLogicError("execution reverted: no", data=data), "grant", errors)
    assert (error.action, error.name, error.arguments) == ("grant", "Revert", {"message": "execution reverted: no"})
