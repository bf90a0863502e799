"""Bad-input rows: reads of a bad record, each refused with a BadRecordError that names the
patient, the index and what is wrong, leaving chain, pins and home exactly as they were; and
the good records around them read all the same.

One deployment for the module (``badrecords.bad_world``): a patient's log with a good record,
then one bad record of each kind each followed by a good one, and a doctor granted with the
keys shared. Pointer bytes that are not a usable CID are refused on chain; tests/unit/test_pointers.py
feeds them through fake events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from badrecords import KINDS, World, bad_world
from data import LAB
from unchanged import unchanged

from medvault.errors import BadRecordError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from web3 import Web3

    from medvault.dev.node import NodeInfo

pytestmark = pytest.mark.integration

# name: (write_pointer's arguments, words the refusal holds)
# The kinds whose record key cannot be opened at all (the key bundle cannot be read).
UNOPENABLE = {name for name in KINDS if name.endswith("-keys") or "key-bundle" in name}


@pytest.fixture(scope="module")
def world(local_node: NodeInfo, w3: Web3, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with bad_world(local_node, w3, tmp_path_factory.mktemp("contain") / "home", KINDS) as built:
        yield built


def read_by_patient(w: World, name: str) -> object:
    return w.mv.read_record(w.patient, w.patient.address, w.bad[name])


def read_by_grantee(w: World, name: str) -> object:
    return w.mv.read_record(w.doctor, w.patient.address, w.bad[name])


def open_key(w: World, name: str) -> object:
    return w.mv.open_key(w.patient, w.mv.records(w.patient.address)[w.bad[name]])


ACTIONS: dict[str, Callable[[World, str], object]] = {
    "patient-reads": read_by_patient,
    "grantee-reads": read_by_grantee,
    "patient-opens-key": open_key,
}
ROWS = [(action, name) for action in ("patient-reads", "grantee-reads") for name in KINDS]
ROWS += [("patient-opens-key", name) for name in sorted(UNOPENABLE)]


@pytest.mark.parametrize(("action", "kind"), ROWS, ids=[f"{kind}:{action}" for action, kind in ROWS])
def test_a_bad_record_is_refused_by_name(world: World, action: str, kind: str) -> None:
    words = KINDS[kind][1]
    index = world.bad[kind]
    expected = f"record {index} of {world.patient.address} cannot be used"
    with unchanged(world.w3, world.mv.ipfs, world.home), pytest.raises(BadRecordError, match=expected) as caught:
        ACTIONS[action](world, kind)
    assert words in str(caught.value)
    assert (caught.value.patient, caught.value.index) == (world.patient.address, index)


def test_the_good_records_around_them_read(world: World) -> None:
    with unchanged(world.w3, world.mv.ipfs, world.home):
        for index in world.good:
            assert world.mv.read_record(world.patient, world.patient.address, index).data == LAB
            assert world.mv.read_record(world.doctor, world.patient.address, index).data == LAB
