"""The data medvault reads from and writes to the chain: categories, purposes, grants, requests,
records, keys, keepers and audit entries."""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils.crypto import keccak
from multiformats import CID

from medvault.cids import POINTER_LENGTH, POINTER_PREFIXES, cid_from_bytes
from medvault.errors import BadRecordError, ConfigurationError, InvalidCidError

if TYPE_CHECKING:
    from medvault.chain.transact import TxResult
    from medvault.crypto import KeySuite

__all__ = [
    "ALL_CATEGORIES",
    "DISPUTED",
    "HIDDEN",
    "AccessRequest",
    "AuditEntry",
    "Category",
    "DelegateTerms",
    "EmergencyMode",
    "EmergencyPolicy",
    "EmergencyStanding",
    "Grant",
    "GrantKind",
    "GrantReceipt",
    "GrantTerms",
    "KeeperSet",
    "KeyInfo",
    "KeyRelease",
    "KeyRotation",
    "Purpose",
    "Record",
    "RecordPointer",
    "RecordReceipt",
    "RequestStatus",
    "Role",
    "categories_of",
    "pointer_cid",
    "scope_mask",
]


class Category(enum.IntEnum):
    """Record categories (scope bit = value), after the FHIR resources they hold."""

    LABORATORY = 0  # Observation (laboratory, vital signs), DiagnosticReport
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


def scope_mask(categories: frozenset[Category] | set[Category] | list[Category]) -> int:
    return sum(1 << int(c) for c in set(categories))


@functools.lru_cache(maxsize=256)  # frozensets are immutable; index queries build one per row
def categories_of(mask: int) -> frozenset[Category]:
    return frozenset(c for c in Category if mask >> int(c) & 1)


ALL_CATEGORIES = scope_mask(list(Category))  # the scope of every category, Categories.ALL on chain


class Purpose(enum.IntEnum):
    """HL7 v3 PurposeOfUse codes the contract accepts (value = on-chain code)."""

    TREAT = 0
    ETREAT = 1
    HRESCH = 2
    PATRQT = 3
    FAMRQT = 4
    PUBHLTH = 5
    HPAYMT = 6
    HOPERAT = 7

    @property
    def display(self) -> str:
        return _PURPOSE_DISPLAY[self]

    @classmethod
    def parse(cls, value: str) -> Purpose:
        try:
            return cls[value.upper()]
        except KeyError:
            raise ConfigurationError(f"unknown purpose {value!r} (one of: {', '.join(p.name for p in cls)})") from None


_PURPOSE_DISPLAY = {
    Purpose.TREAT: "treatment",
    Purpose.ETREAT: "emergency treatment",
    Purpose.HRESCH: "healthcare research",
    Purpose.PATRQT: "patient requested",
    Purpose.FAMRQT: "family requested",
    Purpose.PUBHLTH: "public health",
    Purpose.HPAYMT: "healthcare payment",
    Purpose.HOPERAT: "healthcare operations",
}


class Role(enum.Enum):
    PROVIDER = "PROVIDER"
    RESEARCHER = "RESEARCHER"

    @property
    def role_id(self) -> bytes:
        return keccak(text=self.value)


class RequestStatus(enum.IntEnum):
    NONE = 0
    PENDING = 1
    APPROVED = 2
    DENIED = 3


class GrantKind(enum.IntEnum):
    """Who made a grant (IConsentManager.GrantKind)."""

    NONE = 0
    PATIENT = 1
    DELEGATE = 2
    EMERGENCY = 3
    RESEARCH = 4


class EmergencyMode(enum.IntEnum):
    """Who may take break-glass access to a patient (IConsentManager.EmergencyMode)."""

    NONE = 0
    NAMED = 1
    ANY = 2


class EmergencyStanding(enum.IntEnum):
    """The patient's word on one provider's break-glass access."""

    DEFAULT = 0
    ALLOWED = 1
    BLOCKED = 2


@dataclass(frozen=True)
class EmergencyPolicy:
    """A patient's break-glass policy: who, which categories, and whether earlier records open."""

    mode: EmergencyMode
    scopes: frozenset[Category]
    full_history: bool


@dataclass(frozen=True)
class DelegateTerms:
    """What a delegate may grant: categories, the longest window (seconds), and whether its
    grants open records written before them."""

    scopes: frozenset[Category]
    max_duration: int
    open_history: bool = False


