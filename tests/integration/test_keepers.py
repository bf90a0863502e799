"""Key-release keepers on anvil and Kubo: records released automatically while consent holds,
t-of-n, with receipts on chain, and no single server holding a patient's keys.

Keepers run in-process on free ports, through ``KeeperService`` as ``medvault keeper run``
uses it, each with its own connections, and are stopped at teardown.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from counting import counted_client
from data import DAY, LAB, LABS, MEDS, PASSPHRASE
from helpers import add, new_wallet, refused, wait_for

from medvault.accounts import TEST_SCRYPT_N, Keystore
from medvault.chain import Chain, connect
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.crypto import open_share
from medvault.dev.node import free_port
from medvault.errors import AccessDeniedError, ConfigurationError, DecryptionError, KeeperRefusedError
from medvault.ipfs import IpfsClient
from medvault.keeper import KeeperService
from medvault.keeper.protocol import KEY_SHARES_PATH, KeyRequest, Refusal, post_key_request, sign_key_request
from medvault.keeper.service import RECEIPT_BUCKET
from medvault.model import Category, DelegateTerms, GrantTerms, Purpose

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from helpers import ChainClock
    from web3 import Web3

    from medvault.accounts import Wallet
    from medvault.dev.node import NodeInfo
    from medvault.model import RecordPointer

pytestmark = pytest.mark.integration


class Keepers:
    """Starts keepers in threads, each with its own chain and IPFS connections; stops them all."""

    def __init__(self, mv: Medvault, node: NodeInfo, tmp_path: Path) -> None:
        self.mv, self.node, self.tmp_path = mv, node, tmp_path
        self.running: dict[str, KeeperService] = {}
        self.ports: dict[str, int] = {}
        self._clients: list[IpfsClient] = []

    def start(
        self, wallet: Wallet, *, batch_seconds: float = 0.2, rpc_url: str | None = None, **options: Any
    ) -> KeeperService:
        """Starts ``wallet``'s keeper (on ``rpc_url``, the node's by default; ``options`` go to
        KeeperService: settlement, receipt_bucket, rate_limit, rate_window)."""
        port = self.ports.setdefault(wallet.address, free_port())
        ipfs = IpfsClient(self.node.ipfs_api)
        self._clients.append(ipfs)
        chain = Chain(connect(rpc_url or self.node.rpc_url), self.mv.chain.deployment, load_artifacts())
        service = KeeperService(
            wallet, Medvault(chain, ipfs), self.tmp_path / "keepers" / wallet.name, port=port,
            batch_seconds=batch_seconds, announce=f"http://127.0.0.1:{port}", **options,
        )  # fmt: skip
        self.running[wallet.address] = service.start()
        return service

    def stop(self, wallet: Wallet, *, flush: bool = True) -> None:
        self.running.pop(wallet.address).stop(flush=flush)

    def close(self) -> None:
        for service in self.running.values():
            service.stop()
        for ipfs in self._clients:
            ipfs.close()


@pytest.fixture
def keepers(mv: Medvault, local_node: NodeInfo, tmp_path: Path) -> Iterator[Keepers]:
    group = Keepers(mv, local_node, tmp_path)
    yield group
    group.close()


@pytest.fixture
def keeper_wallets(mv: Medvault, keystore: Keystore, w3: Web3) -> list[Wallet]:
    result = []
    for name in ("keeper1", "keeper2", "keeper3"):
        wallet = new_wallet(keystore, w3, name, "keeper passphrase")
        mv.register(wallet)
        result.append(wallet)
    return result


@pytest.fixture
def three(mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], patient: Wallet) -> list[Wallet]:
    """Three keepers running, any two of which release the patient's record keys."""
    mv.set_keepers(patient, [k.address for k in keeper_wallets], 2)
    for wallet in keeper_wallets:
        keepers.start(wallet)
    return keeper_wallets


class _Unusable:
    """An account whose address is known and whose key may not be used."""

    def __init__(self, address: str) -> None:
        self.address = address

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the patient's wallet was used ({name})")


def lock_away(wallet: Wallet) -> None:
    """From here on, any use of ``wallet``'s key (signing, deriving keys) fails the test."""
    wallet.account = _Unusable(wallet.address)  # type: ignore[assignment]
    wallet.keys.pairs.clear()


def delegate_grant(mv: Medvault, patient: Wallet, guardian: Wallet, grantee: Wallet, start: int, end: int) -> None:
    """A grant by a delegate: it cannot open the patient's keys, so it shares none. The delegate's
    terms let its grants open earlier records, so the keepers release those too."""
    if not mv.is_delegate(patient.address, guardian.address):
        mv.set_delegate(
            patient, guardian.address, terms=DelegateTerms(frozenset(Category), 30 * DAY, open_history=True)
        )
    mv.grant(guardian, patient.address, grantee.address, GrantTerms(LABS, Purpose.TREAT, start, end))


def refusal_codes(mv: Medvault, reader: Wallet, pointer: RecordPointer) -> list[str]:
    """What the keepers answer, asked directly (without the client's own chain check)."""
    with pytest.raises(KeeperRefusedError) as refused:
        mv.release_key(reader, pointer)
    return refused.value.reason_codes


