"""The CLI's refusals of IPFS objects over their limits, of bad limit settings and of `gc`
misuse or a dead IPFS endpoint: one line in words, exit status 1 (2 for usage), and the chain,
the pin set and the home left as they were."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from dags import expanding_dag, hostile_pointer
from data import LAB, PASSPHRASE
from helpers import add, new_wallet
from unchanged import unchanged

from medvault.accounts import Keystore
from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cli import cli
from medvault.client import Medvault
from medvault.dev.node import free_port
from medvault.ipfs import IpfsClient
from medvault.model import Category, Role

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from click.testing import Result
    from web3 import Web3

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


@dataclass
class World:
    """A deployment whose patient's record 1 is an expanding DAG and record 2 names one as its
    key bundle (record 0 is sound), and a FHIR file to add."""

    home: Path
    node: NodeInfo
    ipfs: IpfsClient
    bomb: str
    fhir: Path
    output: Path

    def run(self, *args: str, ipfs_api: str | None = None, **env: str) -> Result:
        base = ["--home", str(self.home), "--rpc-url", self.node.rpc_url, "--ipfs-api", ipfs_api or self.node.ipfs_api]
        return CliRunner().invoke(cli, [*base, *args], env={"MEDVAULT_PASSPHRASE": PASSPHRASE, **env})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, w3: Web3, local_node: NodeInfo) -> Iterator[World]:
    state = tmp_path_factory.mktemp("bad-ipfs-cli")
    home = state / "home"
    keystore = Keystore(home)
    admin, patient, provider = (new_wallet(keystore, w3, n) for n in ("admin", "patient", "provider"))
    deployment, _ = deploy(w3, admin, home)
    ipfs = IpfsClient(local_node.ipfs_api)
    mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
    for wallet in (patient, provider):
        mv.register(wallet)
    mv.accredit(admin, provider.address, Role.PROVIDER)
    mv.set_writer(patient, provider.address, frozenset(Category))
    good = add(mv, provider, patient)
    bomb = expanding_dag(local_node.ipfs_api, 7000)
    genuine = hashlib.sha256(ipfs.cat(good.cid)).digest()
    hostile_pointer(mv, provider, patient.address, bomb, hashlib.sha256(b"").digest(), good.keys_cid)
    hostile_pointer(mv, provider, patient.address, good.cid, genuine, bomb)
    fhir = state / "observation.json"
    fhir.write_bytes(LAB)
    yield World(home, local_node, ipfs, bomb, fhir, state / "out.bin")
    ipfs.close()


def get(world: World, index: int) -> list[str]:
    return ["record", "get", str(index), "--patient", "patient", "--account", "patient", "-o", str(world.output)]


def add_file(world: World) -> list[str]:
    return ["record", "add", str(world.fhir), "--patient", "patient", "--account", "provider"]


DEAD = f"http://127.0.0.1:{free_port()}"
ROWS = [
    ("get-record-expanding-dag", lambda w: get(w, 1), {}, None, 1,
     "states 7,340,032,000 bytes, over the limit of 1,073,741,824 bytes for a record's ciphertext"),
    ("get-bundle-expanding-dag", lambda w: get(w, 2), {}, None, 1,
     "over the limit of 16,777,216 bytes for a key bundle; it was not read (raise MEDVAULT_MAX_BUNDLE_BYTES"),
    ("get-over-configured-record-limit", lambda w: get(w, 0), {"MEDVAULT_MAX_RECORD_BYTES": "64"}, None, 1,
     "over the limit of 64 bytes for a record's ciphertext; it was not read (raise MEDVAULT_MAX_RECORD_BYTES"),
    ("get-over-configured-bundle-limit", lambda w: get(w, 0), {"MEDVAULT_MAX_BUNDLE_BYTES": "100"}, None, 1,
     "over the limit of 100 bytes for a key bundle"),
    ("get-record-limit-not-a-number", lambda w: get(w, 0), {"MEDVAULT_MAX_RECORD_BYTES": "lots"}, None, 1,
     "MEDVAULT_MAX_RECORD_BYTES='lots' is not a size: give a whole number of bytes, at least 1"),
    ("get-record-limit-negative", lambda w: get(w, 0), {"MEDVAULT_MAX_RECORD_BYTES": "-1GiB"}, None, 1,
     "MEDVAULT_MAX_RECORD_BYTES='-1GiB' is not a size"),
    ("add-over-record-limit", add_file, {"MEDVAULT_MAX_RECORD_BYTES": "16"}, None, 1,
     "is over the limit of 16 bytes that readers fetch (raise MEDVAULT_MAX_RECORD_BYTES for readers and writers"),
    ("add-bundle-limit-zero", add_file, {"MEDVAULT_MAX_BUNDLE_BYTES": "0"}, None, 1,
     "MEDVAULT_MAX_BUNDLE_BYTES='0' is not a size"),
    ("get-dead-ipfs-endpoint", lambda w: get(w, 0), {}, DEAD, 1, f"IPFS (Kubo) node at {DEAD} is not reachable"),
    ("gc-dead-ipfs-endpoint", lambda w: ["gc"], {}, DEAD, 1, f"IPFS (Kubo) node at {DEAD} is not reachable"),
    ("gc-unpin-dead-ipfs-endpoint", lambda w: ["gc", "--unpin", "--yes"], {}, DEAD, 1, "is not reachable"),
    ("gc-bad-bundle-limit", lambda w: ["gc"], {"MEDVAULT_MAX_BUNDLE_BYTES": "1.5MiB"}, None, 1,
     "MEDVAULT_MAX_BUNDLE_BYTES='1.5MiB' is not a size"),
    ("gc-yes-without-unpin", lambda w: ["gc", "--yes"], {}, None, 2, "--yes only applies with --unpin"),
    ("gc-unpin-without-a-terminal", lambda w: ["gc", "--unpin"], {}, None, 2,
     "--unpin asks before unpinning; add --yes to unpin without a prompt"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "ipfs_api", "status", "words"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_bad_ipfs_input_is_refused_in_words(
    world: World, w3: Web3, args: object, env: dict[str, str], ipfs_api: str | None, status: int, words: str
) -> None:
    with unchanged(w3, world.ipfs, world.home):
        result = world.run(*args(world), ipfs_api=ipfs_api, **env)  # type: ignore[operator]
    assert result.exit_code == status, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert not world.output.exists()


def test_gc_on_a_dead_endpoint_answers_json_in_words(world: World, w3: Web3) -> None:
    with unchanged(w3, world.ipfs, world.home):
        result = world.run("--json", "gc", ipfs_api=DEAD)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "IpfsUnavailableError"
