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


# -- keeper URLs (M-4) ---------------------------------------------------------------------------

PUBLIC = "https://93.184.215.14:8640"  # a public address literal (nothing is contacted or resolved)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.215.14/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://user:pw@93.184.215.14:8640", "user info"),
        ("http://127.0.0.1:5001/api/v0/pin/rm?arg=bafy#", "query"),
        ("http://93.184.215.14:8640/#frag", "fragment"),
        ("http://93.184.215.14:8640/?", "query"),
        ("http://127.0.0.1:8640", "loopback, private"),
        ("http://localhost:8640", "loopback, private"),
        ("http://[::1]:8640", "loopback, private"),
        ("http://10.1.2.3", "loopback, private"),
        ("http://192.168.0.10", "loopback, private"),
        ("http://169.254.169.254/latest/meta-data", "loopback, private"),
        ("http://[::ffff:127.0.0.1]:80", "loopback, private"),
        ("http://0.0.0.0:8640", "loopback, private"),
        ("not a url", "only http and https"),
    ],
)
def test_keeper_url_validation(url: str, why: str) -> None:
    from medvault.keeper.urls import InvalidKeeperUrl, check_keeper_url

    with pytest.raises(InvalidKeeperUrl, match=why):
        check_keeper_url(url, allow_private=False)


def test_keeper_url_validation_allows_public_and_permitted_private() -> None:
    from medvault.keeper.urls import check_keeper_url

    assert check_keeper_url(PUBLIC, allow_private=False).host == "93.184.215.14"
    assert check_keeper_url("http://127.0.0.1:8640", allow_private=True).port == 8640
    with pytest.raises(ValueError, match="query"):
        check_keeper_url("http://127.0.0.1:5001/api/v0/pin/rm?arg=x", allow_private=True)  # never a query


def test_keeper_paths_are_joined_by_url_rules() -> None:
    import httpx

    from medvault.keeper.protocol import KEY_SHARES_PATH
    from medvault.keeper.urls import join_keeper_url

    assert str(join_keeper_url(httpx.URL(PUBLIC), KEY_SHARES_PATH)) == PUBLIC + "/v1/key-shares"
    assert str(join_keeper_url(httpx.URL(PUBLIC + "/k/"), KEY_SHARES_PATH)) == PUBLIC + "/k/v1/key-shares"
    assert str(join_keeper_url(httpx.URL(PUBLIC + "/k"), KEY_SHARES_PATH)) == PUBLIC + "/k/v1/key-shares"


def test_private_keepers_allowed_on_the_dev_chain_or_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from medvault.keeper.urls import ALLOW_PRIVATE_ENV, allow_private_keepers

    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    assert allow_private_keepers(31337)
    assert not allow_private_keepers(1)
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    assert allow_private_keepers(1)
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "0")
    assert not allow_private_keepers(31337)


def test_settlement_defaults_suit_the_chain() -> None:
    from medvault.keeper.settled import Settlement

    assert Settlement.for_chain(31337) == Settlement(0, None, None)
    assert Settlement.for_chain(1) == Settlement(2, 120.0, None)
    assert Settlement.for_chain(1, confirmations=5, max_lag=0) == Settlement(5, None, None)


def test_freshness_refuses_a_view_that_fell_behind_what_was_seen() -> None:
    import time

    from medvault.keeper.settled import Freshness, PinnedBlock

    ahead = int(time.time()) + 86_400  # chain time moved a day ahead of the wall clock
    fresh = Freshness()
    fresh.check(PinnedBlock(10, "aa", ahead, 10), 60)  # ahead of the wall clock: fine
    fresh.check(PinnedBlock(10, "aa", ahead, 10), 60)
    with pytest.raises(Refusal, match="older than the chain's time") as refused:
        fresh.check(PinnedBlock(9, "bb", ahead - 120, 9), 60)  # a node showing an older view
    assert refused.value.reason == "chain-stale"
    with pytest.raises(Refusal):
        Freshness().check(PinnedBlock(9, "bb", int(time.time()) - 600, 9), 60)  # old by the wall clock
    Freshness().check(PinnedBlock(9, "bb", int(time.time()) - 600, 9), None)  # no lag check


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1:8640",  # shared address space (CGNAT): not public, not "private" to ipaddress
        "http://[2002:7f00:1::]:8640",  # 6to4 embedding 127.0.0.1
        "http://[2002:a00:1::]:8640",  # 6to4 embedding 10.0.0.1
        "http://198.18.0.1:8640",  # benchmarking range
        "http://192.0.0.1:8640",  # IETF protocol assignments
        "http://2130706433:8640",  # 127.0.0.1 as a decimal integer
        "http://0x7f.1:8640",  # 127.0.0.1 in hex shorthand
        "http://127.1:8640",
        "http://a.b.localhost:8640",
        "HTTP://127.0.0.1:8640",
    ],
)
def test_keeper_url_aimed_at_a_non_public_address_in_disguise_is_refused(url: str) -> None:
    from medvault.keeper.urls import InvalidKeeperUrl, check_keeper_url

    with pytest.raises(InvalidKeeperUrl, match="loopback, private"):
        check_keeper_url(url, allow_private=False)


