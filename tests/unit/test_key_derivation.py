"""Encryption keys: random per account and epoch, sealed in the key file; and the legacy
derivation from a wallet signature, kept only so old accounts can migrate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from medvault.accounts import TEST_SCRYPT_N, Keystore, Wallet
from medvault.crypto import (
    LEGACY_ENCRYPTION_KEY_PURPOSE,
    EncryptionKeyPair,
    KeySuite,
    RecordContext,
    legacy_encryption_key_typed_data,
    new_record_key,
    unwrap_key,
    wrap_key,
)
from medvault.errors import KeystoreError

if TYPE_CHECKING:
    from pathlib import Path

KEY = keccak(text="medvault key derivation test")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CONTEXT = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "22" * 20, 0)


def wallet_signature(suite: KeySuite, epoch: int) -> bytes:
    """What a browser wallet returns for eth_signTypedData_v4 on the document."""
    return bytes(Account.sign_typed_data(KEY, full_message=legacy_encryption_key_typed_data(suite, epoch)).signature)


def test_typed_data_is_a_fixed_message_without_chain_or_contract() -> None:
    document = legacy_encryption_key_typed_data(KeySuite.MLKEM768_X25519, 3)

    assert document["primaryType"] == "EncryptionKey"
    assert document["domain"] == {"name": "medvault encryption key", "version": "1"}
    assert [f["name"] for f in document["types"]["EIP712Domain"]] == ["name", "version"]
    assert document["message"] == {"purpose": LEGACY_ENCRYPTION_KEY_PURPOSE, "suite": "MLKEM768_X25519", "epoch": 3}
    with pytest.raises(ValueError, match="not negative"):
        legacy_encryption_key_typed_data(KeySuite.X25519, -1)


def test_the_signed_digest_is_plain_eip712() -> None:
    # Recomputed from the EIP-712 definition, independently of eth-account's encoder.
    domain = keccak(
        keccak(text="EIP712Domain(string name,string version)")
        + keccak(text="medvault encryption key")
        + keccak(text="1")
    )
    struct = keccak(
        keccak(text="EncryptionKey(string purpose,string suite,uint256 epoch)")
        + keccak(text=LEGACY_ENCRYPTION_KEY_PURPOSE)
        + keccak(text="X25519")
        + abi_encode(["uint256"], [2])
    )
    digest = keccak(b"\x19\x01" + domain + struct)

    assert bytes(Account.unsafe_sign_hash(digest, KEY).signature) == wallet_signature(KeySuite.X25519, 2)


@pytest.mark.parametrize("suite", list(KeySuite))
def test_legacy_keys_are_those_a_browser_wallet_derived(suite: KeySuite) -> None:
    wallet = Wallet("w", Account.from_key(KEY))

    for epoch in (0, 1):
        expected = EncryptionKeyPair.legacy_from_signature(wallet_signature(suite, epoch), suite, epoch)
        assert wallet.legacy_encryption_keys(suite, epoch).public_bytes == expected.public_bytes
        assert (
            expected.public_bytes
            == EncryptionKeyPair.derive(keccak(wallet_signature(suite, epoch)), suite, epoch).public_bytes
        )


def test_a_wallet_holds_only_the_keys_it_generated() -> None:
    wallet = Wallet("w", Account.from_key(KEY))
    with pytest.raises(KeystoreError, match="holds no X25519 encryption key of epoch 0"):
        wallet.encryption_keys(KeySuite.X25519, 0)

    pair = wallet.generate_encryption_keys(KeySuite.X25519, 0)

    assert wallet.generate_encryption_keys(KeySuite.X25519, 0) is pair  # generated once per epoch
    assert wallet.encryption_keys(KeySuite.X25519, 0) is pair
    assert wallet.encryption_keys(KeySuite.MLKEM768_X25519, 0)  # every suite of the epoch at once
    assert pair.public_bytes != wallet.legacy_encryption_keys(KeySuite.X25519, 0).public_bytes


def test_generated_keys_are_random_not_a_function_of_the_account() -> None:
    one, two = Wallet("a", Account.from_key(KEY)), Wallet("b", Account.from_key(KEY))
    keys = {w.generate_encryption_keys(s, e).public_bytes for w in (one, two) for s in KeySuite for e in (0, 1)}

    assert len(keys) == 8  # the same account key, two wallets: nothing in common
    assert EncryptionKeyPair.derive(KEY).public_bytes not in keys


@pytest.mark.parametrize("suite", list(KeySuite))
def test_private_bytes_rebuild_the_pair(suite: KeySuite) -> None:
    pair = EncryptionKeyPair.generate(suite)
    again = EncryptionKeyPair.from_private_bytes(pair.private_bytes(), suite)
    record_key = new_record_key()

    assert again.public_bytes == pair.public_bytes
    assert unwrap_key(wrap_key(record_key, pair.public_bytes, CONTEXT, "0x" + "33" * 20), again, CONTEXT,
                      "0x" + "33" * 20) == record_key  # fmt: skip
    assert pair.private_bytes().hex() not in repr(pair)


def test_keystore_unlocked_again_holds_the_same_random_keys(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path, scrypt_n=TEST_SCRYPT_N)
    keystore.create("alice", "s3cret")
    first = keystore.unlock("alice", "s3cret")
    for suite in KeySuite:
        first.generate_encryption_keys(suite, 1)
    second = keystore.unlock("alice", "s3cret")
    record_key = new_record_key()

    for suite in KeySuite:
        pair = first.encryption_keys(suite, 1)
        assert second.encryption_keys(suite, 1).public_bytes == pair.public_bytes
        wrapped = wrap_key(record_key, pair.public_bytes, CONTEXT, first.address)
        assert unwrap_key(wrapped, second.encryption_keys(suite, 1), CONTEXT, first.address) == record_key
    sealed = (tmp_path / "keystores" / "alice.keys").read_bytes()
    assert all(p.private_bytes() not in sealed for p in second.keys.pairs.values())


def test_equivalent_spellings_of_a_signature_derive_the_same_key() -> None:
    signature = wallet_signature(KeySuite.X25519, 0)
    r, s, v = signature[:32], int.from_bytes(signature[32:64]), signature[64]
    reference = EncryptionKeyPair.legacy_from_signature(signature).public_bytes

    assert EncryptionKeyPair.legacy_from_signature(r + s.to_bytes(32) + bytes([v - 27])).public_bytes == reference
    high_s = r + (SECP256K1_N - s).to_bytes(32) + bytes([55 - v])
    assert EncryptionKeyPair.legacy_from_signature(high_s).public_bytes == reference


@pytest.mark.parametrize(
    ("signature", "message"), [(b"\x01" * 64, "65 bytes"), (b"\x01" * 64 + b"\x05", "neither 27/28 nor 0/1")]
)
def test_malformed_signatures_are_refused(signature: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncryptionKeyPair.legacy_from_signature(signature)
