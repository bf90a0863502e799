"""Encryption keys end to end: random keys no phished signature derives, restoring from the
key file, rotation to an unpredictable key, migration of old signature-derived accounts,
shareKeys, and the post-quantum hybrid suite (ML-KEM-768 + X25519) through a whole record's life."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest
from data import DAY, LAB, MEDS, PASSPHRASE
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils.crypto import keccak
from helpers import add, grant, new_wallet

from medvault.accounts import TEST_SCRYPT_N, Keystore
from medvault.chain import Chain, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cids import cid_from_bytes
from medvault.client import Medvault
from medvault.client.participants import MAX_KEY_EPOCHS
from medvault.crypto import EncryptionKeyPair, KeySuite, legacy_encryption_key_typed_data, unwrap_key
from medvault.errors import AccessDeniedError, ConfigurationError, ContractError, DecryptionError
from medvault.model import Category, GrantTerms, Purpose, Role

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.ipfs import IpfsClient
    from medvault.model import RecordPointer

pytestmark = pytest.mark.integration


def wraps_for(mv: Medvault, reader: Wallet, pointer: RecordPointer) -> list[bytes]:
    """Every wrap for ``reader`` of the record's key: in its own bundle, then in those shared with it."""
    cids = [pointer.keys_cid]
    shared = mv.chain.events("ConsentManager", "KeysShared", patient=pointer.patient, grantee=reader.address)
    cids += [cid_from_bytes(bytes(e["args"]["keysCid"])) for e in reversed(shared)]
    return [
        w
        for cid in cids
        for w in mv.key_bundle(cid, pointer.patient).wraps_for(reader.address, pointer.author, pointer.seq)
    ]


def opens_any(mv: Medvault, pair: EncryptionKeyPair, reader: Wallet, pointer: RecordPointer) -> bool:
    context = mv.context_of(pointer)
    for wrapped in wraps_for(mv, reader, pointer):
        try:
            unwrap_key(wrapped, pair, context, reader.address)
        except DecryptionError:
            continue
        return True
    return False


def test_keystore_unlocked_again_restores_the_key_and_opens_old_records(
    mv: Medvault, provider: Wallet, patient: Wallet, keystore: Keystore
) -> None:
    pointer = add(mv, provider, patient)

    restored = keystore.unlock("patient", PASSPHRASE)  # a fresh wallet: nothing cached

    assert restored.encryption_keys(mv.suite).public_bytes == mv.encryption_key(patient.address)
    assert mv.key_info(restored).matches_chain
    assert mv.key_epoch(restored) == 0
    assert mv.read_record(restored, patient.address, pointer.index).data == LAB


def phished_keys(wallet: Wallet, epochs: int = MAX_KEY_EPOCHS) -> list[EncryptionKeyPair]:
    """Every pair a phishing page can compute from signatures it asks ``wallet`` for: the old
    "encryption key" typed data of every suite and epoch, in every spelling the old scheme and
    plain hashing give, plus a personal message; and pairs derived from the account key itself."""
    key = bytes(wallet.account.key)
    signatures = []
    for suite in KeySuite:
        for epoch in range(epochs):
            document = legacy_encryption_key_typed_data(suite, epoch)
            signatures.append((suite, epoch, bytes(Account.sign_typed_data(key, full_message=document).signature)))
    personal = bytes(Account.sign_message(encode_defunct(text="Log in to medvault"), key).signature)
    pairs = []
    for suite, epoch, signature in signatures:
        pairs += [
            EncryptionKeyPair.legacy_from_signature(signature, suite, epoch),
            EncryptionKeyPair.derive(signature, suite, epoch),
            EncryptionKeyPair.derive(keccak(personal), suite, epoch),
            EncryptionKeyPair.derive(key, suite, epoch),
        ]
    return pairs


def test_phishing_page_signatures_cannot_derive_decryption_key(
    mv: Medvault, provider: Wallet, patient: Wallet, home: Path
) -> None:
    pointer = add(mv, provider, patient)
    registered = mv.encryption_key(patient.address)

    phished = phished_keys(patient)

    assert registered not in {pair.public_bytes for pair in phished}
    assert not any(opens_any(mv, pair, patient, pointer) for pair in phished if pair.suite is mv.suite)
    # Not a function of the account key: the same key imported on another device gets other keys.
    twin = Keystore(home / "twin", scrypt_n=TEST_SCRYPT_N)
    twin.create("patient", PASSPHRASE, bytes(patient.account.key))
    assert twin.unlock("patient", PASSPHRASE).encryption_keys(mv.suite, 0).public_bytes != registered
    assert mv.read_record(patient, patient.address, pointer.index).data == LAB