def test_grantee_reads_through_the_keepers_without_the_patient(
    mv: Medvault,
    three: list[Wallet],
    keepers: Keepers,
    provider: Wallet,
    patient: Wallet,
    doctor: Wallet,
    admin: Wallet,
) -> None:
    pointer = add(mv, provider, patient)
    bundle = mv.key_bundle(pointer.keys_cid, patient.address)
    assert bundle.escrow is not None
    assert bundle.escrow.threshold == 2
    assert [(s.keeper, s.x) for s in bundle.escrow.shares] == [(k.address, i + 1) for i, k in enumerate(three)]
    assert {w.reader for w in bundle.wraps} == {patient.address, provider.address}  # keepers get no wraps

    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)  # no key bundle
    with pytest.raises(AccessDeniedError, match="was ever wrapped"):
        mv.open_key(doctor, pointer)
    lock_away(patient)

    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB

    receipts = wait_for(lambda: len(mv.releases(patient.address)) >= 3 and mv.releases(patient.address))
    time.sleep(1)  # batchers keep running: nothing is posted twice
    assert mv.releases(patient.address) == receipts
    assert sorted(r.keeper for r in receipts) == sorted(k.address for k in three)
    assert {(r.grantee, r.index) for r in receipts} == {(doctor.address, pointer.index)}
    assert len({r.release_id for r in receipts}) == 3
    keeper_set = mv.keepers_of(patient.address)
    assert keeper_set.threshold == 2
    assert keeper_set.urls == {k.address: keepers.running[k.address].url for k in three}


def test_a_read_through_the_keepers_fetches_the_key_bundle_once_and_decrypts_once(
    mv: Medvault, three: list[Wallet], provider: Wallet, patient: Wallet, doctor: Wallet, admin: Wallet,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)  # the doctor holds no wrap
    with counted_client(mv, monkeypatch) as (client, counts):
        assert client.read_record(doctor, patient.address, pointer.index).data == LAB
    assert counts.cats == {pointer.cid: 1, pointer.keys_cid: 1}  # the keepers fetch theirs themselves
    assert counts.decryptions == 1  # the check of the combined key is the decryption
    assert counts.logs["RecordAdded"] == 1


def test_keepers_refuse_out_of_scope_and_after_the_window_closes(
    mv: Medvault, three: list[Wallet], provider: Wallet, patient: Wallet, doctor: Wallet, admin: Wallet,
    clock: ChainClock,
) -> None:  # fmt: skip
    lab = add(mv, provider, patient)
    meds = add(mv, provider, patient, MEDS, Category.MEDICATIONS)
    assert refusal_codes(mv, doctor, lab) == ["no-grant"] * 3
    start = clock.now() + DAY
    delegate_grant(mv, patient, admin, doctor, start, start + DAY)
    assert refusal_codes(mv, doctor, lab) == ["not-yet-valid"] * 3
    clock.advance(DAY)
    assert mv.release_key(doctor, lab)  # the window is open
    assert refusal_codes(mv, doctor, meds) == ["out-of-scope"] * 3

    clock.advance(DAY)
    assert refusal_codes(mv, doctor, lab) == ["expired"] * 3
    with pytest.raises(AccessDeniedError, match="expired"):
        mv.read_record(doctor, patient.address, lab.index)  # the client's own chain check comes first
    with pytest.raises(
        KeeperRefusedError, match=r"keepers released 0 of the 2 shares needed; keepers refused: expired x3"
    ):
        mv.release_key(doctor, lab)


def test_keepers_refuse_after_revoke_and_forward_security(
    mv: Medvault, three: list[Wallet], provider: Wallet, patient: Wallet, doctor: Wallet, admin: Wallet
) -> None:
    before = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    assert mv.read_record(doctor, patient.address, before.index).data == LAB
    mv.revoke(admin, patient.address, doctor.address)
    assert refusal_codes(mv, doctor, before) == ["revoked"] * 3

    after = add(mv, provider, patient)
    readers = {w.reader for w in mv.key_bundle(after.keys_cid, patient.address).wraps}
    assert doctor.address not in readers  # not wrapped for the revoked party...
    assert refusal_codes(mv, doctor, after) == ["revoked"] * 3  # ...nor released by the keepers
    with pytest.raises(AccessDeniedError, match="revoked"):
        mv.read_record(doctor, patient.address, after.index)


