"""``medvault portal --demo``: a local chain, IPFS, three keepers, a relayer and the portal, with demo data.

The cast are throwaway accounts under one printed passphrase: ``alice`` is a registered
patient with keepers, a care team and synthetic records (her encrypted key backup is written
beside the keystores, for the portal's "import a backup"); ``bob`` is funded but not registered,
so the portal's key set-up can be tried on him; ``provider`` and ``researcher`` are accredited,
``doctor`` is registered. The portal's development wallet signs for every one of them (the
demo's process holds their keys; the page never does).
"""

from __future__ import annotations

import json
import random
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account.messages import encode_typed_data
from web3.exceptions import Web3Exception

from medvault.accounts import Keystore, Wallet
from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev import anvil
from medvault.dev.node import LocalNode, free_port
from medvault.dev.synthetic import synthetic_patient, synthetic_records
from medvault.errors import MedvaultError
from medvault.fhir import category_for, to_json_bytes
from medvault.ipfs import IpfsClient
from medvault.keeper import KeeperService
from medvault.model import Category, Role
from medvault.portal import Portal
from medvault.relayer import RelayerService

if TYPE_CHECKING:
    from collections.abc import Iterator

    from web3 import Web3

__all__ = ["DEMO_PASSPHRASE", "DemoStack", "DemoWallet", "demo_stack"]

DEMO_PASSPHRASE = "medvault-demo"  # noqa: S105 - throwaway accounts on a throwaway chain: printed, on purpose
# The development wallet signs for the people of the story, not for the deployer or the relayer.
SIGNERS = ("alice", "bob", "provider", "doctor", "researcher")
CAST = {
    "admin": "deployer and accreditor",
    "alice": "patient, with records",
    "bob": "patient, not yet set up",
    "provider": "accredited provider",
    "doctor": "doctor",
    "researcher": "accredited researcher",
    "relayer": "pays the gas of signed consent",
}
KEEPERS = ("keeper-1", "keeper-2", "keeper-3")
ALICE_RECORDS = 8


class DemoWallet:
    """The portal's development wallet: the demo's accounts sign typed data and send transactions."""

    def __init__(self, w3: Web3, wallets: dict[str, Wallet]) -> None:
        self.w3 = w3
        self.by_address = {w.address.lower(): w for n, w in wallets.items() if n in SIGNERS}
        self.roles = {w.address.lower(): CAST[n] for n, w in wallets.items() if n in SIGNERS}
        self.sending = threading.Lock()  # one nonce sequence per account

    def accounts(self) -> list[dict[str, str]]:
        return [{"name": w.name, "address": w.address, "role": self.roles[a]} for a, w in self.by_address.items()]

    def request(self, method: str, params: list[Any]) -> Any:
        if method == "eth_signTypedData_v4":
            wallet = self._wallet(params[0])
            typed = params[1] if isinstance(params[1], dict) else json.loads(params[1])
            return "0x" + wallet.account.sign_message(encode_typed_data(full_message=typed)).signature.hex()
        if method == "eth_sendTransaction":
            with self.sending:
                try:
                    return self._send(params[0])
                except Web3Exception as exc:  # a revert, in the node's words, as a wallet shows it
                    raise MedvaultError(f"the transaction would fail: {exc}") from exc
        raise MedvaultError(f"the development wallet does not do {method!r}")

    def _wallet(self, address: str) -> Wallet:
        wallet = self.by_address.get(str(address).lower())
        if wallet is None:
            raise MedvaultError(f"{address} is not one of the demo's accounts")
        return wallet

    def _send(self, tx: dict[str, Any]) -> str:
        wallet = self._wallet(tx["from"])
        eth = self.w3.eth
        base: dict[str, Any] = {
            "from": wallet.address,
            "to": self.w3.to_checksum_address(tx["to"]),
            "data": tx.get("data") or tx.get("input") or "0x",
            "value": int(tx.get("value") or "0x0", 16),
        }
        fee = eth.gas_price
        signed = wallet.account.sign_transaction(
            {
                **base,
                "nonce": eth.get_transaction_count(wallet.address, "pending"),
                "gas": int(tx["gas"], 16) if tx.get("gas") else int(eth.estimate_gas(base) * 1.2),  # type: ignore[arg-type]
                "maxFeePerGas": 2 * fee,
                "maxPriorityFeePerGas": 0,
                "chainId": eth.chain_id,
                "type": 2,
            }
        )
        return "0x" + eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")