@dataclass(frozen=True)
class Grant:
    """A patient's grant to one grantee, as the chain holds it now."""

    patient: str
    grantee: str
    scopes: frozenset[Category]
    purpose: Purpose
    valid_from: int
    valid_until: int
    emergency: bool
    # Who made it (read from the chain's grant word; the event index does not track it, so it
    # takes no part in comparisons).
    kind: GrantKind = field(default=GrantKind.PATIENT, compare=False)
    appointment: int = field(default=0, compare=False)  # the delegate appointment that made it, or 0

    def active_at(self, timestamp: int) -> bool:
        return self.valid_from <= timestamp < self.valid_until

    def to_json(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "grantee": self.grantee,
            "scopes": sorted(c.name.lower() for c in self.scopes),
            "purpose": self.purpose.name,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "emergency": self.emergency,
            "kind": self.kind.name.lower(),
            "appointment": self.appointment,
        }


@dataclass(frozen=True)
class GrantTerms:
    """What a grant allows: ``scopes`` for ``purpose`` during [valid_from, valid_until), chain time."""

    scopes: frozenset[Category]
    purpose: Purpose
    valid_from: int
    valid_until: int


@dataclass(frozen=True)
class AccessRequest:
    """A researcher's request; its id is keccak256(abi.encode(fields)), as on chain."""

    patient: str
    researcher: str
    scopes: frozenset[Category]
    purpose: Purpose
    duration: int
    requested_at: int
    study_id: bytes
    request_id: int
    status: RequestStatus = RequestStatus.PENDING
    tx_hash: str = ""

    def as_tuple(self) -> tuple[str, str, int, int, int, int, bytes]:
        return (self.patient, self.researcher, scope_mask(self.scopes), int(self.purpose), self.duration,
                self.requested_at, self.study_id)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": hex(self.request_id),
            "patient": self.patient,
            "researcher": self.researcher,
            "scopes": sorted(c.name.lower() for c in self.scopes),
            "purpose": self.purpose.name,
            "duration": self.duration,
            "requested_at": self.requested_at,
            "study_id": self.study_id.rstrip(b"\0").decode(errors="replace") or "0x" + self.study_id.hex(),
            "status": self.status.name.lower(),
        }


# Record flags the patient sets on chain (``RecordRegistry.flagRecord``), a bitmask.
DISPUTED = 1  # the patient disputes the record's content
HIDDEN = 2  # the patient asks readers not to show it by default


POINTER_CODECS = ("raw", "dag-pb")  # what IPFS adds medvault's objects as, and checks them by


