"""The medvault client: participants, encrypted records and consent, end to end.

Writing a record: seal the payload under a fresh key bound to its place in the patient's log,
wrap that key for the patient, the author and every grantee whose grant covers the record's
category and has not ended, add ciphertext and key bundle to IPFS, then append the pointer on
chain. If the chain refuses, the IPFS objects are unpinned again, so a failed add leaves
nothing behind.

Reading a record: ask the chain whether the reader may read this category now, rebuild and
check the patient's hash chain, fetch the ciphertext and check it against its CID and the
on-chain content hash, unwrap the reader's key, decrypt.

Keys and rotation: an account's encryption key of epoch N is derived from its signature over a
fixed EIP-712 message (``medvault.crypto``); the chain stores the hash of the one it published,
and the client finds its epoch by comparing. ``rotate_key`` publishes the next epoch's key and
re-wraps the keys of the patient's records for it in one bundle, announced with ``shareKeys``.
Records written from then on are wrapped for the new key only, so the old key opens nothing
new. A reader unwraps with its current key first, then with its earlier ones (bundles made
before a rotation are wrapped to the key of their time).

Keepers: a patient may name key-release keepers (``set_keepers``). Each record written from
then on also escrows its key t-of-n among them ("escrow" in its key bundle, ``medvault.escrow``);
a reader whom the chain lets read but who holds no wrap (a grant made by a delegate, say) asks
the keepers, who each check consent on chain before releasing their share (``release_key``,
``medvault.keeper``), and post a ``KeyReleased`` receipt for it (``releases``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.crypto import (
    KeySuite,
    RecordContext,
    decrypt_record,
    encrypt_record,
    new_record_key,
    open_share,
    seal_share,
    unwrap_key,
    wrap_key,
)
from medvault.errors import (
    AccessDeniedError,
    ConfigurationError,
    ContentHashMismatchError,
    ContractError,
    DecryptionError,
    IntegrityError,
    KeeperRefusedError,
    MedvaultError,
)
from medvault.escrow import combine_key, split_key
from medvault.ipfs import cid_from_bytes, cid_to_bytes
from medvault.keyrequest import KeyRequest, Refusal, post_key_request, sign_key_request
from medvault.model import (
    AccessRequest,
    Category,
    Grant,
    Purpose,
    Record,
    RecordPointer,
    RequestStatus,
    Role,
    categories_of,
    scope_mask,
)
from medvault.signing import REQUEST_FIELDS, ConsentChange, SignedConsent, consent_call, sign_consent

if TYPE_CHECKING:
    from collections.abc import Iterator

    from web3.contract.contract import ContractFunction

    from medvault.accounts import Wallet
    from medvault.chain import Chain, TxResult
    from medvault.ipfs import IpfsClient

__all__ = ["AuditEntry", "KeeperSet", "KeyInfo", "KeyRelease", "KeyRotation", "Medvault", "RecordReceipt"]

KEY_BUNDLE_FORMAT = "medvault/key-bundle/v1"
MAX_KEY_EPOCHS = 64  # epochs 0..63 are searched for the one whose key an account published
STALE_INDEX_RETRIES = 3
SIGNATURE_LIFETIME = 7 * 86400  # a signed consent change must be relayed within a week
# Events that create a grant, and the argument naming the grantee in each.
_GRANT_EVENTS = (("AccessGranted", "grantee"), ("RequestApproved", "researcher"), ("EmergencyAccessTaken", "provider"))
# What `audit` reads: every event of each contract that names the patient.
_AUDITED = {
    "ParticipantRegistry": ("ParticipantRegistered",),
    "RecordRegistry": ("RecordAdded",),
    "ConsentManager": (
        "AccessGranted", "KeysShared", "AccessRevoked", "ActedAsDelegate", "DelegateAppointed", "DelegateRemoved",
        "AccessRequested", "RequestApproved", "RequestDenied", "EmergencyAccessTaken",
    ),
    "KeeperDirectory": ("KeepersChosen", "KeyReleased"),
}  # fmt: skip


@dataclass(frozen=True)
class RecordReceipt:
    pointer: RecordPointer
    tx: TxResult
    readers: list[str]


@dataclass(frozen=True)
class KeyInfo:
    """An account's encryption key as its wallet derives it, against the one on chain.

    ``epoch`` is the epoch whose key the chain holds, or None if no derivable key matches (not
    registered, or registered with another suite or derivation); ``public_key`` is that epoch's
    key, else epoch 0's.
    """

    account: str
    suite: KeySuite
    epoch: int | None
    public_key: bytes
    registered: bool

    @property
    def matches_chain(self) -> bool:
        return self.epoch is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account, "suite": self.suite.name, "epoch": self.epoch,
            "public_key": "0x" + self.public_key.hex(), "registered": self.registered,
            "matches_chain": self.matches_chain,
        }  # fmt: skip


@dataclass(frozen=True)
class KeyRotation:
    """What ``rotate_key`` did: the new key's epoch, and the records whose keys were re-wrapped."""

    account: str
    old_epoch: int
    new_epoch: int
    public_key: bytes
    keys_cid: str | None
    rewrapped: list[int]
    transactions: list[TxResult]


