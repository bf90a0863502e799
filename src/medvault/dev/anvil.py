"""anvil's development RPCs, in one place: funding accounts, moving chain time, mining,
snapshots. Each works on a local anvil only; a real node answers with an error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from web3 import Web3

__all__ = ["fund", "mine", "revert", "set_next_timestamp", "snapshot", "warp"]

DEFAULT_FUNDS = 10**20  # 100 ether: plenty for any dev account


def _rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    if "error" in response:
        raise ConfigurationError(
            f"{method} failed ({response['error'].get('message', response['error'])}): local anvil only"
        )
    return response.get("result")


def fund(w3: Web3, address: str, wei: int = DEFAULT_FUNDS) -> None:
    """Sets ``address``'s balance to ``wei``."""
    _rpc(w3, "anvil_setBalance", [address, hex(wei)])


def mine(w3: Web3) -> None:
    _rpc(w3, "evm_mine", [])


def warp(w3: Web3, seconds: int) -> None:
    """Moves chain time ``seconds`` ahead and mines a block at the new time."""
    _rpc(w3, "evm_increaseTime", [seconds])
    mine(w3)


def set_next_timestamp(w3: Web3, timestamp: int) -> None:
    """The next block's timestamp (``evm_setNextBlockTimestamp``)."""
    _rpc(w3, "evm_setNextBlockTimestamp", [timestamp])


def snapshot(w3: Web3) -> str:
    """A snapshot id to ``revert`` to (``evm_snapshot``)."""
    return str(_rpc(w3, "evm_snapshot", []))


def revert(w3: Web3, snapshot_id: str) -> None:
    _rpc(w3, "evm_revert", [snapshot_id])
