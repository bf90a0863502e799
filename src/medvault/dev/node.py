"""A local stack: an anvil chain and an offline Kubo node, on loopback, with persistent state.

``medvault node up`` and the test suite share this code. State lives in one directory: the
anvil state file (reloaded on restart), the Kubo repo, logs, ``ports.json`` (the ports the
node was made with, kept across ``down``) and ``node.json`` with the pids and endpoints of the
processes this directory started. ``down`` stops only those processes, and only if they are
still the programs it started.

The chain is saved in two ways. ``save`` asks anvil for its state and replaces
``anvil-state.json`` atomically (the CLI calls it before it reports a transaction, and ``down``
before it stops anvil); anvil itself rewrites ``anvil-autosave.json`` every
``AUTOSAVE_SECONDS`` for any other client. ``up`` loads whichever holds the later block and is
whole (a kill during anvil's own write leaves a truncated file). Historical state is kept in
memory for the last ``HISTORY_BLOCKS`` blocks and never written to disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
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
from typing import Any

import httpx

from medvault.config import DEFAULT_CHAIN_PORT, DEFAULT_IPFS_PORT
from medvault.errors import ChainUnavailableError, ConfigurationError, NodeStartError

__all__ = ["LocalNode", "NodeInfo", "find_tool", "free_port"]

ANVIL_CHAIN_ID = 31337
KUBO_MIN_VERSION = (0, 33)
# Block states anvil keeps for reads at an older block (a keeper's pinned block lies a few back).
# Memory only: anvil's default spills older states to ~/.foundry/anvil/tmp and leaves them there.
HISTORY_BLOCKS = 128
# anvil's own periodic save, a safety net for clients that do not call ``save`` (the library,
# seeding); each save rewrites the whole state file, which grows with the chain (13.9 MB at 250
# seeded patients, 54.8 MB at 1,000). Measured at 250 patients: 0.05 s of anvil CPU a save,
# so about 0.2 s at 1,000 and 0.4 s at 2,000, 2-4 % of a core every 10 s (twice that at 5 s).
# What it protects is small: the CLI saves before it reports a transaction, and a seeding run
# resumes, so a crash loses at most these seconds of unreported work.
AUTOSAVE_SECONDS = 10


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
        chain_port: int | None = None,
        ipfs_port: int | None = None,
        genesis_timestamp: int | None = None,
    ) -> None:
        """Ports left out are the ones this state was made with (else 8545 and 5001); 0 is any
        free port. The ports ``up`` starts on are remembered for the next one."""
        self.state_dir = Path(state_dir)
        self._asked = {"the chain": chain_port, "IPFS": ipfs_port}
        self._ports_file = self.state_dir / "ports.json"
        remembered = json.loads(self._ports_file.read_text()) if self._ports_file.exists() else {}
        self.chain_port = remembered.get("chain", DEFAULT_CHAIN_PORT) if chain_port is None else chain_port
        self.ipfs_port = remembered.get("ipfs", DEFAULT_IPFS_PORT) if ipfs_port is None else ipfs_port
        self.genesis_timestamp = genesis_timestamp  # a fixed start makes gas measurements repeatable
        self._info_file = self.state_dir / "node.json"
        self._state_file = self.state_dir / "anvil-state.json"
        self._autosave_file = self.state_dir / "anvil-autosave.json"

    # -- public API ------------------------------------------------------------------------

    def up(self, timeout: float = 60.0) -> NodeInfo:
        """Starts whichever of the two is not already running here, each on its remembered
        port; returns both endpoints."""
        if self.chain_port and self.chain_port == self.ipfs_port:
            raise ConfigurationError(f"the chain and IPFS need two different ports, not {self.chain_port} for both")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        current = self.status()
        chain_running = bool(current and _alive(current.chain.pid, "anvil"))
        ipfs_running = bool(current and _alive(current.ipfs.pid, "ipfs"))
        for name, running, port, proc in (
            ("the chain", chain_running, self.chain_port, current and current.chain),
            ("IPFS", ipfs_running, self.ipfs_port, current and current.ipfs),
        ):
            asked = self._asked[name]
            if running and proc and asked and asked != _port_of(proc.url):
                raise ConfigurationError(
                    f"{name} of this node already runs on port {_port_of(proc.url)}; "
                    f"`medvault node down` first to move it to {asked}"
                )
            if not running and port and not _port_freed(port):
                raise ConfigurationError(
                    f"port {port} for {name} is taken by another program; stop it or choose another port"
                )
        chain = current.chain if current and chain_running else self._start_chain()
        ipfs = current.ipfs if current and ipfs_running else self._start_ipfs()
        info = NodeInfo(chain, ipfs)
        self._info_file.write_text(json.dumps(asdict(info), indent=2))
        try:
            self._wait_ready(info, timeout)
            if not chain_running:
                self._resume_time(info.rpc_url)
        except (NodeStartError, ChainUnavailableError):
            self.down()
            raise
        ports = {"chain": _port_of(chain.url), "ipfs": _port_of(ipfs.url)}
        self._ports_file.write_text(json.dumps(ports))
        return info

    def save(self, *, only_new_blocks: bool = False) -> None:
        """Writes the running chain's state to the state file, replacing it atomically, so a
        transaction confirmed before this call survives anvil being killed. One saver at a time:
        a later save never puts an older state in place. ``only_new_blocks``: skip it when no
        block was mined since the last save (a read-only command costs one request)."""
        info = self.status()
        if not info or not _alive(info.chain.pid, "anvil"):
            where = info.rpc_url if info else str(self.state_dir)
            raise ChainUnavailableError(where, "the local chain stopped; what it confirmed last may be lost")
        head_file = self.state_dir / "anvil-state.head"
        with (self.state_dir / "anvil-state.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            head = _rpc(info.rpc_url, "eth_getBlockByNumber", ["latest", False])["hash"]
            if only_new_blocks and head_file.exists() and head_file.read_text() == head:
                return
            dumped = _rpc(info.rpc_url, "anvil_dumpState", [], timeout=120.0)
            _write_durably(self._state_file, gzip.decompress(bytes.fromhex(dumped.removeprefix("0x"))))
            head_file.write_text(head)

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
        """Stops the processes this directory started, saving the chain first."""
        info = self.status()
        stopped = []
        if info:
            if _alive(info.chain.pid, "anvil"):
                with contextlib.suppress(ChainUnavailableError):  # a hung anvil: its autosave stands
                    self.save()
            for name, proc, program in (("chain", info.chain, "anvil"), ("ipfs", info.ipfs, "ipfs")):
                if _alive(proc.pid, program):
                    _terminate(proc.pid, timeout)
                    stopped.append(name)
            self._info_file.unlink()
        shutil.rmtree(self.state_dir / ".foundry", ignore_errors=True)
        return stopped

    # -- internals -------------------------------------------------------------------------

    def _start_chain(self) -> ProcessInfo:
        port = self.chain_port or free_port()
        log = self.state_dir / "anvil.log"
        options = {
            "--host": "127.0.0.1",
            "--port": str(port),
            "--chain-id": str(ANVIL_CHAIN_ID),
            "--dump-state": str(self._autosave_file),
            "--state-interval": str(AUTOSAVE_SECONDS),
            "--prune-history": str(HISTORY_BLOCKS),
            "--accounts": "1",  # funding goes through anvil_setBalance; no well-known keys are used
        }
        if self._latest_saved_state():
            options["--load-state"] = str(self._state_file)
        if self.genesis_timestamp is not None:
            options["--timestamp"] = str(self.genesis_timestamp)
        args = [find_tool("anvil"), *(part for option in options.items() for part in option)]
        # Whatever anvil keeps under ~ (its history cache, ~/.foundry/anvil/tmp) stays in here.
        pid = _spawn(args, log, env={**os.environ, "HOME": str(self.state_dir)})
        return ProcessInfo(pid, f"http://127.0.0.1:{port}", str(log))

    def _latest_saved_state(self) -> bool:
        """Puts the saved state with the later block (a whole one) in the state file; whether
        there is one. On a tie the state file wins: it is whole by construction, and what the CLI
        reported rests on it."""
        for stale in self.state_dir.glob("anvil-state.*.tmp"):  # left by a saver killed mid-write
            stale.unlink()
        candidates = []
        for rank, path in enumerate((self._state_file, self._autosave_file)):
            with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
                candidates.append((int(json.loads(path.read_bytes())["best_block_number"]), -rank, path))
        if not candidates:
            return False
        newest = max(candidates)[2]
        if newest != self._state_file:
            newest.replace(self._state_file)
        return True

    def _resume_time(self, rpc_url: str) -> None:
        """Chain time never goes back across a restart: anvil, reloaded, would date the next
        block by the wall clock, before a last block that chain time had moved ahead (``warp``)."""
        latest = int(_rpc(rpc_url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        if latest > time.time():
            _rpc(rpc_url, "anvil_setTime", [latest])

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


def _rpc(url: str, method: str, params: list[object], timeout: float = 10.0) -> Any:
    try:
        response = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=timeout
        )
    except httpx.TransportError as exc:
        raise ChainUnavailableError(url, type(exc).__name__) from None
    body = response.json()
    if "error" in body:
        raise ChainUnavailableError(url, f"{method}: {body['error'].get('message')}")
    return body["result"]


def _write_durably(path: Path, data: bytes) -> None:
    """Replaces ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _port_freed(port: int, seconds: float = 5.0) -> bool:
    """Whether ``port`` is free, or frees within ``seconds``: a process killed a moment ago (this
    node's own anvil or Kubo after ``kill -9``) closes its sockets only after it has stopped
    looking alive."""
    deadline = time.monotonic() + seconds
    while not _port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` (as servers do, despite connections in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


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
