"""Compiled contract artifacts and deployment records.

The artifacts (ABI and creation bytecode of each deployable contract) ship inside the package
as ``artifacts.json``, built from ``contracts/`` by ``python -m medvault.dev.artifacts``
(``make artifacts``), so an installed wheel needs neither a compiler nor a checkout, and no ABI
is ever copied by hand. A unit test fails when the shipped file is stale against
``contracts/``. A deployment is recorded in ``<home>/deployments/<chain id>.json``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from medvault.crypto import KeySuite
from medvault.errors import ConfigurationError

__all__ = ["ARTIFACTS_FILE", "CONTRACT_NAMES", "Artifact", "Deployment", "load_artifacts"]

CONTRACT_NAMES = ("ParticipantRegistry", "RecordRegistry", "ConsentManager", "KeeperDirectory")
ARTIFACTS_FILE = "artifacts.json"


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


def load_artifacts() -> dict[str, Artifact]:
    """The shipped artifacts of the four contracts, by contract name."""
    return dict(_shipped())


@functools.cache
def _shipped() -> dict[str, Artifact]:
    try:
        text = resources.files("medvault.chain").joinpath(ARTIFACTS_FILE).read_text()
    except FileNotFoundError:
        raise ConfigurationError(
            f"medvault.chain has no {ARTIFACTS_FILE}; in a checkout, run `make artifacts`"
        ) from None
    contracts: dict[str, Any] = json.loads(text)["contracts"]
    return {name: Artifact(name=name, **contracts[name]) for name in CONTRACT_NAMES}
