"""Deploying the four contracts and recording where they live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medvault.chain.artifacts import Deployment, load_artifacts
from medvault.chain.transact import TxResult, error_table, send
from medvault.crypto import KeySuite

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet

__all__ = ["deploy"]


def deploy(
    w3: Web3, wallet: Wallet, home: Path, key_suite: KeySuite = KeySuite.X25519
) -> tuple[Deployment, list[TxResult]]:
    """Deploys the four contracts with ``wallet`` as admin and first accreditor; records them."""
    artifacts = load_artifacts()
    errors = error_table(artifacts.values())
    results: list[TxResult] = []

    def create(name: str, *args: Any) -> str:
        factory = w3.eth.contract(abi=artifacts[name].abi, bytecode=artifacts[name].bytecode)
        result = send(w3, wallet, factory.constructor(*args), f"deploy {name}", errors)
        results.append(result)
        return result.contract_address

    participants = create("ParticipantRegistry", wallet.address)
    # The record log asks the consent contract about emergency writers, so consent comes first.
    consent = create("ConsentManager", participants)
    records = create("RecordRegistry", participants, consent)
    keepers = create("KeeperDirectory")
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        block_number=results[0].block_number,
        deployer=wallet.address,
        key_suite=key_suite,
        participant_registry=participants,
        record_registry=records,
        consent_manager=consent,
        keeper_directory=keepers,
    )
    deployment.save(home)
    return deployment, results