def test_keepers_check_the_request_itself(
    mv: Medvault, three: list[Wallet], keepers: Keepers, provider: Wallet, patient: Wallet, doctor: Wallet,
    stranger: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    chain_id, directory = mv.chain.chain_id, mv.chain.keepers.address
    keeper = three[0]
    url = keepers.running[keeper.address].url

    def ask(signer: Wallet, **changes: Any) -> ShareOrRefusal:
        fields = {"patient": patient.address, "index": pointer.index, "reader": doctor.address,
                  "keeper": keeper.address, "issued_at": mv.now(), **changes}  # fmt: skip
        try:
            return post_key_request(url, sign_key_request(signer, KeyRequest(**fields), chain_id, directory))
        except Refusal as refusal:
            return refusal.reason, refusal.status

    assert ask(doctor).x == 1  # type: ignore[union-attr]
    assert ask(stranger) == ("bad-signature", 401)  # signed by someone else than the reader it names
    assert ask(doctor, issued_at=mv.now() - 3600) == ("stale", 401)
    assert ask(doctor, keeper=three[1].address) == ("wrong-keeper", 421)
    assert ask(doctor, patient=doctor.address) == ("wrong-keeper", 421)  # not a keeper of this "patient"
    assert ask(doctor, index=7) == ("unknown-record", 404)
    assert ask(stranger, reader=stranger.address) == ("no-grant", 403)
    other = sign_key_request(
        doctor, KeyRequest(patient.address, 0, doctor.address, keeper.address, mv.now()), 1, directory
    )
    assert post_raw(url, other) == (401, "bad-signature")  # signed for another chain
    assert post_raw(url, {"typedData": {}, "signature": "0x00"}) == (401, "bad-signature")
    assert post_raw(url, "not json") == (400, "malformed")

    # A retried request is served again and journaled once.
    body = sign_key_request(
        doctor, KeyRequest(patient.address, 0, doctor.address, keeper.address, mv.now()), chain_id, directory
    )
    first, again = post_key_request(url, body), post_key_request(url, body)
    assert (first.release_id, first.x) == (again.release_id, again.x)
    journal = keepers.running[keeper.address].journal()
    assert sum(row["release_id"] == first.release_id for row in journal) == 1


ShareOrRefusal = Any


def post_raw(url: str, body: Any) -> tuple[int, str]:
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(url + KEY_SHARES_PATH, content=content, headers={"Content-Type": "application/json"})
    return response.status_code, str(response.json()["error"])


def test_two_of_three_survive_one_keeper_down_but_not_two(
    mv: Medvault, three: list[Wallet], keepers: Keepers, provider: Wallet, patient: Wallet, doctor: Wallet,
    admin: Wallet,
) -> None:  # fmt: skip
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    keepers.stop(three[2])
    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB
    keepers.stop(three[1])
    with pytest.raises(KeeperRefusedError, match=r"released 1 of the 2 shares needed; keepers refused: unreachable x2"):
        mv.read_record(doctor, patient.address, pointer.index)
    keepers.start(three[1])  # back on its port and journal
    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB


def test_patient_as_its_own_keeper(
    mv: Medvault, keepers: Keepers, provider: Wallet, patient: Wallet, doctor: Wallet, admin: Wallet
) -> None:
    mv.set_keepers(patient, [patient.address], 1)
    keepers.start(patient)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB
    receipts = wait_for(lambda: mv.releases(patient.address))
    assert [(r.keeper, r.grantee) for r in receipts] == [(patient.address, doctor.address)]


def test_records_without_keepers_are_unchanged(mv: Medvault, provider: Wallet, patient: Wallet) -> None:
    pointer = add(mv, provider, patient)
    assert mv.key_bundle(pointer.keys_cid, patient.address).escrow is None
    assert mv.keepers_of(patient.address).keepers == []


def test_restart_neither_duplicates_nor_loses_receipts(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], provider: Wallet, patient: Wallet,
    doctor: Wallet, admin: Wallet, clock: ChainClock,
) -> None:  # fmt: skip
    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    service = keepers.start(keeper, batch_seconds=3600)  # posts nothing by itself
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    for _ in range(3):
        assert mv.read_record(doctor, patient.address, pointer.index).data == LAB
        clock.advance(RECEIPT_BUCKET)  # a new request in a new receipt bucket: a new release
    pending = service.pending()
    assert len(pending) == 3
    keepers.stop(keeper, flush=False)  # as if killed: three releases journaled, no receipt
    assert mv.releases(patient.address) == []

    # The crash came right after the first receipt was mined, before it was marked.
    fn = mv.chain.keepers.functions.recordReleases([pending[0].to_release()])
    mv.chain.transact(keeper, fn, "receipt mined before the crash")

    service = keepers.start(keeper, batch_seconds=0.2)
    wait_for(lambda: not service.pending())
    receipts = mv.releases(patient.address)
    assert sorted(r.release_id for r in receipts) == sorted(row.release_id for row in pending)  # each exactly once
    keepers.stop(keeper)
    keepers.start(keeper, batch_seconds=0.2)
    time.sleep(0.6)
    assert len(mv.releases(patient.address)) == 3
    assert all(row["receipt_tx"] for row in keepers.running[keeper.address].journal())


