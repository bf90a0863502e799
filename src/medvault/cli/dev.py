"""Development commands: ``medvault bench``, ``demo`` and ``seed``.

They import seeding, benchmarks and the demo from :mod:`medvault.dev` inside each command, so
the rest of the CLI never loads them. The benchmarks print their figures as one line of JSON under --json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medvault.cli.app import App, pass_app
from medvault.cli.options import json_anywhere

if TYPE_CHECKING:
    from collections.abc import Sequence

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


@bench.command("release")
@click.option("--runs", default=20, show_default=True, help="Releases to time.")
@json_anywhere
@pass_app
def bench_release(app: App, runs: int) -> None:
    """Time one record key release from keepers (t = 2 of 3) and one whole read."""
    from medvault.dev.bench import measure_release

    figures = measure_release(runs)
    app.emit(
        figures,
        f"key release, t = 2 of 3 keepers:  median {figures['release_median_ms']} ms, "
        f"p90 {figures['release_p90_ms']} ms ({runs} runs)\n"
        f"whole read through the keepers:   median {figures['read_median_ms']} ms, "
        f"p90 {figures['read_p90_ms']} ms",
        indent=None,
    )


@bench.command("all")
@click.option("--patients", type=click.IntRange(min=1), default=1000, show_default=True, help="Patients to seed.")
@click.option("--records", type=click.IntRange(min=1), default=10, show_default=True, help="Records per patient.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the figures as JSON here.")
@json_anywhere
@pass_app
def bench_all(app: App, patients: int, records: int, output: Path | None) -> None:
    """Every figure of the benchmark (gas, seeding against its baselines, queries, record I/O)
    on fresh local nodes; a table against the targets, progress on stderr."""
    from medvault.dev.bench import format_table, measure_all

    results = measure_all(patients, records, progress=True)
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
