"""The state store's interface: the rows a cycle reads and commits, and :class:`Store`.

Kept apart from the SQLite implementation (:mod:`syncd.store`) so that another back end
(PostgreSQL) implements the same abstract methods over the same row types.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.audit import Anchor
from syncd.holds import Hold
from syncd.ledger import LedgerChanges, OutboxRow, Timer
from syncd.model import Instance, Status, format_optional, format_when, parse_when
from syncd.reminder_rows import ReadinessNote, Review
from syncd.verdict import Verdict

__all__ = [
    "CalendarState",
    "CycleCommit",
    "ItemErrorRow",
    "Store",
    "StoredObject",
    "decode_instances",
    "encode_instances",
    "instance_rows",
]


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object of a calendar's snapshot, with the instances it normalized to."""

    href: str
    etag: str
    content_hash: str
    data: str
    recurring: bool
    instances: tuple[Instance, ...]


@dataclass(frozen=True, slots=True)
class ItemErrorRow:
    """An object that could not be read or parsed at ``etag``; retried when the etag changes."""

    href: str
    etag: str
    reason: str
    at_baseline: bool = False
    """In error since the calendar's first cycle: once readable, it joins the baseline."""


@dataclass(frozen=True, slots=True)
class CalendarState:
    """What the store knows about one calendar between cycles."""

    name: str
    cursor: str | None = None
    horizon: tuple[datetime, datetime] | None = None
    baseline_at: datetime | None = None
    last_cycle_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    instance_count: int = 0
    failures: int = 0
    """Failed cycles in a row (reset by a success)."""
    backoff_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class CycleCommit:
    """Everything one successful cycle of one calendar commits, in one transaction."""

    calendar: str
    at: datetime
    cursor: str | None
    horizon: tuple[datetime, datetime]
    upserts: Sequence[StoredObject] = ()
    etag_updates: Sequence[tuple[str, str]] = ()
    removed: Sequence[str] = ()
    errors: Sequence[ItemErrorRow] = ()
    cleared_errors: Sequence[str] = ()
    baseline: bool = False
    ledger: LedgerChanges | None = None


