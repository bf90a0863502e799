"""The seeding benchmark: seeding end to end against its three parts, each measured alone.

The parts are the work a seed overlaps: sealing (FHIR synthesis and validation, AES, HPKE
wraps, bundles, on the same worker processes the seed uses), the IPFS adds (the same files in
the same wrapped requests) and the chain calls (the same transactions, replayed from the
sealed records). A perfect overlap would take as long as the largest part; no overlap, as long
as their sum. Each figure is the median of ``runs`` runs with its spread; a run measures the
parts on one fresh node, stops it, then seeds another fresh node, so that one node at a time
is up (an idle seeded anvil still rewrites its state file) and both start from the same state.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak

from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev import anvil
from medvault.dev.node import LocalNode, free_port
from medvault.dev.seed import SealedChunks, SeedPlan, chunk_files, plan_seed, record_feed, run_seed, seal_job
from medvault.dev.seed.seal import chunk_blobs
from medvault.dev.wallets import dev_wallet
from medvault.errors import SeedError
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Callable

    from medvault.dev.node import NodeInfo

__all__ = ["measure_seed_2000", "measure_seeding"]

SETTLE_S = 3.0  # after a node starts and is deployed to: a Kubo just started is busy for seconds


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
        "runs": [round(v, 2) for v in values],
    }


class _Node:
    """A fresh local node with the contracts deployed (by the same admin at nonce 0, so every
    such node has the same addresses, which sealed records are bound to)."""

    def __init__(self, home: Path) -> None:
        self.node = LocalNode(home / "node", chain_port=free_port(), ipfs_port=free_port())
        self.info: NodeInfo = self.node.up()
        try:
            w3 = connect(self.info.rpc_url)
            admin = dev_wallet("admin", keccak(text="medvault bench all admin"))
            anvil.fund(w3, admin.address, 10**22)
            deployment, _ = deploy(w3, admin, home)
            self.mv = Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(self.info.ipfs_api))
        except BaseException:
            self.node.down()
            raise
        time.sleep(SETTLE_S)

    def __enter__(self) -> _Node:
        return self

    def __exit__(self, *_: object) -> None:
        self.node.down()


def _parts(plan: SeedPlan, home: Path) -> dict[str, Any]:
    """Sealing alone, IPFS adds alone, chain calls alone, one after the other on one fresh node."""
    with _Node(home) as p:
        started = time.perf_counter()
        with record_feed(p.mv, [seal_job(p.mv, plan, q, 0, 0) for q in plan.patients], None) as feed:
            sealed = [chunk for chunk, _ in feed]
        seal_s = time.perf_counter() - started
        captured: SealedChunks = []
        started = time.perf_counter()
        for chunk in sealed:
            captured.append((chunk, p.mv.ipfs.add_wrapped(chunk_blobs(chunk))[1]))
        ipfs_s = time.perf_counter() - started
        chain = run_seed(p.mv, p.info.rpc_url, plan, replay=captured)
        files = chunk_files(captured)
        return {
            "seal_s": seal_s,
            "ipfs_s": ipfs_s,
            "chain_s": chain.seconds,
            "ipfs_files": sum(map(len, files)),
            "ipfs_bytes": sum(len(b) for chunk in files for b in chunk),
            "chain_transactions": chain.transactions,
            "chain_phases": chain.to_json()["phases"],
        }


def measure_seeding(
    patients: int,
    records: int,
    *,
    runs: int = 3,
    say: Callable[[str], None] = print,
    after_seed: Callable[[Medvault, str, SeedPlan, Path], Any] | None = None,
) -> dict[str, Any]:
    """Seeding ``patients`` x ``records`` end to end and its parts alone, ``runs`` times each
    (see the module docstring). ``after_seed`` is called on the last seeded node before it
    stops (the query benchmark uses it); what it returns is under ``after_seed``."""
    plan = plan_seed("bench", patients, records)
    seeds: list[float] = []
    parts: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="medvault-bench-seeding-") as tmp:
        for run in range(runs):
            say(f"seeding run {run + 1} of {runs}: sealing, IPFS adds and chain calls alone (fresh node)")
            part = _parts(plan, Path(tmp) / f"parts-{run}")
            parts.append(part)
            say(
                f"  seal {part['seal_s']:.1f} s, IPFS {part['ipfs_s']:.1f} s ({part['ipfs_files']} files), "
                f"chain {part['chain_s']:.1f} s ({part['chain_transactions']} transactions)"
            )
            say(f"  seeding {patients} x {records} end to end (another fresh node)")
            home = Path(tmp) / f"seed-{run}"
            with _Node(home) as s:
                report = run_seed(s.mv, s.info.rpc_url, plan)
                seeds.append(report.seconds)
                say(f"  seeded in {report.seconds:.1f} s ({report.transactions} transactions)")
                if run == runs - 1:
                    results["seed"] = report.to_json()
                    if after_seed is not None:
                        results["after_seed"] = after_seed(s.mv, s.info.rpc_url, plan, home)
    medians = {k: statistics.median(p[f"{k}_s"] for p in parts) for k in ("seal", "ipfs", "chain")}
    seed_s = statistics.median(seeds)
    results[f"seed_{patients}x{records}_s"] = round(seed_s, 2)
    results["seed_runs_s"] = _spread(seeds)
    results["baseline"] = {
        "seal_alone_s": _spread([p["seal_s"] for p in parts]),
        "ipfs_alone_s": _spread([p["ipfs_s"] for p in parts]),
        "chain_alone_s": _spread([p["chain_s"] for p in parts]),
        "parts_sum_s": round(sum(medians.values()), 2),
        "largest_part": max(medians, key=lambda k: medians[k]),
        "largest_part_s": round(max(medians.values()), 2),
        **{k: parts[-1][k] for k in ("ipfs_files", "ipfs_bytes", "chain_transactions", "chain_phases")},
    }
    results["seed_vs_parts_ratio"] = round(seed_s / sum(medians.values()), 2)
    results["seed_vs_largest_part_ratio"] = round(seed_s / max(medians.values()), 2)
    # The same ratio run by run (seed and parts of one run), for its spread.
    paired = [s / (p["seal_s"] + p["ipfs_s"] + p["chain_s"]) for s, p in zip(seeds, parts, strict=True)]
    results["seed_vs_parts_ratio_runs"] = _spread(paired)
    return results


def measure_seed_2000(runs: int = 5, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Seeding 2,000 x 10 on a fresh node, ``runs`` times: the median seconds of the runs that
    completed, and how many did (a run that stops with ``SeedError`` did not)."""
    seconds: list[float] = []
    failures: list[str] = []
    plan = plan_seed("bench", 2000, 10)
    with tempfile.TemporaryDirectory(prefix="medvault-bench-seed2000-") as tmp:
        for run in range(runs):
            with _Node(Path(tmp) / f"run-{run}") as s:
                try:
                    report = run_seed(s.mv, s.info.rpc_url, plan)
                except SeedError as exc:
                    failures.append(str(exc))
                    say(f"seed 2000 x 10, run {run + 1} of {runs}: failed: {exc}")
                    continue
                seconds.append(report.seconds)
                say(f"seed 2000 x 10, run {run + 1} of {runs}: {report.seconds:.1f} s")
    return {
        "seed_2000x10_s": round(statistics.median(seconds), 2) if seconds else None,
        "seed_2000x10_completed": len(seconds),
        "seed_2000x10_runs": runs,
        "seed_2000x10_runs_s": [round(s, 2) for s in seconds],
        "seed_2000x10_failures": failures,
    }
