"""The pipelined sender against a real anvil: at most ``max_in_flight`` transactions unmined,
every receipt read and checked (a revert is named), and a nudge that mines what automine left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_utils.crypto import keccak

from medvault.chain.pipeline import BatchRpc, Method, PipelinedSender
from medvault.dev import anvil
from medvault.dev.wallets import dev_wallet
from medvault.errors import ContractError
from medvault.model import Role

if TYPE_CHECKING:
    from collections.abc import Sequence

    from medvault.accounts import Wallet
    from medvault.chain.pipeline import Transaction
    from medvault.client import Medvault
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


def _registrations(mv: Medvault, rpc: BatchRpc, tag: str, n: int) -> tuple[list[Wallet], list[Transaction]]:
    wallets = [dev_wallet(f"pipe-{tag}-{i}", keccak(text=f"medvault pipeline test {tag} {i}")) for i in range(n)]
    anvil.fund_all(rpc, [w.address for w in wallets])
    register = Method.of(mv.chain.participants, "register")
    txs = [
        register.transaction(w, [w.encryption_keys(mv.suite, 0).public_bytes], 150_000, f"register {w.name}")
        for w in wallets
    ]
    return wallets, txs


def test_at_most_max_in_flight_and_every_receipt_checked(mv: Medvault, local_node: NodeInfo) -> None:
    rpc = BatchRpc(local_node.rpc_url, batch_size=4)
    confirmed: list[int] = []
    sender = PipelinedSender(rpc, mv.chain.chain_id, confirmed.append, max_in_flight=6)
    wallets, txs = _registrations(mv, rpc, "cap", 40)
    seen: list[int] = []
    batch = rpc.batch

    def watched(calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        sends = sum(1 for method, _ in calls if method == "eth_sendRawTransaction")
        if sends:
            seen.append(len(sender.in_flight) + sends)
        return batch(calls)

    rpc.batch = watched  # type: ignore[method-assign]
    sender.send(txs)
    assert max(seen) <= 6
    assert len(seen) >= 40 // 6  # the sends were spread over several waits
    sender.settle(wait=True)
    assert sender.in_flight == {}
    assert sum(confirmed) == 40
    assert all(mv.chain.participants.functions.isRegistered(w.address).call() for w in wallets)

    # An account without the admin role cannot accredit: the failure names its action.
    grant_role = Method.of(mv.chain.participants, "grantRole")
    sender.send([grant_role.transaction(wallets[0], [Role.PROVIDER.role_id, wallets[1].address], 150_000, "accredit")])
    with pytest.raises(ContractError) as failed:
        sender.settle(wait=True)
    assert failed.value.action == "accredit"
    assert failed.value.name == "Reverted"


def test_the_nudge_mines_what_automine_leaves(mv: Medvault, local_node: NodeInfo) -> None:
    rpc = BatchRpc(local_node.rpc_url)
    nudges: list[int] = []

    def nudge() -> None:
        nudges.append(1)
        anvil.mine(rpc)

    sender = PipelinedSender(rpc, mv.chain.chain_id, nudge=nudge)
    wallets, txs = _registrations(mv, rpc, "nudge", 3)
    rpc.call("evm_setAutomine", [False])
    try:
        sender.send(txs)
        sender.settle(wait=True, timeout=20)
    finally:
        rpc.call("evm_setAutomine", [True])
    assert nudges
    assert all(mv.chain.participants.functions.isRegistered(w.address).call() for w in wallets)
