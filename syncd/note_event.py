"""The note event itself: one transparent, private VEVENT without attendees or alarms in the
owner's notes calendar, at a deterministic UID and href derived from its key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from icalendar import Calendar, Event

from syncd.model import When

__all__ = ["NOTE_PREFIX", "ical_when", "note_event", "note_href", "note_uid", "unique_text"]

NOTE_PREFIX = "syncd-note-"
"""Every note's UID and href start with this."""

_PRODID = "-//syncd//notes//EN"
_KEY_LENGTH = 40


def note_uid(key: str) -> str:
    """The UID of the note for the verdict with idempotency key ``key`` (a hex digest)."""
    return f"{NOTE_PREFIX}{key[:_KEY_LENGTH]}@syncd"


def note_href(key: str) -> str:
    """The file name (CalDAV href, local file) of the note for verdict key ``key``."""
    return f"{NOTE_PREFIX}{key[:_KEY_LENGTH]}.ics"


def note_event(
    key: str,
    start: When,
    end: When,
    summary: str,
    description: str,
    *,
    categories: Sequence[str],
    stamp: datetime,
    private: Mapping[str, str],
) -> bytes:
    """The note as one VCALENDAR object; equal inputs give equal bytes."""
    if stamp.tzinfo is None:
        raise ValueError("the note's stamp must be an aware datetime")
    event = Event()
    event.add("UID", note_uid(key))
    event.add("DTSTAMP", stamp.astimezone(UTC))
    event.add("DTSTART", ical_when(start))
    event.add("DTEND", ical_when(end))
    event.add("SUMMARY", summary)
    event.add("DESCRIPTION", description)
    event.add("TRANSP", "TRANSPARENT")
    event.add("CLASS", "PRIVATE")
    markers = unique_text(categories)
    if markers:
        event.add("CATEGORIES", markers)
    event.add("X-SYNCD-KEY", key)
    for name, value in private.items():
        event.add(name, value)
    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", _PRODID)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


def ical_when(value: When) -> When:
    """A datetime in UTC; a date as it is."""
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def unique_text(values: Iterable[str]) -> list[str]:
    """Non-empty values, stripped, first of each in order."""
    return list(dict.fromkeys(text for value in values if (text := value.strip())))
