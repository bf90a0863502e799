"""The medvault client: participants, encrypted records and consent, end to end.

Writing a record: seal the payload under a fresh key bound to its place in the patient's log,
wrap that key for the patient, the author and every current grantee, add ciphertext and key
bundle to IPFS, then append the pointer on chain. If the chain refuses, the IPFS objects are
unpinned again, so a failed add leaves nothing behind.

Reading a record: ask the chain whether the reader may read now, rebuild and check the
patient's hash chain, fetch the ciphertext and check it against its CID and the on-chain
content hash, unwrap the reader's key, decrypt.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.crypto import (
    RecordContext,
    decrypt_record,
    encrypt_record,
    new_record_key,
    unwrap_key,
    wrap_key,
)
from medvault.errors import (
    AccessDeniedError,
    ConfigurationError,
    ContentHashMismatchError,
    ContractError,
    IntegrityError,
    MedvaultError,
)
from medvault.ipfs import cid_from_bytes, cid_to_bytes

if TYPE_CHECKING:
    from medvault.accounts import Wallet
    from medvault.chain import Chain, TxResult
    from medvault.ipfs import IpfsClient

__all__ = ["Category", "ConsentEntry", "Medvault", "Record", "RecordPointer"]

KEY_BUNDLE_FORMAT = "medvault/key-bundle/v1"
STALE_INDEX_RETRIES = 3


class Category(enum.IntEnum):
    """Record categories (the contract accepts 0..5), after the FHIR resources they hold."""

    LABORATORY = 0  # Observation (laboratory), DiagnosticReport
    IMAGING = 1  # ImagingStudy, imaging DiagnosticReport
    MEDICATIONS = 2  # MedicationRequest, MedicationStatement
    CONDITIONS = 3  # Condition, AllergyIntolerance
    IMMUNIZATIONS = 4  # Immunization
    NOTES = 5  # DocumentReference, Composition, free documents and images

    @classmethod
    def parse(cls, value: str | int) -> Category:
        try:
            return cls(int(value)) if str(value).isdigit() else cls[str(value).upper()]
        except (KeyError, ValueError):
            names = ", ".join(c.name.lower() for c in cls)
            raise ConfigurationError(f"unknown record category {value!r} (one of: {names})") from None


class Role(enum.Enum):
    PROVIDER = "PROVIDER"
    RESEARCHER = "RESEARCHER"

    @property
    def role_id(self) -> bytes:
        return keccak(text=self.value)


@dataclass(frozen=True)
class RecordPointer:
    """One entry of a patient's log, as the chain recorded it."""

    patient: str
    index: int
    author: str
    record_hash: str
    category: Category
    timestamp: int
    content_hash: str
    cid: str
    keys_cid: str
    tx_hash: str
    block_number: int

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "category": self.category.name.lower()}


@dataclass(frozen=True)
class Record:
    pointer: RecordPointer
    content_type: str
    name: str
    data: bytes


@dataclass(frozen=True)
class RecordReceipt:
    pointer: RecordPointer
    tx: TxResult
    readers: list[str]


@dataclass(frozen=True)
class ConsentEntry:
    patient: str
    grantee: str
    valid_until: int
    active: bool
    keys_cids: list[str]


