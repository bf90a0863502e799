"""Seeding end to end against its three parts, each measured alone (``seed_1000x10_s``,
``seed_vs_parts_ratio``), and whether seeding 2,000 x 10 completes (``seed_2000x10_s``,
``seed_2000x10_completed``).

The parts are the work a seed overlaps: sealing (FHIR synthesis and validation, AES, HPKE
wraps, bundles, on the same worker processes the seed uses), the IPFS adds (the same files in
the same wrapped requests) and the chain calls (the same transactions, replayed from the
sealed records). A perfect overlap would take as long as the largest part; no overlap, as long
as their sum. Each figure is the median of ``runs`` runs with its spread. A run measures the
parts on one fresh node, stops it, then seeds another fresh node: one node at a time is up (an
idle seeded anvil still rewrites its state file), and both start from the same state (the same
admin deploys at nonce 0, so the addresses the sealed records are bound to are the same).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from medvault.dev.bench.common import SETTLE_S, Say, fresh_node, quiet, summary
from medvault.dev.seed import SealedChunks, SeedPlan, chunk_files, plan_seed, record_feed, run_seed, seal_job
from medvault.dev.seed.seal import chunk_blobs
from medvault.errors import SeedError

PARTS = ("sealing", "ipfs", "chain")


def _parts(plan: SeedPlan) -> dict[str, Any]:
    """Sealing alone, IPFS adds alone, chain calls alone, one after the other on one fresh node."""
    with fresh_node() as node:
        time.sleep(SETTLE_S)
        mv = node.mv
        started = time.perf_counter()
        with record_feed(mv, [seal_job(mv, plan, q, 0, 0) for q in plan.patients], None) as feed:
            sealed = [chunk for chunk, _ in feed]
        seal_s = time.perf_counter() - started
        captured: SealedChunks = []
        started = time.perf_counter()
        for chunk in sealed:
            captured.append((chunk, mv.ipfs.add_wrapped(chunk_blobs(chunk))[1]))
        ipfs_s = time.perf_counter() - started
        chain = run_seed(mv, node.info.rpc_url, plan, replay=captured)
        files = chunk_files(captured)
        return {
            "sealing": seal_s,
            "ipfs": ipfs_s,
            "chain": chain.seconds,
            "ipfs_files": sum(map(len, files)),
            "ipfs_bytes": sum(len(b) for chunk in files for b in chunk),
            "chain_transactions": chain.transactions,
        }


def measure_seeding(patients: int = 1000, records: int = 10, *, runs: int = 3, say: Say = quiet) -> dict[str, Any]:
    """``runs`` runs of (sealing, IPFS, chain alone; then the seed end to end): the seed's median
    seconds (``seed_{patients}x{records}_s``), each part's spread (``baseline``), and the median
    seed over the sum of the parts' medians and over the largest (a perfect overlap's floor)."""
    plan = plan_seed("bench", patients, records)
    seeds: list[float] = []
    parts: list[dict[str, Any]] = []
    for run in range(1, runs + 1):
        say(f"seeding run {run} of {runs}: sealing, IPFS adds and chain calls alone (fresh node)")
        parts.append(_parts(plan))
        p = parts[-1]
        say(
            f"  sealing {p['sealing']:.1f} s, IPFS {p['ipfs']:.1f} s ({p['ipfs_files']} files), "
            f"chain {p['chain']:.1f} s ({p['chain_transactions']} transactions); seeding end to end (fresh node)"
        )
        with fresh_node() as node:
            time.sleep(SETTLE_S)
            seeds.append(run_seed(node.mv, node.info.rpc_url, plan).seconds)
        say(f"  seeded {patients} x {records} in {seeds[-1]:.1f} s")
    seed_s = statistics.median(seeds)
    baseline = {part: summary([p[part] for p in parts]) for part in PARTS}
    medians = [b["median"] for b in baseline.values()]
    paired = [s / sum(p[part] for part in PARTS) for s, p in zip(seeds, parts, strict=True)]
    return {
        f"seed_{patients}x{records}_s": round(seed_s, 2),
        "seed_runs_s": summary(seeds),
        "baseline": baseline,
        "work": {k: parts[-1][k] for k in ("ipfs_files", "ipfs_bytes", "chain_transactions")},
        "seed_vs_parts_ratio": round(seed_s / sum(medians), 2),
        "seed_vs_parts_ratio_paired": summary(paired),  # seed and parts of the same run
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
