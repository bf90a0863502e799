"""Encryption keys derived from a wallet signature over a fixed EIP-712 message."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from medvault.accounts import Keystore, Wallet
from medvault.crypto import (
    ENCRYPTION_KEY_PURPOSE,
    EncryptionKeyPair,
    KeySuite,
    RecordContext,
    encryption_key_typed_data,
    new_record_key,
    unwrap_key,
    wrap_key,
)

if TYPE_CHECKING:
    from pathlib import Path

KEY = keccak(text="medvault key derivation test")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CONTEXT = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "22" * 20, 0)


def wallet_signature(suite: KeySuite, epoch: int) -> bytes:
    """What a browser wallet returns for eth_signTypedData_v4 on the document."""
    return bytes(Account.sign_typed_data(KEY, full_message=encryption_key_typed_data(suite, epoch)).signature)


def test_typed_data_is_a_fixed_message_without_chain_or_contract() -> None:
    document = encryption_key_typed_data(KeySuite.MLKEM768_X25519, 3)

    assert document["primaryType"] == "EncryptionKey"
    assert document["domain"] == {"name": "medvault encryption key", "version": "1"}
    assert [f["name"] for f in document["types"]["EIP712Domain"]] == ["name", "version"]
    assert document["message"] == {"purpose": ENCRYPTION_KEY_PURPOSE, "suite": "MLKEM768_X25519", "epoch": 3}
    with pytest.raises(ValueError, match="not negative"):
        encryption_key_typed_data(KeySuite.X25519, -1)


def test_the_signed_digest_is_plain_eip712() -> None:
    # Recomputed from the EIP-712 definition, independently of eth-account's encoder.
    domain = keccak(
        keccak(text="EIP712Domain(string name,string version)")
        + keccak(text="medvault encryption key")
        + keccak(text="1")
    )
    struct = keccak(
        keccak(text="EncryptionKey(string purpose,string suite,uint256 epoch)")
        + keccak(text=ENCRYPTION_KEY_PURPOSE)
        + keccak(text="X25519")
        + abi_encode(["uint256"], [2])
    )
    digest = keccak(b"\x19\x01" + domain + struct)

    assert bytes(Account.unsafe_sign_hash(digest, KEY).signature) == wallet_signature(KeySuite.X25519, 2)


@pytest.mark.parametrize("suite", list(KeySuite))
def test_wallet_keys_are_those_a_browser_wallet_derives(suite: KeySuite) -> None:
    wallet = Wallet("w", Account.from_key(KEY))

    for epoch in (0, 1):
        expected = EncryptionKeyPair.from_signature(wallet_signature(suite, epoch), suite, epoch)
        assert wallet.encryption_keys(suite, epoch).public_bytes == expected.public_bytes
        assert (
            expected.public_bytes
            == EncryptionKeyPair.derive(keccak(wallet_signature(suite, epoch)), suite, epoch).public_bytes
        )


def test_keys_differ_by_epoch_suite_and_account() -> None:
    wallet = Wallet("w", Account.from_key(KEY))
    other = Wallet("o", Account.from_key(keccak(text="someone else")))
    keys = {
        wallet.encryption_keys(KeySuite.X25519, 0).public_bytes,
        wallet.encryption_keys(KeySuite.X25519, 1).public_bytes,
        wallet.encryption_keys(KeySuite.MLKEM768_X25519, 0).public_bytes,
        other.encryption_keys(KeySuite.X25519, 0).public_bytes,
    }
    assert len(keys) == 4
    # Not the old derivation straight from the private key: the key needs the signature.
    assert wallet.encryption_keys(KeySuite.X25519).public_bytes != EncryptionKeyPair.derive(KEY).public_bytes


def test_keystore_unlocked_again_derives_the_same_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDVAULT_KEYSTORE_SCRYPT_N", "1024")
    keystore = Keystore(tmp_path)
    keystore.create("alice", "s3cret")
    first, second = keystore.unlock("alice", "s3cret"), keystore.unlock("alice", "s3cret")
    record_key = new_record_key()

    for suite in KeySuite:
        pair = first.encryption_keys(suite, 1)
        assert second.encryption_keys(suite, 1).public_bytes == pair.public_bytes
        wrapped = wrap_key(record_key, pair.public_bytes, CONTEXT, first.address)
        assert unwrap_key(wrapped, second.encryption_keys(suite, 1), CONTEXT, first.address) == record_key


def test_equivalent_spellings_of_a_signature_derive_the_same_key() -> None:
    signature = wallet_signature(KeySuite.X25519, 0)
    r, s, v = signature[:32], int.from_bytes(signature[32:64]), signature[64]
    reference = EncryptionKeyPair.from_signature(signature).public_bytes

    assert EncryptionKeyPair.from_signature(r + s.to_bytes(32) + bytes([v - 27])).public_bytes == reference
    high_s = r + (SECP256K1_N - s).to_bytes(32) + bytes([55 - v])
    assert EncryptionKeyPair.from_signature(high_s).public_bytes == reference


@pytest.mark.parametrize(
    ("signature", "message"), [(b"\x01" * 64, "65 bytes"), (b"\x01" * 64 + b"\x05", "neither 27/28 nor 0/1")]
)
def test_malformed_signatures_are_refused(signature: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncryptionKeyPair.from_signature(signature)