def test_rotation_key_is_unpredictable_from_before(
    mv: Medvault, provider: Wallet, patient: Wallet, keystore: Keystore, home: Path
) -> None:
    before = add(mv, provider, patient)
    # All a thief could hold before the rotation: every phishable signature, the account key,
    # the old keys, and a copy of the keystore and key file with their passphrase.
    known = {pair.public_bytes for pair in phished_keys(patient)}
    known |= {pair.public_bytes for pair in patient.keys.pairs.values()}
    shutil.copytree(home / "keystores", home / "stolen" / "keystores")
    stolen = Keystore(home / "stolen", scrypt_n=TEST_SCRYPT_N).unlock("patient", PASSPHRASE)

    rotation = mv.rotate_key(patient)

    assert rotation.public_key not in known
    # The stolen copy, rotated from the very same state, makes another key: nothing before predicts it.
    assert stolen.generate_encryption_keys(mv.suite, rotation.new_epoch).public_bytes != rotation.public_key
    after = add(mv, provider, patient, MEDS)
    assert not any(opens_any(mv, pair, patient, after) for pair in stolen.keys.pairs.values())
    assert [mv.read_record(patient, patient.address, p.index).data for p in (before, after)] == [LAB, MEDS]


def test_an_account_of_the_old_scheme_migrates_to_a_random_key(
    mv: Medvault, provider: Wallet, doctor: Wallet, keystore: Keystore, w3: Web3, home: Path
) -> None:
    new_wallet(keystore, w3, "legacy")
    (home / "keystores" / "legacy.keys").unlink()  # as the old medvault left it: a keystore alone
    old = keystore.unlock("legacy", PASSPHRASE)
    for epoch in (0, 1):  # registered, then rotated once, the old way
        public = old.legacy_encryption_keys(mv.suite, epoch).public_bytes
        mv.chain.transact(old, mv.chain.participants.functions.register(public), f"old-scheme key {epoch}")
    mv.set_writer(old, provider.address, frozenset(Category))
    first = add(mv, provider, old)
    info = mv.key_info(old)
    assert (info.registered, info.epoch) == (True, None)
    with pytest.raises(ConfigurationError, match="keys migrate"):
        mv.rotate_key(old)

    rotation = mv.migrate_keys(old)

    assert (rotation.old_epoch, rotation.new_epoch, rotation.rewrapped) == (1, 2, [0])
    assert rotation.public_key == mv.encryption_key(old.address)
    phished = phished_keys(old, epochs=4)
    assert rotation.public_key not in {pair.public_bytes for pair in phished}
    second = add(mv, provider, old, MEDS)
    assert not any(opens_any(mv, pair, old, second) for pair in phished if pair.suite is mv.suite)
    restored = keystore.unlock("legacy", PASSPHRASE)  # the legacy and the new keys were sealed
    info = mv.key_info(restored)
    assert (info.epoch, info.legacy, info.matches_chain) == (2, False, True)
    assert [mv.read_record(restored, old.address, p.index).data for p in (first, second)] == [LAB, MEDS]
    assert sorted((e, legacy) for e, legacy, _ in restored.keys.held(mv.suite)) == [(0, True), (1, True), (2, False)]
    grant(mv, restored, doctor)  # the migrated patient shares its records' keys as before
    assert mv.read_record(doctor, old.address, first.index).data == LAB
    with pytest.raises(ConfigurationError, match="already publishes a random key"):
        mv.migrate_keys(restored)


