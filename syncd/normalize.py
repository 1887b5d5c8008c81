"""Parse one calendar object (iCalendar text) into normalized instances.

Single events become one instance whatever their date; recurring series are expanded inside a
:class:`Horizon`. Every datetime comes out aware UTC, all-day values stay ``date``, floating
times take the owner's zone. Only VEVENTs count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import recurring_ical_events  # type: ignore[import-untyped]
from icalendar import Calendar, Component
from icalendar.prop import vCategory

from syncd.errors import SyncdError
from syncd.model import Instance, Status, When

__all__ = ["Horizon", "Normalized", "ParseError", "normalize_object"]

_DAY = timedelta(days=1)

# icalendar and recurring_ical_events derive their errors from ValueError; a series mixing
# date and datetime values fails with TypeError inside dateutil; far dates overflow; icalendar
# hands a TZID to zoneinfo, which opens it as a path (TZID=Europe raises IsADirectoryError).
_LIBRARY_ERRORS = (ValueError, TypeError, OverflowError, OSError)
# The icalendar parser also fails with AttributeError on mismatched BEGIN/END names and on
# list-valued VALUE parameters.
_PARSE_ERRORS = (*_LIBRARY_ERRORS, AttributeError)

_STATUSES = {"CANCELLED": Status.CANCELLED, "TENTATIVE": Status.TENTATIVE}

# Names providers use for UTC that zoneinfo does not know (compared without punctuation).
_UTC_NAMES = frozenset(
    {"utc", "gmt", "z", "zulu", "universal", "coordinateduniversaltime", "utc0000", "gmt0000"}
)

_SERIES_VALUES = ("RECURRENCE-ID", "EXDATE", "RDATE")


@dataclass(frozen=True, slots=True)
class Horizon:
    """The expansion window for recurring series: [start, end), aware UTC datetimes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a horizon needs aware datetimes")
        if self.end < self.start:
            raise ValueError("a horizon cannot end before it starts")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    @classmethod
    def around(cls, now: datetime, past: timedelta, future: timedelta) -> Horizon:
        """Day-aligned window: start = floor to UTC midnight of (now - past), end = floor to UTC
        midnight of (now + future) + 1 day. So it only moves once a day."""
        return cls(_utc_midnight(now - past), _utc_midnight(now + future) + _DAY)

    def contains(self, value: When) -> bool:
        """True when ``value`` lies in [start, end); a date counts by its UTC midnight.

        A naive datetime raises ValueError: syncd keeps only aware datetimes.
        """
        return self.start <= _instant(value) < self.end

    def intersect(self, other: Horizon) -> Horizon:
        """The overlap of two horizons; empty (start == end) when they do not meet."""
        start = max(self.start, other.start)
        return Horizon(start, max(start, min(self.end, other.end)))


class ParseError(SyncdError):
    """A calendar object is not valid iCalendar; the message says what and where (property,
    UID) but never quotes the object's contents."""


@dataclass(frozen=True, slots=True)
class Normalized:
    """The instances of one calendar object and what the engine needs to know about it."""

    instances: tuple[Instance, ...]
    recurring: bool
    """True if any VEVENT in the object has RRULE or RDATE."""
    uids: tuple[str, ...]
    """Distinct UIDs in the object, in order of appearance."""


SERIES_START = "X-SYNCD-SERIES-START"
"""On an occurrence delivered without its master (a provider that lists occurrences one by
one, as Graph does), the start of the series it belongs to, written with ``VALUE=DATE-TIME`` or
``VALUE=DATE``. The diff uses it to pair each occurrence of a series that moved as a whole with
its shifted twin (a move), where it would otherwise see a cancellation and a new booking."""

MAX_OCCURRENCES = 5000
"""More occurrences than this inside the horizon (an hourly or minutely rule) is refused."""


