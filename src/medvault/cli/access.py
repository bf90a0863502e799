"""Research access and emergency access: ``medvault access`` and ``medvault emergency``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.consent import unshared_json, unshared_text
from medvault.cli.options import (
    ACCOUNT,
    DAYS,
    account_option,
    json_anywhere,
    purpose_option,
    scope_option,
    scopes,
    sign_only_option,
    unsigned_option,
)
from medvault.cli.query import request_line
from medvault.errors import ConfigurationError
from medvault.model import AccessRequest, Purpose, RequestStatus

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "access", "emergency"]


@click.group()
def access() -> None:
    """Research access requests: a researcher asks, the patient approves or denies."""


@access.command("request")
@click.argument("patient", type=ACCOUNT)
@scope_option
@purpose_option("HRESCH", "HL7 PurposeOfUse code.")
@click.option("--days", type=DAYS, required=True, help="How long access lasts once approved.")
@click.option("--study", required=True, help="Study id: a label of up to 32 bytes, or 0x + 64 hex digits.")
@account_option
@json_anywhere
@pass_app
def access_request(app: App, patient: str, scope: str, purpose: str, days: float, study: str, account: str) -> None:
    """Ask PATIENT for time-limited access (you must be an accredited researcher)."""
    request, tx = app.client.request_access(
        app.unlock(account), app.address(patient), scopes(scope), Purpose.parse(purpose), int(days * 86400), study
    )
    app.emit(
        {"request": request.to_json(), "transaction": tx_json(tx)}, f"request {request.request_id:#x}\n{tx_line(tx)}"
    )


def _decide(
    app: App, request_id: str, approve: bool, sign_only: bool, unsigned: bool, account: str, share_keys: bool = True
) -> None:
    signer = app.signer(account, unsigned, sign_only)
    share_keys = share_keys and signer.wallet is not None  # a wallet elsewhere cannot open record keys
    try:
        number = int(request_id, 16 if request_id.startswith("0x") else 10)
    except ValueError:
        raise ConfigurationError(f"request id {request_id!r} is not a number") from None
    change = app.client.decision_change(
        signer.wallet, app.client.request(number), approve=approve, share_keys=share_keys
    )
    if not approve or signer.mode != "send":
        app.send_or_sign(signer, change)
        if change.skipped:  # stdout is the signed change alone
            click.echo(unshared_text(change.skipped), err=True)
        return
    assert signer.wallet is not None
    tx = app.client.submit(signer.wallet, change)
    app.emit(
        {**tx_json(tx), "skipped": unshared_json(change.skipped)},
        tx_line(tx) + (f"\n{unshared_text(change.skipped)}" if change.skipped else ""),
    )


@access.command("approve")
@click.argument("request_id")
@click.option(
    "--no-share",
    is_flag=True,
    help="Hand out no record key now: the researcher asks the patient's keepers, who check the grant each time.",
)
@sign_only_option
@unsigned_option
@account_option
@json_anywhere
@pass_app
def access_approve(app: App, request_id: str, no_share: bool, sign_only: bool, unsigned: bool, account: str) -> None:
    """Approve REQUEST_ID: the researcher's access starts now and lasts the requested time.
    The keys of records in scope are shared, but for any the patient's keys do not open (named)."""
    _decide(app, request_id, True, sign_only, unsigned, account, share_keys=not no_share)


@access.command("deny")
@click.argument("request_id")
@sign_only_option
@unsigned_option
@account_option
@json_anywhere
@pass_app
def access_deny(app: App, request_id: str, sign_only: bool, unsigned: bool, account: str) -> None:
    """Deny REQUEST_ID."""
    _decide(app, request_id, False, sign_only, unsigned, account)


@access.command("list")
@click.option("--patient", "-p", type=ACCOUNT, help="Requests to this patient.")
@click.option("--researcher", "-r", type=ACCOUNT, help="Requests by this researcher.")
@json_anywhere
@pass_app
def access_list(app: App, patient: str | None, researcher: str | None) -> None:
    """List research requests and their status."""
    requests = app.client.requests(
        patient=app.address(patient) if patient else None, researcher=app.address(researcher) if researcher else None
    )
    now = app.client.now()

    def status(r: AccessRequest) -> str:
        expired = r.status is RequestStatus.PENDING and app.client.request_expired(r, now)
        return "expired" if expired else r.status.name.lower()

    lines = [request_line(r, status(r), app.names) for r in requests]
    app.emit([{**r.to_json(), "status": status(r)} for r in requests], "\n".join(lines) or "no requests")


@click.command()
@click.argument("patient", type=ACCOUNT)
@click.option("--reason", required=True, help="Why emergency access is needed (recorded on chain).")
@account_option
@json_anywhere
@pass_app
def emergency(app: App, patient: str, reason: str, account: str) -> None:
    """Take 24 hours of emergency access to PATIENT's records (accredited providers only).

    Only if the patient's emergency policy lets you; the patient sees it at once and can block you.
    """
    app.emit_tx(app.client.take_emergency_access(app.unlock(account), app.address(patient), reason))


COMMANDS: Sequence[click.Command] = [access, emergency]
