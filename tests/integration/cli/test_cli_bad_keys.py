"""Unusable keys through the CLI: a write names the reader it skipped, a grant the records
whose keys it could not share (text and --json), and every refusal says why, exits 1 (2 for
usage) and leaves chain, pins and home as they were."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from keyfaults import LOW, LOW_ORDER, add_raw, garbage_wrap_bundle, publish, x25519_key
from unchanged import unchanged

from medvault.accounts import Keystore
from medvault.chain import Chain
from medvault.cli import cli
from medvault.client import Medvault
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

PASSPHRASE = "cli bad keys passphrase"
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
    ],
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
    "subject": {"reference": "Patient/p1"},
    "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
}


@dataclass
class Home:
    """A CLI home with a deployment, and the library over the same home (to do by hand what
    the CLI never does: publish a bad key, write a record no key of the patient opens)."""

    path: Path
    node: NodeInfo
    ipfs: IpfsClient
    record: Path

    @functools.cached_property
    def mv(self) -> Medvault:
        return Medvault(Chain.open(self.node.rpc_url, self.path), self.ipfs)

    def invoke(self, *args: str) -> Any:
        base = ["--home", str(self.path), "--rpc-url", self.node.rpc_url, "--ipfs-api", self.node.ipfs_api]
        return CliRunner().invoke(cli, [*base, *args], env={"MEDVAULT_PASSPHRASE": PASSPHRASE})

    def run(self, *args: str) -> Any:
        result = self.invoke("--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def wallet(self, name: str) -> Wallet:
        return Keystore(self.path).unlock(name, PASSPHRASE)

    def address(self, name: str) -> str:
        return self.wallet(name).address


def make_home(path: Path, node: NodeInfo, ipfs: IpfsClient, accounts: tuple[str, ...]) -> Home:
    """admin deploys; alice, clinic and drbob register; clinic is an accredited provider on
    alice's care team; the other ``accounts`` exist, funded and unregistered."""
    record = path.parent / f"{path.name}-hba1c.json"
    record.write_text(json.dumps(OBSERVATION))
    home = Home(path, node, ipfs, record)
    for name in ("admin", "alice", "clinic", "drbob", *accounts):
        home.run("account", "new", name)
        home.run("account", "fund", name)
    home.run("deploy", "--account", "admin")
    for name in ("alice", "clinic", "drbob"):
        home.run("register", "--account", name)
    home.run("accredit", "clinic", "--role", "provider", "--account", "admin")
    home.run("record", "writers", "add", "clinic", "--account", "alice")
    return home


@pytest.fixture
def fresh(tmp_path: Path, local_node: NodeInfo, ipfs: IpfsClient) -> Home:
    return make_home(tmp_path / "home", local_node, ipfs, ("eve",))


def test_a_write_names_the_reader_whose_key_it_skipped(fresh: Home) -> None:
    publish(fresh.mv, fresh.wallet("eve"), x25519_key(LOW_ORDER[2]))
    for grantee in ("drbob", "eve"):  # no record yet: no key to share
        fresh.run("consent", "grant", grantee, "--days", "1", "--account", "alice")
    eve = fresh.address("eve")

    text = fresh.invoke("record", "add", str(fresh.record), "--patient", "alice", "--account", "clinic")
    added = fresh.run("record", "add", str(fresh.record), "--patient", "alice", "--account", "clinic")

    assert text.exit_code == 0, text.output
    assert f"skipped {eve}: the X25519 encryption public key is one of the low-order points" in text.output
    assert added["readers"] == [fresh.address(n) for n in ("alice", "clinic", "drbob")]
    assert [s["reader"] for s in added["skipped"]] == [eve]
    assert "low-order point" in added["skipped"][0]["reason"]
    got = fresh.run("record", "get", str(added["record"]["index"]), "--patient", "alice", "--account", "drbob")
    assert got["content"] == OBSERVATION


def test_a_grant_names_the_records_whose_keys_it_could_not_share(fresh: Home) -> None:
    fresh.run("record", "add", str(fresh.record), "--patient", "alice", "--account", "clinic")
    clinic, alice = fresh.wallet("clinic"), fresh.wallet("alice")
    bad = add_raw(fresh.mv, clinic, alice, garbage_wrap_bundle(fresh.mv, clinic, alice))

    text = fresh.invoke("consent", "grant", "drbob", "--days", "1", "--account", "alice")
    fresh.run("register", "--account", "eve")
    granted = fresh.run("consent", "grant", "eve", "--days", "1", "--account", "alice")

    assert text.exit_code == 0, text.output
    assert "1 record key(s) not shared (the patient's keys do not open them):" in text.output
    assert f"record {bad}: every key wrap of record {bad}" in text.output
    assert [s["index"] for s in granted["skipped"]] == [bad]
    assert "failed authentication" in granted["skipped"][0]["reason"]
    got = fresh.run("record", "get", "0", "--patient", "alice", "--account", "drbob")  # its key was shared
    assert got["content"] == OBSERVATION


