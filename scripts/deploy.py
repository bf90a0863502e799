"""Deploys the medvault contracts with an Ape account and records the deployment.

    ape run deploy --network ethereum:local:foundry --account <alias> [--home DIR] [--key-suite SUITE] [--replace]

Deploys ParticipantRegistry(admin = the deploying account), ConsentManager(ParticipantRegistry),
RecordRegistry(ParticipantRegistry, ConsentManager) and KeeperDirectory(), prints each address and the gas its
deployment used, and writes the deployment record ``<home>/deployments/<chain id>.json`` that
the ``medvault`` CLI and Python package read (:class:`medvault.chain.artifacts.Deployment`).
Like ``medvault deploy``, it refuses a chain whose recorded deployment is live unless
``--replace``, and keeps a replaced record in ``<home>/deployments/replaced/``.

Non-interactive use (CI): pass ``--yes`` so the transactions are signed without a confirmation
each, and give a keystore account's passphrase in ``APE_ACCOUNTS_<alias>_PASSPHRASE``; without
that variable Ape asks for the passphrase once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from ape import chain, project
from ape.cli import ConnectedProviderCommand, account_option
from ape_accounts import KeyfileAccount

from medvault.chain import connect
from medvault.chain.artifacts import Deployment
from medvault.chain.deploy import check_replaceable, record_deployment
from medvault.cli.options import key_suite_option
from medvault.config import DEFAULT_HOME_HELP, default_home
from medvault.errors import MedvaultError

if TYPE_CHECKING:
    from ape.api import AccountAPI, ProviderAPI, ReceiptAPI
    from ape.contracts import ContractContainer, ContractInstance

    from medvault.crypto import KeySuite


def _refuse_throwaway_chain(provider: ProviderAPI) -> None:
    """A chain that ends with this command would leave a deployment record pointing at nothing."""
    if provider.name == "test":
        raise click.ClickException(
            "ethereum:local:test is Ape's in-memory chain, gone when this command ends; "
            "use --network ethereum:local:foundry against a running anvil (or another network)"
        )
    if getattr(provider, "process", None) is not None:
        where = getattr(provider, "http_uri", "the configured host")
        raise click.ClickException(
            f"nothing was listening at {where}, so Ape started its own {provider.name} node, "
            "which stops when this command ends; start anvil (or `medvault node up`) first, "
            "and point Ape at it with foundry.host in ape-config.yaml or APE_FOUNDRY_HOST"
        )


@click.command(cls=ConnectedProviderCommand)
@account_option()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=default_home,
    show_default=DEFAULT_HOME_HELP,
    help="medvault home; the deployment record goes to <home>/deployments/<chain id>.json.",
)
@key_suite_option("--key-suite", "HPKE suite every participant of this deployment uses.")
@click.option(
    "--replace",
    is_flag=True,
    help="Deploy even though <home> records a deployment on this chain; its record moves to deployments/replaced/.",
)
@click.option(
    "--yes",
    "-y",
    "autosign",
    is_flag=True,
    help="Sign the four deployment transactions without asking for each "
    "(a keystore account is unlocked once, from APE_ACCOUNTS_<alias>_PASSPHRASE or a prompt).",
)
def cli(
    provider: ProviderAPI, account: AccountAPI, home: Path, key_suite: KeySuite, replace: bool, autosign: bool
) -> None:
    """Deploy ParticipantRegistry, ConsentManager, RecordRegistry and KeeperDirectory; record the deployment."""
    _refuse_throwaway_chain(provider)
    home = home.expanduser()
    try:
        check_replaceable(connect(str(getattr(provider, "http_uri", ""))), home, replace=replace)
    except MedvaultError as exc:
        raise click.ClickException(str(exc)) from None
    if isinstance(account, KeyfileAccount):
        # Unlock once, from APE_ACCOUNTS_<alias>_PASSPHRASE or a prompt, instead of a passphrase
        # prompt per transaction; --yes also skips each transaction's "Sign:" confirmation.
        if autosign:
            account.set_autosign(True)
        else:
            account.unlock()

    receipts: list[ReceiptAPI] = []

    def deploy(contract: ContractContainer, *args: object) -> ContractInstance:
        instance = account.deploy(contract, *args)
        receipt = chain.get_receipt(str(instance.txn_hash))
        receipts.append(receipt)
        name = contract.contract_type.name
        click.echo(f"{name}: {instance.address} (gas used {receipt.gas_used:,}, tx {receipt.txn_hash})")
        return instance

    participants = deploy(project.ParticipantRegistry, account.address)
    # The record log asks the consent contract about emergency writers, so consent comes first.
    consent = deploy(project.ConsentManager, participants.address)
    records = deploy(project.RecordRegistry, participants.address, consent.address)
    keepers = deploy(project.KeeperDirectory)

    deployment = Deployment(
        chain_id=chain.chain_id,
        block_number=receipts[0].block_number,
        deployer=str(account.address),
        key_suite=key_suite,
        participant_registry=str(participants.address),
        record_registry=str(records.address),
        consent_manager=str(consent.address),
        keeper_directory=str(keepers.address),
    )
    path = record_deployment(deployment, home)
    click.echo(f"total gas used {sum(r.gas_used for r in receipts):,}")
    click.echo(f"recorded in {path}")
