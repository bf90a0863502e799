"""`medvault portal --demo`: the whole stack started by one command, the page served under a
strict Content-Security-Policy, the chain forwarded for reads only, IPFS objects served as
they are, and the development wallet signing for the demo's accounts only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from medvault.portal import CONTENT_SECURITY_POLICY

MEDVAULT = str(Path(sys.executable).parent / "medvault")


@pytest.fixture(scope="module")
def demo() -> Any:
    process = subprocess.Popen(
        [MEDVAULT, "--json", "portal", "--demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, process.communicate(timeout=10)
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err


def _rpc(url: str, method: str, params: list[Any]) -> httpx.Response:
    return httpx.post(url + "rpc", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def test_page_and_config_are_served_under_a_strict_policy(demo: dict[str, Any]) -> None:
    page = httpx.get(demo["portal"])
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<div id="app">' in page.text
    # Any other path is the one page; a path out of the bundle is not a file read.
    assert httpx.get(demo["portal"] + "..%2f..%2fpyproject.toml").text == page.text

    config = httpx.get(demo["portal"] + "config.json").json()
    assert config["chainId"] == 31337
    assert set(config["contracts"]) == {"ParticipantRegistry", "RecordRegistry", "ConsentManager", "KeeperDirectory"}
    assert {a["name"] for a in config["devAccounts"]} >= {"alice", "bob", "provider", "researcher"}


def test_the_chain_is_forwarded_for_reads_only(demo: dict[str, Any]) -> None:
    assert int(_rpc(demo["portal"], "eth_blockNumber", []).json()["result"], 16) > 0
    for method in ("anvil_setBalance", "eth_sendTransaction", "eth_sign", "debug_traceTransaction"):
        answer = _rpc(demo["portal"], method, [])
        assert answer.status_code == 403
        assert "not a read this portal forwards" in answer.json()["error"]["message"]
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, {"jsonrpc": "2.0", "id": 2, "method": "anvil_mine"}]
    assert httpx.post(demo["portal"] + "rpc", json=batch).status_code == 403  # one write refuses the batch
    not_json = httpx.post(demo["portal"] + "rpc", content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400


def test_ipfs_objects_round_trip_as_bytes(demo: dict[str, Any]) -> None:
    data = os.urandom(5000)
    binary = {"Content-Type": "application/octet-stream"}
    cid = httpx.post(demo["portal"] + "ipfs", content=data, headers=binary).json()["cid"]
    assert cid.startswith("b")
    assert httpx.get(demo["portal"] + f"ipfs/{cid}").content == data
    missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert httpx.get(demo["portal"] + f"ipfs/{missing}").status_code == 404
    assert httpx.get(demo["portal"] + "ipfs/not-a-cid").status_code == 200  # the page's own route, not IPFS
    assert httpx.post(demo["portal"] + "ipfs", content=b"", headers=binary).status_code == 413
    headers = {"Content-Type": "application/octet-stream"}
    page = httpx.get(demo["portal"] + f"ipfs/{cid}", headers=headers)
    assert page.headers["content-disposition"] == "attachment"  # never rendered as a page of this origin
    assert page.headers["content-security-policy"] == "sandbox"


def test_the_development_wallet_signs_for_demo_accounts_only(demo: dict[str, Any]) -> None:
    alice = demo["accounts"]["alice"]
    typed = {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Note": [{"name": "text", "type": "string"}],
        },
        "primaryType": "Note",
        "domain": {"name": "medvault", "chainId": 31337},
        "message": {"text": "hello"},
    }
    answer = httpx.post(
        demo["portal"] + "dev-wallet", json={"method": "eth_signTypedData_v4", "params": [alice, typed]}
    )
    signature = answer.json()["result"]
    assert Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == alice

    stranger = Account.create().address
    refused = httpx.post(
        demo["portal"] + "dev-wallet", json={"method": "eth_signTypedData_v4", "params": [stranger, typed]}
    )
    assert "is not one of the demo's accounts" in refused.json()["error"]["message"]
    unknown = httpx.post(demo["portal"] + "dev-wallet", json={"method": "eth_sign", "params": [alice, "0x00"]})
    assert "does not do 'eth_sign'" in unknown.json()["error"]["message"]


def test_requests_that_are_not_the_pages_own_are_refused(demo: dict[str, Any]) -> None:
    """Another site in the same browser (a form post, a rebound DNS name) drives nothing."""
    alice = demo["accounts"]["alice"]
    send = {"method": "eth_sendTransaction", "params": [{"from": alice, "to": alice, "value": "0x1"}]}
    before = int(_rpc(demo["portal"], "eth_getTransactionCount", [alice, "latest"]).json()["result"], 16)
    attempts = {
        "another origin": {"Origin": "http://evil.example", "Content-Type": "application/json"},
        "a cross-site fetch": {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        "a form's content type": {"Content-Type": "text/plain"},
        "a rebound host name": {"Host": "evil.example:80", "Content-Type": "application/json"},
    }
    for what, headers in attempts.items():
        answer = httpx.post(demo["portal"] + "dev-wallet", content=json.dumps(send), headers=headers)
        assert answer.status_code == 403, what
        assert answer.json()["error"] == "refused", what
    assert httpx.get(demo["portal"] + "config.json", headers={"Host": "evil.example"}).status_code == 403
    after = int(_rpc(demo["portal"], "eth_getTransactionCount", [alice, "latest"]).json()["result"], 16)
    assert after == before  # nothing was sent

    config = httpx.get(demo["portal"] + "config.json").json()
    assert {a["name"] for a in config["devAccounts"]}.isdisjoint({"admin", "relayer"})
    assert httpx.post(demo["portal"] + "relay/v1/other", json={}).status_code == 404
    # The relayer behind the portal answers in its own words (here: the document is malformed).
    relayed = httpx.post(demo["portal"] + "relay/v1/consent", json={"typedData": {}, "signature": "0x"})
    assert relayed.status_code == 400
    assert relayed.json()["error"] == "malformed"
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(33)]
    assert httpx.post(demo["portal"] + "rpc", json=batch).status_code == 400
