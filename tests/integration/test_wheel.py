"""The built wheel, installed into a fresh virtualenv outside the checkout, is a working medvault.

The wheel is built offline (no build isolation) from a copy of the package sources, and
installed without its dependencies into a virtualenv of its own; a ``.pth`` file there makes
the dependencies importable from the project's virtualenv, whose ``site-packages`` is added as a
plain path, so the editable install's ``.pth`` in it is never processed and the checkout's
``src`` stays out of reach. The installed ``medvault`` CLI then deploys the shipped artifacts,
writes a record and reads it back against the session's anvil and Kubo, from a directory
outside the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medvault.accounts import TEST_SCRYPT_N, Keystore

if TYPE_CHECKING:
    from web3 import Web3

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "wheel test passphrase"
OBSERVATION = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
    "subject": {"reference": "Patient/p1"},
    "valueQuantity": {"value": 6.1, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
}
# What the installed interpreter reports about where medvault came from.
PROVENANCE = """
import json, sys
import medvault, medvault.cli
from medvault.chain import load_artifacts
load_artifacts()
print(json.dumps({
    "files": sorted({m.__file__ for n, m in sys.modules.items() if n.split(".")[0] == "medvault"}),
    "path": sys.path,
    "solcx": "solcx" in sys.modules,
}))
"""


def run(*args: str | Path, **kwargs: Any) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    tree = work / "tree"
    shutil.copytree(ROOT / "src" / "medvault", tree / "src" / "medvault", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", work / "wheels", tree)
    (wheel,) = (work / "wheels").glob("medvault-*.whl")

    venv = work / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(*pip, "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index", wheel, env=clean_env(venv))
    site = Path(run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (site / "medvault_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    return cwd


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_the_installed_package_comes_from_the_wheel(venv: Path, outside: Path) -> None:
    report = json.loads(run(venv / "bin" / "python", "-c", PROVENANCE, cwd=outside, env=clean_env(venv)))
    assert report["files"], report
    assert all(Path(f).resolve().is_relative_to(venv.resolve()) for f in report["files"]), report["files"]
    on_path = [Path(p or outside).resolve() for p in report["path"]]
    assert not [p for p in on_path if p == ROOT or p.is_relative_to(ROOT / "src")], report["path"]
    assert report["solcx"] is False  # the artifacts are package data: no compiler at run time


def test_the_installed_cli_writes_and_reads_a_record(
    venv: Path, outside: Path, home: Path, w3: Web3, local_node: NodeInfo
) -> None:
    for name in ("admin", "patient", "provider"):
        address = Keystore(home, scrypt_n=TEST_SCRYPT_N).create(name, PASSPHRASE)
        w3.provider.make_request("anvil_setBalance", [address, hex(10**20)])  # type: ignore[arg-type]
    env = {**clean_env(venv), "MEDVAULT_PASSPHRASE": PASSPHRASE}
    base = ("--home", home, "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api, "--json")

    def medvault(*args: str | Path) -> Any:
        return json.loads(run(venv / "bin" / "medvault", *base, *args, cwd=outside, env=env))

    medvault("deploy", "--account", "admin")
    for name in ("patient", "provider"):
        medvault("register", "--account", name)
    medvault("accredit", "provider", "--role", "provider", "--account", "admin")
    medvault("record", "writers", "add", "provider", "--account", "patient")
    record_file = outside / "hba1c.json"
    record_file.write_text(json.dumps(OBSERVATION))

    added = medvault("record", "add", record_file, "--patient", "patient", "--account", "provider")
    assert added["record"]["cid"]
    got = medvault("record", "get", "0", "--patient", "patient", "--account", "patient")
    assert got["content"] == OBSERVATION
    assert [r["cid"] for r in medvault("record", "list", "--patient", "patient")] == [added["record"]["cid"]]
