"""``medvault account``: encrypted keystores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from medvault.chain import connect
from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere, new_passphrase
from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "account"]


@click.group()
def account() -> None:
    """Encrypted keystores (passphrase from MEDVAULT_PASSPHRASE[_NAME] or a prompt)."""


@account.command("new")
@click.argument("name")
@click.option("--import-key", is_flag=True, help="Import an existing private key (asked for, hidden).")
@json_anywhere
@pass_app
def account_new(app: App, name: str, import_key: bool) -> None:
    """Create keystore NAME with a fresh key (or an imported one)."""
    passphrase = new_passphrase(name)
    key = None
    if import_key:
        raw = click.prompt("Private key (hex)", hide_input=True).strip().removeprefix("0x")
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            raise ConfigurationError("the private key is not hex") from None
    address = app.keystore.create(name, passphrase, key)
    app.emit({"name": name, "address": address}, f"created {name}: {address}")


@account.command("list")
@json_anywhere
@pass_app
def account_list(app: App) -> None:
    """List keystore accounts and addresses."""
    accounts = app.keystore.addresses()
    app.emit(accounts, "\n".join(f"{n:<16} {a}" for n, a in accounts.items()) or "no accounts")


@account.command("fund")
@click.argument("name")
@click.option("--eth", default=100.0, show_default=True, help="Balance to set.")
@json_anywhere
@pass_app
def account_fund(app: App, name: str, eth: float) -> None:
    """Set an account's balance on a local anvil chain (development only)."""
    from medvault.dev.anvil import fund

    address = app.address(name)
    fund(connect(app.rpc_url), address, int(eth * 10**18))
    app.emit({"address": address, "eth": eth}, f"{name} ({address}) now holds {eth} ETH")


COMMANDS: Sequence[click.Command] = [account]