class Medvault:
    """Participants, records and consent on one deployment, with one IPFS node."""

    def __init__(self, chain: Chain, ipfs: IpfsClient) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self.suite = chain.deployment.key_suite

    # -- participants ----------------------------------------------------------------------

    def register(self, wallet: Wallet) -> TxResult:
        """Publishes ``wallet``'s encryption public key (for the deployment's HPKE suite)."""
        public = wallet.encryption_keys(self.suite).public_bytes
        fn = self.chain.participants.functions.register(public)
        return self.chain.transact(wallet, fn, f"register {wallet.address}")

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

    def roles(self, account: str) -> list[str]:
        account = to_checksum_address(account)
        functions = self.chain.participants.functions
        return [r.value.lower() for r in Role if functions.hasRole(r.role_id, account).call()]

    # -- records ---------------------------------------------------------------------------

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
        readers = self._readers_for_new_record(patient, author.address)
        header = json.dumps({"contentType": content_type, "name": name}, separators=(",", ":")).encode()
        plaintext = header + b"\n" + data
        for _attempt in range(STALE_INDEX_RETRIES):
            _, count = self.chain.call(self.chain.records.functions.logOf(patient), "logOf")
            context = self._context(patient, count)
            record_key = new_record_key()
            blob = encrypt_record(plaintext, record_key, context)
            bundle = self._key_bundle(patient, [(context, record_key, reader, key) for reader, key in readers.items()])
            cid = self.ipfs.add(blob)
            try:
                keys_cid = self.ipfs.add(bundle)
            except BaseException:
                self._unpin_quietly(cid)
                raise
            fn = self.chain.records.functions.addRecord(
                patient, count, cid_to_bytes(cid), hashlib.sha256(blob).digest(), int(category), cid_to_bytes(keys_cid)
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
            pointer = self.records(patient)[count]
            return RecordReceipt(pointer, tx, list(readers))
        raise ContractError(f"add record for {patient}", "RecordRegistryStaleIndex", {"retries": STALE_INDEX_RETRIES})

    def records(self, patient: str) -> list[RecordPointer]:
        """The patient's log from chain events, after checking its hash chain against the head."""
        patient = to_checksum_address(patient)
        head, count = self.chain.call(self.chain.records.functions.logOf(patient), "logOf")
        previous = bytes(32)
        pointers: list[RecordPointer] = []
        for event in self.chain.events("RecordRegistry", "RecordAdded", patient=patient):
            a = event["args"]
            if a["index"] != len(pointers):
                raise IntegrityError(f"record log of {patient}: event for index {a['index']} out of order")
            recomputed = _record_hash(previous, patient, a)
            if recomputed != bytes(a["recordHash"]):
                raise IntegrityError(f"record {a['index']} of {patient}: its hash does not match its fields")
            previous = recomputed
            pointers.append(
                RecordPointer(
                    patient=patient,
                    index=a["index"],
                    author=a["author"],
                    record_hash="0x" + recomputed.hex(),
                    category=Category(a["category"]),
                    timestamp=a["timestamp"],
                    content_hash="0x" + bytes(a["contentHash"]).hex(),
                    cid=cid_from_bytes(bytes(a["cid"])),
                    keys_cid=cid_from_bytes(bytes(a["keysCid"])),
                    tx_hash=event["transactionHash"].to_0x_hex(),
                    block_number=event["blockNumber"],
                )
            )
        if len(pointers) != count or previous != bytes(head):
            raise IntegrityError(
                f"record log of {patient}: {len(pointers)} events rebuild head 0x{previous.hex()}, "
                f"but the chain holds {count} records with head 0x{bytes(head).hex()}"
            )
        return pointers

    def read_record(self, reader: Wallet, patient: str, index: int) -> Record:
        """Fetches, verifies and decrypts record ``index`` of ``patient`` for ``reader``."""
        patient = to_checksum_address(patient)
        pointers = self.records(patient)
        if not 0 <= index < len(pointers):
            raise ConfigurationError(f"{patient} has no record {index} (records: {len(pointers)})")
        pointer = pointers[index]
        self._check_access(reader.address, pointer)
        blob = self.ipfs.cat(pointer.cid)
        actual = "0x" + hashlib.sha256(blob).hexdigest()
        if actual != pointer.content_hash:
            raise ContentHashMismatchError(f"record {index} of {patient}", pointer.content_hash, actual)
        context = self._context(patient, index)
        wrapped = self._find_wrap(reader.address, pointer)
        key = unwrap_key(wrapped, reader.encryption_keys(self.suite), context, reader.address)
        plaintext = decrypt_record(blob, key, context)
        header, _, body = plaintext.partition(b"\n")
        meta = json.loads(header)
        return Record(pointer, meta["contentType"], meta.get("name", ""), body)

    # -- consent ---------------------------------------------------------------------------

    def grant(self, patient: Wallet, grantee: str, valid_until: int) -> list[TxResult]:
        """Grants ``grantee`` access until ``valid_until`` and shares the existing record keys."""
        grantee = to_checksum_address(grantee)
        recipient = self.encryption_key(grantee)
        results: list[TxResult] = []
        covered = 0
        # Loop because a record may land between building the bundle and the grant.
        while True:
            pointers = self.records(patient.address)
            missing = pointers[covered:]
            keys_cid = self._share_keys(patient, grantee, recipient, missing) if missing else None
            fn = self.chain.consent.functions.grant(grantee, valid_until, cid_to_bytes(keys_cid) if keys_cid else b"")
            try:
                results.append(self.chain.transact(patient, fn, f"grant {grantee}"))
            except BaseException:
                if keys_cid:
                    self._unpin_quietly(keys_cid)
                raise
            covered = len(pointers)
            if self.chain.records.functions.logOf(patient.address).call()[1] == covered:
                return results

    def revoke(self, patient: Wallet, grantee: str) -> TxResult:
        fn = self.chain.consent.functions.revoke(to_checksum_address(grantee))
        return self.chain.transact(patient, fn, f"revoke {grantee}")

    def can_read(self, patient: str, reader: str) -> bool:
        fn = self.chain.consent.functions.canRead(to_checksum_address(patient), to_checksum_address(reader))
        return bool(self.chain.call(fn, "canRead"))

    def consents(self, patient: str) -> list[ConsentEntry]:
        """Every grantee the patient ever granted, with the grant's current state."""
        patient = to_checksum_address(patient)
        bundles: dict[str, list[str]] = {}
        for event in self.chain.events("ConsentManager", "AccessGranted", patient=patient):
            keys = bytes(event["args"]["keysCid"])
            bundles.setdefault(event["args"]["grantee"], []).extend([cid_from_bytes(keys)] if keys else [])
        now = self._now()
        entries = []
        for grantee, cids in bundles.items():
            until = int(self.chain.consent.functions.grantOf(patient, grantee).call())
            entries.append(ConsentEntry(patient, grantee, until, until > now, cids))
        return entries

    # -- internals -------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _context(self, patient: str, index: int) -> RecordContext:
        return RecordContext(self.chain.chain_id, self.chain.records.address, patient, index)

    def _readers_for_new_record(self, patient: str, author: str) -> dict[str, bytes]:
        """The patient, the author (if registered) and every grantee who may read now."""
        readers = {patient: self.encryption_key(patient)}
        if author != patient and self.is_registered(author):
            readers[author] = self.encryption_key(author)
        for entry in self.consents(patient):
            if entry.active:
                readers[entry.grantee] = self.encryption_key(entry.grantee)
        return readers

    def _key_bundle(self, patient: str, items: list[tuple[RecordContext, bytes, str, bytes]]) -> bytes:
        wraps = [
            {
                "index": ctx.index,
                "reader": reader,
                "wrap": base64.b64encode(wrap_key(key, public, ctx, reader)).decode(),
            }
            for ctx, key, reader, public in items
        ]
        bundle = {
            "format": KEY_BUNDLE_FORMAT,
            "chainId": self.chain.chain_id,
            "registry": self.chain.records.address,
            "patient": patient,
            "suite": self.suite.name,
            "wraps": wraps,
        }
        return json.dumps(bundle, separators=(",", ":")).encode()

    def _share_keys(self, patient: Wallet, grantee: str, recipient: bytes, pointers: list[RecordPointer]) -> str:
        items = []
        for pointer in pointers:
            context = self._context(patient.address, pointer.index)
            wrapped = self._find_wrap(patient.address, pointer)
            key = unwrap_key(wrapped, patient.encryption_keys(self.suite), context, patient.address)
            items.append((context, key, grantee, recipient))
        return self.ipfs.add(self._key_bundle(patient.address, items))

    def _find_wrap(self, reader: str, pointer: RecordPointer) -> bytes:
        """The reader's wrap of the record key: in the record's bundle or a grant's bundle."""
        cids = [pointer.keys_cid]
        for entry in self.consents(pointer.patient):
            if entry.grantee == reader:
                cids += entry.keys_cids
        for cid in cids:
            bundle = json.loads(self.ipfs.cat(cid))
            if bundle.get("format") != KEY_BUNDLE_FORMAT or bundle.get("patient") != pointer.patient:
                raise IntegrityError(f"key bundle {cid} is not a medvault key bundle for {pointer.patient}")
            for item in bundle["wraps"]:
                if item["index"] == pointer.index and item["reader"] == reader:
                    return base64.b64decode(item["wrap"])
        raise AccessDeniedError(reader, pointer.patient, f"no key of record {pointer.index} was ever wrapped for it")

    def _check_access(self, reader: str, pointer: RecordPointer) -> None:
        if reader in (pointer.patient, pointer.author):
            return
        if not self.can_read(pointer.patient, reader):
            until = int(self.chain.consent.functions.grantOf(pointer.patient, reader).call())
            if until:
                reason = f"its grant expired at {until} (chain time)"
            elif self.chain.events("ConsentManager", "AccessRevoked", patient=pointer.patient, grantee=reader):
                reason = "no active grant: the patient revoked it"
            else:
                reason = "no active grant: the patient never granted one"
            raise AccessDeniedError(reader, pointer.patient, reason)

    def _unpin_quietly(self, *cids: str) -> None:
        """Undoes the adds of a write the chain refused; the original error is what matters."""
        for cid in cids:
            # If the node went away, pinned or not, nothing on chain points at these objects.
            with contextlib.suppress(MedvaultError):
                self.ipfs.unpin(cid)


def _record_hash(previous: bytes, patient: str, args: Any) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "address", "uint64", "address", "uint8", "uint64", "bytes32", "bytes32", "bytes32"],
            [
                previous,
                patient,
                args["index"],
                args["author"],
                args["category"],
                args["timestamp"],
                bytes(args["contentHash"]),
                keccak(bytes(args["cid"])),
                keccak(bytes(args["keysCid"])),
            ],
        )
    )
