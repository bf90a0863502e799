"""The shipped contract artifacts: up to date with contracts/, built with the one set of compiler
settings that forge, ape and the install step also use, and loaded without a compiler."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import yaml

from medvault.chain.artifacts import CONTRACT_NAMES, load_artifacts
from medvault.dev.artifacts import COMPILER, PROJECT_ROOT, artifacts_path, dump, stale_sources

ROOT = PROJECT_ROOT
REBUILD = "run `make artifacts` and commit src/medvault/chain/artifacts.json"


def shipped() -> dict[str, object]:
    return json.loads(artifacts_path(ROOT).read_text())  # type: ignore[no-any-return]


def test_shipped_artifacts_are_built_from_the_current_contracts() -> None:
    changes = stale_sources(shipped(), ROOT)
    assert not changes, f"the shipped artifacts are stale ({'; '.join(changes)}): {REBUILD}"


def test_shipped_artifacts_were_built_with_the_compiler_settings() -> None:
    compiler = shipped()["compiler"]
    assert isinstance(compiler, dict)
    assert compiler["settings"] == COMPILER.settings(), f"compiler settings changed: {REBUILD}"
    assert compiler["version"].startswith(COMPILER.version + "+commit."), f"solc version changed: {REBUILD}"


def test_shipped_artifacts_file_is_in_its_canonical_form() -> None:
    text = artifacts_path(ROOT).read_text()
    assert text == dump(json.loads(text)), f"artifacts.json was edited by hand: {REBUILD}"


def test_foundry_uses_the_compiler_settings() -> None:
    profile = tomllib.loads((ROOT / "foundry.toml").read_text())["profile"]["default"]
    assert profile["evm_version"] == COMPILER.evm_version
    assert profile["via_ir"] is COMPILER.via_ir
    assert profile["optimizer"] is True
    assert profile["optimizer_runs"] == COMPILER.optimizer_runs
    assert set(COMPILER.remappings) <= set(profile["remappings"])


def test_ape_uses_the_compiler_settings() -> None:
    config = yaml.safe_load((ROOT / "ape-config.yaml").read_text())
    solidity = config["solidity"]
    assert str(solidity["version"]) == COMPILER.version
    assert solidity["evm_version"] == COMPILER.evm_version
    assert solidity["via_ir"] is COMPILER.via_ir
    assert solidity["optimize"] is True
    assert solidity["optimization_runs"] == COMPILER.optimizer_runs
    assert config["foundry"]["evm_version"] == COMPILER.evm_version
    # Ape maps the OpenZeppelin import to its npm dependency instead of node_modules/.
    openzeppelin = next(d for d in config["dependencies"] if d["name"] == "openzeppelin")
    npm = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    assert openzeppelin["version"] == npm["@openzeppelin/contracts"]
    assert solidity["import_remapping"] == [f"@openzeppelin/contracts=openzeppelin/{openzeppelin['version']}"]


def test_install_and_npm_pin_the_same_solc() -> None:
    install = re.search(r'^SOLC_VERSION="([^"]+)"$', (ROOT / "tools" / "install").read_text(), re.MULTILINE)
    assert install, "tools/install sets no SOLC_VERSION"
    assert install.group(1) == COMPILER.version
    assert json.loads((ROOT / "package.json").read_text())["devDependencies"]["solc"] == COMPILER.version
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/solc"]["version"] == COMPILER.version


def test_load_artifacts_needs_no_compiler() -> None:
    artifacts = load_artifacts()
    assert list(artifacts) == list(CONTRACT_NAMES)
    for name, artifact in artifacts.items():
        assert artifact.name == name
        assert re.fullmatch(r"0x(?:[0-9a-f]{2})+", artifact.bytecode)
        # The CBOR metadata of the runtime code names the compiler: "solc" and its version, 3 bytes.
        major, minor, patch = (int(n) for n in COMPILER.version.split("."))
        assert f"64736f6c6343{major:02x}{minor:02x}{patch:02x}0033" in artifact.bytecode
        assert any(entry.get("type") == "function" for entry in artifact.abi)
    # In a fresh interpreter: loading does not import py-solc-x.
    code = "import sys; from medvault.chain import load_artifacts; load_artifacts(); print('solcx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