def test_an_approval_names_the_records_whose_keys_it_could_not_share(fresh: Home) -> None:
    fresh.run("record", "add", str(fresh.record), "--patient", "alice", "--account", "clinic")
    clinic, alice = fresh.wallet("clinic"), fresh.wallet("alice")
    bad = add_raw(fresh.mv, clinic, alice, garbage_wrap_bundle(fresh.mv, clinic, alice))
    fresh.run("register", "--account", "eve")
    fresh.run("accredit", "eve", "--role", "researcher", "--account", "admin")
    asked = fresh.run("access", "request", "alice", "--scope", "laboratory", "--days", "7", "--study", "S-1",
                      "--account", "eve")  # fmt: skip

    approved = fresh.run("access", "approve", asked["request"]["request_id"], "--account", "alice")

    assert approved["tx"].startswith("0x")
    assert [s["index"] for s in approved["skipped"]] == [bad]


# -- the table of refusals -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, local_node: NodeInfo) -> Iterator[Home]:
    """One home for the whole table: alice holds a record; lowkey (an accredited researcher
    with a pending request to alice) and victim (a patient) publish low-order keys; nokey
    never registered."""
    with IpfsClient(local_node.ipfs_api) as ipfs:
        home = make_home(tmp_path_factory.mktemp("cli-bad-keys") / "home", local_node, ipfs,
                         ("lowkey", "victim", "nokey"))  # fmt: skip
        for name in ("lowkey", "victim"):
            home.run("register", "--account", name)
        home.run("accredit", "lowkey", "--role", "researcher", "--account", "admin")
        home.run("record", "writers", "add", "clinic", "--account", "victim")
        home.run("record", "add", str(home.record), "--patient", "alice", "--account", "clinic")
        home.run("access", "request", "alice", "--scope", "laboratory", "--days", "7", "--study", "S-1",
                 "--account", "lowkey")  # fmt: skip
        for name in ("lowkey", "victim"):
            publish(home.mv, home.wallet(name), LOW)
        yield home


def lowkey_request(home: Home) -> str:
    return str(home.run("access", "list", "--researcher", "lowkey")[0]["request_id"])


def args(*words: str) -> Callable[[Home], list[str]]:
    return lambda home: list(words)


ROWS = [
    pytest.param(args("consent", "grant", "drbob", "--days", "1", "--no-share-keys", "--account", "alice"),
                 2, "No such option: --no-share-keys", id="grant-old-option"),
    pytest.param(lambda home: ["access", "approve", lowkey_request(home), "--no-share-keys", "--account", "alice"],
                 2, "No such option: --no-share-keys", id="approve-old-option"),
    pytest.param(args("consent", "grant", "lowkey", "--days", "1", "--account", "alice"),
                 1, "no record key can be shared with .* low-order point", id="grant-low-order"),
    pytest.param(args("consent", "grant", "lowkey", "--days", "1", "--sign-only", "--account", "alice"),
                 1, "no record key can be shared with", id="grant-low-order-sign-only"),
    pytest.param(args("consent", "grant", "nokey", "--days", "1", "--account", "alice"),
                 1, "has not registered an encryption key", id="grant-unregistered"),
    pytest.param(lambda home: ["access", "approve", lowkey_request(home), "--account", "alice"],
                 1, "no record key can be shared with", id="approve-low-order"),
    pytest.param(args("keeper", "set", "lowkey", "--threshold", "1", "--account", "alice"),
                 1, "keeper .* cannot be chosen", id="keeper-low-order"),
    pytest.param(lambda home: ["record", "add", str(home.record), "--patient", "victim", "--account", "clinic"],
                 1, "the encryption key the patient .* low-order point", id="write-for-patient-with-low-order-key"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "status", "words"), ROWS)
def test_an_unusable_key_is_refused_in_words_and_changes_nothing(
    shared: Home, w3: Web3, argv: Callable[[Home], list[str]], status: int, words: str
) -> None:
    command = argv(shared)
    with unchanged(w3, shared.mv.ipfs, shared.path):
        result = shared.invoke(*command)
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert re.search(words, result.output), result.output
