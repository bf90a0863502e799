"""Gas per operation, measured as transaction gasUsed on a fresh anvil.

Each case is measured exactly as its budget defines it, with fixed keys, times and record
pointers so that the figures repeat to the unit and can be compared with the committed
snapshot (``gas-snapshot.json``): a change that costs gas shows in review.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak

from medvault.accounts import Wallet
from medvault.chain import Chain, TxResult, connect, deploy
from medvault.client import Medvault
from medvault.contracts import load_artifacts
from medvault.crypto import RecordContext
from medvault.ipfs import IpfsClient, cid_to_bytes, compute_cid
from medvault.model import Category, Purpose, Role
from medvault.node import LocalNode, free_port

__all__ = ["BUDGETS", "measure_gas"]

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
