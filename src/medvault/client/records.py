"""Records, in the order their data moves: write, list, read; and key rotation, which re-wraps them.

Writing: only the patient, a provider on the patient's care team (``set_writer``, in its
categories) and a provider inside a live emergency may append; the chain refuses anyone else.
The readers of the new record (the patient, the author, every grantee whose grant covers its
category and is open now) and the patient's keepers are read first; the payload is enveloped
and sealed under a fresh key bound to (patient, author, the author's next sequence number),
which the author knows before it writes, the key wrapped for each reader and escrowed with the
keepers in one key bundle (a grantee or keeper whose published key cannot be used is left
out and named in the receipt; the patient's and the author's own keys must be usable),
ciphertext and bundle added to IPFS, and the pointer appended on chain, which assigns its
position: another writer's record landing first changes nothing. A
grantee whose window has not opened gets no wrap; it reads through the keepers once it opens.
If the chain refuses, the IPFS objects are unpinned again, so a failed add leaves nothing behind.

Reading: the log (``medvault.client.recordlog``) comes from events checked against the
on-chain head, whole for a listing, or the one record a read needs in time that does not grow
with the log, with the patient's flags (disputed, hidden) attached to each pointer. Its CIDs
are kept as the chain holds them and parsed only when a record is used, so one bad record (an
unusable CID, a missing object, a bundle or plaintext that is not medvault's) fails with a
BadRecordError naming it, and every other record reads, shares and rotates as before. For one record, the chain is
asked whether the reader may read the category now; the ciphertext is fetched and checked
against its CID and content hash; the record's key bundle is fetched and parsed once, and the
key comes from the reader's own wrap or, failing that, from the keepers; the ciphertext is
decrypted once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.cids import cid_to_bytes
from medvault.client.access import Access
from medvault.client.careteam import CareTeam
from medvault.client.keepers import Keepers
from medvault.client.participants import MAX_KEY_EPOCHS
from medvault.client.recordlog import RecordLog
from medvault.crypto import decrypt_record, encrypt_record, new_record_key, unwrap_key
from medvault.errors import (
    AccessDeniedError,
    BadRecordError,
    CidMismatchError,
    ConfigurationError,
    ContentHashMismatchError,
    ContractError,
    DecryptionError,
    IntegrityError,
    InvalidCidError,
    IpfsError,
    MedvaultError,
    NodeUnavailableError,
    UnusableKeyError,
)
from medvault.formats import envelope
from medvault.formats.keybundle import KeyBundle, escrow_key, wrap_for
from medvault.model import (
    DISPUTED,
    HIDDEN,
    Category,
    KeyRotation,
    Record,
    RecordPointer,
    RecordReceipt,
    pointer_cid,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medvault.accounts import Wallet
    from medvault.chain import TxResult
    from medvault.crypto import EncryptionKeyPair, KeySuite, RecordContext
    from medvault.formats.keybundle import Wrap
    from medvault.ipfs import ObjectKind

__all__ = ["STALE_SEQ_RETRIES", "Records"]

# A stale seq means the same author wrote meanwhile (another process of the same account).
STALE_SEQ_RETRIES = 3

log = logging.getLogger(__name__)


class Records(RecordLog, CareTeam, Keepers, Access):
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
        threshold, keeper_keys, unusable = self._escrow_keys(patient)
        plaintext = envelope.pack(data, content_type, name)
        for _attempt in range(STALE_SEQ_RETRIES):
            seq = self.next_seq(patient, author.address)
            context = self.record_context(patient, author.address, seq)
            record_key = new_record_key()
            blob = encrypt_record(plaintext, record_key, context)
            escrow = escrow_key(context, record_key, threshold, keeper_keys) if keeper_keys else None
            wraps, skipped = self._wrap_for_readers(context, record_key, readers)
            skipped |= unusable
            bundle = self.new_key_bundle(patient, wraps, escrow).to_bytes()
            cid = self.ipfs.add(blob)
            try:
                keys_cid = self.ipfs.add(bundle, kind="bundle")
            except BaseException:
                self._unpin_quietly(cid)
                raise
            content_hash = hashlib.sha256(blob).digest()
            fn = self.chain.records.functions.addRecord(
                patient, seq, cid_to_bytes(cid), content_hash, int(category), cid_to_bytes(keys_cid)
            )
            try:
                tx = self.chain.transact(author, fn, f"add record for {patient}")
            except ContractError as exc:  # refused, or mined as failed: nothing names the objects
                self._unpin_quietly(cid, keys_cid)
                if exc.name == "RecordRegistryStaleSeq":
                    continue  # the same author wrote meanwhile (elsewhere): seal again for its next seq
                raise
            # Any other failure (no receipt, a dropped connection, Ctrl-C) may follow a sent
            # transaction that still lands: its objects stay pinned (gc lists them if it never does).
            pointer = self._pointer_added_by(tx, patient, author.address, seq)
            return RecordReceipt(pointer, tx, [w.reader for w in wraps], skipped)
        raise ContractError(f"add record for {patient}", "RecordRegistryStaleSeq", {"retries": STALE_SEQ_RETRIES})

    def next_seq(self, patient: str, author: str) -> int:
        """``author``'s next sequence number in ``patient``'s log: what its next record is bound to."""
        fn = self.chain.records.functions.writerOf(to_checksum_address(patient), to_checksum_address(author))
        _, seq = self.chain.call(fn, "writerOf")
        return int(seq)

    def _readers_of_new_record(self, patient: str, author: str, category: Category) -> list[str]:
        """The patient, the author (if registered) and every grantee whose grant covers
        ``category`` and is open now (chain time in [validFrom, validUntil)). A future-dated
        grantee gets no wrap: once its window opens it reads through the keepers, who check the
        window on chain, so a grant revoked before it opens never held a key."""
        readers = [patient]
        if author != patient and self.is_registered(author):
            readers.append(author)
        now = self.now()
        for grant in self.grants(patient):
            open_now = grant.valid_from <= now < grant.valid_until
            if category in grant.scopes and open_now and self.is_registered(grant.grantee):
                readers.append(grant.grantee)
        return list(dict.fromkeys(readers))

    def _wrap_for_readers(
        self, context: RecordContext, record_key: bytes, readers: list[str]
    ) -> tuple[list[Wrap], dict[str, str]]:
        """The wraps of ``record_key`` for each reader, each made on its own: a grantee whose
        published key cannot be used is left out, with why, and the others still get theirs.
        The patient's and the author's wraps are essential (the record would be written for a
        patient who cannot open it, or by an author who cannot read what it wrote, and each can
        fix its own key): for them the write is refused, saying so."""
        wraps: list[Wrap] = []
        skipped: dict[str, str] = {}
        for reader in readers:
            try:
                wraps.append(wrap_for(context, record_key, reader, self.usable_key(reader)))
            except UnusableKeyError as exc:
                if reader == context.patient or reader == context.author:
                    whose = "the patient" if reader == context.patient else "the author"
                    raise UnusableKeyError(
                        f"no record can be written for {context.patient}: the encryption key {whose} {reader} "
                        f"published cannot be used ({exc}); {whose} must publish a new one "
                        "(`medvault register --new-key`)"
                    ) from None
                skipped[reader] = str(exc)
        return wraps, skipped

    def _escrow_keys(self, patient: str) -> tuple[int, dict[str, bytes], dict[str, str]]:
        """The patient's threshold, the keys of its keepers a share can be sealed to, and why each
        other keeper was left out: its share is left out of the split, which any ``threshold``
        of the others still recover; fewer than that, and the write is refused."""
        keepers = self.keepers_of(patient, with_urls=False)
        keys: dict[str, bytes] = {}
        unusable: dict[str, str] = {}
        for keeper in keepers.keepers:
            try:
                keys[keeper] = self.usable_key(keeper)
            except UnusableKeyError as exc:
                unusable[keeper] = f"keeper left out of the key escrow: {exc}"
        if unusable and len(keys) < keepers.threshold:
            raise UnusableKeyError(
                f"no record can be written for {patient}: only {len(keys)} of its {len(keepers.keepers)} keepers "
                f"publish a usable encryption key, fewer than its threshold of {keepers.threshold} "
                f"({'; '.join(f'{k}: {why}' for k, why in unusable.items())}); the patient must choose other "
                "keepers (`medvault keeper set`)"
            )
        return keepers.threshold, keys, unusable

    def _pointer_added_by(self, tx: TxResult, patient: str, author: str, seq: int) -> RecordPointer:
        """The pointer of record ``seq`` by ``author`` that the registry's ``RecordAdded`` event in
        ``tx`` describes, checked against the chain's head (``record``, which asks for no event
        again when the client has checked the log before it)."""
        registry = self.chain.records
        added = registry.events.RecordAdded()
        topic = bytes.fromhex(added.topic.removeprefix("0x"))
        for log in tx.logs:
            if log["address"] != registry.address or not log["topics"] or bytes(log["topics"][0]) != topic:
                continue
            event = added.process_log(log)
            a = event["args"]
            if a["patient"] == patient and a["author"] == author and a["seq"] == seq:
                return self.record(patient, a["index"], given=event)
        raise IntegrityError(f"transaction {tx.tx_hash} added no record {seq} by {author} for {patient}")

    def flag_record(self, patient: Wallet, index: int, *, disputed: bool, hidden: bool) -> TxResult:
        """The patient flags its record ``index`` as disputed and/or hidden (both False clears)."""
        flags = (DISPUTED if disputed else 0) | (HIDDEN if hidden else 0)
        fn = self.chain.records.functions.flagRecord(index, flags)
        return self.chain.transact(patient, fn, f"flag record {index} of {patient.address}")

    def read_record(self, reader: Wallet, patient: str, index: int) -> Record:
        """Fetches, verifies and decrypts record ``index`` of ``patient`` for ``reader``."""
        patient = to_checksum_address(patient)
        pointer = self.record(patient, index)
        self.check_access(reader.address, pointer)
        blob = self._fetch(pointer, "ciphertext", pointer.cid)
        actual = "0x" + hashlib.sha256(blob).hexdigest()
        if actual != pointer.content_hash:
            raise ContentHashMismatchError(f"record {index} of {patient}", pointer.content_hash, actual)
        bundle = self.record_bundle(pointer)
        context = self.context_of(pointer)
        try:
            key = self.open_key(reader, pointer, bundle)
        except (AccessDeniedError, DecryptionError):
            if bundle.escrow is None:
                raise
            # No wrap of its own, or none its keys open (a patient who lost its key file and
            # registered a new key): the keepers release the key, and their answer is checked by
            # decrypting, so the plaintext of that check is the one returned.
            key, released = self.released_key(reader, pointer, bundle, blob)
            plaintext = released if released is not None else _decrypt(pointer, blob, key, context)
        else:
            plaintext = _decrypt(pointer, blob, key, context)
        try:
            opened = envelope.unpack(plaintext)
        except IntegrityError as exc:
            raise BadRecordError(patient, index, str(exc)) from None
        return Record(pointer, opened.content_type, opened.name, opened.body)

    def record_bundle(self, pointer: RecordPointer) -> KeyBundle:
        """The record's own key bundle; BadRecordError if its CID is unusable, the node lacks it
        or it is not a key bundle of the patient."""
        cid = pointer.keys_cid
        try:
            return self.key_bundle(cid, pointer.patient, name=f"its key bundle {cid}")
        except CidMismatchError:
            raise  # a node that served other bytes: said as such, as for the ciphertext
        except (IpfsError, InvalidCidError) as exc:
            raise BadRecordError(
                pointer.patient, pointer.index, f"its key bundle {cid} cannot be fetched: {exc}"
            ) from None
        except IntegrityError as exc:
            raise BadRecordError(pointer.patient, pointer.index, str(exc)) from None

    def _fetch(self, pointer: RecordPointer, what: str, cid: str, kind: ObjectKind = "record") -> bytes:
        """The bytes of one of the record's objects; a node that answers but cannot provide
        them makes the record bad (a node that does not answer is IpfsUnavailableError)."""
        try:
            return self.ipfs.cat(cid, kind=kind)
        except (IpfsError, InvalidCidError) as exc:
            raise BadRecordError(pointer.patient, pointer.index, f"its {what} {cid} cannot be fetched: {exc}") from None

    def open_key(self, reader: Wallet, pointer: RecordPointer, bundle: KeyBundle | None = None) -> bytes:
        """The record key of ``pointer``, from any wrap for ``reader`` that one of its keys opens:
        every key its key file holds, newest first (wraps made before a rotation open with an
        older one). ``bundle`` is the record's own key bundle, if the caller has fetched it already."""
        context = self.context_of(pointer)
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

    def open_keys(
        self, holder: Wallet, pointers: list[RecordPointer]
    ) -> tuple[list[tuple[RecordPointer, bytes]], dict[int, str]]:
        """The key of each of ``pointers`` that ``holder``'s keys open, and why each other one did
        not, by index: a record it cannot open (no wrap, a garbage wrap, a bundle that is missing
        or no bundle) is one finding, and the others are still opened. A node that does not
        answer is not a finding about a record: that stops."""
        opened: list[tuple[RecordPointer, bytes]] = []
        skipped: dict[int, str] = {}
        for pointer in pointers:
            try:
                opened.append((pointer, self.open_key(holder, pointer)))
            except NodeUnavailableError:
                raise
            except MedvaultError as exc:
                skipped[pointer.index] = str(exc)
        return opened, skipped

    def _wraps(self, reader: str, pointer: RecordPointer, bundle: KeyBundle | None) -> Iterator[bytes]:
        """The reader's wraps of the record key, fetched lazily: from the record's bundle, then
        from the bundles shared with it (grants, ``shareKeys``, the patient's key rotations),
        newest first."""
        yield from (bundle or self.record_bundle(pointer)).wraps_for(reader, pointer.author, pointer.seq)
        shared = self.chain.events("ConsentManager", "KeysShared", patient=pointer.patient, grantee=reader)
        for event in reversed(shared):
            # Parsed and fetched only when reached; a bad one (anyone's grant, a delegate's,
            # a lying node's) is passed over for the rest.
            try:
                cid = pointer_cid(bytes(event["args"]["keysCid"]))
                shared_bundle = self.key_bundle(cid, pointer.patient)
            except (InvalidCidError, IpfsError, IntegrityError) as exc:
                tx = event["transactionHash"].to_0x_hex()
                log.warning("skipped the keys shared with %s in transaction %s: %s", reader, tx, exc)
                continue
            yield from shared_bundle.wraps_for(reader, pointer.author, pointer.seq)

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
        fn = self.register_call(public)
        transactions = [self.chain.transact(wallet, fn, f"rotate key of {wallet.address} to epoch {new}")]
        opened, skipped = self.open_keys(wallet, self.records(wallet.address))
        wraps = [wrap_for(self.context_of(p), key, wallet.address, public) for p, key in opened]
        keys_cid = None
        if wraps:
            keys_cid = self.ipfs.add(self.new_key_bundle(wallet.address, wraps).to_bytes(), kind="bundle")
            fn = self.chain.consent.functions.shareKeys(wallet.address, cid_to_bytes(keys_cid))
            try:
                transactions.append(self.chain.transact(wallet, fn, f"re-wrapped keys of {wallet.address}"))
            except ContractError:  # refused or failed: nothing names the bundle
                self._unpin_quietly(keys_cid)
                raise
        rewrapped = [p.index for p, _ in opened]
        return KeyRotation(wallet.address, old, new, public, keys_cid, rewrapped, transactions, skipped)

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


def _decrypt(pointer: RecordPointer, blob: bytes, key: bytes, context: RecordContext) -> bytes:
    """The plaintext of ``blob``; bytes that are not a medvault ciphertext make the record bad
    (a DecryptionError, a wrong key or a tampered ciphertext, stays what it is)."""
    try:
        return decrypt_record(blob, key, context)
    except DecryptionError:
        raise
    except IntegrityError as exc:
        raise BadRecordError(pointer.patient, pointer.index, str(exc)) from None