def normalize_object(data: bytes, *, horizon: Horizon, owner_tz: ZoneInfo) -> Normalized:
    """Parse one calendar object (one iCalendar text: one event, or a series master with its
    overrides) into instances.

    Single events yield one instance whatever their date; a recurring series yields the
    occurrences that start inside ``horizon``. Raises :class:`ParseError` for invalid input.
    """
    groups = _group_by_uid(_events(_parse(data)))
    instances: list[Instance] = []
    recurring = False
    for uid, events in groups.items():
        if any(_is_recurring(event) for event in events):
            recurring = True
            instances.extend(_expand_series(uid, events, horizon, owner_tz))
        else:
            instances.extend(_single_instances(uid, events, owner_tz))
    return Normalized(tuple(instances), recurring, tuple(groups))


# --- parsing and grouping -----------------------------------------------------------------


def _parse(data: bytes) -> Calendar:
    try:
        component = Calendar.from_ical(data)
    except _PARSE_ERRORS as exc:
        # The library's message quotes the input; say only what kind of failure it was.
        raise ParseError(f"not valid iCalendar ({type(exc).__name__})") from None
    if not isinstance(component, Calendar):
        raise ParseError(f"expected a VCALENDAR, found {component.name}")
    return component


def _events(calendar: Calendar) -> list[Component]:
    return [c for c in calendar.subcomponents if c.name == "VEVENT"]


def _group_by_uid(events: Iterable[Component]) -> dict[str, list[Component]]:
    groups: dict[str, list[Component]] = {}
    for index, event in enumerate(events, start=1):
        uid = _text(event, "UID").strip()
        if not uid:
            raise ParseError(f"VEVENT #{index} has no UID")
        groups.setdefault(uid, []).append(event)
    return groups


def _is_recurring(event: Component) -> bool:
    return "RRULE" in event or "RDATE" in event


# --- single events ------------------------------------------------------------------------


def _single_instances(uid: str, events: list[Component], owner_tz: ZoneInfo) -> list[Instance]:
    """One instance per VEVENT; duplicates of one key keep the highest SEQUENCE (first wins)."""
    chosen: dict[tuple[str, str], tuple[int, Instance]] = {}
    for event in events:
        instance = _single_instance(uid, event, owner_tz)
        sequence = _sequence(event)
        known = chosen.get(instance.key)
        if known is None or sequence > known[0]:
            chosen[instance.key] = (sequence, instance)
    return [instance for _, instance in chosen.values()]


def _single_instance(uid: str, event: Component, owner_tz: ZoneInfo) -> Instance:
    start = _required_when(event, "DTSTART", uid, owner_tz)
    recurrence_id = _when(event, "RECURRENCE-ID", uid, owner_tz)
    return _instance(
        uid,
        event,
        start=_utc(start),
        end=_utc(_end(event, uid, start, owner_tz)),
        recurrence_id=None if recurrence_id is None else _utc(recurrence_id),
        series_start=None if recurrence_id is None else _series_start_hint(event, owner_tz),
        owner_tz=owner_tz,
    )


def _series_start_hint(event: Component, owner_tz: tzinfo) -> When | None:
    """The :data:`SERIES_START` of a lone occurrence; an unreadable one is no hint at all
    (the occurrence itself is still read), since it serves only to pair moves."""
    prop = event.get(SERIES_START)
    try:
        value = getattr(prop, "dt", None)
    except _PARSE_ERRORS:  # icalendar parses lazily: a broken value raises on first read
        return None
    if isinstance(prop, list) or not isinstance(value, date):
        return None
    return _utc(_localize(value, _tzid(prop), owner_tz))


def _end(event: Component, uid: str, start: When, owner_tz: tzinfo) -> When:
    end = _when(event, "DTEND", uid, owner_tz)
    if end is not None:
        return end
    duration = _duration(event, uid)
    if duration is not None:
        if isinstance(start, datetime):
            return start + duration
        # A date plus a sub-day duration would not move; an all-day event lasts a day at least.
        return start + timedelta(days=max(duration.days, 1))
    return start if isinstance(start, datetime) else start + _DAY


