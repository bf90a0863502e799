"""Records, in the order their data moves: write, list, read; and key rotation, which re-wraps them.

Writing: the readers of the new record (the patient, the author, every grantee whose grant
covers its category and has not ended) and the patient's keepers are read first; the payload
is enveloped and sealed under a fresh key bound to the record's position, the key wrapped for
each reader and escrowed with the keepers in one key bundle, ciphertext and bundle added to
IPFS, and the pointer appended on chain. If the chain refuses, the IPFS objects are unpinned
again, so a failed add leaves nothing behind.

Reading: the log is rebuilt from events and checked against the on-chain head; the chain is
asked whether the reader may read the category now; the ciphertext is fetched and checked
against its CID and content hash; the record's key bundle is fetched and parsed once, and the
key comes from the reader's own wrap or, failing that, from the keepers; the ciphertext is
decrypted once.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.client.access import Access
from medvault.client.keepers import Keepers
from medvault.client.participants import MAX_KEY_EPOCHS
from medvault.crypto import decrypt_record, encrypt_record, new_record_key, unwrap_key
from medvault.errors import (
    AccessDeniedError,
    ConfigurationError,
    ContentHashMismatchError,
    ContractError,
    DecryptionError,
    IntegrityError,
)
from medvault.formats import envelope
from medvault.formats.keybundle import escrow_key, wrap_for
from medvault.formats.recordhash import GENESIS, record_hash_of_event
from medvault.ipfs import cid_from_bytes, cid_to_bytes
from medvault.model import Category, KeyRotation, Record, RecordPointer, RecordReceipt

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.crypto import EncryptionKeyPair, KeySuite
    from medvault.formats.keybundle import KeyBundle, Wrap

__all__ = ["STALE_INDEX_RETRIES", "Records"]

STALE_INDEX_RETRIES = 3


class Records(Keepers, Access):
    def add_record(
        self,
        author: Wallet,
        patient: str,
        data: bytes,
        category: Category,
        *,
        content_type: str = "application/fhir+json",
        name: str = "",
    ) -> RecordReceipt:
        """Encrypts ``data`` for ``patient`` and appends its pointer; see the module docstring."""
        patient = to_checksum_address(patient)
        readers = self._readers_of_new_record(patient, author.address, category)
        keepers = self.keepers_of(patient, with_urls=False)
        keeper_keys = {keeper: self.encryption_key(keeper) for keeper in keepers.keepers}
        plaintext = envelope.pack(data, content_type, name)
        for _attempt in range(STALE_INDEX_RETRIES):
            head, count = self.chain.call(self.chain.records.functions.logOf(patient), "logOf")
            context = self.record_context(patient, count)
            record_key = new_record_key()
            blob = encrypt_record(plaintext, record_key, context)
            escrow = escrow_key(context, record_key, keepers.threshold, keeper_keys) if keeper_keys else None
            wraps = [wrap_for(context, record_key, reader, key) for reader, key in readers.items()]
            bundle = self.new_key_bundle(patient, wraps, escrow).to_bytes()
            cid = self.ipfs.add(blob)
            try:
                keys_cid = self.ipfs.add(bundle)
            except BaseException:
                self._unpin_quietly(cid)
                raise
            content_hash = hashlib.sha256(blob).digest()
            fn = self.chain.records.functions.addRecord(
                patient, count, cid_to_bytes(cid), content_hash, int(category), cid_to_bytes(keys_cid)
            )
            try:
                tx = self.chain.transact(author, fn, f"add record for {patient}")
            except ContractError as exc:
                self._unpin_quietly(cid, keys_cid)
                if exc.name == "RecordRegistryStaleIndex":
                    continue  # another record landed first: seal again for the next position
                raise
            except BaseException:
                self._unpin_quietly(cid, keys_cid)
                raise
            pointer = self._pointer_added_by(tx, patient, count, bytes(head))
            return RecordReceipt(pointer, tx, list(readers))
        raise ContractError(f"add record for {patient}", "RecordRegistryStaleIndex", {"retries": STALE_INDEX_RETRIES})

    def _readers_of_new_record(self, patient: str, author: str, category: Category) -> dict[str, bytes]:
        """The patient, the author (if registered) and every grantee whose grant covers
        ``category`` and has not ended; future-dated grants too, their window is enforced at
        reading time."""
        readers = {patient: self.encryption_key(patient)}
        if author != patient and self.is_registered(author):
            readers[author] = self.encryption_key(author)
        now = self.now()
        for grant in self.grants(patient):
            if category in grant.scopes and grant.valid_until > now and self.is_registered(grant.grantee):
                readers[grant.grantee] = self.encryption_key(grant.grantee)
        return readers

    def _pointer_added_by(self, tx: TxResult, patient: str, index: int, previous: bytes) -> RecordPointer:
        """The pointer the registry's ``RecordAdded`` event in ``tx`` describes, its hash checked
        against its fields and ``previous`` (the head the record was sealed after)."""
        registry = self.chain.records
        added = registry.events.RecordAdded()
        topic = bytes.fromhex(added.topic.removeprefix("0x"))
        for log in tx.logs:
            if log["address"] != registry.address or not log["topics"] or bytes(log["topics"][0]) != topic:
                continue
            event = added.process_log(log)
            a = event["args"]
            if a["patient"] != patient or a["index"] != index:
                continue
            recomputed = record_hash_of_event(previous, patient, a)
            if recomputed != bytes(a["recordHash"]):
                raise IntegrityError(f"record {index} of {patient}: its hash does not match its fields")
            return _pointer(event, recomputed)
        raise IntegrityError(f"transaction {tx.tx_hash} added no record {index} for {patient}")

    def records(self, patient: str) -> list[RecordPointer]:
        """The patient's log from chain events, after checking its hash chain against the head."""
        patient = to_checksum_address(patient)
        head, count = self.chain.call(self.chain.records.functions.logOf(patient), "logOf")
        previous = GENESIS
        pointers: list[RecordPointer] = []
        for event in self.chain.events("RecordRegistry", "RecordAdded", patient=patient):
            a = event["args"]
            if a["index"] != len(pointers):
                raise IntegrityError(f"record log of {patient}: event for index {a['index']} out of order")
            recomputed = record_hash_of_event(previous, patient, a)
            if recomputed != bytes(a["recordHash"]):
                raise IntegrityError(f"record {a['index']} of {patient}: its hash does not match its fields")
            previous = recomputed
            pointers.append(_pointer(event, recomputed))
        if len(pointers) != count or previous != bytes(head):
            raise IntegrityError(
                f"record log of {patient}: {len(pointers)} events rebuild head 0x{previous.hex()}, "
                f"but the chain holds {count} records with head 0x{bytes(head).hex()}"
            )
        return pointers

    def record_count(self, patient: str) -> int:
        """How many records the patient's log holds (one call; ``records`` reads them all)."""
        _, count = self.chain.call(self.chain.records.functions.logOf(to_checksum_address(patient)), "logOf")
        return int(count)

    def read_record(self, reader: Wallet, patient: str, index: int) -> Record:
        """Fetches, verifies and decrypts record ``index`` of ``patient`` for ``reader``."""
        patient = to_checksum_address(patient)
        pointers = self.records(patient)
        if not 0 <= index < len(pointers):
            raise ConfigurationError(f"{patient} has no record {index} (records: {len(pointers)})")
        pointer = pointers[index]
        self.check_access(reader.address, pointer)
        blob = self.ipfs.cat(pointer.cid)
        actual = "0x" + hashlib.sha256(blob).hexdigest()
        if actual != pointer.content_hash:
            raise ContentHashMismatchError(f"record {index} of {patient}", pointer.content_hash, actual)
        bundle = self.key_bundle(pointer.keys_cid, patient)
        context = self.record_context(patient, index)
        try:
            key = self.open_key(reader, pointer, bundle)
        except (AccessDeniedError, DecryptionError):
            if bundle.escrow is None:
                raise
            # No wrap of its own, or none its keys open (a patient who lost its key file and
            # registered a new key): the keepers release the key, and their answer is checked by
            # decrypting, so the plaintext of that check is the one returned.
            key, released = self.released_key(reader, pointer, bundle, blob)
            plaintext = released if released is not None else decrypt_record(blob, key, context)
        else:
            plaintext = decrypt_record(blob, key, context)
        opened = envelope.unpack(plaintext)
        return Record(pointer, opened.content_type, opened.name, opened.body)

    def open_key(self, reader: Wallet, pointer: RecordPointer, bundle: KeyBundle | None = None) -> bytes:
        """The record key of ``pointer``, from any wrap for ``reader`` that one of its keys opens:
        every key its key file holds, newest first (wraps made before a rotation open with an
        older one). ``bundle`` is the record's own key bundle, if the caller has fetched it already."""
        context = self.record_context(pointer.patient, pointer.index)
        pairs = [pair for _, _, pair in reader.keys.held(self.suite)]
        tried = False
        for wrapped in self._wraps(reader.address, pointer, bundle):
            tried = True
            for pair in pairs:
                with contextlib.suppress(DecryptionError):
                    return unwrap_key(wrapped, pair, context, reader.address)
        if not tried:
            raise AccessDeniedError(
                reader.address, pointer.patient, f"no key of record {pointer.index} was ever wrapped for it"
            )
        raise DecryptionError(
            f"every key wrap of record {pointer.index} for {reader.address} (tried the {len(pairs)} "
            f"{self.suite.name} keys its key file holds)"
        )

    def _wraps(self, reader: str, pointer: RecordPointer, bundle: KeyBundle | None) -> Iterator[bytes]:
        """The reader's wraps of the record key, fetched lazily: from the record's bundle, then
        from the bundles shared with it (grants, ``shareKeys``, the patient's key rotations),
        newest first."""
        yield from (bundle or self.key_bundle(pointer.keys_cid, pointer.patient)).wraps_for(reader, pointer.index)
        shared = self.chain.events("ConsentManager", "KeysShared", patient=pointer.patient, grantee=reader)
        for event in reversed(shared):
            cid = cid_from_bytes(bytes(event["args"]["keysCid"]))
            yield from self.key_bundle(cid, pointer.patient).wraps_for(reader, pointer.index)

    def rotate_key(self, wallet: Wallet) -> KeyRotation:
        """Moves ``wallet`` to a new, random key of its next epoch.

        Generates the pair (from the OS CSPRNG, sealed to the key file before anything is sent),
        publishes its public key, then wraps the key of every record of the patient that its
        keys open for the new key, in one bundle announced with ``shareKeys`` (to the patient).
        From the new key's publication on, records are wrapped for it alone. The old pairs stay
        in the key file (and are tried when reading), so a rotation loses nothing; it limits what
        an old key opens to what existed before the rotation, and nothing known before the
        rotation (signatures, old keys, the account key) predicts the new key.
        """
        old = self.key_epoch(wallet)
        new = wallet.keys.next_epoch(self.suite)
        if new >= MAX_KEY_EPOCHS:
            raise ConfigurationError(f"{wallet.address} is at its last key epoch ({old}); no rotation is left")
        public = wallet.generate_encryption_keys(self.suite, new).public_bytes
        fn = self.chain.participants.functions.register(public)
        transactions = [self.chain.transact(wallet, fn, f"rotate key of {wallet.address} to epoch {new}")]
        wraps: list[Wrap] = []
        for pointer in self.records(wallet.address):
            try:
                key = self.open_key(wallet, pointer)
            except (AccessDeniedError, DecryptionError):
                continue  # nothing the patient holds opens it: nothing to re-wrap
            wraps.append(wrap_for(self.record_context(wallet.address, pointer.index), key, wallet.address, public))
        keys_cid = None
        if wraps:
            keys_cid = self.ipfs.add(self.new_key_bundle(wallet.address, wraps).to_bytes())
            fn = self.chain.consent.functions.shareKeys(wallet.address, cid_to_bytes(keys_cid))
            try:
                transactions.append(self.chain.transact(wallet, fn, f"re-wrapped keys of {wallet.address}"))
            except BaseException:
                self._unpin_quietly(keys_cid)
                raise
        rewrapped = [w.index for w in wraps]
        return KeyRotation(wallet.address, old, new, public, keys_cid, rewrapped, transactions)

    def migrate_keys(self, wallet: Wallet) -> KeyRotation:
        """Moves an account of the old scheme (its published key derived from a wallet signature)
        to a random key: finds the legacy epoch the chain holds (0 to 63), keeps the legacy pairs
        of epochs 0 to it in the key file, flagged legacy (they still open the wraps made for them,
        its own records' and other patients' grants alike), then rotates (``rotate_key``): a
        random key of the next epoch is published and the account's records re-wrapped for it.
        """
        info = self.key_info(wallet)
        if not info.registered:
            raise ConfigurationError(
                f"{wallet.address} has not registered a key: nothing to migrate (`medvault register`)"
            )
        if info.epoch is not None and not info.legacy:
            raise ConfigurationError(f"{wallet.address} already publishes a random key (epoch {info.epoch})")
        expected = bytes(self.chain.participants.functions.encryptionKeyHash(wallet.address).call())
        legacy: dict[tuple[KeySuite, int], EncryptionKeyPair] = {}
        for epoch in range(MAX_KEY_EPOCHS):
            legacy[self.suite, epoch] = wallet.legacy_encryption_keys(self.suite, epoch)
            if keccak(legacy[self.suite, epoch].public_bytes) == expected:
                break
        else:
            raise ConfigurationError(
                f"the key {wallet.address} published is not one the old scheme derives ({self.suite.name}, "
                f"epochs 0 to {MAX_KEY_EPOCHS - 1}): nothing to migrate; see `medvault keys show`"
            )
        wallet.keys.add_legacy(legacy)
        return self.rotate_key(wallet)


def _pointer(event: Any, record_hash: bytes) -> RecordPointer:
    """The pointer a ``RecordAdded`` event describes."""
    a = event["args"]
    return RecordPointer(
        patient=a["patient"],
        index=a["index"],
        author=a["author"],
        record_hash="0x" + record_hash.hex(),
        category=Category(a["category"]),
        timestamp=a["timestamp"],
        content_hash="0x" + bytes(a["contentHash"]).hex(),
        cid=cid_from_bytes(bytes(a["cid"])),
        keys_cid=cid_from_bytes(bytes(a["keysCid"])),
        tx_hash=event["transactionHash"].to_0x_hex(),
        block_number=event["blockNumber"],
    )
