"""Record sealing and key wrapping: each binding fails when its context changes."""

from __future__ import annotations

import dataclasses

import pytest

from medvault.crypto import (
    EncryptionKeyPair,
    KeySuite,
    PublicKey,
    RecordContext,
    decrypt_record,
    encrypt_record,
    new_record_key,
    unwrap_key,
    wrap_key,
)
from medvault.errors import DecryptionError, IntegrityError

CONTEXT = RecordContext(31337, "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20, 3)
READER = "0x" + "33" * 20


def test_sealed_record_opens_with_its_key_and_context() -> None:
    key = new_record_key()
    blob = encrypt_record(b"payload", key, CONTEXT)

    assert decrypt_record(blob, key, CONTEXT) == b"payload"
    assert b"payload" not in blob


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": 1},
        {"registry": "0x" + "44" * 20},
        {"patient": "0x" + "55" * 20},
        {"author": "0x" + "66" * 20},
        {"seq": 4},
    ],
    ids=["other chain", "other registry", "other patient", "other author", "other seq of the author"],
)
def test_a_record_moved_to_another_context_fails_authentication(change: dict[str, object]) -> None:
    key = new_record_key()
    blob = encrypt_record(b"payload", key, CONTEXT)

    with pytest.raises(DecryptionError, match="failed authentication"):
        decrypt_record(blob, key, dataclasses.replace(CONTEXT, **change))  # type: ignore[arg-type]


def test_flipped_ciphertext_bit_fails_authentication() -> None:
    key = new_record_key()
    blob = bytearray(encrypt_record(b"payload", key, CONTEXT))
    blob[-1] ^= 0x01

    with pytest.raises(DecryptionError):
        decrypt_record(bytes(blob), key, CONTEXT)


def test_wrong_record_key_fails_authentication() -> None:
    blob = encrypt_record(b"payload", new_record_key(), CONTEXT)

    with pytest.raises(DecryptionError):
        decrypt_record(blob, new_record_key(), CONTEXT)


def test_bytes_that_are_not_a_record_are_an_integrity_error() -> None:
    with pytest.raises(IntegrityError, match="not a medvault ciphertext"):
        decrypt_record(b"plain text, not sealed", new_record_key(), CONTEXT)


@pytest.mark.parametrize("suite", list(KeySuite))
def test_key_wrap_round_trips_for_each_suite(suite: KeySuite) -> None:
    pair = EncryptionKeyPair.derive(b"\x01" * 32, suite)
    key = new_record_key()

    wrapped = wrap_key(key, pair.public_bytes, CONTEXT, READER)

    assert unwrap_key(wrapped, pair, CONTEXT, READER) == key
    assert pair.public_bytes[0] == suite


@pytest.mark.parametrize("suite", list(KeySuite))
def test_key_wrap_is_bound_to_reader_record_and_key_pair(suite: KeySuite) -> None:
    pair = EncryptionKeyPair.derive(b"\x01" * 32, suite)
    wrapped = wrap_key(new_record_key(), pair.public_bytes, CONTEXT, READER)

    with pytest.raises(DecryptionError):
        unwrap_key(wrapped, pair, CONTEXT, "0x" + "66" * 20)
    with pytest.raises(DecryptionError):
        unwrap_key(wrapped, pair, dataclasses.replace(CONTEXT, seq=9), READER)
    with pytest.raises(DecryptionError):
        unwrap_key(wrapped, pair, dataclasses.replace(CONTEXT, author="0x" + "44" * 20), READER)
    with pytest.raises(DecryptionError):
        unwrap_key(wrapped, EncryptionKeyPair.derive(b"\x02" * 32, suite), CONTEXT, READER)


def test_derivation_is_deterministic_and_separated_by_suite_and_epoch() -> None:
    secret = b"\x07" * 32
    x = EncryptionKeyPair.derive(secret, KeySuite.X25519)

    assert x.public_bytes == EncryptionKeyPair.derive(secret, KeySuite.X25519).public_bytes
    assert x.public_bytes != EncryptionKeyPair.derive(secret, KeySuite.X25519, epoch=1).public_bytes
    hybrid = EncryptionKeyPair.derive(secret, KeySuite.MLKEM768_X25519)
    assert len(x.public_bytes) == 33
    assert len(hybrid.public_bytes) == 1 + 1184 + 32


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"\x09" + b"\x00" * 32, "unknown suite tag 9"), (b"\x01" + b"\x00" * 5, "has 5 bytes")],
)
def test_malformed_public_keys_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        PublicKey.from_bytes(data)


@pytest.mark.parametrize("reader", [READER, "0x" + "00" * 19 + "01", "0xAbCdEf0123456789aBcDeF0123456789AbCdEf01"])
def test_wrap_info_is_the_abi_encoding_it_stands_for(reader: str) -> None:
    from eth_abi.abi import encode

    assert CONTEXT.wrap_info(reader) == encode(["bytes", "address"], [CONTEXT.associated_data(), reader])
