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
@json_anywhere
@pass_app
def verify(app: App, patient: str) -> None:
    """Check a patient's whole record log: hash chain, CIDs, ciphertext hashes, pins.

    Reports every missing, altered, reordered or unpinned record; exit status 1 if any.
    """
    from medvault.verify import verify_patient

    report = verify_patient(app.client, app.address(patient))

    def show() -> None:
        for index in report.indices:
            findings = report.findings_for(index)
            if not findings:
                click.echo(f"{index:>4}  ok")
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
