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
* ``PipelinedSender``: signs with local nonces and explicit gas, sends transactions in
  batches without waiting for each, with a bounded number in flight, and checks receipts in
  bulk (every status is checked; the first failure raises ``ContractError`` naming the action
  and transaction).

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
RECEIPT_TIMEOUT_S = 120.0  # with none of the transactions in flight mined
MAX_IN_FLIGHT = 500  # transactions sent and not yet mined
POLL_S = 0.005  # between looks for new blocks (one eth_blockNumber)
NUDGE_AFTER_S = 0.5  # with nothing of ours mined, ask for a block


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
    node's at construction. At most ``max_in_flight`` transactions are sent and not yet mined:
    past that, ``send`` waits for receipts before it sends more (anvil's automine strands ready
    transactions when about a thousand or more wait in its pool, foundry-rs/foundry#10122).
    Receipts are read block by block (``eth_getBlockReceipts`` of each block mined since the
    last look), so a poll costs what was mined, not what is in flight. ``nudge`` (anvil:
    ``evm_mine``) is called when nothing of ours was mined for ``NUDGE_AFTER_S``.
    ``on_confirmed`` is told the ``units`` of each transaction whose successful receipt comes
    in. The sender assumes it is the only one sending for its wallets.
    """

    def __init__(
        self,
        rpc: BatchRpc,
        chain_id: int,
        on_confirmed: Callable[[int], None] | None = None,
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        nudge: Callable[[], None] | None = None,
    ) -> None:
        self.rpc = rpc
        self.chain_id = chain_id
        self.on_confirmed = on_confirmed
        self.max_in_flight = max_in_flight
        self.nudge = nudge
        gas_price, head = rpc.batch([("eth_gasPrice", []), ("eth_blockNumber", [])])
        self.gas_price = 2 * int(gas_price, 16)
        self.block = int(head, 16)  # receipts of blocks up to this one are read
        self.nonces: dict[str, int] = {}
        self.in_flight: dict[str, Transaction] = {}  # by transaction hash, in the order sent
        self.sent = 0

    def send(self, txs: Sequence[Transaction]) -> None:
        """Signs the wallets' transactions and sends them in batches, keeping at most
        ``max_in_flight`` unmined; transactions from node-signed accounts go one at a time (the
        node numbers them)."""
        signed = [tx for tx in txs if not isinstance(tx.sender, str)]
        unknown = sorted({tx.sender.address for tx in signed if not isinstance(tx.sender, str)} - self.nonces.keys())
        counts = self.rpc.batch([("eth_getTransactionCount", [a, "pending"]) for a in unknown])
        self.nonces.update({a: int(c, 16) for a, c in zip(unknown, counts, strict=True)})
        position = 0
        while position < len(signed):
            self._drain(self.max_in_flight - min(self.rpc.batch_size, len(signed) - position))
            room = max(1, self.max_in_flight - len(self.in_flight))
            part = signed[position : position + room]
            position += len(part)
            hashes = self.rpc.batch([("eth_sendRawTransaction", [self._sign(tx)]) for tx in part])
            self.in_flight.update(zip(hashes, part, strict=True))
        for tx in txs:
            if isinstance(tx.sender, str):
                params = {"from": tx.sender, "to": tx.to, "data": tx.data, "gas": hex(tx.gas)}
                self.in_flight[self.rpc.call("eth_sendTransaction", [params])] = tx
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
        if wait:
            self._drain(0, timeout)
        else:
            self._poll()

    def _drain(self, at_most: int, timeout: float = RECEIPT_TIMEOUT_S) -> None:
        """Waits until at most ``at_most`` transactions are in flight; ``ContractError`` if none
        of them is mined for ``timeout`` seconds."""
        progress = nudged = time.monotonic()
        while len(self.in_flight) > max(0, at_most):
            if self._poll():
                progress = nudged = time.monotonic()
                continue
            now = time.monotonic()
            if now - progress > timeout:
                tx = next(iter(self.in_flight.values()))
                raise ContractError(tx.action, "NotMined", {"pending": len(self.in_flight), "after_s": timeout})
            if self.nudge is not None and now - nudged > NUDGE_AFTER_S:
                self.nudge()
                nudged = now
            time.sleep(POLL_S)

    def _poll(self) -> int:
        """Reads the receipts of the blocks mined since the last poll: how many of ours came in.
        The first failed one raises ``ContractError`` naming its action."""
        head = int(self.rpc.call("eth_blockNumber", []), 16)
        if head <= self.block or not self.in_flight:
            self.block = max(self.block, head)
            return 0
        blocks = self.rpc.batch([("eth_getBlockReceipts", [hex(n)]) for n in range(self.block + 1, head + 1)])
        self.block = head
        mined = 0
        for receipt in (r for block in blocks for r in block or ()):
            tx = self.in_flight.pop(receipt["transactionHash"], None)
            if tx is None:
                continue
            mined += 1
            if int(receipt["status"], 16) != 1:
                used = int(receipt["gasUsed"], 16)
                raise ContractError(
                    tx.action, "Reverted", {"tx": receipt["transactionHash"], "gas_used": used, "gas_limit": tx.gas}
                )
            if self.on_confirmed is not None:
                self.on_confirmed(tx.units)
        return mined
