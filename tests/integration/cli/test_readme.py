"""The README's "Using the CLI" block runs as written: the fenced block is taken from README.md
and run by bash, line for line, as a new user would, from a directory that holds the checkout's
examples/ and its virtualenv, with a fresh home (HOME is the test's) and a fresh local node."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import medvault
from medvault.dev.node import LocalNode, free_port

ROOT = Path(__file__).resolve().parents[3]


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using the CLI") :]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "no sh block under 'Using the CLI'"
    return match.group(1)


def test_the_readme_cli_block_runs_as_written(tmp_path: Path) -> None:
    block = readme_block()
    assert "examples/observation.json" in block
    (tmp_path / ".venv").symlink_to(sys.prefix)  # `source .venv/bin/activate` finds this virtualenv
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDVAULT_", "VIRTUAL_ENV"))}
    env |= {
        "HOME": str(tmp_path),  # ~/.medvault is the test's
        "PYTHONPATH": str(Path(medvault.__file__).parents[1]),  # the code under test
    }
    # The block's `medvault node up` finds this node already running in ~/.medvault/node and keeps
    # it: free ports, so that the walk-through never meets a node of the developer's own.
    node = LocalNode(tmp_path / ".medvault" / "node", chain_port=free_port(), ipfs_port=free_port())
    node.up()
    try:
        run = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
        assert not node.running()["chain"], "`medvault node down` left the chain running"
    finally:
        node.down()

    signed = json.loads((tmp_path / "grant.json").read_text())
    assert signed["typedData"]["primaryType"] == "Grant"
    # The relayed grant narrowed drbob's access to laboratory: --sign-only widened nothing.
    assert signed["typedData"]["message"]["scopes"] == 1 << 0
    assert (tmp_path / "alice.mvk").exists()
    # What drbob read, byte for byte: the prescription (record 1), then the HbA1c (record 0).
    prescription, hba1c = (
        (ROOT / "examples" / name).read_text() for name in ("medication-request.json", "observation.json")
    )
    assert prescription in run.stdout
    assert hba1c in run.stdout.split(prescription, 1)[1]
