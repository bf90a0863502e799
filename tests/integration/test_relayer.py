"""The relayer (``medvault.relayer``) over HTTP against a real chain: a signed change relayed and
holding on chain; every change the chain would refuse answered in words with nothing sent; and
the HTTP edges: rate limit, body limits, methods, CORS, health."""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from data import DAY, LABS
from eth_account import Account
from unchanged import unchanged

from medvault.client.consent_sig import SignedConsent, sign_consent
from medvault.errors import ContractError
from medvault.model import GrantTerms, Purpose
from medvault.relayer import MAX_BODY, RelayerService

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.client import Medvault
    from medvault.ipfs import IpfsClient

pytestmark = pytest.mark.integration

ORIGIN = "https://portal.example"


@pytest.fixture
def relayer(mv: Medvault, stranger: Wallet) -> Iterator[RelayerService]:
    """The stranger relays (and pays), for pages of ORIGIN."""
    with RelayerService(stranger, mv, allow_origins=[ORIGIN]) as service:
        yield service


def _grant(mv: Medvault, patient: Wallet, grantee: Wallet, deadline: int | None = None) -> SignedConsent:
    """The patient's signed grant of a day of laboratory records to ``grantee``."""
    now = mv.now()
    change = mv.grant_change(patient, patient.address, grantee.address, GrantTerms(LABS, Purpose.TREAT, now, now + DAY))
    return mv.sign(patient, change) if deadline is None else sign_consent(mv.chain, patient, change, deadline)


def _body(signed: SignedConsent) -> dict[str, Any]:
    return {"typedData": signed.typed_data, "signature": signed.signature}


def _post(service: RelayerService, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes | str) else json.dumps(body)
    headers = {"Content-Type": "application/json", **headers}
    return httpx.post(service.url + "/v1/consent", content=content, headers=headers, timeout=60)


def test_a_signed_grant_is_relayed_once_and_its_replay_sends_nothing(
    mv: Medvault,
    relayer: RelayerService,
    patient: Wallet,
    doctor: Wallet,
    stranger: Wallet,
    w3: Web3,
    ipfs: IpfsClient,
    home: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "medvault.relayer")
    signed = _grant(mv, patient, doctor)
    nonce = w3.eth.get_transaction_count(stranger.address)

    answer = _post(relayer, signed.to_json())  # what --sign-only prints, as is

    assert answer.status_code == 200, answer.text
    relayed = answer.json()
    assert set(relayed) == {"transactionHash", "blockNumber", "signer", "kind"}
    assert (relayed["signer"], relayed["kind"]) == (patient.address, "Grant")
    assert mv.chain.sender_of(relayed["transactionHash"]) == stranger.address  # the relayer paid
    assert w3.eth.get_transaction(relayed["transactionHash"])["blockNumber"] == relayed["blockNumber"]
    grant = mv.grant_of(patient.address, doctor.address)
    assert grant is not None
    assert grant.scopes == LABS
    assert w3.eth.get_transaction_count(stranger.address) == nonce + 1

    with unchanged(w3, ipfs, home):
        again = _post(relayer, _body(signed))

    assert again.status_code == 422, again.text
    refused = again.json()
    assert (refused["error"], refused["refusal"]) == ("would-revert", "ConsentManagerInvalidNonce")
    assert "relayed already" in refused["message"]
    assert "nonce 0" in refused["message"]
    assert w3.eth.get_transaction_count(stranger.address) == nonce + 1  # no transaction sent
    lines = [r.getMessage() for r in caplog.records if r.name == "medvault.relayer" and "/v1/consent" in r.getMessage()]
    assert len(lines) == 2
    assert all(patient.address in line and "kind=Grant" in line for line in lines)
    assert "would-revert" in lines[1]
    assert not any(signed.signature.removeprefix("0x")[:16] in r.getMessage() for r in caplog.records)


def test_two_posts_of_one_signature_at_once_send_one_transaction(
    mv: Medvault, relayer: RelayerService, patient: Wallet, doctor: Wallet, stranger: Wallet, w3: Web3
) -> None:
    signed = _grant(mv, patient, doctor)
    nonce = w3.eth.get_transaction_count(stranger.address)
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(_post(relayer, _body(signed)).status_code))
               for _ in range(2)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 422]
    assert w3.eth.get_transaction_count(stranger.address) == nonce + 1


def test_what_the_chain_would_refuse_is_answered_in_words_and_sends_nothing(
    mv: Medvault, relayer: RelayerService, patient: Wallet, doctor: Wallet, w3: Web3, ipfs: IpfsClient, home: Path
) -> None:
    signed = _grant(mv, patient, doctor)
    other_chain = json.loads(json.dumps(signed.typed_data))
    other_chain["domain"]["chainId"] = 1
    other_contract = json.loads(json.dumps(signed.typed_data))
    other_contract["domain"]["verifyingContract"] = "0x" + "11" * 20
    by_doctor = Account.sign_typed_data(doctor.account.key, full_message=signed.typed_data).signature
    expired = _grant(mv, patient, doctor, deadline=mv.now() - 1)

    with unchanged(w3, ipfs, home):
        answers = {
            "chain": _post(relayer, {"typedData": other_chain, "signature": _sign(patient, other_chain)}),
            "contract": _post(relayer, {"typedData": other_contract, "signature": _sign(patient, other_contract)}),
            "expired": _post(relayer, _body(expired)),
            "signer": _post(relayer, {"typedData": signed.typed_data, "signature": "0x" + bytes(by_doctor).hex()}),
        }

    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(answers, 422)
    for name in ("chain", "contract"):
        assert answers[name].json()["error"] == "wrong-domain"
    assert "chain 1 " in answers["chain"].json()["message"]
    assert f"serves chain {mv.chain.chain_id}" in answers["chain"].json()["message"]
    assert "0x" + "11" * 20 in answers["contract"].json()["message"].lower()
    assert answers["expired"].json()["refusal"] == "ConsentManagerExpiredSignature"
    assert "expired at" in answers["expired"].json()["message"]
    assert answers["signer"].json()["refusal"] == "ConsentManagerInvalidSigner"
    assert f"signed by {doctor.address}" in answers["signer"].json()["message"]
    assert mv.grant_of(patient.address, doctor.address) is None


