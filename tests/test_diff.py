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
