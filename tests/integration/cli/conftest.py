"""Shared fixtures of the CLI tests: a runner for the `medvault` CLI over a home of its own, and
a deployment with a cast of funded keystore accounts, all made through the CLI itself."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from medvault.accounts import TEST_SCRYPT_N
from medvault.cli import cli
from medvault.cli.app import Settings

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from click.testing import Result

    from medvault.dev.node import NodeInfo

PASSPHRASE = "cli test passphrase"
CAST = ("admin", "alice", "clinic", "drbob", "eve")
REGISTERED = ("alice", "clinic", "drbob")
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


class Cli:
    """Runs `medvault --home HOME --rpc-url ... --ipfs-api ... ARGS` in process.

    ``run`` asks for JSON (the root's --json, or --json after the subcommand with
    ``json_last``) and returns the parsed document; ``text`` returns what a person reads."""

    def __init__(self, home: Path, node: NodeInfo, *, json_last: bool = False) -> None:
        self.runner = CliRunner()
        self.base = ["--home", str(home), "--rpc-url", node.rpc_url, "--ipfs-api", node.ipfs_api]
        self.passphrase = PASSPHRASE
        self.env = {"MEDVAULT_PASSPHRASE": PASSPHRASE}
        self.json_last = json_last

    def invoke(self, *args: str) -> Result:
        return self.runner.invoke(cli, [*self.base, *args], env=self.env, obj=Settings(scrypt_n=TEST_SCRYPT_N))

    def run(self, *args: str, ok: bool = True) -> Any:
        result = self.invoke(*args, "--json") if self.json_last else self.invoke("--json", *args)
        assert result.exit_code == (0 if ok else 1), result.output
        return json.loads(result.stdout)

    def text(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture(scope="session")
def make_cli(local_node: NodeInfo) -> Callable[[Path], Cli]:
    """A runner over ``home``, with nothing in it yet (for a test, or a module's shared home)."""
    return lambda home: Cli(home, local_node)


@pytest.fixture
def medvault(tmp_path: Path, make_cli: Callable[[Path], Cli]) -> Cli:
    """A deployment by admin; every account of CAST funded, REGISTERED registered, clinic an
    accredited provider on alice's care team."""
    runner = make_cli(tmp_path)
    for name in CAST:
        runner.run("account", "new", name)
        runner.run("account", "fund", name)
    runner.run("deploy", "--account", "admin")
    for name in REGISTERED:
        runner.run("register", "--account", name)
    runner.run("accredit", "clinic", "--role", "provider", "--account", "admin")
    runner.run("record", "writers", "add", "clinic", "--account", "alice")
    return runner


@pytest.fixture
def observation() -> dict[str, Any]:
    """A FHIR R4 laboratory Observation (HbA1c)."""
    return json.loads(json.dumps(OBSERVATION))