def test_wrapped_share_is_bound_to_the_reader(
    mv: Medvault, three: list[Wallet], keepers: Keepers, provider: Wallet, patient: Wallet, doctor: Wallet,
    admin: Wallet,
) -> None:  # fmt: skip
    """What a keeper answers opens only with the reader's key, for this record and keeper."""
    from medvault.crypto import open_share
    from medvault.errors import DecryptionError

    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    keeper = three[0]
    body = sign_key_request(
        doctor, KeyRequest(patient.address, pointer.index, doctor.address, keeper.address, mv.now()),
        mv.chain.chain_id, mv.chain.keepers.address,
    )  # fmt: skip
    release = post_key_request(keepers.running[keeper.address].url, body)
    context = mv.context_of(pointer)
    pair = doctor.encryption_keys(mv.suite, 0)
    assert len(open_share(release.wrap, pair, context.release_info(doctor.address, keeper.address, 1), "share")) == 32
    with pytest.raises(DecryptionError):
        open_share(release.wrap, pair, context.release_info(doctor.address, three[1].address, 1), "share")
    with pytest.raises(DecryptionError):
        open_share(
            release.wrap,
            admin.encryption_keys(mv.suite, 0),
            context.release_info(doctor.address, keeper.address, 1),
            "share",
        )
    assert base64.b64encode(release.wrap)


def test_a_patient_who_lost_its_key_file_reads_its_escrowed_records_through_the_keepers(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], provider: Wallet, patient: Wallet, tmp_path: Path
) -> None:
    unescrowed = add(mv, provider, patient)  # before the patient chose keepers
    mv.set_keepers(patient, [k.address for k in keeper_wallets], 2)
    for wallet in keeper_wallets:
        keepers.start(wallet)
    escrowed = add(mv, provider, patient, MEDS)
    # The device is lost with its key file and no backup; the account key survives elsewhere.
    device = Keystore(tmp_path / "new-device", scrypt_n=TEST_SCRYPT_N)
    device.create("patient", PASSPHRASE, bytes(patient.account.key))
    restored = device.unlock("patient", PASSPHRASE)
    with pytest.raises(ConfigurationError, match="keys import"):
        mv.register(restored)  # refused by default: it would strand the records of the lost key

    mv.register(restored, new_key=True)

    # Keepers serve the patient as a reader of its own records, sealing shares to the new key...
    assert mv.read_record(restored, patient.address, escrowed.index).data == MEDS
    # ...but a record escrowed with nobody was wrapped only for the lost key.
    with pytest.raises(DecryptionError):
        mv.read_record(restored, patient.address, unescrowed.index)


# -- adversaries: a lagging RPC, an author naming keepers, keeper set changes, receipts ---------


class StaleRpc:
    """A JSON-RPC proxy to anvil that can freeze its view of the chain at one block, as a lagging
    (load-balanced, hostile) node does: "latest" reads answer at the frozen block; everything
    else, transactions included, passes through."""

    def __init__(self, upstream: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        self.upstream, self.frozen_at = upstream, None
        self.seen: list[tuple[str, list[Any]]] = []  # (method, params) of every request
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                answer = [proxy.forward(b) for b in body] if isinstance(body, list) else proxy.forward(body)
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def forward(self, request: dict[str, Any]) -> Any:
        frozen, method = self.frozen_at, request.get("method")
        self.seen.append((str(method), list(request.get("params") or [])))
        if frozen is not None:
            at = hex(frozen)
            if method == "eth_blockNumber":
                return {"jsonrpc": "2.0", "id": request["id"], "result": at}
            params = list(request.get("params") or [])
            if method in ("eth_call", "eth_getBlockByNumber", "eth_getBalance", "eth_getCode"):
                params = [at if p in ("latest", "pending", "safe", "finalized") else p for p in params]
                if method == "eth_call" and len(params) == 1:
                    params.append(at)
                elif method == "eth_getBlockByNumber" and int(str(params[0]), 16) > frozen:
                    params[0] = at
            if method == "eth_getLogs" and params:
                query = dict(params[0])
                to = query.get("toBlock", "latest")
                if to in ("latest", "pending") or int(str(to), 16) > frozen:
                    query["toBlock"] = at
                params = [query]
            request = {**request, "params": params}
        return httpx.post(self.upstream, json=request, timeout=30).json()

    def freeze(self, block: int) -> None:
        self.frozen_at = block

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_lagging_rpc_cannot_make_keeper_release_after_revoke(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], local_node: NodeInfo, provider: Wallet,
    patient: Wallet, doctor: Wallet, admin: Wallet, w3: Web3,
) -> None:  # fmt: skip
    """M-6: the keeper's node serves the chain as it was before the revoke. With a lag limit the
    keeper notices its view no longer moves; with a second endpoint, that the view is behind."""
    from medvault.dev.anvil import mine
    from medvault.keeper.settled import Settlement

    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    stale = StaleRpc(local_node.rpc_url)
    try:
        lagging = Settlement(confirmations=0, max_lag=1.0)
        keepers.start(keeper, rpc_url=stale.url, settlement=lagging)
        assert mv.release_key(doctor, pointer)  # the view moves with the chain: released

        stale.freeze(w3.eth.block_number)  # from here on the keeper's node lags
        mv.revoke(admin, patient.address, doctor.address)
        time.sleep(1.5)
        assert refusal_codes(mv, doctor, pointer) == ["chain-stale"]

        keepers.stop(keeper)
        checked = Settlement(confirmations=0, max_lag=None, second_rpc=local_node.rpc_url)
        keepers.start(keeper, rpc_url=stale.url, settlement=checked)
        for _ in range(3):
            mine(w3)  # the honest chain moves on
        assert refusal_codes(mv, doctor, pointer) == ["chain-stale"]  # behind the second endpoint
    finally:
        stale.close()
    assert all(r.released_at <= mv.now() for r in mv.releases(patient.address))


