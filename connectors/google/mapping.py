"""Google event JSON to iCalendar: one object per single event or per series.

A series is the master VEVENT (``RRULE``/``EXDATE``/``RDATE`` from ``recurrence``, DTSTART
with ``TZID`` = ``start.timeZone``) followed by one VEVENT per exception, keyed by
``RECURRENCE-ID`` from ``originalStartTime``. A cancelled exception of a live series becomes
a VEVENT with that RECURRENCE-ID and ``STATUS:CANCELLED`` (Google guarantees only its id,
``recurringEventId`` and ``originalStartTime``: its times are the original ones, with the
master's duration). Timed single events and exceptions are written in UTC (``...Z``), all-day
values as ``VALUE=DATE`` (end exclusive, as Google has it).

Mapped fields: UID (``iCalUID``), DTSTART/DTEND, STATUS, SUMMARY, DESCRIPTION, LOCATION,
ORGANIZER, ATTENDEE;PARTSTAT, TRANSP, SEQUENCE, LAST-MODIFIED and DTSTAMP (``updated``),
CONFERENCE (RFC 7986; the Meet ``hangoutLink`` and ``conferenceData`` video links, read only),
and syncd's ``X-SYNCD-*`` properties from ``extendedProperties.private``. The text is built here,
not by icalendar, so the same JSON always gives the same bytes.

An item that does not fit (no start, a date that does not parse, a field of the wrong type)
raises :class:`Malformed` naming the event id; the connector reports that object as an
``ItemFailure`` and lists the rest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syncd.folding import fold
from syncd.remote import conference_lines

__all__ = [
    "ITEM_FIELDS",
    "PRIVATE_PREFIX",
    "Malformed",
    "Series",
    "When",
    "clean_text",
    "group",
    "object_etag",
    "parse_when",
    "private_of",
    "same_original",
    "to_ical",
    "unique",
]

ITEM_FIELDS = (
    "id,etag,status,iCalUID,summary,description,location,start,end,recurrence,"
    "recurringEventId,originalStartTime,organizer(email),attendees(email,responseStatus),"
    "transparency,updated,sequence,extendedProperties(private),eventType,"
    "hangoutLink,conferenceData(entryPoints(entryPointType,uri))"
)
"""The partial response every read asks for (``fields=``): what the mapping uses."""
PRIVATE_PREFIX = "X-SYNCD-"
_PRODID = "-//syncd//google connector//EN"
_STATUS = {"confirmed": "CONFIRMED", "tentative": "TENTATIVE", "cancelled": "CANCELLED"}
_PARTSTAT = {
    "needsAction": "NEEDS-ACTION",
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentative": "TENTATIVE",
}
_RULE_LINE = re.compile(r"(RRULE|EXRULE|RDATE|EXDATE)[;:][^\x00-\x1f\x7f]*", re.IGNORECASE)
_NAME = re.compile(r"X-SYNCD-[A-Z0-9-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

When = datetime | date
Item = Mapping[str, Any]


class Malformed(ValueError):
    """A Google item that cannot become iCalendar; the message names the event id."""


@dataclass(frozen=True, slots=True)
class Series:
    """One object: a single event, or a series master with its exceptions."""

    master: Item
    exceptions: tuple[Item, ...] = ()

    @property
    def items(self) -> tuple[Item, ...]:
        """The master and the exceptions."""
        return (self.master, *self.exceptions)


def object_etag(series: Series) -> str:
    """The object's version: the item's etag for a single event; for a series a digest of
    every part's etag, so it changes when any exception changes."""
    if not series.exceptions and "recurrence" not in series.master:
        return str(series.master.get("etag") or "")
    etags = sorted(str(item.get("etag") or "") for item in series.items)
    digest = hashlib.sha256("\n".join(etags).encode("utf-8")).hexdigest()[:32]
    return f"series:{digest}"


