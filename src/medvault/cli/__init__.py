"""The ``medvault`` command line.

Every command takes ``--json`` (one JSON document on stdout) and ``--help``. Errors print one
line naming what is wrong and exit with status 1 (2 for usage errors). Endpoints default to the
node that ``medvault node up`` started for this home, else to anvil's and Kubo's usual ports.

One module per command group, each adding its commands to the root group here; the shared
options are in :mod:`medvault.cli.options`, the context every command gets (:class:`App`) and
its one output path in :mod:`medvault.cli.app`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from medvault.cli import access, accounts, audit, consent, dev, gc, keepers, keys, node, participants, query, records
from medvault.cli.app import App
from medvault.cli.options import json_option
from medvault.config import DEFAULT_HOME_HELP, default_home
from medvault.errors import MedvaultError

__all__ = ["App", "cli", "main"]


class MedvaultGroup(click.Group):
    """Turns MedvaultError into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedvaultError as exc:
            app = ctx.find_object(App)
            if app and app.as_json:
                click.echo(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
            else:
                click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=MedvaultGroup)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=default_home,
    show_default=DEFAULT_HOME_HELP,
    help="Keystores, deployments and local node state.",
)
@click.option("--rpc-url", envvar="MEDVAULT_RPC_URL", help="Ethereum JSON-RPC endpoint.")
@click.option("--ipfs-api", envvar="MEDVAULT_IPFS_API", help="Kubo RPC API endpoint.")
@json_option
@click.version_option(package_name="medvault")
@click.pass_context
def cli(ctx: click.Context, home: Path, rpc_url: str | None, ipfs_api: str | None, as_json: bool) -> None:
    """Patient-owned medical records: consent on Ethereum, encrypted records in IPFS."""
    ctx.obj = App(home.expanduser(), rpc_url, ipfs_api, as_json)


for _module in (accounts, node, participants, keys, records, consent, access, keepers, audit, gc, query, dev):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="medvault")