@dataclass(frozen=True)
class KeeperSet:
    """The keepers a patient chose, any ``threshold`` of which release a record key, and the URL
    each last announced (None if it never did)."""

    patient: str
    keepers: list[str]
    threshold: int
    urls: dict[str, str | None]

    def to_json(self) -> dict[str, Any]:
        return {"patient": self.patient, "keepers": self.keepers, "threshold": self.threshold, "urls": self.urls}


@dataclass(frozen=True)
class KeyRelease:
    """A receipt on chain: ``keeper`` released its share of record ``index`` to ``grantee``."""

    patient: str
    grantee: str
    keeper: str
    index: int
    released_at: int
    release_id: str
    tx_hash: str
    block_number: int


@dataclass(frozen=True)
class AuditEntry:
    """One event in a patient's history: when, what, who sent the transaction, and its fields."""

    timestamp: int
    event: str
    sender: str
    details: dict[str, Any]
    tx_hash: str


class Medvault:
    """Participants, records and consent on one deployment, with one IPFS node."""

    def __init__(self, chain: Chain, ipfs: IpfsClient) -> None:
        self.chain = chain
        self.ipfs = ipfs
        self.suite = chain.deployment.key_suite

    # -- participants ----------------------------------------------------------------------

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

    def rotate_key(self, wallet: Wallet) -> KeyRotation:
        """Moves ``wallet`` to its next key epoch.

        Publishes the new public key, then wraps the key of every record of the patient that its
        keys open for the new key, in one bundle announced with ``shareKeys`` (to the patient).
        From the new key's publication on, records are wrapped for it alone. The old key pair can
        still be derived (and is tried when reading), so a rotation loses nothing; it limits what
        an old key opens to what existed before the rotation.
        """
        old = self.key_epoch(wallet)
        new = old + 1
        if new >= MAX_KEY_EPOCHS:
            raise ConfigurationError(f"{wallet.address} is at its last key epoch ({old}); no rotation is left")
        public = wallet.encryption_keys(self.suite, new).public_bytes
        fn = self.chain.participants.functions.register(public)
        transactions = [self.chain.transact(wallet, fn, f"rotate key of {wallet.address} to epoch {new}")]
        items: list[tuple[RecordContext, bytes, str, bytes]] = []
        rewrapped: list[int] = []
        for pointer in self.records(wallet.address):
            try:
                key = self._open_key(wallet, pointer)
            except (AccessDeniedError, DecryptionError):
                continue  # nothing the patient holds opens it: nothing to re-wrap
            items.append((self._context(wallet.address, pointer.index), key, wallet.address, public))
            rewrapped.append(pointer.index)
        keys_cid = None
        if items:
            keys_cid = self.ipfs.add(self._key_bundle(wallet.address, items))
            fn = self.chain.consent.functions.shareKeys(wallet.address, cid_to_bytes(keys_cid))
            try:
                transactions.append(self.chain.transact(wallet, fn, f"re-wrapped keys of {wallet.address}"))
            except BaseException:
                self._unpin_quietly(keys_cid)
                raise
        return KeyRotation(wallet.address, old, new, public, keys_cid, rewrapped, transactions)

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
        readers = self._readers_for_new_record(patient, author.address, category)
        keepers = self.keepers_of(patient, with_urls=False)
        keeper_keys = {keeper: self.encryption_key(keeper) for keeper in keepers.keepers}
        header = json.dumps({"contentType": content_type, "name": name}, separators=(",", ":")).encode()
        plaintext = header + b"\n" + data
        for _attempt in range(STALE_INDEX_RETRIES):
            _, count = self.chain.call(self.chain.records.functions.logOf(patient), "logOf")
            context = self._context(patient, count)
            record_key = new_record_key()
            blob = encrypt_record(plaintext, record_key, context)
            escrow = self._escrow(context, record_key, keepers.threshold, keeper_keys) if keeper_keys else None
            items = [(context, record_key, reader, key) for reader, key in readers.items()]
            bundle = self._key_bundle(patient, items, escrow)
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
        try:
            key = self._open_key(reader, pointer)
        except AccessDeniedError:
            if self.bundle(pointer.keys_cid, patient).get("escrow") is None:
                raise
            key = self.release_key(reader, pointer, blob)  # no wrap of its own: ask the patient's keepers
        plaintext = decrypt_record(blob, key, context)
        header, _, body = plaintext.partition(b"\n")
        meta = json.loads(header)
        return Record(pointer, meta["contentType"], meta.get("name", ""), body)

    # -- consent ---------------------------------------------------------------------------
    # Each change is built once (``*_change``), then sent by ``submit`` or signed by ``sign``
    # for anyone to ``relay``.

    def grant_change(
        self,
        actor: Wallet,
        patient: str,
        grantee: str,
        scopes: frozenset[Category],
        purpose: Purpose,
        valid_from: int,
        valid_until: int,
    ) -> ConsentChange:
        """A grant of ``scopes`` for ``purpose`` during [valid_from, valid_until).

        When the patient acts, the keys of their records in scope are wrapped for the grantee
        and published with the grant (a delegate cannot open them).
        """
        patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
        in_scope = [p for p in self.records(patient) if p.category in scopes]
        return ConsentChange("Grant", {
            "patient": patient, "grantee": grantee, "scopes": scope_mask(scopes), "purpose": int(purpose),
            "validFrom": valid_from, "validUntil": valid_until,
            "keysCid": self._share_keys(actor, patient, grantee, in_scope),
        })  # fmt: skip

    def grant(
        self,
        actor: Wallet,
        patient: str,
        grantee: str,
        scopes: frozenset[Category],
        purpose: Purpose,
        valid_from: int,
        valid_until: int,
    ) -> list[TxResult]:
        """Sends a grant; sends it again if a record in scope landed while the first was in flight."""
        results = []
        while True:
            covered = sum(p.category in scopes for p in self.records(patient))
            change = self.grant_change(actor, patient, grantee, scopes, purpose, valid_from, valid_until)
            results.append(self.submit(actor, change))
            if sum(p.category in scopes for p in self.records(patient)) == covered:
                return results

    def share_keys(self, patient: Wallet, grantee: str, scopes: frozenset[Category] | None = None) -> TxResult:
        """Hands ``grantee`` the keys of the patient's existing records in ``scopes`` (default:
        the scopes of its current grant), e.g. after a grant a delegate made, which shares none.
        It grants no access by itself."""
        grantee = to_checksum_address(grantee)
        if scopes is None:
            grant = self.grant_of(patient.address, grantee)
            if grant is None:
                raise ConfigurationError(f"{patient.address} holds no grant to {grantee}: name the scopes to share")
            scopes = grant.scopes
        pointers = [p for p in self.records(patient.address) if p.category in scopes]
        if not pointers:
            raise ConfigurationError(f"{patient.address} has no records in scope to share with {grantee}")
        keys_cid = self._share_keys(patient, patient.address, grantee, pointers)
        fn = self.chain.consent.functions.shareKeys(grantee, keys_cid)
        try:
            return self.chain.transact(patient, fn, f"share keys of {patient.address} with {grantee}")
        except BaseException:
            self._unpin_quietly(cid_from_bytes(keys_cid))
            raise

    def revoke_change(self, patient: str, grantee: str) -> ConsentChange:
        return ConsentChange(
            "Revoke", {"patient": to_checksum_address(patient), "grantee": to_checksum_address(grantee)}
        )

    def revoke(self, actor: Wallet, patient: str, grantee: str) -> TxResult:
        return self.submit(actor, self.revoke_change(patient, grantee))

    def delegate_change(self, patient: str, delegate: str, *, appoint: bool = True) -> ConsentChange:
        message = {"patient": to_checksum_address(patient), "delegate": to_checksum_address(delegate)}
        return ConsentChange("AppointDelegate" if appoint else "RemoveDelegate", message)

    def set_delegate(self, patient: Wallet, delegate: str, *, appoint: bool = True) -> TxResult:
        """Appoints (or removes) ``delegate``, who may then manage the patient's consent."""
        return self.submit(patient, self.delegate_change(patient.address, delegate, appoint=appoint))

    def is_delegate(self, patient: str, delegate: str) -> bool:
        fn = self.chain.consent.functions.delegationOf(to_checksum_address(patient), to_checksum_address(delegate))
        return bool(self.chain.call(fn, "delegationOf")[0])

    def decision_change(
        self, actor: Wallet, request: AccessRequest, *, approve: bool, share_keys: bool = True
    ) -> ConsentChange:
        """Approves or denies a request. An approval by the patient shares the in-scope record
        keys, unless ``share_keys`` is false: then the researcher gets each key from the
        patient's keepers, who check the grant at every request."""
        fields = dict(zip(REQUEST_FIELDS, request.as_tuple(), strict=True))
        if not approve:
            return ConsentChange("DenyRequest", fields)
        in_scope = [p for p in self.records(request.patient) if p.category in request.scopes]
        keys_cid = self._share_keys(actor, request.patient, request.researcher, in_scope) if share_keys else b""
        return ConsentChange("ApproveRequest", {**fields, "keysCid": keys_cid})

    def decide_request(self, actor: Wallet, request: AccessRequest, *, approve: bool) -> TxResult:
        return self.submit(actor, self.decision_change(actor, request, approve=approve))

    def submit(self, actor: Wallet, change: ConsentChange) -> TxResult:
        """Sends ``change`` from ``actor``: the patient by plain transaction; a delegate by
        signing it and relaying the signature itself (the contract takes a delegate's word
        for a patient only in signed form)."""
        direct = actor.address == change.patient or change.action in ("ApproveRequest", "DenyRequest")
        if direct:
            return self._send(actor, change, consent_call(self.chain, change))
        return self.relay(actor, self.sign(actor, change))

    def sign(self, signer: Wallet, change: ConsentChange, lifetime: int = SIGNATURE_LIFETIME) -> SignedConsent:
        """Signs ``change`` as EIP-712 typed data, valid for ``lifetime`` seconds of chain time."""
        return sign_consent(self.chain, signer, change, deadline=self.now() + lifetime)

    def relay(self, relayer: Wallet, signed: SignedConsent) -> TxResult:
        """Sends someone's signed consent change from ``relayer``'s account (who pays the gas)."""
        return self._send(relayer, signed.change, consent_call(self.chain, signed.change, signed.authorization()))

    def request_access(
        self, researcher: Wallet, patient: str, scopes: frozenset[Category], purpose: Purpose, duration: int, study: str
    ) -> tuple[AccessRequest, TxResult]:
        """An accredited researcher asks ``patient`` for ``duration`` seconds of access from approval."""
        fn = self.chain.consent.functions.requestAccess(
            to_checksum_address(patient), scope_mask(scopes), int(purpose), duration, _study_id(study)
        )
        tx = self.chain.transact(researcher, fn, f"request access to {patient}")
        return next(r for r in self.requests(researcher=researcher.address) if r.tx_hash == tx.tx_hash), tx

    def requests(self, *, patient: str | None = None, researcher: str | None = None) -> list[AccessRequest]:
        """Research requests (to a patient, or by a researcher) with their current status."""
        filters = {k: to_checksum_address(v) for k, v in (("patient", patient), ("researcher", researcher)) if v}
        result = []
        for event in self.chain.events("ConsentManager", "AccessRequested", **filters):
            a = event["args"]
            result.append(
                AccessRequest(
                    patient=a["patient"],
                    researcher=a["researcher"],
                    scopes=categories_of(a["scopes"]),
                    purpose=Purpose(a["purpose"]),
                    duration=a["duration"],
                    requested_at=a["requestedAt"],
                    study_id=bytes(a["studyId"]),
                    request_id=a["requestId"],
                    status=RequestStatus(self.chain.consent.functions.requestStatus(a["requestId"]).call()),
                    tx_hash=event["transactionHash"].to_0x_hex(),
                )
            )
        return result

    def request(self, request_id: int) -> AccessRequest:
        for request in self.requests():
            if request.request_id == request_id:
                return request
        raise ConfigurationError(f"no research request {request_id:#x} on this deployment")

    def take_emergency_access(self, provider: Wallet, patient: str, reason: str) -> TxResult:
        fn = self.chain.consent.functions.takeEmergencyAccess(to_checksum_address(patient), reason)
        return self.chain.transact(provider, fn, f"emergency access to {patient}")

    def can_read(self, patient: str, reader: str, category: Category) -> bool:
        patient, reader = to_checksum_address(patient), to_checksum_address(reader)
        return bool(self.chain.call(self.chain.consent.functions.canRead(patient, reader, int(category)), "canRead"))

    def grant_of(self, patient: str, grantee: str) -> Grant | None:
        """The grant as the chain holds it now, or None if there is none (never granted, or revoked)."""
        patient, grantee = to_checksum_address(patient), to_checksum_address(grantee)
        fn = self.chain.consent.functions.grantOf(patient, grantee)
        valid_from, valid_until, scopes, purpose, emergency, _nonce = self.chain.call(fn, "grantOf")
        if valid_until == 0:
            return None
        return Grant(patient, grantee, categories_of(scopes), Purpose(purpose), valid_from, valid_until, emergency)

    def grants(self, patient: str) -> list[Grant]:
        """Every grant the patient holds now (expired ones included, revoked ones not)."""
        patient = to_checksum_address(patient)
        grantees = dict.fromkeys(
            event["args"][key]
            for kind, key in _GRANT_EVENTS
            for event in self.chain.events("ConsentManager", kind, patient=patient)
        )
        return [g for g in (self.grant_of(patient, grantee) for grantee in grantees) if g]

    # -- audit -----------------------------------------------------------------------------

    def audit(self, patient: str) -> list[AuditEntry]:
        """The patient's whole history from chain events, oldest first: registration, records,
        grants and key releases, revocations, delegates, requests and decisions, emergencies."""
        patient = to_checksum_address(patient)
        logs = [
            event
            for contract, kinds in _AUDITED.items()
            for kind in kinds
            for event in self.chain.events(contract, kind, **{_subject(kind): patient})
        ]
        logs.sort(key=lambda e: (e["blockNumber"], e["logIndex"]))
        blocks: dict[int, int] = {}
        senders: dict[str, str] = {}
        entries = []
        for event in logs:
            tx = event["transactionHash"].to_0x_hex()
            if tx not in senders:
                senders[tx] = str(self.chain.w3.eth.get_transaction(tx)["from"])
            if event["blockNumber"] not in blocks:
                blocks[event["blockNumber"]] = int(self.chain.w3.eth.get_block(event["blockNumber"])["timestamp"])
            details = {k: _plain(v) for k, v in event["args"].items() if k not in ("patient", "account")}
            entries.append(AuditEntry(blocks[event["blockNumber"]], event["event"], senders[tx], details, tx))
        return entries

    def grant_event(self, patient: str, grantee: str) -> AuditEntry | None:
        """The event that created the patient's current grant to ``grantee``, if any."""
        grantee = to_checksum_address(grantee)
        for entry in reversed(self.audit(patient)):
            key = dict(_GRANT_EVENTS).get(entry.event)
            if key and entry.details.get(key) == grantee:
                return entry
        return None

    # -- keepers ---------------------------------------------------------------------------
    # A patient may choose key-release keepers (``set_keepers``); every record written from
    # then on escrows its key with them, t-of-n (``medvault.escrow``). A reader with access but
    # no wrap of its own asks them (``release_key``); each checks consent on chain first, and
    # posts a ``KeyReleased`` receipt for what it released (``releases``).

    def set_keepers(self, patient: Wallet, keepers: list[str], threshold: int) -> TxResult:
        """Chooses ``patient``'s keepers (registered accounts) and threshold; an empty list, with
        threshold 0, removes them. Records written before keep the keepers of their time."""
        keepers = [to_checksum_address(k) for k in keepers]
        for keeper in keepers:
            if not self.is_registered(keeper):
                raise ConfigurationError(
                    f"keeper {keeper} has no encryption key to escrow shares to (`medvault register`)"
                )
        fn = self.chain.keepers.functions.setKeepers(keepers, threshold)
        return self.chain.transact(patient, fn, f"set {threshold}-of-{len(keepers)} keepers of {patient.address}")

    def keepers_of(self, patient: str, *, with_urls: bool = True) -> KeeperSet:
        patient = to_checksum_address(patient)
        keepers, threshold = self.chain.call(self.chain.keepers.functions.keepersOf(patient), "keepersOf")
        keepers = [to_checksum_address(k) for k in keepers]
        urls = self.keeper_urls(keepers) if with_urls else {}
        return KeeperSet(patient, keepers, int(threshold), urls)

    def keeper_urls(self, keepers: list[str]) -> dict[str, str | None]:
        """The URL each keeper announced last (None if it never announced one)."""
        urls: dict[str, str | None] = {}
        for keeper in keepers:
            events = self.chain.events("KeeperDirectory", "KeeperAnnounced", keeper=to_checksum_address(keeper))
            urls[to_checksum_address(keeper)] = str(events[-1]["args"]["url"]) if events else None
        return urls

    def announce_keeper(self, keeper: Wallet, url: str) -> TxResult:
        fn = self.chain.keepers.functions.announce(url)
        return self.chain.transact(keeper, fn, f"announce keeper {keeper.address} at {url}")

    def releases(self, patient: str, *, keeper: str | None = None) -> list[KeyRelease]:
        """The ``KeyReleased`` receipts of the patient's keepers, oldest first."""
        filters = {"patient": to_checksum_address(patient)}
        if keeper:
            filters["keeper"] = to_checksum_address(keeper)
        return [
            KeyRelease(
                patient=e["args"]["patient"],
                grantee=e["args"]["grantee"],
                keeper=e["args"]["keeper"],
                index=e["args"]["index"],
                released_at=e["args"]["releasedAt"],
                release_id="0x" + bytes(e["args"]["releaseId"]).hex(),
                tx_hash=e["transactionHash"].to_0x_hex(),
                block_number=e["blockNumber"],
            )
            for e in self.chain.events("KeeperDirectory", "KeyReleased", **filters)
        ]

    def release_key(
        self, reader: Wallet, pointer: RecordPointer, blob: bytes | None = None, timeout: float = 10.0
    ) -> bytes:
        """The record key of ``pointer`` from the keepers its bundle escrows it with.

        Asks every keeper at once with a signed ``KeyRequest``, unwraps the shares they release
        and combines ``threshold`` of them; with ``blob`` (the record's ciphertext), a
        combination that does not decrypt it is set aside for another. Raises KeeperRefusedError
        naming the keepers' reasons when fewer than ``threshold`` release. The keepers check
        consent themselves: this does not ask the chain first.
        """
        escrow = self.bundle(pointer.keys_cid, pointer.patient).get("escrow")
        if not escrow:
            raise AccessDeniedError(
                reader.address, pointer.patient, f"no key of record {pointer.index} was wrapped for it, nor escrowed"
            )
        threshold = int(escrow["threshold"])
        expected: dict[str, int] = {to_checksum_address(s["keeper"]): int(s["x"]) for s in escrow["shares"]}
        urls = self.keeper_urls(list(expected))
        context = self._context(pointer.patient, pointer.index)
        pair = reader.encryption_keys(self.suite, self.key_epoch(reader))
        directory, issued_at = self.chain.keepers.address, self.now()

        def ask(keeper: str) -> tuple[int, bytes] | Refusal:
            url = urls[keeper]
            if url is None:
                return Refusal("no-url", f"keeper {keeper} never announced a URL", 0)
            request = KeyRequest(pointer.patient, pointer.index, reader.address, keeper, issued_at)
            try:
                release = post_key_request(
                    url, sign_key_request(reader, request, self.chain.chain_id, directory), timeout
                )
                x = expected[keeper]
                if release.keeper != keeper or release.x != x:
                    raise Refusal("bad-response", f"{url} answered for keeper {release.keeper}, share {release.x}", 0)
                info = context.release_info(reader.address, keeper, x)
                return x, open_share(release.wrap, pair, info, f"the share of record {pointer.index} from {keeper}")
            except Refusal as refusal:
                return refusal
            except DecryptionError as exc:
                return Refusal("bad-response", str(exc), 0)

        with ThreadPoolExecutor(max_workers=len(expected)) as pool:
            answers = dict(zip(expected, pool.map(ask, expected), strict=True))
        shares = [a for a in answers.values() if not isinstance(a, Refusal)]
        refusals: dict[str, Refusal] = {k: a for k, a in answers.items() if isinstance(a, Refusal)}
        if len(shares) >= threshold:
            for subset in itertools.combinations(shares, threshold):
                key = combine_key(list(subset))
                if blob is None:
                    return key
                with contextlib.suppress(DecryptionError):
                    decrypt_record(blob, key, context)
                    return key
            refusals["*"] = Refusal(
                "bad-share", f"no {threshold} of the {len(shares)} released shares open the record", 0
            )
        reasons = {k: (r.reason, r.message) for k, r in refusals.items()}
        raise KeeperRefusedError(reader.address, pointer.patient, len(shares), threshold, reasons)

    # -- internals -------------------------------------------------------------------------

    def now(self) -> int:
        """The chain's time (latest block), which decides every grant window."""
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])

    def _context(self, patient: str, index: int) -> RecordContext:
        return RecordContext(self.chain.chain_id, self.chain.records.address, patient, index)

    def _readers_for_new_record(self, patient: str, author: str, category: Category) -> dict[str, bytes]:
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

    def _key_bundle(
        self, patient: str, items: list[tuple[RecordContext, bytes, str, bytes]], escrow: dict[str, Any] | None = None
    ) -> bytes:
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
        if escrow is not None:
            bundle["escrow"] = escrow
        return json.dumps(bundle, separators=(",", ":")).encode()

    @staticmethod
    def _escrow(context: RecordContext, key: bytes, threshold: int, keepers: dict[str, bytes]) -> dict[str, Any]:
        """The key bundle's escrow: ``key`` split ``threshold``-of-n, each share HPKE-wrapped to
        its keeper's published key under ``context.escrow_info(keeper)``."""
        shares = split_key(key, threshold, len(keepers))
        return {
            "threshold": threshold,
            "shares": [
                {
                    "keeper": keeper,
                    "x": x,
                    "wrap": base64.b64encode(seal_share(share, public, context.escrow_info(keeper))).decode(),
                }
                for (keeper, public), (x, share) in zip(keepers.items(), shares, strict=True)
            ],
        }

    def _share_keys(self, actor: Wallet, patient: str, grantee: str, pointers: list[RecordPointer]) -> bytes:
        """Wraps the keys of ``pointers`` for ``grantee`` in a bundle in IPFS; its binary CID.

        Only the patient holds these keys: when a delegate acts, or there is nothing to share,
        no bundle is made and the grantee can read only records written from then on.
        """
        if actor.address != patient or not pointers:
            return b""
        recipient = self.encryption_key(grantee)
        items = []
        for pointer in pointers:
            key = self._open_key(actor, pointer)
            items.append((self._context(patient, pointer.index), key, grantee, recipient))
        return cid_to_bytes(self.ipfs.add(self._key_bundle(patient, items)))

    def _open_key(self, reader: Wallet, pointer: RecordPointer) -> bytes:
        """The record key of ``pointer``, from any wrap for ``reader`` that one of its keys opens:
        its current key first, then those of earlier epochs (wraps made before a rotation)."""
        context = self._context(pointer.patient, pointer.index)
        epochs: list[int] = []
        for wrapped in self._wraps(reader.address, pointer):
            epochs = epochs or list(range(self.key_epoch(reader), -1, -1))
            for epoch in epochs:
                with contextlib.suppress(DecryptionError):
                    return unwrap_key(wrapped, reader.encryption_keys(self.suite, epoch), context, reader.address)
        if not epochs:
            raise AccessDeniedError(
                reader.address, pointer.patient, f"no key of record {pointer.index} was ever wrapped for it"
            )
        raise DecryptionError(
            f"every key wrap of record {pointer.index} for {reader.address} (tried its keys of epochs {epochs[0]} to 0)"
        )

    def _find_wrap(self, reader: str, pointer: RecordPointer) -> bytes:
        """The first wrap of the record key for ``reader``; see ``_wraps``."""
        for wrapped in self._wraps(reader, pointer):
            return wrapped
        raise AccessDeniedError(reader, pointer.patient, f"no key of record {pointer.index} was ever wrapped for it")

    def bundle(self, cid: str, patient: str) -> dict[str, Any]:
        """The key bundle ``cid`` from IPFS (checked against its CID), if it is one for ``patient``."""
        try:
            bundle = json.loads(self.ipfs.cat(cid))
        except ValueError:
            bundle = None
        if (
            not isinstance(bundle, dict)
            or bundle.get("format") != KEY_BUNDLE_FORMAT
            or bundle.get("patient") != patient
        ):
            raise IntegrityError(f"key bundle {cid} is not a medvault key bundle for {patient}")
        return bundle

    def _wraps(self, reader: str, pointer: RecordPointer) -> Iterator[bytes]:
        """The reader's wraps of the record key, fetched lazily: from the record's bundle, then
        from the bundles shared with it (grants, ``shareKeys``, the patient's key rotations),
        newest first."""
        cids = [pointer.keys_cid]
        shared = self.chain.events("ConsentManager", "KeysShared", patient=pointer.patient, grantee=reader)
        cids += [cid_from_bytes(bytes(event["args"]["keysCid"])) for event in reversed(shared)]
        for cid in cids:
            bundle = self.bundle(cid, pointer.patient)
            for item in bundle["wraps"]:
                if item["index"] == pointer.index and item["reader"] == reader:
                    yield base64.b64decode(item["wrap"])

    def _check_access(self, reader: str, pointer: RecordPointer) -> None:
        denial = self.access_denial(reader, pointer)
        if denial is not None:
            raise AccessDeniedError(reader, pointer.patient, denial[1])

    def access_denial(self, reader: str, pointer: RecordPointer) -> tuple[str, str] | None:
        """None if the chain lets ``reader`` read ``pointer`` now (latest block), else why not:
        a code (no-grant, revoked, expired, not-yet-valid, out-of-scope) and a sentence."""
        reader = to_checksum_address(reader)
        if reader in (pointer.patient, pointer.author) or self.can_read(pointer.patient, reader, pointer.category):
            return None
        grant, now = self.grant_of(pointer.patient, reader), self.now()
        if grant is None:
            revoked = self.chain.events("ConsentManager", "AccessRevoked", patient=pointer.patient, grantee=reader)
            code = "revoked" if revoked else "no-grant"
            return code, "no active grant: " + (
                "the patient revoked it" if revoked else "the patient never granted one"
            )
        if now >= grant.valid_until:
            return "expired", f"its grant expired at {grant.valid_until} (chain time {now})"
        if now < grant.valid_from:
            return "not-yet-valid", f"its grant starts at {grant.valid_from} (chain time {now})"
        return "out-of-scope", f"record {pointer.index} is {pointer.category.name.lower()}, outside the grant's scope"

    def _send(self, sender: Wallet, change: ConsentChange, fn: ContractFunction) -> TxResult:
        try:
            return self.chain.transact(sender, fn, f"{change.action} for {change.patient}")
        except BaseException:
            if change.message.get("keysCid"):
                self._unpin_quietly(cid_from_bytes(change.message["keysCid"]))
            raise

    def _unpin_quietly(self, *cids: str) -> None:
        """Undoes the adds of a write the chain refused; the original error is what matters."""
        for cid in cids:
            # If the node went away, pinned or not, nothing on chain points at these objects.
            with contextlib.suppress(MedvaultError):
                self.ipfs.unpin(cid)


def _subject(event: str) -> str:
    """The event argument that names the patient."""
    return "account" if event == "ParticipantRegistered" else "patient"


def _plain(value: Any) -> Any:
    """An event argument as JSON-friendly text: bytes as CIDs where they are CIDs, else hex."""
    if isinstance(value, bytes):
        with contextlib.suppress(MedvaultError):
            return cid_from_bytes(value)
        return "0x" + value.hex()
    return value


def _study_id(study: str) -> bytes:
    """A study id as bytes32: 0x and 64 hex digits, or a label of 1 to 32 bytes."""
    if study.startswith("0x") and len(study) == 66:
        return bytes.fromhex(study[2:])
    raw = study.encode()
    if not raw or len(raw) > 32:
        raise ConfigurationError(f"study id {study!r} must be 1 to 32 bytes, or 0x and 64 hex digits")
    return raw.ljust(32, b"\0")


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
