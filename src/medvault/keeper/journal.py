"""The keeper's journal: one SQLite row per key release, and the receipts' progress.

A release is keyed by its release id (the EIP-712 digest of the signed request), so a retried
request is served again and journaled once. A row is pending until its ``KeyReleased`` receipt
is mined (``receipt_tx``), or until the chain refuses the receipt for good (``rejected``: the
patient removed this keeper). Writes are synchronous (WAL, ``synchronous=FULL``): a release
answered is a release journaled, whatever happens to the process next.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Journal", "PendingRelease"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    release_id  TEXT PRIMARY KEY,   -- 0x EIP-712 digest of the signed KeyRequest
    patient     TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    grantee     TEXT NOT NULL,
    released_at INTEGER NOT NULL,   -- chain time of the first release
    receipt_tx  TEXT,               -- the recordReleases transaction; NULL while pending
    rejected    TEXT                -- why the chain refused the receipt (the keeper was removed)
)
"""

PendingRelease = tuple[str, str, int, str, int]
"""(release id, patient, record index, grantee, released at)"""


class Journal:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def record(self, release_id: str, patient: str, index: int, grantee: str, released_at: int) -> tuple[bool, int]:
        """Journals a release (once per id); whether it was new, and how many are pending now."""
        with self._lock:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO releases (release_id, patient, idx, grantee, released_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (release_id, patient, index, grantee, released_at),
            ).rowcount
            pending = self._db.execute("SELECT count(*) FROM releases WHERE receipt_tx IS NULL AND rejected IS NULL")
            return bool(inserted), int(pending.fetchone()[0])

    def pending(self) -> list[PendingRelease]:
        """Releases without a receipt yet, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT release_id, patient, idx, grantee, released_at FROM releases "
                "WHERE receipt_tx IS NULL AND rejected IS NULL ORDER BY rowid"
            ).fetchall()
        return [tuple(row) for row in rows]

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
