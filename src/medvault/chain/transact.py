"""Sending transactions and reading their failures: a revert becomes the contract's named custom
error with its decoded arguments and its sentence for people (``ContractError``, worded by
:mod:`medvault.chain.refusals`), never raw revert data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError

from medvault.chain.refusals import refusal
from medvault.errors import ContractError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hexbytes import HexBytes
    from web3 import Web3
    from web3.contract.contract import ContractConstructor, ContractFunction
    from web3.types import TxParams, TxReceipt

    from medvault.accounts import Wallet

__all__ = ["ErrorTable", "TxResult", "decode_revert", "error_table", "send", "wait_for_receipt"]

ErrorTable = dict[bytes, tuple[str, list[Any]]]
"""Custom errors by 4-byte selector: their name and ABI inputs."""


@dataclass(frozen=True)
class TxResult:
    action: str
    tx_hash: str
    gas_used: int
    block_number: int
    contract_address: str = ""  # set when the transaction created a contract
    # The receipt's event logs, so a caller decodes what the transaction emitted without asking again.
    logs: tuple[Any, ...] = field(default=(), repr=False, compare=False)


GAS_MARGIN_PERCENT = 25
RECEIPT_TIMEOUT_S = 60.0
# Receipt polls start at a couple of milliseconds (anvil mines within that) and back off to
# web3's usual 0.1 s, so a chain with real block times is not polled any harder than before.
FIRST_POLL_S, LAST_POLL_S = 0.002, 0.1


def send(
    w3: Web3,
    wallet: Wallet,
    fn: ContractFunction | ContractConstructor,
    action: str,
    errors: ErrorTable,
) -> TxResult:
    params: TxParams = {"from": wallet.address, "nonce": w3.eth.get_transaction_count(wallet.address, "pending")}
    try:
        tx = fn.build_transaction(params)
    except (ContractCustomError, ContractLogicError) as exc:
        raise decode_revert(exc, action, errors) from None
    except Web3RPCError as exc:
        message = exc.message or str(exc)
        raise ContractError(
            action, "RpcError", {"message": message}, words=f"the Ethereum node refused {action}: {message}"
        ) from None
    # The estimate is exact for the state it ran on; the block that includes the transaction
    # may take a costlier path (a later timestamp, say), and an exact limit then runs out of
    # gas. Unused gas is not charged, so a margin costs nothing.
    tx["gas"] = tx["gas"] * (100 + GAS_MARGIN_PERCENT) // 100
    signed = wallet.account.sign_transaction(cast("dict[str, Any]", tx))
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = wait_for_receipt(w3, tx_hash)
    if receipt["status"] != 1:
        words = f"{action} was mined but failed (tx {tx_hash.to_0x_hex()}): nothing changed; try again"
        raise ContractError(action, "Reverted", {"tx": tx_hash.to_0x_hex()}, words=words)
    created = receipt.get("contractAddress")
    return TxResult(
        action,
        tx_hash.to_0x_hex(),
        int(receipt["gasUsed"]),
        int(receipt["blockNumber"]),
        str(created or ""),
        tuple(receipt["logs"]),
    )


def wait_for_receipt(w3: Web3, tx_hash: HexBytes, timeout: float = RECEIPT_TIMEOUT_S) -> TxReceipt:
    """The receipt of ``tx_hash`` once mined; ``TimeExhausted`` after ``timeout`` seconds."""
    deadline, delay = time.monotonic() + timeout, FIRST_POLL_S
    while True:
        try:
            return w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            if time.monotonic() > deadline:
                raise TimeExhausted(
                    f"transaction {tx_hash.to_0x_hex()} is not in the chain after {timeout} seconds"
                ) from None
        time.sleep(delay)
        delay = min(2 * delay, LAST_POLL_S)


def error_table(artifacts: Iterable[Any]) -> ErrorTable:
    """The custom errors of every contract in ``artifacts``, by selector."""
    table = {}
    for artifact in artifacts:
        for item in artifact.abi:
            if item["type"] == "error":
                types = ",".join(_abi_type(i) for i in item["inputs"])
                table[function_signature_to_4byte_selector(f"{item['name']}({types})")] = (item["name"], item["inputs"])
    return table


def _abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def decode_revert(exc: ContractLogicError, action: str, errors: ErrorTable) -> ContractError:
    data = exc.data if isinstance(exc.data, str) else None
    if data and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        if raw[:4] in errors:
            name, inputs = errors[raw[:4]]
            values = abi_decode([_abi_type(i) for i in inputs], raw[4:])
            return refusal(action, name, {i["name"]: _show(v) for i, v in zip(inputs, values, strict=True)})
    message = exc.message or str(exc)
    return ContractError(action, "Revert", {"message": message}, words=f"the chain refused {action}: {message}")


def _show(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value
