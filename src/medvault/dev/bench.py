"""Benchmarks that print figures: key release, record I/O, seeding, queries and reads, each
against its target (gas per operation is in ``medvault.dev.gas``)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_utils.crypto import keccak

from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.chain.pipeline import BatchRpc, Method, PipelinedSender
from medvault.client import Medvault
from medvault.client.consent_sig import ConsentChange
from medvault.crypto import RecordContext, encrypt_record, new_record_key
from medvault.dev import anvil
from medvault.dev.gas import BUDGETS, measure_gas
from medvault.dev.node import LocalNode, free_port
from medvault.dev.seed import GAS, PatientPlan, SealedChunks, SeedPlan, chunk_files, plan_seed, run_seed
from medvault.dev.wallets import dev_wallet
from medvault.index import EventIndex
from medvault.ipfs import IpfsClient
from medvault.keeper import KeeperService
from medvault.model import ALL_CATEGORIES, Category, Purpose, RequestStatus, Role, scope_mask

if TYPE_CHECKING:
    from medvault.accounts import Wallet

__all__ = ["format_table", "measure_all", "measure_record_io", "measure_release", "targets"]

DAY = 86_400


def measure_release(runs: int = 20) -> dict[str, float]:
    """Milliseconds to obtain one record key from keepers (t = 2 of 3, all up, on loopback):
    signed requests to every keeper, their on-chain checks, unwrap and combine; and the
    whole read (chain check, fetch, verify, release, decrypt). Median and 90th percentile."""
    with tempfile.TemporaryDirectory(prefix="medvault-bench-") as tmp:
        home = Path(tmp)
        node = LocalNode(home / "node", chain_port=free_port(), ipfs_port=free_port())
        info = node.up()
        keepers: list[KeeperService] = []
        try:
            w3 = connect(info.rpc_url)
            names = ("admin", "patient", "provider", "reader", "keeper-1", "keeper-2", "keeper-3")
            wallets = {n: dev_wallet(n, keccak(text=f"medvault release bench {n}")) for n in names}
            anvil.fund_all(w3, [wallet.address for wallet in wallets.values()])
            deployment, _ = deploy(w3, wallets["admin"], home)

            def client() -> Medvault:
                return Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api))

            mv = client()
            for name in names[1:]:
                mv.register(wallets[name])
            mv.accredit(wallets["admin"], wallets["provider"].address, Role.PROVIDER)
            for name in names[4:]:
                port = free_port()
                keepers.append(
                    KeeperService(
                        wallets[name], client(), home / name, port=port, announce=f"http://127.0.0.1:{port}"
                    ).start()
                )
            patient, reader = wallets["patient"], wallets["reader"]
            mv.set_keepers(patient, [str(k.address) for k in keepers], 2)
            mv.set_writer(
                patient, wallets["provider"].address, frozenset(Category)
            )  # a provider writes on its care team
            pointer = mv.add_record(
                wallets["provider"], patient.address, b'{"resourceType":"Observation"}', Category.LABORATORY
            ).pointer
            # A grant that shares no keys: every key the reader gets comes from the keepers.
            now = mv.now()
            mv.submit(
                patient,
                ConsentChange(
                    "Grant",
                    {
                        "patient": patient.address,
                        "grantee": reader.address,
                        "scopes": ALL_CATEGORIES,
                        "purpose": int(Purpose.TREAT),
                        "validFrom": now,
                        "validUntil": now + DAY,
                        "keysCid": b"",
                    },
                ),
            )
            release = _timed(runs, lambda: mv.release_key(reader, pointer))
            read = _timed(runs, lambda: mv.read_record(reader, patient.address, pointer.index))
            return {
                "runs": runs,
                **{f"release_{k}": v for k, v in release.items()},
                **{f"read_{k}": v for k, v in read.items()},
            }
        finally:
            for keeper in keepers:
                keeper.stop()
            node.down()


def _timed(runs: int, action: Any, digits: int = 1) -> dict[str, float]:
    """Median and 90th percentile of ``runs`` calls of ``action``, in ms."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), digits), "p90_ms": round(times[int(0.9 * (runs - 1))], digits)}


