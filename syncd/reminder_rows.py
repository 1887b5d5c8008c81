"""The ledger rows of the two reminders: remote-meeting readiness notes and per-client
payment-terms reviews, with their migration (schema version 4) and their SQL.

SQL runs on the store's connection inside the cycle's transaction, as the ledger's does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "READINESS_COLUMNS",
    "REMINDER_MIGRATION",
    "REVIEW_COLUMNS",
    "ReadinessNote",
    "ReminderChanges",
    "Review",
    "apply_reminders",
    "readiness_from_row",
    "review_from_row",
]

REMINDER_MIGRATION: tuple[str, ...] = (
    # Timers get a kind in their key: one appointment has an attendance and a readiness timer.
    "CREATE TABLE timers_v4 ("
    " calendar TEXT NOT NULL, uid TEXT NOT NULL, instance TEXT NOT NULL, client TEXT NOT NULL,"
    " kind TEXT NOT NULL, href TEXT NOT NULL, due TEXT NOT NULL,"
    " PRIMARY KEY (calendar, uid, instance, client, kind))",
    "INSERT INTO timers_v4 (calendar, uid, instance, client, kind, href, due)"
    " SELECT calendar, uid, instance, client, 'attendance', href, due FROM timers",
    "DROP TABLE timers",
    "ALTER TABLE timers_v4 RENAME TO timers",
    "CREATE INDEX timers_due ON timers (due)",
    "CREATE TABLE readiness ("
    " key TEXT PRIMARY KEY, calendar TEXT NOT NULL, uid TEXT NOT NULL, instance TEXT NOT NULL,"
    " client TEXT NOT NULL, start TEXT NOT NULL, status TEXT NOT NULL)",
    "CREATE TABLE reviews ("
    " client TEXT PRIMARY KEY, since TEXT NOT NULL, reviewed_at TEXT, reminder_key TEXT,"
    " reminded_at TEXT)",
    "CREATE INDEX readiness_calendar ON readiness (calendar, status)",
    "CREATE INDEX reviews_reminder ON reviews (reminder_key)",
)

READINESS_COLUMNS = "key, calendar, uid, instance, client, start, status"
REVIEW_COLUMNS = "client, since, reviewed_at, reminder_key"


@dataclass(frozen=True, slots=True)
class ReadinessNote:
    """A readiness note about a remote appointment with no link: ``noted`` while it stands
    in the notes calendar, ``withdrawn`` once a link came or the appointment went."""

    key: str
    calendar: str
    uid: str
    instance: str  # "" for a single event
    client: str
    start: datetime
    status: str


@dataclass(frozen=True, slots=True)
class Review:
    """A client's payment-terms review: since when they are a client (their first appointment
    syncd saw), when the owner last reviewed, and the open reminder's key, if any."""

    client: str
    since: datetime
    reviewed_at: datetime | None = None
    reminder_key: str | None = None

    @property
    def basis(self) -> datetime:
        """Where the review clock starts: the last review, else the client's first appointment."""
        return self.reviewed_at or self.since


@dataclass(slots=True)
class ReminderChanges:
    """What one cycle changes in the reminder rows."""

    readiness: list[ReadinessNote] = field(default_factory=list)
    clients_seen: list[tuple[str, datetime]] = field(default_factory=list)
    reminded: list[tuple[str, str, datetime]] = field(default_factory=list)
    """``(client, reminder key, at)``."""
    reviewed: list[tuple[str, datetime]] = field(default_factory=list)
    """``(client, reviewed at)``; clears the open reminder."""

    def __bool__(self) -> bool:
        return any((self.readiness, self.clients_seen, self.reminded, self.reviewed))


def apply_reminders(db: sqlite3.Connection, changes: ReminderChanges) -> None:
    """Write one cycle's reminder rows (inside the caller's transaction)."""
    db.executemany(
        "INSERT INTO readiness (key, calendar, uid, instance, client, start, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET start = excluded.start, status = excluded.status",
        [
            (r.key, r.calendar, r.uid, r.instance, r.client, r.start.isoformat(), r.status)
            for r in changes.readiness
        ],
    )
    # The earliest appointment seen counts (portable: no MIN/LEAST of two values).
    db.executemany(
        "INSERT INTO reviews (client, since) VALUES (?, ?) ON CONFLICT (client) DO UPDATE SET"
        " since = CASE WHEN excluded.since < reviews.since THEN excluded.since"
        " ELSE reviews.since END",
        [(client, since.isoformat()) for client, since in changes.clients_seen],
    )
    db.executemany(
        "UPDATE reviews SET reminder_key = ?, reminded_at = ? WHERE client = ?",
        [(key, at.isoformat(), client) for client, key, at in changes.reminded],
    )
    db.executemany(
        "UPDATE reviews SET reviewed_at = ?, reminder_key = NULL WHERE client = ?",
        [(at.isoformat(), client) for client, at in changes.reviewed],
    )


def readiness_from_row(row: Sequence[Any]) -> ReadinessNote:
    """Decode a row of :data:`READINESS_COLUMNS`."""
    return ReadinessNote(
        row[0], row[1], row[2], row[3], row[4], datetime.fromisoformat(row[5]), row[6]
    )


def review_from_row(row: Sequence[Any]) -> Review:
    """Decode a row of :data:`REVIEW_COLUMNS`."""
    return Review(
        client=row[0],
        since=datetime.fromisoformat(row[1]),
        reviewed_at=datetime.fromisoformat(row[2]) if row[2] else None,
        reminder_key=row[3],
    )
