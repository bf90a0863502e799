"""CID parsing and offline CID computation (no node needed)."""

from __future__ import annotations

import pytest

from medvault.errors import CidMismatchError, InvalidCidError
from medvault.ipfs import IpfsClient, cid_from_bytes, cid_to_bytes, compute_cid, parse_cid

HELLO_CID = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"  # `ipfs add --cid-version=1` of b"hello\n"


def test_compute_cid_matches_kubo_for_a_small_file() -> None:
    assert compute_cid(b"hello\n") == HELLO_CID


def test_large_payloads_get_a_dag_pb_root() -> None:
    cid = parse_cid(compute_cid(b"\x00" * (256 * 1024 + 1)))
    assert cid.codec.name == "dag-pb"


def test_binary_form_round_trips() -> None:
    raw = cid_to_bytes(HELLO_CID)

    assert len(raw) == 36
    assert cid_from_bytes(raw) == HELLO_CID


@pytest.mark.parametrize("value", ["", "not-a-cid", "bafkrei", b"\x01\x55", "Qm" + "1" * 10])
def test_malformed_cids_are_rejected_with_the_reason(value: str | bytes) -> None:
    with pytest.raises(InvalidCidError, match="not a valid CID"):
        parse_cid(value)


def test_verify_accepts_matching_bytes_and_names_the_mismatch() -> None:
    IpfsClient.verify(HELLO_CID, b"hello\n")

    with pytest.raises(CidMismatchError, match=HELLO_CID):
        IpfsClient.verify(HELLO_CID, b"hello!\n")
