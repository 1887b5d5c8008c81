"""Graph event JSON as an iCalendar object the core can read, written line by line.

One object per Graph item (calendarView delta lists single instances, occurrences and
exceptions, never series masters):

- UID: the UID syncd gave an event it created (kept in its extended property), else
  ``seriesMasterId`` for an occurrence or exception (all instances of a series share it), else
  ``iCalUId``; RECURRENCE-ID: ``originalStart`` (UTC) of an occurrence or exception, and
  ``X-SYNCD-SERIES-START`` (:data:`syncd.normalize.SERIES_START`) when the start of its series
  master is known (UTC, or a date for an all-day series);
- DTSTART/DTEND in UTC, all-day events as dates; STATUS:CANCELLED when ``isCancelled`` (the
  server's "Canceled: " subject prefix is stripped, never used as a signal), TENTATIVE when
  shown as tentative; TRANSP from ``showAs``; CLASS from ``sensitivity``;
- CONFERENCE (RFC 7986) from a Teams or Skype meeting's join link;
- SUMMARY, DESCRIPTION (the body as text), LOCATION, ORGANIZER, ATTENDEE with PARTSTAT,
  CATEGORIES (without syncd's own), DTSTAMP and LAST-MODIFIED from ``lastModifiedDateTime``,
  and syncd's ``X-SYNCD-*`` properties from its extended property.

The output depends only on the item and its series start, so an unchanged item gives the same
bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.outlook.items import (
    CATEGORY_PREFIX,
    INSTANCE_TYPES,
    MalformedItem,
    graph_time,
    original_start,
    parse_moment,
    private_data,
)
from syncd.folding import fold
from syncd.model import When
from syncd.normalize import SERIES_START
from syncd.remote import conference_lines

__all__ = ["PARTSTATS", "body_text", "render", "subject_text"]

PARTSTATS = {
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentativelyaccepted": "TENTATIVE",
    "none": "NEEDS-ACTION",
    "notresponded": "NEEDS-ACTION",
    "organizer": "ACCEPTED",
}
_ROLES = {
    "required": "REQ-PARTICIPANT",
    "optional": "OPT-PARTICIPANT",
    "resource": "NON-PARTICIPANT",
}
_CLASSES = {"private": "PRIVATE", "personal": "PRIVATE", "confidential": "CONFIDENTIAL"}
_CANCELED = re.compile(r"^(?:\s*cancell?ed\s*:\s*)+", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BREAK = re.compile(r"<\s*(?:br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.IGNORECASE)
_HIDDEN = re.compile(r"<(head|style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters a TEXT value cannot hold (tab and line feed are kept)."""
_PARAM_UNSAFE = re.compile(r'[\x00-\x1f\x7f"]')
_PARAM_QUOTED = re.compile(r"[:;,]")


def render(item: Mapping[str, Any], *, series_start: When | None = None) -> bytes:
    """The item as one VCALENDAR with one VEVENT; ``series_start`` is the start of the series
    master of an occurrence or exception (ignored for other items). Raises MalformedItem."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd//outlook//EN", "BEGIN:VEVENT"]
    lines += _event_lines(item, series_start)
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) for line in lines).encode("utf-8")


def subject_text(item: Mapping[str, Any]) -> str:
    """The subject as shown: without the server's "Canceled: " prefix on a cancelled event."""
    subject = _text(item.get("subject"), "subject")
    if item.get("isCancelled") is True:
        subject = _CANCELED.sub("", subject)
    return subject


def body_text(item: Mapping[str, Any]) -> str:
    """The body as plain text (an HTML body reduced to its text), line ends as ``\\n``."""
    body = item.get("body")
    if body is None:
        return ""
    if not isinstance(body, Mapping):
        raise MalformedItem("body is not an object")
    content = _text(body.get("content"), "body.content")
    if str(body.get("contentType", "text")).lower() == "html":
        content = _BREAK.sub("\n", _HIDDEN.sub("", content))
        content = html.unescape(_TAG.sub("", content)).replace("\xa0", " ")
    content = content.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in content.split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _event_lines(item: Mapping[str, Any], series_start: When | None) -> list[str]:
    private = private_data(item)
    all_day = item.get("isAllDay") is True
    kind = item.get("type", "singleInstance")
    lines = [f"UID:{_escape(_uid(item, kind, private))}"]
    if kind in INSTANCE_TYPES:
        lines.append(_when("RECURRENCE-ID", original_start(item, all_day=all_day)))
        if series_start is not None:
            lines.append(_when(SERIES_START, series_start, typed=True))
    start = graph_time(item.get("start"), "start", all_day=all_day)
    end = graph_time(item.get("end"), "end", all_day=all_day)
    if end < start:
        raise MalformedItem("end is before start")
    modified = _modified(item)
    if modified is not None:
        lines.append(_when("DTSTAMP", modified))
    lines += [_when("DTSTART", start), _when("DTEND", end)]
    if modified is not None:
        lines.append(_when("LAST-MODIFIED", modified))
    lines.append(f"SUMMARY:{_escape(subject_text(item))}")
    lines += _optional_text("DESCRIPTION", body_text(item))
    lines += _optional_text("LOCATION", _location(item))
    lines += conference_lines(_meeting_links(item))
    lines += _status(item)
    lines += _people(item)
    categories = [c for c in _categories(item) if not c.startswith(CATEGORY_PREFIX)]
    if categories:
        lines.append("CATEGORIES:" + ",".join(_escape(c) for c in categories))
    lines += [f"{name}:{_escape(private[name])}" for name in sorted(private) if _is_x_syncd(name)]
    return lines