class ForkedRpc(StaleRpc):
    """A proxy whose blocks carry other hashes, as a node on another fork would serve them."""

    def forward(self, request: dict[str, Any]) -> Any:
        answer = super().forward(request)
        if request.get("method") == "eth_getBlockByNumber" and isinstance(answer.get("result"), dict):
            answer["result"]["hash"] = "0x" + "ee" * 32
        return answer


def test_second_rpc_on_another_fork_makes_the_keeper_refuse(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], local_node: NodeInfo, provider: Wallet,
    patient: Wallet, doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    from medvault.keeper.settled import Settlement

    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    forked = ForkedRpc(local_node.rpc_url)
    try:
        keepers.start(keeper, settlement=Settlement(confirmations=0, max_lag=None, second_rpc=forked.url))
        assert refusal_codes(mv, doctor, pointer) == ["chain-disagrees"]
    finally:
        forked.close()


def test_keeper_decisions_read_one_pinned_block(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], local_node: NodeInfo, provider: Wallet,
    patient: Wallet, doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """Every read of a release's decision names the same block number, in few requests: the
    block, then one batch (3 views and the record's log query), then one (consent and the
    reader's key)."""
    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    proxy = StaleRpc(local_node.rpc_url)
    try:
        service = keepers.start(keeper, rpc_url=proxy.url)
        chain_id, directory = mv.chain.chain_id, mv.chain.keepers.address
        request = KeyRequest(patient.address, pointer.index, doctor.address, keeper.address, mv.now())
        body = sign_key_request(doctor, request, chain_id, directory)
        proxy.seen.clear()
        post_key_request(service.url, body)
        seen = list(proxy.seen)
    finally:
        proxy.close()
    blocks = [p[1] if m == "eth_call" else p[0].get("toBlock") for m, p in seen if m in ("eth_call", "eth_getLogs")]
    numbered = [b for b in blocks if b != "latest"]
    assert len(set(numbered)) == 1, blocks  # one block, named by number
    assert len(numbered) >= 5, blocks
    assert blocks.count("latest") <= 1, blocks  # only the keeper's own key epoch
    assert len(seen) <= 8, [m for m, _ in seen]


