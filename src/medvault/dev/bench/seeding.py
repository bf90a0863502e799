"""Seeding end to end against its three parts, each alone (``seed_1000x10_s``,
``seed_vs_parts_ratio``), and whether seeding 2,000 x 10 completes (``seed_2000x10_s``,
``seed_2000x10_completed``).

Each run uses two fresh nodes, deployed and left to settle first: A is seeded end to end
(capturing what it sealed and the CIDs IPFS gave), then stopped so that it loads nothing
after; on B, the other parts alone: adding the captured files to IPFS in the same wrapped
batches, and the same contract calls (``run_seed(replay=...)``). Sealing runs on the seed's
main thread, overlapped with nothing, so its phase in A's run is its time alone.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from medvault.dev.bench.common import SETTLE_S, Say, fresh_node, quiet, summary
from medvault.dev.seed import SealedChunks, SeedError, chunk_files, plan_seed, run_seed

PARTS = ("sealing", "ipfs", "chain")


def measure_seeding(patients: int = 1000, records: int = 10, *, runs: int = 3, say: Say = quiet) -> dict[str, Any]:
    """``runs`` runs of (seed, sealing alone, IPFS alone, chain alone): the seed's median seconds
    (``seed_{patients}x{records}_s``), each part's median / min / max (``baseline``), and the
    median seed over the sum of the parts' medians and over the largest (a perfect overlap's floor)."""
    plan = plan_seed("bench", patients, records)
    seeds: list[float] = []
    parts: dict[str, list[float]] = {part: [] for part in PARTS}
    for run in range(1, runs + 1):
        with fresh_node() as node_b:
            with fresh_node(Path(node_b.home) / "a") as node_a:
                time.sleep(SETTLE_S)
                say(f"run {run} of {runs}: seeding {patients} x {records} end to end")
                captured: SealedChunks = []
                report = run_seed(node_a.mv, node_a.info.rpc_url, plan, capture=captured)
            seeds.append(report.seconds)
            # Sealing runs on the seed's main thread, overlapped with nothing: its phase is its time alone.
            parts["sealing"].append(report.phases["records: seal"])
            started = time.perf_counter()
            for chunk in chunk_files(captured):
                node_b.mv.ipfs.add_wrapped(chunk)
            parts["ipfs"].append(time.perf_counter() - started)
            parts["chain"].append(run_seed(node_b.mv, node_b.info.rpc_url, plan, replay=captured).seconds)
            say(f"seed {seeds[-1]:.1f} s; alone: " + ", ".join(f"{p} {parts[p][-1]:.1f} s" for p in PARTS))
    seed_s = statistics.median(seeds)
    baseline = {part: summary(times) for part, times in parts.items()}
    medians = [b["median"] for b in baseline.values()]
    return {
        f"seed_{patients}x{records}_s": round(seed_s, 2),
        "seed_runs_s": summary(seeds),
        "baseline": baseline,
        "seed_vs_parts_ratio": round(seed_s / sum(medians), 2),
        "seed_vs_largest_part_ratio": round(seed_s / max(medians), 2),
    }


def measure_seed_2000(runs: int = 5, *, say: Say = quiet) -> dict[str, Any]:
    """``runs`` seedings of 2,000 x 10, each on a fresh node: how many complete, and the median
    seconds of those that do (None if none does)."""
    plan = plan_seed("bench-2000", 2000, 10)
    seconds: list[float] = []
    failures: list[str] = []
    for run in range(1, runs + 1):
        with fresh_node() as node:
            time.sleep(SETTLE_S)
            try:
                seconds.append(run_seed(node.mv, node.info.rpc_url, plan).seconds)
                say(f"2000 x 10, run {run} of {runs}: {seconds[-1]:.1f} s")
            except SeedError as e:
                failures.append(str(e))
                say(f"2000 x 10, run {run} of {runs}: failed ({e})")
    return {
        "seed_2000x10_s": round(statistics.median(seconds), 2) if seconds else None,
        "seed_2000x10_completed": len(seconds),
        "seed_2000x10_runs": runs,
        "seed_2000x10_runs_s": summary(seconds) if seconds else None,
        "seed_2000x10_failures": failures,
    }
