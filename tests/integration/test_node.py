"""`medvault node`: start, keep state and ports across a restart, stop only what it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from helpers import wait_for

from medvault.chain import connect
from medvault.cli import cli
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


def test_cli_node_keeps_its_ports_and_shows_pids(tmp_path: Path) -> None:
    def node_cli(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--home", str(tmp_path), "node", *args])
        assert result.exit_code == 0, result.output
        return result.output

    chain_port, ipfs_port = free_port(), free_port()
    first = json.loads(node_cli("up", "--chain-port", str(chain_port), "--ipfs-port", str(ipfs_port), "--json"))
    node = LocalNode(tmp_path / "node")
    try:
        info = node.status()
        assert info is not None
        status = json.loads(node_cli("status", "--json"))
        assert (status["chain_pid"], status["ipfs_pid"]) == (info.chain.pid, info.ipfs.pid)
        assert node_cli("status") == (
            f"chain  {first['rpc_url']}  running, pid {info.chain.pid}\n"
            f"ipfs   {first['ipfs_api']}  running, pid {info.ipfs.pid}\n"
        )

        moved = CliRunner().invoke(cli, ["--home", str(tmp_path), "node", "up", "--chain-port", str(free_port())])
        assert moved.exit_code == 1
        assert f"the chain of this node already runs on port {chain_port}; `medvault node down` first" in moved.output

        assert node_cli("down") == "stopped: chain, ipfs\n"
        assert node_cli("status") == "chain  stopped\nipfs   stopped\n"
        again = json.loads(node_cli("up", "--json"))  # no ports given: the ones it was made with
        assert (again["rpc_url"], again["ipfs_api"]) == (first["rpc_url"], first["ipfs_api"])

        # Kubo stopped alone comes back on its own port; anvil runs on untouched.
        restarted = node.status()
        assert restarted is not None
        os.kill(restarted.ipfs.pid, signal.SIGTERM)
        wait_for(lambda: not node.running()["ipfs"], 20, "Kubo to stop")
        assert node_cli("status") == f"chain  {first['rpc_url']}  running, pid {restarted.chain.pid}\nipfs   stopped\n"
        third = json.loads(node_cli("up", "--json"))
        assert third["ipfs_api"] == first["ipfs_api"]
        assert json.loads(node_cli("status", "--json"))["chain_pid"] == restarted.chain.pid
    finally:
        node.down()
