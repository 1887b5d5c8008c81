"""Small builders of iCalendar text for tests."""

from __future__ import annotations

from datetime import date, datetime

__all__ = ["calendar", "event", "stamp"]


def stamp(value: datetime | date) -> str:
    """Render a datetime (aware UTC → ``Z``, naive → floating) or a date as iCalendar text."""
    if isinstance(value, datetime):
        suffix = "Z" if value.tzinfo is not None else ""
        return value.strftime("%Y%m%dT%H%M%S") + suffix
    return value.strftime("%Y%m%d")


def event(
    uid: str,
    start: datetime | date,
    end: datetime | date,
    *extra: str,
    summary: str = "Session",
    tzid: str | None = None,
) -> str:
    """One VEVENT; ``tzid`` writes local times with that TZID, else UTC/dates as given."""

    def prop(name: str, value: datetime | date) -> str:
        if not isinstance(value, datetime):
            return f"{name};VALUE=DATE:{stamp(value)}"
        if tzid:
            return f"{name};TZID={tzid}:{stamp(value.replace(tzinfo=None))}"
        return f"{name}:{stamp(value)}"

    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"SUMMARY:{summary}",
        prop("DTSTART", start),
        prop("DTEND", end),
        *extra,
        "END:VEVENT",
    ]
    return "".join(f"{line}\r\n" for line in lines)


def calendar(*events: str) -> bytes:
    """Wrap VEVENT texts into one VCALENDAR object."""
    body = "".join(events)
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncd tests//EN\r\n{body}END:VCALENDAR\r\n"
    ).encode()
