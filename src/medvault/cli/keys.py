"""``medvault keys``: the account's encryption keys (show, rotate, migrate, export, import)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.options import account_option, json_anywhere, prompt_passphrase
from medvault.errors import KeystoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medvault.model import KeyRotation

__all__ = ["COMMANDS", "keys"]


@click.group()
def keys() -> None:
    """Encryption keys: random, one per epoch, sealed beside the account's keystore (HOME/keystores/
    NAME.keys) under the same passphrase. No signature yields them, so no web page can phish them.

    \b
    Losing the device: keep a backup (`medvault keys export --out FILE`, encrypted under the
    passphrase) somewhere else; `medvault keys import FILE` restores the account and its keys.
    Without a backup, a patient who still has the account key registers a new key
    (`medvault register --new-key`): records whose key is escrowed with keepers are released
    to the patient again (keepers serve the patient as a reader of its own records), the others
    were wrapped only for the lost key and cannot be read by the patient any more (grantees
    holding their own wraps still can). See docs/FORMATS.md, "Recovery".
    """


@keys.command("show")
@account_option
@json_anywhere
@pass_app
def keys_show(app: App, account: str) -> None:
    """Show the account's key epoch, suite and public key, and whether the chain holds that key."""
    info = app.client.key_info(app.unlock(account))
    if info.legacy:
        state = "matches the published key, a LEGACY signature-derived one (phishable): `medvault keys migrate`"
    elif info.matches_chain:
        state = "matches the published key"
    elif info.registered:
        state = (
            "the published key is none this account holds: `medvault keys migrate` if it was registered "
            "before keys were random, `medvault keys import BACKUP` if this device lost it"
        )
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
    _emit_rotation(app, app.client.rotate_key(app.unlock(account)))


@keys.command("migrate")
@account_option
@json_anywhere
@pass_app
def keys_migrate(app: App, account: str) -> None:
    """Move an account registered before keys were random to a random key.

    Its old key was derived from a wallet signature any web page could ask for. This keeps the
    old signature-derived keys (flagged legacy) to open what was wrapped for them, publishes a
    fresh random key of the next epoch and re-wraps the account's records for it.
    """
    _emit_rotation(app, app.client.migrate_keys(app.unlock(account)))


def _emit_rotation(app: App, rotation: KeyRotation) -> None:
    app.emit(
        {
            "account": rotation.account,
            "old_epoch": rotation.old_epoch,
            "new_epoch": rotation.new_epoch,
            "public_key": "0x" + rotation.public_key.hex(),
            "keys_cid": rotation.keys_cid,
            "rewrapped": rotation.rewrapped,
            "skipped": [{"index": index, "reason": why} for index, why in rotation.skipped.items()],
            "transactions": [tx_json(r) for r in rotation.transactions],
        },
        "\n".join(tx_line(r) for r in rotation.transactions)
        + f"\nkey epoch {rotation.old_epoch} -> {rotation.new_epoch}; "
        + f"{len(rotation.rewrapped)} record key(s) re-wrapped"
        + (f" in {rotation.keys_cid}" if rotation.keys_cid else "")
        + "".join(f"\n  not re-wrapped: record {index}: {why}" for index, why in rotation.skipped.items()),
    )


@keys.command("export")
@account_option
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Backup file.")
@json_anywhere
@pass_app
def keys_export(app: App, account: str, out: Path) -> None:
    """Write an encrypted backup of the account: its account key and every encryption key.

    Sealed under the account's passphrase (scrypt, AES-256-GCM; docs/FORMATS.md, "Key file").
    Nothing is written in clear; an existing file is never overwritten. Keep it off this device.
    """
    keystore = app.keystore
    passphrase = keystore.passphrase(account, prompt_passphrase)
    wallet = keystore.unlock(account, passphrase)
    keystore.export(wallet, passphrase, out)
    count = len(wallet.keys.pairs)
    app.emit(
        {"account": wallet.address, "file": str(out), "encryption_keys": count},
        f"backup of {account} ({wallet.address}, {count} encryption keys) written to {out}",
    )


@keys.command("import")
@click.argument("backup", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@account_option
@json_anywhere
@pass_app
def keys_import(app: App, backup: Path, account: str) -> None:
    """Restore ACCOUNT from BACKUP (written by `keys export`), under the same passphrase.

    Creates the keystore and key file if ACCOUNT does not exist; if it is that account already,
    adds the keys it lacks. A backup that was altered, or a wrong passphrase, is refused.
    """
    keystore = app.keystore
    passphrase = keystore.passphrase(account, prompt_passphrase)
    if not passphrase:
        raise KeystoreError("an empty passphrase cannot open a backup")
    address, added = keystore.import_backup(account, backup, passphrase)
    app.emit(
        {"account": address, "name": account, "added": added},
        f"{account} ({address}): {added} encryption key(s) restored from {backup}",
    )


COMMANDS: Sequence[click.Command] = [keys]
