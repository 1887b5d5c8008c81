"""Stored events and generated instances: building resources, looking ids up, expanding series."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.google_emulator.errors import ApiError, invalid, not_found
from tests.google_emulator.recurrence import Occurrence, parse_series
from tests.google_emulator.store import Calendar, Entry, Store
from tests.google_emulator.times import When, format_stamp, parse_event_time, render_when

__all__ = [
    "Found",
    "Identity",
    "build_entry",
    "cancelled_stub",
    "expand",
    "find",
    "instance_resource",
    "organizer_of",
]

_ORDER = (
    "kind",
    "etag",
    "id",
    "status",
    "htmlLink",
    "created",
    "updated",
    "summary",
    "description",
    "location",
    "colorId",
    "creator",
    "organizer",
    "start",
    "end",
    "endTimeUnspecified",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "transparency",
    "visibility",
    "iCalUID",
    "sequence",
    "attendees",
)
_STUB_FIELDS = ("kind", "etag", "id", "status", "recurringEventId", "originalStartTime")


@dataclass(frozen=True, slots=True)
class Identity:
    """The server-owned members of an event that a write keeps (or sets, on insert)."""

    id: str
    ical_uid: str
    created: str
    creator: dict[str, Any]
    organizer: dict[str, Any]
    sequence: int
    recurring_event_id: str | None = None
    original_start: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Found:
    """An event looked up by id: stored (``entry``) or a generated instance of ``master``."""

    resource: dict[str, Any]
    entry: Entry | None
    master: Entry | None = None
    occurrence: Occurrence | None = None


def organizer_of(calendar: Calendar) -> dict[str, Any]:
    """The organizer Google sets for an event created on ``calendar``: the user, or the calendar."""
    if calendar.primary:
        return {"email": calendar.id, "self": True}
    return {"email": calendar.id, "displayName": calendar.summary, "self": True}


def _check_range(start: When, end: When) -> None:
    if (start.day is None) != (end.day is None):
        raise invalid("Start and end times must either both be date or both be dateTime.")
    if start.day is not None and end.day is not None:
        empty = end.day <= start.day
    else:
        assert start.instant is not None
        assert end.instant is not None
        empty = end.instant < start.instant
    if empty:
        raise ApiError(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )


def _flag(person: dict[str, Any], calendar: Calendar) -> dict[str, Any]:
    out = {k: v for k, v in person.items() if k != "self"}
    if out.get("email") == calendar.id:
        out["self"] = True
    return out


def _attendees(
    items: list[dict[str, Any]], calendar: Calendar, organizer: str
) -> list[dict[str, Any]]:
    out = []
    for item in items:
        person = {k: v for k, v in item.items() if k not in ("self", "organizer")}
        if person.get("email") == organizer:
            person["organizer"] = True
        if person.get("email") == calendar.id:
            person["self"] = True
        out.append(person)
    return out


def _ordered(resource: dict[str, Any]) -> dict[str, Any]:
    out = {key: resource[key] for key in _ORDER if key in resource}
    out.update((key, value) for key, value in resource.items() if key not in out)
    return out


def _only_reminders_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    skip = {"etag", "updated", "reminders", "htmlLink"}
    keys = (set(old) | set(new)) - skip
    return all(old.get(key) == new.get(key) for key in keys)


def build_entry(
    store: Store,
    calendar: Calendar,
    fields: dict[str, Any],
    ident: Identity,
    previous: dict[str, Any] | None,
    stamp: str | None = None,
) -> Entry:
    """The stored :class:`Entry` for checked ``fields`` and the identity the server keeps;
    ``stamp``: the ``updated`` to use (a bulk load gives one to all its events)."""
    start = parse_event_time(fields.get("start"), "start")
    end = parse_event_time(fields.get("end"), "end")
    _check_range(start, end)
    recurrence = fields.get("recurrence") or None
    series = None
    if recurrence is not None:
        if ident.recurring_event_id is not None:
            raise invalid("Invalid recurrence rule.", location="recurrence")
        series = parse_series(recurrence, start, end, fields["start"])
    resource = {k: v for k, v in fields.items() if k != "recurrence"}
    if recurrence is not None:
        resource["recurrence"] = recurrence
    organizer = _flag(ident.organizer, calendar)
    resource.update(
        kind="calendar#event",
        etag=store.next_etag(),
        id=ident.id,
        status=fields.get("status", "confirmed"),
        htmlLink=store.html_link(ident.id, calendar.id),
        created=ident.created,
        creator=_flag(ident.creator, calendar),
        organizer=organizer,
        start=render_when(start, calendar.tz),
        end=render_when(end, calendar.tz),
        iCalUID=ident.ical_uid,
        sequence=ident.sequence,
    )
    if ident.recurring_event_id is not None and ident.original_start is not None:
        resource["recurringEventId"] = ident.recurring_event_id
        resource["originalStartTime"] = ident.original_start
    if "attendees" in resource:
        resource["attendees"] = _attendees(
            resource["attendees"], calendar, organizer.get("email", "")
        )
    resource.setdefault("reminders", {"useDefault": True})
    resource.setdefault("eventType", "default")
    now = stamp or format_stamp(store.now())
    keep = previous is not None and _only_reminders_changed(previous, resource)
    resource["updated"] = previous["updated"] if keep and previous is not None else now
    return Entry(
        _ordered(resource), start.start_instant(calendar.tz), end.start_instant(calendar.tz), series
    )


def times_changed(old: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether a write moves the event (start, end or recurrence), which bumps ``sequence``."""
    if old.get("recurrence") != fields.get("recurrence"):
        return True
    return any(_moment(old.get(key)) != _moment(fields.get(key)) for key in ("start", "end"))


