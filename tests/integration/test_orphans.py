"""`medvault gc` on a node of its own (unpinning on the session's shared Kubo would drop other
tests' objects): what a killed write or seeding run left pinned is listed and unpinned, what the
chain references is kept, directories by their files, and `verify` stays clean."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from dags import hostile_pointer
from data import DAY, LAB, LABS, MEDS
from helpers import add, new_wallet

from medvault.accounts import Keystore
from medvault.chain import Chain, connect, deploy
from medvault.chain.artifacts import load_artifacts
from medvault.cli import cli
from medvault.client import Medvault
from medvault.dev.node import LocalNode, free_port
from medvault.dev.seed import plan_seed, run_seed
from medvault.ipfs import IpfsClient
from medvault.model import Category, GrantTerms, Purpose, Role
from medvault.orphans import find_orphans, unpin_orphans
from medvault.verify import verify_patient

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from click.testing import Result

    from medvault.accounts import Wallet
    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration


@dataclass
class World:
    mv: Medvault
    node: NodeInfo
    home: Path
    patient: Wallet
    seeded: Wallet  # a patient whose records were seeded as batches (their bytes are stand-ins)
    provider: Wallet
    seed: list[Wallet]  # patients of a real seeding run (4 patients of 2 records: one batch directory)
    stray: str  # one object pinned by a write whose transaction never landed
    killed: str  # a seeding batch directory whose transaction never landed
    full: str  # a batch directory every file of which a pointer names
    partial: str  # a batch directory one file of which no pointer names
    unnamed: str  # that file

    def gc(self, *args: str) -> Result:
        base = ["--home", str(self.home), "--rpc-url", self.node.rpc_url, "--ipfs-api", self.node.ipfs_api]
        return CliRunner().invoke(cli, [*base, "gc", *args])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    state = tmp_path_factory.mktemp("gc")
    node = LocalNode(state / "node", chain_port=free_port(), ipfs_port=free_port())
    info = node.up()
    try:
        w3, home = connect(info.rpc_url), state / "home"
        keystore = Keystore(home)
        admin, patient, seeded, provider, doctor, keeper = (
            new_wallet(keystore, w3, n) for n in ("admin", "patient", "seeded", "provider", "doctor", "keeper")
        )
        deployment, _ = deploy(w3, admin, home)
        ipfs = IpfsClient(info.ipfs_api)
        mv = Medvault(Chain(w3, deployment, load_artifacts()), ipfs)
        for wallet in (patient, seeded, provider, doctor, keeper):
            mv.register(wallet)
        mv.accredit(admin, provider.address, Role.PROVIDER)
        for wallet in (patient, seeded):
            mv.set_writer(wallet, provider.address, frozenset(Category))
        add(mv, provider, patient)
        add(mv, provider, patient, MEDS, Category.MEDICATIONS)
        mv.set_keepers(patient, [keeper.address], 1)  # a re-escrow bundle (KeepersChosen)
        mv.grant(patient, patient.address, doctor.address, GrantTerms(LABS, Purpose.TREAT, mv.now(), mv.now() + DAY))
        stray = ipfs.add(b"a record whose transaction never landed")
        killed, _ = ipfs.add_wrapped([b"killed 1", b"killed 2", b"killed bundle"])
        full, (f1, f2) = ipfs.add_wrapped([LAB + b" ", b"bundle of the full batch"])
        hostile_pointer(mv, provider, seeded.address, f1, hashlib.sha256(LAB + b" ").digest(), f2)
        partial, (p1, p2, p3) = ipfs.add_wrapped([LAB + b"  ", b"bundle of the partial batch", b"never sent"])
        hostile_pointer(mv, provider, seeded.address, p1, hashlib.sha256(LAB + b"  ").digest(), p2)
        plan = plan_seed("gc", 4, 2)
        run_seed(mv, info.rpc_url, plan)
        yield World(
            mv,
            info,
            home,
            patient,
            seeded,
            provider,
            [p.wallet for p in plan.patients],
            stray,
            killed,
            full,
            partial,
            p3,
        )
        ipfs.close()
    finally:
        node.down()


def test_gc_lists_the_orphans_and_keeps_what_the_chain_references(world: World) -> None:
    report = find_orphans(world.mv.chain, world.mv.ipfs)
    assert {p.cid for p in report.orphans} == {world.stray, world.killed}
    killed = next(p for p in report.orphans if p.cid == world.killed)
    assert (killed.files, killed.referenced) == (3, 0)
    [partial] = report.partial
    assert (partial.cid, partial.files, partial.referenced, partial.unreferenced) == (
        world.partial, 3, 2, (world.unnamed,)
    )  # fmt: skip
    full = next(p for p in report.referenced if p.cid == world.full)
    assert (full.files, full.referenced) == (2, 2)
    [seeding] = [p for p in report.referenced if p.files and p.cid != world.full]
    assert (seeding.files, seeding.referenced) == (4 * (2 + 1), 12)  # each patient's records and bundle
    # 2 records (ciphertext and bundle each), the re-escrow, the grant's KeysShared bundle, 2 batches.
    assert len(report.referenced) == 2 * 2 + 1 + 1 + 2
    assert report.pins == len(world.mv.ipfs.pins())

    listed = world.gc()
    assert listed.exit_code == 0, listed.output
    assert f"orphan    {world.killed} (a directory of 3 files, 0 referenced on chain)" in listed.output
    assert f"orphan    {world.stray}\n" in listed.output
    assert f"kept      {world.partial} (a directory of 3 files, 2 referenced on chain): kept for those" in listed.output
    assert "2 orphaned; 0 unpinned (unpin them with --unpin)" in listed.output
    assert world.mv.ipfs.pins() >= {world.stray, world.killed}  # listing unpins nothing


def test_gc_unpin_drops_the_orphans_and_verify_stays_clean(world: World) -> None:
    before = world.mv.ipfs.pins()
    seeded_before = verify_patient(world.mv, world.seeded.address).findings
    asked = world.gc("--unpin")
    assert asked.exit_code == 2
    assert "add --yes to unpin without a prompt" in asked.output
    assert world.mv.ipfs.pins() == before

    result = world.gc("--unpin", "--yes", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert sorted(document["unpinned"]) == sorted([world.stray, world.killed])
    assert world.mv.ipfs.pins() == before - {world.stray, world.killed}
    assert [p["cid"] for p in document["partlyReferenced"]] == [world.partial]

    report = verify_patient(world.mv, world.patient.address)
    assert report.ok, report.findings
    assert report.count == 2
    # The seeded records' stand-in bytes are no key bundles, but nothing they name went missing.
    assert verify_patient(world.mv, world.seeded.address).findings == seeded_before
    assert {f.kind for f in seeded_before} == {"malformed"}
    for wallet in world.seed:
        assert verify_patient(world.mv, wallet.address).ok
    record = world.mv.read_record(world.patient, world.patient.address, 0)
    assert record.data == LAB
    again = json.loads(world.gc("--json").stdout)
    assert (again["orphans"], again["unpinned"]) == ([], [])


class Killed(BaseException):
    """The seeding process dies: after its batch is in IPFS, before its transaction is sent."""


def test_a_killed_seeding_run_leaves_nothing_behind_once_gc_has_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan, ipfs = plan_seed("killed", 3, 2), world.mv.ipfs
    before = {p.cid for p in find_orphans(world.mv.chain, ipfs).orphans}
    added: list[str] = []
    add_wrapped = ipfs.add_wrapped

    def add_then_die(blobs: list[bytes]) -> tuple[str, list[str]]:
        added.append(add_wrapped(blobs)[0])
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ipfs, "add_wrapped", add_then_die)
        with pytest.raises(Killed):
            run_seed(world.mv, world.node.rpc_url, plan)
    [batch] = added
    new = [(p.cid, p.files, p.referenced) for p in find_orphans(world.mv.chain, ipfs).orphans if p.cid not in before]
    assert new == [(batch, 9, 0)]  # 3 patients' 2 records and a key bundle each, none on chain

    run_seed(world.mv, world.node.rpc_url, plan)  # the run again: its records sealed afresh, new CIDs
    result = world.gc("--unpin", "--yes", "--json")
    assert set(json.loads(result.stdout)["unpinned"]) == before | {batch}
    assert find_orphans(world.mv.chain, ipfs).orphans == []
    for patient in plan.patients:
        assert verify_patient(world.mv, patient.wallet.address).ok


def test_an_object_referenced_after_the_listing_is_not_unpinned(world: World) -> None:
    ipfs = world.mv.ipfs
    late = ipfs.add(b"a record whose transaction lands while the prompt waits")
    report = find_orphans(world.mv.chain, ipfs)
    assert late in {p.cid for p in report.orphans}
    hostile_pointer(world.mv, world.provider, world.seeded.address, late, hashlib.sha256(b"").digest(), late)
    unpinned = unpin_orphans(world.mv.chain, ipfs, report)
    assert late not in unpinned
    assert late in ipfs.pins()