def _duration(event: Component, uid: str) -> timedelta | None:
    prop = _one(event, "DURATION", uid)
    if prop is None:
        return None
    value = _value(prop, "DURATION", uid)
    if not isinstance(value, timedelta):
        raise ParseError(f"DURATION of UID {uid!r} is not a duration")
    return value


# --- recurring series ---------------------------------------------------------------------


def _expand_series(
    uid: str, events: list[Component], horizon: Horizon, owner_tz: ZoneInfo
) -> list[Instance]:
    master = _master(events)
    master_start = _localize_series(uid, events, master, owner_tz)
    series_start = None if master_start is None else _utc(master_start)
    all_day = master_start is not None and not isinstance(master_start, datetime)
    _check_rules(uid, events)
    calendar = Calendar()
    calendar.subcomponents.extend(events)
    found: dict[tuple[str, str], Instance] = {}
    try:
        for occurrence in recurring_ical_events.of(calendar).after(horizon.start):
            instance = _occurrence_instance(uid, occurrence, series_start, all_day, owner_tz)
            if _instant(instance.start) >= horizon.end:
                break  # occurrences come in order of start
            # An occurrence belongs to the horizon by its original start, as the diff keys it.
            if horizon.contains(instance.recurrence_id or instance.start):
                found.setdefault(instance.key, instance)
            if len(found) > MAX_OCCURRENCES:
                raise ParseError(
                    f"UID {uid!r} repeats more than {MAX_OCCURRENCES} times inside the horizon"
                )
    except _LIBRARY_ERRORS as exc:
        raise ParseError(
            f"cannot expand the recurrence of UID {uid!r} ({type(exc).__name__})"
        ) from None
    for moved in _overrides_moved_out(uid, events, horizon, series_start, all_day, owner_tz):
        found.setdefault(moved.key, moved)
    return [found[key] for key in sorted(found)]


def _check_rules(uid: str, events: Sequence[Component]) -> None:
    """Refuse rules the expansion cannot finish (an INTERVAL of 0 never advances)."""
    for event in events:
        try:
            intervals = [i for rule in _rules_of(event) for i in rule.get("INTERVAL", [1])]
        except _PARSE_ERRORS:
            raise ParseError(f"invalid RRULE in UID {uid!r}") from None
        for interval in intervals:
            if not isinstance(interval, int) or interval < 1:
                raise ParseError(f"UID {uid!r} has an RRULE with INTERVAL {interval!r}")


def _rules_of(event: Component) -> list[Any]:
    rules = event.get("RRULE")
    if rules is None:
        return []
    return list(rules) if isinstance(rules, list) else [rules]


def _overrides_moved_out(
    uid: str,
    events: Sequence[Component],
    horizon: Horizon,
    series_start: When | None,
    all_day: bool,
    owner_tz: ZoneInfo,
) -> list[Instance]:
    """Overrides whose original start is inside the horizon but whose new start is not: the
    expansion (by current start) misses them, the diff (by original start) must not."""
    found = []
    for event in events:
        if "RECURRENCE-ID" not in event:
            continue
        instance = _single_instance(uid, event, owner_tz)
        rid = instance.recurrence_id
        if all_day and isinstance(rid, datetime):
            rid = rid.date()
        if rid is not None and horizon.contains(rid) and not horizon.contains(instance.start):
            found.append(replace(instance, recurrence_id=rid, series_start=series_start))
    return found


def _master(events: Sequence[Component]) -> Component | None:
    """The series master as recurring_ical_events picks it: highest SEQUENCE, first on a tie."""
    master: Component | None = None
    for event in events:
        if "RECURRENCE-ID" not in event and (
            master is None or _sequence(event) > _sequence(master)
        ):
            master = event
    return master


