"""A local stack: an anvil chain and an offline Kubo node, on loopback, with persistent state.

``medvault node up`` and the test suite share this code. State lives in one directory: the
anvil state file (reloaded on restart), the Kubo repo, logs, and ``node.json`` with the pids
and endpoints of the processes this directory started. ``down`` stops only those processes,
and only if they are still the programs it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from medvault.config import DEFAULT_CHAIN_PORT, DEFAULT_IPFS_PORT
from medvault.errors import ConfigurationError, NodeStartError

__all__ = ["LocalNode", "NodeInfo", "find_tool", "free_port"]

ANVIL_CHAIN_ID = 31337
KUBO_MIN_VERSION = (0, 33)


def find_tool(name: str) -> str:
    """Locates ``name`` (anvil, ipfs, solc, forge) on PATH or beside this Python interpreter.

    The project's install step links the pinned tools into the virtualenv's ``bin``, so they
    are found even when the virtualenv is not activated.
    """
    candidates = [
        os.environ.get(f"MEDVAULT_{name.upper()}"),
        shutil.which(name),
        str(Path(sys.executable).parent / name),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigurationError(f"`{name}` was not found on PATH or in the virtualenv; run `make install` first")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ProcessInfo:
    pid: int
    url: str
    log: str


@dataclass
class NodeInfo:
    chain: ProcessInfo
    ipfs: ProcessInfo

    @property
    def rpc_url(self) -> str:
        return self.chain.url

    @property
    def ipfs_api(self) -> str:
        return self.ipfs.url


class LocalNode:
    """anvil and Kubo for one state directory."""

    def __init__(
        self,
        state_dir: Path,
        *,
        chain_port: int = DEFAULT_CHAIN_PORT,
        ipfs_port: int = DEFAULT_IPFS_PORT,
        genesis_timestamp: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.chain_port = chain_port
        self.ipfs_port = ipfs_port
        self.genesis_timestamp = genesis_timestamp  # a fixed start makes gas measurements repeatable
        self._info_file = self.state_dir / "node.json"

    # -- public API ------------------------------------------------------------------------

    def up(self, timeout: float = 60.0) -> NodeInfo:
        """Starts whichever of the two is not already running here; returns both endpoints."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        current = self.status()
        chain = current.chain if current and _alive(current.chain.pid, "anvil") else self._start_chain()
        ipfs = current.ipfs if current and _alive(current.ipfs.pid, "ipfs") else self._start_ipfs()
        info = NodeInfo(chain, ipfs)
        self._info_file.write_text(json.dumps(asdict(info), indent=2))
        try:
            self._wait_ready(info, timeout)
        except NodeStartError:
            self.down()
            raise
        return info

    def status(self) -> NodeInfo | None:
        """The recorded endpoints, or None if nothing was started from this directory."""
        if not self._info_file.exists():
            return None
        raw = json.loads(self._info_file.read_text())
        return NodeInfo(ProcessInfo(**raw["chain"]), ProcessInfo(**raw["ipfs"]))

    def running(self) -> dict[str, bool]:
        info = self.status()
        return {
            "chain": bool(info and _alive(info.chain.pid, "anvil")),
            "ipfs": bool(info and _alive(info.ipfs.pid, "ipfs")),
        }

    def down(self, timeout: float = 20.0) -> list[str]:
        """Stops the processes this directory started (anvil writes its state on the way out)."""
        info = self.status()
        stopped = []
        if info:
            for name, proc, program in (("chain", info.chain, "anvil"), ("ipfs", info.ipfs, "ipfs")):
                if _alive(proc.pid, program):
                    _terminate(proc.pid, timeout)
                    stopped.append(name)
            self._info_file.unlink()
        return stopped

    # -- internals -------------------------------------------------------------------------

    def _start_chain(self) -> ProcessInfo:
        port = self.chain_port or free_port()
        log = self.state_dir / "anvil.log"
        options = {
            "--host": "127.0.0.1",
            "--port": str(port),
            "--chain-id": str(ANVIL_CHAIN_ID),
            "--state": str(self.state_dir / "anvil-state.json"),
            "--state-interval": "5",
            "--accounts": "1",  # funding goes through anvil_setBalance; no well-known keys are used
        }
        if self.genesis_timestamp is not None:
            options["--timestamp"] = str(self.genesis_timestamp)
        args = [find_tool("anvil"), *(part for option in options.items() for part in option)]
        pid = _spawn(args, log, env=os.environ.copy())
        return ProcessInfo(pid, f"http://127.0.0.1:{port}", str(log))

    def _start_ipfs(self) -> ProcessInfo:
        ipfs = find_tool("ipfs")
        repo = self.state_dir / "ipfs"
        env = {**os.environ, "IPFS_PATH": str(repo), "IPFS_TELEMETRY": "off"}
        _check_kubo_version(ipfs)
        if not (repo / "config").exists():
            subprocess.run([ipfs, "init", "--profile", "test"], env=env, check=True, capture_output=True)
        port = self.ipfs_port or free_port()
        config_file = repo / "config"
        config = json.loads(config_file.read_text())
        # Loopback only, offline: no swarm listeners, no bootstrap peers, no discovery.
        config["Addresses"].update(API=f"/ip4/127.0.0.1/tcp/{port}", Gateway="/ip4/127.0.0.1/tcp/0", Swarm=[])
        config["Bootstrap"] = []
        config_file.write_text(json.dumps(config, indent=2))
        (repo / "api").unlink(missing_ok=True)
        log = self.state_dir / "ipfs.log"
        pid = _spawn([ipfs, "daemon", "--offline"], log, env=env)
        return ProcessInfo(pid, f"http://127.0.0.1:{port}", str(log))

    def _wait_ready(self, info: NodeInfo, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probes = [
            ("anvil", info.chain, "/", {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}),
            ("Kubo", info.ipfs, "/api/v0/id", None),
        ]
        for what, proc, path, body in probes:
            with httpx.Client(base_url=proc.url, timeout=2.0) as client:
                while True:
                    if not _alive(proc.pid, None):
                        raise NodeStartError(what, Path(proc.log))
                    try:
                        if client.post(path, json=body).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise NodeStartError(f"{what} (not ready after {timeout:.0f} s)", Path(proc.log))
                    time.sleep(0.1)


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> int:
    with log.open("ab") as out:
        # A session of its own: `node up` returns while the node keeps running.
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    return proc.pid


def _alive(pid: int, program: str | None) -> bool:
    """Whether ``pid`` runs and (when ``program`` is given) is that program, not a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    if stat.split(") ", 1)[-1].startswith("Z"):
        return False
    if program is None:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return bool(cmdline) and os.path.basename(cmdline[0].decode(errors="replace")) == program


def _reap(pid: int) -> None:
    """Collects ``pid`` if it is our exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _terminate(pid: int, timeout: float) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid, None):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    _reap(pid)


def _check_kubo_version(ipfs: str) -> None:
    out = subprocess.run([ipfs, "version", "--number"], capture_output=True, text=True, check=True).stdout
    parts = tuple(int(p) for p in out.strip().split("-")[0].split(".")[:2])
    if parts < KUBO_MIN_VERSION:
        wanted = ".".join(map(str, KUBO_MIN_VERSION))
        raise ConfigurationError(f"{ipfs} is Kubo {out.strip()}; medvault needs Kubo >= {wanted}")
