"""What of a seeding plan the chain already holds, read in JSON-RPC batches: so that a run
does only what is missing (see ``medvault.dev.seed``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medvault.chain.pipeline import BatchRpc, Method
from medvault.model import RequestStatus

if TYPE_CHECKING:
    from medvault.chain import Chain
    from medvault.dev.seed.plan import SeedPlan

__all__ = ["ChainState", "read_requests", "read_state", "seed_state"]

# An AccessRequested event's fields that, with its studyId, make the request tuple.
REQUEST_FIELDS = ("patient", "researcher", "scopes", "purpose", "duration", "requestedAt")


@dataclass
class ChainState:
    """What of a plan the chain holds."""

    registered: set[str]
    providers: set[str]
    researchers: set[str]
    granted: set[int]  # patient indexes whose planned grant is on chain
    requests: dict[int, tuple[tuple[Any, ...], RequestStatus]]  # patient index -> (request tuple, status)
    counts: list[int]  # records in each patient's log
    writers: set[int]  # patient indexes whose planned author is on their care team
    seqs: list[int]  # the planned author's next sequence number in each patient's log


def read_state(chain: Chain, rpc: BatchRpc, plan: SeedPlan) -> ChainState:
    wallets = [*plan.providers, *plan.researchers, *(p.wallet for p in plan.patients)]
    key_hash = Method.of(chain.participants, "encryptionKeyHash")
    keys = rpc.eth_calls([(key_hash, [w.address]) for w in wallets])
    is_provider, is_researcher = (
        Method.of(chain.participants, "isProvider"),
        Method.of(chain.participants, "isResearcher"),
    )
    roles = rpc.eth_calls([(is_provider, [w.address]) for w in plan.providers])
    roles += rpc.eth_calls([(is_researcher, [w.address]) for w in plan.researchers])
    grants = plan.grants
    grant_of = Method.of(chain.consent, "grantOf")
    grant_words = rpc.eth_calls(
        [(grant_of, [g.wallet.address, plan.providers[g.grant.provider].address]) for g in grants if g.grant]
    )
    log_of = Method.of(chain.records, "logOf")
    logs = rpc.eth_calls([(log_of, [q.wallet.address]) for q in plan.patients])
    writer_of = Method.of(chain.records, "writerOf")
    writers = rpc.eth_calls([(writer_of, [q.wallet.address, plan.providers[q.author].address]) for q in plan.patients])
    return ChainState(
        registered={w.address for w, (k,) in zip(wallets, keys, strict=True) if k != bytes(32)},
        providers={w.address for w, (ok,) in zip(plan.providers, roles, strict=False) if ok},
        researchers={w.address for w, (ok,) in zip(plan.researchers, roles[len(plan.providers) :], strict=True) if ok},
        granted={g.index for g, ((_, until, *_),) in zip(grants, grant_words, strict=True) if until != 0},
        requests=read_requests(chain, rpc, plan),
        counts=[int(count) for _, count in logs],
        writers={q.index for q, (categories, _) in zip(plan.patients, writers, strict=True) if categories},
        seqs=[int(seq) for _, seq in writers],
    )


def read_requests(chain: Chain, rpc: BatchRpc, plan: SeedPlan) -> dict[int, tuple[tuple[Any, ...], RequestStatus]]:
    """The planned requests already made (matched by patient, researcher and study), with status."""
    wanted = {
        (q.wallet.address, plan.researchers[q.request.researcher].address, q.request.study): q.index
        for q in plan.requests
        if q.request
    }
    found: dict[int, tuple[Any, ...]] = {}
    ids: list[int] = []
    for researcher in {plan.researchers[q.request.researcher].address for q in plan.requests if q.request}:
        for event in chain.events("ConsentManager", "AccessRequested", researcher=researcher):
            a = event["args"]
            index = wanted.get((a["patient"], a["researcher"], bytes(a["studyId"])))
            if index is not None and index not in found:
                found[index] = (*(a[k] for k in REQUEST_FIELDS), bytes(a["studyId"]))
                ids.append(a["requestId"])
    request_status = Method.of(chain.consent, "requestStatus")
    statuses = rpc.eth_calls([(request_status, [i]) for i in ids])
    return {index: (request, RequestStatus(s)) for (index, request), (s,) in zip(found.items(), statuses, strict=True)}


def seed_state(chain: Chain, rpc_url: str, plan: SeedPlan) -> dict[str, Any]:
    """What of ``plan`` the chain holds now, in the terms of ``SeedPlan.summary``."""
    state = read_state(chain, BatchRpc(rpc_url), plan)
    statuses = [s for _, s in state.requests.values()]
    return {
        "registered": len(state.registered),
        "providers": len(state.providers),
        "researchers": len(state.researchers),
        "records": sum(state.counts),
        "record_counts": state.counts,
        "grants": len(state.granted),
        "requests": len(state.requests),
        "approved": statuses.count(RequestStatus.APPROVED),
        "denied": statuses.count(RequestStatus.DENIED),
        "pending": statuses.count(RequestStatus.PENDING),
    }