def _moment(value: object) -> tuple[object, ...]:
    """An ``EventDateTime`` as (day, instant, zone): equal values written differently compare
    equal; one that does not parse compares as itself (the write then fails anyway)."""
    try:
        when = parse_event_time(value, "start")
    except ApiError:
        return (repr(value),)
    return (when.day, when.instant, when.zone_name)


def find(store: Store, calendar: Calendar, event_id: str) -> Found:
    """The event ``event_id``: stored, or a generated instance ``<master>_<stamp>``; else 404."""
    entry = calendar.entries.get(event_id)
    if entry is not None:
        return Found(entry.resource, entry)
    master_id, sep, stamp = event_id.rpartition("_")
    master = calendar.entries.get(master_id) if sep else None
    if master is not None and master.series is not None:
        occ = master.series.find(stamp)
        if occ is not None:
            return Found(instance_resource(store, calendar, master, occ), None, master, occ)
    raise not_found()


def instance_resource(
    store: Store, calendar: Calendar, master: Entry, occ: Occurrence
) -> dict[str, Any]:
    """The generated instance of ``master`` at ``occ`` (a stub if the series is deleted)."""
    series = master.series
    assert series is not None
    source = master.resource
    instance_id = f"{source['id']}_{series.stamp(occ)}"
    etag = f'"{source["etag"].strip(chr(34))}{zlib.crc32(instance_id.encode()) % 1000:03d}"'
    if master.cancelled:
        return {
            "kind": "calendar#event",
            "etag": etag,
            "id": instance_id,
            "status": "cancelled",
            "recurringEventId": source["id"],
            "originalStartTime": series.original_start(occ),
        }
    start, end = series.times(occ)
    out = {k: v for k, v in source.items() if k != "recurrence"}
    out.update(
        etag=etag,
        id=instance_id,
        htmlLink=store.html_link(instance_id, calendar.id),
        start=start,
        end=end,
        recurringEventId=source["id"],
        originalStartTime=series.original_start(occ),
    )
    return _ordered(out)


def cancelled_stub(resource: dict[str, Any]) -> dict[str, Any]:
    """What a listing shows of a cancelled event: only the members Google guarantees."""
    return {key: resource[key] for key in _STUB_FIELDS if key in resource}


@dataclass(frozen=True, slots=True)
class Item:
    """One listed item: the resource, its start instant (for ordering) and its end."""

    resource: dict[str, Any]
    start: datetime
    end: datetime


def expand(
    store: Store,
    calendar: Calendar,
    master: Entry,
    time_min: datetime | None,
    time_max: datetime | None,
) -> Iterator[Item]:
    """Generated instances of ``master`` overlapping the window (at most ``expansion_limit``),
    skipping the occurrences that have a stored exception."""
    series = master.series
    assert series is not None
    exceptions = calendar.children.get(master.resource["id"], set())
    for count, occ in enumerate(series.overlapping(calendar.tz, time_min, time_max)):
        if count >= store.expansion_limit:
            return
        instance_id = f"{master.resource['id']}_{series.stamp(occ)}"
        if instance_id in exceptions:
            continue
        start = series.instant(occ, calendar.tz)
        yield Item(instance_resource(store, calendar, master, occ), start, start + series.duration)
