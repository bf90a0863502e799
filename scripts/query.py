"""Queries through medvault's local event index, from Ape.

    ape run query records --patient 0x... --network ethereum:local:foundry [--home DIR] [--json]
    ape run query readable --grantee 0x...     ape run query readers --patient 0x...
    ape run query requests [--status pending|approved|denied] [--patient 0x...] [--researcher 0x...]
    ape run query history --patient 0x...      ape run query sync      ape run query verify

The same commands and code as ``medvault query`` (:func:`medvault.cli.query.query_group`): the
index is ``<home>/index/<chain id>-<consent manager>.sqlite3``, brought up to date from chain
events before each query. The RPC URL is the connected Ape provider's; the deployment record is
read from ``<home>/deployments/<chain id>.json`` (home: --home, else $MEDVAULT_HOME, else
~/.medvault). Accounts are given as addresses.
"""

from __future__ import annotations

from pathlib import Path

import click
from ape import networks
from ape.cli import ConnectedProviderCommand

from medvault.chain import Chain, connect
from medvault.chain.artifacts import Deployment, load_artifacts
from medvault.cli.query import query_group
from medvault.config import DEFAULT_HOME_HELP, default_home
from medvault.errors import MedvaultError
from medvault.index import EventIndex


@click.group()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_home,
    show_default=DEFAULT_HOME_HELP,
    help="medvault home holding the deployment record and the index.",
)
@click.pass_context
def cli(ctx: click.Context, home: Path) -> None:
    """Queries through medvault's local event index (records, readable, readers, requests, history, sync)."""
    ctx.meta["medvault_home"] = home.expanduser()


def _open_index(ctx: click.Context) -> EventIndex:
    home: Path = ctx.meta["medvault_home"]
    provider = networks.provider
    uri = getattr(provider, "http_uri", None) or getattr(provider, "uri", None)
    if not uri:
        raise click.ClickException(f"Ape provider {provider.name} has no HTTP URI to read the chain from")
    try:
        w3 = connect(str(uri))
        chain = Chain(w3, Deployment.load(home, w3.eth.chain_id), load_artifacts())
        return EventIndex.open(home, chain)
    except MedvaultError as exc:
        raise click.ClickException(str(exc)) from None


class _Command(ConnectedProviderCommand):
    """An Ape command connected to --network that reports medvault errors in one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MedvaultError as exc:
            raise click.ClickException(str(exc)) from None


query_group(_open_index, command_cls=_Command, group=cli)
