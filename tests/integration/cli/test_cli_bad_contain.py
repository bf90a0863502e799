"""Bad-input rows, CLI: `medvault record get` of a bad record exits 1 with one sentence naming
the patient, the index and what is wrong, and changes nothing; `record list` lists them all.

One deployment for the module (``badrecords.bad_world``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from badrecords import KINDS, World, bad_world
from click.testing import CliRunner
from data import PASSPHRASE
from unchanged import unchanged

from medvault.cli import cli

if TYPE_CHECKING:
    from collections.abc import Iterator

    from click.testing import Result
    from web3 import Web3

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(local_node: NodeInfo, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with bad_world(local_node, w3, tmp_path_factory.mktemp("contain-cli") / "home", KINDS) as built:
        yield built


def medvault(world: World, local_node: NodeInfo, *args: str) -> Result:
    base = ["--home", str(world.home), "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api]
    return CliRunner().invoke(cli, [*base, *args], env={"MEDVAULT_PASSPHRASE": PASSPHRASE})


@pytest.mark.parametrize("kind", list(KINDS))
def test_record_get_of_a_bad_record_is_refused_in_words(world: World, local_node: NodeInfo, kind: str) -> None:
    index = world.bad[kind]
    with unchanged(world.w3, world.mv.ipfs, world.home):
        result = medvault(
            world, local_node, "record", "get", str(index), "--patient", "patient", "--account", "patient"
        )
    assert result.exit_code == 1, result.output
    assert f"record {index} of {world.patient.address} cannot be used" in result.output
    assert KINDS[kind][1] in result.output
    assert "Traceback" not in result.output


def test_record_list_lists_every_record(world: World, local_node: NodeInfo) -> None:
    with unchanged(world.w3, world.mv.ipfs, world.home):
        result = medvault(world, local_node, "record", "list", "--patient", "patient")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == len(world.good) + len(world.bad)
    assert not any("UNUSABLE" in line for line in lines)  # well-formed pointers: bad only when used
