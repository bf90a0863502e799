"""Gas per operation, measured as transaction gasUsed on a fresh anvil.

Each case is measured exactly as its budget defines it, with fixed keys, times and record
pointers so that the figures repeat to the unit and can be compared with the committed
snapshot (``gas-snapshot.json``): a change that costs gas shows in review.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak

from medvault.chain import Chain, TxResult, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cids import cid_to_bytes, compute_cid
from medvault.client import Medvault
from medvault.crypto import RecordContext
from medvault.dev import anvil
from medvault.dev.node import LocalNode, free_port
from medvault.dev.wallets import dev_wallet
from medvault.ipfs import IpfsClient
from medvault.keeper.protocol import KeyRequest, sign_key_request
from medvault.model import Category, EmergencyMode, GrantTerms, Purpose, Role

if TYPE_CHECKING:
    from medvault.accounts import Wallet

__all__ = ["BUDGETS", "GENESIS", "measure_gas"]

GENESIS = 1_800_000_000
DAY = 86_400
# The budgets; None where only the figure is reported.
BUDGETS: dict[str, int | None] = {
    "grant": 50_000,
    "revoke": 30_000,
    "grant_by_sig": 60_000,
    "request_access": 60_000,
    "approve_request": 55_000,
    "add_record": 55_000,  # by a provider on the patient's care team, its second record
    "add_record_by_patient": 55_000,  # the patient's own, its second record
    # A new writer: one fresh storage slot (22,100) and two registry reads (accredited provider,
    # registered patient) over the 21,000 base.
    "set_writer": 56_000,
    # The first flag in a word of 128 records: a fresh storage slot and the log's count.
    "flag_record": 50_000,
    "register_patient": None,
    "record_release": 40_000,  # one verified receipt (the reader's signature is checked on chain)
    # A patient's first break-glass policy, and a provider breaking the glass under it.
    "set_emergency_policy": 47_500,
    "take_emergency_access": 57_500,
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
    wallets = {n: dev_wallet(n, keccak(text=f"medvault gas bench {n}")) for n in names}
    anvil.fund_all(w3, [wallet.address for wallet in wallets.values()])
    clock = iter(range(GENESIS + 100, GENESIS + 10_000, 10))

    def at_next_time() -> int:
        moment = next(clock)
        anvil.set_next_timestamp(w3, moment)
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

    terms = GrantTerms(frozenset(Category), Purpose.TREAT, GENESIS, GENESIS + 7 * DAY)
    measure("grant", lambda: mv.grant(patient, patient.address, doctor.address, terms).transactions[0])
    measure("revoke", lambda: mv.revoke(patient, patient.address, doctor.address))

    # The patient signs once before, so the measured case is "a patient who has signed before".
    at_next_time()
    mv.submit(patient, mv.grant_change(patient, patient.address, doctor.address, terms))
    first = mv.sign(patient, mv.revoke_change(patient.address, doctor.address))
    measure("", lambda: mv.relay(relayer, first))
    signed = mv.sign(patient, mv.grant_change(patient, patient.address, nurse.address, terms))
    measure("grant_by_sig", lambda: mv.relay(relayer, signed))

    scopes = frozenset({Category.LABORATORY, Category.CONDITIONS})
    at_next_time()
    request, tx = mv.request_access(researcher, patient.address, scopes, Purpose.HRESCH, 30 * DAY, "BENCH-STUDY")
    gas["request_access"] = tx.gas_used
    measure("approve_request", lambda: mv.decide_request(patient, request, approve=True))

    # Break-glass, on another patient's records (the nurse's), so the record cases below are untouched.
    measure("set_emergency_policy", lambda: mv.set_emergency_policy(nurse, EmergencyMode.ANY, full_history=True))
    measure("take_emergency_access", lambda: mv.take_emergency_access(provider, nurse.address, "BENCH: unconscious"))

    measure("set_writer", lambda: mv.set_writer(patient, provider.address, frozenset(Category)))
    for seq in range(2):  # the second record of each author is the measured one
        measure("add_record" if seq else "", lambda s=seq: _add_pointer(mv, provider, patient.address, s))
    for seq in range(2):
        measure("add_record_by_patient" if seq else "", lambda s=seq: _add_pointer(mv, patient, patient.address, s))
    measure("flag_record", lambda: mv.flag_record(patient, 0, disputed=True, hidden=False))
    set_keepers = mv.chain.keepers.functions.setKeepers([nurse.address], 1, b"")  # the nurse keeps the patient's keys
    measure("", lambda: mv.chain.transact(patient, set_keepers, "set keepers"))
    measure("record_release", lambda: _post_receipt(mv, nurse, doctor, patient.address))
    return {case: gas[case] for case in BUDGETS}


def _post_receipt(mv: Medvault, keeper: Wallet, reader: Wallet, patient: str) -> TxResult:
    """One ``recordReleases`` receipt, for a request ``reader`` signed, decided on the latest block."""
    block = mv.chain.w3.eth.get_block("latest")
    request = KeyRequest(patient, 1, reader.address, keeper.address, at := int(block["timestamp"]))
    signature = sign_key_request(reader, request, mv.chain.chain_id, mv.chain.keepers.address)["signature"]
    release = (patient, 1, reader.address, at, at, int(block["number"]), bytes.fromhex(signature[2:]))
    return mv.chain.transact(keeper, mv.chain.keepers.functions.recordReleases([release]), "record a release")


def _add_pointer(mv: Medvault, author: Wallet, patient: str, seq: int) -> TxResult:
    """Appends a pointer with fixed, realistic-size CIDs (the chain cost does not depend on IPFS)."""
    context = RecordContext(mv.chain.chain_id, mv.chain.records.address, patient, author.address, seq)
    blob, bundle = f"ciphertext {context}".encode(), f"key bundle {context}".encode()
    cid, keys_cid = cid_to_bytes(compute_cid(blob)), cid_to_bytes(compute_cid(bundle))
    fn = mv.chain.records.functions.addRecord(patient, seq, cid, keccak(blob), int(Category.LABORATORY), keys_cid)
    return mv.chain.transact(author, fn, f"add record {seq} by {author.name}")
