"""Deployment and participants: ``medvault deploy``, ``register``, ``accredit``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from medvault.chain import Deployment, connect, deploy
from medvault.chain.deploy import check_replaceable, replaced_deployments
from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.options import ACCOUNT, account_option, json_anywhere, key_suite_option
from medvault.model import Role

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medvault.crypto import KeySuite

__all__ = ["COMMANDS", "accredit", "deploy_cmd", "deployments_cmd", "register"]


@click.command("deploy")
@account_option
@key_suite_option("--key-suite", "HPKE suite every participant of this deployment uses.")
@click.option(
    "--replace",
    is_flag=True,
    help="Deploy even though this chain has a deployment recorded; its record moves to deployments/replaced/.",
)
@json_anywhere
@pass_app
def deploy_cmd(app: App, account: str, key_suite: KeySuite, replace: bool) -> None:
    """Deploy the contracts; the account becomes admin and first accreditor.

    A chain that has a deployment recorded in this home is refused without --replace; a
    replaced record is kept (``medvault deployments`` lists them)."""
    w3 = connect(app.rpc_url)
    check_replaceable(w3, app.home, replace=replace)
    wallet = app.unlock(account)
    deployment, results = deploy(w3, wallet, app.home, key_suite, replace=replace)
    kept = [str(p) for p in replaced_deployments(app.home, deployment.chain_id)]
    where = f"\nrecorded in {deployment.path(app.home, deployment.chain_id)}"
    app.emit(
        {"deployment": deployment.model_dump(mode="json"), "transactions": [tx_json(r) for r in results],
         "replaced": kept},
        "\n".join(tx_line(r) for r in results) + where + (f"\nearlier records kept: {', '.join(kept)}" if kept else ""),
    )  # fmt: skip


@click.command("deployments")
@json_anywhere
@pass_app
def deployments_cmd(app: App) -> None:
    """List the deployments this home records, and the replaced ones it keeps."""
    current = sorted(Deployment.path(app.home, 0).parent.glob("*.json"))
    rows = [(p, "current") for p in current] + [(p, "replaced") for p in replaced_deployments(app.home)]
    listed = []
    for path, state in rows:
        try:
            d = Deployment.model_validate_json(path.read_bytes())
        except ValidationError:
            listed.append({"state": state, "file": str(path), "chain_id": "?", "consent_manager": "unreadable",
                           "block_number": "?", "deployer": "?"})  # fmt: skip
            continue
        listed.append({"state": state, "file": str(path), **d.model_dump(mode="json")})
    app.emit(listed, "\n".join(
        f"{e['state']:<8} chain {e['chain_id']}  ConsentManager {e['consent_manager']}  block {e['block_number']}  "
        f"by {e['deployer']}  {e['file']}" for e in listed
    ) or "no deployments recorded")  # fmt: skip


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


COMMANDS: Sequence[click.Command] = [deploy_cmd, deployments_cmd, register, accredit]
