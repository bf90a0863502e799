"""The connection to the chain and the deployed medvault contracts on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from medvault.chain.artifacts import CONTRACT_NAMES, Artifact, Deployment, load_artifacts
from medvault.chain.transact import TxResult, decode_revert, error_table, send
from medvault.errors import ChainUnavailableError, ConfigurationError

if TYPE_CHECKING:
    from pathlib import Path

    from web3.contract import Contract
    from web3.contract.contract import ContractFunction
    from web3.types import BlockIdentifier

    from medvault.accounts import Wallet

__all__ = ["Chain", "connect"]


def connect(rpc_url: str) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        w3.eth.chain_id  # noqa: B018 - the cheapest call that proves the node answers
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ChainUnavailableError(rpc_url, type(exc).__name__) from None
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL):
        raise ConfigurationError(
            f"{rpc_url!r} is not an Ethereum JSON-RPC URL; give one like http://127.0.0.1:8545"
        ) from None
    # Transactions are signed here with the chain id the deployment was made on, and no ENS
    # names are used: these two default middlewares would cost an RPC round trip (eth_chainId)
    # or a lookup on every call, which dominates a keeper's per-request work.
    w3.middleware_onion.remove("validation")
    w3.middleware_onion.remove("ens_name_to_address")
    return w3


class Chain:
    """A web3 connection plus the deployed medvault contracts of its chain."""

    def __init__(self, w3: Web3, deployment: Deployment, artifacts: dict[str, Artifact]) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.chain_id = deployment.chain_id
        self._errors = error_table(artifacts.values())
        address = {
            "ParticipantRegistry": deployment.participant_registry,
            "RecordRegistry": deployment.record_registry,
            "ConsentManager": deployment.consent_manager,
            "KeeperDirectory": deployment.keeper_directory,
        }
        self.contracts: dict[str, Contract] = {
            name: w3.eth.contract(address=to_checksum_address(address[name]), abi=artifacts[name].abi)
            for name in CONTRACT_NAMES
        }
        for name, contract in self.contracts.items():
            if not w3.eth.get_code(contract.address):
                raise ConfigurationError(
                    f"deployment for chain {self.chain_id} is stale: no {name} code at {contract.address}; "
                    "run `medvault deploy` again"
                )

    @classmethod
    def open(cls, rpc_url: str, home: Path) -> Chain:
        w3 = connect(rpc_url)
        return cls(w3, Deployment.load(home, w3.eth.chain_id), load_artifacts())

    @property
    def participants(self) -> Contract:
        return self.contracts["ParticipantRegistry"]

    @property
    def records(self) -> Contract:
        return self.contracts["RecordRegistry"]

    @property
    def consent(self) -> Contract:
        return self.contracts["ConsentManager"]

    @property
    def keepers(self) -> Contract:
        return self.contracts["KeeperDirectory"]

    def call(self, fn: ContractFunction, action: str) -> Any:
        try:
            return fn.call()
        except (ContractCustomError, ContractLogicError) as exc:
            raise decode_revert(exc, action, self._errors) from None

    def transact(self, wallet: Wallet, fn: ContractFunction, action: str) -> TxResult:
        """Estimates (a revert here sends nothing), signs, sends and waits for ``fn``."""
        return send(self.w3, wallet, fn, action, self._errors)

    def events(self, contract: str, event: str, **filters: Any) -> list[Any]:
        logs = (
            self.contracts[contract]
            .events[event]
            .get_logs(argument_filters=filters or None, from_block=self.deployment.block_number)
        )
        return sorted(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))

    def block_time(self, block: BlockIdentifier = "latest") -> int:
        """The timestamp of ``block`` (a number, or "latest")."""
        return int(self.w3.eth.get_block(block)["timestamp"])

    def sender_of(self, tx_hash: str) -> str:
        return str(self.w3.eth.get_transaction(tx_hash)["from"])  # type: ignore[arg-type]
