"""The pure slot finder: busy intervals and working hours in, ranked free slots out."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.rebook import WEEKDAYS, Busy, BusyIndex, Habits, Slot, busy_from_instance, find_slots

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = date(2026, 6, 1)  # an ordinary week, CEST (UTC+2)
NINE_TO_FIVE = {day: (time(9), time(17)) for day in WEEKDAYS[:5]}
ALL_WEEK = {day: (time(9), time(17)) for day in WEEKDAYS}
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def local(day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    """A Berlin wall time as an aware datetime."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN, fold=fold)


def search(**overrides: Any) -> list[Slot]:
    """find_slots over the week of MONDAY with sensible defaults; every slot wanted."""
    args: dict[str, Any] = {
        "duration": HOUR,
        "original_start": local(MONDAY, 10),
        "search_from": local(MONDAY, 0),
        "search_until": local(MONDAY + timedelta(days=7), 0),
        "busy": BusyIndex([]),
        "working_hours": NINE_TO_FIVE,
        "zone": BERLIN,
        "buffer": timedelta(0),
        "granularity": timedelta(minutes=30),
        "count": 10_000,
    }
    args.update(overrides)
    return find_slots(**args)


def starts(slots: list[Slot]) -> set[datetime]:
    """The slots' starts, as a set."""
    return {slot.start for slot in slots}


def walls(slots: list[Slot], day: date) -> list[tuple[int, int, timedelta | None]]:
    """(hour, minute, UTC offset) of the slots starting on a local day, in time order."""
    found = sorted(slot.start for slot in slots if slot.start.astimezone(BERLIN).date() == day)
    return [
        (s.astimezone(BERLIN).hour, s.astimezone(BERLIN).minute, s.astimezone(BERLIN).utcoffset())
        for s in found
    ]


def test_slots_stay_inside_each_weekdays_working_hours() -> None:
    """Friday closes at 13:00 and the weekend has no hours, so no slots there."""
    hours = {"mon": (time(9), time(17)), "fri": (time(9), time(13))}
    slots = search(working_hours=hours)
    days = {slot.start.astimezone(BERLIN).weekday() for slot in slots}
    friday = MONDAY + timedelta(days=4)
    assert days == {0, 4}
    assert max(slot.end for slot in slots if slot.start.astimezone(BERLIN).weekday() == 4) == (
        local(friday, 13)
    )
    assert min(slot.start for slot in slots) == local(MONDAY, 9)


def test_slots_are_utc_and_on_the_local_grid() -> None:
    """Starts are aware UTC, on :00/:30 local, and last exactly the duration."""
    slots = search()
    assert slots
    assert all(slot.start.tzinfo is UTC for slot in slots)
    assert all(slot.start.astimezone(BERLIN).minute in (0, 30) for slot in slots)
    assert all(slot.end - slot.start == HOUR for slot in slots)


def test_busy_event_blocks_overlapping_candidates() -> None:
    """A busy 11:00-12:00 rules out every slot overlapping it, and only those."""
    busy = BusyIndex([Busy(local(MONDAY, 11), local(MONDAY, 12))])
    found = starts(search(busy=busy))
    assert local(MONDAY, 10) in found
    assert local(MONDAY, 12) in found
    assert local(MONDAY, 10, 30) not in found
    assert local(MONDAY, 11) not in found
    assert local(MONDAY, 11, 30) not in found


def test_buffer_allows_a_slot_ending_exactly_at_the_widened_start() -> None:
    """With a 15-minute buffer, a slot ending at busy.start - 15 min is still free."""
    busy = BusyIndex([Busy(local(MONDAY, 11), local(MONDAY, 12))])
    found = starts(search(busy=busy, buffer=timedelta(minutes=15), granularity=MINUTE))
    assert local(MONDAY, 9, 45) in found
    assert local(MONDAY, 12, 15) in found


def test_buffer_blocks_a_slot_one_minute_later() -> None:
    """With a 15-minute buffer, a slot ending at busy.start - 14 min is not free."""
    busy = BusyIndex([Busy(local(MONDAY, 11), local(MONDAY, 12))])
    found = starts(search(busy=busy, buffer=timedelta(minutes=15), granularity=MINUTE))
    assert local(MONDAY, 9, 46) not in found
    assert local(MONDAY, 12, 14) not in found


