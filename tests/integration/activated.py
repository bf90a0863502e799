"""Runs a command as an Ape user does: `source .venv/bin/activate`, then the command, with no
SOLCX_BINARY_PATH and nothing of Ape's or medvault's in the environment but what a test names.

The network is not needed: solc is the checkout's own, which the activate script points
py-solc-x at (tools/install writes that line)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["PROJECT", "run_activated"]

PROJECT = Path(__file__).resolve().parents[2]


def run_activated(command: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``command`` in bash after sourcing the checkout's activate script; stdin is /dev/null,
    so a prompt fails the run instead of hanging it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APE_", "MEDVAULT_", "SOLCX_", "VIRTUAL_ENV"))}
    script = 'source "$0/.venv/bin/activate" && exec "$@"'
    return subprocess.run(
        ["bash", "-c", script, str(PROJECT), *command],
        cwd=PROJECT,
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
