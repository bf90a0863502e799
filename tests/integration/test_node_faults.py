"""Faults of the local node, on real processes: Kubo killed in the middle of `record add`, anvil
and Kubo killed (-9) right after a reported transaction, a restart after chain time moved ahead,
and anvil's block history kept off the disk. Each test runs a node of its own under the CLI's
home (``HOME/node``, where `medvault` finds it), never the session's."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from data import DAY
from helpers import wait_for

from medvault.chain import connect
from medvault.cli import cli
from medvault.dev.anvil import fund, mine, warp
from medvault.dev.node import HISTORY_BLOCKS, LocalNode, free_port
from medvault.errors import ChainUnavailableError
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

OBSERVATION = str(Path(__file__).parents[2] / "examples" / "observation.json")
# Init code that returns block.timestamp: the time an eth_call (a view) sees.
TIMESTAMP_CODE = "0x4260005260206000f3"


class Run:
    """`medvault --home HOME --json ARGS` in process; the endpoints are the home's node's."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str, status: int = 0) -> Any:
        result = self.runner.invoke(
            cli, ["--home", str(self.home), "--json", *args], env={"MEDVAULT_PASSPHRASE": "node faults"}
        )
        assert result.exit_code == status, result.output
        return json.loads(result.stdout)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[LocalNode, Run]]:
    """A node of the test's own at HOME/node, a deployment, alice registered, clinic a provider
    writing alice's records."""
    home = tmp_path / "home"
    node = LocalNode(home / "node", chain_port=free_port(), ipfs_port=free_port())
    node.up()
    run = Run(home)
    try:
        for name in ("admin", "alice", "clinic"):
            run("account", "new", name)
            run("account", "fund", name)
        run("deploy", "--account", "admin")
        for name in ("alice", "clinic"):
            run("register", "--account", name)
        run("accredit", "clinic", "--role", "provider", "--account", "admin")
        run("record", "writers", "add", "clinic", "--account", "alice")
        yield node, run
    finally:
        node.down()


def kill_9(node: LocalNode, *names: str) -> None:
    info = node.status()
    assert info is not None
    for name in names:
        os.kill(getattr(info, name).pid, signal.SIGKILL)
    wait_for(lambda: not any(node.running()[name] for name in names), 20, f"{names} to die")


def home_files(home: Path) -> dict[str, bytes]:
    """The home's files but the node's own state and the index cache."""
    files = {p.relative_to(home).as_posix(): p for p in home.rglob("*") if p.is_file()}
    return {name: path.read_bytes() for name, path in files.items() if not name.startswith(("node/", "index/"))}


