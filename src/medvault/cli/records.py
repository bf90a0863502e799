"""``medvault record``: add, list and get encrypted records; the care team that may write them
(``record writers``) and the patient's flags (``record flag``)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.options import account_option, json_anywhere, patient_option, scope_option, scopes
from medvault.errors import ConfigurationError
from medvault.model import Category, RecordPointer

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "record"]


@click.group()
def record() -> None:
    """Encrypted records: add, list, get; writers; flag."""


@record.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@patient_option
@click.option("--category", "-c", help="laboratory, imaging, medications, conditions, immunizations, notes.")
@click.option("--content-type", help="Media type (default: FHIR JSON for .json files).")
@account_option
@json_anywhere
@pass_app
def record_add(
    app: App, file: Path, patient: str, category: str | None, content_type: str | None, account: str
) -> None:
    """Encrypt FILE, store it in IPFS and append its pointer to the patient's log.

    A FHIR R4 JSON resource is validated first, and its category follows from its type.
    """
    data = file.read_bytes()
    if file.suffix == ".json" and content_type in (None, "application/fhir+json"):
        from medvault.fhir import category_for, validate_resource

        try:
            resource = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{file} is not valid JSON: {exc}") from None
        validate_resource(resource)
        category = category or category_for(resource)
        content_type = "application/fhir+json"
    if category is None:
        raise ConfigurationError("--category is needed for a file that is not a FHIR JSON resource")
    receipt = app.client.add_record(
        app.unlock(account),
        app.address(patient),
        data,
        Category.parse(category),
        content_type=content_type or "application/octet-stream",
        name=file.name,
    )
    p = receipt.pointer
    app.emit(
        {"record": p.to_json(), "transaction": tx_json(receipt.tx), "readers": receipt.readers},
        f"record {p.index} of {p.patient} ({p.category.name.lower()}), #{p.seq} by {p.author}\n"
        f"  cid   {p.cid}\n  keys  {p.keys_cid}\n  {tx_line(receipt.tx)}\n"
        f"  key wrapped for {', '.join(receipt.readers)}",
    )


@record.command("list")
@patient_option
@json_anywhere
@pass_app
def record_list(app: App, patient: str) -> None:
    """List a patient's records (the hash chain is checked against the chain's head)."""
    pointers = app.client.records(app.address(patient))

    def show() -> None:
        if not pointers:
            click.echo("no records")
        for p in pointers:
            when = dt.datetime.fromtimestamp(p.timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M")
            shown = f"UNUSABLE: {p.problem}" if p.problem else p.cid  # reported, and the rest listed
            click.echo(f"{p.index:>4}  {when}  {p.category.name.lower():<13} {p.author}  {shown}{flag_note(p)}")

    app.emit([p.to_json() for p in pointers], show)


@record.command("get")
@click.argument("index", type=int)
@patient_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the payload here.")
@account_option
@json_anywhere
@pass_app
def record_get(app: App, index: int, patient: str, output: Path | None, account: str) -> None:
    """Fetch, verify and decrypt record INDEX of a patient."""
    rec = app.client.read_record(app.unlock(account), app.address(patient), index)
    if output:
        output.write_bytes(rec.data)
    data: dict[str, Any] = {"record": rec.pointer.to_json(), "content_type": rec.content_type, "name": rec.name}
    if rec.content_type.endswith("json") and not output:
        data["content"] = json.loads(rec.data)

    def show() -> None:
        if note := flag_note(rec.pointer):
            # On stderr, so that the payload on stdout stays exactly the record's bytes.
            click.echo(f"record {index}:{note}", err=True)
        if output:
            click.echo(f"record {index}: {len(rec.data)} bytes of {rec.content_type} written to {output}")
        else:
            sys.stdout.buffer.write(rec.data + (b"\n" if not rec.data.endswith(b"\n") else b""))

    app.emit(data, show)


def flag_note(p: RecordPointer) -> str:
    """What a reader is told of the patient's flags on a record ("" when it has none)."""
    flags = [name for name, on in (("DISPUTED by the patient", p.disputed), ("HIDDEN by the patient", p.hidden)) if on]
    return f"  [{'; '.join(flags)}]" if flags else ""


@record.command("flag")
@click.argument("index", type=int)
@click.option("--disputed/--not-disputed", default=False, help="The patient disputes the record's content.")
@click.option("--hidden/--not-hidden", default=False, help="Readers should not show the record by default.")
@account_option
@json_anywhere
@pass_app
def record_flag(app: App, index: int, disputed: bool, hidden: bool, account: str) -> None:
    """Flag record INDEX of your own log as disputed and/or hidden (neither: clear its flags).

    The record stays in the log; every reader and `medvault verify` show the flags beside it.
    """
    tx = app.client.flag_record(app.unlock(account), index, disputed=disputed, hidden=hidden)
    state = ", ".join(n for n, on in (("disputed", disputed), ("hidden", hidden)) if on) or "no flags"
    app.emit(
        {"index": index, "disputed": disputed, "hidden": hidden, "transaction": tx_json(tx)},
        f"record {index}: {state}\n{tx_line(tx)}",
    )


@record.group("writers")
def writers() -> None:
    """Your care team: the providers that may add records to your log, and in which categories."""


@writers.command("add")
@click.argument("writer")
@scope_option
@account_option
@json_anywhere
@pass_app
def writers_add(app: App, writer: str, scope: str, account: str) -> None:
    """Let WRITER (an accredited provider) add records of --scope to your log (replacing any earlier scope)."""
    categories = scopes(scope)
    tx = app.client.set_writer(app.unlock(account), app.address(writer), categories)
    names = ", ".join(sorted(c.name.lower() for c in categories))
    app.emit(
        {
            "writer": app.address(writer),
            "categories": sorted(c.name.lower() for c in categories),
            "transaction": tx_json(tx),
        },
        f"{app.address(writer)} may write {names}\n{tx_line(tx)}",
    )


@writers.command("remove")
@click.argument("writer")
@account_option
@json_anywhere
@pass_app
def writers_remove(app: App, writer: str, account: str) -> None:
    """Stop WRITER adding records to your log (its records stay)."""
    tx = app.client.remove_writer(app.unlock(account), app.address(writer))
    app.emit(
        {"writer": app.address(writer), "transaction": tx_json(tx)},
        f"{app.address(writer)} may no longer write\n{tx_line(tx)}",
    )


@writers.command("list")
@patient_option
@json_anywhere
@pass_app
def writers_list(app: App, patient: str) -> None:
    """A patient's care team as the chain holds it now (the patient itself always writes)."""
    team = app.client.writers(app.address(patient))

    def show() -> None:
        if not team:
            click.echo("no writers besides the patient")
        for writer, categories in team.items():
            click.echo(f"{writer}  {', '.join(sorted(c.name.lower() for c in categories))}")

    app.emit({w: sorted(c.name.lower() for c in cs) for w, cs in team.items()}, show)


COMMANDS: Sequence[click.Command] = [record]
