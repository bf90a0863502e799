"""Talking to the chain: connection, signed transactions, decoded reverts, deployment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import requests
from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from medvault.contracts import CONTRACT_NAMES, Artifact, Deployment, load_artifacts
from medvault.crypto import KeySuite
from medvault.errors import ChainUnavailableError, ConfigurationError, ContractError

if TYPE_CHECKING:
    from pathlib import Path

    from web3.contract import Contract
    from web3.contract.contract import ContractConstructor, ContractFunction
    from web3.types import TxParams

    from medvault.accounts import Wallet

__all__ = ["Chain", "TxResult", "deploy"]


@dataclass(frozen=True)
class TxResult:
    action: str
    tx_hash: str
    gas_used: int
    block_number: int
    contract_address: str = ""  # set when the transaction created a contract


def connect(rpc_url: str) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        w3.eth.chain_id  # noqa: B018 - the cheapest call that proves the node answers
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ChainUnavailableError(rpc_url, type(exc).__name__) from None
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
        self._errors = _error_table(artifacts.values())
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
            raise self._decode(exc, action) from None

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

    def _decode(self, exc: ContractLogicError, action: str) -> ContractError:
        return _decode_revert(exc, action, self._errors)


def send(
    w3: Web3,
    wallet: Wallet,
    fn: ContractFunction | ContractConstructor,
    action: str,
    errors: dict[bytes, tuple[str, list[Any]]],
) -> TxResult:
    params: TxParams = {"from": wallet.address, "nonce": w3.eth.get_transaction_count(wallet.address, "pending")}
    try:
        tx = fn.build_transaction(params)
    except (ContractCustomError, ContractLogicError) as exc:
        raise _decode_revert(exc, action, errors) from None
    except Web3RPCError as exc:
        raise ContractError(action, "RpcError", {"message": str(exc)}) from None
    signed = wallet.account.sign_transaction(cast("dict[str, Any]", tx))
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1:
        raise ContractError(action, "Reverted", {"tx": tx_hash.to_0x_hex()})
    created = receipt.get("contractAddress")
    return TxResult(
        action, tx_hash.to_0x_hex(), int(receipt["gasUsed"]), int(receipt["blockNumber"]), str(created or "")
    )


def deploy(
    w3: Web3, wallet: Wallet, home: Path, key_suite: KeySuite = KeySuite.X25519
) -> tuple[Deployment, list[TxResult]]:
    """Deploys the three contracts with ``wallet`` as admin and first accreditor; records them."""
    artifacts = load_artifacts()
    errors = _error_table(artifacts.values())
    results: list[TxResult] = []

    def create(name: str, *args: Any) -> str:
        factory = w3.eth.contract(abi=artifacts[name].abi, bytecode=artifacts[name].bytecode)
        result = send(w3, wallet, factory.constructor(*args), f"deploy {name}", errors)
        results.append(result)
        return result.contract_address

    participants = create("ParticipantRegistry", wallet.address)
    records = create("RecordRegistry", participants)
    consent = create("ConsentManager", participants)
    keepers = create("KeeperDirectory")
    deployment = Deployment(
        chain_id=w3.eth.chain_id,
        block_number=results[0].block_number,
        deployer=wallet.address,
        key_suite=key_suite,
        participant_registry=participants,
        record_registry=records,
        consent_manager=consent,
        keeper_directory=keepers,
    )
    deployment.save(home)
    return deployment, results


def _error_table(artifacts: Any) -> dict[bytes, tuple[str, list[Any]]]:
    table = {}
    for artifact in artifacts:
        for item in artifact.abi:
            if item["type"] == "error":
                types = ",".join(_abi_type(i) for i in item["inputs"])
                table[function_signature_to_4byte_selector(f"{item['name']}({types})")] = (item["name"], item["inputs"])
    return table


def _abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def _decode_revert(exc: ContractLogicError, action: str, errors: dict[bytes, tuple[str, list[Any]]]) -> ContractError:
    data = exc.data if isinstance(exc.data, str) else None
    if data and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        if raw[:4] in errors:
            name, inputs = errors[raw[:4]]
            values = abi_decode([_abi_type(i) for i in inputs], raw[4:])
            return ContractError(action, name, {i["name"]: _show(v) for i, v in zip(inputs, values, strict=True)})
    return ContractError(action, "Revert", {"message": exc.message or str(exc)})


def _show(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value
