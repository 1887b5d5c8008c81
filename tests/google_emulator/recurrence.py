"""Recurring series: the master's ``recurrence`` lines expanded into instances.

The series is expanded in the zone of ``start.timeZone`` (wall-clock times stay put across
DST, as RFC 5545 wants), with :mod:`dateutil.rrule`. The master's own start is always the
first instance (Google: "for a recurring event, this is the start time of the first
instance"), unless an ``EXDATE`` removes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr  # type: ignore[import-untyped]

from tests.google_emulator.errors import invalid, required
from tests.google_emulator.times import When, render_datetime, zone

__all__ = ["Occurrence", "Series", "parse_series", "parse_stamp"]

Occurrence = datetime  # timed: aware, in the series zone; all-day: naive midnight

_LINE = re.compile(r"(?P<name>[A-Za-z-]+)(?P<params>(;[^:]*)?):(?P<value>.+)", re.DOTALL)
_UNTIL = re.compile(r"UNTIL=([0-9TZtz]+)", re.IGNORECASE)
_STAMP = re.compile(r"(\d{8})(?:T(\d{6})Z)?")


def _bad_rule() -> Exception:
    return invalid("Invalid recurrence rule.", location="recurrence")


@dataclass(frozen=True, slots=True)
class Series:
    """A parsed recurring master: its first start, duration, zone and rule set."""

    all_day: bool
    tz: ZoneInfo
    zone_name: str | None  # start.timeZone as sent (None only for all-day masters)
    end_zone_name: str | None
    first: Occurrence
    duration: timedelta
    rules: rruleset

    def instant(self, occ: Occurrence, calendar_zone: ZoneInfo) -> datetime:
        """The UTC start instant of ``occ``; a day starts at midnight in ``calendar_zone``."""
        if self.all_day:
            return occ.replace(tzinfo=calendar_zone).astimezone(UTC)
        return occ.astimezone(UTC)

    def stamp(self, occ: Occurrence) -> str:
        """The instance id suffix: ``YYYYMMDDTHHMMSSZ`` (UTC) or ``YYYYMMDD`` for all-day."""
        if self.all_day:
            return occ.strftime("%Y%m%d")
        return occ.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def original_start(self, occ: Occurrence) -> dict[str, Any]:
        """``originalStartTime`` of the instance at ``occ``."""
        if self.all_day:
            return {"date": occ.date().isoformat()}
        out: dict[str, Any] = {"dateTime": render_datetime(occ, self.tz)}
        if self.zone_name:
            out["timeZone"] = self.zone_name
        return out

    def times(self, occ: Occurrence) -> tuple[dict[str, Any], dict[str, Any]]:
        """``start`` and ``end`` of the generated instance at ``occ``."""
        if self.all_day:
            end_day = (occ + self.duration).date()
            return {"date": occ.date().isoformat()}, {"date": end_day.isoformat()}
        end = occ.astimezone(UTC) + self.duration
        end_tz = ZoneInfo(self.end_zone_name) if self.end_zone_name else self.tz
        start_out: dict[str, Any] = {"dateTime": render_datetime(occ, self.tz)}
        end_out: dict[str, Any] = {"dateTime": render_datetime(end, end_tz)}
        if self.zone_name:
            start_out["timeZone"] = self.zone_name
        if self.end_zone_name:
            end_out["timeZone"] = self.end_zone_name
        return start_out, end_out

    def _local(self, instant: datetime, calendar_zone: ZoneInfo) -> datetime:
        if self.all_day:
            return instant.astimezone(calendar_zone).replace(tzinfo=None)
        return instant

    def starting(
        self, calendar_zone: ZoneInfo, after: datetime | None, before: datetime | None
    ) -> Iterator[Occurrence]:
        """Occurrences with ``after < start < before`` (UTC instants; ``None`` is unbounded)."""
        source: Iterator[datetime]
        if after is None:
            source = iter(self.rules)
        else:
            source = self.rules.xafter(self._local(after, calendar_zone), inc=False)
        limit = None if before is None else self._local(before, calendar_zone)
        for occ in source:
            if limit is not None and occ >= limit:
                return
            yield occ

    def overlapping(
        self, calendar_zone: ZoneInfo, time_min: datetime | None, time_max: datetime | None
    ) -> Iterator[Occurrence]:
        """Occurrences whose span overlaps ``(time_min, time_max)``."""
        after = None if time_min is None else time_min - self.duration - timedelta(microseconds=1)
        for occ in self.starting(calendar_zone, after, time_max):
            if time_min is None or self.instant(occ, calendar_zone) + self.duration > time_min:
                yield occ

    def find(self, stamp: str) -> Occurrence | None:
        """The occurrence whose id suffix is ``stamp``, if the series has one."""
        parsed = parse_stamp(stamp)
        if parsed is None or isinstance(parsed, datetime) == self.all_day:
            return None
        if isinstance(parsed, datetime):
            candidate: datetime = parsed.astimezone(self.tz)
        else:
            candidate = datetime.combine(parsed, time())
        found = self.rules.after(candidate, inc=True)
        return found if found == candidate else None


def parse_stamp(stamp: str) -> datetime | date | None:
    """An instance id suffix as an instant (UTC) or a day; ``None`` when malformed."""
    match = _STAMP.fullmatch(stamp)
    if match is None:
        return None
    try:
        if match.group(2) is None:
            return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_series(lines: list[str], start: When, end: When, start_raw: dict[str, Any]) -> Series:
    """The :class:`Series` of a master, or 400 as Google answers a bad one."""
    all_day = start.day is not None
    zone_name = start_raw.get("timeZone") if isinstance(start_raw, dict) else None
    if not all_day and not zone_name:
        raise required("Missing time zone definition for start time.")
    tz = zone(zone_name, "start time") if zone_name else ZoneInfo("UTC")
    if all_day:
        assert start.day is not None
        assert end.day is not None
        first = datetime.combine(start.day, time())
        duration = timedelta(days=(end.day - start.day).days)
    else:
        assert start.instant is not None
        assert end.instant is not None
        first = start.instant.astimezone(tz)
        duration = end.instant - start.instant
    rules = rruleset()
    for line in lines:
        _add_line(rules, line, first, tz, all_day)
    rules.rdate(first)
    return Series(all_day, tz, zone_name, end.zone_name, first, duration, rules)


def _add_line(rules: rruleset, line: object, first: datetime, tz: ZoneInfo, all_day: bool) -> None:
    if not isinstance(line, str):
        raise _bad_rule()
    match = _LINE.fullmatch(line.strip())
    if match is None:
        raise _bad_rule()
    name = match["name"].upper()
    params = _params(match["params"])
    value = match["value"].strip()
    if name in ("RRULE", "EXRULE"):
        rule = _rule(value, first, tz, all_day)
        (rules.rrule if name == "RRULE" else rules.exrule)(rule)
    elif name in ("RDATE", "EXDATE"):
        for item in value.split(","):
            moment = _moment(item.strip(), params, first, tz, all_day)
            (rules.rdate if name == "RDATE" else rules.exdate)(moment)
    else:
        raise _bad_rule()


def _params(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(";"):
        if "=" in part:
            key, _, val = part.partition("=")
            out[key.strip().upper()] = val.strip()
    return out


def _rule(value: str, first: datetime, tz: ZoneInfo, all_day: bool) -> rrule:
    upper = value.upper()
    if "COUNT=" in upper and "UNTIL=" in upper:
        raise _bad_rule()
    fixed = _UNTIL.sub(lambda m: "UNTIL=" + _until(m.group(1), tz, all_day), value)
    try:
        rule = rrulestr(fixed, dtstart=first)
    except (ValueError, TypeError, KeyError, IndexError):
        raise _bad_rule() from None
    if not isinstance(rule, rrule):
        raise _bad_rule()
    return rule


def _until(raw: str, tz: ZoneInfo, all_day: bool) -> str:
    """``UNTIL`` in the form dateutil needs: UTC for timed series, a bare day for all-day ones."""
    raw = raw.upper()
    parsed = parse_stamp(raw) if raw.endswith("Z") or len(raw) == 8 else None
    if parsed is None and re.fullmatch(r"\d{8}T\d{6}", raw):
        try:
            local = datetime.strptime(raw, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
        except ValueError:
            raise _bad_rule() from None
        parsed = local.astimezone(UTC)
    if parsed is None:
        raise _bad_rule()
    if all_day:
        day = parsed.date() if isinstance(parsed, datetime) else parsed
        return day.strftime("%Y%m%d")
    if not isinstance(parsed, datetime):
        parsed = datetime.combine(parsed, time(23, 59, 59), tz).astimezone(UTC)
    return parsed.strftime("%Y%m%dT%H%M%SZ")


def _moment(
    item: str, params: dict[str, str], first: datetime, tz: ZoneInfo, all_day: bool
) -> datetime:
    """One ``RDATE``/``EXDATE`` value as an occurrence of this series."""
    item = item.upper()
    if params.get("VALUE") == "PERIOD" or "/" in item:
        raise _bad_rule()
    parsed = parse_stamp(item)
    if parsed is None and re.fullmatch(r"\d{8}T\d{6}", item):
        item_zone = zone(params["TZID"], "recurrence") if "TZID" in params else tz
        try:
            parsed = datetime.strptime(item, "%Y%m%dT%H%M%S").replace(tzinfo=item_zone)
        except ValueError:
            raise _bad_rule() from None
    if parsed is None:
        raise _bad_rule()
    if all_day:
        day = parsed.astimezone(tz).date() if isinstance(parsed, datetime) else parsed
        return datetime.combine(day, time())
    if isinstance(parsed, datetime):
        return parsed.astimezone(tz)
    return datetime.combine(parsed, first.timetz()).replace(tzinfo=tz)
