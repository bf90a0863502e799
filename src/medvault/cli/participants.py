"""Deployment and participants: ``medvault deploy``, ``register``, ``accredit``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from medvault.chain import connect, deploy
from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.options import ACCOUNT, account_option, json_anywhere, key_suite_option
from medvault.model import Role

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medvault.crypto import KeySuite

__all__ = ["COMMANDS", "accredit", "deploy_cmd", "register"]


@click.command("deploy")
@account_option
@key_suite_option("--key-suite", "HPKE suite every participant of this deployment uses.")
@json_anywhere
@pass_app
def deploy_cmd(app: App, account: str, key_suite: KeySuite) -> None:
    """Deploy the contracts; the account becomes admin and first accreditor."""
    wallet = app.unlock(account)
    deployment, results = deploy(connect(app.rpc_url), wallet, app.home, key_suite)
    app.emit(
        {"deployment": deployment.model_dump(mode="json"), "transactions": [tx_json(r) for r in results]},
        "\n".join(tx_line(r) for r in results) + f"\nrecorded in {deployment.path(app.home, deployment.chain_id)}",
    )


@click.command()
@account_option
@click.option(
    "--new-key",
    is_flag=True,
    help="Publish a fresh random key although the chain holds one this account lacks (its key file was lost).",
)
@json_anywhere
@pass_app
def register(app: App, account: str, new_key: bool) -> None:
    """Publish the account's encryption public key (a random key, sealed in its key file)."""
    app.emit_tx(app.client.register(app.unlock(account), new_key=new_key))


@click.command()
@click.argument("participant", type=ACCOUNT)
@click.option("--role", type=click.Choice(["provider", "researcher"]), required=True)
@click.option("--withdraw", is_flag=True, help="Withdraw the accreditation instead.")
@account_option
@json_anywhere
@pass_app
def accredit(app: App, participant: str, role: str, withdraw: bool, account: str) -> None:
    """Accredit PARTICIPANT (name or address) as a provider or researcher."""
    app.emit_tx(
        app.client.accredit(app.unlock(account), app.address(participant), Role[role.upper()], withdraw=withdraw)
    )


COMMANDS: Sequence[click.Command] = [deploy_cmd, register, accredit]
