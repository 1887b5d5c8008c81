"""``patternedRecurrence``: parse and validate it, render it, list the dates it yields.

Patterns: ``daily``, ``weekly``, ``absoluteMonthly``, ``relativeMonthly``, ``absoluteYearly``,
``relativeYearly``; ranges: ``endDate``, ``noEnd``, ``numbered``. Dates are local dates in the
range's ``recurrenceTimeZone`` (default: the event's start zone).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tests.graph_emulator.errors import bad_request, body_read
from tests.graph_emulator.times import parse_date, zone

__all__ = ["Recurrence", "parse_recurrence"]

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEXES = ("first", "second", "third", "fourth", "last")
PATTERNS = (
    "daily",
    "weekly",
    "absoluteMonthly",
    "relativeMonthly",
    "absoluteYearly",
    "relativeYearly",
)
RANGES = ("endDate", "noEnd", "numbered")
_PATTERN_KEYS = {"type", "interval", "month", "dayOfMonth", "daysOfWeek", "firstDayOfWeek", "index"}
_RANGE_KEYS = {"type", "startDate", "endDate", "recurrenceTimeZone", "numberOfOccurrences"}


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A validated recurrence."""

    kind: str
    interval: int
    days: tuple[int, ...]  # Python weekday numbers, Monday = 0
    day_of_month: int
    month: int
    first_day: int
    index: str
    range_kind: str
    start_date: date
    end_date: date | None
    count: int | None
    zone_name: str

    def dates(self) -> Iterator[date]:
        """The local dates of the series, in order, within the range."""
        produced = 0
        for day in self._pattern_dates():
            if day < self.start_date:
                continue
            if self.end_date is not None and day > self.end_date:
                return
            if self.count is not None and produced >= self.count:
                return
            produced += 1
            yield day

    def _pattern_dates(self) -> Iterator[date]:
        if self.kind == "daily":
            step = timedelta(days=self.interval)
            day = self.start_date
            while True:
                yield day
                day += step
        elif self.kind == "weekly":
            yield from self._weekly()
        else:
            yield from self._monthly()

    def _weekly(self) -> Iterator[date]:
        week = self.start_date - timedelta(days=(self.start_date.weekday() - self.first_day) % 7)
        offsets = sorted((d - self.first_day) % 7 for d in self.days)
        while True:
            for offset in offsets:
                yield week + timedelta(days=offset)
            week += timedelta(weeks=self.interval)

    def _monthly(self) -> Iterator[date]:
        yearly = self.kind.endswith("Yearly")
        year = self.start_date.year
        month = self.month if yearly else self.start_date.month
        step = 12 * self.interval if yearly else self.interval
        while year <= 9999:
            day = self._day_in(year, month)
            if day is not None:
                yield day
            month += step
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1

    def _day_in(self, year: int, month: int) -> date | None:
        last = calendar.monthrange(year, month)[1]
        if self.kind.startswith("absolute"):
            # Outlook puts "day 31" on the last day of shorter months.
            return date(year, month, min(self.day_of_month, last))
        matching = [
            date(year, month, d)
            for d in range(1, last + 1)
            if date(year, month, d).weekday() in self.days
        ]
        if not matching:
            return None
        position = INDEXES.index(self.index)
        return matching[-1] if self.index == "last" else matching[min(position, len(matching) - 1)]

    def render(self) -> dict[str, Any]:
        """The recurrence as Graph returns it (every field present)."""
        return {
            "pattern": {
                "type": self.kind,
                "interval": self.interval,
                "month": self.month if self.kind.endswith("Yearly") else 0,
                "dayOfMonth": self.day_of_month,
                "daysOfWeek": [DAYS[d] for d in self.days],
                "firstDayOfWeek": DAYS[self.first_day],
                "index": self.index,
            },
            "range": {
                "type": self.range_kind,
                "startDate": self.start_date.isoformat(),
                "endDate": (self.end_date or date(1, 1, 1)).isoformat(),
                "recurrenceTimeZone": self.zone_name,
                "numberOfOccurrences": self.count or 0,
            },
        }


