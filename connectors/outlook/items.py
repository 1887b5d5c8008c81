"""Reading Graph event JSON: times, syncd's extended properties, and the href of an item.

Every function here raises :class:`MalformedItem` (naming the field, never quoting content)
when an item does not have the documented shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from connectors.outlook.zones import WINDOWS_ZONES

__all__ = [
    "CATEGORY_PREFIX",
    "DATA_PROPERTY",
    "HREF_PROPERTY",
    "INSTANCE_TYPES",
    "PROPERTY_GUID",
    "TRANSACTION_PREFIX",
    "MalformedItem",
    "change_key",
    "graph_time",
    "href_of",
    "is_meeting",
    "item_id",
    "original_start",
    "private_data",
    "property_value",
]

PROPERTY_GUID = "C338908B-E2B7-459E-A581-EF1235020E88"
"""The property set of syncd's MAPI named properties (fixed once, never change it)."""
DATA_PROPERTY = f"String {{{PROPERTY_GUID}}} Name syncd"
"""One single-value extended property: compact JSON of the ``X-SYNCD-*`` properties (plus the
iCalendar UID of an event syncd created)."""
HREF_PROPERTY = f"String {{{PROPERTY_GUID}}} Name syncdHref"
"""The href of an event syncd created, so it can be found by ``$filter`` after a restart."""
TRANSACTION_PREFIX = "syncd:"
"""``transactionId`` of an event syncd created: this prefix and the href."""
CATEGORY_PREFIX = "syncd: "
"""Categories syncd writes (option ``categories``) start with this; they are never shown to
the core as the owner's own categories."""
INSTANCE_TYPES = frozenset({"occurrence", "exception"})
"""The ``type`` of an item that belongs to a series (its master is ``seriesMasterId``)."""

_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$"
)
_UTC_NAMES = frozenset(
    {"utc", "etc/utc", "gmt", "z", "tzone://microsoft/utc", "coordinated universal time"}
)


class MalformedItem(ValueError):
    """An item that does not have the documented shape; the message names the field."""


def item_id(item: Mapping[str, Any]) -> str:
    """The item's id (immutable with ``Prefer: IdType="ImmutableId"``)."""
    value = item.get("id")
    if not isinstance(value, str) or not value:
        raise MalformedItem("an item without an id")
    return value


def change_key(item: Mapping[str, Any]) -> str:
    """The item's ``changeKey`` (from ``@odata.etag`` ``W/"..."`` when the field is absent)."""
    value = item.get("changeKey")
    if isinstance(value, str) and value:
        return value
    etag = item.get("@odata.etag")
    if isinstance(etag, str) and etag.startswith('W/"') and etag.endswith('"') and len(etag) > 4:
        return etag[3:-1]
    raise MalformedItem("no changeKey")


def href_of(item: Mapping[str, Any]) -> str:
    """The href the core knows the item by: the href syncd created it at (its
    ``transactionId``), else its id."""
    transaction = item.get("transactionId")
    if isinstance(transaction, str) and transaction.startswith(TRANSACTION_PREFIX):
        href = transaction[len(TRANSACTION_PREFIX) :]
        if href:
            return href
    return item_id(item)


_INVITEE_RESPONSES = frozenset({"accepted", "tentativelyaccepted", "declined", "notresponded"})


def is_meeting(item: Mapping[str, Any]) -> bool:
    """Whether others take part in the event, read from Graph's own fields (never from a
    rendering, which leaves out attendees without an address): any ``attendees`` entry, an
    event the mailbox does not organize, or a response as an invitee. Unreadable fields
    count as a meeting."""
    attendees = item.get("attendees")
    if attendees is not None and (not isinstance(attendees, list) or attendees):
        return True
    if item.get("isOrganizer") is False:
        return True
    status = item.get("responseStatus")
    if status is not None and not isinstance(status, Mapping):
        return True
    response = status.get("response") if isinstance(status, Mapping) else None
    return isinstance(response, str) and response.casefold() in _INVITEE_RESPONSES


def property_value(item: Mapping[str, Any], prop_id: str) -> str | None:
    """The value of one expanded single-value extended property, if the item carries it."""
    props = item.get("singleValueExtendedProperties")
    if not isinstance(props, list):
        return None
    for prop in props:
        if (
            isinstance(prop, Mapping)
            and isinstance(prop.get("id"), str)
            and prop["id"].lower() == prop_id.lower()
        ):
            value = prop.get("value")
            return value if isinstance(value, str) else None
    return None


def private_data(item: Mapping[str, Any]) -> dict[str, str]:
    """syncd's data on the item: the JSON object of :data:`DATA_PROPERTY` (empty when the
    property is absent). Raises MalformedItem when its value is not a JSON object of strings."""
    raw = property_value(item, DATA_PROPERTY)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise MalformedItem("syncd's extended property is not JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise MalformedItem("syncd's extended property is not a JSON object of strings")
    return data


def graph_time(value: Any, field: str, *, all_day: bool = False) -> datetime | date:
    """A ``dateTimeTimeZone`` (``{"dateTime", "timeZone"}``) as aware UTC, or as a date for
    an all-day event (Graph gives all-day bounds as midnights)."""
    if not isinstance(value, Mapping):
        raise MalformedItem(f"{field} is missing")
    moment = parse_moment(value.get("dateTime"), field, _zone(value.get("timeZone"), field))
    if all_day:
        return moment.date()  # the day as written: all-day bounds are midnights
    return moment.astimezone(UTC)


def original_start(item: Mapping[str, Any], *, all_day: bool) -> datetime | date:
    """``originalStart`` (a UTC timestamp) of an occurrence or exception; a date for an
    all-day series: the day of the original start in ``originalStartTimeZone`` (an IANA or
    Windows name), else the day that holds it read at noon (right for zones from 11 hours
    west to 12 east of UTC)."""
    moment = parse_moment(item.get("originalStart"), "originalStart", UTC).astimezone(UTC)
    if not all_day:
        return moment
    zone = _original_zone(item.get("originalStartTimeZone"))
    if zone is not None:
        return moment.astimezone(zone).date()
    return (moment + timedelta(hours=12)).date()


def _original_zone(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name.strip():
        return None
    return _zone_named(name.strip())


def parse_moment(text: Any, field: str, zone: tzinfo) -> datetime:
    """An ISO 8601 timestamp with up to 7 fractional digits; ``zone`` when it has no offset.
    Sub-second parts are dropped (iCalendar has none)."""
    if not isinstance(text, str):
        raise MalformedItem(f"{field} has no date and time")
    match = _TIME.match(text.strip())
    if match is None:
        raise MalformedItem(f"{field} is not an ISO 8601 date and time")
    year, month, day, hour, minute, second, _fraction, offset = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        raise MalformedItem(f"{field} is not a valid date and time") from None
    if offset is None:
        return moment.replace(tzinfo=zone)
    if offset == "Z":
        return moment.replace(tzinfo=UTC)
    sign = 1 if offset[0] == "+" else -1
    digits = offset[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (moment - sign * delta).replace(tzinfo=UTC)


def _zone(name: Any, field: str) -> tzinfo:
    if name is None or name == "":
        return UTC
    if not isinstance(name, str):
        raise MalformedItem(f"{field} has a time zone that is not text")
    zone = _zone_named(name.strip())
    if zone is None:
        raise MalformedItem(f"{field} is in an unknown time zone (syncd asks for UTC)")
    return zone


@lru_cache(maxsize=64)
def _zone_named(name: str) -> tzinfo | None:
    if name.lower() in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(WINDOWS_ZONES.get(name.casefold(), name))
    except (ValueError, KeyError, OSError):
        return None
