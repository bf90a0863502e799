"""Participants: encryption keys published on chain, and accreditation of providers and researchers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.client.core import Core
from medvault.errors import ConfigurationError, IntegrityError
from medvault.model import KeyInfo

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.model import Role

__all__ = ["MAX_KEY_EPOCHS", "Participants"]

MAX_KEY_EPOCHS = 64  # epochs 0..63 are searched for the one whose key an account published


class Participants(Core):
    def register(self, wallet: Wallet, epoch: int | None = None) -> TxResult:
        """Publishes ``wallet``'s encryption public key of ``epoch`` (for the deployment's HPKE
        suite); by default the epoch already on chain, so registering again never undoes a
        rotation, else epoch 0."""
        if epoch is None:
            epoch = self.key_info(wallet).epoch or 0
        public = wallet.encryption_keys(self.suite, epoch).public_bytes
        fn = self.chain.participants.functions.register(public)
        return self.chain.transact(wallet, fn, f"register {wallet.address}")

    def key_info(self, wallet: Wallet) -> KeyInfo:
        """Which of ``wallet``'s derivable keys (epochs 0 to 63) the chain holds, if any."""
        expected = bytes(self.chain.participants.functions.encryptionKeyHash(wallet.address).call())
        registered = expected != bytes(32)
        if registered:
            for epoch in range(MAX_KEY_EPOCHS):
                public = wallet.encryption_keys(self.suite, epoch).public_bytes
                if keccak(public) == expected:
                    return KeyInfo(wallet.address, self.suite, epoch, public, True)
        return KeyInfo(wallet.address, self.suite, None, wallet.encryption_keys(self.suite, 0).public_bytes, registered)

    def key_epoch(self, wallet: Wallet) -> int:
        """The epoch of ``wallet``'s published key; an error naming the cause if there is none."""
        info = self.key_info(wallet)
        if not info.registered:
            raise ConfigurationError(f"{wallet.address} has not registered an encryption key (`medvault register`)")
        if info.epoch is None:
            raise ConfigurationError(
                f"the encryption key {wallet.address} published matches none its wallet derives "
                f"({self.suite.name}, epochs 0 to {MAX_KEY_EPOCHS - 1}): it was made with another suite or "
                "derivation; `medvault register` publishes a derivable one"
            )
        return info.epoch

    def encryption_key(self, account: str) -> bytes:
        """``account``'s current public key, read from events and checked against the stored hash."""
        account = to_checksum_address(account)
        expected = self.chain.call(self.chain.participants.functions.encryptionKeyHash(account), "encryptionKeyHash")
        if expected == bytes(32):
            raise ConfigurationError(f"{account} has not registered an encryption key (`medvault register`)")
        for event in reversed(self.chain.events("ParticipantRegistry", "ParticipantRegistered", account=account)):
            key = bytes(event["args"]["encryptionKey"])
            if keccak(key) == expected:
                return key
        raise IntegrityError(f"no ParticipantRegistered event of {account} matches its stored key hash")

    def is_registered(self, account: str) -> bool:
        return bool(self.chain.participants.functions.isRegistered(to_checksum_address(account)).call())

    def accredit(self, admin: Wallet, account: str, role: Role, *, withdraw: bool = False) -> TxResult:
        functions = self.chain.participants.functions
        account = to_checksum_address(account)
        fn = (functions.revokeRole if withdraw else functions.grantRole)(role.role_id, account)
        verb = "withdraw" if withdraw else "accredit"
        return self.chain.transact(admin, fn, f"{verb} {role.value.lower()} {account}")