def _localize_series(
    uid: str, events: list[Component], master: Component | None, owner_tz: ZoneInfo
) -> When | None:
    """Give every naive datetime of the series a zone, in place, before expansion.

    recurring_ical_events guesses zones for naive values by mixing them with aware ones, and
    icalendar leaves unknown TZIDs naive; resolving them first makes every parse give the same
    keys. Returns the master's localized DTSTART.
    """
    master_start = None
    if master is not None:
        master_start = _required_when(master, "DTSTART", uid, owner_tz)
    # A floating RECURRENCE-ID, EXDATE or RDATE refers to the master's wall clock.
    series_zone = _zone_of(master_start) or owner_tz
    for event in events:
        _required_when(event, "DTSTART", uid, owner_tz)
        for name in ("DTEND", "RECURRENCE-ID"):
            _one(event, name, uid)
        for name in ("DTSTART", "DTEND"):
            _localize_property(event, name, uid, owner_tz)
        for name in _SERIES_VALUES:
            _localize_property(event, name, uid, series_zone)
        _duration(event, uid)
    return master_start


def _localize_property(event: Component, name: str, uid: str, floating: tzinfo) -> None:
    for prop in _all(event, name):
        tzid = _tzid(prop)
        for item in _items(prop, name, uid):
            value = _value(item, name, uid)
            if isinstance(value, tuple):
                item.dt = tuple(_localize_any(part, tzid, floating) for part in value)
            else:
                item.dt = _localize_any(value, tzid, floating)


def _items(prop: Any, name: str, uid: str) -> list[Any]:
    """The single values of a date property: one for DTSTART, several for EXDATE/RDATE lists."""
    if name not in ("EXDATE", "RDATE"):
        return [prop]
    try:
        return list(prop.dts)
    except _LIBRARY_ERRORS:
        raise ParseError(f"invalid {name} in UID {uid!r}") from None


def _occurrence_instance(
    uid: str,
    occurrence: Component,
    series_start: When | None,
    all_day: bool,
    owner_tz: ZoneInfo,
) -> Instance:
    recurrence_id = _generated(occurrence, "RECURRENCE-ID")
    if all_day and isinstance(recurrence_id, datetime):
        recurrence_id = recurrence_id.date()
    return _instance(
        uid,
        occurrence,
        start=_utc(_generated(occurrence, "DTSTART")),
        end=_utc(_generated(occurrence, "DTEND")),
        recurrence_id=_utc(recurrence_id),
        series_start=series_start,
        owner_tz=owner_tz,
    )


def _generated(occurrence: Component, name: str) -> When:
    """A date value recurring_ical_events set on an occurrence (validated before expansion)."""
    prop: Any = occurrence[name]
    value: When = prop.dt
    return value


# --- fields -------------------------------------------------------------------------------


def _instance(
    uid: str,
    event: Component,
    *,
    start: When,
    end: When,
    recurrence_id: When | None,
    series_start: When | None,
    owner_tz: ZoneInfo,
) -> Instance:
    return Instance(
        uid=uid,
        recurrence_id=recurrence_id,
        start=start,
        end=end,
        status=_STATUSES.get(_text(event, "STATUS").strip().upper(), Status.CONFIRMED),
        summary=_text(event, "SUMMARY"),
        location=_text(event, "LOCATION"),
        description=_text(event, "DESCRIPTION"),
        organizer=_email(_text(event, "ORGANIZER")) or None,
        attendees=_attendees(event),
        categories=_categories(event),
        transparent=_text(event, "TRANSP").strip().upper() == "TRANSPARENT",
        modified=_modified(event, uid, owner_tz),
        series_start=series_start,
    )


def _attendees(event: Component) -> tuple[tuple[str, str], ...]:
    """One ``(email, PARTSTAT)`` per email, the first one listed, sorted by email."""
    partstats: dict[str, str] = {}
    for prop in _all(event, "ATTENDEE"):
        email = _email(str(prop))
        if email and email not in partstats:
            partstat = str(prop.params.get("PARTSTAT", "")).strip().upper()
            partstats[email] = partstat or "NEEDS-ACTION"
    return tuple(sorted(partstats.items()))


