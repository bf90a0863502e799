"""A patient's history and integrity: ``medvault audit`` and ``medvault verify``.

An audit line names who authorised each change (the patient, or the delegate who signed) and,
when another account sent the transaction, who relayed it; every value is in words (UTC times,
categories, purposes, account names the home knows) and every field is escaped, so what an
event's author wrote cannot forge lines. ``--json`` keeps machine values: unix seconds (with an
ISO time beside), names of scopes and purposes, request ids in hex.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from medvault import words
from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere, patient_option
from medvault.client.audit import ACTOR_ARGUMENTS
from medvault.model import Category, EmergencyMode, EmergencyStanding, Purpose, categories_of
from medvault.words import printable, utc

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from medvault.model import AuditEntry
    from medvault.words import Names

__all__ = ["COMMANDS", "audit", "entry_json", "entry_line", "printable", "verify"]

ADDRESSES = ("grantee", "researcher", "provider", "delegate", "counterpart", "keeper", "author", "writer")
TIMES = ("validFrom", "validUntil", "requestedAt", "releasedAt", "issuedAt", "timestamp")


def _names(mask: Any) -> list[str]:
    return sorted(c.name.lower() for c in categories_of(int(mask)))


# Event arguments shown in words, and as JSON values (the rest as they are).
_WORDS: dict[str, Callable[[Any], str]] = {
    "scopes": words.categories,
    "categories": words.categories,
    "category": lambda c: words.categories(1 << int(c)),
    "purpose": words.purpose,
    "duration": words.duration,
    "maxDuration": words.duration,
    "requestId": words.request_id,
    "studyId": words.study,
    "mode": lambda m: EmergencyMode(int(m)).name.lower(),
    "standing": lambda s: EmergencyStanding(int(s)).name.lower(),
}
_JSON: dict[str, Callable[[Any], Any]] = {
    "scopes": _names,
    "categories": _names,
    "category": lambda c: Category(int(c)).name.lower(),
    "purpose": lambda p: Purpose(int(p)).name,
    "requestId": words.request_id,
    "mode": lambda m: EmergencyMode(int(m)).name.lower(),
    "standing": lambda s: EmergencyStanding(int(s)).name.lower(),
}


def _field(key: str, value: Any, names: Names) -> str:
    if key in ADDRESSES:
        return words.who(value, names)
    if key == "keepers":
        return "[" + ", ".join(words.who(k, names) for k in value) + "]"
    if key in TIMES:
        return utc(int(value))
    render = _WORDS.get(key)
    return printable(render(value) if render else value)


def entry_line(e: AuditEntry, names: Names, patient: str = "") -> str:
    """One audit line: when, what, who authorised it (and who relayed it), and its fields; a
    change on ``patient``'s side that someone else authorised was their delegate's."""
    signer = e.signer or e.sender
    delegate = patient and e.event not in ACTOR_ARGUMENTS and signer.lower() != patient.lower()
    relayed = (" as delegate" if delegate else "") + (
        f", relayed by {words.who(e.sender, names)}" if e.sender != signer else ""
    )
    fields = ", ".join(f"{printable(k)}={_field(k, v, names)}" for k, v in e.details.items())
    line = (
        f"{utc(e.timestamp)}  {printable(e.event):<21} by {words.who(signer, names)}{relayed}  "
        f"tx {e.tx_hash[:18]}..  {fields}"
    )
    if e.event == "EmergencyAccessTaken":
        reason = printable(e.details.get("reason", ""))
        who = words.who(signer, names)
        line = f"!! EMERGENCY  {utc(e.timestamp)}  provider {who} broke the glass: {reason}\n   {line}"
    return line


def entry_json(e: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON, its values as the other commands' JSON gives them."""
    signer = e.signer or e.sender
    return {
        "timestamp": e.timestamp,
        "time": dt.datetime.fromtimestamp(e.timestamp, dt.UTC).isoformat(),
        "event": e.event,
        "signer": signer,
        "sender": e.sender,
        "relayed": e.sender != signer,
        "details": {k: _JSON[k](v) if k in _JSON else v for k, v in e.details.items()},
        "tx_hash": e.tx_hash,
    }


@click.command()
@patient_option
@json_anywhere
@pass_app
def audit(app: App, patient: str) -> None:
    """A patient's whole history: grants, changes, revocations, requests, approvals, emergencies,
    each with who authorised it (and "relayed by" the account that sent it, if another)."""
    address = app.address(patient)
    entries = app.client.audit(address)

    def show() -> None:
        emergencies = [e for e in entries if e.event == "EmergencyAccessTaken"]
        if emergencies:
            click.echo(
                f"!! {len(emergencies)} EMERGENCY break-glass access(es) to these records; see the lines marked !!"
            )
        for e in entries:
            click.echo(entry_line(e, app.names, address))

    app.emit([entry_json(e) for e in entries], show)


@click.command()
@patient_option
@click.option(
    "--open-keys",
    is_flag=True,
    help="Also check, with the patient's keystore account (PATIENT by name), that its wraps open every record.",
)
@json_anywhere
@pass_app
def verify(app: App, patient: str, open_keys: bool) -> None:
    """Check a patient's whole record log: hash chain, CIDs, ciphertext hashes, pins, and every
    key bundle the chain references (each record's and each KeysShared one): present, pinned,
    well-formed and, with --open-keys, opening for the patient.

    Reports every missing, altered, reordered, unpinned, malformed or unopenable item; exit
    status 1 if any.
    """
    from medvault.verify import SHARED, verify_patient

    wallet = app.unlock(patient) if open_keys else None
    report = verify_patient(app.client, app.address(patient), wallet)

    def show() -> None:
        for f in report.findings_for(SHARED):
            click.echo(f"  ks  {f.kind.upper():<10} {f.object:<6} {f.message}")
        summaries = {r.index: r for r in report.records}
        for index in report.indices:
            findings = report.findings_for(index)
            summary = summaries.get(index)
            flags = [
                n
                for n, on in (("DISPUTED", summary and summary.disputed), ("HIDDEN", summary and summary.hidden))
                if on
            ]
            note = f"  [{' '.join(flags)} by the patient]" if flags else ""
            if not findings:
                click.echo(f"{index:>4}  ok{note}")
            elif note:
                click.echo(f"{index:>4}  {note.strip()}")
            for f in findings:
                click.echo(f"{index:>4}  {f.kind.upper():<9} {f.object:<6} {f.message}")
        tally = ", ".join(f"{n} {kind}" for kind, n in report.tally().items())
        n = len(report.findings)
        outcome = f"{n} finding{'s' * (n != 1)} ({tally})" if tally else "all verified"
        click.echo(f"{report.patient}: {report.count} records, {outcome}")

    app.emit(report.to_json(), show)
    if not report.ok:
        click.get_current_context().exit(1)


COMMANDS: Sequence[click.Command] = [audit, verify]
