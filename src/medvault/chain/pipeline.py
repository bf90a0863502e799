"""Many chain calls at once: batched JSON-RPC and a pipelined transaction sender.

For bulk work (seeding a deployment, benchmarks) the cost of a call is its round trip, not the
node's work. This module sends calls in JSON-RPC batches and transactions without waiting:

* ``BatchRpc``: JSON-RPC requests posted as batches of up to ``batch_size`` over one HTTP
  session; ``eth_calls`` reads many contract views in one batch.
* ``Method``: one contract function's calldata and return data, encoded straight from its ABI
  with eth_abi (selector + arguments). web3's per-call function matching and argument
  normalisation cost more than the rest of a bulk call; here the ABI is looked up once.
* ``Transaction``: what to send (sender, target, calldata, a fixed gas limit) and the action it
  performs, named in errors.
* ``PipelinedSender``: signs with local nonces and explicit gas, sends each list of
  transactions as one batch without waiting, and checks receipts in bulk (every status is
  checked; the first failure raises ``ContractError`` naming the action and transaction).

Errors: a node that does not answer raises ``ChainUnavailableError``; a JSON-RPC error, a
failed transaction or one not mined in time raises ``ContractError``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import abi_to_signature, function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types

from medvault.errors import ChainUnavailableError, ContractError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from web3.contract import Contract

    from medvault.accounts import Wallet

__all__ = ["BATCH_SIZE", "BatchRpc", "Method", "PipelinedSender", "Transaction"]

BATCH_SIZE = 250  # requests per HTTP post: anvil answers these in well under a second
RECEIPT_TIMEOUT_S = 120.0


class BatchRpc:
    """JSON-RPC over one HTTP session, with many requests per post."""

    def __init__(self, url: str, *, batch_size: int = BATCH_SIZE, timeout: float = 120) -> None:
        self.url = url
        self.batch_size = batch_size
        self.timeout = timeout
        self.session = requests.Session()

    def call(self, method: str, params: list[Any]) -> Any:
        """The result of one request."""
        return self.batch([(method, params)])[0]

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of ``calls`` (method, params), in order; the first error raises."""
        results: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            part = calls[start : start + self.batch_size]
            payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(part)]
            try:
                response = self.session.post(self.url, json=payload, timeout=self.timeout)
                answers = {a["id"]: a for a in response.json()}
            except (requests.RequestException, ValueError, TypeError, KeyError) as exc:
                raise ChainUnavailableError(self.url, f"JSON-RPC batch failed: {exc}") from None
            for i, (method, _) in enumerate(part):
                answer = answers.get(i, {"error": {"message": "no answer"}})
                if "error" in answer:
                    error = answer["error"]
                    message = error.get("message", error) if isinstance(error, dict) else error
                    raise ContractError(method, "RpcError", {"message": message})
                results.append(answer["result"])
        return results

    def eth_calls(self, calls: Sequence[tuple[Method, Sequence[Any]]], block: str = "latest") -> list[tuple[Any, ...]]:
        """The decoded return values of view calls (method, arguments), in one batch."""
        raw = self.batch([("eth_call", [{"to": m.address, "data": m.data(*args)}, block]) for m, args in calls])
        return [m.decode(r) for (m, _), r in zip(calls, raw, strict=True)]


@dataclass(frozen=True)
class Method:
    """One function of a deployed contract: its calldata and return data, from its ABI."""

    address: str
    signature: str  # e.g. "register(bytes)"
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @classmethod
    def of(cls, contract: Contract, name: str) -> Method:
        """The function ``name`` (or full signature, for an overloaded name) of ``contract``."""
        functions = [e for e in contract.abi if e.get("type") == "function"]
        matches = [e for e in functions if name in (e.get("name"), abi_to_signature(e))]
        if len(matches) != 1:
            found = "no function" if not matches else "an overloaded name: give the full signature"
            raise ValueError(f"{name} is {found} of the contract at {contract.address}")
        abi: Any = matches[0]
        return cls(
            str(contract.address),
            abi_to_signature(abi),
            function_abi_to_4byte_selector(abi),
            tuple(get_abi_input_types(abi)),
            tuple(get_abi_output_types(abi)),
        )

    def data(self, *args: Any) -> str:
        """The calldata for ``args`` as 0x-hex."""
        return "0x" + (self.selector + abi_encode(self.inputs, args)).hex()

    def decode(self, result: str) -> tuple[Any, ...]:
        """The return values in ``result`` (0x-hex, as eth_call answers)."""
        return tuple(abi_decode(self.outputs, bytes.fromhex(result.removeprefix("0x"))))

    def transaction(
        self, sender: Wallet | str, args: Sequence[Any], gas: int, action: str, *, units: int = 1
    ) -> Transaction:
        """A call of this function with ``args`` as a transaction from ``sender``."""
        return Transaction(sender, self.address, self.data(*args), gas, action, units)


