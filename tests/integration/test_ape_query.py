"""`ape run query` end to end, as an Ape user runs it: an activated shell and nothing more,
against the session's anvil (APE_FOUNDRY_HOST), a deployment and a record made through the
package, and a temporary Ape data folder (the user's ~/.ape is never read or written)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from activated import run_activated
from data import LAB

from medvault.model import Category

if TYPE_CHECKING:
    from pathlib import Path

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


def test_ape_run_query_reads_the_deployments_records(
    mv: Medvault, home: Path, tmp_path: Path, local_node: NodeInfo, patient: Wallet, provider: Wallet
) -> None:
    added = mv.add_record(provider, patient.address, LAB, Category.LABORATORY)
    env = {"APE_DATA_FOLDER": str(tmp_path / "ape"), "APE_FOUNDRY_HOST": local_node.rpc_url}

    def query(*args: str) -> str:
        command = ["ape", "run", "query", "--home", str(home), *args, "--network", "ethereum:local:foundry"]
        run = run_activated(command, env)
        assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
        return run.stdout

    # The address as a browser wallet gives it: lower case.
    records = json.loads(query("records", "--patient", patient.address.lower(), "--json"))
    assert [(r["category"], r["cid"]) for r in records] == [("laboratory", added.pointer.cid)]
    assert "laboratory" in query("records", "--patient", patient.address)

    refused = run_activated(
        ["ape", "run", "query", "--home", str(home), "records", "--patient", "0x1234",
         "--network", "ethereum:local:foundry"], env,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "is not an address" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
