"""The keeper's journal: one SQLite row per key release, and the receipts' progress.

A release is keyed by its release id (the EIP-712 digest of the signed request), so a retried
request is served again and journaled once. Releases are also deduplicated per (patient,
record, reader, time bucket): a reader who signs many distinct requests for one record within a
bucket gets its share each time but costs one row and one receipt. Each row keeps what the
receipt proves: the reader's signature, the request's issuedAt, and the block the keeper
decided on (number and timestamp). A row is pending until its ``KeyReleased`` receipt
is mined (``receipt_tx``), or until the chain refuses the receipt for good (``rejected``: the
patient removed this keeper). Writes are synchronous (WAL, ``synchronous=FULL``): a release
answered is a release journaled, whatever happens to the process next.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Journal", "Receipt"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    release_id  TEXT PRIMARY KEY,   -- 0x EIP-712 digest of the signed KeyRequest
    patient     TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    grantee     TEXT NOT NULL,
    released_at INTEGER NOT NULL,   -- timestamp of the block the first release was decided on
    receipt_tx  TEXT,               -- the recordReleases transaction; NULL while pending
    rejected    TEXT                -- why the chain refused the receipt for good
)
"""
# Columns added with verifiable receipts (a journal from before gets them, empty).
_COLUMNS = {
    "issued_at": "INTEGER",  # the reader's KeyRequest.issuedAt
    "decided_at": "INTEGER",  # the number of the block the keeper decided on
    "signature": "TEXT",  # the reader's signature of the KeyRequest, 0x-hex
    "bucket": "INTEGER",  # released_at // the keeper's receipt bucket
}
_DEDUPE = "CREATE UNIQUE INDEX IF NOT EXISTS releases_bucket ON releases (patient, idx, grantee, bucket)"


@dataclass(frozen=True)
class Receipt:
    """One release, with what its on-chain receipt carries."""

    release_id: str  # 0x EIP-712 digest of the reader's KeyRequest
    patient: str
    index: int
    grantee: str
    released_at: int  # timestamp of block ``decided_at``
    issued_at: int
    decided_at: int
    signature: bytes

    def to_release(self) -> tuple[Any, ...]:
        """The ``IKeeperDirectory.Release`` tuple."""
        return (
            self.patient, self.index, self.grantee, self.issued_at, self.released_at, self.decided_at, self.signature
        )  # fmt: skip


class Journal:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(releases)")}
        for column, kind in _COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE releases ADD COLUMN {column} {kind}")
        self._db.execute(_DEDUPE)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, receipt: Receipt, bucket: int | None) -> tuple[str, bool, int]:
        """Journals a release once per id and per (patient, record, reader, ``bucket``): the id of
        the row that accounts for it, whether it is new, and how many are pending now. A bucket
        of None deduplicates by id only."""
        with self._lock:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO releases (release_id, patient, idx, grantee, released_at, issued_at, "
                "decided_at, signature, bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    receipt.release_id, receipt.patient, receipt.index, receipt.grantee, receipt.released_at,
                    receipt.issued_at, receipt.decided_at, "0x" + receipt.signature.hex(), bucket,
                ),
            ).rowcount  # fmt: skip
            release_id = receipt.release_id
            if not inserted:
                row = self._db.execute(
                    "SELECT release_id FROM releases WHERE release_id = ? OR "
                    "(patient = ? AND idx = ? AND grantee = ? AND bucket = ?)",
                    (receipt.release_id, receipt.patient, receipt.index, receipt.grantee, bucket),
                ).fetchone()
                release_id = str(row[0]) if row else release_id
            pending = self._db.execute("SELECT count(*) FROM releases WHERE receipt_tx IS NULL AND rejected IS NULL")
            return release_id, bool(inserted), int(pending.fetchone()[0])

    def pending(self) -> list[Receipt]:
        """Releases without a receipt yet, oldest first (rows journaled before receipts carried a
        signature cannot be posted and are marked rejected)."""
        with self._lock:
            self._db.execute(
                "UPDATE releases SET rejected = 'journaled without the reader signature' "
                "WHERE receipt_tx IS NULL AND rejected IS NULL AND signature IS NULL"
            )
            rows = self._db.execute(
                "SELECT release_id, patient, idx, grantee, released_at, issued_at, decided_at, signature "
                "FROM releases WHERE receipt_tx IS NULL AND rejected IS NULL ORDER BY rowid"
            ).fetchall()
        return [Receipt(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes.fromhex(r[7][2:])) for r in rows]

    def rows(self) -> list[dict[str, Any]]:
        """Every journaled release, oldest first, as column -> value."""
        with self._lock:
            cursor = self._db.execute("SELECT * FROM releases ORDER BY rowid")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def mark(self, release_ids: list[str], tx_hash: str) -> None:
        """The receipts of ``release_ids`` were mined in ``tx_hash``."""
        with self._lock:
            self._db.executemany(
                "UPDATE releases SET receipt_tx = ? WHERE release_id = ?", [(tx_hash, rid) for rid in release_ids]
            )

    def reject(self, release_id: str, reason: str) -> None:
        """The chain refuses this receipt for good; it is no longer pending."""
        with self._lock:
            self._db.execute("UPDATE releases SET rejected = ? WHERE release_id = ?", (reason, release_id))
