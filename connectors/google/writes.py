"""iCalendar to Google request bodies: what a write sends, and nothing more.

``update`` compares what syncd wants (the VEVENTs of the new object) with the items Google
holds and patches only the difference. syncd's ``X-SYNCD-*`` properties go to
``extendedProperties.private`` (a removed one is patched to null). An event with attendees
gets nothing else: a change of its summary, description, times or status would reach every
attendee's copy, so such differences are dropped (the caller logs them). Events without
attendees (notes, holds) may also change summary, description, location, start, end,
transparency and status. Keys and values beyond Google's limits raise :class:`Unfit`: Google
would silently drop or truncate them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from connectors.google.mapping import PRIVATE_PREFIX, Malformed, When, clean_text, parse_when

__all__ = [
    "MAX_KEY",
    "MAX_VALUE",
    "Patch",
    "Unfit",
    "Wanted",
    "insert_body",
    "patch_for",
    "read_wanted",
    "restore_body",
]

MAX_KEY = 44
MAX_VALUE = 1024
_RULES = ("RRULE", "EXRULE", "RDATE", "EXDATE")
_STATUS = {"CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}
Item = Mapping[str, Any]


class Unfit(ValueError):
    """The object cannot be written to Google as it is; the message says which part."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """One VEVENT as syncd wants it, in Google's terms."""

    uid: str
    rid: When | None
    start: When
    end: When
    summary: str = ""
    description: str = ""
    location: str = ""
    status: str = "confirmed"
    transparency: str = "opaque"
    private: Mapping[str, str] = field(default_factory=dict)
    recurrence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Patch:
    """The body to patch one item with, and the differences left out of it."""

    body: dict[str, Any]
    dropped: tuple[str, ...] = ()


def read_wanted(data: bytes) -> list[Wanted]:
    """Every VEVENT of ``data``; ``Unfit`` when it does not parse or breaks a limit."""
    try:
        calendar = Calendar.from_ical(data)
        events = calendar.walk("VEVENT")
        wanted = [_wanted(event) for event in events]
    except Unfit:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as error:
        raise Unfit(f"the iCalendar data does not parse ({type(error).__name__})") from None
    if not wanted:
        raise Unfit("the iCalendar data holds no VEVENT")
    return wanted


def _wanted(event: Any) -> Wanted:
    uid = str(event.get("UID") or "").strip()
    if not uid:
        raise Unfit("a VEVENT without a UID")
    if event.get("DTSTART") is None:
        raise Unfit(f"VEVENT {uid}: no DTSTART")
    start = _instant(event["DTSTART"].dt)
    end = _end(event, start)
    rid_prop = event.get("RECURRENCE-ID")
    status = str(event.get("STATUS") or "CONFIRMED").upper()
    return Wanted(
        uid=uid,
        rid=None if rid_prop is None else _instant(rid_prop.dt),
        start=start,
        end=end,
        summary=str(event.get("SUMMARY") or ""),
        description=str(event.get("DESCRIPTION") or ""),
        location=str(event.get("LOCATION") or ""),
        status=_STATUS.get(status, "confirmed"),
        transparency="transparent"
        if str(event.get("TRANSP") or "").upper() == "TRANSPARENT"
        else "opaque",
        private=_private(event, uid),
        recurrence=tuple(_rules(event)),
    )


def _instant(value: Any) -> When:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    raise Unfit(f"{value!r} is not a date or a date-time")


