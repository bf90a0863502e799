"""Signed consent changes without a node: typed data, EIP-2098 packing, JSON, call shapes."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.accounts import Wallet
from medvault.client.consent_sig import (
    DOMAIN_NAME,
    REQUEST_FIELDS,
    TYPES,
    ConsentChange,
    SignedConsent,
    consent_call,
    relationship_nonce,
    sign_consent,
    typed_data,
)
from medvault.errors import ConfigurationError

if TYPE_CHECKING:
    from medvault.chain import Chain

PATIENT_KEY = keccak(text="consent sig test patient")
PATIENT = Account.from_key(PATIENT_KEY).address
OTHER = to_checksum_address("0x" + "ab" * 20)
CONSENT = to_checksum_address("0x" + "cd" * 20)
KEYS_CID = bytes.fromhex("01551220") + bytes(range(32))

MESSAGES: dict[str, dict[str, Any]] = {
    "Grant": {"patient": PATIENT, "grantee": OTHER, "scopes": 3, "purpose": 0, "validFrom": 10, "validUntil": 20,
              "keysCid": KEYS_CID},
    "Revoke": {"patient": PATIENT, "grantee": OTHER},
    "AppointDelegate": {"patient": PATIENT, "delegate": OTHER, "scopes": 5, "maxDuration": 86400,
                        "openHistory": False},
    "RemoveDelegate": {"patient": PATIENT, "delegate": OTHER, "keepGrants": True},
    "ApproveRequest": {"patient": PATIENT, "researcher": OTHER, "scopes": 1, "purpose": 2, "duration": 60,
                       "requestedAt": 5, "studyId": bytes(32), "keysCid": b""},
    "DenyRequest": {"patient": PATIENT, "researcher": OTHER, "scopes": 1, "purpose": 2, "duration": 60,
                    "requestedAt": 5, "studyId": b"\x01" * 32},
}  # fmt: skip


class Call:
    def __init__(self, name: str, args: tuple[Any, ...], result: Any = None) -> None:
        self.name, self.args, self.result = name, args, result

    def call(self) -> Any:
        return self.result


class Functions:
    """``chain.consent.functions``: records each call; grantOf/delegationOf answer fixed nonces."""

    def __getitem__(self, name: str) -> Any:
        return lambda *args: Call(name, args)

    def grantOf(self, patient: str, grantee: str) -> Call:
        return Call("grantOf", (patient, grantee), (0, 0, 0, 0, 0, 7, 0, 0))

    def delegationOf(self, patient: str, delegate: str) -> Call:
        return Call("delegationOf", (patient, delegate), (True, 4, 3, 0x3F, 86400, False))


def fake_chain(chain_id: int = 31337) -> Chain:
    consent = SimpleNamespace(address=CONSENT, functions=Functions())
    return cast("Chain", SimpleNamespace(chain_id=chain_id, consent=consent))


def signature(r: int, s: int, v: int) -> str:
    return "0x" + (r.to_bytes(32) + s.to_bytes(32) + bytes([v])).hex()


@pytest.mark.parametrize("action", list(TYPES))
def test_typed_data_has_the_contract_shape(action: str) -> None:
    document = typed_data(fake_chain(), ConsentChange(action, MESSAGES[action]), 3, 99)

    assert document["primaryType"] == action
    assert [f["name"] for f in document["types"]["EIP712Domain"]] == ["name", "version", "chainId", "verifyingContract"]
    assert [(f["name"], f["type"]) for f in document["types"][action]] == TYPES[action]
    assert document["domain"] == {"name": DOMAIN_NAME, "version": "1", "chainId": 31337, "verifyingContract": CONSENT}
    assert list(document["message"]) == [name for name, _ in TYPES[action]]
    assert document["message"]["nonce"] == 3
    assert document["message"]["deadline"] == 99
    for name, kind in TYPES[action]:
        if kind.startswith("bytes"):
            assert document["message"][name] == "0x" + MESSAGES[action][name].hex()
    json.dumps(document)  # plain JSON, as a wallet takes it
    encode_typed_data(full_message=document)  # and well-formed EIP-712


def test_request_types_start_with_the_access_request_fields() -> None:
    for action in ("ApproveRequest", "DenyRequest"):
        assert tuple(name for name, _ in TYPES[action][: len(REQUEST_FIELDS)]) == REQUEST_FIELDS


@pytest.mark.parametrize(
    ("action", "message"),
    [("Frobnicate", {}), ("Revoke", {"patient": PATIENT}), ("Revoke", {**MESSAGES["Revoke"], "nonce": 1})],
    ids=["unknown action", "missing field", "nonce is not a message field"],
)
def test_a_malformed_change_is_refused(action: str, message: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ConsentChange(action, message)


def test_patient_is_checksummed() -> None:
    assert ConsentChange("Revoke", {**MESSAGES["Revoke"], "patient": PATIENT.lower()}).patient == PATIENT


@pytest.mark.parametrize(("v", "parity"), [(27, 0), (28, 1)])
def test_authorization_packs_the_signature_eip2098(v: int, parity: int) -> None:
    document = typed_data(fake_chain(), ConsentChange("Revoke", MESSAGES["Revoke"]), 5, 1234)
    r, s = 0x11 << 240, 0x7F << 240
    auth = SignedConsent(document, signature(r, s, v)).authorization()

    assert auth[:4] == (5, 1234, 31337, CONSENT)
    assert auth[4] == r.to_bytes(32)
    assert int.from_bytes(auth[5]) == s | parity << 255


@pytest.mark.parametrize(("v", "parity"), [(0, 0), (1, 1)])
def test_authorization_of_a_v_in_0_1_keeps_its_parity(v: int, parity: int) -> None:
    document = typed_data(fake_chain(), ConsentChange("Revoke", MESSAGES["Revoke"]), 5, 1234)
    s = 0x7F << 240
    assert int.from_bytes(SignedConsent(document, signature(1, s, v)).authorization()[5]) == s | parity << 255


def test_authorization_normalises_a_high_s() -> None:
    document = typed_data(fake_chain(), ConsentChange("Revoke", MESSAGES["Revoke"]), 5, 1234)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = 0x7F << 240
    high = SignedConsent(document, signature(1, n - s, 27)).authorization()[5]
    assert int.from_bytes(high) == s | 1 << 255  # low s, the other parity: the same signature


@pytest.mark.parametrize("length", [63, 66])
def test_authorization_refuses_a_signature_of_the_wrong_length(length: int) -> None:
    document = typed_data(fake_chain(), ConsentChange("Revoke", MESSAGES["Revoke"]), 0, 1)
    with pytest.raises(ConfigurationError, match=f"65 bytes, this one {length}.*64 in EIP-2098"):
        SignedConsent(document, "0x" + "00" * length).authorization()


@pytest.mark.parametrize("parity", [0, 1])
def test_a_compact_eip2098_signature_is_the_same_authorization(parity: int) -> None:
    document = typed_data(fake_chain(), ConsentChange("Revoke", MESSAGES["Revoke"]), 5, 1234)
    r, s = 0x11 << 240, 0x7F << 240
    compact = "0x" + (r.to_bytes(32) + (s | parity << 255).to_bytes(32)).hex()
    full = SignedConsent(document, signature(r, s, 27 + parity)).authorization()
    assert SignedConsent(document, compact).authorization() == full


@pytest.mark.parametrize("action", list(TYPES))
def test_a_signed_change_round_trips_through_json(action: str) -> None:
    wallet = Wallet("patient", Account.from_key(PATIENT_KEY))
    signed = sign_consent(fake_chain(), wallet, ConsentChange(action, MESSAGES[action]), 500)
    again = SignedConsent.from_json(signed.to_json())

    assert again == signed
    assert again.change == ConsentChange(action, MESSAGES[action])
    assert again.action == action
    signable = encode_typed_data(full_message=again.typed_data)
    assert Account.recover_message(signable, signature=bytes.fromhex(again.signature[2:])) == PATIENT


def test_signing_uses_the_relationships_nonce() -> None:
    chain = fake_chain()
    assert relationship_nonce(chain, ConsentChange("Grant", MESSAGES["Grant"])) == 7
    assert relationship_nonce(chain, ConsentChange("DenyRequest", MESSAGES["DenyRequest"])) == 7
    assert relationship_nonce(chain, ConsentChange("AppointDelegate", MESSAGES["AppointDelegate"])) == 4
    wallet = Wallet("patient", Account.from_key(PATIENT_KEY))
    signed = sign_consent(chain, wallet, ConsentChange("RemoveDelegate", MESSAGES["RemoveDelegate"]), 9)
    assert signed.authorization()[:2] == (4, 9)


def test_a_delegates_signature_names_its_appointment() -> None:
    # Bits 64 and up of a delegate's nonce: its current appointment (3 here), so a signature
    # made under an earlier appointment is void after a re-appointment.
    chain = fake_chain()
    change = ConsentChange("Grant", MESSAGES["Grant"])
    assert relationship_nonce(chain, change, PATIENT) == 7
    assert relationship_nonce(chain, change, OTHER) == 7 | 3 << 64


@pytest.mark.parametrize(
    "text",
    ["not json", "{}", json.dumps({"typedData": {"primaryType": "Nope", "message": {}}, "signature": "0x"}),
     json.dumps({"typedData": {"primaryType": "Revoke", "message": {"patient": PATIENT}}, "signature": "0x00"})],
    ids=["not json", "empty object", "unknown type", "missing fields"],
)  # fmt: skip
def test_a_malformed_signed_document_is_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        SignedConsent.from_json(text)


def test_consent_calls_name_the_patient_only_when_signed() -> None:
    chain, auth = fake_chain(), (1, 2, 3, CONSENT, b"r", b"vs")
    grant = ConsentChange("Grant", MESSAGES["Grant"])
    direct, relayed = cast("Call", consent_call(chain, grant)), cast("Call", consent_call(chain, grant, auth))
    assert (direct.name, direct.args) == ("grant", (OTHER, 3, 0, 10, 20, KEYS_CID))
    assert (relayed.name, relayed.args) == ("grantBySig", (PATIENT, OTHER, 3, 0, 10, 20, KEYS_CID, auth))

    deny = ConsentChange("DenyRequest", MESSAGES["DenyRequest"])
    request = tuple(MESSAGES["DenyRequest"][name] for name in REQUEST_FIELDS)
    assert cast("Call", consent_call(chain, deny)).args == (request,)
    assert cast("Call", consent_call(chain, deny, auth)).args == (request, auth)
