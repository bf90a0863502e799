"""``medvault query``: queries through the local event index, and the same commands for ``ape run query``.

:func:`query_group` adds the query subcommands to a group; ``medvault query`` opens the index
of the App's home and chain, ``scripts/query.py`` that of Ape's connected network.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click
from eth_utils.address import is_address, to_checksum_address

from medvault.chain import Chain
from medvault.cli.app import App
from medvault.cli.options import json_option, patient_option
from medvault.errors import ConfigurationError, MedvaultError
from medvault.index import EventIndex
from medvault.model import RequestStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from medvault.model import RecordPointer

__all__ = ["COMMANDS", "query", "query_group"]

_STATUSES = {"pending": RequestStatus.PENDING, "approved": RequestStatus.APPROVED, "denied": RequestStatus.DENIED}


def query_group(
    open_index: Callable[[click.Context], EventIndex],
    resolve: Callable[[click.Context, str], str] | None = None,
    json_default: Callable[[click.Context], bool] | None = None,
    command_cls: type[click.Command] = click.Command,
    group: click.Group | None = None,
) -> click.Group:
    """The ``query`` subcommands, added to ``group`` (by default a new group named ``query``).

    ``open_index`` opens the index for a command; ``resolve`` turns an account name or address
    into an address (default: addresses only); ``json_default`` says whether --json was given
    elsewhere; ``command_cls`` is the class of each subcommand (Ape's ConnectedProviderCommand
    in the Ape script)."""
    if group is None:
        group = click.Group("query", help="Queries through the local event index (synced from chain events first).")

    def address(ctx: click.Context, value: str) -> str:
        if resolve is not None:
            return resolve(ctx, value)
        if not is_address(value):
            raise ConfigurationError(f"{value!r} is not an address")
        return to_checksum_address(value)

    def wants_json(ctx: click.Context, as_json: bool) -> bool:
        return as_json or (json_default(ctx) if json_default else False)

    def run(ctx: click.Context, as_json: bool, query: Callable[[EventIndex], tuple[Any, list[str]]]) -> None:
        as_json = wants_json(ctx, as_json)
        index = open_index(ctx)
        try:
            synced = index.sync()
            started = time.perf_counter()
            data, lines = query(index)
            ms = (time.perf_counter() - started) * 1000
        finally:
            index.close()
        if as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo("\n".join(lines))
            click.echo(f"sync {synced.ms:.1f} ms ({synced.blocks} new blocks, {synced.events} events), "
                       f"query {ms:.1f} ms", err=True)  # fmt: skip

    def command(name: str, help_text: str) -> Callable[[Callable[..., None]], click.Command]:
        def decorate(f: Callable[..., None]) -> click.Command:
            return group.command(name, cls=command_cls, help=help_text)(click.pass_context(json_option(f)))

        return decorate

    @command("records", "A patient's records (its hash-chained log).")
    @patient_option
    def records(ctx: click.Context, patient: str, as_json: bool) -> None:
        def query(index: EventIndex) -> tuple[Any, list[str]]:
            found = index.records_of(address(ctx, patient), sync=False)
            return [p.to_json() for p in found], [_record_line(p) for p in found] or ["no records"]

        run(ctx, as_json, query)

    @command("readable", "The records GRANTEE may read now (active grants covering their category).")
    @click.option("--grantee", "-g", required=True, help="Grantee name or address.")
    @click.option("--at", "at", type=int, help="Chain time (unix seconds) instead of the latest block's.")
    def readable(ctx: click.Context, grantee: str, at: int | None, as_json: bool) -> None:
        def query(index: EventIndex) -> tuple[Any, list[str]]:
            found = index.readable_by(address(ctx, grantee), at, sync=False)
            return [p.to_json() for p in found], [_record_line(p) for p in found] or ["nothing readable"]

        run(ctx, as_json, query)

    @command("readers", "Who may read a patient's records now, and which categories.")
    @patient_option
    @click.option("--at", "at", type=int, help="Chain time (unix seconds) instead of the latest block's.")
    def readers(ctx: click.Context, patient: str, at: int | None, as_json: bool) -> None:
        def query(index: EventIndex) -> tuple[Any, list[str]]:
            found = index.readers_of(address(ctx, patient), at, sync=False)
            lines = [
                f"{g.grantee}  {','.join(sorted(c.name.lower() for c in g.scopes))}  {g.purpose.name}  "
                f"until {g.valid_until}" + ("  EMERGENCY" if g.emergency else "")
                for g in found
            ]
            return [g.to_json() for g in found], lines or ["no active grants"]

        run(ctx, as_json, query)

    @command("requests", "Research requests, by status, patient and researcher.")
    @click.option("--status", type=click.Choice(list(_STATUSES)), help="Only requests with this status.")
    @click.option("--patient", "-p", help="Requests to this patient.")
    @click.option("--researcher", "-r", help="Requests by this researcher.")
    def requests(
        ctx: click.Context, status: str | None, patient: str | None, researcher: str | None, as_json: bool
    ) -> None:
        def query(index: EventIndex) -> tuple[Any, list[str]]:
            found = index.requests(
                _STATUSES[status] if status else None,
                address(ctx, patient) if patient else None,
                address(ctx, researcher) if researcher else None,
                sync=False,
            )
            lines = [
                f"{r.request_id:#x}  {r.status.name.lower():<8} {r.researcher} -> {r.patient}  {r.purpose.name}"
                for r in found
            ]
            return [r.to_json() for r in found], lines or ["no requests"]

        run(ctx, as_json, query)

    @command("history", "A patient's audit history from the index.")
    @patient_option
    def history(ctx: click.Context, patient: str, as_json: bool) -> None:
        def query(index: EventIndex) -> tuple[Any, list[str]]:
            found = index.history(address(ctx, patient), sync=False)
            lines = [
                f"{e.timestamp}  {e.event:<21} by {e.sender}  tx {e.tx_hash[:18]}..  "
                + ", ".join(f"{k}={v}" for k, v in e.details.items())
                for e in found
            ]
            return [e.__dict__ for e in found], lines or ["no events"]

        run(ctx, as_json, query)

    @command("sync", "Bring the index up to date with the chain; print what was indexed and how long it took.")
    def sync(ctx: click.Context, as_json: bool) -> None:
        with open_index(ctx) as index:
            result = index.sync()
            data = {**result.to_json(), "path": str(index.path), "counts": index.counts()}
        if wants_json(ctx, as_json):
            click.echo(json.dumps(data, indent=2))
        else:
            span = f"blocks {result.from_block}..{result.to_block}" if result.blocks else "no new blocks"
            click.echo(f"indexed {span}: {result.events} events, {result.log_calls} eth_getLogs calls, "
                       f"{result.ms:.1f} ms ({index.path})")  # fmt: skip

    @command("verify", "Compare the index with the chain (record counts and heads, grants, request status).")
    def verify(ctx: click.Context, as_json: bool) -> None:
        with open_index(ctx) as index:
            report = index.verify()
        if wants_json(ctx, as_json):
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            click.echo(f"block {report.block}: {report.patients} patients, {report.records} records, "
                       f"{report.grants} grants, {report.requests} requests: "
                       + ("consistent" if report.ok else f"{len(report.problems)} differences"))  # fmt: skip
            for problem in report.problems:
                click.echo(f"  {problem}")
        if not report.ok:
            raise MedvaultError(f"the index differs from the chain in {len(report.problems)} places")

    return group


def _record_line(p: RecordPointer) -> str:
    cid = p.to_json()["cid"]  # its hex when the pointer is unusable
    return f"{p.patient}  #{p.index:<5} {p.category.name.lower():<13} by {p.author}  {cid}  block {p.block_number}"


# -- `medvault query`: the index of the App's home and chain -----------------------------------


def _app(ctx: click.Context) -> App:
    app = ctx.find_object(App)
    if app is None:
        raise ConfigurationError("no medvault context")
    return app


def _open_index(ctx: click.Context) -> EventIndex:
    app = _app(ctx)
    return EventIndex.open(app.home, Chain.open(app.rpc_url, app.home))


@click.group()
def query() -> None:
    """Queries through the local event index (<home>/index/), synced from chain events first."""


query_group(
    _open_index,
    resolve=lambda ctx, value: _app(ctx).address(value),
    json_default=lambda ctx: _app(ctx).as_json,
    group=query,
)

COMMANDS: Sequence[click.Command] = [query]
