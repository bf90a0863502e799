"""Queries of the local event index on a seeded node: each query type's median, and their max
(``query_100k_ms`` after seeding 10,000 x 10)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from medvault.chain.pipeline import BatchRpc, Method, PipelinedSender
from medvault.dev.bench.common import Say, fresh_node, quiet, seed, timed
from medvault.dev.bench.index import first_sync
from medvault.dev.seed import GAS
from medvault.model import Category, Purpose, RequestStatus, scope_mask

if TYPE_CHECKING:
    from collections.abc import Callable, Sized

    from medvault.dev.bench.common import Node
    from medvault.dev.seed import PatientPlan, SeedPlan
    from medvault.index import EventIndex

DAY = 86_400
QUERY_GRANTS = 1_000  # grants on the node when queries are timed (the seed's, topped up)
SAMPLES = 30


def add_grants(node: Node, plan: SeedPlan, wanted: int = QUERY_GRANTS) -> set[tuple[int, int]]:
    """Tops the seeded grants up to ``wanted`` (patients to providers, all categories, a year, in
    a fixed order); returns every (patient index, provider index) granted."""
    granted = {(q.index, q.grant.provider) for q in plan.grants if q.grant}
    # An approved research request is a grant too (to a researcher, so no pair above).
    missing = max(0, wanted - len(granted) - len(plan.decisions("approve")))
    pairs: list[tuple[PatientPlan, int]] = []
    for shift in range(len(plan.providers)):
        for q in plan.patients:
            provider = (q.index + shift) % len(plan.providers)
            if len(pairs) < missing and (q.index, provider) not in granted:
                granted.add((q.index, provider))
                pairs.append((q, provider))
    if pairs:
        rpc = BatchRpc(node.info.rpc_url)
        sender = PipelinedSender(rpc, node.mv.chain.chain_id)
        now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        grant, everything = Method.of(node.mv.chain.consent, "grant"), scope_mask(frozenset(Category))
        txs = []
        for q, p in pairs:
            args = [plan.providers[p].address, everything, int(Purpose.TREAT), now, now + 365 * DAY, b""]
            txs.append(grant.transaction(q.wallet, args, GAS["grant"], f"extra grant {q.index} -> provider {p}"))
        sender.send(txs)
        sender.settle(wait=True)
    return granted


def time_queries(index: EventIndex, plan: SeedPlan, granted: set[tuple[int, int]]) -> dict[str, Any]:
    """Each query type's ``summary`` over ``SAMPLES`` calls (ms) with the rows it returns, on a
    synced index: the busiest grantee, and a patient with the longest history; then
    ``max_of_medians_ms``. A sync that finds no new block is timed too, outside the max."""
    busiest = Counter(provider for _, provider in granted).most_common(1)[0][0]
    grantee = plan.providers[busiest].address
    patient = max(plan.patients, key=lambda q: (q.request is not None, q.grant is not None)).wallet.address
    queries: dict[str, Callable[[], Sized]] = {
        "records_of": lambda: index.records_of(patient, sync=False),
        "readable_by": lambda: index.readable_by(grantee, sync=False),
        "readers_of": lambda: index.readers_of(patient, sync=False),
        "requests_approved": lambda: index.requests(RequestStatus.APPROVED, sync=False),
        "history": lambda: index.history(patient, sync=False),
    }
    timings = {name: {**timed(SAMPLES, query, 3), "rows": len(query())} for name, query in queries.items()}
    return {
        "queries_ms": timings,
        "max_of_medians_ms": max(t["median"] for t in timings.values()),
        "sync_no_new_blocks_ms": timed(SAMPLES, index.sync, 3),
    }


def measure_queries(patients: int = 10_000, records: int = 10, *, say: Say = quiet) -> dict[str, Any]:
    """Seeds ``patients`` x ``records`` on a fresh node (untimed), tops the grants up to
    ``QUERY_GRANTS``, syncs a new index once, then times the queries (``time_queries``)."""
    with fresh_node() as node:
        say(f"seeding {patients} x {records} for the queries (untimed; long)")
        plan = seed(node, "bench-queries", patients, records, say)
        granted = add_grants(node, plan)
        say(f"first index sync of {patients * records:,} records")
        index, sync = first_sync(node, "queries")
        try:
            say(f"indexed {sync['events']:,} events in {sync['seconds']:.1f} s; timing queries")
            return {"records": patients * records, "first_sync": sync, **time_queries(index, plan, granted)}
        finally:
            index.close()
