"""Development wallets: throwaway accounts whose keys are a function of a label.

Dev only, never for a real account. Seeding and the benchmarks use accounts whose private key is
public anyway (keccak256 of a label), held in memory only. Their encryption keys are derived
from that key (``EncryptionKeyPair.derive``), which for such an account gives nothing away, and
keeps what these tools promise: a killed seeding run started again wraps records for the key it
registered before, and gas figures stay exact (the same calldata every run). Real accounts get
random keys, sealed beside their keystore (``medvault.accounts``).
"""

from __future__ import annotations

from eth_account import Account
from eth_utils.crypto import keccak

from medvault.accounts import KeyRing, Wallet
from medvault.crypto import EncryptionKeyPair, KeySuite

__all__ = ["dev_wallet"]


def dev_wallet(name: str, private_key: bytes) -> Wallet:
    """A development wallet of ``private_key`` whose encryption keys are derived from it (see above)."""
    secret = keccak(b"medvault dev-only encryption key" + private_key)

    def derive(suite: KeySuite, epoch: int) -> EncryptionKeyPair:
        return EncryptionKeyPair.derive(secret, suite, epoch)

    return Wallet(name, Account.from_key(private_key), KeyRing(derive=derive))
