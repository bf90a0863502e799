"""Participants: encryption keys published on chain, and accreditation of providers and researchers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.client.core import Core
from medvault.crypto import PublicKey
from medvault.errors import ConfigurationError, IntegrityError, UnusableKeyError
from medvault.model import KeyInfo

if TYPE_CHECKING:
    from web3.contract.contract import ContractFunction

    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.crypto import EncryptionKeyPair
    from medvault.model import Role

__all__ = ["MAX_KEY_EPOCHS", "Participants"]

MAX_KEY_EPOCHS = 64  # the legacy scheme's epochs 0..63 are searched when migrating; a rotation stops there too


class Participants(Core):
    def register(self, wallet: Wallet, epoch: int | None = None, *, new_key: bool = False) -> TxResult:
        """Publishes ``wallet``'s encryption public key of ``epoch`` (for the deployment's HPKE
        suite; a random pair, generated and sealed now if the account holds none of that epoch).
        By default the key already on chain, so registering again never undoes a rotation, else
        the newest the account holds (epoch 0 for a new account).

        When the chain holds a key this wallet does not (an account of the old, signature-derived
        scheme, or one whose key file was lost), registering would strand the records wrapped for
        it, so it is refused unless ``new_key``: a fresh key of the next epoch is then published
        (see docs/FORMATS.md, "Recovery"); ``medvault keys migrate`` is the way for old accounts.
        """
        info = self.key_info(wallet)
        if epoch is None:
            if info.registered and info.epoch is None and not new_key:
                raise ConfigurationError(self._unheld_key_message(wallet))
            epoch = info.epoch if info.epoch is not None else max(0, wallet.keys.next_epoch(self.suite) - 1)
            if new_key:
                epoch = wallet.keys.next_epoch(self.suite)
        public = wallet.generate_encryption_keys(self.suite, epoch).public_bytes
        return self.chain.transact(wallet, self.register_call(public), f"register {wallet.address}")

    def register_call(self, public: bytes) -> ContractFunction:
        """The registry's ``register(public)``, refused here as the registry would refuse it (an
        unknown suite tag, a wrong length for the suite), so such a key is never sent."""
        PublicKey.from_bytes(public)
        return self.chain.participants.functions.register(public)

    def key_info(self, wallet: Wallet) -> KeyInfo:
        """Which of the keys ``wallet`` holds (random ones, then legacy ones) the chain holds, if any."""
        expected = bytes(self.chain.participants.functions.encryptionKeyHash(wallet.address).call())
        registered = expected != bytes(32)
        newest: bytes = b""
        for epoch, legacy, pair in wallet.keys.held(self.suite):
            newest = newest or pair.public_bytes
            if registered and keccak(pair.public_bytes) == expected:
                return KeyInfo(wallet.address, self.suite, epoch, pair.public_bytes, True, legacy)
        return KeyInfo(wallet.address, self.suite, None, newest, registered)

    def published_keys(self, wallet: Wallet, expected: bytes | None = None) -> EncryptionKeyPair:
        """The pair of ``wallet`` whose public key the chain holds (its hash ``expected``, if the
        caller has read it); an error naming the cause if none."""
        if expected is None:
            expected = bytes(self.chain.participants.functions.encryptionKeyHash(wallet.address).call())
        if expected == bytes(32):
            raise ConfigurationError(f"{wallet.address} has not registered an encryption key (`medvault register`)")
        for _, _, pair in wallet.keys.held(self.suite):
            if keccak(pair.public_bytes) == expected:
                return pair
        raise ConfigurationError(self._unheld_key_message(wallet))

    def key_epoch(self, wallet: Wallet) -> int:
        """The epoch of ``wallet``'s published key; an error naming the cause if there is none."""
        info = self.key_info(wallet)
        if not info.registered:
            raise ConfigurationError(f"{wallet.address} has not registered an encryption key (`medvault register`)")
        if info.epoch is None:
            raise ConfigurationError(self._unheld_key_message(wallet))
        return info.epoch

    def _unheld_key_message(self, wallet: Wallet) -> str:
        return (
            f"the encryption key {wallet.address} published on chain is none of the {self.suite.name} keys "
            f"account {wallet.name!r} holds: if it was registered before keys were random (derived from a "
            "wallet signature), `medvault keys migrate` moves it to a random key; if this device lost its "
            "key file, `medvault keys import BACKUP` restores it, or `medvault register --new-key` publishes "
            "a fresh one (records wrapped only for the lost key then open only through your keepers)"
        )

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

    def usable_key(self, account: str) -> bytes:
        """``account``'s published key, if a record key can be wrapped for it in this deployment's
        suite; UnusableKeyError saying why not (malformed, low-order, another suite)."""
        try:
            key = self.encryption_key(account)
        except IntegrityError as exc:
            raise UnusableKeyError(str(exc)) from None
        suite = PublicKey.from_bytes(key).suite
        if suite is not self.suite:
            raise UnusableKeyError(
                f"the encryption key is a {suite.name} key, and this deployment wraps for {self.suite.name} keys"
            )
        return key

    def is_registered(self, account: str) -> bool:
        return bool(self.chain.participants.functions.isRegistered(to_checksum_address(account)).call())

    def accredit(self, admin: Wallet, account: str, role: Role, *, withdraw: bool = False) -> TxResult:
        functions = self.chain.participants.functions
        account = to_checksum_address(account)
        fn = (functions.revokeRole if withdraw else functions.grantRole)(role.role_id, account)
        verb = "withdraw" if withdraw else "accredit"
        return self.chain.transact(admin, fn, f"{verb} {role.value.lower()} {account}")