def test_rotation_publishes_a_new_key_that_alone_opens_new_records(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet, keystore: Keystore
) -> None:
    grant(mv, patient, doctor)
    before = [add(mv, provider, patient), add(mv, provider, patient, MEDS)]
    old_pair = patient.encryption_keys(mv.suite, 0)

    rotation = mv.rotate_key(patient)

    assert (rotation.old_epoch, rotation.new_epoch, rotation.rewrapped) == (0, 1, [0, 1])
    assert mv.key_epoch(patient) == 1
    assert (
        mv.encryption_key(patient.address) == rotation.public_key == patient.encryption_keys(mv.suite, 1).public_bytes
    )
    assert rotation.public_key != old_pair.public_bytes
    assert rotation.transactions[0].action.startswith("rotate key")
    shared = mv.chain.events("ConsentManager", "KeysShared", patient=patient.address, grantee=patient.address)
    assert [e["transactionHash"].to_0x_hex() for e in shared] == [rotation.transactions[1].tx_hash]

    after = add(mv, provider, patient)

    # The old key opens nothing new; the new one opens old and new (old ones via the re-wrap).
    assert not opens_any(mv, old_pair, patient, after)
    assert all(opens_any(mv, old_pair, patient, p) for p in before)
    new_pair = patient.encryption_keys(mv.suite, 1)
    assert all(opens_any(mv, new_pair, patient, p) for p in [*before, after])
    restored = keystore.unlock("patient", PASSPHRASE)
    assert [mv.read_record(restored, patient.address, i).data for i in range(3)] == [LAB, MEDS, LAB]
    # Grantees and authors are untouched by the patient's rotation.
    assert mv.read_record(doctor, patient.address, after.index).data == LAB
    assert mv.read_record(provider, patient.address, before[1].index).data == MEDS
    events = [e.event for e in mv.audit(patient.address)]
    assert events.count("ParticipantRegistered") == 2
    assert events[-3:-1] == ["ParticipantRegistered", "KeysShared"]


def test_rotating_twice_and_registering_again_keep_every_record_readable(
    mv: Medvault, provider: Wallet, patient: Wallet
) -> None:
    first = add(mv, provider, patient)
    mv.rotate_key(patient)
    second = add(mv, provider, patient)
    rotation = mv.rotate_key(patient)
    third = add(mv, provider, patient, MEDS)

    assert (rotation.new_epoch, rotation.rewrapped) == (2, [0, 1])
    mv.register(patient)  # registering again publishes the current key, not epoch 0's
    assert mv.key_epoch(patient) == 2
    assert [mv.read_record(patient, patient.address, p.index).data for p in (first, second, third)] == [LAB, LAB, MEDS]
    for epoch in (0, 1):
        assert not opens_any(mv, patient.encryption_keys(mv.suite, epoch), patient, third)


def test_rotation_with_no_records_only_publishes_the_key(mv: Medvault, patient: Wallet) -> None:
    rotation = mv.rotate_key(patient)

    assert rotation.keys_cid is None
    assert rotation.rewrapped == []
    assert len(rotation.transactions) == 1


