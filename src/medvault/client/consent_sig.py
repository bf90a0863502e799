"""Consent changes, sent as transactions or signed as EIP-712 typed data and relayed.

Every consent change a patient (or their delegate) can make by transaction can also be made
by signing typed data in the ``eth_signTypedData_v4`` shape, which anyone may then relay to
the matching ``...BySig`` function. A signature carries the patient's next nonce, a deadline
and the domain (name, version, chain id, verifying contract); the struct types below are
field for field the contract's typehashes. A delegate's signature is bound to its appointment:
the nonce it signs is the relationship's nonce plus the appointment number shifted left by 64
bits, so a signature made under an appointment that ended is void even after a re-appointment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address

from medvault.crypto import SECP256K1_N, normalised_signature
from medvault.errors import ConfigurationError
from medvault.formats.address import parse_address
from medvault.words import utc

if TYPE_CHECKING:
    from web3.contract.contract import ContractFunction

    from medvault.accounts import Wallet
    from medvault.chain import Chain

__all__ = ["ConsentChange", "SignedConsent", "check_relayable", "consent_call", "sign_consent", "typed_data"]

DOMAIN_NAME = "medvault ConsentManager"
DOMAIN_VERSION = "1"

_REQUEST_FIELDS = [
    ("patient", "address"),
    ("researcher", "address"),
    ("scopes", "uint8"),
    ("purpose", "uint8"),
    ("duration", "uint40"),
    ("requestedAt", "uint40"),
    ("studyId", "bytes32"),
]
REQUEST_FIELDS = tuple(name for name, _ in _REQUEST_FIELDS)  # IConsentManager.AccessRequest, in order
_AUTH_FIELDS = [("nonce", "uint256"), ("deadline", "uint256")]
TYPES: dict[str, list[tuple[str, str]]] = {
    "Grant": [
        ("patient", "address"),
        ("grantee", "address"),
        ("scopes", "uint8"),
        ("purpose", "uint8"),
        ("validFrom", "uint40"),
        ("validUntil", "uint40"),
        ("keysCid", "bytes"),
        *_AUTH_FIELDS,
    ],
    "Revoke": [("patient", "address"), ("grantee", "address"), *_AUTH_FIELDS],
    "AppointDelegate": [
        ("patient", "address"),
        ("delegate", "address"),
        ("scopes", "uint8"),
        ("maxDuration", "uint40"),
        ("openHistory", "bool"),
        *_AUTH_FIELDS,
    ],
    "RemoveDelegate": [("patient", "address"), ("delegate", "address"), ("keepGrants", "bool"), *_AUTH_FIELDS],
    "ApproveRequest": [*_REQUEST_FIELDS, ("keysCid", "bytes"), *_AUTH_FIELDS],
    "DenyRequest": [*_REQUEST_FIELDS, *_AUTH_FIELDS],
}
_DOMAIN_FIELDS = [("name", "string"), ("version", "string"), ("chainId", "uint256"), ("verifyingContract", "address")]


@dataclass(frozen=True)
class ConsentChange:
    """One consent change: an action (a typed-data struct name) and its fields, minus nonce and deadline."""

    action: str
    message: dict[str, Any]
    # Records in scope whose keys the change could not share, by index: why (see Consent.grant_change).
    skipped: dict[int, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.action not in TYPES:
            raise ConfigurationError(f"unknown consent change {self.action!r} (one of: {', '.join(TYPES)})")
        wanted = {name for name, _ in TYPES[self.action]} - {"nonce", "deadline"}
        if wanted != set(self.message):
            raise ConfigurationError(f"{self.action} needs exactly the fields {', '.join(sorted(wanted))}")

    @property
    def patient(self) -> str:
        return to_checksum_address(self.message["patient"])


@dataclass(frozen=True)
class SignedConsent:
    """Typed data and its signature: what a wallet signs and what a relayer sends.

    ``from_json`` takes what any wallet writes and spells it one way: addresses in any case
    (checksums checked when mixed), numbers as JSON numbers or decimal or hex strings, and the
    signature as 65 bytes (v 27/28 or 0/1, high s) or EIP-2098's 64."""

    typed_data: dict[str, Any]
    signature: str

    @property
    def action(self) -> str:
        return str(self.typed_data["primaryType"])

    @property
    def change(self) -> ConsentChange:
        fields = dict(TYPES[self.action])
        message = {
            name: bytes.fromhex(value.removeprefix("0x")) if fields[name].startswith("bytes") else value
            for name, value in self.typed_data["message"].items()
            if name not in ("nonce", "deadline")
        }
        return ConsentChange(self.action, message)

    def authorization(self) -> tuple[int, int, int, str, bytes, bytes]:
        """The contract's ``Authorization``: nonce, deadline, the signed domain, and the
        signature in its compact EIP-2098 form (r, yParity|s)."""
        message, domain = self.typed_data["message"], self.typed_data["domain"]
        r, s, v = _signature(self.signature, self.action)
        vs = (s | (v - 27) << 255).to_bytes(32)
        return (int(message["nonce"]), int(message["deadline"]), int(domain["chainId"]),
                to_checksum_address(domain["verifyingContract"]), r, vs)  # fmt: skip

    def signer(self) -> str:
        """The address whose key made the signature (over the document as spelled here)."""
        r, s, v = _signature(self.signature, self.action)
        signable = encode_typed_data(full_message=self.typed_data)
        try:
            return str(Account.recover_message(signable, vrs=(v, int.from_bytes(r), s)))
        except BadSignature:  # r is no point's x: about half of all made-up signatures
            raise ConfigurationError(
                f"the signature of this {self.action} recovers to no account: it is not a signature of this document"
            ) from None

    def to_json(self) -> str:
        return json.dumps({"typedData": self.typed_data, "signature": self.signature}, indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, signature: str | None = None) -> SignedConsent:
        """A signed document (``{"typedData": ..., "signature": ...}``), or bare typed data
        (what ``--unsigned`` prints) with the ``signature`` a wallet returned for it."""
        try:
            raw = json.loads(text.decode() if isinstance(text, bytes) else text, object_pairs_hook=_unique_keys)
        except (UnicodeDecodeError, ValueError) as exc:
            kind = "not text" if isinstance(exc, UnicodeDecodeError) else f"not JSON ({exc})"
            raise ConfigurationError(f"not a signed medvault consent document: it is {kind}") from None
        if not isinstance(raw, dict):
            raise ConfigurationError("not a signed medvault consent document: it is not a JSON object")
        document = raw.get("typedData", raw)
        if "signature" in raw and signature is not None:
            raise ConfigurationError(
                "the document carries a signature already: give --signature only for bare typed data"
            )
        signature = raw.get("signature", signature)
        if signature is None:
            raise ConfigurationError(
                "no signature: give the wallet's eth_signTypedData_v4 answer with --signature, "
                "or a document holding typedData and signature"
            )
        signed = cls(_normalised_document(document), str(signature))
        _signature(signed.signature, signed.action)
        return signed


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with a key twice, readers disagree on its value."""
    keys = [key for key, _ in pairs]
    twice = sorted({key for key in keys if keys.count(key) > 1})
    if twice:
        raise ValueError(f"it names {', '.join(map(repr, twice))} twice, and readers disagree on which counts")
    return dict(pairs)


def _signature(text: str, action: str) -> tuple[bytes, int, int]:
    """(r, s, v) of a 0x-hex signature of 65 bytes (any v, any s, see normalised_signature) or
    of 64 (EIP-2098 compact: r, then s with the y-parity in its top bit)."""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise ConfigurationError(f"the signature of this {action} is not hex: {text[:80]!r}") from None
    if len(raw) == 64:
        vs = int.from_bytes(raw[32:])
        raw = raw[:32] + (vs & (1 << 255) - 1).to_bytes(32) + bytes([27 + (vs >> 255)])
    if len(raw) == 65 and not all(0 < int.from_bytes(part) < SECP256K1_N for part in (raw[:32], raw[32:64])):
        raise ConfigurationError(
            f"the signature of this {action} is not a secp256k1 signature: r and s must be from 1 to the curve order"
        )
    try:
        return normalised_signature(raw)
    except ValueError as exc:
        raise ConfigurationError(f"the signature of this {action}: {exc} (or 64 in EIP-2098 compact form)") from None


def _normalised_document(document: object) -> dict[str, Any]:
    """``document`` checked against medvault's types and spelled as ``typed_data`` writes it."""
    if not isinstance(document, dict):
        raise ConfigurationError("not a signed medvault consent document: typedData is not a JSON object")
    action = document.get("primaryType")
    if action not in TYPES:
        raise ConfigurationError(
            f"not a signed medvault consent document: primaryType {action!r} is none of {', '.join(TYPES)}"
        )
    types, domain, message = document.get("types"), document.get("domain"), document.get("message")
    if not isinstance(types, dict) or not isinstance(domain, dict) or not isinstance(message, dict):
        raise ConfigurationError(f"this {action} lacks its types, domain or message")
    for name, fields in (("EIP712Domain", _DOMAIN_FIELDS), (action, TYPES[action])):
        if types.get(name) != [{"name": n, "type": t} for n, t in fields]:
            raise ConfigurationError(f"the {name} type of this document is not medvault's: it was not made by medvault")
    if set(types) != {"EIP712Domain", action}:
        raise ConfigurationError(
            f"the types of this {action} must be EIP712Domain and {action} alone, not {', '.join(types)}"
        )
    if (domain.get("name"), domain.get("version")) != (DOMAIN_NAME, DOMAIN_VERSION):
        raise ConfigurationError(
            f"signed for {domain.get('name')!r} version {domain.get('version')!r}, "
            f"not {DOMAIN_NAME!r} version {DOMAIN_VERSION!r}: it was not made for medvault"
        )
    for part, fields, values in (("domain", _DOMAIN_FIELDS, domain), (action, TYPES[action], message)):
        if set(values) != {n for n, _ in fields}:
            raise ConfigurationError(f"the {part} of this {action} needs exactly {', '.join(n for n, _ in fields)}")
    return {
        "types": {name: [{"name": n, "type": t} for n, t in fields]
                  for name, fields in (("EIP712Domain", _DOMAIN_FIELDS), (action, TYPES[action]))},
        "primaryType": action,
        "domain": {n: _json_value(_value(t, domain[n], n)) for n, t in _DOMAIN_FIELDS},
        "message": {n: _json_value(_value(t, message[n], n)) for n, t in TYPES[action]},
    }  # fmt: skip


