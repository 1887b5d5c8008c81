"""Time values as the Calendar API writes and reads them (RFC 3339, ``EventDateTime``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.google_emulator.errors import ApiError, invalid, required

__all__ = [
    "When",
    "format_stamp",
    "parse_event_time",
    "parse_query_time",
    "render_datetime",
    "render_when",
    "zone",
]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def zone(name: object, field: str) -> ZoneInfo:
    """The IANA zone ``name``; 400 naming ``field`` when it is not one."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise invalid(f"Invalid time zone definition for {field}.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise invalid(f"Invalid time zone definition for {field}.") from None


def parse_query_time(value: str, name: str) -> datetime:
    """A ``timeMin``/``timeMax``/``updatedMin`` parameter: RFC 3339 with a mandatory offset."""
    if not _RFC3339.fullmatch(value):
        raise ApiError(400, "badRequest", "Bad Request", location=name)
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except ValueError:
        raise ApiError(400, "badRequest", "Bad Request", location=name) from None


@dataclass(frozen=True, slots=True)
class When:
    """One parsed ``EventDateTime``: a day (all-day) or an instant with its zone."""

    day: date | None
    instant: datetime | None  # aware, UTC
    zone_name: str | None  # the object's ``timeZone`` as sent, if any

    def start_instant(self, calendar_zone: ZoneInfo) -> datetime:
        """The instant this value stands for; a day starts at midnight in ``calendar_zone``."""
        if self.instant is not None:
            return self.instant
        assert self.day is not None
        return datetime.combine(self.day, time(), calendar_zone).astimezone(UTC)


def parse_event_time(value: object, field: str) -> When:
    """An event's ``start``/``end``/``originalStartTime`` object, checked as Google does."""
    if value is None:
        raise required(f"Missing {field} time.")
    if not isinstance(value, dict):
        raise invalid(f"Invalid value for: {field}")
    raw_day, raw_time, zone_name = value.get("date"), value.get("dateTime"), value.get("timeZone")
    if zone_name is not None:
        zone(zone_name, f"{field} time")
    if raw_day is not None and raw_time is not None:
        raise invalid(f"Invalid {field} time.")
    if raw_day is not None:
        if not isinstance(raw_day, str) or not _DATE.fullmatch(raw_day):
            raise invalid(f"Invalid {field} time.")
        try:
            return When(date.fromisoformat(raw_day), None, zone_name)
        except ValueError:
            raise invalid(f"Invalid {field} time.") from None
    if raw_time is None:
        raise required(f"Missing {field} time.")
    return When(None, _parse_instant(raw_time, zone_name, field), zone_name)


def _parse_instant(raw: object, zone_name: str | None, field: str) -> datetime:
    if not isinstance(raw, str):
        raise invalid(f"Invalid {field} time.")
    try:
        if _RFC3339.fullmatch(raw):
            parsed = datetime.fromisoformat(raw.upper())
        elif _LOCAL.fullmatch(raw):
            if zone_name is None:
                raise required(f"Missing time zone definition for {field} time.")
            parsed = datetime.fromisoformat(raw.upper()).replace(tzinfo=zone(zone_name, field))
        else:
            raise invalid(f"Invalid {field} time.")
    except ValueError:
        raise invalid(f"Invalid {field} time.") from None
    return parsed.astimezone(UTC)


def render_datetime(instant: datetime, tz: ZoneInfo) -> str:
    """An RFC 3339 ``dateTime`` as Google writes it: whole seconds, the zone's offset or ``Z``."""
    text = instant.astimezone(tz).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def render_when(when: When, calendar_zone: ZoneInfo) -> dict[str, Any]:
    """The stored ``EventDateTime``: the day, or the instant in its zone (else the calendar's)."""
    if when.day is not None:
        return {"date": when.day.isoformat()}
    assert when.instant is not None
    tz = ZoneInfo(when.zone_name) if when.zone_name else calendar_zone
    out: dict[str, Any] = {"dateTime": render_datetime(when.instant, tz)}
    if when.zone_name:
        out["timeZone"] = when.zone_name
    return out


def format_stamp(moment: datetime) -> str:
    """A read-only timestamp (``created``/``updated``): UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
