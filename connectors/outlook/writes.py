"""What syncd writes to Graph: the fields of an iCalendar object, the body of a create and
the smallest PATCH that makes an item match.

Syncd's data goes into one extended property (:data:`~connectors.outlook.items.DATA_PROPERTY`).
An event with attendees only ever gets that property and its categories (both live on the
owner's copy): Graph has no way to stop meeting-update mails, so differences in its subject,
body, location, times or free/busy are dropped and reported. Other events (notes, holds, the
owner's own entries) get every field that differs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from icalendar import Calendar, Component

from connectors.outlook.items import (
    CATEGORY_PREFIX,
    DATA_PROPERTY,
    HREF_PROPERTY,
    TRANSACTION_PREFIX,
)
from syncd.normalize import SERIES_START

__all__ = [
    "Fields",
    "Plan",
    "UnreadableData",
    "create_body",
    "data_value",
    "plan_update",
    "read_fields",
    "syncd_category",
]

_SHOW_AS = {"TRANSPARENT": "free"}
_SENSITIVITY = {"PRIVATE": "private", "CONFIDENTIAL": "confidential"}
_CONTENT = ("subject", "body", "location", "times", "show_as", "sensitivity")
_BLANKS = re.compile(r"\n{3,}")


class UnreadableData(ValueError):
    """The iCalendar data handed to a write cannot be read; the message says why."""


@dataclass(frozen=True, slots=True)
class Fields:
    """The writable fields of one event, as the core's iCalendar data states them."""

    uid: str
    start: datetime | date
    end: datetime | date
    subject: str = ""
    body: str = ""
    location: str = ""
    show_as: str = "busy"
    sensitivity: str = "normal"
    categories: tuple[str, ...] = ()
    """The owner's categories (never syncd's own)."""
    private: Mapping[str, str] = field(default_factory=dict)
    """syncd's ``X-SYNCD-*`` properties (not the series start: the connector renders that
    from Graph's series master, it is never stored)."""
    attendees: bool = False

    @property
    def all_day(self) -> bool:
        """True when the event spans whole days."""
        return not isinstance(self.start, datetime)

    def times(self) -> dict[str, Any]:
        """``start``, ``end`` and ``isAllDay`` as Graph writes them (UTC)."""
        return {
            "start": _graph_time(self.start),
            "end": _graph_time(self.end),
            "isAllDay": self.all_day,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """A PATCH body (empty when nothing differs) and the fields left as they are because the
    event has attendees."""

    patch: dict[str, Any]
    dropped: tuple[str, ...] = ()


def read_fields(data: bytes) -> Fields:
    """The first VEVENT of ``data`` as :class:`Fields`. Raises :class:`UnreadableData`."""
    try:
        calendar = Calendar.from_ical(data)
        event = next((c for c in calendar.walk("VEVENT")), None)
        if event is None:
            raise UnreadableData("no VEVENT in the data")
        return _fields(event)
    except UnreadableData:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as error:
        raise UnreadableData(f"not valid iCalendar ({type(error).__name__})") from None


def _fields(event: Component) -> Fields:
    uid = str(event.get("UID") or "").strip()
    if not uid:
        raise UnreadableData("the VEVENT has no UID")
    start = _moment(event, "DTSTART")
    if start is None:
        raise UnreadableData("the VEVENT has no DTSTART")
    end = _moment(event, "DTEND") or _end_from_duration(event, start)
    status = str(event.get("STATUS") or "").upper()
    show_as = _SHOW_AS.get(str(event.get("TRANSP") or "").upper(), "busy")
    if show_as == "busy" and status == "TENTATIVE":
        show_as = "tentative"
    return Fields(
        uid=uid,
        start=start,
        end=end,
        subject=str(event.get("SUMMARY") or ""),
        body=normalize_text(str(event.get("DESCRIPTION") or "")),
        location=str(event.get("LOCATION") or ""),
        show_as=show_as,
        sensitivity=_SENSITIVITY.get(str(event.get("CLASS") or "").upper(), "normal"),
        categories=tuple(c for c in _category_values(event) if not c.startswith(CATEGORY_PREFIX)),
        private={
            str(k).upper(): str(v)
            for k, v in event.items()
            if str(k).upper().startswith("X-SYNCD-") and str(k).upper() != SERIES_START
        },
        attendees="ATTENDEE" in event,
    )


def normalize_text(text: str) -> str:
    """Text as compared with a Graph body: ``\\n`` line ends, no trailing blanks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _BLANKS.sub("\n\n", "\n".join(line.rstrip() for line in text.split("\n"))).strip()


def _moment(event: Component, name: str) -> datetime | date | None:
    prop = event.get(name)
    if prop is None:
        return None
    if isinstance(prop, list):
        raise UnreadableData(f"{name} appears more than once")
    value = prop.dt
    if isinstance(value, datetime):
        # A floating time is read as UTC: syncd writes its own events in UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, date):
        return value
    raise UnreadableData(f"{name} is not a date or date-time")


def _end_from_duration(event: Component, start: datetime | date) -> datetime | date:
    prop = event.get("DURATION")
    duration = prop.dt if prop is not None else None
    if isinstance(duration, timedelta):
        if isinstance(start, datetime):
            return start + duration
        return start + timedelta(days=max(duration.days, 1))
    return start if isinstance(start, datetime) else start + timedelta(days=1)


def _category_values(event: Component) -> list[str]:
    value = event.get("CATEGORIES")
    props = value if isinstance(value, list) else [] if value is None else [value]
    found: list[str] = []
    for prop in props:
        cats = getattr(prop, "cats", None)
        found.extend(str(c).strip() for c in (cats if cats is not None else [prop]))
    return list(dict.fromkeys(c for c in found if c))


def _graph_time(value: datetime | date) -> dict[str, str]:
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    else:
        text = value.strftime("%Y-%m-%dT00:00:00")
    return {"dateTime": text, "timeZone": "UTC"}


def syncd_category(private: Mapping[str, str]) -> str | None:
    """The category that shows a verdict in Outlook (option ``categories``), e.g.
    ``"syncd: late cancellation"``; None without a verdict."""
    verdict = private.get("X-SYNCD-VERDICT", "").strip()
    return f"{CATEGORY_PREFIX}{verdict.replace('_', ' ')}" if verdict else None


def data_value(fields: Fields, *, created: bool) -> dict[str, str]:
    """What syncd's extended property should hold: the ``X-SYNCD-*`` properties, and the UID
    of an event syncd created (Graph gives it an iCalUId of its own)."""
    data = dict(fields.private)
    if created:
        data["UID"] = fields.uid
    return data


def _encode(data: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(data.items())), separators=(",", ":"), ensure_ascii=False)


def create_body(fields: Fields, href: str, *, show_categories: bool) -> dict[str, Any]:
    """The POST body of an event syncd creates at ``href`` (a note or a hold): no attendees,
    no reminder, its ``transactionId`` from the href, syncd's data and the href in extended
    properties."""
    body: dict[str, Any] = {
        "subject": fields.subject,
        "body": {"contentType": "text", "content": fields.body},
        **fields.times(),
        "showAs": fields.show_as,
        "sensitivity": fields.sensitivity,
        "isReminderOn": False,
        "categories": _categories(fields, [], show=show_categories),
        "transactionId": TRANSACTION_PREFIX + href,
        "singleValueExtendedProperties": [
            {"id": DATA_PROPERTY, "value": _encode(data_value(fields, created=True))},
            {"id": HREF_PROPERTY, "value": href},
        ],
    }
    if fields.location:
        body["location"] = {"displayName": fields.location}
    return body


def plan_update(
    current: Fields,
    current_data: Mapping[str, str],
    current_categories: Sequence[str],
    wanted: Fields,
    *,
    created: bool,
    show_categories: bool,
) -> Plan:
    """The PATCH that brings an item (``current``, its stored data and its raw categories)
    to ``wanted``. Content fields of an event with attendees are never written."""
    patch: dict[str, Any] = {}
    data = data_value(wanted, created=created)
    if data != dict(current_data):
        patch["singleValueExtendedProperties"] = [{"id": DATA_PROPERTY, "value": _encode(data)}]
    categories = _categories(wanted, current_categories, show=show_categories)
    if set(categories) != set(current_categories):
        patch["categories"] = categories
    content = _content_patch(current, wanted)
    if current.attendees:
        return Plan(patch, tuple(name for name in _CONTENT if name in content))
    for values in content.values():
        patch.update(values)
    return Plan(patch)


def _categories(wanted: Fields, current: Sequence[str], *, show: bool) -> list[str]:
    """The owner's categories plus syncd's: its verdict category when shown, else whatever
    syncd categories are already there (turning the option off does not strip them)."""
    ours = [c for c in current if c.startswith(CATEGORY_PREFIX)]
    if show:
        label = syncd_category(wanted.private)
        ours = [label] if label else []
    return list(dict.fromkeys([*wanted.categories, *ours]))


def _content_patch(current: Fields, wanted: Fields) -> dict[str, dict[str, Any]]:
    """Per content field that differs, the PATCH members that write it."""
    found: dict[str, dict[str, Any]] = {}
    if current.subject != wanted.subject:
        found["subject"] = {"subject": wanted.subject}
    if current.body != wanted.body:
        found["body"] = {"body": {"contentType": "text", "content": wanted.body}}
    if current.location != wanted.location:
        found["location"] = {"location": {"displayName": wanted.location}}
    if (current.start, current.end) != (wanted.start, wanted.end):
        found["times"] = wanted.times()
    if current.show_as != wanted.show_as:
        found["show_as"] = {"showAs": wanted.show_as}
    if current.sensitivity != wanted.sensitivity:
        found["sensitivity"] = {"sensitivity": wanted.sensitivity}
    return found