def test_all_day_event_blocks_its_whole_local_day() -> None:
    """An all-day Tuesday blocks Tuesday 00:00-24:00 Berlin, not the UTC day."""
    tuesday = MONDAY + timedelta(days=1)
    blocked = busy_from_instance(tuesday, tuesday + timedelta(days=1), BERLIN)
    assert blocked == Busy(
        datetime(2026, 6, 1, 22, tzinfo=UTC), datetime(2026, 6, 2, 22, tzinfo=UTC)
    )
    hours = {day: (time(0), time(23, 59)) for day in WEEKDAYS}
    found = search(busy=BusyIndex([blocked]), working_hours=hours, duration=timedelta(minutes=30))
    assert not [s for s in found if s.start.astimezone(BERLIN).date() == tuesday]
    assert local(MONDAY, 23) in starts(found)
    assert local(tuesday + timedelta(days=1), 0) in starts(found)


def test_timed_instance_blocks_exactly_its_interval() -> None:
    """A timed instance becomes [start, end) in UTC; a reversed one blocks only its start."""
    start, end = local(MONDAY, 11), local(MONDAY, 12)
    assert busy_from_instance(start, end, BERLIN) == Busy(start, end)
    assert busy_from_instance(end, start, BERLIN) == Busy(end, end)


def test_spring_forward_keeps_local_times_and_offsets() -> None:
    """Across 2026-03-29 slots stay at local 09:00, now at UTC+2, with no duplicates."""
    saturday, sunday = date(2026, 3, 28), date(2026, 3, 29)
    slots = search(
        working_hours=ALL_WEEK,
        search_from=local(saturday, 0),
        search_until=local(sunday + timedelta(days=1), 0),
    )
    assert walls(slots, saturday)[0] == (9, 0, HOUR)
    assert walls(slots, sunday)[0] == (9, 0, 2 * HOUR)
    assert datetime(2026, 3, 29, 7, tzinfo=UTC) in starts(slots)
    assert len(starts(slots)) == len(slots) == 2 * 15


def test_spring_forward_gap_wall_times_are_skipped() -> None:
    """02:00 and 02:30 do not exist on 2026-03-29, so no slot starts there."""
    sunday = date(2026, 3, 29)
    slots = search(
        working_hours={"sun": (time(1), time(5))},
        duration=timedelta(minutes=30),
        search_from=local(sunday, 0),
        search_until=local(sunday, 12),
    )
    assert [(h, m) for h, m, _ in walls(slots, sunday)] == [
        (1, 0),
        (1, 30),
        (3, 0),
        (3, 30),
        (4, 0),
        (4, 30),
    ]
    assert len(starts(slots)) == len(slots)


def test_fall_back_keeps_local_times_and_offsets() -> None:
    """Across 2026-10-25 slots stay at local 09:00, now at UTC+1, with no duplicates."""
    saturday, sunday = date(2026, 10, 24), date(2026, 10, 25)
    slots = search(
        working_hours=ALL_WEEK,
        search_from=local(saturday, 0),
        search_until=local(sunday + timedelta(days=1), 0),
    )
    assert walls(slots, saturday)[0] == (9, 0, 2 * HOUR)
    assert walls(slots, sunday)[0] == (9, 0, HOUR)
    assert datetime(2026, 10, 25, 8, tzinfo=UTC) in starts(slots)
    assert len(starts(slots)) == len(slots) == 2 * 15


def test_fall_back_fold_uses_the_first_occurrence_once() -> None:
    """The repeated 02:00-03:00 on 2026-10-25 yields each grid time once, at UTC+2."""
    sunday = date(2026, 10, 25)
    slots = search(
        working_hours={"sun": (time(1), time(4))},
        duration=timedelta(minutes=30),
        search_from=local(sunday, 0),
        search_until=local(sunday, 12),
    )
    assert walls(slots, sunday) == [
        (1, 0, 2 * HOUR),
        (1, 30, 2 * HOUR),
        (2, 0, 2 * HOUR),
        (2, 30, 2 * HOUR),
        (3, 0, HOUR),
        (3, 30, HOUR),
    ]


def test_search_window_bounds_are_respected() -> None:
    """No slot starts before search_from or ends after search_until."""
    slots = search(search_from=local(MONDAY, 10, 15), search_until=local(MONDAY, 14))
    assert min(starts(slots)) == local(MONDAY, 10, 30)
    assert max(slot.end for slot in slots) == local(MONDAY, 14)
    assert len(slots) == 6  # 10:30 .. 13:00


def test_ranking_prefers_the_clients_habitual_weekday_and_hour() -> None:
    """A client who always comes Thursday 15:00 gets that slot first, though it is further."""
    thursdays = [local(date(2026, 5, 7) + timedelta(weeks=n), 15) for n in range(3)]
    habits = Habits.from_starts(thursdays, BERLIN)
    assert habits.counts == {(3, 15): 3}
    best = search(habits=habits, count=1)[0]
    assert best.start == local(MONDAY + timedelta(days=3), 15)
    assert best.score > 2