def to_ical(series: Series) -> bytes:
    """The iCalendar object for one event or series; raises :class:`Malformed`."""
    master = series.master
    zone = _series_zone(master)
    duration = _duration(master)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{_PRODID}"]
    lines += _vevent(master, zone=zone if "recurrence" in master else None)
    for item in sorted(series.exceptions, key=_original_key):
        lines += _exception(master, item, zone, duration)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) for line in lines).encode("utf-8")


# --- values ---------------------------------------------------------------------------


def _id(item: Item) -> str:
    value = item.get("id")
    if not isinstance(value, str) or not value:
        raise Malformed("an event without an id")
    return value


def _text_field(item: Item, key: str) -> str:
    value = item.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Malformed(f"event {_id(item)}: {key} is not text")
    return value


def _object(item: Item, key: str, *, required: bool = False) -> Mapping[str, Any] | None:
    value = item.get(key)
    if value is None:
        if required:
            raise Malformed(f"event {_id(item)}: no {key}")
        return None
    if not isinstance(value, Mapping):
        raise Malformed(f"event {_id(item)}: {key} is not an object")
    return value


def parse_when(value: Mapping[str, Any], where: str) -> When:
    """A Google ``EventDateTime`` as a date or an aware datetime; ``Malformed`` otherwise."""
    day, moment, zone_name = value.get("date"), value.get("dateTime"), value.get("timeZone")
    if isinstance(day, str):
        try:
            return date.fromisoformat(day)
        except ValueError:
            raise Malformed(f"{where}: {day!r} is not a date") from None
    if not isinstance(moment, str):
        raise Malformed(f"{where}: neither date nor dateTime")
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        raise Malformed(f"{where}: {moment!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        if not isinstance(zone_name, str):
            raise Malformed(f"{where}: {moment!r} has no offset and no timeZone")
        parsed = parsed.replace(tzinfo=_zone(zone_name, where))
    return parsed


def _zone(name: str, where: str) -> tzinfo:
    if name.upper() in ("UTC", "ETC/UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Malformed(f"{where}: unknown time zone {name!r}") from None


def _when(item: Item, key: str) -> When:
    value = _object(item, key, required=True)
    assert value is not None
    return parse_when(value, f"event {_id(item)}: {key}")


def _series_zone(master: Item) -> tzinfo | None:
    """The zone a recurring master's rules expand in (``start.timeZone``), else None (the
    times are then written in UTC)."""
    if "recurrence" not in master:
        return None
    start = _object(master, "start", required=True)
    assert start is not None
    name = start.get("timeZone")
    if isinstance(name, str) and name:
        return _zone(name, f"event {_id(master)}: start.timeZone")
    _when(master, "start")  # readable, or Malformed
    return None  # a bare offset names no zone iCalendar knows (no TZID=UTC+01:00): UTC


def _duration(master: Item) -> timedelta:
    start = _when(master, "start")
    end = _end(master, start)
    return _as_datetime(end) - _as_datetime(start)


def _end(item: Item, start: When) -> When:
    if item.get("end") is None:
        return start if isinstance(start, datetime) else start + timedelta(days=1)
    end = _when(item, "end")
    if isinstance(end, datetime) != isinstance(start, datetime):
        raise Malformed(f"event {_id(item)}: start and end mix a date and a date-time")
    return end


def _as_datetime(value: When) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _original_key(item: Item) -> str:
    original = item.get("originalStartTime")
    if not isinstance(original, Mapping):
        return ""
    return str(original.get("dateTime") or original.get("date") or "")


def private_of(item: Item) -> dict[str, str]:
    """syncd's properties in ``extendedProperties.private`` (names upper-cased)."""
    extended = item.get("extendedProperties")
    private = extended.get("private") if isinstance(extended, Mapping) else None
    if not isinstance(private, Mapping):
        return {}
    found: dict[str, str] = {}
    for key, value in private.items():
        name = str(key).upper()
        if _NAME.fullmatch(name) and isinstance(value, str):
            found[name] = value
    return found


# --- lines ------------------------------------------------------------------------------


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _prop_when(name: str, value: When, zone: tzinfo | None = None) -> str:
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE:{value.strftime('%Y%m%d')}"
    if zone is None or zone is UTC:
        return f"{name}:{_utc(value)}"
    local = value.astimezone(zone).strftime("%Y%m%dT%H%M%S")
    return f"{name};TZID={zone}:{local}"


def clean_text(value: str) -> str:
    """A text as the iCalendar object shows it: line ends as LF, control characters gone."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _escape(value: str) -> str:
    cleaned = clean_text(value)
    return (
        cleaned.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def _address(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or _CONTROL.search(value) or "\n" in value:
        raise Malformed(f"{where}: not an e-mail address")
    return f"mailto:{value}"


def _common(item: Item) -> list[str]:
    """The properties every VEVENT of the object carries, from one item."""
    event = _id(item)
    lines: list[str] = []
    status = item.get("status")
    if status is not None:
        if status not in _STATUS:
            raise Malformed(f"event {event}: unknown status {status!r}")
        lines.append(f"STATUS:{_STATUS[status]}")
    for key, name in (("summary", "SUMMARY"), ("description", "DESCRIPTION")):
        value = _text_field(item, key)
        if value:
            lines.append(f"{name}:{_escape(value)}")
    location = _text_field(item, "location")
    if location:
        lines.append(f"LOCATION:{_escape(location)}")
    lines += conference_lines(_meeting_links(item))
    transparency = item.get("transparency", "opaque")
    lines.append("TRANSP:TRANSPARENT" if transparency == "transparent" else "TRANSP:OPAQUE")
    sequence = item.get("sequence")
    if sequence is not None:
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            raise Malformed(f"event {event}: sequence is not a number")
        lines.append(f"SEQUENCE:{sequence}")
    lines += _people(item)
    updated = _updated(item)
    if updated is not None:
        lines.append(f"LAST-MODIFIED:{_utc(updated)}")
    for name, value in sorted(private_of(item).items()):
        lines.append(f"{name}:{_escape(value)}")
    return lines


def _meeting_links(item: Item) -> list[object]:
    """The candidate video links of a Meet or add-on conference (``hangoutLink``,
    ``conferenceData`` video entry points), as Google sent them."""
    found: list[object] = [item.get("hangoutLink")]
    conference = item.get("conferenceData")
    points = conference.get("entryPoints") if isinstance(conference, Mapping) else None
    for point in points if isinstance(points, list) else []:
        if isinstance(point, Mapping) and point.get("entryPointType") == "video":
            found.append(point.get("uri"))
    return found


def _people(item: Item) -> list[str]:
    event = _id(item)
    lines: list[str] = []
    organizer = _object(item, "organizer")
    if organizer is not None and organizer.get("email") is not None:
        lines.append(f"ORGANIZER:{_address(organizer.get('email'), f'event {event}: organizer')}")
    attendees = item.get("attendees") or []
    if not isinstance(attendees, list):
        raise Malformed(f"event {event}: attendees is not a list")
    for attendee in attendees:
        if not isinstance(attendee, Mapping):
            raise Malformed(f"event {event}: an attendee is not an object")
        address = _address(attendee.get("email"), f"event {event}: attendee")
        partstat = _PARTSTAT.get(str(attendee.get("responseStatus")), "NEEDS-ACTION")
        lines.append(f"ATTENDEE;PARTSTAT={partstat}:{address}")
    return lines


def _updated(item: Item) -> datetime | None:
    value = item.get("updated")
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise Malformed(f"event {_id(item)}: updated {value!r} is not a date-time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _uid(item: Item, fallback: Item | None = None) -> str:
    value = item.get("iCalUID")
    if value is None and fallback is not None:
        value = fallback.get("iCalUID")
    if value is None:
        value = f"{_id(fallback or item)}@google.com"
    if not isinstance(value, str) or not value or _CONTROL.search(value) or "\n" in value:
        raise Malformed(f"event {_id(item)}: iCalUID is not text")
    return value


def _recurrence(item: Item) -> list[str]:
    rules = item.get("recurrence") or []
    if not isinstance(rules, list):
        raise Malformed(f"event {_id(item)}: recurrence is not a list")
    for rule in rules:
        if not isinstance(rule, str) or not _RULE_LINE.fullmatch(rule):
            raise Malformed(f"event {_id(item)}: {rule!r} is not an RRULE, EXRULE, RDATE or EXDATE")
    return list(rules)


def _stamp(item: Item) -> list[str]:
    updated = _updated(item)
    return [] if updated is None else [f"DTSTAMP:{_utc(updated)}"]


def _vevent(item: Item, *, zone: tzinfo | None) -> list[str]:
    start = _when(item, "start")
    end = _end(item, start)
    return [
        "BEGIN:VEVENT",
        f"UID:{_escape(_uid(item))}",
        *_stamp(item),
        _prop_when("DTSTART", start, zone),
        _prop_when("DTEND", end, zone),
        *_recurrence(item),
        *_common(item),
        "END:VEVENT",
    ]


def _exception(master: Item, item: Item, zone: tzinfo | None, duration: timedelta) -> list[str]:
    original = _object(item, "originalStartTime", required=True)
    assert original is not None
    rid = parse_when(original, f"event {_id(item)}: originalStartTime")
    cancelled = item.get("status") == "cancelled"
    if item.get("start") is not None:
        start = _when(item, "start")
        end = _end(item, start)
    elif cancelled:
        start = rid
        end = rid + duration if isinstance(rid, datetime) else rid + _days(duration)
    else:
        raise Malformed(f"event {_id(item)}: no start")
    return [
        "BEGIN:VEVENT",
        f"UID:{_escape(_uid(item, master))}",
        *_stamp(item),
        _prop_when("RECURRENCE-ID", rid, zone),
        _prop_when("DTSTART", start),
        _prop_when("DTEND", end),
        *_common(_inherit(master, item) if cancelled else item),
        "END:VEVENT",
    ]


_INHERITED = ("summary", "description", "location", "organizer", "attendees", "transparency")


def _inherit(master: Item, item: Item) -> Item:
    """A cancelled exception may carry nothing but its ids: it is still that instance of the
    series, with the master's people and texts (the policy needs to know whose it was). Its
    own status, sequence, ``updated`` and private properties are kept."""
    merged = {key: master[key] for key in _INHERITED if key in master}
    merged.update(item)
    return merged


def _days(duration: timedelta) -> timedelta:
    return timedelta(days=max(1, duration.days))


def group(items: Iterable[Item]) -> tuple[dict[str, Item], dict[str, list[Item]]]:
    """Items by id (not exceptions), and exceptions by their master's id."""
    singles: dict[str, Item] = {}
    exceptions: dict[str, list[Item]] = {}
    for item in items:
        event, master = item.get("id"), item.get("recurringEventId")
        if not isinstance(event, str) or not event:
            continue  # nothing can name it; Google always sends an id
        if isinstance(master, str) and master:
            exceptions.setdefault(master, []).append(item)
        else:
            singles[event] = item
    return singles, exceptions


def same_original(item: Item, wanted: When) -> bool:
    """Whether an exception's ``originalStartTime`` is ``wanted`` (compared as instants)."""
    original = item.get("originalStartTime")
    if not isinstance(original, Mapping):
        return False
    try:
        value = parse_when(original, "originalStartTime")
    except Malformed:
        return False
    if isinstance(value, datetime) != isinstance(wanted, datetime):
        return False
    return value == wanted


def unique(items: Sequence[Item]) -> list[Item]:
    """Items by id, the last of equal ids winning (a later page has the later state)."""
    found: dict[str, Item] = {}
    for item in items:
        found[str(item.get("id"))] = item
    return list(found.values())
