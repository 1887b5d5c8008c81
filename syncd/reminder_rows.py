"""The ledger rows of the two reminders: remote-meeting readiness notes and per-client
payment-terms reviews, with their migrations (schema versions 4 and 5) and their SQL, and the
appointments index (who is on which appointment when).

SQL runs on the store's connection inside the cycle's transaction, as the ledger's does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

from syncd.errors import StoreError
from syncd.model import parse_when

__all__ = [
    "APPOINTMENT_INSERT",
    "READINESS_COLUMNS",
    "REMINDER_MIGRATION",
    "REMINDER_MIGRATION_V5",
    "REVIEW_COLUMNS",
    "NoteStatus",
    "ReadinessNote",
    "Reminded",
    "ReminderChanges",
    "Review",
    "ReviewPlace",
    "apply_reminders",
    "appointment_rows",
    "index_appointments",
    "readiness_from_row",
    "review_from_row",
    "seed_reviews",
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
REVIEW_COLUMNS = (
    "client, since, reviewed_at, reminder_key, reminder_calendar, reminder_uid,"
    " reminder_instance, reminder_start"
)

REMINDER_MIGRATION_V5: tuple[str | Callable[[sqlite3.Connection], None], ...] = (
    # An open review reminder remembers the appointment it stands over, to follow it.
    "ALTER TABLE reviews ADD COLUMN reminder_calendar TEXT",
    "ALTER TABLE reviews ADD COLUMN reminder_uid TEXT",
    "ALTER TABLE reviews ADD COLUMN reminder_instance TEXT",
    "ALTER TABLE reviews ADD COLUMN reminder_start TEXT",
    # Who is on which appointment when: a client's next appointment without decoding every
    # stored object. ``email`` is an attendee's or the organizer's address, lower-cased.
    "CREATE TABLE appointments ("
    " calendar TEXT NOT NULL, href TEXT NOT NULL, uid TEXT NOT NULL, instance TEXT NOT NULL,"
    " email TEXT NOT NULL, start TEXT NOT NULL,"
    " PRIMARY KEY (calendar, href, uid, instance, email))",
    "CREATE INDEX appointments_email ON appointments (email, start)",
    "CREATE INDEX reviews_key ON reviews (reminder_key)",
    "CREATE INDEX reviews_over ON reviews (reminder_calendar, reminder_uid)",
    lambda db: seed_reviews(db),
    lambda db: index_appointments(db),
    # Every calendar's next cycle checks all its stored appointments once (readiness timers
    # of appointments stored before the readiness check existed).
    "INSERT INTO meta (key, value) SELECT 'rearm|' || name, '1' FROM calendars",
)


class NoteStatus(StrEnum):
    """Where a readiness note stands."""

    NOTED = "noted"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class ReadinessNote:
    """A readiness note about a remote appointment with no link, one per appointment:
    ``noted`` while it stands in the notes calendar, ``withdrawn`` once a link came or the
    appointment went. ``clients`` are the appointment's clients, comma-separated."""

    key: str
    calendar: str
    uid: str
    instance: str  # "" for a single event
    clients: str
    start: datetime
    status: NoteStatus


@dataclass(frozen=True, slots=True)
class ReviewPlace:
    """The appointment an open review reminder stands over."""

    calendar: str
    uid: str
    instance: str
    start: str
    """The appointment's start, as :func:`syncd.model.format_when` writes it."""


@dataclass(frozen=True, slots=True)
class Review:
    """A client's payment-terms review: since when they are a client (their first appointment
    syncd saw), when the owner last reviewed, and the open reminder's key and place, if any."""

    client: str
    since: datetime
    reviewed_at: datetime | None = None
    reminder_key: str | None = None
    place: ReviewPlace | None = None

    @property
    def basis(self) -> datetime:
        """Where the review clock starts: the last review, else the client's first appointment."""
        return self.reviewed_at or self.since


@dataclass(frozen=True, slots=True)
class Reminded:
    """A review reminder placed (or moved) over an appointment."""

    client: str
    key: str
    at: datetime
    place: ReviewPlace
    claim: bool
    """A new reminder claims the review (no other open reminder); a move does not."""


@dataclass(slots=True)
class ReminderChanges:
    """What one cycle changes in the reminder rows."""

    readiness: list[ReadinessNote] = field(default_factory=list)
    clients_seen: dict[str, datetime] = field(default_factory=dict)
    """client -> the earliest appointment start seen this cycle."""
    reminded: list[Reminded] = field(default_factory=list)
    reviewed: list[tuple[str, datetime]] = field(default_factory=list)
    """``(client, reviewed at)``; clears the open reminder."""
    unreminded: list[str] = field(default_factory=list)
    """Clients whose open reminder was withdrawn (no appointment ahead to stand over)."""
    rearmed: str | None = None
    """The calendar whose one-time check of all stored appointments this cycle ran."""

    def __bool__(self) -> bool:
        return bool(
            self.readiness
            or self.clients_seen
            or self.reminded
            or self.reviewed
            or self.unreminded
            or self.rearmed
        )

    def see(self, client: str, start: datetime) -> None:
        """A client's appointment at ``start`` (keeps the earliest per client)."""
        known = self.clients_seen.get(client)
        if known is None or start < known:
            self.clients_seen[client] = start


