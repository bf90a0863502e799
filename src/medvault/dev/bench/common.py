"""What every benchmark shares: samples and their spread, progress on stderr, and fresh local
nodes (one anvil and one Kubo on free loopback ports, a deployment, stopped on exit)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak

from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev import anvil
from medvault.dev.node import LocalNode, NodeInfo, free_port
from medvault.dev.seed import SeedError, SeedPlan, plan_seed, run_seed
from medvault.dev.wallets import dev_wallet
from medvault.errors import ChainUnavailableError
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from medvault.accounts import Wallet

Say = Callable[[str], None]
"""Where a benchmark tells its progress (one line per phase)."""

SEED_ATTEMPTS = (
    3  # seeding is resumable: a run stopped by a mining stall or an unresponsive anvil is finished by the next
)
SETTLE_S = 5.0  # a Kubo just started is busy for seconds


def quiet(_: str) -> None:
    """A ``Say`` that says nothing."""


class Phases:
    """A ``Say`` that prints each phase on stderr with the time since the start."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.1f} s] {message}", file=sys.stderr, flush=True)


def summary(values: list[float], digits: int = 2) -> dict[str, Any]:
    """Median and spread (min, max, 10th and 90th percentiles) of ``values``."""
    ordered = sorted(values)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else ordered * 9
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), digits),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
        "p10": round(deciles[0], digits),
        "p90": round(deciles[-1], digits),
    }


def elapsed_ms(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def timed(runs: int, action: Callable[[], object], digits: int = 2) -> dict[str, Any]:
    """``summary`` of ``runs`` calls of ``action``, in ms."""
    return summary([elapsed_ms(action) for _ in range(runs)], digits)


def bench_wallet(name: str) -> Wallet:
    return dev_wallet(name, keccak(text=f"medvault bench {name}"))


@dataclass
class Node:
    """A fresh local node with the contracts deployed: its client and where it listens."""

    mv: Medvault
    info: NodeInfo
    home: Path

    def client(self) -> Medvault:
        """Another client of the same deployment (its own connections)."""
        return Medvault(
            Chain(self.mv.chain.w3, self.mv.chain.deployment, load_artifacts()), IpfsClient(self.info.ipfs_api)
        )


@contextmanager
def fresh_node(home: Path | None = None, *, fund: tuple[str, ...] = ()) -> Iterator[Node]:
    """A node under ``home`` (a temporary directory by default), deployed by the bench admin,
    with ``fund`` addresses funded; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="medvault-bench-") as tmp:
        where = home or Path(tmp)
        node = LocalNode(where / "node", chain_port=free_port(), ipfs_port=free_port())
        info = node.up()
        try:
            w3 = connect(info.rpc_url)
            admin = bench_wallet("admin")
            anvil.fund_all(w3, [admin.address, *fund])
            deployment, _ = deploy(w3, admin, where)
            yield Node(Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api)), info, where)
        finally:
            node.down()


def seed(node: Node, name: str, patients: int, records: int, say: Say = quiet) -> SeedPlan:
    """Seeds ``patients`` x ``records`` (plan ``name``) onto ``node``, untimed: a run that stops
    on a stalled anvil is resumed, since only what follows the seeding is measured."""
    plan = plan_seed(name, patients, records)
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            report = run_seed(node.mv, node.info.rpc_url, plan)
        except (SeedError, ChainUnavailableError) as e:
            if attempt == SEED_ATTEMPTS:
                raise
            say(f"seeding stopped ({e}); resuming")
        else:
            say(f"seeded {patients} x {records} in {report.seconds:.1f} s")
            break
    return plan
