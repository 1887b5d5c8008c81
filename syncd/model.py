"""The normalized model every connector and the engine share.

Glossary:

- *object*: one stored calendar resource (a file, a CalDAV href, a provider event id) holding
  one event or one series master with its overrides, as iCalendar text.
- *instance*: one occurrence of an event, keyed by ``(uid, recurrence_id)``; ``recurrence_id`` is
  the original start of an occurrence of a recurring series and ``None`` for a single event.
- *change*: what the diff found for one instance between two snapshots of one calendar.

All datetimes are timezone-aware UTC; all-day values stay ``date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

__all__ = [
    "Change",
    "ChangeKind",
    "Instance",
    "InstanceKey",
    "Status",
    "When",
    "format_optional",
    "format_when",
    "instance_key",
    "parse_when",
]

When = datetime | date
"""A point in time (aware UTC datetime) or an all-day date."""

InstanceKey = tuple[str, str]
"""``(uid, original start as text or "")``: the identity of an instance inside one calendar."""


class Status(StrEnum):
    """The iCalendar STATUS of an instance, lower-cased."""

    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Instance:
    """One occurrence of an event, normalized; only the fields syncd compares or reports."""

    uid: str
    recurrence_id: When | None
    start: When
    end: When
    status: Status
    summary: str = ""
    location: str = ""
    description: str = ""
    organizer: str | None = None
    attendees: tuple[tuple[str, str], ...] = ()
    """``(email, PARTSTAT)`` pairs, emails lower-cased without ``mailto:``, sorted by email."""
    categories: tuple[str, ...] = ()
    transparent: bool = False
    modified: datetime | None = None
    """The provider's LAST-MODIFIED of the component, when it has one."""
    series_start: When | None = None
    """DTSTART of the series master, for occurrences of a recurring series."""

    @property
    def key(self) -> InstanceKey:
        """The identity of this instance inside its calendar."""
        return instance_key(self.uid, self.recurrence_id)

    @property
    def all_day(self) -> bool:
        """True when the instance spans whole days (its start is a date)."""
        return not isinstance(self.start, datetime)

    @property
    def cancelled(self) -> bool:
        """True when the instance is cancelled."""
        return self.status is Status.CANCELLED


class ChangeKind(StrEnum):
    """The kinds of change the diff reports."""

    CREATED = "created"
    CANCELLED = "cancelled"
    MOVED = "moved"
    RESPONSE_CHANGED = "response_changed"
    TAGS_CHANGED = "tags_changed"
    EDITED = "edited"


@dataclass(frozen=True, slots=True)
class Change:
    """One detected change of one instance; ``before`` or ``after`` is None for created/removed."""

    kind: ChangeKind
    uid: str
    recurrence_id: When | None
    before: Instance | None
    after: Instance | None

    @property
    def start_before(self) -> When | None:
        """The start before the change, if the instance existed."""
        return self.before.start if self.before else None

    @property
    def start_after(self) -> When | None:
        """The start after the change, if the instance still exists."""
        return self.after.start if self.after else None


def instance_key(uid: str, recurrence_id: When | None) -> InstanceKey:
    """Build the key of an instance from its UID and original start."""
    return (uid, "" if recurrence_id is None else format_when(recurrence_id))


def format_when(value: When) -> str:
    """Render a UTC datetime as ``YYYY-MM-DDTHH:MM:SSZ`` and a date as ``YYYY-MM-DD``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: syncd keeps only aware datetimes")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def format_optional(value: When | None) -> str | None:
    """:func:`format_when`, passing None through."""
    return None if value is None else format_when(value)


def parse_when(text: str) -> When:
    """Inverse of :func:`format_when`."""
    if "T" in text:
        value = datetime.fromisoformat(text)  # reads the trailing "Z" as UTC
        if value.tzinfo is None:
            raise ValueError(f"{text!r} has no zone")
        return value
    return date.fromisoformat(text)
