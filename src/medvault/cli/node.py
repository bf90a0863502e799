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


PORT = click.IntRange(0, 65535)


@node.command("up")
@click.option(
    "--chain-port", type=PORT, help=f"anvil's port (0: any free one) [default: as before, else {DEFAULT_CHAIN_PORT}]."
)
@click.option(
    "--ipfs-port", type=PORT, help=f"Kubo's API port (0: any free one) [default: as before, else {DEFAULT_IPFS_PORT}]."
)
@json_anywhere
@pass_app
def node_up(app: App, chain_port: int | None, ipfs_port: int | None) -> None:
    """Start anvil and Kubo (whichever is not running yet), on the ports this node was made with.

    The chain resumes its saved state, its time never earlier than its last block's."""
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
    """Show each process: its endpoint and pid while it runs, else stopped."""
    info, running = app.node.status(), app.node.running()
    procs = {"chain": info.chain if info else None, "ipfs": info.ipfs if info else None}
    live = {name: proc if proc and running[name] else None for name, proc in procs.items()}
    data = {
        "rpc_url": live["chain"].url if live["chain"] else None,
        "ipfs_api": live["ipfs"].url if live["ipfs"] else None,
        **running,
        "chain_pid": live["chain"].pid if live["chain"] else None,
        "ipfs_pid": live["ipfs"].pid if live["ipfs"] else None,
    }
    lines = [
        f"{name:<6} {f'{proc.url}  running, pid {proc.pid}' if proc else 'stopped'}" for name, proc in live.items()
    ]
    app.emit(data, "\n".join(lines))


@node.command("down")
@json_anywhere
@pass_app
def node_down(app: App) -> None:
    """Stop the processes `node up` started (state is kept)."""
    stopped = app.node.down()
    app.emit({"stopped": stopped}, f"stopped: {', '.join(stopped) or 'nothing was running'}")


COMMANDS: Sequence[click.Command] = [node]