def measure_record_io(size: int = 1 << 20, runs: int = 10) -> dict[str, float]:
    """Fetch + verify + decrypt of one ``size``-byte record by its patient (median and p90 ms),
    and sealing throughput against raw AES-256-GCM on the same bytes (MB/s)."""
    payload = os.urandom(size)
    context = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "22" * 20, 0)
    key, nonce = new_record_key(), os.urandom(12)
    sealed, raw = 0.0, 0.0
    for _ in range(3):  # interleaved, best of three: the machine's other work is noise
        sealed = max(sealed, _throughput(size, lambda: encrypt_record(payload, key, context)))
        raw = max(raw, _throughput(size, lambda: AESGCM(key).encrypt(nonce, payload, context.associated_data())))
    with tempfile.TemporaryDirectory(prefix="medvault-bench-") as tmp:
        home = Path(tmp)
        node = LocalNode(home / "node", chain_port=free_port(), ipfs_port=free_port())
        info = node.up()
        try:
            w3 = connect(info.rpc_url)
            admin, patient = (dev_wallet(n, keccak(text=f"medvault io bench {n}")) for n in ("a", "p"))
            anvil.fund_all(w3, [admin.address, patient.address])
            deployment, _ = deploy(w3, admin, home)
            mv = Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api))
            mv.register(patient)
            index = mv.add_record(
                patient, patient.address, payload, Category.IMAGING, content_type="application/octet-stream"
            ).pointer.index
            read = _timed(runs, lambda: mv.read_record(patient, patient.address, index))
        finally:
            node.down()
    return {
        "size_bytes": size,
        "fetch_verify_decrypt_median_ms": read["median_ms"],
        "fetch_verify_decrypt_p90_ms": read["p90_ms"],
        "seal_mb_s": sealed,
        "raw_aes_gcm_mb_s": raw,
    }


def _throughput(size: int, action: Any, runs: int = 20) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        action()
    return round(size * runs / (time.perf_counter() - started) / 1e6, 1)


# -- everything: `medvault bench all` / `make bench` ----------------------------------------------

# The targets for `bench all` (2-core machine).
SEED_TARGET_S = 60.0
SEED_RATIO_TARGET = 1.5
QUERY_TARGET_MS = 100.0
READ_TARGET_MS = 50.0
QUERY_GRANTS = 1_000
SETTLE_S = 5.0


