"""A settled view of the chain for a keeper's decisions: one pinned block, checked for freshness.

A keeper decides each release on one block: ``latest - confirmations``. Every read of that
decision (the keeper set, the record log, consent, the reader's key) is an ``eth_call`` or a
log query at that block number (``medvault.keeper.reads``, and ``PinnedChain`` for the words of
a refusal), so the answer is one consistent state, not a mix of several heads.

Defaults (``Settlement.for_chain``): on the local development chain (id 31337, anvil) no
confirmations and no lag check, because anvil mines a block only when a transaction arrives, so
its head is final at once and legitimately old when idle. On any other chain 2 confirmations
(a one- or two-block reorg, the usual kind, cannot undo a revoke the keeper has seen) and a lag
of at most 120 s: a node whose pinned block is older than that is refused (``chain-stale``).

Lag is measured against what the keeper knows the chain's time to be: the later of the wall
clock and the freshest block it has seen plus the (monotonic) time since (``Freshness``). Chain time
moved ahead of the wall clock (``evm_increaseTime``) therefore never counts as stale, and a node
that falls back to an older view after showing a newer one does.

With a second RPC endpoint, the keeper also requires that it holds the same block (hash) at the
pinned number, that its head is not more than ``MAX_HEAD_GAP`` blocks ahead of the first
endpoint's, and that the whole decision made on it is the same (``chain-disagrees``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from web3.exceptions import ContractCustomError, ContractLogicError

from medvault.chain import Chain
from medvault.chain.transact import decode_revert
from medvault.keeper.protocol import Refusal

if TYPE_CHECKING:
    from web3.contract.contract import ContractFunction
    from web3.types import BlockIdentifier

__all__ = [
    "DEV_CHAIN_ID",
    "MAX_HEAD_GAP",
    "Freshness",
    "PinnedBlock",
    "PinnedChain",
    "Settlement",
]

DEV_CHAIN_ID = 31337
DEFAULT_CONFIRMATIONS = 2
DEFAULT_MAX_LAG = 120.0
MAX_HEAD_GAP = 2  # blocks the second endpoint's head may be ahead of the first's (blocks mined meanwhile)


@dataclass(frozen=True)
class Settlement:
    """How settled a block a keeper decides on: confirmations, the largest lag (None: not
    checked) and an optional second RPC endpoint that must agree."""

    confirmations: int
    max_lag: float | None
    second_rpc: str | None = None

    @classmethod
    def for_chain(
        cls, chain_id: int, *, confirmations: int | None = None, max_lag: float | None = None,
        second_rpc: str | None = None,
    ) -> Settlement:  # fmt: skip
        """The defaults for ``chain_id`` (see the module docstring), overridden by what is given;
        a ``max_lag`` of 0 or less turns the lag check off."""
        dev = chain_id == DEV_CHAIN_ID
        if confirmations is None:
            confirmations = 0 if dev else DEFAULT_CONFIRMATIONS
        if confirmations < 0:
            raise ValueError(f"confirmations must be 0 or more, not {confirmations}")
        if max_lag is None:
            max_lag = None if dev else DEFAULT_MAX_LAG
        elif max_lag <= 0:
            max_lag = None
        return cls(confirmations, max_lag, second_rpc)


@dataclass(frozen=True)
class PinnedBlock:
    number: int
    hash: str
    timestamp: int
    head: int  # the endpoint's head when the block was pinned


class Freshness:
    """The freshest chain time a keeper has seen, to tell an old block from a moved clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: tuple[int, float] | None = None  # (block timestamp, monotonic time it was seen)

    def check(self, block: PinnedBlock, max_lag: float | None) -> None:
        """Refuses (``chain-stale``) if ``block`` is more than ``max_lag`` seconds older than the
        chain's time as far as the keeper knows it; remembers ``block`` if it is the freshest."""
        wall, tick = time.time(), time.monotonic()
        with self._lock:
            seen = self._seen
            if seen is None or block.timestamp > seen[0]:
                self._seen = (block.timestamp, tick)
        # Time since the freshest block is measured on the monotonic clock: a wall clock stepped
        # back (by an operator or a forged NTP answer) cannot hide how long the view has not moved.
        expected = wall if seen is None else max(wall, seen[0] + (tick - seen[1]))
        lag = expected - block.timestamp
        if max_lag is not None and lag > max_lag:
            raise Refusal(
                "chain-stale",
                f"block {block.number} is {lag:.0f} s older than the chain's time (at most {max_lag:.0f} s): "
                "the Ethereum node lags",
            )


class PinnedChain(Chain):
    """``chain`` with every call, log query and "latest" block time answered at one block."""

    def __init__(self, chain: Chain, block: PinnedBlock) -> None:
        self.__dict__.update(chain.__dict__)
        self.block = block

    def call(self, fn: ContractFunction, action: str) -> Any:
        try:
            return fn.call(block_identifier=self.block.number)
        except (ContractCustomError, ContractLogicError) as exc:
            raise decode_revert(exc, action, self._errors) from None

    def events(self, contract: str, event: str, **filters: Any) -> list[Any]:
        logs = (
            self.contracts[contract]
            .events[event]
            .get_logs(
                argument_filters=filters or None,
                from_block=self.deployment.block_number,
                to_block=self.block.number,
            )
        )
        return sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))

    def block_time(self, block: BlockIdentifier = "latest") -> int:
        if block == "latest":
            return self.block.timestamp
        return super().block_time(block)
