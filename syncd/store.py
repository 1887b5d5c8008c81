"""The state store: snapshots, cursors, item errors, the audit anchor and calendar status.

One interface (:class:`Store`) with portable SQL, so PostgreSQL can follow SQLite. The schema
is versioned and migrates forward; sync state cannot be rebuilt from the remote side, so a
store is never deleted to "fix" it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from syncd.audit import Anchor
from syncd.errors import StoreError
from syncd.holds import Hold
from syncd.ledger import (
    LEDGER_MIGRATION,
    OutboxRow,
    Timer,
    TimerKind,
    apply_ledger,
    outbox_rows,
    verdict_rows,
)
from syncd.model import Instance
from syncd.reminder_rows import (
    APPOINTMENT_INSERT,
    REMINDER_MIGRATION,
    REMINDER_MIGRATION_V5,
    appointment_rows,
)
from syncd.store_api import (
    CalendarState,
    CycleCommit,
    ItemErrorRow,
    Store,
    StoredObject,
    decode_instances,
    encode_instances,
    instance_rows,
)
from syncd.store_reminders import ReminderQueries
from syncd.verdict import Verdict

__all__ = [
    "SCHEMA_VERSION",
    "CalendarState",
    "CycleCommit",
    "ItemErrorRow",
    "SQLiteStore",
    "Store",
    "StoredObject",
    "decode_instances",
    "encode_instances",
]

Migration = tuple[str | Callable[[sqlite3.Connection], None], ...]
"""One schema version's steps: SQL statements, or functions run on the connection."""