@dataclass
class DemoStack:
    """What ``demo_stack`` started, and where."""

    home: Path
    rpc_url: str
    ipfs_api: str
    portal: Portal
    keepers: list[KeeperService]
    accounts: dict[str, str]
    backup: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "portal": self.portal.url,
            "rpcUrl": self.rpc_url,
            "ipfsApi": self.ipfs_api,
            "chainId": self.portal.deployment.chain_id,
            "home": str(self.home),
            "passphrase": DEMO_PASSPHRASE,
            "accounts": self.accounts,
            "keepers": [k.url for k in self.keepers],
            "relayer": self.portal.relayer_url,
            "aliceBackup": str(self.backup),
            **self.extra,
        }


@contextmanager
def demo_stack(*, host: str = "127.0.0.1", port: int = 0, scrypt_n: int | None = None) -> Iterator[DemoStack]:
    """Starts everything (fresh state in a temporary directory) and stops it all on exit."""
    with tempfile.TemporaryDirectory(prefix="medvault-portal-") as tmp, ExitStack() as stop:
        home = Path(tmp)
        node = LocalNode(home / "node", chain_port=free_port(), ipfs_port=free_port())
        info = node.up()
        stop.callback(node.down)
        w3 = connect(info.rpc_url)
        keystore = Keystore(home, **({"scrypt_n": scrypt_n} if scrypt_n else {}))
        wallets: dict[str, Wallet] = {}
        for name in (*CAST, *KEEPERS):
            keystore.create(name, DEMO_PASSPHRASE)
            wallets[name] = keystore.unlock(name, DEMO_PASSPHRASE)
        anvil.fund_all(w3, [w.address for w in wallets.values()])
        deployment, _ = deploy(w3, wallets["admin"], home)

        def client() -> Medvault:
            return Medvault(Chain(w3, deployment, load_artifacts()), IpfsClient(info.ipfs_api))

        mv = client()
        keepers = [_keeper(home, wallets[name], client()) for name in KEEPERS]
        for keeper in keepers:
            stop.callback(keeper.stop)
        _cast(mv, wallets, keepers)
        backup = home / "alice.backup"
        keystore.export(wallets["alice"], DEMO_PASSPHRASE, backup)
        relayer = RelayerService(wallets["relayer"], client()).start()
        stop.callback(relayer.stop)
        portal = Portal(
            deployment,
            info.rpc_url,
            info.ipfs_api,
            relayer_url=relayer.url,
            host=host,
            port=port,
            dev_wallet=DemoWallet(w3, wallets),
        ).start()
        stop.callback(portal.stop)
        yield DemoStack(
            home,
            info.rpc_url,
            info.ipfs_api,
            portal,
            keepers,
            {name: w.address for name, w in wallets.items() if name in CAST},
            backup,
        )


def _keeper(home: Path, wallet: Wallet, client: Medvault) -> KeeperService:
    client.register(wallet)
    port = free_port()
    return KeeperService(
        wallet, client, home / "keepers" / wallet.name, port=port, batch_seconds=1, announce=f"http://127.0.0.1:{port}"
    ).start()


def _cast(mv: Medvault, wallets: dict[str, Wallet], keepers: list[KeeperService]) -> None:
    admin, alice, provider = wallets["admin"], wallets["alice"], wallets["provider"]
    for name in ("alice", "provider", "doctor", "researcher"):
        mv.register(wallets[name])
    mv.accredit(admin, provider.address, Role.PROVIDER)
    mv.accredit(admin, wallets["researcher"].address, Role.RESEARCHER)
    mv.set_writer(alice, provider.address, frozenset(Category))
    mv.set_keepers(alice, [str(k.address) for k in keepers], 2)
    rng = random.Random(12)  # noqa: S311 - synthetic data, reproducible on purpose
    for resource in synthetic_records(rng, synthetic_patient(rng), ALICE_RECORDS):
        mv.add_record(provider, alice.address, to_json_bytes(resource), Category.parse(category_for(resource)))
