"""The integration tests' fixtures (tests/integration and its subfolders).

Integration tests run against a real anvil and a real Kubo daemon, started once per session
on loopback with free ports and a temporary state directory, and stopped at the end. Each test
gets its own fresh deployment and its own funded keystore accounts, so tests do not interfere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from helpers import ChainClock, new_wallet

from medvault.accounts import TEST_SCRYPT_N, Keystore, Wallet
from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev.node import LocalNode, NodeInfo, free_port
from medvault.ipfs import IpfsClient
from medvault.model import Category, Role

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from web3 import Web3

CAST = ("admin", "patient", "provider", "doctor", "stranger")


@pytest.fixture(scope="session")
def local_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeInfo]:
    node = LocalNode(tmp_path_factory.mktemp("node"), chain_port=free_port(), ipfs_port=free_port())
    info = node.up()
    yield info
    node.down()


@pytest.fixture(scope="session")
def w3(local_node: NodeInfo) -> Web3:
    return connect(local_node.rpc_url)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def keystore(home: Path) -> Keystore:
    return Keystore(home, scrypt_n=TEST_SCRYPT_N)


@pytest.fixture
def wallets(keystore: Keystore, w3: Web3) -> dict[str, Wallet]:
    result = {}
    for name in CAST:
        result[name] = new_wallet(keystore, w3, name)
    return result


@pytest.fixture
def admin(wallets: dict[str, Wallet]) -> Wallet:
    return wallets["admin"]


@pytest.fixture
def patient(wallets: dict[str, Wallet]) -> Wallet:
    return wallets["patient"]


@pytest.fixture
def provider(wallets: dict[str, Wallet]) -> Wallet:
    return wallets["provider"]


@pytest.fixture
def doctor(wallets: dict[str, Wallet]) -> Wallet:
    return wallets["doctor"]


@pytest.fixture
def stranger(wallets: dict[str, Wallet]) -> Wallet:
    return wallets["stranger"]


@pytest.fixture
def ipfs(local_node: NodeInfo) -> Iterator[IpfsClient]:
    with IpfsClient(local_node.ipfs_api) as client:
        yield client


@pytest.fixture
def mv(w3: Web3, home: Path, ipfs: IpfsClient, wallets: dict[str, Wallet]) -> Medvault:
    """A fresh deployment: patient, provider and doctor registered, provider accredited and on
    the patient's care team (it may write every category)."""
    deployment, _ = deploy(w3, wallets["admin"], home)
    client = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
    for name in ("patient", "provider", "doctor"):
        client.register(wallets[name])
    client.accredit(wallets["admin"], wallets["provider"].address, Role.PROVIDER)
    client.set_writer(wallets["patient"], wallets["provider"].address, frozenset(Category))
    return client


@pytest.fixture
def clock(w3: Web3) -> ChainClock:
    return ChainClock(w3)
