"""Bad FHIR and bad files through `medvault record add` and `record get`: each is refused with
words that say what is wrong and exit status 1, and leaves the chain, the Kubo pin set and the home
exactly as they were. One deployment serves the whole table."""

from __future__ import annotations

import copy
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from unchanged import unchanged

import medvault
from medvault.cli import cli
from medvault.ipfs import IpfsClient

if TYPE_CHECKING:
    from collections.abc import Iterator

    from click.testing import Result
    from web3 import Web3

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

PASSPHRASE = "bad fhir passphrase"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


class World:
    """A deployment where clinic writes alice's records, driven through the CLI in process."""

    def __init__(self, home: Path, node: NodeInfo) -> None:
        self.home, self.node = home, node
        self.base = ["--home", str(home), "--rpc-url", node.rpc_url, "--ipfs-api", node.ipfs_api]
        self.env = {"MEDVAULT_PASSPHRASE": PASSPHRASE}

    def invoke(self, *args: str) -> Result:
        return CliRunner().invoke(cli, [*self.base, *args], env=self.env)

    def ok(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, local_node: NodeInfo) -> World:
    world = World(tmp_path_factory.mktemp("bad-fhir") / "home", local_node)
    for name in ("admin", "alice", "clinic"):
        world.ok("account", "new", name)
        world.ok("account", "fund", name)
    world.ok("deploy", "--account", "admin")
    for name in ("alice", "clinic"):
        world.ok("register", "--account", name)
    world.ok("accredit", "clinic", "--role", "provider", "--account", "admin")
    world.ok("record", "writers", "add", "clinic", "--account", "alice")
    return world


@pytest.fixture
def ipfs(local_node: NodeInfo) -> Iterator[IpfsClient]:
    with IpfsClient(local_node.ipfs_api) as client:
        yield client


def changed(name: str, **elements: Any) -> bytes:
    resource = copy.deepcopy(example(name))
    for key, value in elements.items():
        if value is None:
            del resource[key]
        else:
            resource[key] = value
    return json.dumps(resource).encode()


def obs(**elements: Any) -> bytes:
    return changed("observation", **elements)


SPO2_WITHOUT_2708 = copy.deepcopy(example("oxygen-saturation"))
SPO2_WITHOUT_2708["code"]["coding"] = SPO2_WITHOUT_2708["code"]["coding"][1:]
CONDITION_GONE = copy.deepcopy(example("condition"))
CONDITION_GONE["clinicalStatus"]["coding"][0]["code"] = "gone"

# (id, file name, bytes, extra options, the words the refusal must hold)
ROWS: list[tuple[str, str, bytes, tuple[str, ...], list[str]]] = [
    ("observation status done", "o.json", obs(status="done"), (), ["status: not a code of observation-status ("]),
    (
        "missing fields all at once",
        "o.json",
        b'{"resourceType": "Observation"}',
        (),
        ["Observation is not valid FHIR R4: ", "code: required, but missing", "status: required, but missing"],
    ),
    ("misspelt resourceType", "o.json", obs(resourceType="Observaton"), (), ["unknown resourceType 'Observaton'"]),
    ("no resourceType", "o.json", obs(resourceType=None), (), ['resourceType is missing (e.g. "resourceType"']),
    ("unknown element", "o.json", obs(colour="blue"), (), ["colour: not an element of this resource type"]),
    (
        "wrong shapes",
        "o.json",
        obs(effectiveDateTime="30/11/2026", subject="Patient/example"),
        (),
        ["effectiveDateTime: not a valid FHIR dateTime", "subject: expected a JSON object"],
    ),
    ("not JSON", "o.json", b"status: final\n", (), ["o.json is not valid JSON: Expecting value at line 1 column 1"]),
    ("binary file named .json", "scan.json", PNG, (), ["scan.json is not text (not UTF-8)"]),
    ("JSON array", "o.json", b"[" + obs() + b"]", (), ["a FHIR resource is a JSON object, not a JSON array"]),
    ("JSON string", "o.json", b'"Observation"', (), ["a FHIR resource is a JSON object, not a JSON string"]),
    ("empty file", "o.json", b"", (), ["o.json is empty: a FHIR resource is a JSON object"]),
    ("blank file", "o.json", b" \n\t\n", (), ["o.json is empty"]),
    (
        "contradicting --category",
        "o.json",
        obs(),
        ("--category", "medications"),
        ["--category medications contradicts o.json: Observation records are laboratory", "leave out --category"],
    ),
    (
        "medication request bad intent",
        "m.json",
        changed("medication-request", intent="prescription"),
        (),
        ["intent: not a code of medicationrequest-intent (proposal, plan, order"],
    ),
    (
        "medication request without intent and status",
        "m.json",
        changed("medication-request", intent=None, status=None),
        (),
        ["intent: required, but missing", "status: required, but missing"],
    ),
    (
        "immunization status given",
        "i.json",
        changed("immunization", status="given"),
        (),
        ["status: not a code of immunization-status (completed, entered-in-error, not-done)"],
    ),
    (
        "condition clinical status gone",
        "c.json",
        json.dumps(CONDITION_GONE).encode(),
        (),
        ["clinicalStatus.coding[0].code: not a code of condition-clinical"],
    ),
    (
        "condition abated but active",
        "c.json",
        changed("condition", abatementDateTime="2025-01-10"),
        (),
        ["clinicalStatus: a condition with an abatement must be inactive, resolved or remission"],
    ),
    (
        "allergy criticality severe",
        "a.json",
        changed("allergy-intolerance", criticality="severe"),
        (),
        ["criticality: not a code of allergy-intolerance-criticality"],
    ),
    (
        "diagnostic report status done",
        "d.json",
        changed("diagnostic-report", status="done"),
        (),
        ["status: not a code of diagnostic-report-status"],
    ),
    (
        "oxygen saturation without 2708-6",
        "s.json",
        json.dumps(SPO2_WITHOUT_2708).encode(),
        (),
        ["code: a vital sign of the oxygensat profile needs the LOINC code 2708-6 as well"],
    ),
    (
        "vital sign in the wrong unit",
        "s.json",
        changed(
            "oxygen-saturation",
            valueQuantity={"value": 0.97, "unit": "1", "system": "http://unitsofmeasure.org", "code": "1"},
        ),
        (),
        ["valueQuantity: the oxygensat profile needs system http://unitsofmeasure.org and code %"],
    ),
    (
        "not FHIR, no --category",
        "scan.png",
        PNG,
        (),
        ["--category is needed for a file that is not a FHIR JSON resource"],
    ),
    (
        "unknown --category",
        "scan.png",
        PNG,
        ("--category", "xray"),
        ["unknown record category 'xray' (one of: laboratory"],
    ),
]


