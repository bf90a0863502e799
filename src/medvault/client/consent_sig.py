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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address

from medvault.crypto import normalised_signature
from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from web3.contract.contract import ContractFunction

    from medvault.accounts import Wallet
    from medvault.chain import Chain

__all__ = ["ConsentChange", "SignedConsent", "consent_call", "sign_consent"]

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
    """Typed data and its signature: what a wallet signs and what a relayer sends."""

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
        try:
            r, s, v = normalised_signature(bytes.fromhex(self.signature.removeprefix("0x")))
        except ValueError as exc:
            raise ConfigurationError(f"the signature of this {self.action}: {exc}") from None
        vs = (s | (v - 27) << 255).to_bytes(32)
        return (int(message["nonce"]), int(message["deadline"]), int(domain["chainId"]),
                to_checksum_address(domain["verifyingContract"]), r, vs)  # fmt: skip

    def to_json(self) -> str:
        return json.dumps({"typedData": self.typed_data, "signature": self.signature}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> SignedConsent:
        try:
            raw = json.loads(text)
            signed = cls(raw["typedData"], str(raw["signature"]))
            signed.change  # noqa: B018 - validates the action and its fields
            signed.authorization()
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"not a signed medvault consent document ({type(exc).__name__}: {exc})") from None
        return signed


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
        "message": {name: _json_value(message[name]) for name, _ in fields},
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


def sign_consent(chain: Chain, signer: Wallet, change: ConsentChange, deadline: int) -> SignedConsent:
    """Signs ``change`` with its relationship's current nonce (bound to the signer's appointment
    when a delegate signs); valid until ``deadline`` (chain time)."""
    nonce = relationship_nonce(chain, change, signer.address)
    document = typed_data(chain, change, nonce, deadline)
    signed = signer.account.sign_message(encode_typed_data(full_message=document))
    return SignedConsent(document, "0x" + bytes(signed.signature).hex())


def _json_value(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value
