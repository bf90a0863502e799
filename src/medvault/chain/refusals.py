"""Every custom error of the contracts in one sentence for people: what is wrong, with its
values in words, and what to do where there is something to do.

``WORDS`` maps each error's name to a template over its ABI arguments; a field's format spec
says how to show it (``{validFrom:time}``): ``who`` an account (by name where the home knows
it), ``time`` a UTC time, ``scopes`` categories, ``category``, ``purpose``, ``duration``,
``request`` a request id, ``status``, ``mode``, ``role``, ``nonce``. A new contract error needs one entry
here (tests/unit/test_refusals.py walks the ABIs); a template may also be a function of the
arguments that picks one.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from eth_utils.crypto import keccak

from medvault import words
from medvault.errors import ContractError
from medvault.model import Category, EmergencyMode, RequestStatus

__all__ = ["WORDS", "describe", "refusal"]

Template = str | Callable[[Mapping[str, Any]], str]

_CATEGORIES = ", ".join(c.name.lower() for c in Category)
_ROLES = {"0x" + keccak(text=r).hex(): r.lower() for r in ("PROVIDER", "RESEARCHER", "ACCREDITOR")}
_ROLES["0x" + "00" * 32] = "admin"
_STATUS = {
    RequestStatus.NONE: "was never made (check the id with `medvault access list`)",
    RequestStatus.PENDING: "is still pending",
    RequestStatus.APPROVED: "was already approved",
    RequestStatus.DENIED: "was already denied",
}
_MODES = {EmergencyMode.NONE: "'none'", EmergencyMode.NAMED: "'named'", EmergencyMode.ANY: "'any'"}
_SIGN_AGAIN = "ask the signer to sign the change again"


def _window(a: Mapping[str, Any]) -> str:
    if int(a["validUntil"]) <= int(a["validFrom"]):
        return "the grant window ends before it starts (from {validFrom:time} to {validUntil:time})"
    return (
        "the grant window is already over (from {validFrom:time} to {validUntil:time}; "
        "chain time is {nowTimestamp:time}): choose an end in the future"
    )


def _grantee(a: Mapping[str, Any]) -> str:
    if int(str(a["grantee"]), 16) == 0:
        return "a grant cannot go to the zero address: name the grantee"
    return "{grantee:who} cannot be granted access to their own records: a patient always reads their own"


def _key_length(a: Mapping[str, Any]) -> str:
    suite = {1: "an X25519", 2: "an ML-KEM-768 + X25519"}.get(int(a["suite"]), "this suite's")
    return f"{suite} encryption key has {{expected}} bytes after its suite tag; this one has {{length}}"


WORDS: dict[str, Template] = {
    # -- every contract that stores a CID (contracts/libraries/Cids.sol)
    "InvalidCid": "the pointer {cid} is not a binary CIDv1 with the raw or dag-pb codec and a 32-byte sha2-256 "
    "digest, the only CIDs the contracts accept: add the content as medvault does (CIDv1, raw leaves, sha2-256)",
    # -- ConsentManager
    "ConsentManagerUnauthorized": (
        "{actor:who} may not act for {patient:who}: it is neither the patient nor, where allowed, their delegate"
    ),
    "ConsentManagerInvalidGrantee": _grantee,
    "ConsentManagerInvalidWindow": _window,
    "ConsentManagerInvalidScopes": "the scope names no category, or one that does not exist ({scopes:scopes}); "
    f"categories are: {_CATEGORIES}",
    "ConsentManagerInvalidPurpose": "{purpose:purpose} is not a purpose the contract knows",
    "ConsentManagerNoActiveGrant": "{patient:who} holds no current or future grant to {grantee:who}: "
    "there is nothing to revoke",
    "ConsentManagerInvalidNonce": "the signed change between {patient:who} and {counterpart:who} is spent: "
    "it was relayed already or a later change voided it (it carries nonce {given:nonce}, the relationship is at "
    f"{{expected}}); {_SIGN_AGAIN}",
    "ConsentManagerExpiredSignature": f"the signature expired at {{deadline:time}}: {_SIGN_AGAIN}",
    "ConsentManagerWrongChain": "the signature was made for chain {signedFor}, but this is chain {expected}: "
    "sign it for this chain",
    "ConsentManagerWrongContract": "the signature was made for the contract at {signedFor}, but this deployment's "
    "consent manager is {expected}: sign it for this deployment",
    "ConsentManagerInvalidSigner": "the change for {patient:who} was signed by {signer:who}, who is neither the "
    "patient nor, where allowed, their delegate: have the patient (or their delegate) sign it, and check that "
    "the document was not altered",
    "ConsentManagerNotResearcher": "{researcher:who} is not an accredited researcher: an accreditor must "
    "accredit it first (`medvault accredit NAME --role researcher`)",
    "ConsentManagerNotProvider": "{provider:who} is not an accredited provider: only accredited providers may "
    "take emergency access",
    "ConsentManagerInvalidDuration": "research access must last from 1 second to {maximum:duration} "
    "({duration:duration} asked for)",
    "ConsentManagerRequestNotPending": "request {requestId:request} {status:status}",
    "ConsentManagerDuplicateRequest": "the same request ({requestId:request}) was already made in this block: "
    "ask again in the next one",
    "ConsentManagerMissingReason": "emergency access needs a stated reason: give --reason",
    "ConsentManagerInvalidDelegate": "{delegate:who} cannot be appointed or removed as delegate: it is the "
    "patient or the zero address, already appointed (to appoint), or not appointed (to remove)",
    "ConsentManagerEmptyKeysCid": "sharing keys needs the CID of a key bundle, and none was given",
    "ConsentManagerEmergencyNotPermitted": "the emergency policy of {patient:who} does not let {provider:who} "
    "take emergency access (under 'none' nobody may, under 'named' only the providers the patient allowed, "
    "and a blocked provider never may)",
    "ConsentManagerEmergencyCooldown": "{provider:who} held emergency access to {patient:who} too recently: "
    "the next emergency window may start at {availableAt:time}",
    "ConsentManagerInvalidEmergencyPolicy": "an emergency policy of mode {mode:mode} needs at least one "
    "category that exists ({scopes:scopes} given)",
    "ConsentManagerDelegateSelfGrant": "delegate {delegate:who} cannot grant to itself, decide its own request "
    "or void its own signatures: the patient must do it",
    "ConsentManagerOutsideDelegateTerms": "the change is outside the terms of delegate {delegate:who} "
    "({scopes:scopes} for {duration:duration} asked): a delegate grants only the categories and window lengths "
    "it was appointed for (see `medvault delegate appoint`)",
    "ConsentManagerInvalidDelegateTerms": "a delegate's terms need at least one category that exists and a "
    "longest window above zero ({scopes:scopes}, {maxDuration:duration} given)",
    "ConsentManagerWrongAppointment": "the signature of {signer:who} was made under appointment {signedFor}, but "
    f"its appointment now is {{current}} (0: none): a signature from an ended appointment no longer counts; "
    f"{_SIGN_AGAIN}",
    "ConsentManagerRequestExpired": "request {requestId:request} expired at {expiredAt:time} and can no longer "
    "be approved: the researcher may ask again",
    # -- RecordRegistry
    "RecordRegistryUnauthorizedAuthor": "{author:who} may not write the records of {patient:who}: it is not the "
    "patient, not on their care team and holds no live emergency access",
    "RecordRegistryCategoryNotAllowed": "{author:who} may write records of {patient:who}, but not "
    "{category:category} ones: the patient chooses the categories of each writer (`medvault record writers add`)",
    "RecordRegistryNotAProvider": "{account:who} is not an accredited provider: only accredited providers write "
    "for patients",
    "RecordRegistryUnregisteredPatient": "{patient:who} has not registered an encryption key yet: run "
    "`medvault register` as that account",
    "RecordRegistryUnknownCategory": f"category {{category}} is not a record category (one of: {_CATEGORIES})",
    "RecordRegistryEmptyPointer": "a record's content hash is zero: it must be the sha256 of the ciphertext",
    "RecordRegistryEmptyBatch": "no records were given to add",
    "RecordRegistryInvalidCategories": "the categories name none, or one that does not exist "
    f"({{categories:scopes}}); categories are: {_CATEGORIES}",
    "RecordRegistrySelfWriter": "{patient:who} always writes their own records and cannot be their own care-team "
    "writer",
    "RecordRegistryNotAWriter": "{writer:who} is not on the care team of {patient:who}",
    "RecordRegistryUnknownRecord": "{patient:who} has no record #{index} (their log holds {count})",
    "RecordRegistryInvalidFlags": "record flags {flags} have a bit other than disputed (1) and hidden (2)",
    "RecordRegistryStaleSeq": "another write by {author:who} to the records of {patient:who} landed first (this "
    "one was sealed for sequence number {given}, the next is {expected}): seal the record again and resend",
    # -- ParticipantRegistry and its roles
    "ParticipantRegistryEmptyKey": "the encryption key is empty: publish a suite-tagged public key "
    "(`medvault register`)",
    "ParticipantRegistryUnknownSuite": "the encryption key starts with suite tag {tag}, which names no suite "
    "(1 is X25519, 2 is ML-KEM-768 + X25519)",
    "ParticipantRegistryInvalidKeyLength": _key_length,
    "AccessControlUnauthorizedAccount": "{account:who} does not hold the {neededRole:role} role this needs: "
    "ask an accreditor of this deployment",
    "AccessControlBadConfirmation": "only the account itself may renounce its role",
    # -- KeeperDirectory
    "KeeperDirectoryInvalidKeepers": "a keeper set needs distinct, non-zero keepers (at most the contract's "
    "maximum) and a threshold from 1 to their number ({count} keepers, threshold {threshold} given)",
    "KeeperDirectoryInvalidEscrow": "an escrow bundle was given with no keepers: name keepers, or give no escrow",
    "KeeperDirectoryInvalidUrl": "the keeper URL is empty or too long",
    "KeeperDirectoryNotAKeeper": "{keeper:who} never was a keeper of {patient:who}",
    "KeeperDirectoryInvalidReceipt": "release receipt {position} names a block not yet mined, a time later than "
    "now, or a request issued too long before or after that time",
    "KeeperDirectoryNotSignedByReader": "release receipt {position} does not carry the signed request of {grantee:who}",
    # -- OpenZeppelin's signature and string helpers
    "ECDSAInvalidSignature": "the signature is not a valid secp256k1 signature: it recovers to no account",
    "ECDSAInvalidSignatureLength": "the signature is {length} bytes long: it must be 64 or 65",
    "ECDSAInvalidSignatureS": "the signature's s is in the upper half of the curve order (a malleable form): "
    "normalise it to n - s",
    "InvalidShortString": "a name or version string is longer than 31 bytes",
    "StringTooLong": "the text {str} is too long",
}


class _Formatter(string.Formatter):
    def __init__(self, names: words.Names | None) -> None:
        self.names = names

    def format_field(self, value: Any, format_spec: str) -> str:
        match format_spec:
            case "who":
                return words.who(value, self.names)
            case "time":
                return words.utc(int(value))
            case "scopes":
                return words.categories(int(value))
            case "category":
                return words.categories(1 << int(value)) if int(value) < 8 else f"unknown category {value}"
            case "purpose":
                return words.purpose(int(value))
            case "duration":
                return words.duration(int(value))
            case "request":
                return words.request_id(value)
            case "status":
                return _STATUS.get(RequestStatus(int(value)), f"has status {value}")
            case "mode":
                return _MODES.get(EmergencyMode(int(value)), str(value))
            case "role":
                return _ROLES.get(str(value).lower(), str(value))
            case "nonce":  # a delegate's signed nonce carries its appointment in bits 64 and up
                return str(int(value) & (1 << 64) - 1)
        return words.printable(super().format_field(value, format_spec))


def describe(name: str, arguments: Mapping[str, Any], names: words.Names | None = None) -> str | None:
    """The sentence for the contract error ``name`` with its decoded ``arguments``, or None if
    ``name`` is not a contract error."""
    template = WORDS.get(name)
    if template is None:
        return None
    try:
        text = template(arguments) if callable(template) else template
        return _Formatter(names).vformat(text, (), arguments)
    except (KeyError, ValueError, TypeError):  # arguments not as the ABI says: no words rather than wrong ones
        return None


def refusal(action: str, name: str, arguments: Mapping[str, Any]) -> ContractError:
    """The ``ContractError`` for the contract error ``name``, worded."""
    return ContractError(action, name, dict(arguments), words=describe(name, arguments))