_HEX_BYTES = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-fA-F]+")  # MetaMask reads "0X..." as decimal


def _value(kind: str, value: object, name: str) -> Any:
    """One field as its Solidity ``kind`` wants it; ConfigurationError in words otherwise."""
    if kind == "address":
        return parse_address(value, name)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be true or false, not {value!r}")
        return value
    if kind == "string":
        return str(value)
    if kind.startswith("bytes"):
        size = int(kind.removeprefix("bytes") or -1)  # bytes32 has exactly 32; bytes any number
        if not isinstance(value, str) or not _HEX_BYTES.fullmatch(value) or size not in (-1, len(value) // 2 - 1):
            length = "" if size < 0 else f" ({size} bytes)"
            raise ConfigurationError(f"{name} must be 0x and pairs of hex digits{length}, not {value!r}")
        return bytes.fromhex(value[2:])
    bits = int(kind.removeprefix("uint"))
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _NUMBER.fullmatch(value):  # what wallets parse: no spaces, signs or "_"
        number = int(value, 0 if value.startswith("0x") else 10)
    if number is None or not 0 <= number < 1 << bits:
        raise ConfigurationError(
            f"{name} must be a whole number from 0 to 2^{bits}-1 (a number, or a decimal or 0x string), not {value!r}"
        )
    return number


def consent_call(chain: Chain, change: ConsentChange, auth: tuple[Any, ...] | None = None) -> ContractFunction:
    """The contract call for ``change``: the plain function, or its ``...BySig`` form with ``auth``."""
    m, f = change.message, chain.consent.functions

    def call(name: str, *args: Any) -> ContractFunction:
        # Requests name their patient in the struct, so both forms take the same arguments.
        return f[name + "BySig"](*args, auth) if auth else f[name](*args)

    def own(name: str, *args: Any) -> ContractFunction:
        # Sent directly, the caller is the patient; signed, the patient is named.
        return f[name + "BySig"](m["patient"], *args, auth) if auth else f[name](*args)

    match change.action:
        case "Grant":
            return own("grant", m["grantee"], m["scopes"], m["purpose"], m["validFrom"], m["validUntil"], m["keysCid"])
        case "Revoke":
            return own("revoke", m["grantee"])
        case "AppointDelegate":
            return own("appointDelegate", m["delegate"], m["scopes"], m["maxDuration"], m["openHistory"])
        case "RemoveDelegate":
            return own("removeDelegate", m["delegate"], m["keepGrants"])
    request = tuple(m[name] for name in REQUEST_FIELDS)
    if change.action == "ApproveRequest":
        return call("approveRequest", request, m["keysCid"])
    return call("denyRequest", request)


def typed_data(chain: Chain, change: ConsentChange, nonce: int, deadline: int) -> dict[str, Any]:
    """The eth_signTypedData_v4 document for ``change`` with this chain's domain."""
    message = {**change.message, "nonce": nonce, "deadline": deadline}
    fields = TYPES[change.action]
    return {
        "types": {
            "EIP712Domain": [{"name": n, "type": t} for n, t in _DOMAIN_FIELDS],
            change.action: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": change.action,
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain.chain_id,
            "verifyingContract": chain.consent.address,
        },
        "message": {
            n: to_checksum_address(message[n]) if t == "address" else _json_value(message[n]) for n, t in fields
        },
    }


APPOINTMENT_SHIFT = 64  # a delegate's signed nonce: nonce | appointment << 64


def relationship_nonce(chain: Chain, change: ConsentChange, signer: str | None = None) -> int:
    """The nonce a signature of ``change`` by ``signer`` carries (see IConsentManager): the
    relationship's nonce, plus, when a delegate signs, its current appointment in bits 64 up."""
    m, f = change.message, chain.consent.functions
    if change.action in ("AppointDelegate", "RemoveDelegate"):
        return int(f.delegationOf(change.patient, m["delegate"]).call()[1])
    counterpart = m["grantee"] if change.action in ("Grant", "Revoke") else m["researcher"]
    nonce = int(f.grantOf(change.patient, counterpart).call()[5])
    if signer is not None and to_checksum_address(signer) != change.patient:
        appointment = int(f.delegationOf(change.patient, to_checksum_address(signer)).call()[2])
        nonce |= appointment << APPOINTMENT_SHIFT
    return nonce


def check_relayable(chain: Chain, signed: SignedConsent, now: int) -> None:
    """Refuses, in words and before anything is sent, a signature the contract would refuse:
    another chain or deployment, past its deadline, by someone who is neither the patient nor
    their delegate, whose nonce is spent (relayed already, or voided since), or past its deadline
    (checked last: a signature relayed already says so, however old)."""
    domain, message, change = signed.typed_data["domain"], signed.typed_data["message"], signed.change
    what = f"this signed {signed.action}"
    if int(domain["chainId"]) != chain.chain_id:
        raise ConfigurationError(
            f"{what} is for chain {domain['chainId']}, this is chain {chain.chain_id}: sign it again on this chain"
        )
    if domain["verifyingContract"] != chain.consent.address:
        raise ConfigurationError(
            f"{what} is for the ConsentManager at {domain['verifyingContract']}, this deployment's is at "
            f"{chain.consent.address}: sign it again for this deployment"
        )
    signer = signed.signer()
    delegate_allowed = signed.action not in ("AppointDelegate", "RemoveDelegate")
    if signer != change.patient and not (
        delegate_allowed and chain.consent.functions.delegationOf(change.patient, signer).call()[0]
    ):
        who = "the patient" if not delegate_allowed else "the patient nor one of their delegates"
        raise ConfigurationError(
            f"{what} was signed by {signer}, who is not {who} ({change.patient}): "
            "signed with another key, or the document was changed after signing"
        )
    expected, given = relationship_nonce(chain, change, signer), int(message["nonce"])
    if given != expected:
        if given >> APPOINTMENT_SHIFT != expected >> APPOINTMENT_SHIFT:
            raise ConfigurationError(f"{what} was signed under an earlier appointment of {signer}: sign it again")
        low = (1 << APPOINTMENT_SHIFT) - 1
        why = "it was relayed already or voided by a later change" if given & low < expected & low else "it was altered"
        raise ConfigurationError(f"{what} has nonce {given & low}, the relationship is at {expected & low}: {why}")
    if now > int(message["deadline"]):
        raise ConfigurationError(f"{what} expired at {utc(int(message['deadline']))}: ask its signer for a new one")


def sign_consent(chain: Chain, signer: Wallet, change: ConsentChange, deadline: int) -> SignedConsent:
    """Signs ``change`` with its relationship's current nonce (bound to the signer's appointment
    when a delegate signs); valid until ``deadline`` (chain time)."""
    nonce = relationship_nonce(chain, change, signer.address)
    document = typed_data(chain, change, nonce, deadline)
    signed = signer.account.sign_message(encode_typed_data(full_message=document))
    return SignedConsent(document, "0x" + bytes(signed.signature).hex())


_JS_SAFE = 2**53 - 1  # JavaScript numbers are exact up to here; larger ones travel as strings


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and value > _JS_SAFE:
        return str(value)
    return value
