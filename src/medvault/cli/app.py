"""The context every command gets: the home, the endpoints, the client, and one output path.

Every command prints through :meth:`App.emit`: one JSON document under ``--json``, else text.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from medvault.accounts import Keystore
from medvault.chain import Chain
from medvault.cli.options import prompt_passphrase, resolve_address
from medvault.client import Medvault
from medvault.config import DEFAULT_CHAIN_PORT, DEFAULT_IPFS_PORT
from medvault.dev.node import LocalNode
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.client.consent_sig import ConsentChange
    from medvault.dev.node import NodeInfo

__all__ = ["DEFAULT_IPFS_API", "DEFAULT_RPC_URL", "App", "pass_app", "tx_json", "tx_line", "utc"]

DEFAULT_RPC_URL = f"http://127.0.0.1:{DEFAULT_CHAIN_PORT}"
DEFAULT_IPFS_API = f"http://127.0.0.1:{DEFAULT_IPFS_PORT}"


@dataclass
class App:
    home: Path
    rpc_url_option: str | None
    ipfs_api_option: str | None
    as_json: bool
    _client: Medvault | None = field(default=None, repr=False)

    @property
    def node(self) -> LocalNode:
        return LocalNode(self.home / "node")

    @functools.cached_property
    def _node_info(self) -> NodeInfo | None:
        """The local node's endpoints, read once: the defaults when no option names them."""
        return self.node.status()

    @property
    def rpc_url(self) -> str:
        info = self._node_info
        return self.rpc_url_option or (info.rpc_url if info else DEFAULT_RPC_URL)

    @property
    def ipfs_api(self) -> str:
        info = self._node_info
        return self.ipfs_api_option or (info.ipfs_api if info else DEFAULT_IPFS_API)

    @property
    def keystore(self) -> Keystore:
        return Keystore(self.home)

    @property
    def client(self) -> Medvault:
        if self._client is None:
            self._client = Medvault(Chain.open(self.rpc_url, self.home), IpfsClient(self.ipfs_api))
        return self._client

    def unlock(self, name: str) -> Wallet:
        return self.keystore.unlock(name, prompt_passphrase)

    def address(self, name_or_address: str) -> str:
        """An account name from the keystore, or a 0x address."""
        return resolve_address(self.keystore, name_or_address)

    def emit(self, data: Any, text: str | Callable[[], None], *, indent: int | None = 2) -> None:
        """Prints ``data`` as JSON with --json, else ``text`` (a string or a printer).

        On this home's local node, the chain is saved first: what is reported as confirmed
        survives anvil being killed (and a chain that died under the client is an error)."""
        info = self._node_info
        if info and self.rpc_url == info.rpc_url and (self._client is not None or self.node.running()["chain"]):
            self.node.save(only_new_blocks=True)
        if self.as_json:
            click.echo(json.dumps(data, indent=indent, default=str))
        elif callable(text):
            text()
        else:
            click.echo(text)

    def emit_tx(self, result: TxResult) -> None:
        self.emit(tx_json(result), tx_line(result))

    def send_or_sign(self, actor: Wallet, change: ConsentChange, sign_only: bool) -> None:
        """Submits ``change`` from ``actor``, or prints it signed for a relayer."""
        if sign_only:
            click.echo(self.client.sign(actor, change).to_json())
            return
        self.emit_tx(self.client.submit(actor, change))


pass_app = click.make_pass_decorator(App)


def tx_json(result: TxResult) -> dict[str, Any]:
    return {"action": result.action, "tx": result.tx_hash, "gas_used": result.gas_used, "block": result.block_number}


def tx_line(result: TxResult) -> str:
    return f"{result.action}: tx {result.tx_hash} (block {result.block_number}, gas {result.gas_used:,})"


def utc(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
