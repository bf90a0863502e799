"""Where medvault keeps its state (the home folder), and where a local node listens by default.

The home holds keystores (``keystores/``), deployment records (``deployments/``), the event
index (``index/``), keeper journals and the local node's state. It is ``$MEDVAULT_HOME`` if set,
else ``~/.medvault``; the CLI and the Ape scripts take it as their ``--home`` default.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_CHAIN_PORT", "DEFAULT_HOME_HELP", "DEFAULT_IPFS_PORT", "HOME_ENV", "default_home"]

HOME_ENV = "MEDVAULT_HOME"
DEFAULT_HOME_HELP = "$MEDVAULT_HOME or ~/.medvault"  # the default, as --help shows it
DEFAULT_CHAIN_PORT = 8545  # anvil's own default
DEFAULT_IPFS_PORT = 5001  # Kubo's own default RPC port


def default_home() -> Path:
    """``$MEDVAULT_HOME``, else ``~/.medvault`` (not expanded: ``--home ~/x`` and the variable alike
    are expanded by whoever opens the folder)."""
    return Path(os.environ.get(HOME_ENV, str(Path.home() / ".medvault")))
