"""The SQLite state store: durability settings, permissions, migrations, atomic cycles."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

import syncd.store as store_module
from syncd.audit import Anchor
from syncd.errors import StoreError
from syncd.model import Instance, Status
from syncd.store import CycleCommit, SQLiteStore, StoredObject, decode_instances, encode_instances

AT = datetime(2026, 11, 27, 9, tzinfo=UTC)
HORIZON = (datetime(2026, 10, 28, tzinfo=UTC), datetime(2027, 5, 27, tzinfo=UTC))


def instance(uid: str = "a") -> Instance:
    return Instance(
        uid=uid,
        recurrence_id=None,
        start=AT,
        end=AT,
        status=Status.CONFIRMED,
        attendees=(("jane@example.com", "ACCEPTED"),),
        categories=("x",),
    )


def stored(href: str = "a.ics") -> StoredObject:
    return StoredObject(
        href=href,
        etag="e1",
        content_hash="h",
        data="BEGIN:VCALENDAR",
        recurring=False,
        instances=(instance(),),
    )


def test_new_store_is_private(tmp_path: Path) -> None:
    """The database is created 0600 inside a new 0700 folder."""
    path = tmp_path / "state" / "state.db"
    SQLiteStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_wal_and_full_synchronous(tmp_path: Path) -> None:
    """The store runs in WAL mode with synchronous=FULL."""
    store = SQLiteStore(tmp_path / "s.db")
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_instances_round_trip(tmp_path: Path) -> None:
    """Instances survive encoding unchanged, dates and datetimes alike."""
    items = (
        instance("a"),
        Instance(
            uid="b",
            recurrence_id=AT.date(),
            start=AT.date(),
            end=AT.date(),
            status=Status.CANCELLED,
            series_start=AT.date(),
        ),
    )
    assert decode_instances(encode_instances(items)) == items


def test_commit_moves_snapshot_cursor_and_anchor_together(tmp_path: Path) -> None:
    """One commit stores objects, cursor, horizon, counts and the audit anchor."""
    store = SQLiteStore(tmp_path / "s.db")
    commit = CycleCommit(
        calendar="work", at=AT, cursor="c1", horizon=HORIZON, upserts=[stored()], baseline=True
    )
    store.commit_cycle(commit, Anchor(seq=3, hash="ab" * 32))
    state = store.calendar_state("work")
    assert (state.cursor, state.instance_count, state.baseline_at) == ("c1", 1, AT)
    assert store.audit_anchor() == Anchor(seq=3, hash="ab" * 32)
    assert store.known_etags("work") == {"a.ics": "e1"}
    store.close()


def test_failed_commit_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error halfway through a commit rolls back every part of it."""
    store = SQLiteStore(tmp_path / "s.db")
    store.commit_cycle(
        CycleCommit(calendar="work", at=AT, cursor="c1", horizon=HORIZON, upserts=[stored()]),
        Anchor(seq=1, hash="1" * 64),
    )

    def explode(*_args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(SQLiteStore, "_apply_calendar", staticmethod(explode))
    with pytest.raises(StoreError):
        store.commit_cycle(
            CycleCommit(calendar="work", at=AT, cursor="c2", horizon=HORIZON, removed=["a.ics"]),
            Anchor(seq=2, hash="2" * 64),
        )
    assert store.calendar_state("work").cursor == "c1"
    assert store.known_etags("work") == {"a.ics": "e1"}
    assert store.audit_anchor().seq == 1
    store.close()


def test_schema_version_is_recorded(tmp_path: Path) -> None:
    """A new store is at the current schema version."""
    store = SQLiteStore(tmp_path / "s.db")
    assert store.schema_version() == store_module.SCHEMA_VERSION
    store.close()


def test_migrations_run_forward_and_keep_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening an older store applies the newer migrations and keeps its rows."""
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    store.commit_cycle(
        CycleCommit(calendar="work", at=AT, cursor="c1", horizon=HORIZON, upserts=[stored()]),
        Anchor(seq=1, hash="1" * 64),
    )
    store.close()
    later = (*store_module.MIGRATIONS, ("ALTER TABLE calendars ADD COLUMN note TEXT",))
    monkeypatch.setattr(store_module, "MIGRATIONS", later)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(later))
    store = SQLiteStore(path)
    assert store.schema_version() == len(later)
    assert store.calendar_state("work").cursor == "c1"
    assert store._db.execute("SELECT note FROM calendars").fetchall() == [(None,)]
    store.close()


def test_newer_schema_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written by a newer syncd is not opened (nor damaged) by an older one."""
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 0)
    monkeypatch.setattr(store_module, "MIGRATIONS", ())
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def test_unopenable_store_is_a_store_error(tmp_path: Path) -> None:
    """A path that is not a database gives a StoreError naming it."""
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        SQLiteStore(path)
