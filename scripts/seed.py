"""Seeds a deployment with synthetic patients, records and consent: ``medvault seed`` under Ape.

    ape run seed --network ethereum:local:foundry [--patients N] [--records-per-patient R]
                 [--seed S] [--home DIR] [--ipfs-api URL]

A thin wrapper over :func:`medvault.dev.seed.run_seed`, exactly what ``medvault seed`` runs: it takes
the RPC URL of Ape's network connection and the deployment recorded in ``<home>`` (by ``ape run
deploy`` or ``medvault deploy``). No Ape account is needed: seeding uses in-memory dev accounts
derived from the seed value, funded with ``anvil_setBalance``, so the network must be a local
anvil. Killed and run again with the same options, it completes what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from ape.cli import ConnectedProviderCommand

from medvault.chain import Chain
from medvault.client import Medvault
from medvault.config import DEFAULT_HOME_HELP, default_home
from medvault.dev.seed import plan_seed, run_seed
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from ape.api import ProviderAPI


@click.command(cls=ConnectedProviderCommand)
@click.option("--patients", "-n", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--records-per-patient", "-r", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", "-s", "seed_value", default="0", show_default=True, help="Same seed, same plan.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_home,
    show_default=DEFAULT_HOME_HELP,
    help="medvault home holding the deployment record.",
)
@click.option("--ipfs-api", envvar="MEDVAULT_IPFS_API", default="http://127.0.0.1:5001", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (and no progress bar).")
def cli(
    provider: ProviderAPI,
    patients: int,
    records_per_patient: int,
    seed_value: str,
    home: Path,
    ipfs_api: str,
    as_json: bool,
) -> None:
    """Fill a local anvil deployment with synthetic patients, records and consent (resumable)."""
    rpc_url = getattr(provider, "http_uri", None)
    if not rpc_url:
        raise click.ClickException(f"the {provider.name} provider has no HTTP RPC URL to seed through")
    mv = Medvault(Chain.open(str(rpc_url), home.expanduser()), IpfsClient(ipfs_api))
    report = run_seed(mv, str(rpc_url), plan_seed(seed_value, patients, records_per_patient), progress=not as_json)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        summary = ", ".join(f"{k} {v}" for k, v in report.done.items())
        click.echo(f"seeded in {report.seconds:.1f} s: {summary} ({report.transactions} transactions)")
