"""anvil's development RPCs, in one place: funding accounts, impersonating, moving chain time,
mining, snapshots. Each works on a local anvil only; a real node answers with an error.

Every helper takes the node as a web3 connection or a ``BatchRpc`` (the bulk client of
``medvault.chain.pipeline``); ``fund_all`` sends one batch for any number of accounts.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from medvault.chain.pipeline import BatchRpc
from medvault.errors import ConfigurationError, ContractError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from web3 import Web3

__all__ = ["fund", "fund_all", "impersonating", "mine", "revert", "set_next_timestamp", "snapshot", "warp"]

DEFAULT_FUNDS = 10**20  # 100 ether: plenty for any dev account


def _fail(method: str, message: object) -> ConfigurationError:
    return ConfigurationError(f"{method} failed ({message}): local anvil only")


def _batch(node: Web3 | BatchRpc, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    if isinstance(node, BatchRpc):
        try:
            return node.batch(calls)
        except ContractError as exc:
            raise _fail(exc.action, exc.arguments.get("message", exc)) from None
    results = []
    for method, params in calls:
        response = node.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise _fail(method, response["error"].get("message", response["error"]))
        results.append(response.get("result"))
    return results


def _rpc(node: Web3 | BatchRpc, method: str, params: list[Any]) -> Any:
    return _batch(node, [(method, params)])[0]


def fund(node: Web3 | BatchRpc, address: str, wei: int = DEFAULT_FUNDS) -> None:
    """Sets ``address``'s balance to ``wei``."""
    _rpc(node, "anvil_setBalance", [address, hex(wei)])


def fund_all(node: Web3 | BatchRpc, addresses: Iterable[str], wei: int = DEFAULT_FUNDS) -> None:
    """Sets the balance of every one of ``addresses`` to ``wei`` (one batch on a ``BatchRpc``)."""
    _batch(node, [("anvil_setBalance", [address, hex(wei)]) for address in addresses])


@contextmanager
def impersonating(node: Web3 | BatchRpc, address: str) -> Iterator[str]:
    """Within the block, the node signs transactions ``from`` ``address`` (``eth_sendTransaction``)."""
    _rpc(node, "anvil_impersonateAccount", [address])
    try:
        yield address
    finally:
        _rpc(node, "anvil_stopImpersonatingAccount", [address])


def mine(node: Web3 | BatchRpc) -> None:
    _rpc(node, "evm_mine", [])


def warp(node: Web3 | BatchRpc, seconds: int) -> None:
    """Moves chain time ``seconds`` ahead and mines a block at the new time."""
    _rpc(node, "evm_increaseTime", [seconds])
    mine(node)


def set_next_timestamp(node: Web3 | BatchRpc, timestamp: int) -> None:
    """The next block's timestamp (``evm_setNextBlockTimestamp``)."""
    _rpc(node, "evm_setNextBlockTimestamp", [timestamp])


def snapshot(node: Web3 | BatchRpc) -> str:
    """A snapshot id to ``revert`` to (``evm_snapshot``)."""
    return str(_rpc(node, "evm_snapshot", []))


def revert(node: Web3 | BatchRpc, snapshot_id: str) -> None:
    _rpc(node, "evm_revert", [snapshot_id])