@dataclass
class Transaction:
    """A transaction to pipeline. ``sender`` is a wallet that signs locally, or the address of an
    account the node signs for (unlocked, or impersonated on anvil)."""

    sender: Wallet | str
    to: str
    data: str  # calldata, 0x-hex
    gas: int  # fixed gas limit: no estimate round trip
    action: str  # what it does, named in errors
    units: int = 1  # progress units it completes


class PipelinedSender:
    """Sends transactions without waiting and checks their receipts in bulk.

    Nonces are kept locally, read once per sender (``pending``); the gas price is twice the
    node's at construction. ``on_confirmed`` is told the ``units`` of each transaction whose
    successful receipt comes in. The sender assumes it is the only one sending for its wallets.
    """

    def __init__(self, rpc: BatchRpc, chain_id: int, on_confirmed: Callable[[int], None] | None = None) -> None:
        self.rpc = rpc
        self.chain_id = chain_id
        self.on_confirmed = on_confirmed
        self.gas_price = 2 * int(rpc.call("eth_gasPrice", []), 16)
        self.nonces: dict[str, int] = {}
        self.in_flight: list[tuple[str, Transaction]] = []
        self.sent = 0

    def send(self, txs: Sequence[Transaction]) -> None:
        """Signs the wallets' transactions and sends them as one batch; transactions from
        node-signed accounts go one at a time (the node numbers them)."""
        signed = [tx for tx in txs if not isinstance(tx.sender, str)]
        unknown = sorted({tx.sender.address for tx in signed if not isinstance(tx.sender, str)} - self.nonces.keys())
        counts = self.rpc.batch([("eth_getTransactionCount", [a, "pending"]) for a in unknown])
        self.nonces.update({a: int(c, 16) for a, c in zip(unknown, counts, strict=True)})
        raws = [self._sign(tx) for tx in signed]
        hashes = self.rpc.batch([("eth_sendRawTransaction", [raw]) for raw in raws])
        self.in_flight += list(zip(hashes, signed, strict=True))
        for tx in txs:
            if isinstance(tx.sender, str):
                params = {"from": tx.sender, "to": tx.to, "data": tx.data, "gas": hex(tx.gas)}
                self.in_flight.append((self.rpc.call("eth_sendTransaction", [params]), tx))
        self.sent += len(txs)

    def _sign(self, tx: Transaction) -> str:
        assert not isinstance(tx.sender, str)
        address = tx.sender.address
        nonce = self.nonces[address]
        self.nonces[address] = nonce + 1
        params: dict[str, Any] = {
            "to": tx.to,
            "data": tx.data,
            "gas": tx.gas,
            "gasPrice": self.gas_price,
            "nonce": nonce,
            "chainId": self.chain_id,
            "value": 0,
        }
        return "0x" + bytes(tx.sender.account.sign_transaction(params).raw_transaction).hex()

    def settle(self, *, wait: bool, timeout: float = RECEIPT_TIMEOUT_S) -> None:
        """Checks the receipts of the transactions in flight; with ``wait``, until all are in."""
        deadline = time.monotonic() + timeout
        while self.in_flight:
            receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h, _ in self.in_flight])
            left = []
            for (tx_hash, tx), receipt in zip(self.in_flight, receipts, strict=True):
                if receipt is None:
                    left.append((tx_hash, tx))
                elif int(receipt["status"], 16) != 1:
                    used = int(receipt["gasUsed"], 16)
                    raise ContractError(tx.action, "Reverted", {"tx": tx_hash, "gas_used": used, "gas_limit": tx.gas})
                elif self.on_confirmed is not None:
                    self.on_confirmed(tx.units)
            self.in_flight = left
            if not wait or not left:
                return
            if time.monotonic() > deadline:
                raise ContractError(left[0][1].action, "NotMined", {"pending": len(left), "after_s": timeout})
            time.sleep(0.05)
