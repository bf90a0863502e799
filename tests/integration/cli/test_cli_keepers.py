"""`medvault keeper ...` through the CLI; `keeper run` as a real long-running process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from medvault.dev.node import free_port

if TYPE_CHECKING:
    from conftest import Cli

pytestmark = pytest.mark.integration


def test_patient_as_its_own_keeper_through_the_cli(medvault: Cli, tmp_path: Path, observation: dict[str, Any]) -> None:
    for command in ("run", "set", "list", "releases"):
        assert "Usage" in medvault.text("keeper", command, "--help")

    medvault.run("keeper", "set", "alice", "--threshold", "1", "--account", "alice")
    record_file = tmp_path / "hba1c.json"
    record_file.write_text(json.dumps(observation))
    medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic")
    # The delegate's grants may open records written before them (the keeper releases record 0).
    medvault.run("delegate", "appoint", "admin", "--open-history", "--account", "alice")
    medvault.run("consent", "grant", "drbob", "--days", "1", "--patient", "alice", "--account", "admin")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **medvault.env}
    command = [str(Path(sys.executable).parent / "medvault"), *medvault.base, "keeper", "run", "--account", "alice",
               "--port", str(port), "--announce", url, "--batch-seconds", "0.3"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if httpx.get(url + "/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the keeper did not come up"
            time.sleep(0.2)

        listed = medvault.run("keeper", "list", "--patient", "alice")
        assert listed["threshold"] == 1
        assert list(listed["urls"].values()) == [url]
        got = medvault.run("record", "get", "0", "--patient", "alice", "--account", "drbob")
        assert got["content"] == observation  # no wrap for drbob: released by the keeper
        deadline = time.monotonic() + 20
        while not (releases := medvault.run("keeper", "releases", "--patient", "alice")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert [r["index"] for r in releases] == [0]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "serving at" in out
