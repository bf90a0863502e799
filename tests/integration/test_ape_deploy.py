"""`ape run deploy` end to end: a real anvil, a real Ape keystore account, no standard input.

It runs in a shell that sourced .venv/bin/activate and nothing more (no SOLCX_BINARY_PATH): Ape
compiles the contracts offline with the checkout's solc. The test starts its own anvil on a
free loopback port (and stops it), points ape-foundry at it with APE_FOUNDRY_HOST, and gives Ape
a temporary data folder (APE_DATA_FOLDER) holding a keystore for a freshly generated key, so
the user's ~/.ape is never read or written. The keystore's passphrase reaches Ape through
APE_ACCOUNTS_<alias>_PASSPHRASE and `--yes` turns on autosign, so nothing prompts; stdin is
/dev/null, so a prompt would fail the run instead of hanging it.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from typing import TYPE_CHECKING

import pytest
from activated import run_activated
from eth_account import Account
from web3 import Web3

from medvault.chain.artifacts import Deployment
from medvault.crypto import KeySuite
from medvault.dev.anvil import fund
from medvault.dev.node import find_tool, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

ALIAS = "medvault_test_deployer"
ANVIL_CHAIN_ID = 31337
# Minimal ABIs for the two wiring checks; the full ABIs are not needed here.
HAS_ROLE_ABI = [
    {
        "type": "function",
        "name": "hasRole",
        "stateMutability": "view",
        "inputs": [{"name": "role", "type": "bytes32"}, {"name": "account", "type": "address"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
PARTICIPANTS_ABI = [
    {
        "type": "function",
        "name": name,
        "stateMutability": "view",
        "inputs": [],
        "outputs": [{"name": "", "type": "address"}],
    }
    for name in ("participants", "consent")
]


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[str]:
    """An anvil of our own on a free port; stopped at the end whatever happens."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "anvil.log").open("wb")
    process = subprocess.Popen(
        [find_tool("anvil"), "--host", "127.0.0.1", "--port", str(port), "--chain-id", str(ANVIL_CHAIN_ID)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
        deadline = time.monotonic() + 30
        while not w3.is_connected():
            if process.poll() is not None:
                pytest.fail(f"anvil exited with {process.returncode}: {(tmp_path / 'anvil.log').read_text()}")
            if time.monotonic() > deadline:
                pytest.fail("anvil did not answer within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_ape_run_deploy_writes_a_deployment_the_package_can_load(anvil: str, tmp_path: Path) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil))

    # A fresh key in a temporary Ape data folder: Ape's keystore is a Web3 Secret Storage file
    # named <alias>.json under <data folder>/accounts. A low scrypt n keeps decryption quick.
    data_folder = tmp_path / "ape"
    (data_folder / "accounts").mkdir(parents=True)
    passphrase = secrets.token_urlsafe(16)
    key = Account.create()
    keyfile = Account.encrypt(key.key, passphrase, kdf="scrypt", iterations=2**10)
    (data_folder / "accounts" / f"{ALIAS}.json").write_text(json.dumps(keyfile))
    fund(w3, key.address)

    home = tmp_path / "home"
    env = {
        "APE_DATA_FOLDER": str(data_folder),
        "APE_FOUNDRY_HOST": anvil,
        f"APE_ACCOUNTS_{ALIAS}_PASSPHRASE": passphrase,
    }
    command = ["ape", "run", "deploy", "--network", "ethereum:local:foundry", "--account", ALIAS, "--home", str(home)]
    run = run_activated([*command, "--yes"], env)
    output = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.returncode == 0, output

    path = Deployment.path(home, ANVIL_CHAIN_ID)
    assert path.exists(), output
    deployment = Deployment.load(home, ANVIL_CHAIN_ID)
    assert deployment.chain_id == ANVIL_CHAIN_ID
    assert deployment.deployer == key.address
    assert deployment.key_suite is KeySuite.X25519
    assert deployment.block_number >= 1

    addresses = {
        "ParticipantRegistry": deployment.participant_registry,
        "RecordRegistry": deployment.record_registry,
        "ConsentManager": deployment.consent_manager,
        "KeeperDirectory": deployment.keeper_directory,
    }
    assert len(set(addresses.values())) == len(addresses)
    for name, address in addresses.items():
        assert len(w3.eth.get_code(Web3.to_checksum_address(address))) > 0, f"no code at {name} {address}"
        # The script reports each address and the gas its deployment used.
        assert re.search(rf"^{name}: {address} \(gas used [\d,]+,", run.stdout, re.MULTILINE), output

    # Wired as the package expects: the deployer administers the ParticipantRegistry, and the
    # RecordRegistry points at it and at the ConsentManager (deployed before it).
    registry = w3.eth.contract(address=Web3.to_checksum_address(deployment.participant_registry), abi=HAS_ROLE_ABI)
    assert registry.functions.hasRole(b"\x00" * 32, key.address).call()
    records = w3.eth.contract(address=Web3.to_checksum_address(deployment.record_registry), abi=PARTICIPANTS_ABI)
    assert records.functions.participants().call() == deployment.participant_registry
    assert records.functions.consent().call() == deployment.consent_manager

    # A second run on the same chain is refused in words, and --replace keeps the first record.
    again = run_activated([*command, "--yes"], env)
    assert again.returncode != 0
    assert "has a medvault deployment already" in again.stderr + again.stdout
    assert Deployment.load(home, ANVIL_CHAIN_ID) == deployment
    replaced = run_activated([*command, "--yes", "--replace"], env)
    assert replaced.returncode == 0, replaced.stderr
    assert Deployment.load(home, ANVIL_CHAIN_ID).consent_manager != deployment.consent_manager
    (kept,) = (home / "deployments" / "replaced").glob(f"{ANVIL_CHAIN_ID}-*.json")
    assert Deployment.model_validate_json(kept.read_text()) == deployment