class Store(ABC):
    """The state of every calendar. Methods raise :class:`syncd.errors.StoreError`."""

    @abstractmethod
    def calendar_state(self, calendar: str) -> CalendarState:
        """The stored state of ``calendar`` (an empty state if never seen)."""

    @abstractmethod
    def calendar_states(self) -> list[CalendarState]:
        """The stored state of every calendar ever seen, by name."""

    @abstractmethod
    def known_etags(self, calendar: str) -> dict[str, str]:
        """href -> etag of each object, overlaid with the etag of objects in error."""

    @abstractmethod
    def objects(self, calendar: str, hrefs: Iterable[str]) -> dict[str, StoredObject]:
        """The stored objects among ``hrefs``."""

    @abstractmethod
    def objects_with_uids(self, calendar: str, uids: Collection[str]) -> dict[str, StoredObject]:
        """The stored objects holding any of ``uids``, by href."""

    @abstractmethod
    def recurring_objects(self, calendar: str) -> list[StoredObject]:
        """Every stored object that holds a recurring series."""

    @abstractmethod
    def item_errors(self, calendar: str) -> dict[str, ItemErrorRow]:
        """Objects currently in error, by href."""

    @abstractmethod
    def audit_anchor(self) -> Anchor:
        """The ``(seq, hash)`` of the last committed audit record."""

    @abstractmethod
    def commit_cycle(self, commit: CycleCommit, anchor: Anchor) -> None:
        """Apply one cycle's results and move the cursor and the audit anchor, atomically."""

    @abstractmethod
    def commit_anchor(self, anchor: Anchor) -> None:
        """Move the audit anchor alone (records not tied to a calendar cycle)."""

    @abstractmethod
    def record_failure(self, calendar: str, at: datetime, message: str) -> None:
        """Remember that a cycle of ``calendar`` failed (one more in a row); its cursor and
        snapshot stay."""

    @abstractmethod
    def set_backoff(self, calendar: str, until: datetime) -> None:
        """Remember until when the daemon waits before trying ``calendar`` again."""

    @abstractmethod
    def next_due(self, calendar: str) -> datetime | None:
        """The earliest timer of a calendar: an attendance or readiness check, a deposit
        deadline, a hold that lapses."""

    @abstractmethod
    def instances_of(
        self, calendars: Sequence[str], skip: Mapping[str, Collection[str]] | None = None
    ) -> list[Instance]:
        """Every stored instance of the given calendars (for free/busy), leaving out the
        objects named in ``skip`` (calendar -> hrefs)."""

    @abstractmethod
    def verdict(self, key: str) -> Verdict | None:
        """The stored verdict with this idempotency key."""

    @abstractmethod
    def verdicts(self, client: str | None = None) -> list[Verdict]:
        """Stored verdicts, of one client or of all, oldest first."""

    @abstractmethod
    def pending_deposits(self) -> list[Verdict]:
        """Verdicts whose deposit is still pending."""

    @abstractmethod
    def due_timers(self, now: datetime) -> list[Timer]:
        """Attendance and readiness timers due at ``now``."""

    @abstractmethod
    def all_objects(self, calendar: str) -> list[StoredObject]:
        """Every stored object of a calendar (its one-time check after an upgrade)."""

    @abstractmethod
    def readiness_notes(self, calendar: str) -> list[ReadinessNote]:
        """The readiness notes of a calendar that still stand (not withdrawn)."""

    @abstractmethod
    def due_reviews(self, basis_until: datetime) -> list[Review]:
        """Reviews without an open reminder whose clock started at or before
        ``basis_until`` (the caller applies each client's own period)."""

    @abstractmethod
    def review_by_key(self, key: str) -> Review | None:
        """The review whose open reminder has this key."""

    @abstractmethod
    def reviews_of(self, clients: Collection[str]) -> dict[str, Review]:
        """The review rows of these clients, by client."""

    @abstractmethod
    def reviews_over(self, calendar: str, uids: Collection[str]) -> list[Review]:
        """Reviews whose open reminder stands over an appointment with one of ``uids``."""

    @abstractmethod
    def claimed_reviews(self, clients: Collection[str]) -> set[str]:
        """Those of ``clients`` with an open review reminder."""

    @abstractmethod
    def next_appointments(
        self,
        emails: Collection[str],
        after: datetime,
        calendars: Collection[str],
        skip: Mapping[str, Collection[str]],
        limit: int = 20,
    ) -> list[tuple[str, str, str, str]]:
        """``(calendar, href, uid, instance)`` of the earliest appointments, from about
        ``after`` on, with any of ``emails`` on them (earliest first; appointments in the
        objects named in ``skip`` left out). The caller checks each appointment."""

    @abstractmethod
    def rearm_pending(self, calendar: str) -> bool:
        """True until the calendar's one-time check of all its stored appointments ran."""

    @abstractmethod
    def kept_starts(self, client: str | None = None) -> list[tuple[str, datetime]]:
        """``(client, start)`` of appointments kept, of one client or of all."""

    @abstractmethod
    def pending_writes(self) -> dict[str, int]:
        """How many writes wait in the outbox, per calendar."""

    @abstractmethod
    def active_holds(self) -> list[Hold]:
        """Tentative holds not yet withdrawn."""

    @abstractmethod
    def outbox(self, status: str = "pending") -> list[OutboxRow]:
        """Outbox rows in that status, in the order they were intended."""

    @abstractmethod
    def finish_writes(
        self, outcomes: Sequence[tuple[str, str, str | None]], at: datetime, anchor: Anchor
    ) -> None:
        """Record writes' outcomes ``(key, status, error)`` and move the audit anchor,
        atomically."""

    @abstractmethod
    def close(self) -> None:
        """Close the store."""


def encode_instances(instances: Iterable[Instance]) -> str:
    """Serialize instances to compact JSON for the ``objects.instances`` column."""
    return json.dumps(instance_rows(instances), separators=(",", ":"))


def instance_rows(instances: Iterable[Instance]) -> list[list[Any]]:
    """The instances as :func:`encode_instances` writes them, before JSON."""
    return [_instance_row(i) for i in instances]


def decode_instances(text: str) -> tuple[Instance, ...]:
    """Inverse of :func:`encode_instances`."""
    return tuple(_instance_from_row(row) for row in json.loads(text))


def _instance_row(i: Instance) -> list[Any]:
    return [
        i.uid,
        format_optional(i.recurrence_id),
        format_when(i.start),
        format_when(i.end),
        i.status.value,
        i.summary,
        i.location,
        i.description,
        i.organizer,
        [list(a) for a in i.attendees],
        list(i.categories),
        i.transparent,
        format_optional(i.modified),
        format_optional(i.series_start),
    ]


def _instance_from_row(row: list[Any]) -> Instance:
    (
        uid,
        rid,
        start,
        end,
        status,
        summary,
        location,
        description,
        organizer,
        attendees,
        categories,
        transparent,
        modified,
        series_start,
    ) = row
    modified_at = parse_when(modified) if modified else None
    return Instance(
        uid=uid,
        recurrence_id=parse_when(rid) if rid else None,
        start=parse_when(start),
        end=parse_when(end),
        status=Status(status),
        summary=summary,
        location=location,
        description=description,
        organizer=organizer,
        attendees=tuple((a[0], a[1]) for a in attendees),
        categories=tuple(categories),
        transparent=bool(transparent),
        modified=modified_at if isinstance(modified_at, datetime) else None,
        series_start=parse_when(series_start) if series_start else None,
    )
