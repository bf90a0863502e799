"""Gas per operation, measured as transaction gasUsed on a fresh anvil.

Each case is measured exactly as its budget defines it, with fixed keys, times and record
pointers so that the figures repeat to the unit and can be compared with the committed
snapshot (``gas-snapshot.json``): a change that costs gas shows in review.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from eth_utils.crypto import keccak

from medvault.accounts import Wallet
from medvault.chain import Chain, TxResult, connect, deploy
from medvault.client import Medvault
from medvault.contracts import load_artifacts
from medvault.crypto import RecordContext, encrypt_record, new_record_key
from medvault.ipfs import IpfsClient, cid_to_bytes, compute_cid
from medvault.keeper import KeeperService
from medvault.model import Category, Purpose, Role
from medvault.node import LocalNode, free_port
from medvault.signing import ConsentChange

__all__ = ["BUDGETS", "measure_gas", "measure_record_io", "measure_release"]

GENESIS = 1_800_000_000
DAY = 86_400
# The budgets; None where only the figure is reported.
BUDGETS: dict[str, int | None] = {
    "grant": 50_000,
    "revoke": 30_000,
    "grant_by_sig": 60_000,
    "request_access": 60_000,
    "approve_request": 55_000,
    "add_record": 55_000,
    "register_patient": None,
}


def measure_gas() -> dict[str, int]:
    """Deploys to a fresh anvil (started and stopped here) and measures each case once."""
    with tempfile.TemporaryDirectory(prefix="medvault-bench-") as tmp:
        node = LocalNode(Path(tmp) / "node", chain_port=free_port(), ipfs_port=free_port(), genesis_timestamp=GENESIS)
        info = node.up()
        try:
            return _measure(Path(tmp), info.rpc_url, info.ipfs_api)
        finally:
            node.down()


def _measure(home: Path, rpc_url: str, ipfs_api: str) -> dict[str, int]:
    w3 = connect(rpc_url)
    # Fixed throwaway keys, held only in memory: the same calldata, and so the same gas, every run.
    names = ("admin", "patient", "provider", "doctor", "nurse", "researcher", "relayer")
    wallets = {n: Wallet(n, Account.from_key(keccak(text=f"medvault gas bench {n}"))) for n in names}
    for wallet in wallets.values():
        w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**20)])  # type: ignore[arg-type]
    clock = iter(range(GENESIS + 100, GENESIS + 10_000, 10))

    def at_next_time() -> int:
        moment = next(clock)
        w3.provider.make_request("evm_setNextBlockTimestamp", [moment])  # type: ignore[arg-type]
        return moment

    at_next_time()
    deployment, _ = deploy(w3, wallets["admin"], home)
    mv = Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(ipfs_api))
    admin, patient, provider = wallets["admin"], wallets["patient"], wallets["provider"]
    doctor, nurse, researcher, relayer = wallets["doctor"], wallets["nurse"], wallets["researcher"], wallets["relayer"]
    gas: dict[str, int] = {}

    def measure(case: str, send: Any) -> TxResult:
        at_next_time()
        result: TxResult = send()
        if case:
            gas[case] = result.gas_used
        return result

    for wallet in (patient, provider, doctor, nurse, researcher):
        measure("register_patient" if wallet is patient else "", lambda w=wallet: mv.register(w))
    measure("", lambda: mv.accredit(admin, provider.address, Role.PROVIDER))
    measure("", lambda: mv.accredit(admin, researcher.address, Role.RESEARCHER))

    everything, week = frozenset(Category), GENESIS + 7 * DAY
    measure("grant", lambda: mv.grant(patient, patient.address, doctor.address, everything, Purpose.TREAT,
                                      GENESIS, week)[0])  # fmt: skip
    measure("revoke", lambda: mv.revoke(patient, patient.address, doctor.address))

    # The patient signs once before, so the measured case is "a patient who has signed before".
    at_next_time()
    mv.submit(
        patient, mv.grant_change(patient, patient.address, doctor.address, everything, Purpose.TREAT, GENESIS, week)
    )
    first = mv.sign(patient, mv.revoke_change(patient.address, doctor.address))
    measure("", lambda: mv.relay(relayer, first))
    signed = mv.sign(patient, mv.grant_change(patient, patient.address, nurse.address, everything, Purpose.TREAT,
                                              GENESIS, week))  # fmt: skip
    measure("grant_by_sig", lambda: mv.relay(relayer, signed))

    scopes = frozenset({Category.LABORATORY, Category.CONDITIONS})
    at_next_time()
    request, tx = mv.request_access(researcher, patient.address, scopes, Purpose.HRESCH, 30 * DAY, "BENCH-STUDY")
    gas["request_access"] = tx.gas_used
    measure("approve_request", lambda: mv.decide_request(patient, request, approve=True))

    for index in range(2):  # the second record is the measured one
        measure("add_record" if index else "", lambda i=index: _add_pointer(mv, provider, patient.address, i))
    return {case: gas[case] for case in BUDGETS}


def _add_pointer(mv: Medvault, author: Wallet, patient: str, index: int) -> TxResult:
    """Appends a pointer with fixed, realistic-size CIDs (the chain cost does not depend on IPFS)."""
    context = RecordContext(mv.chain.chain_id, mv.chain.records.address, patient, index)
    blob, bundle = f"ciphertext {context}".encode(), f"key bundle {context}".encode()
    fn = mv.chain.records.functions.addRecord(
        patient, index, cid_to_bytes(compute_cid(blob)), keccak(blob), int(Category.LABORATORY),
        cid_to_bytes(compute_cid(bundle)),
    )  # fmt: skip
    return mv.chain.transact(author, fn, f"add record {index}")


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
            wallets = {n: Wallet(n, Account.from_key(keccak(text=f"medvault release bench {n}"))) for n in names}
            for wallet in wallets.values():
                w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**20)])  # type: ignore[arg-type]
            deployment, _ = deploy(w3, wallets["admin"], home)

            def client() -> Medvault:
                return Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api))

            mv = client()
            for name in names[1:]:
                mv.register(wallets[name])
            mv.accredit(wallets["admin"], wallets["provider"].address, Role.PROVIDER)
            for name in names[4:]:
                port = free_port()
                keepers.append(KeeperService(wallets[name], client(), home / name, port=port,
                                             announce=f"http://127.0.0.1:{port}").start())  # fmt: skip
            patient, reader = wallets["patient"], wallets["reader"]
            mv.set_keepers(patient, [str(k.address) for k in keepers], 2)
            pointer = mv.add_record(wallets["provider"], patient.address, b'{"resourceType":"Observation"}',
                                    Category.LABORATORY).pointer  # fmt: skip
            # A grant that shares no keys: every key the reader gets comes from the keepers.
            now = mv.now()
            mv.submit(patient, ConsentChange("Grant", {
                "patient": patient.address, "grantee": reader.address, "scopes": 0x3F, "purpose": int(Purpose.TREAT),
                "validFrom": now, "validUntil": now + DAY, "keysCid": b"",
            }))  # fmt: skip
            release = _timed(runs, lambda: mv.release_key(reader, pointer))
            read = _timed(runs, lambda: mv.read_record(reader, patient.address, pointer.index))
            return {"runs": runs, **{f"release_{k}": v for k, v in release.items()},
                    **{f"read_{k}": v for k, v in read.items()}}  # fmt: skip
        finally:
            for keeper in keepers:
                keeper.stop()
            node.down()


def _timed(runs: int, action: Any) -> dict[str, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 1), "p90_ms": round(times[int(0.9 * (runs - 1))], 1)}


def measure_record_io(size: int = 1 << 20, runs: int = 10) -> dict[str, float]:
    """Fetch + verify + decrypt of one ``size``-byte record by its patient (median and p90 ms),
    and sealing throughput against raw AES-256-GCM on the same bytes (MB/s)."""
    payload = os.urandom(size)
    context = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, 0)
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
            admin, patient = (Wallet(n, Account.from_key(keccak(text=f"medvault io bench {n}"))) for n in ("a", "p"))
            for wallet in (admin, patient):
                w3.provider.make_request("anvil_setBalance", [wallet.address, hex(10**20)])  # type: ignore[arg-type]
            deployment, _ = deploy(w3, admin, home)
            mv = Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api))
            mv.register(patient)
            index = mv.add_record(patient, patient.address, payload, Category.IMAGING,
                                  content_type="application/octet-stream").pointer.index  # fmt: skip
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
