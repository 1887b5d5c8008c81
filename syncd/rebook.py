"""Rebooking suggestions: free slots for a freed appointment. Pure: no I/O, no clock reads.

Everything is compared in UTC; working hours and the candidate grid are local wall-clock
times in the owner's zone, converted per day so that DST change days come out right.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from syncd.model import When

__all__ = [
    "WEEKDAYS",
    "Busy",
    "BusyIndex",
    "Habits",
    "Slot",
    "busy_from_instance",
    "find_slots",
]

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The keys of ``working_hours``, indexed by :meth:`datetime.weekday` (0 = Monday)."""

_DAY = timedelta(days=1)
_DAY_SECONDS = _DAY.total_seconds()


def _require_aware(value: datetime, name: str) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class Busy:
    """A half-open interval ``[start, end)`` during which the owner is not free."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware(self.start, "Busy.start")
        _require_aware(self.end, "Busy.end")
        if self.end < self.start:
            raise ValueError(f"Busy ends before it starts: {self.start} > {self.end}")


@dataclass(frozen=True, slots=True)
class Habits:
    """How often the client kept appointments per (weekday 0=Mon..6, local hour) in the
    owner's zone."""

    counts: Mapping[tuple[int, int], int]

    @classmethod
    def from_starts(cls, starts: Iterable[datetime], zone: ZoneInfo) -> Habits:
        """Count kept appointment starts (aware datetimes) by local weekday and hour."""
        counter: Counter[tuple[int, int]] = Counter()
        for start in starts:
            _require_aware(start, "habit start")
            local = start.astimezone(zone)
            counter[(local.weekday(), local.hour)] += 1
        return cls(counts=dict(counter))

    def shares(self) -> dict[tuple[int, int], float]:
        """Each (weekday, hour)'s share of all kept appointments, 0..1 (empty if none)."""
        total = sum(n for n in self.counts.values() if n > 0)
        if total == 0:
            return {}
        return {key: n / total for key, n in self.counts.items() if n > 0}


@dataclass(frozen=True, slots=True)
class Slot:
    """A suggested free slot ``[start, end)`` in UTC, with its ranking score."""

    start: datetime
    end: datetime
    score: float


class BusyIndex:
    """Busy intervals sorted by start, for fast overlap queries (bisect); built once per
    cycle from every watched calendar's instances."""

    __slots__ = ("_max_ends", "_starts")

    def __init__(self, intervals: Iterable[Busy]) -> None:
        ordered = sorted((b.start.astimezone(UTC), b.end.astimezone(UTC)) for b in intervals)
        self._starts: list[datetime] = [start for start, _ in ordered]
        self._max_ends: list[datetime] = []
        for _, end in ordered:
            if self._max_ends and self._max_ends[-1] > end:
                end = self._max_ends[-1]
            self._max_ends.append(end)

    def __len__(self) -> int:
        """The number of intervals indexed."""
        return len(self._starts)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when some interval ``[b.start, b.end)`` meets ``[start, end)``, i.e.
        ``b.start < end and start < b.end``. O(log n)."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        return self._overlaps(start, end)

    def _overlaps(self, start: datetime, end: datetime) -> bool:
        before = bisect_left(self._starts, end)  # intervals starting before ``end``
        return before > 0 and self._max_ends[before - 1] > start


