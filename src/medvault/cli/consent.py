"""Consent: ``medvault consent`` (grant, revoke, list, export, emergency-policy,
invalidate-nonce) and ``delegate``.

Every grant, revoke and delegation change a patient (or its delegate) makes can be sent, or
only signed (``--sign-only``) for anyone to ``relay`` (:mod:`medvault.cli.relay`).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medvault.cli.app import App, pass_app, tx_json, tx_line, utc
from medvault.cli.options import (
    ACCOUNT,
    DAYS,
    account_option,
    json_anywhere,
    patient_option,
    purpose_option,
    scope_option,
    scopes,
    sign_only_option,
    signer_patient_option,
    unsigned_option,
)
from medvault.errors import ConfigurationError
from medvault.model import (
    DelegateTerms,
    EmergencyMode,
    EmergencyStanding,
    GrantKind,
    GrantTerms,
    Purpose,
    RequestStatus,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "consent", "delegate", "unshared_json", "unshared_text"]


@click.group()
def consent() -> None:
    """Grant, revoke, list and export access to a patient's records."""


@consent.command("grant")
@click.argument("grantee", type=ACCOUNT)
@scope_option
@purpose_option("TREAT", "HL7 PurposeOfUse: TREAT, HRESCH, PATRQT, ...")
@click.option("--days", type=DAYS, help="Access lasts this many days (from --start, or now).")
@click.option("--until", "until", type=click.DateTime(), help="Access ends at this UTC time.")
@click.option("--start", type=click.DateTime(), help="Access starts at this UTC time (default: now).")
@click.option(
    "--no-share",
    is_flag=True,
    help="Hand out no record key now: the grantee asks the patient's keepers, who check the grant each time.",
)
@signer_patient_option
@sign_only_option
@unsigned_option
@account_option
@json_anywhere
@pass_app
def consent_grant(
    app: App,
    grantee: str,
    scope: str,
    purpose: str,
    days: float | None,
    until: dt.datetime | None,
    start: dt.datetime | None,
    no_share: bool,
    patient: str | None,
    sign_only: bool,
    unsigned: bool,
    account: str,
) -> None:
    """Let GRANTEE (name or address) read the patient's records in scope, for a purpose, for a time.

    When the patient acts and the window is open, the keys of existing records in scope are
    shared with the grant, but for any the patient's keys do not open (named, with why); a
    future-dated grant, or --no-share, shares none (the grantee asks the keepers once its
    window opens).
    """
    if (days is None) == (until is None):
        raise click.UsageError("give exactly one of --days or --until")
    client, signer = app.client, app.signer(account, unsigned, sign_only)
    valid_from = _timestamp(start) if start else client.now()
    valid_until = valid_from + int(days * 86400) if days is not None else _timestamp(until)  # type: ignore[arg-type]
    patient_address = patient or signer.address
    terms = GrantTerms(scopes(scope), Purpose.parse(purpose), valid_from, valid_until)
    share = not no_share and signer.wallet is not None  # a wallet elsewhere cannot open record keys
    if signer.mode != "send":
        change = client.grant_change(signer.wallet, patient_address, grantee, terms, share_keys=share)
        app.send_or_sign(signer, change)
        if change.skipped:  # stdout is the signed change alone
            click.echo(unshared_text(change.skipped), err=True)
        return
    assert signer.wallet is not None
    receipt = client.grant(signer.wallet, patient_address, grantee, terms, share_keys=share)
    app.emit(
        {
            "valid_from": valid_from,
            "valid_until": valid_until,
            "transactions": [tx_json(r) for r in receipt.transactions],
            "skipped": unshared_json(receipt.skipped),
        },
        "\n".join(tx_line(r) for r in receipt.transactions)
        + f"\nvalid {utc(valid_from)} to {utc(valid_until)}"
        + (f"\n{unshared_text(receipt.skipped)}" if receipt.skipped else ""),
    )


def unshared_json(skipped: dict[int, str]) -> list[dict[str, Any]]:
    """Records whose keys a grant did not share, as ``--json`` gives them."""
    return [{"index": index, "reason": why} for index, why in skipped.items()]


def unshared_text(skipped: dict[int, str]) -> str:
    lines = [f"  record {index}: {why}" for index, why in skipped.items()]
    return "\n".join([f"{len(skipped)} record key(s) not shared (the patient's keys do not open them):", *lines])


