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
import os
import sys
from pathlib import Path
from typing import Any

import click

from medvault.cli import (
    access,
    accounts,
    audit,
    consent,
    dev,
    gc,
    keepers,
    keys,
    node,
    participants,
    portal,
    query,
    records,
    relay,
)
from medvault.cli.app import App, Settings
from medvault.cli.options import json_option
from medvault.config import DEFAULT_HOME_HELP, default_home
from medvault.errors import ContractError, MedvaultError

__all__ = ["App", "cli", "main"]


class MedvaultGroup(click.Group):
    """Turns MedvaultError (and a file the system refuses) into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (MedvaultError, OSError) as exc:
            app = ctx.find_object(App)
            if isinstance(exc, MedvaultError):
                message = app.explain(exc) if app else str(exc)
            else:  # a path that cannot be written or read, a connection lost mid-command
                where = f": {exc.filename}" if exc.filename else ""
                message = f"{exc.strerror or exc}{where}"
            if app and app.as_json:
                # A contract's refusal also carries its error's name, for programs to match on.
                refusal = {"refusal": exc.name} if isinstance(exc, ContractError) else {}
                click.echo(json.dumps({"error": type(exc).__name__, "message": message, **refusal}))
            else:
                click.echo(f"error: {message}", err=True)
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
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    ctx.obj = App(home.expanduser(), rpc_url, ipfs_api, as_json, scrypt_n=settings.scrypt_n)


_MODULES = (accounts, node, participants, keys, records, consent, relay, access, keepers, audit, gc, query, portal, dev)
for _module in _MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    try:
        cli(prog_name="medvault")
    except Exception as exc:  # a fault of medvault's, not of the input: one line, and how to report it
        if os.environ.get("MEDVAULT_DEBUG"):
            raise
        click.echo(
            f"error: medvault failed unexpectedly ({type(exc).__name__}: {exc}); "
            "run again with MEDVAULT_DEBUG=1 for the traceback to report",
            err=True,
        )
        sys.exit(1)
