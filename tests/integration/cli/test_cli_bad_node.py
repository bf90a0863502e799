"""Bad input to `medvault node` and to the endpoints every command talks to: each refused in
words, with exit status 1 (a refusal) or 2 (usage), leaving the chain, the pins and the home
as they were. One deployment for the module: alice registered, clinic a provider writing her
records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from unchanged import unchanged

from medvault.cli import cli
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from click.testing import Result
    from web3 import Web3

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

OBSERVATION = str(Path(__file__).parents[3] / "examples" / "observation.json")
DEAD = "http://127.0.0.1:1"
CHAIN, IPFS = "{chain}", "{ipfs}"  # stand for the session node's ports, which are taken


def invoke(home: Path, node: NodeInfo, *args: str, rpc_url: str = "", ipfs_api: str = "") -> Result:
    endpoints = ["--rpc-url", rpc_url or node.rpc_url, "--ipfs-api", ipfs_api or node.ipfs_api]
    return CliRunner().invoke(cli, ["--home", str(home), *endpoints, *args], env={"MEDVAULT_PASSPHRASE": "bad node"})


@pytest.fixture(scope="module")
def cast_home(tmp_path_factory: pytest.TempPathFactory, local_node: NodeInfo) -> Path:
    home = tmp_path_factory.mktemp("bad-node")
    steps = [
        *(
            step
            for name in ("admin", "alice", "clinic")
            for step in (("account", "new", name), ("account", "fund", name))
        ),
        ("deploy", "--account", "admin"),
        ("register", "--account", "alice"),
        ("register", "--account", "clinic"),
        ("accredit", "clinic", "--role", "provider", "--account", "admin"),
        ("record", "writers", "add", "clinic", "--account", "alice"),
    ]
    for step in steps:
        result = invoke(home, local_node, "--json", *step)
        assert result.exit_code == 0, result.output
    return home


@pytest.fixture(scope="module")
def kubo(local_node: NodeInfo) -> Iterator[IpfsClient]:
    with IpfsClient(local_node.ipfs_api) as client:
        yield client


def port(value: str, node: NodeInfo) -> str:
    return value.format(chain=node.rpc_url.rsplit(":", 1)[1], ipfs=node.ipfs_api.rsplit(":", 1)[1])


NODE_ROWS = [
    pytest.param(["--chain-port", "70000"], 2, "70000 is not in the range 0<=x<=65535", id="chain-port-too-big"),
    pytest.param(["--ipfs-port", "-1"], 2, "-1 is not in the range 0<=x<=65535", id="ipfs-port-negative"),
    pytest.param(["--chain-port", "abc"], 2, "'abc' is not a valid integer", id="chain-port-not-a-number"),
    pytest.param(["--ipfs-port", "5001.5"], 2, "'5001.5' is not a valid integer", id="ipfs-port-fraction"),
    pytest.param(["--chain-port"], 2, "'--chain-port' requires an argument", id="chain-port-missing"),
    pytest.param(["--rpc-port", "8545"], 2, "No such option: --rpc-port", id="unknown-option"),
    pytest.param(
        ["--chain-port", "40123", "--ipfs-port", "40123"], 1, "two different ports, not 40123", id="same-port-twice"
    ),
    pytest.param(
        ["--chain-port", CHAIN], 1, f"port {CHAIN} for the chain is taken by another program", id="chain-port-taken"
    ),
    pytest.param(
        ["--chain-port", "0", "--ipfs-port", IPFS],
        1,
        f"port {IPFS} for IPFS is taken by another program",
        id="ipfs-port-taken",
    ),
]


@pytest.mark.parametrize(("options", "status", "words"), NODE_ROWS)
def test_node_up_refuses_bad_ports(
    options: list[str],
    status: int,
    words: str,
    cast_home: Path,
    local_node: NodeInfo,
    w3: Web3,
    kubo: IpfsClient,
) -> None:
    with unchanged(w3, kubo, cast_home):
        result = invoke(cast_home, local_node, "node", "up", *(port(o, local_node) for o in options))
    assert result.exit_code == status, result.output
    assert port(words, local_node) in result.output
    assert "Traceback" not in result.output
    assert not (cast_home / "node" / "node.json").exists()  # nothing was started


ENDPOINT_ROWS = [
    pytest.param(
        {"rpc_url": DEAD}, ["record", "list", "--patient", "alice"], f"Ethereum node at {DEAD} is not reachable",
        id="dead-rpc-read",
    ),
    pytest.param(
        {"rpc_url": DEAD}, ["record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic"],
        f"Ethereum node at {DEAD} is not reachable", id="dead-rpc-write",
    ),
    pytest.param(
        {"rpc_url": DEAD}, ["deploy", "--account", "admin"], f"Ethereum node at {DEAD} is not reachable",
        id="dead-rpc-deploy",
    ),
    pytest.param(
        {"rpc_url": "notaurl"}, ["record", "list", "--patient", "alice"],
        "'notaurl' is not an http(s) URL: give one like http://127.0.0.1:8545", id="rpc-not-a-url",
    ),
    pytest.param(
        {"rpc_url": "ftp://127.0.0.1:8545"}, ["consent", "list", "--patient", "alice"],
        "'ftp://127.0.0.1:8545' is not an http(s) URL", id="rpc-not-http",
    ),
    pytest.param(
        {"ipfs_api": DEAD}, ["record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic"],
        f"IPFS (Kubo) node at {DEAD} is not reachable", id="dead-ipfs-write",
    ),
    pytest.param(
        {"ipfs_api": "notaurl"}, ["record", "add", OBSERVATION, "--patient", "alice", "--account", "clinic"],
        "the IPFS API URL 'notaurl' is not an http(s) URL", id="ipfs-not-a-url",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("endpoint", "args", "words"), ENDPOINT_ROWS)
def test_bad_endpoints_are_refused_in_words(
    endpoint: dict[str, str],
    args: list[str],
    words: str,
    cast_home: Path,
    local_node: NodeInfo,
    w3: Web3,
    kubo: IpfsClient,
) -> None:
    with unchanged(w3, kubo, cast_home):
        result = invoke(cast_home, local_node, *args, **endpoint)
    assert result.exit_code == 1, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_status_and_down_of_a_home_without_a_node(tmp_path: Path, local_node: NodeInfo) -> None:
    status = invoke(tmp_path, local_node, "node", "status")
    assert (status.exit_code, status.output) == (0, "chain  stopped\nipfs   stopped\n")
    data = json.loads(invoke(tmp_path, local_node, "node", "status", "--json").output)
    assert data == {
        "rpc_url": None,
        "ipfs_api": None,
        "chain": False,
        "ipfs": False,
        "chain_pid": None,
        "ipfs_pid": None,
    }
    down = invoke(tmp_path, local_node, "node", "down")
    assert (down.exit_code, down.output) == (0, "stopped: nothing was running\n")