@consent.command("revoke")
@click.argument("grantee", type=ACCOUNT)
@signer_patient_option
@sign_only_option
@unsigned_option
@account_option
@json_anywhere
@pass_app
def consent_revoke(app: App, grantee: str, patient: str | None, sign_only: bool, unsigned: bool, account: str) -> None:
    """End GRANTEE's access at once (what it already decrypted cannot be recalled)."""
    signer = app.signer(account, unsigned, sign_only)
    app.send_or_sign(signer, app.client.revoke_change(patient or signer.address, grantee))


@consent.command("list")
@patient_option
@json_anywhere
@pass_app
def consent_list(app: App, patient: str) -> None:
    """List the patient's grants and whether each holds now (revoked grants are gone)."""
    client = app.client
    grants, now = client.grants(app.address(patient)), client.now()

    def show() -> None:
        if not grants:
            click.echo("no grants")
        for g in grants:
            state = "active" if g.active_at(now) else ("future" if now < g.valid_from else "expired")
            categories = ",".join(sorted(c.name.lower() for c in g.scopes))
            flag = "  !! EMERGENCY (break-glass by the provider)" if g.emergency else ""
            window = f"{utc(g.valid_from)} .. {utc(g.valid_until)}"
            made = _KIND_LABELS.get(g.kind, g.kind.name.lower())
            click.echo(f"{g.grantee}  {state:<7} {g.purpose.name:<7} {window}  {categories}  [{made}]{flag}")

    app.emit([{**g.to_json(), "active": g.active_at(now)} for g in grants], show)


_KIND_LABELS = {
    GrantKind.PATIENT: "by the patient",
    GrantKind.DELEGATE: "by a delegate",
    GrantKind.EMERGENCY: "emergency",
    GrantKind.RESEARCH: "research",
}


@consent.command("emergency-policy")
@click.option(
    "--mode",
    type=click.Choice(["none", "named", "any"]),
    help="Who may take break-glass access: nobody (the default), the providers you --allow, or any "
    "accredited provider you have not blocked.",
)
@click.option("--scope", "-s", help="Categories break-glass opens (default: all), e.g. laboratory,medications.")
@click.option("--full-history/--no-full-history", default=False, help="Whether it opens records written before it.")
@click.option("--allow", multiple=True, type=ACCOUNT, metavar="PROVIDER", help="Allow this provider (repeatable).")
@click.option(
    "--block", multiple=True, type=ACCOUNT, metavar="PROVIDER", help="Block this provider; ends its access now."
)
@click.option(
    "--reset", multiple=True, type=ACCOUNT, metavar="PROVIDER", help="Neither allowed nor blocked (repeatable)."
)
@account_option
@json_anywhere
@pass_app
def consent_emergency_policy(
    app: App,
    mode: str | None,
    scope: str | None,
    full_history: bool,
    allow: tuple[str, ...],
    block: tuple[str, ...],
    reset: tuple[str, ...],
    account: str,
) -> None:
    """Set who may break the glass on your records, and allow or block single providers.

    Without any option, shows the policy. A revoke of an emergency grant also blocks its provider.
    """
    client, patient = app.client, app.unlock(account)
    if mode is None and (scope is not None or full_history):
        raise click.UsageError("--scope and --full-history need --mode")
    results = []
    if mode is not None:
        chosen = EmergencyMode[mode.upper()]
        results.append(client.set_emergency_policy(
            patient, chosen, scopes=scopes(scope) if scope else None, full_history=full_history
        ))  # fmt: skip
    for providers, standing in ((allow, EmergencyStanding.ALLOWED), (block, EmergencyStanding.BLOCKED),
                            (reset, EmergencyStanding.DEFAULT)):  # fmt: skip
        results.extend(client.set_emergency_standing(patient, app.address(n), standing) for n in providers)
    policy = client.emergency_policy(patient.address)
    names = sorted(c.name.lower() for c in policy.scopes)
    summary = {
        "mode": policy.mode.name.lower(),
        "scopes": names,
        "full_history": policy.full_history,
        "transactions": [tx_json(r) for r in results],
    }
    text = "\n".join(tx_line(r) for r in results)
    who = {EmergencyMode.NONE: "nobody", EmergencyMode.NAMED: "only the providers you allowed",
           EmergencyMode.ANY: "any accredited provider you have not blocked"}[policy.mode]  # fmt: skip
    history = "including" if policy.full_history else "not"
    line = f"break-glass: {who}; opens {','.join(names) or 'nothing'}, {history} earlier records"
    app.emit(summary, (text + "\n" if text else "") + line)


