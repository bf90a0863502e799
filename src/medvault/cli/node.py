"""``medvault node``: a local anvil chain and offline Kubo node for development."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere
from medvault.config import DEFAULT_CHAIN_PORT, DEFAULT_IPFS_PORT
from medvault.dev.node import LocalNode

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "node"]


@click.group()
def node() -> None:
    """A local anvil chain and offline Kubo node, on loopback, with state kept in --home."""


@node.command("up")
@click.option("--chain-port", default=DEFAULT_CHAIN_PORT, show_default=True)
@click.option("--ipfs-port", default=DEFAULT_IPFS_PORT, show_default=True)
@json_anywhere
@pass_app
def node_up(app: App, chain_port: int, ipfs_port: int) -> None:
    """Start anvil and Kubo (whichever is not running yet)."""
    info = LocalNode(app.home / "node", chain_port=chain_port, ipfs_port=ipfs_port).up()
    app.emit(
        {"rpc_url": info.rpc_url, "ipfs_api": info.ipfs_api, "state": str(app.home / "node")},
        f"chain  {info.rpc_url}  (anvil, pid {info.chain.pid})\n"
        f"ipfs   {info.ipfs_api}  (Kubo offline, pid {info.ipfs.pid})\n"
        f"state  {app.home / 'node'}",
    )


@node.command("status")
@json_anywhere
@pass_app
def node_status(app: App) -> None:
    """Show the endpoints and whether each process runs."""
    info, running = app.node.status(), app.node.running()
    data = {"rpc_url": info.rpc_url if info else None, "ipfs_api": info.ipfs_api if info else None, **running}
    app.emit(
        data,
        f"chain  {data['rpc_url']}  {'running' if running['chain'] else 'stopped'}\n"
        f"ipfs   {data['ipfs_api']}  {'running' if running['ipfs'] else 'stopped'}",
    )


@node.command("down")
@json_anywhere
@pass_app
def node_down(app: App) -> None:
    """Stop the processes `node up` started (state is kept)."""
    stopped = app.node.down()
    app.emit({"stopped": stopped}, f"stopped: {', '.join(stopped) or 'nothing was running'}")


COMMANDS: Sequence[click.Command] = [node]