class _Phases:
    """Progress on stderr: each phase with the time since the start."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.started = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.started:7.1f} s] {message}", file=sys.stderr, flush=True)


def _bench_wallet(name: str) -> Wallet:
    return dev_wallet(name, keccak(text=f"medvault bench all {name}"))


def _fresh(home: Path, name: str) -> tuple[LocalNode, Any]:
    node = LocalNode(home / name, chain_port=free_port(), ipfs_port=free_port())
    return node, node.up()


def _deploy_client(home: Path, info: Any) -> tuple[Medvault, Wallet]:
    w3 = connect(info.rpc_url)
    admin = _bench_wallet("admin")
    anvil.fund(w3, admin.address, 10**22)
    deployment, _ = deploy(w3, admin, home)
    return Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api)), admin


def measure_all(patients: int = 1000, records: int = 10, *, progress: bool = True) -> dict[str, Any]:
    """Every figure of the issue's benchmark, on fresh local nodes started and stopped here:
    gas per operation; seeding end to end against IPFS add alone and the chain calls alone (the
    same files and the same calls, on a second fresh node); the first index sync and query
    latency at ``QUERY_GRANTS`` grants; fetch + verify + decrypt of a 1 MB record; sealing
    against raw AES-GCM."""
    say = _Phases(progress)
    results: dict[str, Any] = {"patients": patients, "records_per_patient": records}
    say("gas per operation (own anvil)")
    results["gas"] = measure_gas()

    plan = plan_seed("bench", patients, records)
    seed_key = f"seed_{patients}x{records}_s"
    with tempfile.TemporaryDirectory(prefix="medvault-bench-all-") as tmp:
        home = Path(tmp)
        nodes: list[LocalNode] = []
        try:
            # Both nodes up and deployed first, then left to settle, so that the seeding and its
            # baselines run under the same conditions (a Kubo just started is busy for seconds).
            say("starting node A (seeding) and node B (baselines), deploying to each")
            node_a, info_a = _fresh(home, "node-a")
            nodes.append(node_a)
            node_b, info_b = _fresh(home, "node-b")
            nodes.append(node_b)
            mv, _ = _deploy_client(home / "a", info_a)
            mv_b, _ = _deploy_client(home / "b", info_b)
            time.sleep(SETTLE_S)
            say(f"seeding {patients} x {records} end to end (FHIR + seal + IPFS add + chain)")
            captured: SealedChunks = []
            report = run_seed(mv, info_a.rpc_url, plan, capture=captured)
            seed_s = report.seconds
            results[seed_key] = round(seed_s, 2)
            results["seed"] = report.to_json()
            say(f"seeded in {seed_s:.1f} s ({report.transactions} transactions, {report.ipfs_files} files)")

            files = chunk_files(captured)
            say(f"baseline: IPFS add alone ({sum(map(len, files))} files in {len(files)} wrapped adds)")
            ipfs_b = IpfsClient(info_b.ipfs_api)
            started = time.perf_counter()
            for chunk in files:
                ipfs_b.add_wrapped(chunk)
            ipfs_s = time.perf_counter() - started
            say(f"IPFS alone {ipfs_s:.1f} s; baseline: the same contract calls alone")
            chain_report = run_seed(mv_b, info_b.rpc_url, plan, replay=captured)
            chain_s = chain_report.seconds
            say(f"chain alone {chain_s:.1f} s ({chain_report.transactions} transactions)")
            node_b.down()
            nodes.remove(node_b)
            results["baseline"] = {
                "ipfs_alone_s": round(ipfs_s, 2),
                "ipfs_files": sum(map(len, files)),
                "ipfs_bytes": sum(len(b) for chunk in files for b in chunk),
                "chain_alone_s": round(chain_s, 2),
                "chain_transactions": chain_report.transactions,
                "chain_phases": chain_report.to_json()["phases"],
                "seed_vs_ipfs_alone_ratio": round(seed_s / ipfs_s, 2),
                "seed_vs_chain_alone_ratio": round(seed_s / chain_s, 2),
            }
            results["seed_vs_baseline_ratio"] = round(seed_s / (ipfs_s + chain_s), 2)
            del captured, files

            say(f"adding grants up to {QUERY_GRANTS}")
            results["query"] = _measure_queries(mv, info_a.rpc_url, plan, home / "a", say)
        finally:
            for node in nodes:
                node.down()
    if patients == 1000 and records == 10:
        results["seed_1000x10_s"] = results[seed_key]
    else:
        results.setdefault("seed_1000x10_s", None)
    results["query_max_ms"] = max(q["median_ms"] for q in results["query"]["queries"].values())

    say("record I/O: 1 MB fetch + verify + decrypt, sealing vs raw AES-GCM (own node)")
    io = measure_record_io(1 << 20, runs=10)
    results["record_io"] = {**io, "seal_vs_raw_ratio": round(io["seal_mb_s"] / io["raw_aes_gcm_mb_s"], 3)}
    results["fetch_verify_decrypt_1mb_ms"] = io["fetch_verify_decrypt_median_ms"]
    say("done")
    results["targets"] = targets(results)
    return results


def _measure_queries(mv: Medvault, rpc_url: str, plan: SeedPlan, home: Path, say: _Phases) -> dict[str, Any]:
    """Tops the seeded grants up to ``QUERY_GRANTS`` (patients to providers, all categories, a
    year, in a fixed order), then times the first full index sync and each query type."""
    granted = {(q.index, q.grant.provider) for q in plan.grants if q.grant}
    # An approved research request is a grant too (to a researcher, so no pair above).
    wanted = max(0, QUERY_GRANTS - len(granted) - len(plan.decisions("approve")))
    pairs: list[tuple[PatientPlan, int]] = []
    for shift in range(len(plan.providers)):
        for q in plan.patients:
            provider = (q.index + shift) % len(plan.providers)
            if len(pairs) < wanted and (q.index, provider) not in granted:
                granted.add((q.index, provider))
                pairs.append((q, provider))
    rpc = BatchRpc(rpc_url)
    sender = PipelinedSender(rpc, mv.chain.chain_id)
    now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    grant, everything = Method.of(mv.chain.consent, "grant"), scope_mask(frozenset(Category))
    txs = []
    for q, p in pairs:
        args = [plan.providers[p].address, everything, int(Purpose.TREAT), now, now + 365 * DAY, b""]
        txs.append(grant.transaction(q.wallet, args, GAS["grant"], f"extra grant {q.index} -> provider {p}"))
    sender.send(txs)
    sender.settle(wait=True)
    say(f"{len(pairs)} grants added; first full index sync")

    index = EventIndex.open(home, mv.chain)
    try:
        started = time.perf_counter()
        synced = index.sync()
        sync_s = time.perf_counter() - started
        counts = index.counts()
        say(f"synced in {sync_s:.1f} s: {counts}; timing queries")
        busiest = Counter(g[1] for g in granted).most_common(1)[0][0]
        grantee = plan.providers[busiest].address
        # A patient with a request and a grant (the longest history), if there is one.
        patient = max(plan.patients, key=lambda q: (q.request is not None, q.grant is not None)).wallet.address
        queries = {
            "records_of": lambda: index.records_of(patient, sync=False),
            "readable_by": lambda: index.readable_by(grantee, sync=False),
            "readers_of": lambda: index.readers_of(patient, sync=False),
            "requests_approved": lambda: index.requests(RequestStatus.APPROVED, sync=False),
            "history": lambda: index.history(patient, sync=False),
            "sync_no_new_blocks": index.sync,
        }
        sizes = {name: len(result) for name, f in queries.items() if isinstance(result := f(), list)}
        timed = {name: _timed(30, f, digits=2) for name, f in queries.items()}
        for name, size in sizes.items():
            timed[name]["rows"] = size
    finally:
        index.close()
    return {
        "records": counts["records"],
        "grants": counts["grants"],
        "grants_added": len(pairs),
        "first_sync_s": round(sync_s, 2),
        "first_sync": synced.to_json(),
        "busy_grantee_grants": sum(1 for g in granted if g[1] == busiest),
        "queries": {k: v for k, v in timed.items() if k != "sync_no_new_blocks"},
        "sync_no_new_blocks": timed["sync_no_new_blocks"],
    }


Row = tuple[str, Any, str, bool | None]


def _at_most(figure: str, value: Any, limit: float, shown: str | None = None) -> Row:
    """A row with a target: ``value`` at most ``limit`` (shown as ``shown``, or as is)."""
    return figure, value, f"<= {shown if shown is not None else limit}", value <= limit


def _figure(figure: str, value: Any) -> Row:
    """A row reported without a target."""
    return figure, value, "", None


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """(figure, value, target, met) rows for the table; met is None where there is no target."""
    patients, records = results["patients"], results["records_per_patient"]
    seed_s = results[f"seed_{patients}x{records}_s"]
    base, io, q = results["baseline"], results["record_io"], results["query"]
    ratio, query_max = results["seed_vs_baseline_ratio"], results["query_max_ms"]
    read_ms = results["fetch_verify_decrypt_1mb_ms"]
    rows: list[Row] = [
        _at_most(f"seed {patients} x {records} end to end (s)", seed_s, SEED_TARGET_S, f"{SEED_TARGET_S:.0f}"),
        _figure("  baseline: IPFS add alone (s)", base["ipfs_alone_s"]),
        _figure("  baseline: chain calls alone (s)", base["chain_alone_s"]),
        _at_most("  seed / (IPFS alone + chain alone)", ratio, SEED_RATIO_TARGET),
        _figure("  seed / IPFS alone", base["seed_vs_ipfs_alone_ratio"]),
        _figure("  seed / chain alone", base["seed_vs_chain_alone_ratio"]),
        _figure(f"first index sync, {q['records']} records, {q['grants']} grants (s)", q["first_sync_s"]),
    ]
    for name, figure in q["queries"].items():
        label = f"query {name} median (ms, {figure.get('rows', '?')} rows)"
        rows.append(_at_most(label, figure["median_ms"], QUERY_TARGET_MS, f"{QUERY_TARGET_MS:.0f}"))
    rows += [
        _figure("index sync with no new blocks, median (ms)", q["sync_no_new_blocks"]["median_ms"]),
        _at_most("query max of medians (ms)", query_max, QUERY_TARGET_MS, f"{QUERY_TARGET_MS:.0f}"),
        _at_most("fetch + verify + decrypt 1 MB, median (ms)", read_ms, READ_TARGET_MS, f"{READ_TARGET_MS:.0f}"),
        _figure("  p90 (ms)", io["fetch_verify_decrypt_p90_ms"]),
        _figure("seal (encrypt_record) MB/s", io["seal_mb_s"]),
        _figure("raw AES-256-GCM MB/s, same bytes", io["raw_aes_gcm_mb_s"]),
        _figure("  seal / raw", io["seal_vs_raw_ratio"]),
    ]
    for case, used in results["gas"].items():
        budget = BUDGETS[case]
        rows.append(_at_most(f"gas {case}", used, budget, f"{budget:,}") if budget else _figure(f"gas {case}", used))
    return [{"figure": f, "value": v, "target": t, "met": m} for f, v, t, m in rows]


def format_table(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["figure"]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>10}  {'target':<10}  met", "-" * (width + 30)]
    for r in rows:
        value = f"{r['value']:,}" if isinstance(r["value"], int) else str(r["value"])
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        lines.append(f"{r['figure']:<{width}}  {value:>10}  {r['target']:<10}  {met}")
    return "\n".join(lines)
