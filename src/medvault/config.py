"""Where medvault keeps its state (the home folder), where a local node listens by default, and
the most bytes an object read from IPFS may have.

The home holds keystores (``keystores/``), deployment records (``deployments/``), the event
index (``index/``), keeper journals and the local node's state. It is ``$MEDVAULT_HOME`` if set,
else ``~/.medvault``; the CLI and the Ape scripts take it as their ``--home`` default.

Size limits are read from ``$MEDVAULT_MAX_RECORD_BYTES`` and ``$MEDVAULT_MAX_BUNDLE_BYTES``
(bytes, or a number with KiB, MiB or GiB), else the defaults below.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from medvault.errors import ConfigurationError

__all__ = [
    "DEFAULT_CHAIN_PORT",
    "DEFAULT_HOME_HELP",
    "DEFAULT_IPFS_PORT",
    "DEFAULT_MAX_BUNDLE_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "HOME_ENV",
    "MAX_BUNDLE_ENV",
    "MAX_RECORD_ENV",
    "default_home",
    "size_setting",
]

HOME_ENV = "MEDVAULT_HOME"
DEFAULT_HOME_HELP = "$MEDVAULT_HOME or ~/.medvault"  # the default, as --help shows it
DEFAULT_CHAIN_PORT = 8545  # anvil's own default
DEFAULT_IPFS_PORT = 5001  # Kubo's own default RPC port

MAX_RECORD_ENV = "MEDVAULT_MAX_RECORD_BYTES"
MAX_BUNDLE_ENV = "MEDVAULT_MAX_BUNDLE_BYTES"
# A record is read whole and decrypted in one pass (about three times its size at the peak):
# 1 GiB holds an imaging study (a CT or MR series is typically 100 MB to 1 GB) while a reader
# stays within a few GiB of memory.
DEFAULT_MAX_RECORD_BYTES = 1 << 30
# A key bundle grows with the records it covers: about 240 bytes a wrap with X25519, 1.7 KB with
# ML-KEM-768+X25519, 8.2 KB a record re-escrowed to 5 keepers with it. 16 MiB holds a key rotation
# over ~9,000 post-quantum records (~70,000 X25519) or a re-escrow of ~2,000 to 5 keepers.
DEFAULT_MAX_BUNDLE_BYTES = 16 << 20
_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def default_home() -> Path:
    """``$MEDVAULT_HOME``, else ``~/.medvault`` (not expanded: ``--home ~/x`` and the variable alike
    are expanded by whoever opens the folder)."""
    return Path(os.environ.get(HOME_ENV, str(Path.home() / ".medvault")))


def size_setting(name: str, default: int) -> int:
    """The size in bytes that environment variable ``name`` gives (``1073741824``, ``512MiB``),
    else ``default``; ConfigurationError names the variable if it is not a positive size."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]iB|B)?\s*", raw, re.IGNORECASE)
    size = int(match[1]) * _UNITS[(match[2] or "").lower()] if match else 0
    if size < 1:
        raise ConfigurationError(
            f"{name}={raw!r} is not a size: give a whole number of bytes, at least 1, "
            f"or one with KiB, MiB or GiB (e.g. {name}=512MiB)"
        )
    return size