def test_a_grantee_that_rotates_still_reads_what_was_shared_with_its_old_key(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    old = add(mv, provider, patient)
    grant(mv, patient, doctor)  # shares the key of `old` with the doctor's epoch-0 key
    mv.rotate_key(doctor)
    new = add(mv, provider, patient)

    assert mv.read_record(doctor, patient.address, old.index).data == LAB
    assert mv.read_record(doctor, patient.address, new.index).data == LAB
    assert not opens_any(mv, doctor.encryption_keys(mv.suite, 0), doctor, new)


def test_an_unregistered_or_foreign_key_is_named(mv: Medvault, stranger: Wallet) -> None:
    with pytest.raises(ConfigurationError, match="has not registered an encryption key"):
        mv.key_epoch(stranger)
    with pytest.raises(ConfigurationError, match="has not registered"):
        mv.rotate_key(stranger)

    foreign = EncryptionKeyPair.derive(b"\x05" * 32).public_bytes  # not one the wallet holds
    mv.chain.transact(stranger, mv.chain.participants.functions.register(foreign), "register foreign key")
    info = mv.key_info(stranger)
    assert (info.registered, info.matches_chain, info.epoch) == (True, False, None)
    with pytest.raises(ConfigurationError, match="is none of the X25519 keys account 'stranger' holds"):
        mv.key_epoch(stranger)
    with pytest.raises(ConfigurationError, match="keys migrate"):
        mv.register(stranger)  # would strand what was wrapped for the key on chain

    mv.register(stranger, new_key=True)
    assert mv.key_epoch(stranger) == 1


def test_share_keys_hands_existing_keys_to_a_grantee_later(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    old = add(mv, provider, patient)
    now = mv.now()
    # A grant that shares no keys: the doctor may read, but holds no key of the old record.
    terms = GrantTerms(frozenset({Category.LABORATORY}), Purpose.TREAT, now, now + DAY)
    mv.grant(patient, patient.address, doctor.address, terms, share_keys=False)
    with pytest.raises(AccessDeniedError, match="was ever wrapped for it"):
        mv.read_record(doctor, patient.address, old.index)

    tx = mv.share_keys(patient, doctor.address)

    assert mv.read_record(doctor, patient.address, old.index).data == LAB
    assert mv.audit(patient.address)[-1].event == "KeysShared"
    assert mv.audit(patient.address)[-1].tx_hash == tx.tx_hash
    with pytest.raises(ConfigurationError, match="holds no grant"):
        mv.share_keys(patient, provider.address)


def test_share_keys_refuses_an_empty_bundle(mv: Medvault, patient: Wallet, doctor: Wallet) -> None:
    fn = mv.chain.consent.functions.shareKeys(doctor.address, b"")
    with pytest.raises(ContractError) as caught:
        mv.chain.transact(patient, fn, "share nothing")
    assert caught.value.name == "ConsentManagerEmptyKeysCid"


# -- the post-quantum hybrid suite ------------------------------------------------------------


@pytest.fixture
def pq(w3: Web3, home: Path, ipfs: IpfsClient, wallets: dict[str, Wallet]) -> Medvault:
    deployment, _ = deploy(w3, wallets["admin"], home, key_suite=KeySuite.MLKEM768_X25519)
    return Medvault(Chain(w3, deployment, load_artifacts()), ipfs)


def test_hybrid_suite_end_to_end(
    pq: Medvault,
    admin: Wallet,
    provider: Wallet,
    patient: Wallet,
    doctor: Wallet,
    keystore: Keystore,
) -> None:
    assert pq.suite is KeySuite.MLKEM768_X25519
    registrations = [pq.register(w) for w in (patient, provider, doctor)]
    pq.accredit(admin, provider.address, Role.PROVIDER)
    pq.set_writer(patient, provider.address, frozenset(Category))
    published = pq.encryption_key(patient.address)
    assert len(published) == 1 + 1184 + 32
    assert published[0] == KeySuite.MLKEM768_X25519
    assert keccak(published) == bytes(pq.chain.participants.functions.encryptionKeyHash(patient.address).call())
    register_gas = registrations[0].gas_used
    assert register_gas < 100_000, f"registering a hybrid key uses {register_gas:,} gas"

    first = add(pq, provider, patient)
    bundle = json.loads(pq.ipfs.cat(first.keys_cid))
    assert bundle["suite"] == "MLKEM768_X25519"
    grant(pq, patient, doctor)
    assert pq.read_record(doctor, patient.address, first.index).data == LAB
    assert pq.read_record(patient, patient.address, first.index).data == LAB

    pq.revoke(patient, patient.address, doctor.address)
    with pytest.raises(AccessDeniedError, match="revoked"):
        pq.read_record(doctor, patient.address, first.index)

    rotation = pq.rotate_key(patient)
    second = add(pq, provider, patient, MEDS)
    assert rotation.new_epoch == 1
    assert len(rotation.public_key) == 1217
    assert not opens_any(pq, patient.encryption_keys(pq.suite, 0), patient, second)
    restored = keystore.unlock("patient", PASSPHRASE)
    assert pq.read_record(restored, patient.address, first.index).data == LAB
    assert pq.read_record(restored, patient.address, second.index).data == MEDS


def test_share_keys_hands_no_key_ahead_of_a_future_dated_grant(
    mv: Medvault, provider: Wallet, patient: Wallet, doctor: Wallet
) -> None:
    """`consent share-keys` must not undo "no wraps ahead of a window": a grant revoked before it
    opens would otherwise have handed out keys for good."""
    old = add(mv, provider, patient)
    start = mv.now() + DAY
    terms = GrantTerms(frozenset({Category.LABORATORY}), Purpose.TREAT, start, start + DAY)
    mv.grant(patient, patient.address, doctor.address, terms)

    for scopes in (None, frozenset({Category.LABORATORY})):
        with pytest.raises(ConfigurationError, match="opens at"):
            mv.share_keys(patient, doctor.address, scopes)
    assert not mv.chain.events("ConsentManager", "KeysShared", patient=patient.address, grantee=doctor.address)
    with pytest.raises(AccessDeniedError):
        mv.read_record(doctor, patient.address, old.index)
