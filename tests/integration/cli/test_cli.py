"""The `medvault` CLI against a real anvil and Kubo: every command, --json, --help, errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from medvault.cli import cli

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import Cli

pytestmark = pytest.mark.integration


def test_story_through_the_cli(medvault: Cli, tmp_path: Path, observation: dict[str, Any]) -> None:
    record_file = tmp_path / "hba1c.json"
    record_file.write_text(json.dumps(observation))

    added = medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic")
    assert added["record"]["category"] == "laboratory"
    assert added["transaction"]["gas_used"] > 21000

    listed = medvault.run("record", "list", "--patient", "alice")
    assert [r["cid"] for r in listed] == [added["record"]["cid"]]

    got = medvault.run("record", "get", "0", "--patient", "alice", "--account", "alice")
    assert got["content"] == observation

    refused = medvault.run("record", "get", "0", "--patient", "alice", "--account", "drbob", ok=False)
    assert refused["error"] == "AccessDeniedError"

    medvault.run("consent", "grant", "drbob", "--days", "1", "--account", "alice")
    assert medvault.run("record", "get", "0", "--patient", "alice", "--account", "drbob")["content"] == observation
    assert medvault.run("consent", "list", "--patient", "alice")[0]["active"] is True

    medvault.run("consent", "revoke", "drbob", "--account", "alice")
    assert medvault.run("consent", "list", "--patient", "alice") == []
    refused = medvault.run("record", "get", "0", "--patient", "alice", "--account", "drbob", ok=False)
    assert "no active grant" in refused["message"]


def test_grant_without_sharing_keys_through_the_cli(medvault: Cli, tmp_path: Path, observation: dict[str, Any]) -> None:
    record_file = tmp_path / "hba1c.json"
    record_file.write_text(json.dumps(observation))
    medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic")

    medvault.run("consent", "grant", "drbob", "--days", "1", "--no-share", "--account", "alice")

    assert medvault.run("consent", "list", "--patient", "alice")[0]["active"] is True
    refused = medvault.run("record", "get", "0", "--patient", "alice", "--account", "drbob", ok=False)
    assert "no key of record 0" in refused["message"]


def test_research_request_approved_by_signature_relayed_by_someone_else(
    medvault: Cli, tmp_path: Path, observation: dict[str, Any]
) -> None:
    record_file = tmp_path / "hba1c.json"
    record_file.write_text(json.dumps(observation))
    medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic")
    medvault.run("register", "--account", "eve")
    medvault.run("accredit", "eve", "--role", "researcher", "--account", "admin")

    asked = medvault.run("access", "request", "alice", "--scope", "laboratory", "--days", "7", "--study", "S-1",
                         "--account", "eve")  # fmt: skip
    request_id = asked["request"]["request_id"]
    assert medvault.run("access", "list", "--patient", "alice")[0]["status"] == "pending"

    signed = medvault.runner.invoke(
        cli, [*medvault.base, "access", "approve", request_id, "--sign-only", "--account", "alice"], env=medvault.env
    )
    assert signed.exit_code == 0, signed.output
    assert json.loads(signed.stdout)["typedData"]["primaryType"] == "ApproveRequest"
    signed_file = tmp_path / "approval.json"
    signed_file.write_text(signed.stdout)
    assert medvault.run("access", "list", "--patient", "alice")[0]["status"] == "pending"  # nothing sent yet

    medvault.run("relay", str(signed_file), "--account", "drbob")

    assert medvault.run("access", "list", "--patient", "alice")[0]["status"] == "approved"
    assert medvault.run("record", "get", "0", "--patient", "alice", "--account", "eve")["content"] == observation
    history = [e["event"] for e in medvault.run("audit", "--patient", "alice")]
    assert history[-3:] == ["AccessRequested", "RequestApproved", "KeysShared"]
    consent = medvault.run("consent", "export", "eve", "--patient", "alice")
    assert consent["resourceType"] == "Consent"
    assert consent["provision"]["purpose"][0]["code"] == "HRESCH"
    assert consent["provision"]["extension"][0]["valueReference"]["identifier"]["value"] == "S-1"  # its study


def test_delegate_and_emergency_through_the_cli(medvault: Cli) -> None:
    medvault.run("delegate", "appoint", "drbob", "--scope", "laboratory,conditions", "--max-days", "7",
                 "--account", "alice")  # fmt: skip
    medvault.run("consent", "grant", "eve", "--days", "1", "--scope", "laboratory,conditions", "--patient", "alice",
                 "--account", "drbob")  # fmt: skip
    grants = medvault.run("consent", "list", "--patient", "alice")
    assert grants[0]["scopes"] == ["conditions", "laboratory"]
    assert grants[0]["kind"] == "delegate"
    assert "[by a delegate]" in medvault.text("consent", "list", "--patient", "alice")
    # Beyond its terms, the delegate is refused by name.
    refused = medvault.run("consent", "grant", "eve", "--days", "30", "--scope", "laboratory", "--patient", "alice",
                           "--account", "drbob", ok=False)  # fmt: skip
    assert refused["refusal"] == "ConsentManagerOutsideDelegateTerms"

    # Break-glass is opt-in.
    refused = medvault.run("emergency", "alice", "--reason", "unconscious in ER", "--account", "clinic", ok=False)
    assert refused["refusal"] == "ConsentManagerEmergencyNotPermitted"
    policy = medvault.run("consent", "emergency-policy", "--mode", "named", "--allow", "clinic", "--account", "alice")
    assert (policy["mode"], policy["full_history"], len(policy["transactions"])) == ("named", False, 2)
    medvault.run("emergency", "alice", "--reason", "unconscious in ER\nAccessRevoked forged", "--account", "clinic")

    emergency = [g for g in medvault.run("consent", "list", "--patient", "alice") if g["emergency"]]
    assert emergency[0]["purpose"] == "ETREAT"
    assert emergency[0]["kind"] == "emergency"
    audit = medvault.text("audit", "--patient", "alice")
    assert "!! 1 EMERGENCY" in audit
    assert "!! EMERGENCY" in audit
    assert "unconscious in ER\\nAccessRevoked forged" in audit  # the newline shown escaped, no forged line
    assert not any(line.startswith("AccessRevoked") for line in audit.splitlines())

    medvault.run("consent", "emergency-policy", "--block", "clinic", "--account", "alice")
    refused = medvault.run("emergency", "alice", "--reason", "again", "--account", "clinic", ok=False)
    assert refused["refusal"] == "ConsentManagerEmergencyNotPermitted"

    # A removed delegate's grants end; a signature can be voided without granting.
    medvault.run("delegate", "remove", "drbob", "--account", "alice")
    medvault.run("consent", "invalidate-nonce", "eve", "--account", "alice")
    history = [e["event"] for e in medvault.run("audit", "--patient", "alice")]
    assert {"DelegateRemoved", "EmergencyPolicySet", "EmergencyStandingSet", "NonceInvalidated"} <= set(history)


def test_invalid_fhir_is_refused_before_anything_is_written(medvault: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "Observation", "status": "final"}))  # no code

    error = medvault.run("record", "add", str(bad), "--patient", "alice", "--account", "clinic", ok=False)

    assert error["error"] == "FhirValidationError"
    assert medvault.run("record", "list", "--patient", "alice") == []


def test_errors_name_what_is_wrong(medvault: Cli) -> None:
    unknown = medvault.run("register", "--account", "nobody", ok=False)
    assert "unknown account 'nobody'" in unknown["message"]

    medvault.env["MEDVAULT_PASSPHRASE"] = "wrong"
    wrong = medvault.run("register", "--account", "alice", ok=False)
    assert wrong["error"] == "WrongPassphraseError"

    medvault.env["MEDVAULT_PASSPHRASE"] = medvault.passphrase
    stranger = medvault.run("accredit", "eve", "--role", "researcher", "--account", "eve", ok=False)
    assert stranger["refusal"] == "AccessControlUnauthorizedAccount"


def test_care_team_and_flags_through_the_cli(medvault: Cli, tmp_path: Path, observation: dict[str, Any]) -> None:
    record_file = tmp_path / "hba1c.json"
    record_file.write_text(json.dumps(observation))
    team = medvault.run("record", "writers", "list", "--patient", "alice")
    assert list(team.values()) == [sorted(["laboratory", "imaging", "medications", "conditions", "immunizations",
                                           "notes"])]  # fmt: skip

    # drbob is not accredited, so alice cannot put it on her care team; clinic, narrowed to
    # imaging, cannot add a laboratory result.
    refused = medvault.run("record", "writers", "add", "drbob", "--account", "alice", ok=False)
    assert refused["error"] == "ContractError"
    assert refused["refusal"] == "RecordRegistryNotAProvider"
    medvault.run("record", "writers", "add", "clinic", "--scope", "imaging", "--account", "alice")
    outside = medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic", ok=False)
    assert outside["refusal"] == "RecordRegistryCategoryNotAllowed"
    medvault.run("record", "writers", "add", "clinic", "--scope", "laboratory", "--account", "alice")
    added = medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic")
    assert added["record"]["seq"] == 0

    flagged = medvault.run("record", "flag", "0", "--disputed", "--account", "alice")
    assert (flagged["disputed"], flagged["hidden"]) == (True, False)
    (listed,) = medvault.run("record", "list", "--patient", "alice")
    assert (listed["disputed"], listed["hidden"]) == (True, False)
    assert "DISPUTED by the patient" in medvault.text("record", "list", "--patient", "alice")

    medvault.run("record", "writers", "remove", "clinic", "--account", "alice")
    assert medvault.run("record", "writers", "list", "--patient", "alice") == {}
    removed = medvault.run("record", "add", str(record_file), "--patient", "alice", "--account", "clinic", ok=False)
    assert removed["refusal"] == "RecordRegistryUnauthorizedAuthor"


def test_without_a_deployment_the_error_says_what_to_run(tmp_path: Path, make_cli: Callable[[Path], Cli]) -> None:
    runner = make_cli(tmp_path / "empty")

    error = runner.run("record", "list", "--patient", "0x" + "12" * 20, ok=False)

    assert "run `medvault deploy`" in error["message"]


@pytest.mark.parametrize(
    "command",
    [[], ["account"], ["account", "new"], ["node", "up"], ["deploy"], ["register"], ["accredit"], ["record", "add"],
     ["record", "list"], ["record", "get"], ["record", "flag"], ["record", "writers", "add"],
     ["record", "writers", "remove"], ["record", "writers", "list"], ["consent", "grant"], ["consent", "revoke"],
     ["consent", "list"],
     ["consent", "export"], ["delegate", "appoint"], ["access", "request"], ["access", "approve"], ["access", "list"],
     ["emergency"], ["relay"], ["audit"], ["bench", "gas"], ["bench", "release"], ["bench", "fetch"],
     ["bench", "reads"], ["bench", "index"], ["bench", "verify"], ["bench", "seeding"], ["bench", "queries"],
     ["bench", "all"], ["demo"]],
)  # fmt: skip
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])

    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert "--json" in result.output or not command or command in (["account"],)