def parse_recurrence(value: object, default_zone: str, start_date: date) -> Recurrence | None:
    """Validate a ``recurrence`` value (``None`` clears it); 400 naming the bad field."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise body_read("'recurrence' must be an object with 'pattern' and 'range'.")
    pattern, range_ = value.get("pattern"), value.get("range")
    if not isinstance(pattern, dict) or not isinstance(range_, dict):
        raise bad_request("'recurrence' needs both 'pattern' and 'range'.")
    _no_unknown(pattern, _PATTERN_KEYS, "recurrence.pattern")
    _no_unknown(range_, _RANGE_KEYS, "recurrence.range")
    kind = _choice(pattern.get("type"), PATTERNS, "recurrence.pattern.type")
    range_kind = _choice(range_.get("type"), RANGES, "recurrence.range.type")
    days = _days(
        pattern.get("daysOfWeek"), required=kind in ("weekly", "relativeMonthly", "relativeYearly")
    )
    first = range_.get("startDate")
    zone_name = range_.get("recurrenceTimeZone") or default_zone
    zone(zone_name, "recurrence.range.recurrenceTimeZone")
    rec = Recurrence(
        kind=kind,
        interval=_int(pattern.get("interval", 1), "recurrence.pattern.interval", 1, 99),
        days=days,
        day_of_month=_day_of_month(pattern, kind),
        month=_month(pattern, kind),
        first_day=DAYS.index(
            _choice(pattern.get("firstDayOfWeek") or "sunday", DAYS, "firstDayOfWeek")
        ),
        index=_choice(pattern.get("index") or "first", INDEXES, "recurrence.pattern.index"),
        range_kind=range_kind,
        start_date=parse_date(first, "recurrence.range.startDate") if first else start_date,
        end_date=_end_date(range_, range_kind),
        count=_count(range_, range_kind),
        zone_name=zone_name,
    )
    if rec.end_date is not None and rec.end_date < rec.start_date:
        raise bad_request("The recurrence range's endDate is before its startDate.")
    return rec


def _no_unknown(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed and not key.startswith("@odata."):
            raise body_read(f"The property '{key}' does not exist on {where}.")


def _choice(value: object, allowed: tuple[str, ...], field: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise body_read(
            f"'{value}' is not a valid value for '{field}' (one of {', '.join(allowed)})."
        )
    return value


def _int(value: object, field: str, low: int, high: int) -> int:
    if value is None:
        raise bad_request(f"'{field}' is required for this recurrence.")
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise bad_request(f"'{field}' must be a whole number from {low} to {high}, not {value!r}.")
    return value


def _days(value: object, *, required: bool) -> tuple[int, ...]:
    if value in (None, []):
        if required:
            raise bad_request("'recurrence.pattern.daysOfWeek' is required for this pattern type.")
        return ()
    if not isinstance(value, list):
        raise body_read("'recurrence.pattern.daysOfWeek' must be a list of day names.")
    return tuple(sorted({DAYS.index(_choice(d, DAYS, "daysOfWeek")) for d in value}))


def _day_of_month(pattern: dict[str, Any], kind: str) -> int:
    if kind not in ("absoluteMonthly", "absoluteYearly"):
        return 0
    return _int(pattern.get("dayOfMonth"), "recurrence.pattern.dayOfMonth", 1, 31)


def _month(pattern: dict[str, Any], kind: str) -> int:
    if not kind.endswith("Yearly"):
        return 0
    return _int(pattern.get("month"), "recurrence.pattern.month", 1, 12)


def _end_date(range_: dict[str, Any], kind: str) -> date | None:
    if kind != "endDate":
        return None
    if range_.get("endDate") is None:
        raise bad_request("'recurrence.range.endDate' is required for an endDate range.")
    return parse_date(range_.get("endDate"), "recurrence.range.endDate")


def _count(range_: dict[str, Any], kind: str) -> int | None:
    if kind != "numbered":
        return None
    return _int(range_.get("numberOfOccurrences"), "recurrence.range.numberOfOccurrences", 1, 999)
