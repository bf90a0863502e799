"""The event index's derivation, without a chain: hand-built decoded events applied to an
in-memory database, read back from the derived tables (records, grants, requests, delegations),
and the rewind after a reorg."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_utils.address import to_checksum_address

from medvault.cids import cid_to_bytes, compute_cid
from medvault.errors import IntegrityError
from medvault.formats.recordhash import record_hash_of_event
from medvault.index import DecodedEvent, drop_above, insert_event, open_database
from medvault.model import ALL_CATEGORIES, Category, Purpose, RequestStatus, scope_mask

if TYPE_CHECKING:
    import sqlite3

PATIENT = to_checksum_address("0x" + "11" * 20)
DOCTOR = to_checksum_address("0x" + "22" * 20)
PROVIDER = to_checksum_address("0x" + "33" * 20)
RESEARCHER = to_checksum_address("0x" + "44" * 20)
GUARDIAN = to_checksum_address("0x" + "55" * 20)
LABS = scope_mask({Category.LABORATORY})
START, END = 1_700_000_000, 1_700_086_400


def timestamp_of(block: int) -> int:
    return START + 12 * block


class Log:
    """Events applied in the order written, each in its own position (block, log index)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.cur = db.cursor()
        self.positions: dict[int, int] = {}

    def emit(self, block: int, event: str, contract: str = "ConsentManager", **args: Any) -> int:
        log_index = self.positions.get(block, 0)
        self.positions[block] = log_index + 1
        tx = f"0x{block:032x}{log_index:032x}"
        e = DecodedEvent(contract, event, args, block, f"0x{block:064x}", log_index, tx)
        return self.replay(e)

    def replay(self, e: DecodedEvent) -> int:
        return insert_event(self.cur, e, timestamp_of(e.block), sender=PATIENT)


@pytest.fixture
def db() -> sqlite3.Connection:
    return open_database(":memory:")


@pytest.fixture
def log(db: sqlite3.Connection) -> Log:
    return Log(db)


def grants(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    return {row["grantee"]: dict(row) for row in db.execute("SELECT * FROM grants WHERE patient = ?", (PATIENT,))}


def requests(db: sqlite3.Connection) -> dict[int, tuple[RequestStatus, int | None]]:
    rows = db.execute("SELECT request_id, status, decided_block FROM requests")
    return {int(r[0], 16): (RequestStatus(r[1]), r[2]) for r in rows}


def delegations(db: sqlite3.Connection) -> dict[str, int]:
    return {r["delegate"]: r["appointed"] for r in db.execute("SELECT delegate, appointed FROM delegations")}


def record_args(index: int, previous: bytes, record_hash: bytes | None = None, **fields: Any) -> dict[str, Any]:
    """A ``RecordAdded``'s arguments, with ``fields`` changed, hashed after ``previous`` (unless
    ``record_hash`` is given)."""
    args: dict[str, Any] = {
        "patient": PATIENT, "index": index, "author": PROVIDER, "seq": index, "category": int(Category.LABORATORY),
        "timestamp": timestamp_of(index + 1), "contentHash": bytes(32),
        "cid": cid_to_bytes(compute_cid(b"record" + bytes([index]))), "keysCid": cid_to_bytes(compute_cid(b"keys")),
        **fields,
    }  # fmt: skip
    args["recordHash"] = record_hash or record_hash_of_event(previous, PATIENT, args)
    return args


def request(log: Log, block: int, request_id: int, scopes: int = LABS) -> None:
    log.emit(
        block, "AccessRequested", requestId=request_id, patient=PATIENT, researcher=RESEARCHER, scopes=scopes,
        purpose=int(Purpose.HRESCH), duration=7 * 86_400, requestedAt=timestamp_of(block),
        studyId=b"STUDY-1".ljust(32, b"\0"),
    )  # fmt: skip


def grant(log: Log, block: int, grantee: str = DOCTOR, scopes: int = LABS, until: int = END) -> None:
    log.emit(
        block, "AccessGranted", patient=PATIENT, grantee=grantee, scopes=scopes, purpose=int(Purpose.TREAT),
        validFrom=START, validUntil=until,
    )  # fmt: skip


def test_a_new_database_has_every_table() -> None:
    db = open_database(":memory:")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"meta", "blocks", "events", "records", "grants", "requests", "delegations"}