def _wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """A naive local wall time as a UTC instant (fold=0 when ambiguous), or None when the
    wall time does not exist (spring-forward gap)."""
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def _readings(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The earliest and latest UTC instants a local wall time may denote (equal unless the
    wall time is ambiguous or does not exist)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return min(first, second), max(first, second)


def _earliest_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest instant a local wall time may denote: so a closing time never stretches
    into a DST gap or past its first occurrence in a fold."""
    return _readings(wall, zone)[0]


def _midnight(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return _readings(datetime.combine(day, time()), zone)


def busy_from_instance(start: When, end: When, zone: ZoneInfo) -> Busy:
    """An all-day instance (dates) blocks its whole days in the owner's zone (end date
    exclusive); a timed one blocks [start, end). Each side is read on its own (a midnight
    that DST makes odd is read widely); an instance ending before it starts blocks only its
    start instant."""
    begin = start.astimezone(UTC) if isinstance(start, datetime) else _midnight(start, zone)[0]
    finish = end.astimezone(UTC) if isinstance(end, datetime) else _midnight(end, zone)[1]
    return Busy(begin, max(begin, finish))


def _check_hours(working_hours: Mapping[str, tuple[time, time]]) -> None:
    for key, (opens, closes) in working_hours.items():
        if key not in WEEKDAYS:
            raise ValueError(f"unknown weekday {key!r} in working hours (use {WEEKDAYS})")
        if not opens < closes:
            raise ValueError(f"working hours for {key} must open before they close")


def _check_args(
    duration: timedelta, granularity: timedelta, buffer: timedelta, *moments: datetime
) -> None:
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if granularity <= timedelta(0):
        raise ValueError("granularity must be positive")
    if buffer < timedelta(0):
        raise ValueError("buffer must not be negative")
    for moment in moments:
        _require_aware(moment, "search bound")


def _local_dates(first: datetime, last: datetime, zone: ZoneInfo) -> Iterator[date]:
    day = first.astimezone(zone).date()
    end = last.astimezone(zone).date()
    while day <= end:
        yield day
        day += _DAY


def _day_starts(
    day: date, opens: time, closes: time, granularity: timedelta, zone: ZoneInfo
) -> Iterator[tuple[datetime, int]]:
    """Existing grid starts of one day, as (UTC instant, local hour), in increasing order."""
    wall = datetime.combine(day, opens)
    stop = datetime.combine(day, closes)
    while wall < stop:
        instant = _wall_to_utc(wall, zone)
        if instant is not None:
            yield instant, wall.hour
        wall += granularity


@dataclass(frozen=True, slots=True)
class _Search:
    """The fixed inputs of one search, so the per-day step stays small."""

    duration: timedelta
    original: datetime
    earliest: datetime
    latest: datetime
    busy: BusyIndex
    excluded: BusyIndex
    buffer: timedelta
    granularity: timedelta
    zone: ZoneInfo
    shares: Mapping[tuple[int, int], float]

    def score(self, start: datetime, weekday: int, hour: int) -> float:
        days_away = abs((start - self.original).total_seconds()) / _DAY_SECONDS
        return self.shares.get((weekday, hour), 0.0) * 2 + 1 / (1 + days_away)

    def free(self, start: datetime, end: datetime) -> bool:
        widened = self.busy._overlaps(start - self.buffer, end + self.buffer)
        return not widened and not self.excluded._overlaps(start, end)

    def day(self, day: date, opens: time, closes: time) -> Iterator[Slot]:
        closing = _earliest_utc(datetime.combine(day, closes), self.zone)
        for start, hour in _day_starts(day, opens, closes, self.granularity, self.zone):
            end = start + self.duration
            if end > closing or end > self.latest:
                return  # starts only grow within a day
            if start >= self.earliest and self.free(start, end):
                yield Slot(start, end, self.score(start, day.weekday(), hour))


def find_slots(
    *,
    duration: timedelta,
    original_start: datetime,
    search_from: datetime,
    search_until: datetime,
    busy: BusyIndex,
    working_hours: Mapping[str, tuple[time, time]],
    zone: ZoneInfo,
    buffer: timedelta,
    granularity: timedelta,
    count: int,
    habits: Habits | None = None,
    exclude: Iterable[tuple[datetime, datetime]] = (),
) -> list[Slot]:
    """The best ``count`` free slots of length ``duration``, best first.

    Candidates start on the local ``granularity`` grid from each day's opening time
    (``working_hours`` keys ``"mon"``..``"sun"``, local times; a missing day has no hours),
    lie inside that day's hours and inside ``[search_from, search_until]``, overlap no busy
    interval widened by ``buffer`` on both sides, and overlap no ``exclude`` interval.
    Nonexistent wall times (spring-forward) are skipped; ambiguous ones use fold=0.
    Score: the client's habitual share at that local weekday and hour times 2, plus
    ``1 / (1 + days from original_start)``; ties go to the earlier start.
    """
    if count <= 0:
        return []
    _check_args(duration, granularity, buffer, original_start, search_from, search_until)
    _check_hours(working_hours)
    search = _Search(
        duration=duration,
        original=original_start.astimezone(UTC),
        earliest=search_from.astimezone(UTC),
        latest=search_until.astimezone(UTC),
        busy=busy,
        excluded=BusyIndex(Busy(start, end) for start, end in exclude),
        buffer=buffer,
        granularity=granularity,
        zone=zone,
        shares=habits.shares() if habits else {},
    )
    candidates: list[Slot] = []
    for day in _local_dates(search_from, search_until, zone):
        hours = working_hours.get(WEEKDAYS[day.weekday()])
        if hours is not None:
            candidates.extend(search.day(day, *hours))
    return heapq.nsmallest(count, candidates, key=lambda slot: (-slot.score, slot.start))
