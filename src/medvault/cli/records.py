"""``medvault record``: add, list and get encrypted records."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medvault.cli.app import App, pass_app, tx_json, tx_line
from medvault.cli.options import account_option, json_anywhere, patient_option
from medvault.errors import ConfigurationError
from medvault.model import Category

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["COMMANDS", "record"]


@click.group()
def record() -> None:
    """Encrypted records: add, list, get."""


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
        f"record {p.index} of {p.patient} ({p.category.name.lower()})\n"
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
            click.echo(f"{p.index:>4}  {when}  {p.category.name.lower():<13} {p.author}  {p.cid}")

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
        if output:
            click.echo(f"record {index}: {len(rec.data)} bytes of {rec.content_type} written to {output}")
        else:
            sys.stdout.buffer.write(rec.data + (b"\n" if not rec.data.endswith(b"\n") else b""))

    app.emit(data, show)


COMMANDS: Sequence[click.Command] = [record]
