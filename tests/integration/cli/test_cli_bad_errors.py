"""Bad input at the CLI: each contract refusal it can reach, each --sign-only change the chain
would refuse, and inputs that once printed a traceback. Every row gets its words and exit status
(1 a refusal, 2 a usage error), and leaves the chain, the Kubo pins and the home as they were.

One deployment serves the whole table: alice (patient) has carol as delegate (laboratory,
at most 7 days), a grant to drbob (an accredited researcher) and two of drbob's requests, one
denied and one expired; clinic is an accredited provider; eve is nobody in particular."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from unchanged import unchanged

from medvault.cli import cli
from medvault.dev.anvil import warp

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from medvault.dev.node import NodeInfo
    from medvault.ipfs import IpfsClient

CAST = ("admin", "alice", "clinic", "drbob", "eve", "carol")
ENV = {"MEDVAULT_PASSPHRASE": "bad errors passphrase"}


@dataclass
class World:
    home: Path
    base: list[str]
    files: dict[str, Path]
    requests: dict[str, str]

    def invoke(self, *args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, [*self.base, *args], env=ENV)
        return result.exit_code, result.output

    def run(self, *args: str) -> dict[str, object]:
        code, output = self.invoke("--json", *args)
        assert code == 0, output
        return dict(json.loads(output))


@pytest.fixture(scope="module")
def world(local_node: NodeInfo, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> World:
    home = tmp_path_factory.mktemp("bad-errors")
    base = ["--home", str(home), "--rpc-url", local_node.rpc_url, "--ipfs-api", local_node.ipfs_api]
    world = World(home, base, {}, {})
    for name in CAST:
        world.run("account", "new", name)
        world.run("account", "fund", name)
    world.run("deploy", "--account", "admin")
    for name in ("alice", "drbob", "carol", "clinic"):
        world.run("register", "--account", name)
    world.run("accredit", "clinic", "--role", "provider", "--account", "admin")
    world.run("accredit", "drbob", "--role", "researcher", "--account", "admin")
    world.run("delegate", "appoint", "carol", "--scope", "laboratory", "--max-days", "7", "--account", "alice")

    # A signed grant relayed once (its signature is spent), and one signed to expire.
    spent = home / "spent.json"
    spent.write_text(world.invoke("consent", "grant", "drbob", "--days", "60", "--sign-only", "--account", "alice")[1])
    world.run("relay", str(spent), "--account", "eve")
    stale = home / "stale.json"
    stale.write_text(world.invoke("consent", "grant", "eve", "--days", "1", "--sign-only", "--account", "alice")[1])
    world.files.update(spent=spent, stale=stale)

    asked = world.run("access", "request", "alice", "--days", "3", "--study", "old", "--account", "drbob")
    world.requests["expired"] = str(asked["request"]["request_id"])  # type: ignore[index]
    warp(w3, 31 * 86400)
    asked = world.run("access", "request", "alice", "--days", "3", "--study", "denied", "--account", "drbob")
    world.requests["denied"] = str(asked["request"]["request_id"])  # type: ignore[index]
    world.run("access", "deny", world.requests["denied"], "--account", "alice")
    tampered = home / "tampered.json"
    signed = world.invoke("consent", "grant", "clinic", "--days", "1", "--sign-only", "--account", "alice")[1]
    document = json.loads(signed)
    document["typedData"]["message"]["scopes"] = 1  # the signature no longer matches: it recovers to someone else
    tampered.write_text(json.dumps(document))
    world.files["tampered"] = tampered

    (home / "binary.dat").write_bytes(bytes(range(256)))
    (home / "text.txt").write_text("not json at all\n")
    (home / "other.json").write_text('{"typedData": {}, "signature": "0x"}')
    return world


def _args(world: World, row: str) -> list[str]:
    """A row's command line as arguments, its file: and request: placeholders filled in."""
    fill = {
        **{f"file:{k}": str(v) for k, v in world.files.items()},
        **{f"request:{k}": v for k, v in world.requests.items()},
    }
    names = ("binary.dat", "text.txt", "other.json", "missing/consent.json")
    fill.update({f"file:{name}": str(world.home / name) for name in names})
    return [fill.get(arg, arg) for arg in shlex.split(row)]


