"""Builds the contract artifacts the package ships: ``python -m medvault.dev.artifacts`` (``make artifacts``).

``COMPILER`` is the one source of the compiler settings; ``foundry.toml``, ``ape-config.yaml``,
``tools/install`` and ``package.json`` are checked against it by a unit test. The build compiles
``contracts/**/*.sol`` (hidden folders skipped: ``ape compile`` unpacks dependencies into
``contracts/.cache/``) with the project's ``solc`` through py-solc-x, and writes
``src/medvault/chain/artifacts.json``: the ABI and creation bytecode of each deployable contract,
the compiler version and settings, and a SHA-256 of every source file it was built from, so a
test can tell when the shipped file is stale. The file is written with sorted keys and fixed
indentation, so rebuilding unchanged sources rewrites it byte for byte and a change reviews as a
diff.

``--check`` recompiles and compares instead of writing (exit status 1 when they differ).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx

from medvault.chain.artifacts import ARTIFACTS_FILE, CONTRACT_NAMES
from medvault.dev.node import find_tool
from medvault.errors import ConfigurationError

__all__ = [
    "COMPILER",
    "PROJECT_ROOT",
    "Compiler",
    "artifacts_path",
    "build",
    "dump",
    "main",
    "source_hashes",
    "stale_sources",
]

# The checkout this module lives in (src/medvault/dev/artifacts.py -> the root).
PROJECT_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Compiler:
    """The solc version and settings every build of ``contracts/`` uses (forge, ape, this module)."""

    version: str
    evm_version: str
    via_ir: bool
    optimizer_runs: int
    remappings: tuple[str, ...] = field(default_factory=tuple)

    def settings(self) -> dict[str, Any]:
        """The ``settings`` of a solc standard-JSON input, without the output selection."""
        return {
            "evmVersion": self.evm_version,
            "optimizer": {"enabled": True, "runs": self.optimizer_runs},
            "remappings": list(self.remappings),
            "viaIR": self.via_ir,
        }


COMPILER = Compiler(
    version="0.8.30",
    evm_version="prague",
    via_ir=True,  # required: without it RecordRegistry hits "stack too deep"
    optimizer_runs=10000,
    remappings=("@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/",),
)


def artifacts_path(root: Path = PROJECT_ROOT) -> Path:
    return root / "src" / "medvault" / "chain" / ARTIFACTS_FILE


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_hashes(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """SHA-256 of each ``contracts/**/*.sol`` outside hidden folders, by path relative to ``root``."""
    files = (p.relative_to(root) for p in sorted((root / "contracts").rglob("*.sol")))
    return {p.as_posix(): _sha256(root / p) for p in files if not any(part.startswith(".") for part in p.parts)}


def _solc_version(solc: str) -> str:
    """``0.8.30+commit.73712a01``: the platform suffix (``.Linux.g++``, ``.Emscripten.clang``) dropped,
    since native solc and soljson emit the same code."""
    out = subprocess.run([solc, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Version: (\d+\.\d+\.\d+\+commit\.[0-9a-f]+)", out)
    if not match or not match.group(1).startswith(COMPILER.version + "+"):
        raise ConfigurationError(f"{solc} is not solc {COMPILER.version}: {out.strip()!r}; run `make install`")
    return match.group(1)


def build(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """Compiles ``contracts/`` under ``root``; returns the content of the artifacts file."""
    solc = find_tool("solc")
    version = _solc_version(solc)
    contracts = source_hashes(root)
    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {path: {"content": (root / path).read_text()} for path in contracts},
            "settings": {**COMPILER.settings(), "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
        },
        base_path=str(root),
        allow_paths=[str(root)],
        solc_binary=solc,
    )
    artifacts = {}
    for name in CONTRACT_NAMES:
        data = output["contracts"][f"contracts/{name}.sol"][name]
        artifacts[name] = {"abi": data["abi"], "bytecode": "0x" + data["evm"]["bytecode"]["object"]}
    # Every file the compiler read: ours, and the OpenZeppelin files they import.
    sources = {path: contracts.get(path) or _sha256(root / path) for path in output["sources"]}
    return {
        "compiler": {"settings": COMPILER.settings(), "version": version},
        "contracts": artifacts,
        "fingerprint": hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest(),
        "sources": sources,
    }


def dump(artifacts: dict[str, Any]) -> str:
    """The artifacts file's text: sorted keys, two-space indentation, a final newline."""
    return json.dumps(artifacts, indent=2, sort_keys=True) + "\n"


def stale_sources(shipped: dict[str, Any], root: Path = PROJECT_ROOT) -> list[str]:
    """What changed since ``shipped`` was built: contract files added, removed or edited, and
    dependency files (node_modules) present here with other content; empty when up to date."""
    recorded: dict[str, str] = shipped["sources"]
    current = source_hashes(root)
    changes = [f"added {p}" for p in sorted(current.keys() - recorded.keys())]
    for path, digest in sorted(recorded.items()):
        if path in current:
            if current[path] != digest:
                changes.append(f"changed {path}")
        elif path.startswith("contracts/"):
            changes.append(f"removed {path}")
        elif (root / path).is_file() and _sha256(root / path) != digest:
            changes.append(f"changed {path}")
    return changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medvault.dev.artifacts", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the checkout holding contracts/")
    parser.add_argument("--check", action="store_true", help="recompile and compare; write nothing")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    path = artifacts_path(root)
    text = dump(build(root))
    if args.check:
        if path.exists() and path.read_text() == text:
            print(f"{path.relative_to(root)} is up to date")
            return 0
        print(f"{path.relative_to(root)} is stale against contracts/: run `make artifacts`", file=sys.stderr)
        return 1
    if path.exists() and path.read_text() == text:
        print(f"{path.relative_to(root)} unchanged")
    else:
        path.write_text(text)
        print(f"wrote {path.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
