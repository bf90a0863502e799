"""The chain: connection and contracts (``connection``), transactions and decoded reverts
(``transact``), batched calls and pipelined sends (``pipeline``), deployment (``deploy``), the
shipped contract artifacts and deployment records (``artifacts``)."""

from medvault.chain.artifacts import CONTRACT_NAMES, Artifact, Deployment, load_artifacts
from medvault.chain.connection import Chain, connect
from medvault.chain.deploy import deploy
from medvault.chain.transact import TxResult, send

__all__ = [
    "CONTRACT_NAMES",
    "Artifact",
    "Chain",
    "Deployment",
    "TxResult",
    "connect",
    "deploy",
    "load_artifacts",
    "send",
]
