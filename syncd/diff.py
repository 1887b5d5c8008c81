"""The diff: compare two snapshots of one calendar's instances and name what changed. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta

from syncd.model import Change, ChangeKind, Instance, InstanceKey, When, instance_key
from syncd.normalize import Horizon

__all__ = ["diff"]

_EDIT_FIELDS = ("summary", "location", "description", "organizer", "transparent")
_DST_SLACK = timedelta(hours=1)
"""The most a wall-clock shift of a series differs from its UTC shift for one occurrence."""


def diff(
    old: Mapping[InstanceKey, Instance],
    new: Mapping[InstanceKey, Instance],
    window: Horizon,
) -> list[Change]:
    """The changes from ``old`` to ``new``, limited to instances inside ``window``.

    An occurrence of a series counts by its original start, a single event by its start; an
    instance that stays is reported when it was or is inside the window. A series-wide time
    change (the master's DTSTART moved) pairs each old occurrence with its shifted twin and
    reports a move, not a cancellation plus a creation.
    """
    gone = {k: v for k, v in old.items() if k not in new}
    added = {k: v for k, v in new.items() if k not in old}
    changes: list[Change] = []
    for before, after in _shifted_pairs(gone, added):
        del gone[before.key], added[after.key]
        if _inside(before, window) or _inside(after, window):
            changes.extend(_compare(before, after))
    for key in old.keys() & new.keys():
        before, after = old[key], new[key]
        if _inside(before, window) or _inside(after, window):
            changes.extend(_compare(before, after))
    changes.extend(
        _change(ChangeKind.CANCELLED, i, None)
        for i in gone.values()
        if not i.cancelled and _inside(i, window)
    )
    changes.extend(
        _change(ChangeKind.CREATED, None, i)
        for i in added.values()
        if not i.cancelled and _inside(i, window)
    )
    changes.sort(key=lambda c: (c.uid, instance_key(c.uid, c.recurrence_id)[1], c.kind.value))
    return changes


def _inside(instance: Instance, window: Horizon) -> bool:
    anchor = instance.recurrence_id if instance.recurrence_id is not None else instance.start
    return window.contains(anchor)


def _change(kind: ChangeKind, before: Instance | None, after: Instance | None) -> Change:
    some = before or after
    assert some is not None
    rid = before.recurrence_id if before else some.recurrence_id
    return Change(kind=kind, uid=some.uid, recurrence_id=rid, before=before, after=after)


def _compare(before: Instance, after: Instance) -> Iterator[Change]:
    if before.cancelled or after.cancelled:
        if not before.cancelled:
            yield _change(ChangeKind.CANCELLED, before, after)
        elif not after.cancelled:
            yield _change(ChangeKind.CREATED, before, after)
        return
    if (before.start, before.end) != (after.start, after.end):
        yield _change(ChangeKind.MOVED, before, after)
    if _response_changed(before, after):
        yield _change(ChangeKind.RESPONSE_CHANGED, before, after)
    if [c.casefold() for c in before.categories] != [c.casefold() for c in after.categories]:
        yield _change(ChangeKind.TAGS_CHANGED, before, after)
    if _edited(before, after):
        yield _change(ChangeKind.EDITED, before, after)


def _responses(instance: Instance) -> dict[str, str]:
    return dict(instance.attendees)


def _response_changed(before: Instance, after: Instance) -> bool:
    """A PARTSTAT changed for someone on the event before and after (new people are edits)."""
    old, new = _responses(before), _responses(after)
    return any(old[email] != new[email] for email in old.keys() & new.keys())


def _edited(before: Instance, after: Instance) -> bool:
    if any(getattr(before, f) != getattr(after, f) for f in _EDIT_FIELDS):
        return True
    if before.status != after.status:  # confirmed <-> tentative; cancellation is handled above
        return True
    return set(_responses(before)) != set(_responses(after))


def _shifted_pairs(
    gone: Mapping[InstanceKey, Instance], added: Mapping[InstanceKey, Instance]
) -> Iterator[tuple[Instance, Instance]]:
    """Pair occurrences whose original start moved because the series master moved.

    Exact twins are paired first; then an occurrence whose twin lies within an hour of the
    shifted start (a move by whole days across a daylight-saving change is an hour longer or
    shorter in UTC for the occurrences past the change)."""
    added_by_uid: dict[str, dict[When, Instance]] = defaultdict(dict)
    for instance in added.values():
        if instance.recurrence_id is not None:
            added_by_uid[instance.uid][instance.recurrence_id] = instance
    for uid, old_group in _group_by_uid(gone.values()).items():
        candidates = added_by_uid.get(uid)
        shift = _series_shift(old_group, candidates.values()) if candidates else None
        if candidates is None or shift is None:
            continue
        targets = [(before, _shifted(before.recurrence_id, shift)) for before in old_group]
        unpaired = []
        for before, target in targets:
            after = candidates.pop(target, None) if target is not None else None
            if after is not None:
                yield before, after
            elif isinstance(target, datetime):
                unpaired.append((before, target))
        for before, target in unpaired:
            nearest = _nearest(target, candidates)
            if nearest is not None:
                yield before, candidates.pop(nearest)


def _nearest(target: datetime, candidates: Mapping[When, Instance]) -> When | None:
    """The candidate start closest to ``target`` within :data:`_DST_SLACK`, if any."""
    near = [at for at in candidates if isinstance(at, datetime) and abs(at - target) <= _DST_SLACK]
    return min(near, key=lambda at: abs(at - target)) if near else None


def _group_by_uid(instances: Iterable[Instance]) -> dict[str, list[Instance]]:
    groups: dict[str, list[Instance]] = defaultdict(list)
    for instance in instances:
        if instance.recurrence_id is not None:
            groups[instance.uid].append(instance)
    return groups


def _series_shift(before: Iterable[Instance], after: Iterable[Instance]) -> timedelta | None:
    """How far the series start moved, from any old and any new occurrence that know it."""
    old = next((i.series_start for i in before if i.series_start is not None), None)
    new = next((i.series_start for i in after if i.series_start is not None), None)
    if old is None or new is None or type(old) is not type(new) or old == new:
        return None
    return new - old


def _shifted(value: When | None, shift: timedelta | None) -> When | None:
    if value is None or shift is None:
        return None
    if not isinstance(value, datetime) and shift % timedelta(days=1):
        return None
    return value + shift