def test_events_are_stored_once_per_position(db: sqlite3.Connection, log: Log) -> None:
    first = DecodedEvent("ConsentManager", "DelegateAppointed", {"patient": PATIENT, "delegate": GUARDIAN},
                         5, "0x" + "05" * 32, 0, "0x" + "aa" * 32)  # fmt: skip
    assert log.replay(first) == 1
    assert log.replay(first) == 0
    other = DecodedEvent("ConsentManager", "DelegateRemoved", {"patient": PATIENT, "delegate": GUARDIAN},
                         5, "0x" + "05" * 32, 0, "0x" + "aa" * 32)  # fmt: skip
    assert log.replay(other) == 0  # the position is taken: nothing of it is derived
    assert delegations(db) == {GUARDIAN: 1}
    row = db.execute("SELECT sender, timestamp, contract, event, patient, args FROM events").fetchone()
    assert tuple(row) == (PATIENT, timestamp_of(5), "ConsentManager", "DelegateAppointed", PATIENT,
                          f'{{"patient":"{PATIENT}","delegate":"{GUARDIAN}"}}')  # fmt: skip


def test_a_registration_is_filed_under_the_account(db: sqlite3.Connection, log: Log) -> None:
    log.emit(1, "ParticipantRegistered", "ParticipantRegistry", account=DOCTOR, keyHash=b"\1" * 32,
             encryptionKey=b"\2" * 32)  # fmt: skip
    assert db.execute("SELECT patient, args FROM events").fetchone()[0] == DOCTOR
    assert "0x" + "01" * 32 in db.execute("SELECT args FROM events").fetchone()[0]  # bytes stored as hex


def test_records_continue_the_hash_chain(db: sqlite3.Connection, log: Log) -> None:
    first = record_args(0, bytes(32))
    second = record_args(1, first["recordHash"], category=int(Category.MEDICATIONS))
    log.emit(1, "RecordAdded", "RecordRegistry", **first)
    log.emit(2, "RecordAdded", "RecordRegistry", **second)

    rows = db.execute("SELECT idx, author, category, cid, keys_cid, record_hash, block FROM records ORDER BY idx")
    assert [tuple(r) for r in rows] == [
        (0, PROVIDER, int(Category.LABORATORY), first["cid"], first["keysCid"], "0x" + first["recordHash"].hex(), 1),
        (1, PROVIDER, int(Category.MEDICATIONS), second["cid"], second["keysCid"], "0x" + second["recordHash"].hex(),
         2),
    ]  # fmt: skip


def test_a_record_whose_hash_does_not_match_its_fields_is_refused(log: Log) -> None:
    with pytest.raises(IntegrityError, match="record 0 of .*: its hash does not match its fields"):
        log.emit(1, "RecordAdded", "RecordRegistry", **record_args(0, bytes(32), record_hash=b"\xff" * 32))


def test_a_record_before_its_predecessor_is_refused(log: Log) -> None:
    with pytest.raises(IntegrityError, match="record 1 arrived before record 0"):
        log.emit(1, "RecordAdded", "RecordRegistry", **record_args(1, bytes(32)))


def test_a_later_grant_replaces_the_earlier_and_a_revoke_marks_it(db: sqlite3.Connection, log: Log) -> None:
    grant(log, 1)
    grant(log, 2, scopes=scope_mask(frozenset(Category)), until=END + 1)
    row = grants(db)[DOCTOR]
    assert (row["scopes"], row["valid_until"], row["revoked"], row["block"]) == (ALL_CATEGORIES, END + 1, 0, 2)

    log.emit(3, "AccessRevoked", patient=PATIENT, grantee=DOCTOR)
    row = grants(db)[DOCTOR]
    assert (row["revoked"], row["block"], row["log_index"]) == (1, 3, 0)

    grant(log, 4)
    assert grants(db)[DOCTOR]["revoked"] == 0


def test_revoking_what_was_never_granted_derives_nothing(db: sqlite3.Connection, log: Log) -> None:
    log.emit(1, "AccessRevoked", patient=PATIENT, grantee=DOCTOR)
    assert grants(db) == {}


def test_an_approved_request_becomes_a_grant_from_the_approval_time(db: sqlite3.Connection, log: Log) -> None:
    request(log, 1, 7)
    assert requests(db) == {7: (RequestStatus.PENDING, None)}

    log.emit(3, "RequestApproved", requestId=7, patient=PATIENT, researcher=RESEARCHER, validUntil=END)

    assert requests(db) == {7: (RequestStatus.APPROVED, 3)}
    row = grants(db)[RESEARCHER]
    assert (row["scopes"], row["purpose"], row["valid_from"], row["valid_until"], row["emergency"]) == (
        LABS, int(Purpose.HRESCH), timestamp_of(3), END, 0,
    )  # fmt: skip
    stored = db.execute("SELECT study_id, duration, requested_at FROM requests").fetchone()
    assert tuple(stored) == ("0x" + b"STUDY-1".ljust(32, b"\0").hex(), 7 * 86_400, timestamp_of(1))


