"""Benchmarks that print figures, each against its target and, where there is one, its floor or
baseline, each the median of several runs with its spread. One module per path:

* ``release``: a key release from keepers, t = 2 of 3 (``release_ms``);
* ``reads``: reading one record of a 200-record patient against a 10-record one
  (``read_growth_200_vs_10``), and fetch + verify + decrypt of 1 MB against its data floor
  (``fetch_verify_decrypt_1mb_ms``);
* ``index``: the first sync of a new event index (``index_sync_events_per_s``);
* ``verify``: ``verify --patient`` of 200 records (``verify_200_s``);
* ``seeding``: seeding against sealing, IPFS and chain alone, and 2,000 x 10 (``seed_*``);
* ``queries``: index queries after seeding 10,000 x 10 (``query_100k_ms``).

Gas per operation is in ``medvault.dev.gas``. ``measure_all`` runs everything on fresh local
nodes (``make bench``); ``targets`` and ``format_table`` give the table it prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from medvault.dev.bench.common import Say, fresh_node, quiet, seed
from medvault.dev.bench.index import measure_index_sync
from medvault.dev.bench.queries import add_grants, measure_queries
from medvault.dev.bench.reads import measure_fetch, measure_read_growth
from medvault.dev.bench.release import measure_release
from medvault.dev.bench.seeding import measure_seed_2000, measure_seeding
from medvault.dev.bench.verify import measure_verify
from medvault.dev.gas import BUDGETS, measure_gas

__all__ = [
    "TARGETS",
    "Target",
    "format_table",
    "measure_all",
    "measure_fetch",
    "measure_on_seeded_node",
    "measure_queries",
    "measure_release",
    "measure_seed_2000",
    "measure_seeding",
    "targets",
]

LONG_LOG = 200  # records of the long patient that reads and verify are timed on


@dataclass(frozen=True)
class Target:
    key: str  # in bench-results.json
    figure: str
    limit: float
    at_least: bool = False  # the figure must be >= limit (else <=)

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.limit if self.at_least else value <= self.limit

    @property
    def shown(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.limit:,g}"


TARGETS = (
    Target("release_ms", "key release, t = 2 of 3, loopback, median (ms)", 20),
    Target("read_growth_200_vs_10", "read a record: 200-record / 10-record patient", 1.2),
    Target("fetch_verify_decrypt_1mb_ms", "fetch + verify + decrypt 1 MB, median (ms)", 10),
    Target("index_sync_events_per_s", "first index sync (events / s)", 5000, at_least=True),
    Target("verify_200_s", "verify --patient, 200 records (s)", 1.5),
    Target("seed_1000x10_s", "seed 1,000 x 10, median (s)", 6),
    Target("seed_vs_parts_ratio", "seed / (sealing + IPFS + chain, each alone)", 0.75),
    Target("seed_2000x10_s", "seed 2,000 x 10, median of completed runs (s)", 15),
    Target("seed_2000x10_completed", "seed 2,000 x 10 runs completed", 5, at_least=True),
    Target("query_100k_ms", "query at 100,000 records, max of medians (ms)", 5),
)


def measure_on_seeded_node(
    patients: int = 1000,
    records: int = 10,
    *,
    parts: tuple[str, ...] = ("index", "verify", "reads"),
    runs: int = 3,
    long_log: int = LONG_LOG,
    say: Say = quiet,
) -> dict[str, Any]:
    """On one fresh node seeded with ``patients`` x ``records`` (grants topped up as for the
    queries) and one more patient with a ``long_log``-record log, the ``parts`` asked for: the
    first index sync, verify of the long patient, and reads of a short patient against the long one."""
    with fresh_node() as node:
        say(f"seeding {patients} x {records} and one patient with {long_log} records (untimed)")
        plan = seed(node, "bench", patients, records, say)
        add_grants(node, plan)
        long = seed(node, "bench-long", 1, long_log, say).patients[0].wallet
        results: dict[str, Any] = {"patients": patients, "records_per_patient": records, "long_log": long_log}
        if "index" in parts:
            say("first index syncs")
            results["index_sync"] = measure_index_sync(node, runs, say=say)
        if "verify" in parts:
            say(f"verify --patient, {long_log} records")
            results["verify"] = measure_verify(node.mv, long.address, runs, say=say)
        if "reads" in parts:
            short = plan.patients[0].wallet
            results["reads"] = measure_read_growth(node.mv, (short, records), (long, long_log), say=say)
        return results


def measure_all(*, quick: bool = False, say: Say = quiet) -> dict[str, Any]:
    """Every figure of the benchmark, on fresh local nodes started and stopped here, with the
    top-level keys of ``TARGETS`` and the rows of ``targets``. ``quick`` leaves out the longest
    (seeding 2,000 x 10 five times, and the queries at 100,000 records): their keys are None."""
    say("gas per operation (own anvil)")
    results: dict[str, Any] = {"gas": measure_gas()}
    say("key release (own node, 3 keepers)")
    results["release"] = measure_release(say=say)
    say(f"release: {results['release']['release_ms']}")
    say("fetch + verify + decrypt 1 MB and its floor (own node)")
    results["fetch"] = measure_fetch(say=say)
    say(f"fetch: {results['fetch']['read_ms']}, floor {results['fetch']['floor_ms']} ms")
    results["seeded"] = measure_on_seeded_node(say=say)
    say(f"reads: {results['seeded']['reads']['ratio']}; verify: {results['seeded']['verify']['seconds']}")
    say("seeding 1,000 x 10 against its parts alone, 3 runs")
    results["seeding"] = measure_seeding(1000, 10, say=say)
    seeding = results["seeding"]
    say(f"seeding: {seeding['seed_1000x10_s']} s, seed / parts {seeding['seed_vs_parts_ratio']}, {seeding['baseline']}")
    results["seed_2000"] = None if quick else measure_seed_2000(say=say)
    results["queries"] = None if quick else measure_queries(say=say)
    results.update(_headline(results))
    results["targets"] = targets(results)
    say("done")
    return results


def _headline(r: dict[str, Any]) -> dict[str, Any]:
    """The top-level keys of ``TARGETS``, from the detailed results."""
    seeded, seeding, seed_2000, queries = r["seeded"], r["seeding"], r["seed_2000"], r["queries"]
    return {
        "release_ms": r["release"]["release_ms"]["median"],
        "read_growth_200_vs_10": seeded["reads"]["ratio"],
        "fetch_verify_decrypt_1mb_ms": r["fetch"]["read_ms"]["median"],
        "index_sync_events_per_s": seeded["index_sync"]["events_per_s"],
        "verify_200_s": seeded["verify"]["seconds"]["median"],
        "seed_1000x10_s": seeding["seed_1000x10_s"],
        "seed_vs_parts_ratio": seeding["seed_vs_parts_ratio"],
        "seed_2000x10_s": seed_2000 and seed_2000["seed_2000x10_s"],
        "seed_2000x10_completed": seed_2000 and seed_2000["seed_2000x10_completed"],
        "query_100k_ms": queries and queries["max_of_medians_ms"],
    }


def _spread(s: dict[str, Any], unit: str = "") -> str:
    return f"{s['min']:,g}-{s['max']:,g}{unit} (n={s['n']})"


def _context(r: dict[str, Any], key: str) -> tuple[str, str]:
    """The spread and the baseline shown with figure ``key`` (empty where a part did not run)."""
    seeded, seeding, seed_2000, queries = r["seeded"], r["seeding"], r["seed_2000"], r["queries"]
    if key == "release_ms":
        s = r["release"]["release_ms"]
        return _spread(s) + f", p90 {s['p90']:,g}", "estimated floor about 5-8 ms (batched reads, HPKE, Shamir)"
    if key == "read_growth_200_vs_10":
        reads = seeded["reads"]
        short, long, paired = reads["short"], reads["long"], reads["paired_ratio"]
        return (
            f"pairs p10-p90 {paired['p10']:,g}-{paired['p90']:,g} (n={paired['n']})",
            f"{long['records']}-record read {long['read_ms']['median']:,g} ms, "
            f"{short['records']}-record read {short['read_ms']['median']:,g} ms",
        )
    if key == "fetch_verify_decrypt_1mb_ms":
        f = r["fetch"]
        pieces = " + ".join(f"{name} {p['median']:,g}" for name, p in f["floor_pieces_ms"].items())
        return _spread(f["read_ms"]), f"data floor {f['floor_ms']:,g} ms ({pieces}), same node"
    if key == "index_sync_events_per_s":
        sync = seeded["index_sync"]
        rates = sync["runs_events_per_s"]
        return _spread(rates), f"{sync['events']:,} events in {sync['seconds']['median']:,g} s"
    if key == "verify_200_s":
        return _spread(seeded["verify"]["seconds"]), f"on a {seeded['patients']:,}-patient node"
    if key == "seed_1000x10_s":
        return _spread(seeding["seed_runs_s"]) if "seed_runs_s" in seeding else "", ""
    if key == "seed_vs_parts_ratio":
        parts = " + ".join(
            f"{p} {b['median']:,g} ({b['min']:,g}-{b['max']:,g})" for p, b in seeding["baseline"].items()
        )
        return f"vs largest part {seeding['seed_vs_largest_part_ratio']:,g}", f"parts alone (s): {parts}"
    if key == "seed_2000x10_s" and seed_2000 and seed_2000.get("seed_2000x10_runs_s"):
        return _spread(seed_2000["seed_2000x10_runs_s"]), ""
    if key == "seed_2000x10_completed" and seed_2000:
        return f"of {seed_2000.get('seed_2000x10_runs', 5)} runs", ""
    if key == "query_100k_ms" and queries:
        slowest = max(queries["queries_ms"].items(), key=lambda q: q[1]["median"])
        return (
            f"slowest: {slowest[0]}, p10-p90 {slowest[1]['p10']:,g}-{slowest[1]['p90']:,g}",
            f"{queries['first_sync']['events']:,} events indexed in {queries['first_sync']['seconds']:,.1f} s",
        )
    return "", ""


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure of ``TARGETS``, then one per gas case: key, figure, value, spread,
    baseline, target and met (None where the figure was not measured or has no target)."""
    rows = []
    for t in TARGETS:
        value = results.get(t.key)
        spread, baseline = _context(results, t.key) if value is not None else ("", "")
        rows.append(
            {"key": t.key, "figure": t.figure, "value": value, "spread": spread, "baseline": baseline}
            | {"target": t.shown, "met": t.met(value)}
        )
    for case, used in results["gas"].items():
        budget = BUDGETS[case]
        rows.append(
            {"key": f"gas.{case}", "figure": f"gas {case}", "value": used, "spread": "", "baseline": ""}
            | {"target": f"<= {budget:,}" if budget else "", "met": used <= budget if budget else None}
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a table: figure, value, target, met, spread; each baseline on the line below."""
    width = max(len(r["figure"]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>10}  {'target':<9}  {'met':<3}  spread", "-" * (width + 60)]
    for r in rows:
        value = "skipped" if r["value"] is None else f"{r['value']:,}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"{r['figure']:<{width}}  {value:>10}  {r['target']:<9}  {met:<3}  {r['spread']}".rstrip())
        if r["baseline"]:
            lines.append(f"    baseline: {r['baseline']}")
    return "\n".join(lines)
