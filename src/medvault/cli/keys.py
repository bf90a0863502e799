"""``medvault keys``: the account's encryption keys (show, rotate, the typed data a wallet signs)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.options import account_option, json_anywhere, key_suite_option

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medvault.crypto import KeySuite

__all__ = ["COMMANDS", "keys"]


@click.group()
def keys() -> None:
    """Encryption keys: derived from your wallet's signature, so unlocking the keystore (or a
    browser wallet holding the account) restores them; rotate to a new one at any time."""


@keys.command("show")
@account_option
@json_anywhere
@pass_app
def keys_show(app: App, account: str) -> None:
    """Show the account's key epoch, suite and public key, and whether the chain holds that key."""
    info = app.client.key_info(app.unlock(account))
    if info.matches_chain:
        state = "matches the published key"
    elif info.registered:
        state = "does NOT match the published key (`medvault register` publishes it)"
    else:
        state = "not registered (`medvault register`)"
    epoch = "-" if info.epoch is None else str(info.epoch)
    app.emit(
        info.to_json(),
        f"account  {info.account}\nsuite    {info.suite.name}\nepoch    {epoch}\n"
        f"key      0x{info.public_key.hex()}\nchain    {state}",
    )


@keys.command("rotate")
@account_option
@json_anywhere
@pass_app
def keys_rotate(app: App, account: str) -> None:
    """Publish the account's next key and re-wrap its records' keys for it.

    Records added from then on are wrapped for the new key only. Grants are unchanged.
    """
    rotation = app.client.rotate_key(app.unlock(account))
    app.emit(
        {
            "account": rotation.account,
            "old_epoch": rotation.old_epoch,
            "new_epoch": rotation.new_epoch,
            "public_key": "0x" + rotation.public_key.hex(),
            "keys_cid": rotation.keys_cid,
            "rewrapped": rotation.rewrapped,
            "transactions": [tx_json(r) for r in rotation.transactions],
        },
        "\n".join(tx_line(r) for r in rotation.transactions)
        + f"\nkey epoch {rotation.old_epoch} -> {rotation.new_epoch}; "
        + f"{len(rotation.rewrapped)} record key(s) re-wrapped"
        + (f" in {rotation.keys_cid}" if rotation.keys_cid else ""),
    )


@keys.command("typed-data")
@key_suite_option("--suite", "HPKE suite.")
@click.option("--epoch", type=click.IntRange(min=0), default=0, show_default=True, help="Key epoch.")
@json_anywhere
@pass_app
def keys_typed_data(app: App, suite: KeySuite, epoch: int) -> None:
    """Print the EIP-712 document a wallet signs (eth_signTypedData_v4) to derive its key.

    keccak256 of the signature is the key's seed. The domain has no chain id: one key per
    account and epoch on every chain.
    """
    from medvault.crypto import encryption_key_typed_data

    document = encryption_key_typed_data(suite, epoch)
    app.emit(document, json.dumps(document, indent=2))  # JSON either way


COMMANDS: Sequence[click.Command] = [keys]