def test_a_denied_request_grants_nothing(db: sqlite3.Connection, log: Log) -> None:
    request(log, 1, 8)
    log.emit(2, "RequestDenied", requestId=8, patient=PATIENT, researcher=RESEARCHER)
    assert requests(db) == {8: (RequestStatus.DENIED, 2)}
    assert grants(db) == {}


def test_approving_an_unknown_request_is_an_integrity_error(log: Log) -> None:
    with pytest.raises(IntegrityError, match="approved in block 2 but never requested"):
        log.emit(2, "RequestApproved", requestId=9, patient=PATIENT, researcher=RESEARCHER, validUntil=END)


def test_emergency_access_covers_every_category(db: sqlite3.Connection, log: Log) -> None:
    log.emit(
        4,
        "EmergencyAccessTaken",
        patient=PATIENT,
        provider=PROVIDER,
        validUntil=END,
        scopes=ALL_CATEGORIES,
        fullHistory=False,
        reason="A&E",
    )
    row = grants(db)[PROVIDER]
    assert (row["scopes"], row["purpose"], row["valid_from"], row["emergency"]) == (
        ALL_CATEGORIES, int(Purpose.ETREAT), timestamp_of(4), 1,
    )  # fmt: skip


def test_delegates_are_appointed_and_removed(db: sqlite3.Connection, log: Log) -> None:
    log.emit(1, "DelegateAppointed", patient=PATIENT, delegate=GUARDIAN)
    log.emit(1, "DelegateAppointed", patient=PATIENT, delegate=DOCTOR)
    log.emit(2, "DelegateRemoved", patient=PATIENT, delegate=GUARDIAN)
    assert delegations(db) == {GUARDIAN: 0, DOCTOR: 1}


def test_events_that_derive_nothing_are_only_stored(db: sqlite3.Connection, log: Log) -> None:
    log.emit(1, "ActedAsDelegate", patient=PATIENT, delegate=GUARDIAN)
    log.emit(1, "KeysShared", patient=PATIENT, grantee=DOCTOR, keysCid=cid_to_bytes(compute_cid(b"keys")))
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "grants", "delegations")}  # noqa: S608
    assert counts == {"events": 2, "grants": 0, "delegations": 0}
    assert compute_cid(b"keys") in db.execute("SELECT args FROM events WHERE event = 'KeysShared'").fetchone()[0]


def test_rewind_drops_what_is_above_the_fork_and_replays_the_rest(db: sqlite3.Connection, log: Log) -> None:
    first = record_args(0, bytes(32))
    log.emit(1, "RecordAdded", "RecordRegistry", **first)
    grant(log, 1)
    log.emit(1, "DelegateAppointed", patient=PATIENT, delegate=GUARDIAN)
    request(log, 2, 7)
    request(log, 2, 8)
    kept = {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("records", "grants")}  # noqa: S608
    # above the fork (block 2): all of this is undone
    log.emit(3, "RecordAdded", "RecordRegistry", **record_args(1, first["recordHash"]))
    log.emit(3, "RequestApproved", requestId=7, patient=PATIENT, researcher=RESEARCHER, validUntil=END)
    log.emit(4, "AccessRevoked", patient=PATIENT, grantee=DOCTOR)
    log.emit(4, "DelegateRemoved", patient=PATIENT, delegate=GUARDIAN)
    request(log, 4, 9)
    db.executemany("INSERT INTO blocks VALUES (?, ?, ?)", [(n, f"0x{n:064x}", timestamp_of(n)) for n in (1, 2, 3, 4)])

    drop_above(db.cursor(), 2)

    assert {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("records", "grants")} == kept  # noqa: S608
    assert requests(db) == {7: (RequestStatus.PENDING, None), 8: (RequestStatus.PENDING, None)}
    assert delegations(db) == {GUARDIAN: 1}
    assert db.execute("SELECT max(block) FROM events").fetchone()[0] == 2
    assert [r[0] for r in db.execute("SELECT number FROM blocks")] == [1, 2]


def test_rewind_replays_an_approval_below_the_fork(db: sqlite3.Connection, log: Log) -> None:
    request(log, 1, 7)
    log.emit(2, "RequestApproved", requestId=7, patient=PATIENT, researcher=RESEARCHER, validUntil=END)
    log.emit(3, "AccessRevoked", patient=PATIENT, grantee=RESEARCHER)
    before = grants(db)[RESEARCHER]
    assert before["revoked"] == 1

    drop_above(db.cursor(), 2)

    after = grants(db)[RESEARCHER]
    assert after == {**before, "revoked": 0, "block": 2, "log_index": 0}
    assert requests(db) == {7: (RequestStatus.APPROVED, 2)}