def _sign(wallet: Wallet, document: dict[str, Any]) -> str:
    return "0x" + bytes(Account.sign_typed_data(wallet.account.key, full_message=document).signature).hex()


def test_a_signature_that_is_none_is_refused_as_malformed(
    mv: Medvault, relayer: RelayerService, patient: Wallet, doctor: Wallet, w3: Web3, ipfs: IpfsClient, home: Path
) -> None:
    document = _grant(mv, patient, doctor).typed_data
    no_point = (0x11 * (2**256 // 255)).to_bytes(32) + (7).to_bytes(32) + bytes([27])  # r is no point's x

    with unchanged(w3, ipfs, home):
        not_hex = _post(relayer, {"typedData": document, "signature": "0xnothex"})
        no_signer = _post(relayer, {"typedData": document, "signature": "0x" + no_point.hex()})
        short = _post(relayer, {"typedData": document, "signature": "0x" + "ab" * 63})

    assert (not_hex.status_code, not_hex.json()["error"]) == (400, "malformed")
    assert "is not hex" in not_hex.json()["message"]
    assert (no_signer.status_code, no_signer.json()["error"]) == (400, "bad-signature")
    assert "recovers to no account" in no_signer.json()["message"]
    assert (short.status_code, short.json()["error"]) == (400, "malformed")


def test_each_signer_is_held_to_its_rate(mv: Medvault, stranger: Wallet, patient: Wallet, doctor: Wallet) -> None:
    expired = _body(_grant(mv, patient, doctor, deadline=mv.now() - 1))
    by_doctor = _body(_grant(mv, doctor, patient, deadline=mv.now() - 1))
    with RelayerService(stranger, mv, rate=2) as service:
        statuses = [_post(service, expired).status_code for _ in range(2)]
        limited = _post(service, expired)
        other = _post(service, by_doctor)

    assert statuses == [422, 422]
    assert (limited.status_code, limited.json()["error"]) == (429, "rate-limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 30  # 2 a minute: a token every 30 s
    assert other.status_code == 422  # another signer has a bucket of its own
    assert "access-control-allow-origin" not in limited.headers  # no origin allowed by default


def test_the_http_edges(relayer: RelayerService) -> None:
    huge = _post(relayer, b"{" + b" " * MAX_BODY + b"}")
    assert (huge.status_code, huge.json()["error"]) == (413, "too-large")
    text = _post(relayer, "{}", **{"Content-Type": "text/plain"})
    assert (text.status_code, text.json()["error"]) == (415, "unsupported-media-type")
    assert _post(relayer, b"not json").json() == {"error": "malformed", "message": "the body is not JSON"}
    assert _post(relayer, {"typedData": {}}).status_code == 400  # no signature
    assert _post(relayer, {"typedData": {}, "signature": "0x00"}).json()["error"] == "malformed"
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert _post(relayer, {"typedData": {}, "signature": "0x00"}, **charset).status_code == 400

    unknown = httpx.post(relayer.url + "/v1/other", json={})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not-found")
    wrong_method = httpx.get(relayer.url + "/v1/consent")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method-not-allowed")
    assert wrong_method.headers["Allow"] == "POST, OPTIONS"
    assert httpx.delete(relayer.url + "/v1/health").status_code == 405


def test_cors_answers_the_allowed_origin_alone(relayer: RelayerService) -> None:
    allowed = _post(relayer, {}, Origin=ORIGIN)
    assert allowed.status_code == 400
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    other = _post(relayer, {}, Origin="https://elsewhere.example")
    assert "access-control-allow-origin" not in other.headers

    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}  # fmt: skip
    answered = httpx.options(relayer.url + "/v1/consent", headers=preflight)
    assert answered.status_code == 204
    assert answered.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in answered.headers["Access-Control-Allow-Methods"]
    assert answered.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    refused = httpx.options(relayer.url + "/v1/consent", headers={**preflight, "Origin": "https://elsewhere.example"})
    assert "access-control-allow-origin" not in refused.headers


def test_health_names_the_relayer_its_chain_and_balance(
    mv: Medvault, relayer: RelayerService, stranger: Wallet, w3: Web3
) -> None:
    answer = httpx.get(relayer.url + "/v1/health")

    assert answer.status_code == 200
    assert answer.json() == {
        "ok": True,
        "chainId": mv.chain.chain_id,
        "relayer": stranger.address,
        "balanceWei": str(w3.eth.get_balance(stranger.address)),
    }


def test_a_change_mined_but_reverted_is_a_conflict(
    mv: Medvault, relayer: RelayerService, patient: Wallet, doctor: Wallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reverted(
        _wallet: Wallet, signed: SignedConsent, *, clean_up: bool
    ) -> None:  # the chain moved between the check and the block
        raise ContractError("Grant", "Reverted", {"tx": "0x" + "ab" * 32}, words="Grant was mined but failed")

    monkeypatch.setattr(mv, "relay", reverted)
    answer = _post(relayer, _body(_grant(mv, patient, doctor)))

    assert answer.status_code == 409
    assert answer.json() == {
        "error": "reverted",
        "message": "Grant was mined but failed",
        "transactionHash": "0x" + "ab" * 32,
    }