ROWS = {  # id: (command line, words, exit status, more words)
    # -- the contracts' refusals, in words
    "self-grant": (
        "consent grant alice --days 3 --account alice",
        "alice (0x",
        1,
        "cannot be granted access to their own records",
    ),
    "window-ends-before-it-starts": (
        "consent grant eve --start 2099-12-03 --until 2099-12-01 --account alice",
        "the grant window ends before it starts (from 2099-12-03 00:00:00 UTC to 2099-12-01 00:00:00 UTC)",
        1,
        "",
    ),
    "window-already-over": (
        "consent grant eve --start 2020-01-01 --until 2020-02-01 --account alice",
        "the grant window is already over",
        1,
        "choose an end in the future",
    ),
    "revoke-of-nothing": (
        "consent revoke eve --account alice",
        "holds no current or future grant to eve (0x",
        1,
        "there is nothing to revoke",
    ),
    "approve-absent-request": ("access approve 0x1234 --account alice", "no research request 0x1234", 1, ""),
    "deny-twice": ("access deny request:denied --account alice", "was already denied", 1, ""),
    "approve-denied": ("access approve request:denied --account alice", "was already denied", 1, ""),
    "approve-expired": (
        "access approve request:expired --account alice",
        "expired at 20",
        1,
        "can no longer be approved: the researcher may ask again",
    ),
    "unaccredited-researcher": (
        "access request alice --days 3 --study s --account eve",
        "eve (0x",
        1,
        "is not an accredited researcher",
    ),
    "request-too-long": (
        "access request alice --days 9999 --study s --account drbob",
        "research access must last from 1 second to 365 days (9999 days asked for)",
        1,
        "",
    ),
    "delegate-outside-scope": (
        "consent grant eve --days 1 --scope imaging --patient alice --account carol",
        "outside the terms of delegate carol (0x",
        1,
        "imaging for 1 day asked",
    ),
    "delegate-window-too-long": (
        "consent grant eve --days 30 --scope laboratory --patient alice --account carol",
        "outside the terms of delegate carol",
        1,
        "laboratory for 30 days asked",
    ),
    "delegate-self-grant": (
        "consent grant carol --days 1 --scope laboratory --patient alice --account carol",
        "delegate carol (0x",
        1,
        "cannot grant to itself",
    ),
    "grant-for-someone-else": (
        "consent grant drbob --days 1 --patient alice --account eve",
        "was signed by eve (0x",
        1,
        "who is neither the patient nor, where allowed, their delegate",
    ),
    "emergency-under-none-policy": (
        "emergency alice --reason ER --account clinic",
        "the emergency policy of alice (0x",
        1,
        "under 'none' nobody may",
    ),
    "emergency-by-a-non-provider": (
        "emergency alice --reason ER --account eve",
        "eve (0x",
        1,
        "is not an accredited provider",
    ),
    "emergency-without-reason": (
        "emergency alice --reason '' --account clinic",
        "emergency access needs a stated reason",
        1,
        "",
    ),
    "appoint-oneself": (
        "delegate appoint alice --account alice",
        "alice (0x",
        1,
        "cannot be appointed or removed as delegate",
    ),
    "remove-a-non-delegate": (
        "delegate remove eve --account alice",
        "eve (0x",
        1,
        "cannot be appointed or removed as delegate",
    ),
    "writer-not-a-provider": (
        "record writers add drbob --account alice",
        "drbob (0x",
        1,
        "is not an accredited provider",
    ),
    "accredit-without-the-role": (
        "accredit eve --role researcher --account eve",
        "does not hold the accreditor role",
        1,
        "",
    ),
    "relay-a-spent-signature": (
        "relay file:spent --account eve",
        "this signed Grant has nonce 0, the relationship is at ",
        1,
        "it was relayed already",
    ),
    "relay-an-expired-signature": (
        "relay file:stale --account eve",
        "this signed Grant expired at 20",
        1,
        "ask its signer for a new one",
    ),
    "relay-a-tampered-document": (
        "relay file:tampered --account eve",
        "this signed Grant was signed by 0x",
        1,
        "or the document was changed after signing",
    ),
    # -- --sign-only: what the chain would refuse is never signed
    "sign-only-self-grant": (
        "consent grant alice --days 3 --sign-only --account alice",
        "cannot be granted access to their own records",
        1,
        "",
    ),
    "sign-only-revoke-of-nothing": (
        "consent revoke eve --sign-only --account alice",
        "there is nothing to revoke",
        1,
        "",
    ),
    "sign-only-window-over": (
        "consent grant eve --start 2020-01-01 --until 2020-02-01 --sign-only --account alice",
        "the grant window is already over",
        1,
        "",
    ),
    "sign-only-delegate-outside-terms": (
        "consent grant eve --days 1 --scope imaging --patient alice --sign-only --account carol",
        "outside the terms of delegate carol",
        1,
        "",
    ),
    "sign-only-for-someone-else": (
        "consent grant drbob --days 1 --patient alice --sign-only --account eve",
        "signed by eve (0x",
        1,
        "",
    ),
    "sign-only-approve-expired": ("access approve request:expired --sign-only --account alice", "expired at 20", 1, ""),
    "sign-only-deny-twice": ("access deny request:denied --sign-only --account alice", "was already denied", 1, ""),
    "sign-only-appoint-oneself": (
        "delegate appoint alice --sign-only --account alice",
        "cannot be appointed or removed as delegate",
        1,
        "",
    ),
    "sign-only-remove-a-non-delegate": (
        "delegate remove eve --sign-only --account alice",
        "cannot be appointed or removed as delegate",
        1,
        "",
    ),
    # -- once tracebacks
    "relay-a-binary-file": (
        "relay file:binary.dat --account eve",
        "not a signed medvault consent document: it is not text",
        1,
        "",
    ),
    "relay-a-non-json-file": ("relay file:text.txt --account eve", "not a signed medvault consent document", 1, ""),
    "relay-json-of-another-shape": (
        "relay file:other.json --account eve",
        "not a signed medvault consent document",
        1,
        "",
    ),
    "rpc-url-not-a-url": (
        "--rpc-url notaurl consent list -p alice",
        "the Ethereum RPC URL 'notaurl' is not an http(s) URL",
        1,
        "",
    ),
    "rpc-url-of-another-scheme": ("--rpc-url ftp://127.0.0.1 consent list -p alice", "is not an http(s) URL", 1, ""),
    "ipfs-api-not-a-url": (
        "--ipfs-api notaurl consent grant eve --days 1 --account alice",
        "the IPFS API URL 'notaurl' is not an http(s) URL",
        1,
        "",
    ),
    "rpc-url-dead": ("--rpc-url http://127.0.0.1:1 consent list -p alice", "is not reachable", 1, ""),
    "export-into-a-missing-folder": (
        "consent export drbob --patient alice -o file:missing/consent.json",
        "No such file or directory: ",
        1,
        "missing/consent.json",
    ),
    "days-not-a-number": ("consent grant eve --days nan --account alice", "is not a number of days above 0", 2, ""),
    "days-beyond-a-century": (
        "consent grant eve --days 1e12 --account alice",
        "is not a number of days above 0",
        2,
        "",
    ),
    "request-days-infinite": (
        "access request alice --days inf --study s --account drbob",
        "is not a number of days above 0",
        2,
        "",
    ),
    "start-before-1970": ("consent grant eve --start 1900-01-01 --days 1 --account alice", "is before 1970", 2, ""),
}


@pytest.mark.parametrize(("args", "words", "status", "more"), list(ROWS.values()), ids=list(ROWS))
def test_bad_input_is_refused_in_words(
    world: World, w3: Web3, ipfs: IpfsClient, args: str, words: str, status: int, more: str
) -> None:
    with unchanged(w3, ipfs, world.home):
        code, output = world.invoke(*_args(world, args))
    assert code == status, output
    assert words in output
    assert more in output
    assert "Traceback" not in output
    assert "ConsentManager" not in output  # words, not the contract's error names


def test_a_refusal_in_json_names_the_contract_error_for_programs(world: World, w3: Web3, ipfs: IpfsClient) -> None:
    with unchanged(w3, ipfs, world.home):
        code, output = world.invoke("--json", "consent", "revoke", "eve", "--account", "alice")
    assert code == 1
    document = json.loads(output)
    assert document["refusal"] == "ConsentManagerNoActiveGrant"
    assert "there is nothing to revoke" in document["message"]