def pointer_cid(raw: bytes) -> str:
    """The CID (base32 text) a pointer on chain holds in binary, if medvault can fetch and check
    it: CIDv1 with a sha2-256 multihash and a raw or dag-pb codec; else InvalidCidError, why."""
    raw = bytes(raw)
    if len(raw) == POINTER_LENGTH and raw[:4] in POINTER_PREFIXES:
        return cid_from_bytes(raw)  # medvault's own pointers, encoded directly
    shown = "0x" + raw.hex()
    if not raw:
        raise InvalidCidError(shown, "it is empty")
    try:
        cid = CID.decode(bytes(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCidError(shown, f"it does not decode as a CID: {exc or type(exc).__name__}") from None
    if cid.version != 1:
        raise InvalidCidError(shown, f"a CIDv{cid.version}; pointers are CIDv1")
    if cid.hashfun.name != "sha2-256":
        raise InvalidCidError(shown, f"hash function {cid.hashfun.name} is not supported, only sha2-256")
    if cid.codec.name not in POINTER_CODECS:
        raise InvalidCidError(shown, f"codec {cid.codec.name} is not supported, only {' or '.join(POINTER_CODECS)}")
    return str(cid.set(base="base32"))


@dataclass(frozen=True)
class RecordPointer:
    """One entry of a patient's log, as the chain recorded it.

    The CIDs are kept as the chain holds them (``raw_cid``, ``raw_keys_cid``) and parsed only
    when the record is used (``cid``, ``keys_cid``), so one unusable pointer is a problem of its
    own record (``problem``) and never of the log around it."""

    patient: str
    index: int
    author: str
    seq: int  # the author's sequence number in the patient's log: the record is bound to (patient, author, seq)
    record_hash: str
    category: Category
    timestamp: int
    content_hash: str
    raw_cid: bytes
    raw_keys_cid: bytes
    tx_hash: str
    block_number: int
    # The patient's flags (``RecordRegistry.flagRecord``), as the chain holds them when read.
    disputed: bool = False
    hidden: bool = False

    @property
    def cid(self) -> str:
        """The ciphertext's CID; BadRecordError (naming patient and index) if it is unusable."""
        return self._parsed("ciphertext", self.raw_cid)

    @property
    def keys_cid(self) -> str:
        """The key bundle's CID; BadRecordError (naming patient and index) if it is unusable."""
        return self._parsed("key bundle", self.raw_keys_cid)

    @property
    def problem(self) -> str | None:
        """Why this record's pointer cannot be used (the first unusable CID), or None."""
        try:
            self._parsed("ciphertext", self.raw_cid)
            self._parsed("key bundle", self.raw_keys_cid)
        except BadRecordError as exc:
            return str(exc)
        return None

    def _parsed(self, what: str, raw: bytes) -> str:
        try:
            return pointer_cid(raw)
        except InvalidCidError as exc:
            reason = f"its {what} pointer {_shown(raw)} is not a usable CID ({exc.reason})"
            raise BadRecordError(self.patient, self.index, reason) from None

    def to_json(self) -> dict[str, Any]:
        """The pointer as JSON: each CID as text, or as hex when it is unusable (``problem`` says why)."""
        fields = {k: v for k, v in self.__dict__.items() if k not in ("raw_cid", "raw_keys_cid")}
        cids = {"cid": _shown(self.raw_cid), "keys_cid": _shown(self.raw_keys_cid), "problem": self.problem}
        return {**fields, "category": self.category.name.lower(), **cids}


def _shown(raw: bytes) -> str:
    try:
        return pointer_cid(raw)
    except InvalidCidError:
        return "0x" + bytes(raw).hex()


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
    readers: list[str]  # whose wraps the record's key bundle holds
    skipped: dict[str, str] = field(default_factory=dict)  # readers whose keys cannot be used: why


@dataclass(frozen=True)
class KeyInfo:
    """An account's encryption keys as its key file holds them, against the one on chain.

    ``epoch`` is the epoch of the held key the chain holds, or None if none matches (not
    registered, or registered with another suite, a lost key or the old signature-derived
    scheme); ``public_key`` is that key, else the newest held (empty if none); ``legacy`` says
    the matching key is a signature-derived one (``medvault keys migrate`` replaces it).
    """

    account: str
    suite: KeySuite
    epoch: int | None
    public_key: bytes
    registered: bool
    legacy: bool = False

    @property
    def matches_chain(self) -> bool:
        return self.epoch is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account, "suite": self.suite.name, "epoch": self.epoch,
            "public_key": "0x" + self.public_key.hex(), "registered": self.registered,
            "matches_chain": self.matches_chain, "legacy": self.legacy,
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
    skipped: dict[int, str] = field(default_factory=dict)  # records its keys do not open: why


@dataclass(frozen=True)
class GrantReceipt:
    """What ``grant`` sent (more than one transaction if records landed meanwhile), and the
    records in scope whose keys it could not share, by index, with why (keepers serve those)."""

    transactions: list[TxResult]
    skipped: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KeeperSet:
    """The keepers a patient chose, any ``threshold`` of which release a record key, the URL
    each last announced (None if it never did), and the bundle re-escrowing the keys of the
    records written before the set was chosen (None if there was none)."""

    patient: str
    keepers: list[str]
    threshold: int
    urls: dict[str, str | None]
    escrow_cid: str | None = None

    def to_json(self) -> dict[str, Any]:
        document = {"patient": self.patient, "keepers": self.keepers, "threshold": self.threshold, "urls": self.urls}
        return document if self.escrow_cid is None else {**document, "escrowCid": self.escrow_cid}


@dataclass(frozen=True)
class KeyRelease:
    """A receipt on chain: ``keeper`` released its share of record ``index`` to ``grantee``."""

    patient: str
    grantee: str
    keeper: str
    index: int
    released_at: int  # timestamp of block ``decided_at``, the one the keeper decided on
    release_id: str  # EIP-712 digest of the reader's request, whose signature the chain checked
    tx_hash: str
    block_number: int
    decided_at: int = 0
    issued_at: int = 0


@dataclass(frozen=True)
class AuditEntry:
    """One event in a patient's history: when, what, who sent the transaction, its fields, and
    who authorised it (``signer``: the patient or delegate whose signature or call made the
    change, or the provider, researcher or keeper acting; the sender relayed it if it differs)."""

    timestamp: int
    event: str
    sender: str
    details: dict[str, Any]
    tx_hash: str
    signer: str = ""