@pytest.mark.parametrize(("name", "data", "options", "words"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_record_add_is_refused_in_words(
    world: World,
    w3: Web3,
    ipfs: IpfsClient,
    tmp_path: Path,
    name: str,
    data: bytes,
    options: tuple[str, ...],
    words: list[str],
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with unchanged(w3, ipfs, world.home):
        result = world.invoke("record", "add", str(path), "--patient", "alice", "--account", "clinic", *options)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for expected in words:
        assert expected in result.output


def test_every_example_is_stored_under_the_category_its_type_implies(world: World, tmp_path: Path) -> None:
    expected = {
        "observation": "laboratory",
        "oxygen-saturation": "laboratory",
        "diagnostic-report": "laboratory",
        "condition": "conditions",
        "allergy-intolerance": "conditions",
        "medication-request": "medications",
        "immunization": "immunizations",
    }
    assert {p.stem for p in EXAMPLES.glob("*.json")} == expected.keys()
    for stem, category in expected.items():
        options = ("--category", category) if stem == "condition" else ()  # agreeing with the type is fine
        out = world.ok(
            "record", "add", str(EXAMPLES / f"{stem}.json"), "--patient", "alice", "--account", "clinic", *options
        )
        assert f"({category})" in out


@pytest.fixture(scope="module")
def image(world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The index of a PNG record in alice's log."""
    path = tmp_path_factory.mktemp("image") / "scan.png"
    path.write_bytes(PNG)
    result = world.invoke("--json", "record", "add", str(path), "--patient", "alice", "--category", "imaging",
                          "--content-type", "image/png", "--account", "clinic")  # fmt: skip
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["record"]["index"])


def test_record_get_refuses_to_write_binary_to_a_terminal(world: World, w3: Web3, ipfs: IpfsClient, image: str) -> None:
    # A real terminal: the CLI runs as a process whose stdout is a pseudo-terminal.
    medvault_cli = Path(sys.executable).parent / "medvault"
    env = {**os.environ, **world.env, "PYTHONPATH": str(Path(medvault.__file__).parents[1])}
    controller, terminal = pty.openpty()
    try:
        with unchanged(w3, ipfs, world.home):
            run = subprocess.run(
                [str(medvault_cli), *world.base, "record", "get", image, "--patient", "alice", "--account", "alice"],
                stdout=terminal,
                stderr=subprocess.PIPE,
                env=env,
                timeout=120,
                check=False,
            )
        os.set_blocking(controller, False)
        try:
            shown = os.read(controller, 4096)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(controller)
        os.close(terminal)
    assert run.returncode == 1
    assert shown == b""  # not a byte of the image reached the terminal
    message = run.stderr.decode()
    assert f"record {image} is {len(PNG)} bytes of image/png, not text, and stdout is a terminal" in message
    assert "write it to a file with -o FILE" in message
    assert "Traceback" not in message


def test_record_get_writes_binary_to_a_pipe_or_a_file(world: World, tmp_path: Path, image: str) -> None:
    piped = world.invoke("record", "get", image, "--patient", "alice", "--account", "alice")
    assert piped.exit_code == 0, piped.output
    assert piped.stdout_bytes == PNG  # exactly the stored bytes
    out = tmp_path / "scan.png"
    world.ok("record", "get", image, "--patient", "alice", "--account", "alice", "-o", str(out))
    assert out.read_bytes() == PNG
