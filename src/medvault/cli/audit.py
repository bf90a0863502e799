"""A patient's history and integrity: ``medvault audit`` and ``medvault verify``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app, utc
from medvault.cli.options import json_anywhere, patient_option

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "audit", "printable", "verify"]


def printable(value: object) -> str:
    """``value`` as one line of plain text: control characters (newlines, ANSI escapes) that an
    event's author wrote are shown escaped, so they cannot forge audit lines or rewrite a terminal."""
    text = str(value)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


@click.command()
@patient_option
@json_anywhere
@pass_app
def audit(app: App, patient: str) -> None:
    """A patient's whole history: grants, changes, revocations, requests, approvals, emergencies."""
    entries = app.client.audit(app.address(patient))

    def show() -> None:
        emergencies = [e for e in entries if e.event == "EmergencyAccessTaken"]
        if emergencies:
            click.echo(
                f"!! {len(emergencies)} EMERGENCY break-glass access(es) to these records; see the lines marked !!"
            )
        for e in entries:
            fields = ", ".join(f"{k}={printable(v)}" for k, v in e.details.items())
            line = f"{utc(e.timestamp)}  {e.event:<21} by {e.sender}  tx {e.tx_hash[:18]}..  {fields}"
            if e.event == "EmergencyAccessTaken":
                reason = printable(e.details.get("reason", ""))
                line = f"!! EMERGENCY  {utc(e.timestamp)}  provider {e.sender} broke the glass: {reason}\n   {line}"
            click.echo(line)

    app.emit([e.__dict__ for e in entries], show)


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