@consent.command("invalidate-nonce")
@click.argument("counterpart", type=ACCOUNT)
@signer_patient_option
@account_option
@json_anywhere
@pass_app
def consent_invalidate_nonce(app: App, counterpart: str, patient: str | None, account: str) -> None:
    """Void every signature not yet relayed about the patient and COUNTERPART, granting nothing.

    The patient voids grant, revoke, decision and delegation signatures; a delegate (with
    --patient) voids grant, revoke and decision ones.
    """
    actor = app.unlock(account)
    patient_address = app.address(patient) if patient else actor.address
    app.emit_tx(app.client.invalidate_nonce(actor, patient_address, app.address(counterpart)))


@consent.command("export")
@click.argument("grantee", type=ACCOUNT)
@patient_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the resource here.")
@json_anywhere
@pass_app
def consent_export(app: App, grantee: str, patient: str, output: Path | None) -> None:
    """Write the patient's grant to GRANTEE as a FHIR R4 Consent resource (validated)."""
    from medvault.fhir import to_json_bytes
    from medvault.fhir.consent import grant_to_fhir_consent

    client = app.client
    patient_address, grantee_address = app.address(patient), app.address(grantee)
    grant = client.grant_of(patient_address, grantee_address)
    if grant is None:
        raise ConfigurationError(f"{patient_address} holds no grant to {grantee_address} (never granted, or revoked)")
    granted = client.grant_event(patient_address, grantee_address)
    now = client.now()
    status = "active" if grant.active_at(now) else ("proposed" if now < grant.valid_from else "inactive")
    # A research grant answers the grantee's latest approved request: the Consent names its study.
    approved = [
        r.study_id
        for r in client.requests(patient=patient_address, researcher=grantee_address)
        if r.status is RequestStatus.APPROVED and grant.purpose is Purpose.HRESCH
    ]
    resource = grant_to_fhir_consent(
        grant,
        status=status,
        recorded_at=granted.timestamp if granted else now,
        chain_id=client.chain.chain_id,
        consent_manager=client.chain.consent.address,
        tx_hash=granted.tx_hash if granted else None,
        study=approved[-1] if approved else None,
    )
    data = to_json_bytes(resource)
    if output:
        output.write_bytes(data + b"\n")
        app.emit({"written": str(output)}, f"FHIR Consent ({status}) written to {output}")
    else:
        click.echo(json.dumps(resource, indent=2))


@click.group()
def delegate() -> None:
    """Appoint or remove a delegate (guardian, caregiver) who may manage your consent."""


@delegate.command("appoint")
@click.argument("delegate_name", metavar="DELEGATE", type=ACCOUNT)
@click.option("--scope", "-s", help="Categories the delegate may grant (default: all).")
@click.option("--max-days", type=DAYS, default=90.0, show_default=True, help="Longest window it may grant.")
@click.option("--open-history", is_flag=True, help="Its grants may open records written before them.")
@sign_only_option
@unsigned_option
@account_option
@json_anywhere
@pass_app
def delegate_appoint(
    app: App,
    delegate_name: str,
    scope: str | None,
    max_days: float,
    open_history: bool,
    sign_only: bool,
    unsigned: bool,
    account: str,
) -> None:
    """Let DELEGATE grant, revoke and decide requests for you, within these terms.

    A delegate never grants to itself, nor appoints others; its grants end when you remove it.
    """
    from medvault.model import Category

    terms = DelegateTerms(scopes(scope) if scope else frozenset(Category), int(max_days * 86400), open_history)
    signer = app.signer(account, unsigned, sign_only)
    app.send_or_sign(signer, app.client.delegate_change(signer.address, delegate_name, terms=terms))


@delegate.command("remove")
@click.argument("delegate_name", metavar="DELEGATE", type=ACCOUNT)
@click.option("--keep-grants", is_flag=True, help="Keep the grants it made (default: they end with it).")
@sign_only_option
@unsigned_option
@account_option
@json_anywhere
@pass_app
def delegate_remove(
    app: App, delegate_name: str, keep_grants: bool, sign_only: bool, unsigned: bool, account: str
) -> None:
    """Withdraw DELEGATE's power over your consent; the grants it made end unless --keep-grants."""
    signer = app.signer(account, unsigned, sign_only)
    change = app.client.delegate_change(signer.address, delegate_name, appoint=False, keep_grants=keep_grants)
    app.send_or_sign(signer, change)


def _timestamp(value: dt.datetime) -> int:
    timestamp = int(value.replace(tzinfo=dt.UTC).timestamp())
    if timestamp < 0:
        raise click.BadParameter(f"{value:%Y-%m-%d} is before 1970, the start of chain time")
    return timestamp


COMMANDS: Sequence[click.Command] = [consent, delegate]
