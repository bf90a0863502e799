"""The client's data: category and purpose parsing, scope masks, grant windows, JSON shapes."""

from __future__ import annotations

import itertools

import pytest
from eth_utils.crypto import keccak

from medvault.cids import cid_to_bytes, compute_cid
from medvault.crypto import KeySuite
from medvault.errors import ConfigurationError
from medvault.model import (
    ALL_CATEGORIES,
    AccessRequest,
    Category,
    Grant,
    KeeperSet,
    KeyInfo,
    Purpose,
    RecordPointer,
    RequestStatus,
    Role,
    categories_of,
    scope_mask,
)

PATIENT = "0x" + "11" * 20
GRANTEE = "0x" + "22" * 20
CID = compute_cid(b"record")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("laboratory", Category.LABORATORY), ("NOTES", Category.NOTES), ("Imaging", Category.IMAGING),
     ("2", Category.MEDICATIONS), (4, Category.IMMUNIZATIONS), (0, Category.LABORATORY)],
)  # fmt: skip
def test_category_parses_names_and_numbers(value: str | int, expected: Category) -> None:
    assert Category.parse(value) is expected


@pytest.mark.parametrize("value", ["6", 7, "labs", "", "-1"])
def test_unknown_category_names_the_choices(value: str | int) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown record category .*\(one of: laboratory, imaging, .*notes\)"):
        Category.parse(value)


def test_scope_mask_and_categories_of_round_trip_every_subset() -> None:
    for n in range(len(Category) + 1):
        for subset in itertools.combinations(Category, n):
            mask = scope_mask(frozenset(subset))
            assert 0 <= mask < 1 << len(Category)
            assert categories_of(mask) == frozenset(subset)
    assert scope_mask(frozenset(Category)) == 0x3F
    assert scope_mask([Category.LABORATORY, Category.LABORATORY, Category.NOTES]) == 0b100001  # repeats count once


def test_categories_of_ignores_bits_above_the_last_category() -> None:
    assert categories_of(0xFF) == frozenset(Category)


def test_purpose_parses_its_code_in_any_case() -> None:
    assert Purpose.parse("treat") is Purpose.TREAT
    assert Purpose.parse("HRESCH") is Purpose.HRESCH
    assert Purpose.ETREAT.display == "emergency treatment"
    assert all(p.display for p in Purpose)


def test_unknown_purpose_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown purpose 'research' \(one of: TREAT, ETREAT, HRESCH"):
        Purpose.parse("research")


def test_role_id_is_the_keccak_of_its_name() -> None:
    assert Role.PROVIDER.role_id == keccak(text="PROVIDER")
    assert Role.RESEARCHER.role_id != Role.PROVIDER.role_id


def grant(**fields: object) -> Grant:
    values: dict[str, object] = {
        "patient": PATIENT, "grantee": GRANTEE, "scopes": frozenset({Category.NOTES, Category.LABORATORY}),
        "purpose": Purpose.TREAT, "valid_from": 100, "valid_until": 200, "emergency": False,
    }  # fmt: skip
    return Grant(**{**values, **fields})  # type: ignore[arg-type]


def test_grant_is_active_from_its_start_until_before_its_end() -> None:
    g = grant()
    assert [g.active_at(t) for t in (99, 100, 199, 200)] == [False, True, True, False]
    assert not grant(valid_from=200, valid_until=200).active_at(200)


def test_grant_json() -> None:
    assert grant(emergency=True).to_json() == {
        "patient": PATIENT, "grantee": GRANTEE, "scopes": ["laboratory", "notes"], "purpose": "TREAT",
        "valid_from": 100, "valid_until": 200, "emergency": True, "kind": "patient", "appointment": 0,
    }  # fmt: skip


def request(study_id: bytes) -> AccessRequest:
    return AccessRequest(
        patient=PATIENT, researcher=GRANTEE, scopes=frozenset({Category.IMAGING}), purpose=Purpose.HRESCH,
        duration=3600, requested_at=1_700_000_000, study_id=study_id, request_id=0xABC,
        status=RequestStatus.APPROVED,
    )  # fmt: skip


def test_request_json_shows_a_text_study_id_as_text() -> None:
    assert request(b"STUDY-1".ljust(32, b"\0")).to_json() == {
        "request_id": "0xabc", "patient": PATIENT, "researcher": GRANTEE, "scopes": ["imaging"],
        "purpose": "HRESCH", "duration": 3600, "requested_at": 1_700_000_000, "study_id": "STUDY-1",
        "status": "approved",
    }  # fmt: skip


def test_request_json_shows_an_empty_study_id_as_hex() -> None:
    assert request(bytes(32)).to_json()["study_id"] == "0x" + "00" * 32


def test_request_tuple_is_what_the_contract_hashes() -> None:
    study = b"S".ljust(32, b"\0")
    assert request(study).as_tuple() == (PATIENT, GRANTEE, 0b10, int(Purpose.HRESCH), 3600, 1_700_000_000, study)
    assert request(study).status is RequestStatus.APPROVED


def test_record_pointer_json_names_the_category() -> None:
    pointer = RecordPointer(
        patient=PATIENT, index=3, author=GRANTEE, seq=1, record_hash="0x" + "ab" * 32, category=Category.CONDITIONS,
        timestamp=5, content_hash="0x" + "cd" * 32, raw_cid=cid_to_bytes(CID), raw_keys_cid=b"\x12",
        tx_hash="0x" + "ef" * 32, block_number=9,
    )  # fmt: skip
    as_json = pointer.to_json()
    assert as_json["category"] == "conditions"
    assert (as_json["cid"], as_json["keys_cid"]) == (CID, "0x12")  # an unusable one as the chain holds it
    assert as_json["problem"] == pointer.problem
    assert set(as_json) == {"patient", "index", "author", "seq", "record_hash", "category", "timestamp",
                            "content_hash", "cid", "keys_cid", "tx_hash", "block_number", "disputed",
                            "hidden", "problem"}  # fmt: skip


def test_keeper_set_json() -> None:
    keepers = KeeperSet(PATIENT, [GRANTEE], 1, {GRANTEE: None})
    assert keepers.to_json() == {"patient": PATIENT, "keepers": [GRANTEE], "threshold": 1, "urls": {GRANTEE: None}}


@pytest.mark.parametrize(("epoch", "matches"), [(0, True), (2, True), (None, False)])
def test_key_info_matches_the_chain_only_with_an_epoch(epoch: int | None, matches: bool) -> None:
    info = KeyInfo(PATIENT, KeySuite.X25519, epoch, b"\1\2", registered=True)
    assert info.matches_chain is matches
    assert info.to_json() == {"account": PATIENT, "suite": "X25519", "epoch": epoch, "public_key": "0x0102",
                              "registered": True, "matches_chain": matches, "legacy": False}  # fmt: skip


def test_all_categories_covers_every_category() -> None:
    assert ALL_CATEGORIES == 0x3F == scope_mask(list(Category))
    assert categories_of(ALL_CATEGORIES) == frozenset(Category)
