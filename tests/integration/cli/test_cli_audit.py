"""The audit a patient reads: who authorised each change (and who relayed it), values in words,
one line per event whatever an event's author wrote, and the same request ids everywhere.

One history serves every test: alice's grant to drbob signed by alice and relayed by eve, a
grant carol made as alice's delegate, drbob's research request, and clinic's break-glass access
with a reason that tries to forge audit lines."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from medvault.cli import cli

if TYPE_CHECKING:
    from pathlib import Path

    from medvault.dev.node import NodeInfo

ENV = {"MEDVAULT_PASSPHRASE": "audit passphrase"}
FORGED = "unconscious\n2026-12-03 00:00:00 UTC  AccessRevoked         by alice\x1b[2K\r"


@dataclass
class History:
    base: list[str]
    addresses: dict[str, str]

    def text(self, *args: str) -> str:
        result = CliRunner().invoke(cli, [*self.base, *args], env=ENV)
        assert result.exit_code == 0, result.output
        return result.stdout

    def run(self, *args: str) -> Any:
        return json.loads(self.text("--json", *args))


@pytest.fixture(scope="module")
def history(local_node: NodeInfo, tmp_path_factory: pytest.TempPathFactory) -> History:
    home: Path = tmp_path_factory.mktemp("audit")
    h = History(["--home", str(home), "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api], {})
    for name in ("admin", "alice", "clinic", "drbob", "eve", "carol"):
        h.addresses[name] = h.run("account", "new", name)["address"]
        h.run("account", "fund", name)
    h.run("deploy", "--account", "admin")
    for name in ("alice", "drbob", "carol", "clinic", "eve"):
        h.run("register", "--account", name)
    h.run("accredit", "clinic", "--role", "provider", "--account", "admin")
    h.run("accredit", "drbob", "--role", "researcher", "--account", "admin")
    signed = home / "grant.json"
    signed.write_text(h.text("consent", "grant", "drbob", "--days", "3", "--scope", "laboratory", "--sign-only",
                             "--account", "alice"))  # fmt: skip
    h.run("relay", str(signed), "--account", "eve")
    h.run("delegate", "appoint", "carol", "--account", "alice")
    h.run("consent", "grant", "eve", "--days", "2", "--patient", "alice", "--account", "carol")
    h.run("access", "request", "alice", "--days", "14", "--scope", "laboratory,conditions", "--study", "trial-7",
          "--account", "drbob")  # fmt: skip
    h.run("consent", "emergency-policy", "--mode", "any", "--account", "alice")
    h.run("emergency", "alice", "--reason", FORGED, "--account", "clinic")
    return h


def _line(text: str, event: str, *having: str) -> str:
    lines = [line for line in text.splitlines() if f"  {event} " in line and all(h in line for h in having)]
    assert len(lines) == 1, f"{event} {having}: {lines}"
    return lines[0]


def test_a_relayed_grant_shows_its_signer_and_who_relayed_it(history: History) -> None:
    audit = history.text("audit", "--patient", "alice")
    granted = _line(audit, "AccessGranted", "grantee=drbob")
    assert "by alice (0x" in granted
    assert "relayed by eve (0x" in granted
    assert "as delegate" not in granted
    assert "scopes=laboratory" in granted
    assert "purpose=treatment (TREAT)" in granted
    assert re.search(r"validUntil=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", granted)

    entry = next(e for e in history.run("audit", "--patient", "alice") if e["event"] == "AccessGranted")
    assert entry["signer"] == history.addresses["alice"]
    assert entry["sender"] == history.addresses["eve"]
    assert entry["relayed"] is True
    assert entry["details"]["scopes"] == ["laboratory"]
    assert entry["details"]["purpose"] == "TREAT"
    assert isinstance(entry["details"]["validUntil"], int)


def test_a_delegates_change_shows_the_delegate(history: History) -> None:
    granted = _line(history.text("audit", "--patient", "alice"), "AccessGranted", "grantee=eve")
    assert "by carol (0x" in granted
    assert "as delegate" in granted
    assert "relayed by" not in granted  # the delegate sent its own signature


def test_control_characters_in_a_reason_print_escaped_on_one_line(history: History) -> None:
    for text in (history.text("audit", "--patient", "alice"), history.text("query", "history", "--patient", "alice")):
        assert "\x1b" not in text
        assert "\r" not in text
        assert not any(line.startswith("2026-12-03 00:00:00 UTC  AccessRevoked") for line in text.splitlines())
        taken = _line(text, "EmergencyAccessTaken")
        assert "reason=unconscious\\n2026-12-03 00:00:00 UTC  AccessRevoked" in taken
        assert "\\x1b[2K\\r" in taken
    assert history.run("audit", "--patient", "alice")[-1]["details"]["reason"] == FORGED  # JSON keeps the text


def test_request_ids_and_terms_read_the_same_everywhere(history: History) -> None:
    (listed,) = history.run("access", "list", "--patient", "alice")
    request_id = listed["request_id"]
    assert request_id.startswith("0x")
    asked = next(e for e in history.run("audit", "--patient", "alice") if e["event"] == "AccessRequested")
    assert asked["details"]["requestId"] == request_id
    indexed = next(e for e in history.run("query", "history", "--patient", "alice") if e["event"] == "AccessRequested")
    assert indexed["details"]["requestId"] == request_id

    line = history.text("access", "list", "--patient", "alice").strip()
    assert line.startswith(f"{request_id}  pending")
    for words in ("drbob (0x", "asks alice (0x", "laboratory, conditions", "healthcare research (HRESCH)",
                  "14 days from approval", "study trial-7"):  # fmt: skip
        assert words in line
    assert f"requestId={request_id}" in _line(history.text("audit", "--patient", "alice"), "AccessRequested")
    assert f"requestId={request_id}" in _line(history.text("query", "history", "--patient", "alice"), "AccessRequested")


def test_query_history_and_readers_print_utc_times_and_words(history: History) -> None:
    text = history.text("query", "history", "--patient", "alice")
    lines = [line.strip() for line in text.splitlines() if not line.startswith("sync ")]  # the timing line
    assert all(re.match(r"(!! EMERGENCY  )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  ", line) for line in lines), lines
    assert "relayed by eve (0x" in _line(text, "AccessGranted", "grantee=drbob")
    readers = history.text("query", "readers", "--patient", "alice")
    assert re.search(r"drbob \(0x\w+\.\.\w+\)  laboratory  treatment \(TREAT\)  until \d{4}-\d\d-\d\d", readers)
