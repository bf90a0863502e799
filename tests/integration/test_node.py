"""`medvault node`: start, keep state across a restart, stop only what it started."""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from medvault.chain import connect
from medvault.dev.anvil import fund
from medvault.dev.node import LocalNode, free_port
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_state_survives_a_restart_and_down_stops_both(tmp_path: Path) -> None:
    node = LocalNode(tmp_path, chain_port=free_port(), ipfs_port=free_port())
    info = node.up()
    try:
        w3 = connect(info.rpc_url)
        address = w3.to_checksum_address("0x" + "ab" * 20)
        fund(w3, address, 12345)
        with IpfsClient(info.ipfs_api) as ipfs:
            cid = ipfs.add(b"kept across restarts")
        assert node.running() == {"chain": True, "ipfs": True}

        assert sorted(node.down()) == ["chain", "ipfs"]
        assert node.status() is None

        info = node.up()
        assert connect(info.rpc_url).eth.get_balance(address) == 12345
        with IpfsClient(info.ipfs_api) as ipfs:
            assert ipfs.cat(cid) == b"kept across restarts"
            assert ipfs.is_pinned(cid)
    finally:
        node.down()
    assert node.running() == {"chain": False, "ipfs": False}


def test_up_is_idempotent(tmp_path: Path) -> None:
    node = LocalNode(tmp_path, chain_port=free_port(), ipfs_port=free_port())
    first = node.up()
    try:
        second = node.up()
        assert (second.chain.pid, second.ipfs.pid) == (first.chain.pid, first.ipfs.pid)
    finally:
        node.down()


def test_down_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    node = LocalNode(tmp_path, chain_port=free_port(), ipfs_port=free_port())
    info = node.up()
    node.down()
    bystander = subprocess.Popen(["sleep", "30"])  # stands in for whatever got the old pid
    try:
        (tmp_path / "node.json").write_text(
            f'{{"chain": {{"pid": {bystander.pid}, "url": "{info.rpc_url}", "log": ""}},'
             f' "ipfs": {{"pid": {bystander.pid}, "url": "{info.ipfs_api}", "log": ""}}}}'
        )  # fmt: skip
        assert node.down() == []
        assert bystander.poll() is None
        os.kill(bystander.pid, 0)
    finally:
        bystander.kill()
        bystander.wait()


def test_chain_down_is_a_clear_error() -> None:
    from medvault.errors import ChainUnavailableError

    with pytest.raises(ChainUnavailableError, match="Ethereum node at http://127.0.0.1:.* is not reachable"):
        connect(f"http://127.0.0.1:{free_port()}")
