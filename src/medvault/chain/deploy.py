"""Deploying the four contracts and recording where they live.

A home records one deployment per chain (``deployments/<chain id>.json``). Deploying again on a
chain whose recorded contracts are live is refused unless asked to replace them, and a record
that is replaced is never lost: it moves to ``deployments/replaced/<chain id>-<UTC time>.json``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from pydantic import ValidationError

from medvault.chain.artifacts import Deployment, load_artifacts
from medvault.chain.transact import TxResult, error_table, send
from medvault.crypto import KeySuite
from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet

__all__ = ["check_replaceable", "deploy", "record_deployment", "replaced_deployments"]


def deploy(
    w3: Web3, wallet: Wallet, home: Path, key_suite: KeySuite = KeySuite.X25519, *, replace: bool = False
) -> tuple[Deployment, list[TxResult]]:
    """Deploys the four contracts with ``wallet`` as admin and first accreditor; records them
    (refused, before any transaction, over a live deployment of this chain unless ``replace``)."""
    check_replaceable(w3, home, replace=replace)
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
    record_deployment(deployment, home)
    return deployment, results


def check_replaceable(w3: Web3, home: Path, *, replace: bool) -> None:
    """Refuses, unless ``replace``, to deploy over the deployment this home records for the
    chain ``w3`` is on, when that one's contracts are there (after a chain reset they are not,
    and the stale record is only moved aside)."""
    chain_id = w3.eth.chain_id
    path = Deployment.path(home, chain_id)
    if replace or not path.exists():
        return
    try:
        earlier = Deployment.model_validate_json(path.read_bytes())
    except ValidationError:
        raise ConfigurationError(
            f"{path} is not a readable deployment record: look at it, then deploy with --replace "
            "(it is kept in deployments/replaced/)"
        ) from None
    if not w3.eth.get_code(to_checksum_address(earlier.consent_manager)):
        return
    raise ConfigurationError(
        f"chain {chain_id} has a medvault deployment already, recorded in {path} (ConsentManager "
        f"{earlier.consent_manager}, block {earlier.block_number}, by {earlier.deployer}); deploying again "
        "would leave its records out of view of this home. To deploy anew all the same, pass --replace: "
        "the earlier record is kept in deployments/replaced/"
    )


def record_deployment(deployment: Deployment, home: Path) -> Path:
    """Writes ``deployment`` as its chain's record, first moving any earlier record aside."""
    path = Deployment.path(home, deployment.chain_id)
    if path.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = path.parent / "replaced"
        folder.mkdir(exist_ok=True)
        aside, n = folder / f"{deployment.chain_id}-{stamp}.json", 1
        while aside.exists():
            n += 1
            aside = folder / f"{deployment.chain_id}-{stamp}-{n}.json"
        os.replace(path, aside)
    return deployment.save(home)


def replaced_deployments(home: Path, chain_id: int | None = None) -> list[Path]:
    """The records replaced by later deployments (of ``chain_id``, or all), oldest first."""
    folder = Deployment.path(home, 0).parent / "replaced"
    pattern = f"{chain_id}-*.json" if chain_id is not None else "*.json"
    return sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime_ns)
