"""Query parameters of ``events.list`` and ``events.instances``, parsed and checked once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.google_emulator.errors import ApiError, bad_request, invalid, invalid_parameter
from tests.google_emulator.times import parse_query_time, zone

__all__ = [
    "ListQuery",
    "parse_bool",
    "parse_list_query",
    "parse_max_results",
    "parse_window",
    "single",
]

Query = dict[str, list[str]]

# Parameters that cannot accompany a syncToken (events.list reference).
_NOT_WITH_SYNC = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
# Parameters that may change between the pages of one listing.
_NOT_IN_FINGERPRINT = frozenset(
    {
        "pageToken",
        "maxResults",
        "fields",
        "alt",
        "prettyPrint",
        "quotaUser",
        "key",
        "userIp",
        "access_token",
        "oauth_token",
    }
)
_EVENT_TYPES = frozenset(
    {"birthday", "default", "focusTime", "fromGmail", "outOfOffice", "workingLocation"}
)


def single(query: Query, name: str) -> str | None:
    """The value of a non-repeated parameter (the first, as Google reads it)."""
    values = query.get(name)
    return values[0] if values else None


def parse_bool(query: Query, name: str) -> bool | None:
    """A boolean parameter: ``true``/``false``; anything else is a 400."""
    value = single(query, name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise invalid_parameter(name, f"Invalid boolean value: '{value}'")
    return value.lower() == "true"


def parse_max_results(query: Query) -> int:
    """``maxResults``: default 250, at least 1, never more than 2500 (larger values are capped)."""
    value = single(query, "maxResults")
    if value is None:
        return 250
    try:
        number = int(value)
    except ValueError:
        raise invalid_parameter("maxResults", f"Invalid integer value: '{value}'") from None
    if number < 1:
        raise invalid_parameter("maxResults", "Invalid value for: maxResults must be at least 1")
    return min(number, 2500)


def parse_window(query: Query) -> tuple[datetime | None, datetime | None]:
    """``timeMin``/``timeMax``; an empty or inverted range is 400 ``timeRangeEmpty``."""
    raw_min, raw_max = single(query, "timeMin"), single(query, "timeMax")
    time_min = parse_query_time(raw_min, "timeMin") if raw_min is not None else None
    time_max = parse_query_time(raw_max, "timeMax") if raw_max is not None else None
    if time_min is not None and time_max is not None and time_min >= time_max:
        raise ApiError(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            domain="calendar",
            location="timeMax",
        )
    return time_min, time_max


def _constraints(query: Query, name: str) -> tuple[tuple[str, str], ...]:
    out = []
    for value in query.get(name, []):
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise invalid_parameter(name)
        out.append((key, val))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A checked ``events.list`` query."""

    single_events: bool
    show_deleted: bool | None
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    ical_uid: str | None
    terms: tuple[str, ...]
    private: tuple[tuple[str, str], ...]
    shared: tuple[tuple[str, str], ...]
    order_by: str | None
    event_types: frozenset[str]
    sync_token: str | None
    page_token: str | None
    max_results: int
    time_zone: ZoneInfo | None
    fingerprint: str

    @property
    def incremental(self) -> bool:
        """Whether this is an incremental listing (deleted items always included)."""
        return self.sync_token is not None

    @property
    def with_deleted(self) -> bool:
        """Whether cancelled items are listed (``showDeleted``, a sync token or ``updatedMin``)."""
        return bool(self.show_deleted) or self.incremental or self.updated_min is not None


def fingerprint(query: Query) -> str:
    """The parameters that must stay the same across the pages of one listing."""
    items = sorted((k, tuple(v)) for k, v in query.items() if k not in _NOT_IN_FINGERPRINT)
    return repr(items)


def parse_list_query(query: Query) -> ListQuery:
    """The ``events.list`` parameters, with Google's 400s for forbidden combinations."""
    sync_token = single(query, "syncToken")
    show_deleted = parse_bool(query, "showDeleted")
    single_events = bool(parse_bool(query, "singleEvents"))
    if sync_token is not None:
        for name in _NOT_WITH_SYNC:
            if name in query:
                raise invalid(
                    f"Sync token cannot be used with the {name} parameter.", location=name
                )
        if show_deleted is False:
            raise invalid(
                "Sync token cannot be used with showDeleted=false.", location="showDeleted"
            )
    order_by = single(query, "orderBy")
    if order_by not in (None, "startTime", "updated"):
        raise invalid_parameter("orderBy")
    if order_by == "startTime" and not single_events:
        raise bad_request("The requested ordering is not available for the particular query.")
    time_min, time_max = parse_window(query)
    raw_updated = single(query, "updatedMin")
    event_types = frozenset(query.get("eventTypes", []))
    if not event_types <= _EVENT_TYPES:
        raise invalid_parameter("eventTypes")
    raw_zone = single(query, "timeZone")
    return ListQuery(
        single_events=single_events,
        show_deleted=show_deleted,
        time_min=time_min,
        time_max=time_max,
        updated_min=parse_query_time(raw_updated, "updatedMin") if raw_updated else None,
        ical_uid=single(query, "iCalUID"),
        terms=tuple((single(query, "q") or "").casefold().split()),
        private=_constraints(query, "privateExtendedProperty"),
        shared=_constraints(query, "sharedExtendedProperty"),
        order_by=order_by,
        event_types=event_types,
        sync_token=sync_token,
        page_token=single(query, "pageToken"),
        max_results=parse_max_results(query),
        time_zone=zone(raw_zone, "timeZone") if raw_zone is not None else None,
        fingerprint=fingerprint(query),
    )