def _end(event: Any, start: When) -> When:
    if event.get("DTEND") is not None:
        return _instant(event["DTEND"].dt)
    duration = event.get("DURATION")
    if duration is not None and isinstance(duration.dt, timedelta):
        return start + duration.dt
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _private(event: Any, uid: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in event.property_items(recursive=False):
        upper = str(name).upper()
        if not upper.startswith(PRIVATE_PREFIX):
            continue
        text = str(value)
        if len(upper) > MAX_KEY:
            raise Unfit(
                f"VEVENT {uid}: the property name {upper} is longer than Google's "
                f"{MAX_KEY} characters for extendedProperties keys"
            )
        if len(text) > MAX_VALUE:
            raise Unfit(
                f"VEVENT {uid}: the value of {upper} is longer than Google's {MAX_VALUE} "
                "characters for extendedProperties values"
            )
        found[upper] = text
    return found


def _rules(event: Any) -> list[str]:
    lines: list[str] = []
    for name in _RULES:
        value = event.get(name)
        for one in value if isinstance(value, list) else [] if value is None else [value]:
            lines.append(str(event.content_line(name, one)))
    return lines


# --- patch ----------------------------------------------------------------------------


def patch_for(item: Item, wanted: Wanted, *, private_only: bool = False) -> Patch:
    """What to patch ``item`` with so that it becomes ``wanted``.

    Only ``extendedProperties.private`` when the item has attendees or ``private_only`` is
    set (the other differences are then listed in ``dropped``), and for a cancelled item (a
    deleted instance has nothing else to change; what it shows is inherited)."""
    body: dict[str, Any] = {}
    private = _private_patch(item, wanted.private)
    if private:
        body["extendedProperties"] = {"private": private}
    if item.get("status") == "cancelled":
        return Patch(body)
    fields = _field_patch(item, wanted)
    if private_only or item.get("attendees"):
        return Patch(body, tuple(sorted(fields)))
    body.update(fields)
    return Patch(body)


def _private_patch(item: Item, wanted: Mapping[str, str]) -> dict[str, str | None]:
    extended = item.get("extendedProperties")
    stored = extended.get("private") if isinstance(extended, Mapping) else None
    current = dict(stored) if isinstance(stored, Mapping) else {}
    ours = {str(k): v for k, v in current.items() if str(k).upper().startswith(PRIVATE_PREFIX)}
    patch: dict[str, str | None] = {}
    for key in ours:
        if key.upper() not in wanted or key != key.upper():
            patch[key] = None
    for key, value in wanted.items():
        if ours.get(key) != value:
            patch[key] = value
    return patch


def _field_patch(item: Item, wanted: Wanted) -> dict[str, Any]:
    """The fields that differ, compared as the mapping shows them (the item's texts with the
    same line ends and control characters as its iCalendar object): an unchanged text read
    back from that object is not a difference."""
    patch: dict[str, Any] = {}
    for key in ("summary", "description", "location"):
        value = getattr(wanted, key)
        held = item.get(key)
        if clean_text(held if isinstance(held, str) else "") != clean_text(value):
            patch[key] = value
    if (item.get("transparency") or "opaque") != wanted.transparency:
        patch["transparency"] = wanted.transparency
    if (item.get("status") or "confirmed") != wanted.status:
        patch["status"] = wanted.status
    for key, value in (("start", wanted.start), ("end", wanted.end)):
        current = item.get(key)
        if not isinstance(current, Mapping) or not _same_when(current, value):
            patch[key] = when_body(value, current if isinstance(current, Mapping) else None)
    return patch


def _same_when(current: Mapping[str, Any], value: When) -> bool:
    try:
        held = parse_when(current, "start")
    except Malformed:
        return False
    return isinstance(held, datetime) == isinstance(value, datetime) and held == value


def when_body(value: When, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Google ``EventDateTime`` for ``value``. A zone of the value (or the item's current
    ``timeZone``) is kept; the form that is no longer used is patched to null, because a patch
    merges objects."""
    held = current or {}
    if not isinstance(value, datetime):
        body: dict[str, Any] = {"date": value.isoformat()}
        if "dateTime" in held:
            body["dateTime"] = None
        if "timeZone" in held:
            body["timeZone"] = None
        return body
    name = _zone_name(value.tzinfo) or _text(held.get("timeZone"))
    if name:
        local = value.astimezone(ZoneInfo(name) if name != "UTC" else UTC)
        body = {"dateTime": local.isoformat(), "timeZone": name}
    else:
        body = {"dateTime": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}
    if "date" in held:
        body["date"] = None
    return body


def _zone_name(zone: tzinfo | None) -> str | None:
    if isinstance(zone, ZoneInfo) and zone.key not in ("UTC", "Etc/UTC"):
        return zone.key
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def insert_body(event_id: str, wanted: Wanted) -> dict[str, Any]:
    """An ``events.insert`` body: no attendees, syncd's properties private."""
    body: dict[str, Any] = {
        "id": event_id,
        "iCalUID": wanted.uid,
        "summary": wanted.summary,
        "start": when_body(wanted.start),
        "end": when_body(wanted.end),
        "transparency": wanted.transparency,
        "status": wanted.status,
    }
    if wanted.description:
        body["description"] = wanted.description
    if wanted.location:
        body["location"] = wanted.location
    if wanted.private:
        body["extendedProperties"] = {"private": dict(wanted.private)}
    if wanted.recurrence:
        body["recurrence"] = list(wanted.recurrence)
        for key in ("start", "end"):
            if "dateTime" in body[key]:
                body[key].setdefault("timeZone", "UTC")  # required for a recurring event
    return body


def restore_body(item: Item, wanted: Wanted) -> dict[str, Any]:
    """An ``events.patch`` body that brings a deleted event (Google keeps its id for ever)
    back as ``wanted``: confirmed, every field of an insert set again, and what the old event
    had beyond that (private properties, attendees, rules) patched to null."""
    body = insert_body(str(item.get("id") or ""), wanted)
    del body["id"], body["iCalUID"]
    body["description"] = wanted.description
    body["location"] = wanted.location
    body["start"] = when_body(wanted.start, _mapping(item.get("start")))
    body["end"] = when_body(wanted.end, _mapping(item.get("end")))
    for key in ("start", "end"):
        if wanted.recurrence and body[key].get("dateTime") and not body[key].get("timeZone"):
            body[key]["timeZone"] = "UTC"  # required for a recurring event
    if wanted.status == "cancelled":
        body["status"] = "confirmed"
    private = _private_patch(item, wanted.private)
    body.pop("extendedProperties", None)
    if private:
        body["extendedProperties"] = {"private": private}
    if item.get("recurrence") and not wanted.recurrence:
        body["recurrence"] = None
    if item.get("attendees"):
        body["attendees"] = None
    return body


def _mapping(value: object) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None
