"""Key requests signed and verified without a keeper: each defect is refused with its reason."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from medvault.accounts import Wallet
from medvault.keeper.protocol import REASONS, KeyRequest, Refusal, sign_key_request, verify_key_request

CHAIN_ID = 31337
DIRECTORY = to_checksum_address("0x" + "d1" * 20)
READER = Wallet("reader", Account.from_key(keccak(text="keeper protocol test reader")))
OTHER = Wallet("other", Account.from_key(keccak(text="keeper protocol test other")))
PATIENT = to_checksum_address("0x" + "aa" * 20)
KEEPER = to_checksum_address("0x" + "bb" * 20)
REQUEST = KeyRequest(PATIENT, 4, READER.address, KEEPER, 1_700_000_000)


def body(signer: Wallet = READER, request: KeyRequest = REQUEST, chain_id: int = CHAIN_ID) -> dict[str, Any]:
    return sign_key_request(signer, request, chain_id, DIRECTORY)


def refusal(value: Any, chain_id: int = CHAIN_ID, directory: str = DIRECTORY) -> Refusal:
    with pytest.raises(Refusal) as caught:
        verify_key_request(value, chain_id, directory)
    return caught.value


def test_a_signed_request_verifies_to_itself_and_its_release_id() -> None:
    request, release_id = verify_key_request(body(), CHAIN_ID, DIRECTORY)

    assert request == REQUEST
    assert release_id == REQUEST.release_id(CHAIN_ID, DIRECTORY)
    assert len(release_id) == 32


def test_the_release_id_is_stable_and_differs_per_request() -> None:
    assert verify_key_request(body(), CHAIN_ID, DIRECTORY)[1] == verify_key_request(body(), CHAIN_ID, DIRECTORY)[1]
    later = KeyRequest(PATIENT, 4, READER.address, KEEPER, REQUEST.issued_at + 1)
    assert later.release_id(CHAIN_ID, DIRECTORY) != REQUEST.release_id(CHAIN_ID, DIRECTORY)


def test_the_typed_data_is_checksummed_and_in_field_order() -> None:
    lower = KeyRequest(PATIENT.lower(), 4, READER.address.lower(), KEEPER.lower(), 1)
    document = lower.typed_data(CHAIN_ID, DIRECTORY.lower())

    assert list(document["message"]) == ["patient", "index", "reader", "keeper", "issuedAt"]
    assert document["message"]["patient"] == PATIENT
    assert document["domain"] == {"name": "medvault keeper", "version": "1", "chainId": CHAIN_ID,
                                  "verifyingContract": DIRECTORY}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [("patient", "0x" + "cc" * 20), ("index", 5), ("keeper", "0x" + "cc" * 20), ("issuedAt", 1_700_000_001)],
)
def test_a_tampered_field_is_a_bad_signature(field: str, value: Any) -> None:
    tampered = body()
    tampered["typedData"]["message"][field] = value

    refused = refusal(tampered)
    assert refused.reason == "bad-signature"
    assert refused.status == 401


def test_a_request_signed_by_someone_else_is_a_bad_signature() -> None:
    forged = body(signer=OTHER)  # names READER as the reader, signed by OTHER
    refused = refusal(forged)
    assert refused.reason == "bad-signature"
    assert OTHER.address in refused.message


def test_a_request_for_another_chain_is_refused() -> None:
    refused = refusal(body(chain_id=1))
    assert refused.reason == "bad-signature"
    assert "another chain" in refused.message


def test_a_request_verified_against_another_chain_is_refused() -> None:
    assert refusal(body(), chain_id=1).reason == "bad-signature"


def test_a_request_for_another_directory_is_refused() -> None:
    refused = refusal(body(), directory="0x" + "d2" * 20)
    assert refused.reason == "bad-signature"
    assert "keeper directory" in refused.message


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["typedData"].update(primaryType="Grant"),
        lambda b: b["typedData"]["message"].update(reader="not an address"),
        lambda b: b["typedData"]["message"].pop("issuedAt"),
        lambda b: b["typedData"]["message"].update(index=2**64),
        lambda b: b["typedData"]["message"].update(index="four"),
        lambda b: b.update(signature="0x1234"),
        lambda b: b.update(signature="zz"),
        lambda b: b.pop("signature"),
    ],
    ids=["other type", "bad address", "missing field", "index out of range", "index not a number",
         "short signature", "signature not hex", "no signature"],
)  # fmt: skip
def test_an_invalid_request_is_a_bad_signature(mutate: Any) -> None:
    invalid = copy.deepcopy(body())
    mutate(invalid)
    assert refusal(invalid).reason == "bad-signature"


@pytest.mark.parametrize("value", [None, [], "text", {"signature": "0x"}, {"typedData": "x", "signature": "0x"}])
def test_a_malformed_body_is_refused_as_malformed(value: Any) -> None:
    refused = refusal(value)
    assert refused.reason == "malformed"
    assert refused.status == 400
    assert refused.to_json() == {"error": "malformed", "message": refused.message}


def test_every_reason_has_an_http_status() -> None:
    assert all(400 <= status < 600 for status in REASONS.values())
    assert Refusal("no-grant", "x").status == 403
    assert Refusal("something new", "x").status == 500
    assert Refusal("unreachable", "x", 0).status == 0