def test_keeper_url_validation_keeps_public_ipv6_and_nat64_of_public() -> None:
    from medvault.keeper.urls import check_keeper_url

    assert check_keeper_url("https://[2606:4700::1111]:8640", allow_private=False).port == 8640


# -- a hostile keeper's answers ------------------------------------------------------------------


def _hostile_keeper(status: int, headers: dict[str, str], body: bytes, chunked: bool = False) -> Any:
    """A local HTTP server answering every POST with ``status``, ``headers`` and ``body``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(body), 1 << 16):
                    piece = body[start : start + (1 << 16)]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("chunked", [False, True])
def test_a_keeper_answering_a_huge_body_is_refused_without_reading_it_all(chunked: bool) -> None:
    from medvault.keeper.protocol import post_key_request

    huge = b'{"keeper": "' + b"A" * (8 << 20) + b'"}'
    server = _hostile_keeper(200, {"Content-Type": "application/json"}, huge, chunked)
    try:
        with pytest.raises(Refusal, match="answered more than") as refused:
            post_key_request(f"http://127.0.0.1:{server.server_address[1]}", {"x": 1}, timeout=10)
        assert refused.value.reason == "bad-response"
    finally:
        server.shutdown()


def test_a_keeper_answering_a_gzip_bomb_is_refused() -> None:
    import gzip

    from medvault.keeper.protocol import post_key_request

    bomb = gzip.compress(b"[" + b" " * (16 << 20) + b"]")
    server = _hostile_keeper(200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, bomb)
    try:
        with pytest.raises(Refusal, match="answered more than"):
            post_key_request(f"http://127.0.0.1:{server.server_address[1]}", {"x": 1}, timeout=10)
    finally:
        server.shutdown()


def test_a_keeper_answering_a_redirect_to_a_private_address_is_not_followed() -> None:
    from medvault.keeper.protocol import post_key_request

    target = _hostile_keeper(200, {}, b'{"keeper": "0x0", "x": 1, "wrap": "", "releaseId": "0x"}')
    server = _hostile_keeper(307, {"Location": f"http://127.0.0.1:{target.server_address[1]}/v1/key-shares"}, b"{}")
    try:
        with pytest.raises(Refusal) as refused:
            post_key_request(f"http://127.0.0.1:{server.server_address[1]}", {"x": 1}, timeout=10)
        assert refused.value.status == 307
    finally:
        server.shutdown()
        target.shutdown()


def test_rate_limiter_memory_stays_bounded_under_many_throwaway_reader_addresses(tmp_path: Any) -> None:
    """Reader addresses cost nothing: a flood of fresh ones must not grow the keeper's memory
    without bound (each is refused later anyway, but the limiter would remember it forever)."""
    import time
    from types import SimpleNamespace

    from medvault.keeper import service as keeper_service
    from medvault.keeper.settled import Settlement

    keeper = keeper_service.KeeperService(
        SimpleNamespace(address=Account.create().address),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        tmp_path,
        settlement=Settlement(0, None),
        rate_window=0.05,
    )
    for i in range(keeper_service.RATE_READERS):
        keeper._limit(f"0x{i:040x}")
    time.sleep(0.1)
    for i in range(keeper_service.RATE_READERS, 2 * keeper_service.RATE_READERS):
        keeper._limit(f"0x{i:040x}")
    assert len(keeper._requests) <= keeper_service.RATE_READERS


def test_freshness_lag_check_survives_a_wall_clock_stepped_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node froze at a block; then the keeper's wall clock is stepped back an hour (forged
    NTP). The frozen view is still an hour and more stale, and is refused."""
    import time

    from medvault.keeper.settled import Freshness, PinnedBlock

    now, tick = time.time(), time.monotonic()
    monkeypatch.setattr(time, "time", lambda: now)
    monkeypatch.setattr(time, "monotonic", lambda: tick)
    fresh = Freshness()
    frozen = PinnedBlock(10, "aa", int(now), 10)
    fresh.check(frozen, 60)
    monkeypatch.setattr(time, "time", lambda: now)  # an hour later, but the wall clock was stepped back an hour
    monkeypatch.setattr(time, "monotonic", lambda: tick + 3600)
    with pytest.raises(Refusal, match="older than the chain's time") as refused:
        fresh.check(frozen, 60)
    assert refused.value.reason == "chain-stale"