def _categories(event: Component) -> tuple[str, ...]:
    """All CATEGORIES values, de-duplicated and sorted case-insensitively (first spelling)."""
    by_fold: dict[str, str] = {}
    for prop in _all(event, "CATEGORIES"):
        values = prop.cats if isinstance(prop, vCategory) else [prop]
        for raw in values:
            name = str(raw).strip()
            if name:
                by_fold.setdefault(name.casefold(), name)
    return tuple(by_fold[fold] for fold in sorted(by_fold))


def _modified(event: Component, uid: str, owner_tz: ZoneInfo) -> datetime | None:
    value = _when(event, "LAST-MODIFIED", uid, owner_tz)
    if value is None:
        return None
    return _instant(value)


def _email(address: str) -> str:
    text = address.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.strip().lower()


def _text(event: Component, name: str) -> str:
    value = event.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return "" if value is None else str(value)


def _sequence(event: Component) -> int:
    try:
        return int(_text(event, "SEQUENCE") or 0)
    except ValueError:
        return 0


# --- date and time values -----------------------------------------------------------------


def _all(event: Component, name: str) -> list[Any]:
    value = event.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _one(event: Component, name: str, uid: str) -> Any:
    value = event.get(name)
    if isinstance(value, list):
        raise ParseError(f"{name} appears more than once in UID {uid!r}")
    return value


def _value(prop: Any, name: str, uid: str) -> Any:
    """The parsed value; icalendar parses lazily, so a broken value raises only here."""
    try:
        return prop.dt
    except _LIBRARY_ERRORS:
        raise ParseError(f"invalid {name} value in UID {uid!r}") from None


def _when(event: Component, name: str, uid: str, floating: tzinfo) -> When | None:
    """A date, or a datetime in its own zone (naive ones resolved), for one property."""
    prop = _one(event, name, uid)
    if prop is None:
        return None
    value = _value(prop, name, uid)
    if not isinstance(value, date):
        raise ParseError(f"{name} of UID {uid!r} is not a date or date-time")
    return _localize(value, _tzid(prop), floating)


def _required_when(event: Component, name: str, uid: str, floating: tzinfo) -> When:
    value = _when(event, name, uid, floating)
    if value is None:
        raise ParseError(f"VEVENT with UID {uid!r} has no {name}")
    return value


def _tzid(prop: Any) -> str | None:
    tzid = prop.params.get("TZID")
    return None if tzid is None else str(tzid)


def _localize_any(value: Any, tzid: str | None, floating: tzinfo) -> Any:
    """Like :func:`_localize` for any value an EXDATE or RDATE list may hold."""
    return _localize(value, tzid, floating) if isinstance(value, date) else value


def _localize(value: When, tzid: str | None, floating: tzinfo) -> When:
    """Give a naive datetime its zone: the TZID when one can be resolved, else ``floating``."""
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return value
    zone = None if tzid is None else _zone_named(tzid)
    return value.replace(tzinfo=zone or floating)


@lru_cache(maxsize=512)
def _zone_named(tzid: str) -> tzinfo | None:
    """Resolve a TZID icalendar could not: UTC aliases, then IANA names; None when unknown."""
    name = tzid.strip().strip('"').strip()
    if re.sub(r"[^a-z0-9]", "", name.rsplit("/", 1)[-1].lower()) in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        # zoneinfo rejects odd keys with ValueError, unknown ones with a KeyError subclass,
        # and directory names or overlong keys with OSError.
        return None


def _zone_of(value: When | None) -> tzinfo | None:
    return value.tzinfo if isinstance(value, datetime) else None


def _utc(value: When) -> When:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _instant(value: When) -> datetime:
    """A point on the UTC line: aware datetimes as they are, dates at their UTC midnight."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: syncd keeps only aware datetimes")
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _utc_midnight(value: datetime) -> datetime:
    return _instant(_instant(value).date())