def test_ranking_without_habits_prefers_closeness_to_the_original_time() -> None:
    """Without habits the slot nearest the original start wins, then its neighbours."""
    best = search(original_start=local(MONDAY + timedelta(days=2), 13), count=3)
    wednesday = MONDAY + timedelta(days=2)
    assert [s.start for s in best] == [
        local(wednesday, 13),
        local(wednesday, 12, 30),
        local(wednesday, 13, 30),
    ]
    assert best[0].score == 1.0
    assert best[1].score == best[2].score


def test_count_limits_the_result() -> None:
    """count caps the number of slots; zero or less gives none."""
    assert len(search(count=3)) == 3
    assert search(count=0) == []
    assert search(count=-1) == []


def test_excluded_interval_is_not_suggested() -> None:
    """A slot overlapping an excluded interval is skipped; its neighbours are kept."""
    freed = (local(MONDAY, 10), local(MONDAY, 11))
    found = starts(search(exclude=[freed]))
    assert local(MONDAY, 10) not in found
    assert local(MONDAY, 9, 30) not in found
    assert local(MONDAY, 10, 30) not in found
    assert local(MONDAY, 9) in found
    assert local(MONDAY, 11) in found


def test_results_are_deterministic() -> None:
    """The same inputs, busy given in any order, give the same slots."""
    rng = random.Random(7)
    intervals = [
        Busy(local(MONDAY, 9) + n * 37 * MINUTE, local(MONDAY, 9) + n * 37 * MINUTE + 20 * MINUTE)
        for n in range(100)
    ]
    shuffled = list(intervals)
    rng.shuffle(shuffled)
    habits = Habits.from_starts([local(MONDAY, 16)], BERLIN)
    first = search(busy=BusyIndex(intervals), habits=habits, count=5)
    assert first == search(busy=BusyIndex(shuffled), habits=habits, count=5)
    assert len(first) == 5


def widened_overlap(slot: Slot, busy: list[Busy], buffer: timedelta) -> bool:
    """Brute force: does the slot meet some busy interval widened by the buffer?"""
    return any(b.start - buffer < slot.end and slot.start < b.end + buffer for b in busy)


@settings(max_examples=150, deadline=None)
@given(
    spans=st.lists(st.tuples(st.integers(0, 8 * 24 * 60), st.integers(0, 6 * 60)), max_size=60),
    buffer_minutes=st.integers(0, 60),
    duration_minutes=st.integers(1, 240),
    granularity_minutes=st.sampled_from([5, 15, 30, 60]),
    open_hour=st.integers(5, 12),
    length_hours=st.integers(1, 10),
    offset_minutes=st.integers(0, 3 * 24 * 60),
    window_hours=st.integers(1, 8 * 24),
)
def test_property_slots_are_free_in_hours_and_in_window(
    spans: list[tuple[int, int]],
    buffer_minutes: int,
    duration_minutes: int,
    granularity_minutes: int,
    open_hour: int,
    length_hours: int,
    offset_minutes: int,
    window_hours: int,
) -> None:
    """Across the spring-forward week, no slot meets widened busy time, leaves hours or window."""
    origin = datetime(2026, 3, 25, tzinfo=UTC)
    busy = [Busy(origin + s * MINUTE, origin + (s + n) * MINUTE) for s, n in spans]
    buffer = buffer_minutes * MINUTE
    opens, closes = time(open_hour), time(open_hour + length_hours)
    hours = {day: (opens, closes) for day in WEEKDAYS if day != "wed"}
    search_from = origin + offset_minutes * MINUTE
    search_until = search_from + window_hours * HOUR
    slots = search(
        busy=BusyIndex(busy),
        buffer=buffer,
        duration=duration_minutes * MINUTE,
        granularity=granularity_minutes * MINUTE,
        working_hours=hours,
        search_from=search_from,
        search_until=search_until,
        original_start=origin,
    )
    assert len(starts(slots)) == len(slots)
    for slot in slots:
        start, end = slot.start.astimezone(BERLIN), slot.end.astimezone(BERLIN)
        assert not widened_overlap(slot, busy, buffer)
        assert search_from <= slot.start
        assert slot.end <= search_until
        assert WEEKDAYS[start.weekday()] in hours
        assert opens <= start.time()
        assert end.date() == start.date()
        assert end.time() <= closes
        assert (start.hour * 60 + start.minute - open_hour * 60) % granularity_minutes == 0
