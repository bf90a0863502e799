"""The context every command gets: the home, the endpoints, the client, and one output path.

Every command prints through :meth:`App.emit`: one JSON document under ``--json``, else text.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from medvault.accounts import DEFAULT_SCRYPT_N, Keystore
from medvault.chain import Chain
from medvault.chain.refusals import describe
from medvault.cli.options import prompt_passphrase, resolve_address
from medvault.client import Medvault
from medvault.config import DEFAULT_CHAIN_PORT, DEFAULT_IPFS_PORT
from medvault.dev.node import LocalNode
from medvault.errors import ConfigurationError, ContractError, MedvaultError
from medvault.formats.address import looks_like_address
from medvault.ipfs import IpfsClient
from medvault.words import Names, name_book, utc

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.client.consent_sig import ConsentChange
    from medvault.dev.node import NodeInfo

__all__ = ["DEFAULT_IPFS_API", "DEFAULT_RPC_URL", "App", "Settings", "Signer", "pass_app", "tx_json", "tx_line", "utc"]

DEFAULT_RPC_URL = f"http://127.0.0.1:{DEFAULT_CHAIN_PORT}"
DEFAULT_IPFS_API = f"http://127.0.0.1:{DEFAULT_IPFS_PORT}"


@dataclass
class App:
    home: Path
    rpc_url_option: str | None
    ipfs_api_option: str | None
    as_json: bool
    # Only a Python caller lowers it (``cli.main(obj=Settings(...))``): no option, no variable.
    scrypt_n: int = DEFAULT_SCRYPT_N
    _client: Medvault | None = field(default=None, repr=False)

    @property
    def node(self) -> LocalNode:
        return LocalNode(self.home / "node")

    @functools.cached_property
    def _node_info(self) -> NodeInfo | None:
        """The local node's endpoints, read once: the defaults when no option names them."""
        return self.node.status()

    @property
    def rpc_url(self) -> str:
        info = self._node_info
        return self.rpc_url_option or (info.rpc_url if info else DEFAULT_RPC_URL)

    @property
    def ipfs_api(self) -> str:
        info = self._node_info
        url = self.ipfs_api_option or (info.ipfs_api if info else DEFAULT_IPFS_API)
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ConfigurationError(
                f"the IPFS API URL {url!r} is not an http(s) URL: give one like {DEFAULT_IPFS_API}"
            )
        return url

    @property
    def keystore(self) -> Keystore:
        return Keystore(self.home, scrypt_n=self.scrypt_n)

    @property
    def client(self) -> Medvault:
        if self._client is None:
            self._client = Medvault(Chain.open(self.rpc_url, self.home), IpfsClient(self.ipfs_api))
        return self._client

    @functools.cached_property
    def names(self) -> Names:
        """The names of the home's accounts, by address (none if the keystore cannot be read)."""
        try:
            return name_book(self.keystore.addresses())
        except (MedvaultError, OSError, ValueError):
            return name_book({})

    def explain(self, exc: MedvaultError) -> str:
        """``exc`` in words, naming the home's accounts in a contract's refusal."""
        if isinstance(exc, ContractError):
            return describe(exc.name, exc.arguments, self.names) or str(exc)
        return str(exc)

    def unlock(self, name: str) -> Wallet:
        """The keystore account ``name``, or the one holding the address ``name``."""
        if looks_like_address(name):
            held = self.keystore.name_of(name)
            if held is not None:
                return self.keystore.unlock(held, prompt_passphrase)
            raise ConfigurationError(
                f"no account of this home holds {name}: `medvault account new NAME --import-key` brings its key in, "
                "or, where a command offers --unsigned, its own wallet signs"
            )
        return self.keystore.unlock(name, prompt_passphrase)

    def signer(self, account: str, unsigned: bool, sign_only: bool = False) -> Signer:
        """Who acts for ``--account``: unlocked from the keystore, or, with --unsigned, just an
        address whose own wallet signs what the command prints."""
        if unsigned and sign_only:
            raise click.UsageError("give --sign-only (sign with the keystore) or --unsigned (sign elsewhere), not both")
        if unsigned:
            return Signer(self.address(account), None, "unsigned")
        wallet = self.unlock(account)
        return Signer(wallet.address, wallet, "sign-only" if sign_only else "send")

    def address(self, name_or_address: str) -> str:
        """An account name from the keystore, or a 0x address."""
        return resolve_address(self.keystore, name_or_address)

    def emit(self, data: Any, text: str | Callable[[], None], *, indent: int | None = 2) -> None:
        """Prints ``data`` as JSON with --json, else ``text`` (a string or a printer).

        On this home's local node, the chain is saved first: what is reported as confirmed
        survives anvil being killed (and a chain that died under the client is an error)."""
        info = self._node_info
        if info and self.rpc_url == info.rpc_url and (self._client is not None or self.node.running()["chain"]):
            self.node.save(only_new_blocks=True)
        if self.as_json:
            click.echo(json.dumps(data, indent=indent, default=str))
        elif callable(text):
            text()
        else:
            click.echo(text)

    def emit_tx(self, result: TxResult) -> None:
        self.emit(tx_json(result), tx_line(result))

    def send_or_sign(self, signer: Signer, change: ConsentChange) -> None:
        """Submits ``change``, or prints it signed for a relayer, or unsigned for a wallet."""
        if signer.wallet is None:
            click.echo(json.dumps(self.client.unsigned(signer.address, change), indent=2))
        elif signer.mode == "sign-only":
            self.client.check(signer.wallet, change)  # a signature the chain would refuse is never handed out
            click.echo(self.client.sign(signer.wallet, change).to_json())
        else:
            self.emit_tx(self.client.submit(signer.wallet, change))


@dataclass(frozen=True)
class Signer:
    """The party a consent command acts as: ``wallet`` None for an address signing elsewhere."""

    address: str
    wallet: Wallet | None
    mode: str  # send, sign-only or unsigned


pass_app = click.make_pass_decorator(App)


@dataclass(frozen=True)
class Settings:
    """What a Python caller of the CLI may set and the command line cannot (given as
    ``obj``): the test suite's low scrypt work factor for its throwaway keystores."""

    scrypt_n: int = DEFAULT_SCRYPT_N


def tx_json(result: TxResult) -> dict[str, Any]:
    return {"action": result.action, "tx": result.tx_hash, "gas_used": result.gas_used, "block": result.block_number}


def tx_line(result: TxResult) -> str:
    return f"{result.action}: tx {result.tx_hash} (block {result.block_number}, gas {result.gas_used:,})"
