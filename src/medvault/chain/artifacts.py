"""Compiled contract artifacts and deployment records.

Artifacts come from compiling ``contracts/`` with py-solc-x and the project's ``solc`` (the
same compiler and settings forge and ape-solidity use), cached under ``.build/`` by a hash of
the sources and settings, so no ABI is ever copied by hand. A deployment is recorded in
``<home>/deployments/<chain id>.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import solcx
from pydantic import BaseModel

from medvault.crypto import KeySuite
from medvault.dev.node import find_tool
from medvault.errors import ConfigurationError

__all__ = ["CONTRACT_NAMES", "Artifact", "Deployment", "load_artifacts", "project_root"]

SOLC_VERSION = "0.8.30"
CONTRACT_NAMES = ("ParticipantRegistry", "RecordRegistry", "ConsentManager", "KeeperDirectory")
# Must match foundry.toml and ape-config.yaml.
COMPILER_SETTINGS = {
    "evmVersion": "prague",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 10000},
    "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}


class Artifact(BaseModel):
    name: str
    abi: list[dict[str, object]]
    bytecode: str


class Deployment(BaseModel):
    """Where the contracts of one chain live, and the HPKE suite its participants use."""

    chain_id: int
    block_number: int
    deployer: str
    key_suite: KeySuite
    participant_registry: str
    record_registry: str
    consent_manager: str
    keeper_directory: str

    @staticmethod
    def path(home: Path, chain_id: int) -> Path:
        return Path(home) / "deployments" / f"{chain_id}.json"

    @classmethod
    def load(cls, home: Path, chain_id: int) -> Deployment:
        path = cls.path(home, chain_id)
        if not path.exists():
            raise ConfigurationError(f"no deployment for chain {chain_id} in {path.parent}; run `medvault deploy`")
        return cls.model_validate_json(path.read_text())

    def save(self, home: Path) -> Path:
        path = self.path(home, self.chain_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n")
        return path


def project_root() -> Path:
    """The checkout holding ``contracts/``: $MEDVAULT_PROJECT, or the one this package lives in."""
    env = os.environ.get("MEDVAULT_PROJECT")
    root = Path(env) if env else Path(__file__).resolve().parents[3]
    if not (root / "contracts").is_dir():
        raise ConfigurationError(f"no contracts/ folder under {root}; set MEDVAULT_PROJECT to the medvault checkout")
    return root


def load_artifacts(root: Path | None = None) -> dict[str, Artifact]:
    """Compiles the contracts if their sources changed since the cached build; returns artifacts."""
    root = root or project_root()
    # Skip hidden folders: `ape compile` briefly copies dependencies into contracts/.cache/.
    files = [p.relative_to(root) for p in sorted((root / "contracts").rglob("*.sol"))]
    sources = {str(p): (root / p).read_text() for p in files if not any(part.startswith(".") for part in p.parts)}
    fingerprint = hashlib.sha256(
        json.dumps([SOLC_VERSION, COMPILER_SETTINGS, sources], sort_keys=True).encode()
    ).hexdigest()
    cache = root / ".build" / "medvault-artifacts.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("fingerprint") == fingerprint:
            return {name: Artifact.model_validate(a) for name, a in cached["artifacts"].items()}

    output = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {k: {"content": v} for k, v in sources.items()},
            "settings": COMPILER_SETTINGS,
        },
        base_path=str(root),
        allow_paths=[str(root)],
        solc_binary=find_tool("solc"),
    )
    artifacts = {}
    for path, contracts in output["contracts"].items():
        for name, data in contracts.items():
            if name in CONTRACT_NAMES and path == f"contracts/{name}.sol":
                artifacts[name] = Artifact(
                    name=name, abi=data["abi"], bytecode="0x" + data["evm"]["bytecode"]["object"]
                )
    cache.parent.mkdir(exist_ok=True)
    cache.write_text(
        json.dumps({"fingerprint": fingerprint, "artifacts": {n: a.model_dump() for n, a in artifacts.items()}})
    )
    return artifacts