def test_bundle_keeper_url_is_never_contacted(
    mv: Medvault, three: list[Wallet], keepers: Keepers, provider: Wallet, patient: Wallet, doctor: Wallet,
    admin: Wallet, local_node: NodeInfo, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """M-4: a record's author names itself as a "keeper" in the bundle it writes and announces
    its reader's own Kubo API as the URL; readers ask only the patient's keepers on chain."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from medvault.model import KeeperSet

    hits: list[str] = []

    class Trap(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    trap = ThreadingHTTPServer(("127.0.0.1", 0), Trap)
    Thread(target=trap.serve_forever, daemon=True).start()
    try:
        victim = add(mv, provider, patient)  # the patient's data the attack would unpin
        kubo_rm = f"{local_node.ipfs_api}/api/v0/pin/rm?arg={victim.cid}#"
        mv.announce_keeper(provider, f"http://127.0.0.1:{trap.server_address[1]}")
        # The author's client escrows the key with the author itself, whatever the chain says.
        with monkeypatch.context() as patch:
            patch.setattr(mv, "keepers_of", lambda p, with_urls=True: KeeperSet(p, [provider.address], 1, {}))
            poisoned = add(mv, provider, patient)
        assert [s.keeper for s in mv.key_bundle(poisoned.keys_cid, patient.address).escrow.shares] == [provider.address]  # type: ignore[union-attr]
        delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
        with pytest.raises(KeeperRefusedError, match="no-keeper"):
            mv.read_record(doctor, patient.address, poisoned.index)
        assert hits == []

        # Even a keeper the patient did choose is not contacted at a URL that aims elsewhere.
        mv.announce_keeper(three[0], kubo_rm)
        keepers.stop(three[1])  # so that the read needs the first keeper
        with pytest.raises(KeeperRefusedError) as refused:
            mv.release_key(doctor, victim)
        assert refused.value.reasons[three[0].address][0] == "bad-url"
        assert mv.ipfs.is_pinned(victim.cid)
        assert hits == []
    finally:
        trap.shutdown()
        trap.server_close()


def test_keeper_set_change_does_not_strand_old_records(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], provider: Wallet, patient: Wallet,
    doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """M-5: the patient replaces a keeper; the records written before are re-escrowed for the new
    set, so the new keepers serve them and the removed one is not asked."""
    k1, k2, k3 = keeper_wallets
    mv.set_keepers(patient, [k1.address, k2.address], 2)
    for wallet in keeper_wallets:
        keepers.start(wallet)
    old = add(mv, provider, patient)
    assert mv.keepers_of(patient.address).escrow_cid is None  # nothing to re-escrow yet

    mv.set_keepers(patient, [k1.address, k3.address], 2)
    keeper_set = mv.keepers_of(patient.address)
    assert keeper_set.escrow_cid is not None
    reescrow = mv.key_bundle(keeper_set.escrow_cid, patient.address).escrow_of(old.index)
    assert reescrow is not None
    assert [s.keeper for s in reescrow.shares] == [k1.address, k3.address]
    new = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    lock_away(patient)

    assert mv.read_record(doctor, patient.address, old.index).data == LAB
    assert mv.read_record(doctor, patient.address, new.index).data == LAB
    receipts = wait_for(lambda: len(mv.releases(patient.address)) >= 4 and mv.releases(patient.address))
    assert {r.keeper for r in receipts} == {k1.address, k3.address}  # the removed keeper was never asked
    chain_id, directory = mv.chain.chain_id, mv.chain.keepers.address
    asked = KeyRequest(patient.address, old.index, doctor.address, k2.address, mv.now())
    with pytest.raises(Refusal) as refused:
        post_key_request(keepers.running[k2.address].url, sign_key_request(doctor, asked, chain_id, directory))
    assert refused.value.reason == "wrong-keeper"  # and refuses if asked directly


def test_keeper_refuses_before_window_opens_and_serves_after(
    mv: Medvault, three: list[Wallet], provider: Wallet, patient: Wallet, doctor: Wallet, admin: Wallet,
    clock: ChainClock,
) -> None:  # fmt: skip
    before = add(mv, provider, patient)
    start = clock.now() + DAY
    delegate_grant(mv, patient, admin, doctor, start, start + DAY)
    meanwhile = add(mv, provider, patient)  # written while the grant waits for its window
    assert refusal_codes(mv, doctor, before) == ["not-yet-valid"] * 3
    assert refusal_codes(mv, doctor, meanwhile) == ["not-yet-valid"] * 3
    clock.advance(DAY)
    assert mv.read_record(doctor, patient.address, before.index).data == LAB
    assert mv.read_record(doctor, patient.address, meanwhile.index).data == LAB


def test_grantee_cannot_force_unbounded_receipts(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], provider: Wallet, patient: Wallet,
    doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """M-7: distinct signed requests for one record within a receipt bucket cost the keeper one
    journal row and one receipt; past the rate limit, the reader is refused."""
    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    service = keepers.start(keeper, batch_seconds=3600, rate_limit=12)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    chain_id, directory, now = mv.chain.chain_id, mv.chain.keepers.address, mv.now()
    bodies = [
        sign_key_request(doctor, KeyRequest(patient.address, pointer.index, doctor.address, keeper.address, now - i),
                         chain_id, directory)
        for i in range(13)
    ]  # fmt: skip
    answers = [post_key_request(service.url, body) for body in bodies[:12]]
    assert len({a.release_id for a in answers}) == 1  # all accounted under one release
    assert len(service.journal()) == 1
    with pytest.raises(Refusal) as refused:
        post_key_request(service.url, bodies[12])
    assert (refused.value.reason, refused.value.status) == ("rate-limited", 429)
    assert service.flush() == 1
    assert len(mv.releases(patient.address)) == 1


def test_receipts_from_removed_keeper_are_kept(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], provider: Wallet, patient: Wallet,
    doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """M-7: the keeper released, then the patient removed it before its receipt was posted."""
    k1, k2, _ = keeper_wallets
    mv.set_keepers(patient, [k1.address], 1)
    service = keepers.start(k1, batch_seconds=3600)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    assert mv.read_record(doctor, patient.address, pointer.index).data == LAB
    mv.set_keepers(patient, [k2.address], 1)
    assert service.flush() == 1
    assert [row["rejected"] for row in service.journal()] == [None]
    [receipt] = mv.releases(patient.address)
    assert (receipt.keeper, receipt.grantee, receipt.index) == (k1.address, doctor.address, pointer.index)


def test_fabricated_receipt_is_refused(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], provider: Wallet, patient: Wallet,
    doctor: Wallet, stranger: Wallet, w3: Web3,
) -> None:  # fmt: skip
    """M-7: a keeper posts a receipt for a request the reader never signed, or dated ahead."""

    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    add(mv, provider, patient)
    chain_id, directory, now = mv.chain.chain_id, mv.chain.keepers.address, mv.now()
    request = KeyRequest(patient.address, 0, doctor.address, keeper.address, now)
    forged = sign_key_request(stranger, request, chain_id, directory)["signature"]  # not the doctor's
    genuine = sign_key_request(doctor, request, chain_id, directory)["signature"]
    block = w3.eth.block_number - 1
    fn = mv.chain.keepers.functions.recordReleases
    with refused("KeeperDirectoryNotSignedByReader"):
        mv.chain.transact(
            keeper, fn([(patient.address, 0, doctor.address, now, now, block, bytes.fromhex(forged[2:]))]), "forge"
        )
    with refused("KeeperDirectoryInvalidReceipt"):
        mv.chain.transact(
            keeper,
            fn([(patient.address, 0, doctor.address, now, 2**40 - 1, block, bytes.fromhex(genuine[2:]))]),
            "forge",
        )
    assert mv.releases(patient.address) == []


class KeySwappingRpc(StaleRpc):
    """A proxy that answers every question about the participant ``victim`` (its key hash, its
    registrations) as if about ``attacker``, and every other question truthfully."""

    def __init__(self, upstream: str, registry: str, victim: str, attacker: str) -> None:
        super().__init__(upstream)
        self.registry = registry.lower()
        self.victim, self.attacker = victim.lower().removeprefix("0x"), attacker.lower().removeprefix("0x")

    def forward(self, request: dict[str, Any]) -> Any:
        params = request.get("params") or []
        target = params[0] if params and isinstance(params[0], dict) else {}
        if str(target.get("to") or target.get("address") or "").lower() == self.registry:
            request = json.loads(json.dumps(request).replace(self.victim, self.attacker))
        return super().forward(request)


def test_primary_rpc_lying_about_the_readers_key_alone_is_caught_by_the_second_rpc(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], local_node: NodeInfo, provider: Wallet,
    patient: Wallet, doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """The keeper's first node answers every consent question truthfully but serves the provider's
    published key as the doctor's: the share would be sealed to a key the liar chose. With a
    second endpoint, the reader's key is part of the decision both must agree on."""
    from medvault.keeper.settled import Settlement

    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    pointer = add(mv, provider, patient)
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    liar = KeySwappingRpc(local_node.rpc_url, mv.chain.participants.address, doctor.address, provider.address)
    try:
        alone = keepers.start(keeper, rpc_url=liar.url)
        chain_id, directory = mv.chain.chain_id, mv.chain.keepers.address
        body = sign_key_request(
            doctor, KeyRequest(patient.address, pointer.index, doctor.address, keeper.address, mv.now()), chain_id,
            directory,
        )  # fmt: skip
        release = post_key_request(alone.url, body)  # alone, the keeper is fooled: the doctor cannot open it
        info = mv.context_of(pointer).release_info(doctor.address, keeper.address, release.x)
        with pytest.raises(DecryptionError):
            open_share(release.wrap, mv.published_keys(doctor), info, "the share")
        keepers.stop(keeper)
        checked = Settlement(confirmations=0, max_lag=None, second_rpc=local_node.rpc_url)
        service = keepers.start(keeper, rpc_url=liar.url, settlement=checked)
        pending = len(service.pending())
        assert refusal_codes(mv, doctor, pointer) == ["chain-disagrees"]
        assert len(service.pending()) == pending  # nothing released, nothing journaled
    finally:
        liar.close()


# -- the keeper's batched reads: a record found by (patient, index) and checked, a slow keeper -----


class LogTamperingRpc(StaleRpc):
    """A proxy whose answers to ``RecordAdded`` log queries pass through ``tamper`` (a list of logs
    in, a list out), and whose ``RecordAdded`` queries pass through ``ask`` (the topics list)."""

    def __init__(self, upstream: str, registry: str, topic: str) -> None:
        super().__init__(upstream)
        self.registry, self.topic = registry.lower(), topic
        self.tamper: Any = lambda logs: logs
        self.ask: Any = lambda topics: topics

    def forward(self, request: dict[str, Any]) -> Any:
        params = request.get("params") or []
        query = params[0] if request.get("method") == "eth_getLogs" and params else {}
        ours = (
            str(query.get("address", "")).lower() == self.registry and (query.get("topics") or [None])[0] == self.topic
        )
        if ours:
            request = {**request, "params": [{**query, "topics": self.ask(list(query["topics"]))}]}
        answer = super().forward(request)
        if ours and isinstance(answer.get("result"), list):
            answer["result"] = self.tamper(answer["result"])
        return answer


def _index_of(log: dict[str, Any]) -> int:
    return int(log["topics"][2], 16)


def test_keeper_refuses_a_record_whose_event_is_missing_duplicated_tampered_or_another(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], local_node: NodeInfo, provider: Wallet,
    patient: Wallet, doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """The keeper reads only the record's event and the one before it; a node that drops,
    repeats, alters or swaps them is caught by the hash chain, as when the whole log was read."""
    keeper = keeper_wallets[0]
    mv.set_keepers(patient, [keeper.address], 1)
    first, second, third = (add(mv, provider, patient) for _ in range(3))
    delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
    topic = str(mv.chain.records.events.RecordAdded().topic)
    proxy = LogTamperingRpc(local_node.rpc_url, mv.chain.records.address, topic)
    try:
        keepers.start(keeper, rpc_url=proxy.url)
        for pointer in (first, second, third):
            assert mv.release_key(doctor, pointer) == mv.open_key(patient, pointer)  # an honest node: released

        def flipped(log: dict[str, Any], at: int = 65) -> dict[str, Any]:
            """``log`` with one hex digit of its data changed: by default the author's seq (the
            first word), at 129 its record hash (the second)."""
            data = log["data"]
            return {**log, "data": data[:at] + ("1" if data[at] != "1" else "2") + data[at + 1 :]}

        attacks = {
            "its event dropped": lambda logs: [log for log in logs if _index_of(log) != second.index],
            "the event before it dropped": lambda logs: [log for log in logs if _index_of(log) != first.index],
            "its event twice": lambda logs: logs + [log for log in logs if _index_of(log) == second.index],
            "its event altered": lambda logs: [flipped(log) if _index_of(log) == second.index else log for log in logs],
            "the hash before it altered": lambda logs: [
                flipped(log, 129) if _index_of(log) == first.index else log for log in logs
            ],
        }
        for attack, tamper in attacks.items():
            proxy.tamper = tamper
            assert refusal_codes(mv, doctor, second) == ["integrity"], attack
        proxy.tamper = lambda logs: logs

        # Asked for record 1, the node answers with records 1 and 2: the keeper takes no event it did not ask for.
        proxy.ask = lambda topics: [*topics[:2], ["0x" + f"{i:064x}" for i in (second.index, third.index)]]
        assert refusal_codes(mv, doctor, second) == ["integrity"]
        proxy.ask = lambda topics: topics

        # The last record is checked against the chain's head too: one whose hash was made to
        # match altered fields (both recomputed by the liar) is caught there.
        before = bytes.fromhex(second.record_hash.removeprefix("0x"))

        def forged(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [_rehashed(flipped(log), patient.address, before) if _index_of(log) == third.index else log
                    for log in logs]  # fmt: skip

        proxy.tamper = forged
        assert refusal_codes(mv, doctor, third) == ["integrity"]
        proxy.tamper = lambda logs: logs
        assert mv.release_key(doctor, third) == mv.open_key(patient, third)
        assert refusal_codes(mv, doctor, _beyond(third)) == ["unknown-record"]
    finally:
        proxy.close()
    assert {r.index for r in mv.releases(patient.address)} <= {first.index, second.index, third.index}


def _rehashed(log: dict[str, Any], patient: str, previous: bytes) -> dict[str, Any]:
    """``log`` (a RecordAdded) with its record hash recomputed from its (altered) fields: a
    liar's consistent forgery, which only the head can tell."""
    from eth_abi.abi import decode, encode

    from medvault.formats.recordhash import record_hash

    types = ["uint64", "bytes32", "uint8", "uint64", "bytes32", "bytes", "bytes"]
    seq, _, category, timestamp, content, cid, keys = decode(types, bytes.fromhex(log["data"][2:]))
    author = "0x" + log["topics"][3][-40:]
    digest = record_hash(previous, patient, _index_of(log), author, seq, category, timestamp, content, cid, keys)
    data = encode(types, [seq, digest, category, timestamp, content, cid, keys])
    return {**log, "data": "0x" + data.hex()}


def _beyond(pointer: RecordPointer) -> RecordPointer:
    """``pointer`` as if it were the record after it, which the log does not hold."""
    from dataclasses import replace

    return replace(pointer, index=pointer.index + 1)


class GatedRpc(StaleRpc):
    """A proxy that holds every block read while its gate is shut: a keeper whose node hangs."""

    def __init__(self, upstream: str) -> None:
        import threading

        super().__init__(upstream)
        self.gate, self.held = threading.Event(), threading.Event()
        self.gate.set()

    def forward(self, request: dict[str, Any]) -> Any:
        if request.get("method") == "eth_getBlockByNumber" and not self.gate.is_set():
            self.held.set()
            self.gate.wait(60)
        return super().forward(request)


def test_a_slow_keeper_does_not_hold_the_release_when_the_others_answer(
    mv: Medvault, keepers: Keepers, keeper_wallets: list[Wallet], local_node: NodeInfo, provider: Wallet,
    patient: Wallet, doctor: Wallet, admin: Wallet,
) -> None:  # fmt: skip
    """Two of three: the reader has the key as soon as two keepers release, while the third is
    still waiting for its node; that keeper's answer, when it comes, changes nothing."""
    slow, *quick = keeper_wallets
    mv.set_keepers(patient, [k.address for k in keeper_wallets], 2)
    gated = GatedRpc(local_node.rpc_url)
    try:
        keepers.start(slow, rpc_url=gated.url)
        for wallet in quick:
            keepers.start(wallet)
        pointer = add(mv, provider, patient)
        delegate_grant(mv, patient, admin, doctor, mv.now(), mv.now() + DAY)
        gated.gate.clear()
        assert mv.read_record(doctor, patient.address, pointer.index).data == LAB
        assert gated.held.is_set()  # the slow keeper was asked...
        assert not gated.gate.is_set()  # ...and is still waiting: the read did not wait for it
        gated.gate.set()
        receipts = wait_for(lambda: len(mv.releases(patient.address)) >= 3 and mv.releases(patient.address))
        assert {r.keeper for r in receipts} == {k.address for k in keeper_wallets}  # it released all the same
    finally:
        gated.gate.set()
        gated.close()
