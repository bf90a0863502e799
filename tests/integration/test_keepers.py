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
from data import DAY, LAB, LABS, MEDS
from helpers import add, new_wallet, wait_for

from medvault.chain import Chain, connect
from medvault.chain.artifacts import load_artifacts
from medvault.client import Medvault
from medvault.dev.node import free_port
from medvault.errors import AccessDeniedError, KeeperRefusedError
from medvault.ipfs import IpfsClient
from medvault.keeper import KeeperService
from medvault.keeper.protocol import KEY_SHARES_PATH, KeyRequest, Refusal, post_key_request, sign_key_request
from medvault.model import Category, DelegateTerms, GrantTerms, Purpose

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from helpers import ChainClock
    from web3 import Web3

    from medvault.accounts import Keystore, Wallet
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

    def start(self, wallet: Wallet, *, batch_seconds: float = 0.2) -> KeeperService:
        port = self.ports.setdefault(wallet.address, free_port())
        ipfs = IpfsClient(self.node.ipfs_api)
        self._clients.append(ipfs)
        client = Medvault(Chain(connect(self.node.rpc_url), self.mv.chain.deployment, load_artifacts()), ipfs)
        service = KeeperService(
            wallet, client, self.tmp_path / "keepers" / wallet.name, port=port,
            batch_seconds=batch_seconds, announce=f"http://127.0.0.1:{port}",
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
    wallet._pairs.clear()


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
        clock.advance(1)  # a new issuedAt: a new request, a new release
    pending = service.pending()
    assert len(pending) == 3
    keepers.stop(keeper, flush=False)  # as if killed: three releases journaled, no receipt
    assert mv.releases(patient.address) == []

    # The crash came right after the first receipt was mined, before it was marked.
    rid, who, index, grantee, at = pending[0]
    fn = mv.chain.keepers.functions.recordReleases([(who, index, grantee, at, bytes.fromhex(rid[2:]))])
    mv.chain.transact(keeper, fn, "receipt mined before the crash")

    service = keepers.start(keeper, batch_seconds=0.2)
    wait_for(lambda: not service.pending())
    receipts = mv.releases(patient.address)
    assert sorted(r.release_id for r in receipts) == sorted(row[0] for row in pending)  # each exactly once
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
    context = mv.record_context(patient.address, pointer.index)
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
