"""The daemon's schedule: jittered polls, backoff after failures, pokes, timers."""

from __future__ import annotations

import random
from datetime import timedelta

from syncd.daemon import BACKOFF_CAP, JITTER, Schedule

FIVE_MIN = timedelta(minutes=5)


def schedule(**intervals: timedelta) -> Schedule:
    return Schedule(intervals or {"a": FIVE_MIN}, random.Random(7))


def test_polls_are_jittered_within_twenty_percent() -> None:
    """Successive delays vary, and stay within the jitter band around the interval."""
    s = schedule()
    delays = [s.done("a", True, 0.0) for _ in range(200)]
    assert len({round(d, 3) for d in delays}) > 100
    assert all(300 * (1 - JITTER) <= d <= 300 * (1 + JITTER) for d in delays)


def test_calendars_drift_apart() -> None:
    """Two calendars with the same interval do not stay in step."""
    s = schedule(a=FIVE_MIN, b=FIVE_MIN)
    assert s.done("a", True, 0.0) != s.done("b", True, 0.0)


def test_backoff_doubles_after_each_failure_up_to_the_cap() -> None:
    """Failures wait 1, 2, 4 ... intervals (jittered), never more than the cap."""
    s = schedule()
    delays = [s.done("a", False, 0.0) for _ in range(8)]
    assert 300 * 0.8 <= delays[0] <= 300 * 1.2
    assert 600 * 0.8 <= delays[1] <= 600 * 1.2
    assert 1200 * 0.8 <= delays[2] <= 1200 * 1.2
    assert max(delays) <= BACKOFF_CAP.total_seconds() * (1 + JITTER)


def test_a_success_ends_the_backoff() -> None:
    """After a good cycle the calendar polls on its interval again."""
    s = schedule()
    for _ in range(4):
        s.done("a", False, 0.0)
    assert s.done("a", True, 0.0) <= 300 * (1 + JITTER)
    assert s.failures["a"] == 0


def test_a_push_runs_at_once_unless_backing_off() -> None:
    """A pushed change makes a healthy calendar due now; a failing one keeps its backoff."""
    s = schedule(a=FIVE_MIN, b=FIVE_MIN)
    s.done("a", True, 0.0)
    s.done("b", False, 0.0)
    s.poke("a", 10.0)
    s.poke("b", 10.0)
    assert s.ready(10.0) == ["a"]


def test_a_push_during_a_cycle_runs_another_when_it_ends() -> None:
    """A change pushed while a cycle runs may have been missed by it: the next cycle runs
    as soon as that one ends, not a poll interval later."""
    s = schedule()
    s.begin("a")
    s.poke("a", 1.0)
    assert s.done("a", True, 2.0) == 0.0
    assert s.ready(2.0) == ["a"]


def test_a_push_before_a_cycle_begins_is_seen_by_that_cycle() -> None:
    """A push that came before the cycle began needs no second cycle."""
    s = schedule()
    s.poke("a", 1.0)
    s.begin("a")
    assert s.done("a", True, 2.0) >= 300 * (1 - JITTER)
    assert s.ready(2.0) == []


def test_a_timer_due_sooner_than_the_poll_runs_the_calendar_then() -> None:
    """An attendance check due in 40 s brings the next cycle forward to it."""
    s = schedule()
    assert s.done("a", True, 100.0, timer_in=40.0) == 40.0
    assert s.ready(140.0) == ["a"]


def test_wait_ignores_calendars_already_running() -> None:
    """The loop sleeps until the next calendar that is not busy is due."""
    s = schedule(a=FIVE_MIN, b=FIVE_MIN)
    s.due = {"a": 0.0, "b": 50.0}
    assert s.wait(10.0, busy=["a"]) == 40.0


def test_backoff_survives_very_many_failures() -> None:
    """After thousands of failures in a row the delay is still the cap, not an overflow."""
    s = schedule()
    s.failures["a"] = 5000
    assert s.done("a", False, 0.0) <= BACKOFF_CAP.total_seconds() * (1 + JITTER)


def test_a_reload_keeps_the_backoff_of_calendars_that_stay() -> None:
    """A new schedule after a reload carries over failures and the backoff's next run."""
    old = schedule(a=FIVE_MIN, b=FIVE_MIN)
    old.done("a", False, 0.0)
    old.done("a", False, 0.0)
    new = schedule(a=FIVE_MIN, c=FIVE_MIN)
    new.carry_over(old)
    assert new.failures == {"a": 2, "c": 0}
    assert new.due["a"] == old.due["a"] > 0
    assert new.due["c"] == 0.0