MIGRATIONS: tuple[Migration, ...] = (
    # version 1: the first release
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE calendars ("
        " name TEXT PRIMARY KEY, cursor TEXT, horizon_start TEXT, horizon_end TEXT,"
        " baseline_at TEXT, last_cycle_at TEXT, last_success_at TEXT,"
        " last_error TEXT, last_error_at TEXT, instance_count INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE objects ("
        " calendar TEXT NOT NULL, href TEXT NOT NULL, etag TEXT NOT NULL,"
        " content_hash TEXT NOT NULL, data TEXT NOT NULL, recurring INTEGER NOT NULL,"
        " instances TEXT NOT NULL, instance_count INTEGER NOT NULL,"
        " PRIMARY KEY (calendar, href))",
        "CREATE TABLE item_errors ("
        " calendar TEXT NOT NULL, href TEXT NOT NULL, etag TEXT NOT NULL,"
        " reason TEXT NOT NULL, seen_at TEXT NOT NULL, at_baseline INTEGER NOT NULL,"
        " PRIMARY KEY (calendar, href))",
        # Covering indexes: a quiet cycle reads etags and counts without touching object data.
        "CREATE INDEX objects_etag ON objects (calendar, href, etag)",
        "CREATE INDEX objects_count ON objects (calendar, instance_count)",
        "CREATE INDEX objects_recurring ON objects (calendar, recurring)",
        # Which objects hold a UID: a UID may (wrongly, but it happens) sit in two files.
        "CREATE TABLE object_uids (calendar TEXT NOT NULL, uid TEXT NOT NULL,"
        " href TEXT NOT NULL, PRIMARY KEY (calendar, uid, href))",
        "CREATE INDEX object_uids_href ON object_uids (calendar, href)",
    ),
    # version 2: the ledger (verdicts, kept appointments, timers, outbox)
    LEDGER_MIGRATION,
    # version 3: the daemon's backoff per calendar, shown by `syncd status`
    (
        "ALTER TABLE calendars ADD COLUMN failures INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE calendars ADD COLUMN backoff_until TEXT",
    ),
    # version 4: timers by kind (readiness checks), readiness notes, payment-terms reviews
    REMINDER_MIGRATION,
    # version 5: reviews seeded from the ledger and following their appointment, the
    # appointments index, one check of every stored appointment per calendar
    REMINDER_MIGRATION_V5,
)
SCHEMA_VERSION = len(MIGRATIONS)


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SQLiteStore(ReminderQueries, Store):
    """The embedded store: one SQLite file in WAL mode with ``synchronous=FULL``.

    The file is created 0600 in a 0700 folder. One connection, shared by threads under a lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        try:
            self._db = self._open(path)
            self._migrate()
        except sqlite3.Error as error:
            raise StoreError(f"cannot open state store {path}: {error}") from None

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        try:
            if not path.parent.exists():
                path.parent.mkdir(mode=0o700, parents=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            raise StoreError(f"cannot create state store {path}: {error.strerror}") from None
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def _migrate(self) -> None:
        with self._transaction() as db:
            has_meta = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            version = 0
            if has_meta:
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"state store {self.path} has schema {version}, newer than this syncd "
                    f"({SCHEMA_VERSION}); upgrade syncd"
                )
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    if callable(statement):
                        statement(db)
                    else:
                        db.execute(statement)
            if version < SCHEMA_VERSION:
                self._set_meta(db, "schema_version", str(SCHEMA_VERSION))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"state store {self.path}: {error}") from None

    @staticmethod
    def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def schema_version(self) -> int:
        """The schema version of the open store."""
        return int(self._query("SELECT value FROM meta WHERE key='schema_version'")[0][0])

    def calendar_state(self, calendar: str) -> CalendarState:
        """See :meth:`Store.calendar_state`."""
        rows = self._query(f"SELECT {_STATE_COLUMNS} FROM calendars WHERE name = ?", (calendar,))
        return _state(rows[0]) if rows else CalendarState(name=calendar)

    def calendar_states(self) -> list[CalendarState]:
        """See :meth:`Store.calendar_states`."""
        return [
            _state(r) for r in self._query(f"SELECT {_STATE_COLUMNS} FROM calendars ORDER BY name")
        ]

    def known_etags(self, calendar: str) -> dict[str, str]:
        """See :meth:`Store.known_etags`."""
        known = dict(self._query("SELECT href, etag FROM objects WHERE calendar = ?", (calendar,)))
        known.update(
            self._query("SELECT href, etag FROM item_errors WHERE calendar = ?", (calendar,))
        )
        return known

    def objects(self, calendar: str, hrefs: Iterable[str]) -> dict[str, StoredObject]:
        """See :meth:`Store.objects`."""
        found: dict[str, StoredObject] = {}
        wanted = list(hrefs)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE calendar = ? AND href IN ({marks})",
                (calendar, *chunk),
            )
            found.update((row[0], _object(row)) for row in rows)
        return found

    def objects_with_uids(self, calendar: str, uids: Collection[str]) -> dict[str, StoredObject]:
        """See :meth:`Store.objects_with_uids`."""
        wanted = list(uids)
        hrefs: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT href FROM object_uids WHERE calendar = ? AND uid IN ({marks})",
                (calendar, *chunk),
            )
            hrefs.update(r[0] for r in rows)
        return self.objects(calendar, hrefs)

    def all_objects(self, calendar: str) -> list[StoredObject]:
        """See :meth:`Store.all_objects`."""
        rows = self._query(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE calendar = ?", (calendar,))
        return [_object(r) for r in rows]

    def recurring_objects(self, calendar: str) -> list[StoredObject]:
        """See :meth:`Store.recurring_objects`."""
        rows = self._query(
            f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE calendar = ? AND recurring = 1",
            (calendar,),
        )
        return [_object(r) for r in rows]

    def item_errors(self, calendar: str) -> dict[str, ItemErrorRow]:
        """See :meth:`Store.item_errors`."""
        rows = self._query(
            "SELECT href, etag, reason, at_baseline FROM item_errors WHERE calendar = ?",
            (calendar,),
        )
        return {r[0]: ItemErrorRow(r[0], r[1], r[2], bool(r[3])) for r in rows}

    def audit_anchor(self) -> Anchor:
        """See :meth:`Store.audit_anchor`."""
        rows = dict(
            self._query("SELECT key, value FROM meta WHERE key IN ('audit_seq', 'audit_hash')")
        )
        if "audit_seq" not in rows:
            return Anchor.EMPTY
        return Anchor(seq=int(rows["audit_seq"]), hash=rows["audit_hash"])

    def commit_anchor(self, anchor: Anchor) -> None:
        """See :meth:`Store.commit_anchor`."""
        try:
            with self._transaction() as db:
                self._write_anchor(db, anchor)
        except sqlite3.Error as error:
            raise StoreError(f"state store {self.path}: {error}") from None

    def _write_anchor(self, db: sqlite3.Connection, anchor: Anchor) -> None:
        self._set_meta(db, "audit_seq", str(anchor.seq))
        self._set_meta(db, "audit_hash", anchor.hash)

    def commit_cycle(self, commit: CycleCommit, anchor: Anchor) -> None:
        """See :meth:`Store.commit_cycle`."""
        try:
            with self._transaction() as db:
                self._apply_objects(db, commit)
                self._apply_errors(db, commit)
                self._apply_calendar(db, commit)
                if commit.ledger:
                    apply_ledger(db, commit.ledger, commit.at)
                self._write_anchor(db, anchor)
        except sqlite3.Error as error:
            raise StoreError(f"state store {self.path}: {error}") from None

    @staticmethod
    def _apply_objects(db: sqlite3.Connection, commit: CycleCommit) -> None:
        name = commit.calendar
        db.executemany(
            "DELETE FROM objects WHERE calendar = ? AND href = ?",
            [(name, href) for href in commit.removed],
        )
        db.executemany(
            "DELETE FROM object_uids WHERE calendar = ? AND href = ?",
            [(name, href) for href in (*commit.removed, *(o.href for o in commit.upserts))],
        )
        db.executemany(
            "INSERT INTO object_uids (calendar, uid, href) VALUES (?, ?, ?)"
            " ON CONFLICT (calendar, uid, href) DO NOTHING",
            [(name, uid, o.href) for o in commit.upserts for uid in {i.uid for i in o.instances}],
        )
        db.executemany(
            "DELETE FROM appointments WHERE calendar = ? AND href = ?",
            [(name, href) for href in (*commit.removed, *(o.href for o in commit.upserts))],
        )
        db.executemany(
            APPOINTMENT_INSERT,
            [
                row
                for o in commit.upserts
                for row in appointment_rows(name, o.href, instance_rows(o.instances))
            ],
        )
        db.executemany(
            "UPDATE objects SET etag = ? WHERE calendar = ? AND href = ?",
            [(etag, name, href) for href, etag in commit.etag_updates],
        )
        db.executemany(
            "INSERT INTO objects (calendar, href, etag, content_hash, data, recurring,"
            " instances, instance_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (calendar, href) DO UPDATE SET etag = excluded.etag,"
            " content_hash = excluded.content_hash, data = excluded.data,"
            " recurring = excluded.recurring, instances = excluded.instances,"
            " instance_count = excluded.instance_count",
            [
                (
                    name,
                    o.href,
                    o.etag,
                    o.content_hash,
                    o.data,
                    int(o.recurring),
                    encode_instances(o.instances),
                    len(o.instances),
                )
                for o in commit.upserts
            ],
        )

    @staticmethod
    def _apply_errors(db: sqlite3.Connection, commit: CycleCommit) -> None:
        name = commit.calendar
        db.executemany(
            "DELETE FROM item_errors WHERE calendar = ? AND href = ?",
            [(name, href) for href in commit.cleared_errors],
        )
        db.executemany(
            "INSERT INTO item_errors (calendar, href, etag, reason, seen_at, at_baseline)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (calendar, href) DO UPDATE SET"
            " etag = excluded.etag, reason = excluded.reason, seen_at = excluded.seen_at",
            [
                (name, e.href, e.etag, e.reason, commit.at.isoformat(), int(commit.baseline))
                for e in commit.errors
            ],
        )

    @staticmethod
    def _apply_calendar(db: sqlite3.Connection, commit: CycleCommit) -> None:
        count = db.execute(
            "SELECT COALESCE(SUM(instance_count), 0) FROM objects WHERE calendar = ?",
            (commit.calendar,),
        ).fetchone()[0]
        at = commit.at.isoformat()
        db.execute(
            "INSERT INTO calendars (name, cursor, horizon_start, horizon_end, baseline_at,"
            " last_cycle_at, last_success_at, last_error, last_error_at, instance_count)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)"
            " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor,"
            " horizon_start = excluded.horizon_start, horizon_end = excluded.horizon_end,"
            " baseline_at = COALESCE(calendars.baseline_at, excluded.baseline_at),"
            " last_cycle_at = excluded.last_cycle_at, last_success_at = excluded.last_success_at,"
            " last_error = NULL, last_error_at = NULL, instance_count = excluded.instance_count,"
            " failures = 0, backoff_until = NULL",
            (
                commit.calendar,
                commit.cursor,
                commit.horizon[0].isoformat(),
                commit.horizon[1].isoformat(),
                at if commit.baseline else None,
                at,
                at,
                count,
            ),
        )

    def record_failure(self, calendar: str, at: datetime, message: str) -> None:
        """See :meth:`Store.record_failure`."""
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO calendars (name, last_cycle_at, last_error, last_error_at,"
                    " failures) VALUES (?, ?, ?, ?, 1)"
                    " ON CONFLICT (name) DO UPDATE SET"
                    " last_cycle_at = excluded.last_cycle_at, last_error = excluded.last_error,"
                    " last_error_at = excluded.last_error_at,"
                    " failures = calendars.failures + 1",
                    (calendar, at.isoformat(), message, at.isoformat()),
                )
        except sqlite3.Error as error:
            raise StoreError(f"state store {self.path}: {error}") from None

    def set_backoff(self, calendar: str, until: datetime) -> None:
        """See :meth:`Store.set_backoff`."""
        try:
            with self._transaction() as db:
                db.execute(
                    "UPDATE calendars SET backoff_until = ? WHERE name = ?",
                    (until.isoformat(), calendar),
                )
        except sqlite3.Error as error:
            raise StoreError(f"state store {self.path}: {error}") from None

    def next_due(self, calendar: str) -> datetime | None:
        """See :meth:`Store.next_due`."""
        found = [
            datetime.fromisoformat(row[0])
            for sql, params in (
                ("SELECT MIN(due) FROM timers WHERE calendar = ?", (calendar,)),
                (
                    "SELECT MIN(deposit_deadline) FROM verdicts WHERE deposit = 'pending'"
                    " AND calendar = ?",
                    (calendar,),
                ),
                ("SELECT MIN(until) FROM holds WHERE status = 'active'", ()),
            )
            for row in self._query(sql, params)
            if row[0]
        ]
        return min(found, default=None)

    def instances_of(
        self, calendars: Sequence[str], skip: Mapping[str, Collection[str]] | None = None
    ) -> list[Instance]:
        """See :meth:`Store.instances_of`."""
        found: list[Instance] = []
        for name in calendars:
            left_out = (skip or {}).get(name, ())
            rows = self._query("SELECT href, instances FROM objects WHERE calendar = ?", (name,))
            for href, text in rows:
                if href not in left_out:
                    found.extend(decode_instances(text))
        return found

    def verdict(self, key: str) -> Verdict | None:
        """See :meth:`Store.verdict`."""
        rows = verdict_rows(self._query("SELECT payload FROM verdicts WHERE key = ?", (key,)))
        return rows[0] if rows else None

    def verdicts(self, client: str | None = None) -> list[Verdict]:
        """See :meth:`Store.verdicts`."""
        if client is None:
            return verdict_rows(self._query("SELECT payload FROM verdicts ORDER BY decided_at"))
        return verdict_rows(
            self._query(
                "SELECT payload FROM verdicts WHERE client = ? ORDER BY decided_at", (client,)
            )
        )

    def pending_deposits(self) -> list[Verdict]:
        """See :meth:`Store.pending_deposits`."""
        return verdict_rows(
            self._query(
                "SELECT payload FROM verdicts WHERE deposit = 'pending' ORDER BY deposit_deadline"
            )
        )

    def due_timers(self, now: datetime) -> list[Timer]:
        """See :meth:`Store.due_timers`."""
        rows = self._query(
            "SELECT calendar, uid, instance, client, href, due, kind FROM timers WHERE due <= ?"
            " ORDER BY due",
            (now.isoformat(),),
        )
        return [
            Timer(r[0], r[1], r[2], r[3], r[4], datetime.fromisoformat(r[5]), TimerKind(r[6]))
            for r in rows
        ]

    def kept_starts(self, client: str | None = None) -> list[tuple[str, datetime]]:
        """See :meth:`Store.kept_starts`."""
        sql = "SELECT client, start FROM kept"
        rows = self._query(sql + " WHERE client = ?", (client,)) if client else self._query(sql)
        return [(r[0], datetime.fromisoformat(r[1])) for r in rows]

    def pending_writes(self) -> dict[str, int]:
        """See :meth:`Store.pending_writes`."""
        rows = self._query(
            "SELECT calendar, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY calendar"
        )
        return {r[0]: int(r[1]) for r in rows}

    def active_holds(self) -> list[Hold]:
        """See :meth:`Store.active_holds`."""
        rows = self._query(
            "SELECT key, verdict_key, client, href, start, end_at, until FROM holds"
            " WHERE status = 'active' ORDER BY start"
        )
        return [
            Hold(
                r[0],
                r[1],
                r[2],
                r[3],
                datetime.fromisoformat(r[4]),
                datetime.fromisoformat(r[5]),
                datetime.fromisoformat(r[6]),
            )
            for r in rows
        ]

    def outbox(self, status: str = "pending") -> list[OutboxRow]:
        """See :meth:`Store.outbox`."""
        return outbox_rows(
            self._query(
                "SELECT key, calendar, action, href, payload, status, attempts, last_error"
                " FROM outbox WHERE status = ? ORDER BY seq",
                (status,),
            )
        )

    def finish_writes(
        self, outcomes: Sequence[tuple[str, str, str | None]], at: datetime, anchor: Anchor
    ) -> None:
        """See :meth:`Store.finish_writes`."""
        try:
            with self._transaction() as db:
                db.executemany(
                    "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?,"
                    " updated_at = ? WHERE key = ?",
                    [(status, error, at.isoformat(), key) for key, status, error in outcomes],
                )
                self._write_anchor(db, anchor)
        except sqlite3.Error as error_:
            raise StoreError(f"state store {self.path}: {error_}") from None

    def close(self) -> None:
        """See :meth:`Store.close`."""
        with self._lock:
            self._db.close()


_STATE_COLUMNS = (
    "name, cursor, horizon_start, horizon_end, baseline_at, last_cycle_at, last_success_at,"
    " last_error, last_error_at, instance_count, failures, backoff_until"
)
_OBJECT_COLUMNS = "href, etag, content_hash, data, recurring, instances"


def _state(row: Sequence[Any]) -> CalendarState:
    horizon_start, horizon_end = _dt(row[2]), _dt(row[3])
    return CalendarState(
        name=row[0],
        cursor=row[1],
        horizon=(horizon_start, horizon_end) if horizon_start and horizon_end else None,
        baseline_at=_dt(row[4]),
        last_cycle_at=_dt(row[5]),
        last_success_at=_dt(row[6]),
        last_error=row[7],
        last_error_at=_dt(row[8]),
        instance_count=int(row[9] or 0),
        failures=int(row[10] or 0),
        backoff_until=_dt(row[11]),
    )


def _object(row: Sequence[Any]) -> StoredObject:
    return StoredObject(
        href=row[0],
        etag=row[1],
        content_hash=row[2],
        data=row[3],
        recurring=bool(row[4]),
        instances=decode_instances(row[5]),
    )