def apply_reminders(db: sqlite3.Connection, changes: ReminderChanges) -> None:
    """Write one cycle's reminder rows (inside the caller's transaction). Raises
    :class:`~syncd.errors.StoreError` when another cycle claimed a review reminder first."""
    db.executemany(
        "INSERT INTO readiness (key, calendar, uid, instance, client, start, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET start = excluded.start, status = excluded.status,"
        " client = excluded.client",
        [
            (r.key, r.calendar, r.uid, r.instance, r.clients, _utc(r.start), r.status.value)
            for r in changes.readiness
        ],
    )
    # The earliest appointment seen counts (portable: no MIN/LEAST of two values).
    db.executemany(
        "INSERT INTO reviews (client, since) VALUES (?, ?) ON CONFLICT (client) DO UPDATE SET"
        " since = CASE WHEN excluded.since < reviews.since THEN excluded.since"
        " ELSE reviews.since END",
        [(client, _utc(since)) for client, since in changes.clients_seen.items()],
    )
    for reminded in changes.reminded:
        _remind(db, reminded)
    db.executemany(
        "UPDATE reviews SET reviewed_at = ?, reminder_key = NULL, reminder_calendar = NULL,"
        " reminder_uid = NULL, reminder_instance = NULL, reminder_start = NULL"
        " WHERE client = ?",
        [(_utc(at), client) for client, at in changes.reviewed],
    )
    db.executemany(
        "UPDATE reviews SET reminder_key = NULL, reminder_calendar = NULL, reminder_uid = NULL,"
        " reminder_instance = NULL, reminder_start = NULL WHERE client = ?",
        [(client,) for client in changes.unreminded],
    )
    if changes.rearmed is not None:
        db.execute("DELETE FROM meta WHERE key = ?", (f"rearm|{changes.rearmed}",))


def _remind(db: sqlite3.Connection, reminded: Reminded) -> None:
    place = reminded.place
    sql = (
        "UPDATE reviews SET reminder_key = ?, reminded_at = ?, reminder_calendar = ?,"
        " reminder_uid = ?, reminder_instance = ?, reminder_start = ? WHERE client = ?"
    )
    params = [
        reminded.key,
        _utc(reminded.at),
        place.calendar,
        place.uid,
        place.instance,
        place.start,
    ]
    if reminded.claim:  # two calendars' cycles must not both remind
        sql += " AND reminder_key IS NULL"
    if db.execute(sql, (*params, reminded.client)).rowcount != 1 and reminded.claim:
        raise StoreError(f"the review reminder of {reminded.client} was claimed by another cycle")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def seed_reviews(db: sqlite3.Connection) -> None:
    """Clients already in the ledger are clients since their first kept or judged
    appointment (a date counts from its midnight, UTC)."""
    rows = db.execute(
        "SELECT client, start FROM kept UNION ALL SELECT client, start FROM verdicts"
    ).fetchall()
    first: dict[str, datetime] = {}
    for client, text in rows:
        start = _instant(parse_when(text))
        if client not in first or start < first[client]:
            first[client] = start
    db.executemany(
        "INSERT INTO reviews (client, since) VALUES (?, ?) ON CONFLICT (client) DO UPDATE SET"
        " since = CASE WHEN excluded.since < reviews.since THEN excluded.since"
        " ELSE reviews.since END",
        [(client, _utc(since)) for client, since in first.items()],
    )


def _instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(), tzinfo=UTC)


def index_appointments(db: sqlite3.Connection) -> None:
    """Fill the appointments index from the stored objects."""
    rows = db.execute("SELECT calendar, href, instances FROM objects").fetchall()
    for calendar, href, text in rows:
        db.executemany(APPOINTMENT_INSERT, appointment_rows(calendar, href, json.loads(text)))


APPOINTMENT_INSERT = (
    "INSERT INTO appointments (calendar, href, uid, instance, email, start)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (calendar, href, uid, instance, email) DO NOTHING"
)


def appointment_rows(
    calendar: str, href: str, encoded: Sequence[Sequence[Any]]
) -> list[tuple[str, ...]]:
    """The appointments index rows of one object, from its encoded instances (see
    :func:`syncd.store_api.encode_instances`): one per person on each instance not cancelled."""
    found: list[tuple[str, ...]] = []
    for row in encoded:
        uid, rid, start, _end, status, *_, organizer, attendees = row[:10]
        if status == "cancelled":
            continue
        people = {str(a[0]).lower() for a in attendees}
        if organizer:
            people.add(str(organizer).lower())
        found.extend((calendar, href, uid, rid or "", p, start) for p in people if p)
    return found


def readiness_from_row(row: Sequence[Any]) -> ReadinessNote:
    """Decode a row of :data:`READINESS_COLUMNS`."""
    return ReadinessNote(
        row[0], row[1], row[2], row[3], row[4], datetime.fromisoformat(row[5]), NoteStatus(row[6])
    )


def review_from_row(row: Sequence[Any]) -> Review:
    """Decode a row of :data:`REVIEW_COLUMNS`."""
    return Review(
        client=row[0],
        since=datetime.fromisoformat(row[1]),
        reviewed_at=datetime.fromisoformat(row[2]) if row[2] else None,
        reminder_key=row[3],
        place=ReviewPlace(row[4], row[5], row[6] or "", row[7] or "")
        if row[3] and row[4]
        else None,
    )
