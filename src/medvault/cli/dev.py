"""Development commands: ``medvault bench``, ``demo`` and ``seed``.

They import seeding, benchmarks and the demo from :mod:`medvault.dev` inside each command, so
the rest of the CLI never loads them. The benchmarks print their figures as one line of JSON under --json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medvault.dev.bench.common import Say

__all__ = ["COMMANDS", "bench", "demo", "seed"]


@click.group()
def bench() -> None:
    """Benchmarks that print figures (they are not tests)."""


@bench.command("gas")
@json_anywhere
@pass_app
def bench_gas(app: App) -> None:
    """Gas per operation on a fresh anvil, against the budgets."""
    from medvault.dev.gas import BUDGETS, measure_gas

    gas = measure_gas()
    lines = [
        f"{case:<18} {used:>8,}" + (f"   budget {BUDGETS[case]:,}" if BUDGETS[case] else "")
        for case, used in gas.items()
    ]
    app.emit(gas, "\n".join(lines), indent=None)


def _say(app: App) -> Say:
    """Progress on stderr, unless the figures go out as JSON."""
    from medvault.dev.bench.common import Phases, quiet

    return quiet if app.as_json else Phases()


def _ms(s: dict[str, Any], unit: str = "ms") -> str:
    return f"median {s['median']:,g} {unit} (min {s['min']:,g}, max {s['max']:,g}, p90 {s['p90']:,g}, n={s['n']})"


_patients = click.option(
    "--patients",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Patients seeded first (x 10 records).",
)
_runs = click.option(
    "--runs", type=click.IntRange(min=1), default=3, show_default=True, help="Runs, of which the median."
)


@bench.command("release")
@click.option("--runs", type=click.IntRange(min=2), default=20, show_default=True, help="Releases to time.")
@json_anywhere
@pass_app
def bench_release(app: App, runs: int) -> None:
    """Time one record key release from keepers (t = 2 of 3) and one whole read through them."""
    from medvault.dev.bench import measure_release

    figures = measure_release(runs, say=_say(app))
    text = f"key release, t = 2 of 3 keepers: {_ms(figures['release_ms'])}\n"
    app.emit(figures, text + f"whole read through the keepers:  {_ms(figures['read_ms'])}", indent=None)


@bench.command("fetch")
@click.option("--runs", type=click.IntRange(min=2), default=10, show_default=True, help="Reads to time.")
@json_anywhere
@pass_app
def bench_fetch(app: App, runs: int) -> None:
    """Time fetch + verify + decrypt of a 1 MB record against its data floor (cat, CID, sha256, AES)."""
    from medvault.dev.bench import measure_fetch

    f = measure_fetch(runs=runs, say=_say(app))
    pieces = ", ".join(f"{name} {p['median']:,g}" for name, p in f["floor_pieces_ms"].items())
    app.emit(
        f, f"fetch + verify + decrypt 1 MB: {_ms(f['read_ms'])}\ndata floor {f['floor_ms']} ms: {pieces}", indent=None
    )


@bench.command("reads")
@_patients
@json_anywhere
@pass_app
def bench_reads(app: App, patients: int) -> None:
    """Time reading one record of a 200-record patient against a 10-record one, on a seeded node."""
    from medvault.dev.bench import measure_on_seeded_node

    r = measure_on_seeded_node(patients, parts=("reads",), say=_say(app))["reads"]
    text = (
        f"read, {r['long']['records']}-record patient: {_ms(r['long']['read_ms'])}\n"
        f"read, {r['short']['records']}-record patient: {_ms(r['short']['read_ms'])}\n"
        f"growth (median / median): {r['ratio']}"
    )
    app.emit(r, text, indent=None)


@bench.command("index")
@_patients
@_runs
@json_anywhere
@pass_app
def bench_index(app: App, patients: int, runs: int) -> None:
    """Time the first sync of a new event index on a seeded node, in events per second."""
    from medvault.dev.bench import measure_on_seeded_node

    r = measure_on_seeded_node(patients, parts=("index",), runs=runs, say=_say(app))["index_sync"]
    text = f"first sync of {r['events']:,} events: {_ms(r['seconds'], 's')}\n{r['events_per_s']:,} events / s"
    app.emit(r, text, indent=None)


@bench.command("verify")
@_patients
@_runs
@json_anywhere
@pass_app
def bench_verify(app: App, patients: int, runs: int) -> None:
    """Time verify --patient of a 200-record patient on a seeded node."""
    from medvault.dev.bench import measure_on_seeded_node

    r = measure_on_seeded_node(patients, parts=("verify",), runs=runs, say=_say(app))["verify"]
    app.emit(r, f"verify --patient, {r['records']} records: {_ms(r['seconds'], 's')}", indent=None)


@bench.command("seeding")
@_patients
@_runs
@json_anywhere
@pass_app
def bench_seeding(app: App, patients: int, runs: int) -> None:
    """Time seeding end to end against sealing, IPFS adds and chain calls, each alone."""
    from medvault.dev.bench import measure_seeding

    r = measure_seeding(patients, 10, runs=runs, say=_say(app))
    parts = "\n".join(f"  {part} alone: {_ms(b, 's')}" for part, b in r["baseline"].items())
    text = (
        f"seed {patients} x 10: {r[f'seed_{patients}x10_s']} s\n{parts}\n"
        f"seed / sum of parts {r['seed_vs_parts_ratio']}, seed / largest part {r['seed_vs_largest_part_ratio']}"
    )
    app.emit(r, text, indent=None)


@bench.command("queries")
@click.option(
    "--patients", type=click.IntRange(min=1), default=10_000, show_default=True, help="Patients (x 10 records)."
)
@json_anywhere
@pass_app
def bench_queries(app: App, patients: int) -> None:
    """Seed a fresh node (10,000 x 10 by default: long), sync an index, time each query type."""
    from medvault.dev.bench import measure_queries

    r = measure_queries(patients, say=_say(app))
    lines = [f"{name:<18} {q['median']:>8} ms median ({q['rows']} rows)" for name, q in r["queries_ms"].items()]
    app.emit(r, "\n".join([*lines, f"max of medians: {r['max_of_medians_ms']} ms"]), indent=None)


@bench.command("all")
@click.option("--quick", is_flag=True, help="Leave out seeding 2,000 x 10 and the queries at 100,000 records.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the figures as JSON here.")
@json_anywhere
@pass_app
def bench_all(app: App, quick: bool, output: Path | None) -> None:
    """Every figure of the benchmark on fresh local nodes: a table against the targets, with
    spreads and baselines; progress on stderr. Takes many minutes (--quick: fewer)."""
    from medvault.dev.bench import format_table, measure_all
    from medvault.dev.bench.common import Phases

    results = measure_all(quick=quick, say=Phases())
    if output is not None:
        output.write_text(json.dumps(results, indent=2) + "\n")
    written = f"\nfigures written to {output}" if output is not None else ""
    app.emit(results, format_table(results["targets"]) + written, indent=None)


@click.command()
@json_anywhere
@pass_app
def demo(app: App) -> None:
    """Run the patient / provider / doctor story on a fresh local chain and IPFS node."""
    from medvault.dev.demo import run_demo

    run_demo(as_json=app.as_json)


@click.command()
@click.option("--patients", "-n", type=click.IntRange(min=1), default=100, show_default=True, help="Patients.")
@click.option("--records-per-patient", "-r", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--seed", "-s", default="0", show_default=True, help="Seed value: the same seed, the same plan.")
@click.option("--account", "-a", help="Admin keystore account that accredits (default: the deployer, impersonated).")
@json_anywhere
@pass_app
def seed(app: App, patients: int, records_per_patient: int, seed: str, account: str | None) -> None:
    """Fill a local anvil deployment with synthetic patients, records and consent (resumable)."""
    from medvault.dev.seed import plan_seed, run_seed

    plan = plan_seed(seed, patients, records_per_patient)
    admin = app.unlock(account) if account else None
    report = run_seed(app.client, app.rpc_url, plan, admin=admin, progress=not app.as_json)
    summary = ", ".join(f"{k} {v}" for k, v in report.done.items())
    app.emit(report.to_json(), f"seeded in {report.seconds:.1f} s: {summary} ({report.transactions} transactions)")


COMMANDS: Sequence[click.Command] = [bench, demo, seed]
