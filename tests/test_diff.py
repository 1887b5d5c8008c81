"""The pure diff: instance maps in, typed changes out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from syncd.diff import diff
from syncd.model import ChangeKind, Instance, Status
from syncd.normalize import Horizon

T = datetime(2026, 12, 2, 10, tzinfo=UTC)
WINDOW = Horizon(T - timedelta(days=30), T + timedelta(days=30))


def inst(
    uid: str = "a", start: datetime = T, rid: datetime | None = None, **fields: object
) -> Instance:
    base = Instance(
        uid=uid,
        recurrence_id=rid,
        start=start,
        end=start + timedelta(hours=1),
        status=Status.CONFIRMED,
        attendees=(("jane@example.com", "ACCEPTED"),),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def kinds(old: list[Instance], new: list[Instance]) -> list[str]:
    return [c.kind.value for c in diff({i.key: i for i in old}, {i.key: i for i in new}, WINDOW)]


def test_identical_snapshots_have_no_changes() -> None:
    """Equal maps yield nothing."""
    assert kinds([inst()], [inst()]) == []


def test_several_kinds_at_once_are_each_reported() -> None:
    """A move plus a retag yields both kinds, in a stable order."""
    after = inst(start=T + timedelta(hours=1), categories=("waive",))
    assert kinds([inst()], [after]) == ["moved", "tags_changed"]


def test_category_case_is_not_a_change() -> None:
    """Tags compare case-insensitively."""
    assert kinds([inst(categories=("No-Show",))], [inst(categories=("no-show",))]) == []


def test_reinstated_instance_is_created() -> None:
    """A cancelled instance that becomes confirmed again is reported as created."""
    assert kinds([inst(status=Status.CANCELLED)], [inst()]) == ["created"]


def test_cancelled_instance_removed_later_is_not_cancelled_twice() -> None:
    """Deleting an already cancelled instance reports nothing."""
    assert kinds([inst(status=Status.CANCELLED)], []) == []


def test_attendee_added_is_an_edit_not_a_response() -> None:
    """A new attendee is an edit; a changed PARTSTAT is a response change."""
    more = inst(attendees=(("bob@example.com", "NEEDS-ACTION"), ("jane@example.com", "ACCEPTED")))
    declined = inst(attendees=(("jane@example.com", "DECLINED"),))
    assert kinds([inst()], [more]) == ["edited"]
    assert kinds([inst()], [declined]) == ["response_changed"]


def test_modification_time_alone_is_not_a_change() -> None:
    """LAST-MODIFIED moving without content change reports nothing."""
    assert kinds([inst()], [inst(modified=T)]) == []


def test_outside_window_is_ignored_on_both_sides() -> None:
    """An instance outside the window neither appears nor vanishes in reports."""
    far = T + timedelta(days=90)
    assert kinds([], [inst("far", far)]) == []
    assert kinds([inst("far", far)], []) == []


def test_move_into_the_window_is_reported() -> None:
    """An instance moved from outside into the window counts as moved."""
    assert kinds([inst(start=T + timedelta(days=90))], [inst()]) == ["moved"]


def test_series_shift_pairs_occurrences() -> None:
    """When the series start moves two hours, each occurrence moves, keyed by its old start."""
    shift = timedelta(hours=2)
    old = [
        inst("s", T + timedelta(days=7 * i), rid=T + timedelta(days=7 * i), series_start=T)
        for i in range(3)
    ]
    new = [inst("s", o.start + shift, rid=o.start + shift, series_start=T + shift) for o in old]
    changes = diff({i.key: i for i in old}, {i.key: i for i in new}, WINDOW)
    assert [c.kind for c in changes] == [ChangeKind.MOVED] * 3
    assert [c.recurrence_id for c in changes] == [o.recurrence_id for o in old]


def test_series_moved_a_day_across_a_dst_change_pairs_every_occurrence() -> None:
    """A weekly Saturday 10:00 Berlin series moved to Sunday: the occurrence whose Sunday is
    the first day of summer time moved 23 h in UTC, not 24 h, and is still a move."""
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    saturdays = [datetime(2027, 3, 13, 10, tzinfo=berlin) + timedelta(weeks=n) for n in range(3)]
    old_start = saturdays[0].astimezone(UTC)
    new_start = (saturdays[0] + timedelta(days=1)).astimezone(UTC)
    old = [
        inst("s", d.astimezone(UTC), rid=d.astimezone(UTC), series_start=old_start)
        for d in saturdays
    ]
    sundays = [(d + timedelta(days=1)).astimezone(UTC) for d in saturdays]
    new = [inst("s", d, rid=d, series_start=new_start) for d in sundays]
    assert sundays[2] - old[2].start == timedelta(hours=23)  # 27 -> 28 March 2027
    window = Horizon(datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 5, 1, tzinfo=UTC))
    changes = diff({i.key: i for i in old}, {i.key: i for i in new}, window)
    assert [c.kind for c in changes] == [ChangeKind.MOVED] * 3


def test_series_shift_is_found_from_any_occurrence_that_knows_it() -> None:
    """One occurrence last seen without its series start does not stop the pairing."""
    shift = timedelta(hours=2)
    old = [
        inst("s", T + timedelta(days=7 * i), rid=T + timedelta(days=7 * i), series_start=T)
        for i in range(3)
    ]
    old[0] = replace(old[0], series_start=None)
    new = [inst("s", o.start + shift, rid=o.start + shift, series_start=T + shift) for o in old]
    changes = diff({i.key: i for i in old}, {i.key: i for i in new}, WINDOW)
    assert [c.kind for c in changes] == [ChangeKind.MOVED] * 3


def test_an_hourly_neighbour_is_not_taken_for_a_twin_when_the_exact_one_exists() -> None:
    """Exact twins are paired before near ones: two occurrences an hour apart both move."""
    shift = timedelta(days=1)
    starts = [T, T + timedelta(hours=1)]
    old = [inst("s", s, rid=s, series_start=T) for s in starts]
    new = [inst("s", s + shift, rid=s + shift, series_start=T + shift) for s in starts]
    changes = diff({i.key: i for i in old}, {i.key: i for i in new}, WINDOW)
    assert [(c.kind, c.after.start if c.after else None) for c in changes] == [
        (ChangeKind.MOVED, T + shift),
        (ChangeKind.MOVED, T + timedelta(hours=1) + shift),
    ]