def test_kubo_killed_during_record_add_leaves_no_pointer(
    world: tuple[LocalNode, Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, run = world
    info = node.status()
    assert info is not None
    w3 = connect(info.rpc_url)
    block, files = w3.eth.block_number, home_files(run.home)
    add = IpfsClient.add
    added: list[str] = []

    def add_then_kubo_dies(self: IpfsClient, data: bytes, **options: Any) -> str:
        if added:  # the ciphertext is in; Kubo dies before the key bundle
            kill_9(node, "ipfs")
        added.append(add(self, data, **options))
        return added[-1]

    monkeypatch.setattr(IpfsClient, "add", add_then_kubo_dies)
    refused = run("record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic", status=1)
    monkeypatch.undo()
    assert refused["error"] == "IpfsUnavailableError"
    assert f"IPFS (Kubo) node at {info.ipfs_api} is not reachable" in refused["message"]
    assert len(added) == 1
    assert w3.eth.block_number == block  # nothing sent to the chain
    assert home_files(run.home) == files

    assert node.up().ipfs_api == info.ipfs_api  # Kubo back on its port; anvil untouched
    assert run("record", "list", "--patient", "alice") == []
    assert run("verify", "--patient", "alice")["findings"] == []
    again = run("record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic")
    assert again["record"]["index"] == 0
    assert run("verify", "--patient", "alice")["ok"]


def test_reported_transaction_survives_kill_9_of_anvil_and_kubo(world: tuple[LocalNode, Run]) -> None:
    node, run = world
    before = node.status()
    assert before is not None
    added = run("record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic")["record"]
    kill_9(node, "chain", "ipfs")
    # Whatever anvil's own autosave (every 10 s) holds is dropped: only what the CLI saved counts.
    (node.state_dir / "anvil-autosave.json").unlink(missing_ok=True)
    with pytest.raises(ChainUnavailableError, match="the local chain stopped; what it confirmed last may be lost"):
        node.save()  # what the CLI does before a report: a chain that died under it is an error

    after = LocalNode(node.state_dir).up()  # no ports given: the ones the node was made with
    assert (after.rpc_url, after.ipfs_api) == (before.rpc_url, before.ipfs_api)
    assert (after.chain.pid, after.ipfs.pid) != (before.chain.pid, before.ipfs.pid)
    w3 = connect(after.rpc_url)
    assert w3.eth.block_number == added["block_number"]
    assert w3.eth.get_block("latest")["timestamp"] >= added["timestamp"]
    assert run("record", "list", "--patient", "alice") == [added]
    verified = run("verify", "--patient", "alice")
    assert (verified["ok"], verified["count"], verified["findings"]) == (True, 1, [])


def test_a_torn_autosave_is_passed_over(world: tuple[LocalNode, Run]) -> None:
    """anvil rewrites its autosave in place; killed mid-write it leaves half a file, and the
    state saved for the CLI is loaded instead."""
    node, run = world
    added = run("record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic")["record"]
    kill_9(node, "chain")
    whole = (node.state_dir / "anvil-state.json").read_bytes()
    (node.state_dir / "anvil-autosave.json").write_bytes(whole[: len(whole) // 2])
    node.up()
    assert run("record", "list", "--patient", "alice") == [added]


def test_chain_time_never_goes_back_across_a_restart(world: tuple[LocalNode, Run]) -> None:
    node, run = world
    run("consent", "grant", "clinic", "--days", "1", "--scope", "all", "--purpose", "TREAT", "--account", "alice")
    info = node.status()
    assert info is not None
    w3 = connect(info.rpc_url)
    warp(w3, 2 * DAY)  # the grant has expired
    warped = w3.eth.get_block("latest")["timestamp"]
    [grant] = run("consent", "list", "--patient", "alice")
    assert grant["active"] is False

    assert sorted(node.down()) == ["chain", "ipfs"]
    node.up()
    assert int.from_bytes(w3.eth.call({"data": TIMESTAMP_CODE})) >= warped  # what views see
    mine(w3)
    assert w3.eth.get_block("latest")["timestamp"] >= warped  # what the next block is dated
    [grant] = run("consent", "list", "--patient", "alice")
    assert grant["active"] is False


def test_block_history_stays_in_memory_and_recent_blocks_stay_readable(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "node", chain_port=free_port(), ipfs_port=free_port())
    info = node.up()
    try:
        w3 = connect(info.rpc_url)
        address = w3.to_checksum_address("0x" + "cd" * 20)
        for wei in range(1, HISTORY_BLOCKS + 40):  # past the in-memory limit, where anvil spilled to disk
            fund(w3, address, wei)
            mine(w3)
        head, latest = w3.eth.block_number, w3.eth.get_balance(address)
        # anvil reads an older block in the state the next block ran on: the funding before it.
        for back in (1, 5, HISTORY_BLOCKS - 2):
            assert w3.eth.get_balance(address, head - back) == latest - back + 1
        # anvil's HOME is the state directory, and nothing went to its ~/.foundry/anvil/tmp.
        environ = Path(f"/proc/{info.chain.pid}/environ").read_bytes().split(b"\0")
        assert f"HOME={tmp_path / 'node'}".encode() in environ
        assert not (tmp_path / "node" / ".foundry").exists()
    finally:
        node.down()
    assert not (tmp_path / "node" / ".foundry").exists()
