"""`medvault relay serve` as a real long-running process, and `relay`'s two uses in its help."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import Cli

pytestmark = pytest.mark.integration


def _first_line(process: subprocess.Popen[str], timeout: float = 60) -> str:
    """The first line ``process`` prints, waiting at most ``timeout`` seconds for it."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout), "the relayer printed nothing"
    line = process.stdout.readline()
    assert line, process.communicate()
    return line


def test_relay_serve_relays_a_signed_grant_and_stops_on_sigterm(medvault: Cli) -> None:
    signed = medvault.invoke("consent", "grant", "drbob", "--days", "1", "--sign-only", "--account", "alice")
    assert signed.exit_code == 0, signed.output
    command = [str(Path(sys.executable).parent / "medvault"), *medvault.base, "--json", "relay", "serve",
               "--account", "eve", "--port", "0", "--rate", "5"]  # fmt: skip
    env = {**os.environ, **medvault.env}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = json.loads(_first_line(process))
        assert started["relayer"] == medvault.run("account", "list")["eve"]
        assert httpx.get(started["url"] + "/v1/health").json()["chainId"] == started["chainId"]

        answer = httpx.post(
            started["url"] + "/v1/consent",
            content=signed.stdout,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )

        assert answer.status_code == 200, answer.text
        assert answer.json()["kind"] == "Grant"
        grants = medvault.run("consent", "list", "--patient", "alice")
        assert [g["grantee"] for g in grants] == [medvault.run("account", "list")["drbob"]]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "kind=Grant" in err  # one line per request ...
    assert json.loads(signed.stdout)["signature"][2:] not in err  # ... and never its body


def test_relay_help_shows_both_uses(medvault: Cli) -> None:
    shown = medvault.text("relay", "--help")

    assert "medvault relay FILE [--signature HEX]" in shown
    assert "medvault relay serve --account NAME" in shown
    assert "serve" in medvault.text("relay", "serve", "--help")
