"""The first sync of a new event index on a seeded node (``index_sync_events_per_s``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from medvault.dev.bench.common import Say, quiet, summary
from medvault.index import EventIndex

if TYPE_CHECKING:
    from medvault.dev.bench.common import Node


def first_sync(node: Node, name: str) -> tuple[EventIndex, dict[str, Any]]:
    """A new index of ``node``'s chain (its own directory ``name``), synced once: the index (the
    caller closes it) and the sync's events, blocks and seconds."""
    index = EventIndex.open(node.home / "indexes" / name, node.mv.chain)
    started = time.perf_counter()
    synced = index.sync()
    seconds = time.perf_counter() - started
    return index, {"events": synced.events, "blocks": synced.blocks, "log_calls": synced.log_calls, "seconds": seconds}


def measure_index_sync(node: Node, runs: int = 3, *, say: Say = quiet) -> dict[str, Any]:
    """``runs`` first syncs, each into a new index: events indexed per second of the median
    sync, and the spread of the runs' rates."""
    syncs = []
    for run in range(runs):
        index, sync = first_sync(node, f"sync-{run}")
        index.close()
        syncs.append(sync)
        say(f"first sync {run + 1} of {runs}: {sync['events']:,} events in {sync['seconds']:.1f} s")
    events = syncs[0]["events"]
    seconds = summary([s["seconds"] for s in syncs])
    return {
        "events": events,
        "blocks": syncs[0]["blocks"],
        "seconds": seconds,
        "events_per_s": round(events / seconds["median"]),
        "runs_events_per_s": summary([s["events"] / s["seconds"] for s in syncs], 0),
    }
