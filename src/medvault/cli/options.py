"""Options and arguments shared by the commands, account-name resolution and the passphrase prompt."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any

import click

from medvault.accounts import passphrase_from_env
from medvault.crypto import KeySuite
from medvault.errors import ConfigurationError
from medvault.formats.address import looks_like_address, parse_address
from medvault.model import Category

if TYPE_CHECKING:
    from collections.abc import Callable

    from medvault.accounts import Keystore

__all__ = [
    "ACCOUNT",
    "SIGNER",
    "AccountType",
    "DAYS",
    "account_option",
    "json_anywhere",
    "json_option",
    "key_suite_option",
    "new_passphrase",
    "patient_option",
    "prompt_passphrase",
    "purpose_option",
    "resolve_address",
    "scope_option",
    "scopes",
    "sign_only_option",
    "signer_patient_option",
    "unsigned_option",
]


class AccountType(click.ParamType):
    """An account name of this home's keystore, or an address in any case (EIP-55 checked when
    mixed): the one way every option and argument naming a party is read.

    As ``ACCOUNT`` it gives the party's checksum address. As ``SIGNER`` (``--account``) it gives
    the keystore name to unlock: an address is looked up among the keystore's accounts, and one
    that none holds is kept as the address, which only ``--unsigned`` can use."""

    name = "account"

    def __init__(self, *, signer: bool = False) -> None:
        self.signer = signer

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from medvault.cli.app import App

        app = ctx.find_object(App) if ctx else None
        if looks_like_address(str(value)):
            try:
                address = parse_address(value)
            except ConfigurationError as exc:
                self.fail(str(exc), param, ctx)
            if self.signer and app is not None:
                return app.keystore.name_of(address) or address
            return address
        if app is None:
            self.fail(f"{value!r} is not an address (no medvault home here to look account names up)", param, ctx)
        return value if self.signer else resolve_address(app.keystore, value)


ACCOUNT = AccountType()
SIGNER = AccountType(signer=True)

account_option = click.option(
    "--account", "-a", type=SIGNER, required=True, help="Keystore account that signs (a name, or its address)."
)
patient_option = click.option("--patient", "-p", type=ACCOUNT, required=True, help="Patient name or address.")
signer_patient_option = click.option(
    "--patient", "-p", type=ACCOUNT, help="Patient name or address (default: the signing account)."
)
sign_only_option = click.option(
    "--sign-only",
    is_flag=True,
    help="Do not send: print the EIP-712 typed data and signature, for anyone to `medvault relay`.",
)
unsigned_option = click.option(
    "--unsigned",
    is_flag=True,
    help="Do not sign: print the EIP-712 typed data (eth_signTypedData_v4) for the --account address "
    "to sign in its own wallet (no keystore needed; no record keys shared), then "
    "`medvault relay FILE --signature SIG`.",
)
scope_option = click.option(
    "--scope",
    "-s",
    default="all",
    show_default=True,
    help="Comma-separated categories (laboratory, imaging, medications, conditions, immunizations, notes) or all.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


class Days(click.ParamType):
    """A number of days above zero and at most a century (fractions allowed): no NaN, no infinity."""

    name = "days"
    MAX = 36525

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            days = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of days", param, ctx)
        if not (math.isfinite(days) and 0 < days <= self.MAX):
            self.fail(f"{value!r} is not a number of days above 0 and at most {self.MAX}", param, ctx)
        return days


DAYS = Days()


def purpose_option(default: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--purpose", default=default, show_default=True, help=help_text)


def key_suite_option(name: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An HPKE suite by its label (``x25519``, ``mlkem768-x25519``), given to the command as a KeySuite."""
    return click.option(
        name,
        type=click.Choice(KeySuite.labels()),
        default=KeySuite.X25519.label,
        show_default=True,
        callback=lambda _ctx, _param, label: KeySuite.from_label(label),
        help=help_text,
    )


def json_anywhere(f: Callable[..., Any]) -> Callable[..., Any]:
    """Lets --json also follow the subcommand (``medvault record list --json``)."""

    def set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        from medvault.cli.app import App

        if value:
            ctx.ensure_object(App).as_json = True

    return click.option("--json", is_flag=True, expose_value=False, callback=set_json, help="Print JSON.")(f)


def scopes(value: str) -> frozenset[Category]:
    """``all``, or comma-separated category names."""
    if value.strip().lower() == "all":
        return frozenset(Category)
    return frozenset(Category.parse(part.strip()) for part in value.split(",") if part.strip())


def resolve_address(keystore: Keystore, name_or_address: str) -> str:
    """An account name from the keystore, or an address in any case, as a checksum address."""
    if looks_like_address(name_or_address):
        return parse_address(name_or_address)
    return parse_address(keystore.address(name_or_address))


def prompt_passphrase(name: str, *, new: bool = False) -> str:
    """Asks on the terminal for ``name``'s passphrase (twice for a ``new`` one)."""
    if not sys.stdin.isatty():
        raise ConfigurationError(f"no passphrase for {name!r}: set MEDVAULT_PASSPHRASE (no terminal to prompt on)")
    label = f"New passphrase for {name}" if new else f"Passphrase for {name}"
    return str(click.prompt(label, hide_input=True, confirmation_prompt=new))


def new_passphrase(name: str) -> str:
    """The passphrase of a keystore about to be created: from the environment, else asked twice."""
    passphrase = passphrase_from_env(name)
    return prompt_passphrase(name, new=True) if passphrase is None else passphrase
