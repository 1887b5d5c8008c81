"""Times as notes show them, in the owner's zone: ``"Tue 8 Dec 14:00"``, slots and all-day
spans."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.model import When

__all__ = ["day_text", "local_time", "point_text", "slot_text", "when_text"]

_RANGE = "\u2013"  # en dash
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time(value: datetime, zone: ZoneInfo) -> datetime:
    """``value`` in ``zone``; a naive datetime is refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: syncd keeps only aware datetimes")
    return value.astimezone(zone)


def day_text(value: date) -> str:
    """``"Tue 8 Dec"``."""
    return f"{_WEEKDAYS[value.weekday()]} {value.day} {_MONTHS[value.month - 1]}"


def point_text(value: When, zone: ZoneInfo) -> str:
    """``"Tue 8 Dec 14:00"``, or ``"Tue 8 Dec"`` for a date."""
    if not isinstance(value, datetime):
        return day_text(value)
    local = local_time(value, zone)
    return f"{day_text(local.date())} {local:%H:%M}"


def slot_text(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """``"Tue 8 Dec 14:00-15:00"`` (with an en dash); a slot over midnight names both days."""
    first, last = local_time(start, zone), local_time(end, zone)
    if first.date() == last.date():
        return f"{day_text(first.date())} {first:%H:%M}{_RANGE}{last:%H:%M}"
    return f"{point_text(start, zone)} {_RANGE} {point_text(end, zone)}"


def when_text(start: When, end: When, zone: ZoneInfo) -> str:
    """An appointment's span: a slot, a point, or whole days."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return slot_text(start, end, zone)
    if isinstance(start, datetime) or isinstance(end, datetime):
        return point_text(start, zone)
    last = max(start, end - timedelta(days=1))
    if last == start:
        return f"{day_text(start)} (all day)"
    return f"{day_text(start)} {_RANGE} {day_text(last)} (all day)"
