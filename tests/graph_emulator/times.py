"""Graph's time values: ``dateTimeTimeZone`` objects, query windows, timestamps.

Zone names may be IANA names or the Windows names Outlook uses (a table of the common ones).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.graph_emulator.errors import GraphError, bad_request, body_read

__all__ = [
    "EPOCH_TIME",
    "format_local",
    "format_stamp",
    "format_utc",
    "parse_date",
    "parse_local",
    "parse_query_time",
    "zone",
]

EPOCH_TIME = "0001-01-01T00:00:00Z"

WINDOWS_ZONES = {
    "UTC": "UTC",
    "Coordinated Universal Time": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "Romance Standard Time": "Europe/Paris",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Russian Standard Time": "Europe/Moscow",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "India Standard Time": "Asia/Kolkata",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "Korea Standard Time": "Asia/Seoul",
    "Singapore Standard Time": "Asia/Singapore",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "Israel Standard Time": "Asia/Jerusalem",
}

_LOCAL = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def zone(name: object, field: str = "timeZone") -> tzinfo:
    """The zone for an IANA or Windows zone name; 400 naming ``field`` when unknown."""
    if not isinstance(name, str) or not name:
        raise body_read(f"A time zone name is required in '{field}'.")
    iana = WINDOWS_ZONES.get(name, name)
    if iana.startswith(("/", ".")) or ".." in iana:
        raise _unknown_zone(name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise _unknown_zone(name) from None


def _unknown_zone(name: str) -> GraphError:
    return bad_request(
        f"A valid TimeZone value must be specified. The following TimeZone value is not "
        f"supported: '{name}'.",
        "TimeZoneNotSupportedException",
    )


def parse_local(value: object, field: str) -> tuple[datetime, bool]:
    """A ``dateTime`` string: (naive local time, or aware when it carries an offset; aware?)."""
    match = _LOCAL.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise body_read(f"Cannot convert the literal '{value}' to a date and time in '{field}'.")
    base, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime.fromisoformat(base).replace(microsecond=micros)
    except ValueError:
        raise body_read(f"'{value}' is not a valid date and time in '{field}'.") from None
    if offset:
        text = "+00:00" if offset in "Zz" else offset
        return parsed.replace(tzinfo=datetime.fromisoformat(f"2000-01-01T00:00{text}").tzinfo), True
    return parsed, False


def parse_query_time(value: str | None, name: str) -> datetime:
    """A ``startDateTime``/``endDateTime`` parameter in UTC: an offset wins, none means UTC."""
    if not value:
        raise bad_request(
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
            "ErrorInvalidParameter",
        )
    try:
        if _DATE.fullmatch(value):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        parsed, aware = parse_local(value, name)
    except GraphError:
        raise bad_request(
            f"The value '{value}' of parameter '{name}' is invalid.", "ErrorInvalidParameter"
        ) from None
    return parsed.astimezone(UTC) if aware else parsed.replace(tzinfo=UTC)


def parse_date(value: object, field: str) -> date:
    """A ``yyyy-mm-dd`` date (recurrence ranges)."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise body_read(f"Cannot convert the literal '{value}' to a date in '{field}'.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise body_read(f"'{value}' is not a valid date in '{field}'.") from None


def format_local(value: datetime) -> str:
    """``2026-12-01T10:00:00.0000000`` (the wall time, seven fraction digits, no offset)."""
    v = value  # f-strings: several times faster than strftime when seeding 100,000 events
    day = f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    return f"{day}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}0"


def format_stamp(value: datetime) -> str:
    """``2026-11-27T06:49:55.1234560Z`` (createdDateTime, lastModifiedDateTime)."""
    return format_local(value.astimezone(UTC)) + "Z"


def format_utc(value: datetime) -> str:
    """``2026-12-01T10:00:00Z`` (``originalStart``, Edm.DateTimeOffset)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