def _uid(item: Mapping[str, Any], kind: Any, private: Mapping[str, str]) -> str:
    given = private.get("UID")
    if given:
        return given
    if kind in INSTANCE_TYPES:
        return _required(item, "seriesMasterId")
    if kind not in ("singleInstance", None):
        raise MalformedItem(f"an item of type {kind!r} (calendarView lists no series masters)")
    return _required(item, "iCalUId")


def _required(item: Mapping[str, Any], field: str) -> str:
    value = item.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedItem(f"{field} is missing")
    return value


def _modified(item: Mapping[str, Any]) -> datetime | None:
    value = item.get("lastModifiedDateTime")
    if value is None:
        return None
    return parse_moment(value, "lastModifiedDateTime", UTC).astimezone(UTC)


def _status(item: Mapping[str, Any]) -> list[str]:
    show_as = str(item.get("showAs") or "busy")
    lines = ["TRANSP:TRANSPARENT" if show_as == "free" else "TRANSP:OPAQUE"]
    if item.get("isCancelled") is True:
        lines.append("STATUS:CANCELLED")
    elif show_as == "tentative":
        lines.append("STATUS:TENTATIVE")
    klass = _CLASSES.get(str(item.get("sensitivity") or "normal"))
    if klass:
        lines.append(f"CLASS:{klass}")
    return lines


def _people(item: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    organizer = _address(item.get("organizer"), "organizer")
    if organizer is not None:
        lines.append(_cal_address("ORGANIZER", organizer, {}))
    attendees = item.get("attendees") or []
    if not isinstance(attendees, list):
        raise MalformedItem("attendees is not a list")
    for index, attendee in enumerate(attendees):
        where = f"attendees[{index}]"
        if not isinstance(attendee, Mapping):
            raise MalformedItem(f"{where} is not an object")
        found = _address(attendee, where)
        if found is None:
            continue
        status = attendee.get("status")
        response = status.get("response") if isinstance(status, Mapping) else None
        params = {
            "CUTYPE": "RESOURCE" if attendee.get("type") == "resource" else "INDIVIDUAL",
            "ROLE": _ROLES.get(str(attendee.get("type") or "required"), "REQ-PARTICIPANT"),
            "PARTSTAT": PARTSTATS.get(str(response or "none").lower(), "NEEDS-ACTION"),
        }
        lines.append(_cal_address("ATTENDEE", found, params))
    return lines


def _address(holder: Any, where: str) -> tuple[str, str] | None:
    """``(address, name)`` of a recipient, None when it has no address."""
    if holder is None:
        return None
    if not isinstance(holder, Mapping):
        raise MalformedItem(f"{where} is not an object")
    email = holder.get("emailAddress")
    if email is None:
        return None
    if not isinstance(email, Mapping):
        raise MalformedItem(f"{where}.emailAddress is not an object")
    address = email.get("address")
    if not isinstance(address, str) or not address.strip():
        return None
    name = email.get("name")
    return address.strip(), name.strip() if isinstance(name, str) else ""


def _cal_address(prop: str, who: tuple[str, str], params: Mapping[str, str]) -> str:
    address, name = who
    parts = [prop]
    if name:
        parts.append(f"CN={_param(name)}")
    parts += [f"{key}={value}" for key, value in params.items()]
    return ";".join(parts) + f":mailto:{address}"


def _location(item: Mapping[str, Any]) -> str:
    location = item.get("location")
    if location is None:
        return ""
    if not isinstance(location, Mapping):
        raise MalformedItem("location is not an object")
    return _text(location.get("displayName"), "location.displayName")


def _meeting_links(item: Mapping[str, Any]) -> list[object]:
    """The candidate join links of a Teams or Skype meeting (``onlineMeeting.joinUrl``, or
    the older ``onlineMeetingUrl``), as Graph sent them."""
    meeting = item.get("onlineMeeting")
    joined = meeting.get("joinUrl") if isinstance(meeting, Mapping) else None
    return [joined, item.get("onlineMeetingUrl")]


def _categories(item: Mapping[str, Any]) -> list[str]:
    value = item.get("categories") or []
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise MalformedItem("categories is not a list of text")
    return [c.strip() for c in value if c.strip()]


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedItem(f"{field} is not text")
    return value


def _optional_text(name: str, value: str) -> list[str]:
    return [f"{name}:{_escape(value)}"] if value else []


def _is_x_syncd(name: str) -> bool:
    # The series start is Graph's data, rendered from the master: never taken from the property.
    return (
        name.startswith("X-SYNCD-")
        and name != SERIES_START
        and re.fullmatch(r"[A-Z0-9-]+", name) is not None
    )


def _when(name: str, value: When, *, typed: bool = False) -> str:
    """A date or UTC date-time; ``typed`` names ``VALUE=DATE-TIME`` too (an ``X-`` property
    is text without it)."""
    if isinstance(value, datetime):
        kind = ";VALUE=DATE-TIME" if typed else ""
        return f"{name}{kind}:{value.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    return f"{name};VALUE=DATE:{value.strftime('%Y%m%d')}"


def _escape(value: str) -> str:
    cleaned = _CONTROL.sub("", value.replace("\r\n", "\n"))
    return (
        cleaned.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def _param(value: str) -> str:
    cleaned = _PARAM_UNSAFE.sub("", value)
    return f'"{cleaned}"' if _PARAM_QUOTED.search(cleaned) else cleaned
