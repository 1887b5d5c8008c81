"""What makes an appointment remote and whether it has a meeting link. Pure.

One definition serves both the readiness check and the comfort insight: an appointment is
**remote** when the owner marked it so (a category or a ``[bracketed]`` summary word from
``policy.remote_markers``), when its location names a video service or says it happens
online (``Zoom``, ``Teams``, ``Google Meet``, ``online`` …), or when its location or
description holds a link on a known conferencing host.

A **meeting link** is any http(s) link in the event's ``URL`` or ``CONFERENCE`` property
(RFC 5545 / RFC 7986, on the occurrence or its series master), or a link on a known
conferencing host (:data:`MEETING_HOSTS` plus ``policy.meeting_link_hosts``) in its location
or description. Other links there do not count: booking tools put their cancel and reschedule
links in every description.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, tzinfo
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from icalendar import Calendar, Component

from syncd.model import Instance, When, format_when
from syncd.rules import PolicySettings

__all__ = [
    "MEETING_HOSTS",
    "conference_lines",
    "has_link",
    "has_marker",
    "instance_id",
    "is_remote",
    "linked_uids",
    "markers",
    "meeting_links",
]

MEETING_HOSTS: tuple[str, ...] = (
    "zoom.us",
    "zoom.com",
    "meet.google.com",
    "teams.microsoft.com",
    "teams.live.com",
    "webex.com",
    "whereby.com",
    "meet.jit.si",
    "gotomeet.me",
    "gotomeeting.com",
    "meet.goto.com",
    "app.chime.aws",
    "bluejeans.com",
    "skype.com",
)
"""Conferencing hosts whose links count as a meeting link (subdomains included)."""

_BRACKETED = re.compile(r"\[([^\[\]]{1,40})\]")
_LINK = re.compile(r"https?://[^\s<>\"']+", re.I)
_LINK_PROPERTIES = ("URL", "CONFERENCE")
_WEB_LINK = re.compile(r"https?://[^\s\x00-\x1f\x7f]+")
_SERVICE_WORDS = re.compile(
    r"\b(zoom|teams|google meet|webex|whereby|jitsi|skype|gotomeeting|bluejeans|chime|"
    r"video|online|remote)\b",
    re.I,
)


def markers(instance: Instance) -> set[str]:
    """The owner's markers on an instance: its categories and bracketed words in its summary,
    lower-cased."""
    found = {c.strip().lower() for c in instance.categories}
    found |= {m.strip().lower() for m in _BRACKETED.findall(instance.summary)}
    return found


def has_marker(instance: Instance | None, names: Iterable[str]) -> str | None:
    """The first of ``names`` found among the instance's markers, or None."""
    if instance is None:
        return None
    present = markers(instance)
    return next((n for n in names if n.lower() in present), None)


def instance_id(instance: Instance) -> str:
    """An appointment's recurrence id as the ledger keeps it: ``""`` for a single event."""
    return "" if instance.recurrence_id is None else format_when(instance.recurrence_id)


def conference_lines(candidates: Iterable[object]) -> list[str]:
    """``CONFERENCE`` content lines (RFC 7986) for the distinct http(s) links among
    ``candidates``, in order: how a connector hands a meeting's link from provider data to
    the readiness check. A candidate that is not such a link (absent, of another type, with
    spaces or control characters) is left out: a link is a hint, never a reason to fail."""
    links = [c for c in candidates if isinstance(c, str) and _WEB_LINK.fullmatch(c)]
    return [f"CONFERENCE;VALUE=URI;FEATURE=VIDEO:{link}" for link in dict.fromkeys(links)]


def meeting_links(text: str, extra_hosts: Iterable[str] = ()) -> list[str]:
    """The links in ``text`` on a known conferencing host."""
    hosts = (*MEETING_HOSTS, *extra_hosts)
    return [link for link in _LINK.findall(text) if _on_host(link, hosts)]


def _on_host(link: str, hosts: Iterable[str]) -> bool:
    try:
        host = (urlsplit(link).hostname or "").lower()
    except ValueError:  # a malformed link (an odd port, brackets) is no meeting link
        return False
    return any(host == h or host.endswith("." + h) for h in hosts)


def is_remote(instance: Instance, policy: PolicySettings) -> bool:
    """True for a remote appointment (see the module's definition)."""
    if has_marker(instance, policy.remote_markers) is not None:
        return True
    if _SERVICE_WORDS.search(instance.location):
        return True
    text = f"{instance.location}\n{instance.description}"
    return bool(meeting_links(text, policy.meeting_link_hosts))


def has_link(
    instance: Instance, linked: frozenset[tuple[str, str]], extra_hosts: Iterable[str] = ()
) -> bool:
    """True when the appointment carries a meeting link: a conferencing link in its location
    or description, or a link property on its own component or on its series master
    (``linked`` from :func:`linked_uids`)."""
    if meeting_links(f"{instance.location}\n{instance.description}", extra_hosts):
        return True
    return (instance.uid, instance_id(instance)) in linked or (instance.uid, "") in linked


def linked_uids(data: str, zone: ZoneInfo) -> frozenset[tuple[str, str]]:
    """``(uid, recurrence id or "")`` of the components whose ``URL`` or ``CONFERENCE``
    property holds an http(s) link. Recurrence ids read as normalization reads them (a
    floating one in the series' zone, else ``zone``), so they match :func:`instance_id`.
    Unreadable data, or an unreadable recurrence id, gives no link."""
    try:
        calendar = Calendar.from_ical(data)
        events = list(calendar.walk("VEVENT"))
    except ValueError:
        return frozenset()
    series_zone = _series_zones(events)
    found = set()
    for event in events:
        if not _has_link_property(event):
            continue
        uid = str(event.get("UID", ""))
        rid = _recurrence_id(event, series_zone.get(uid) or zone)
        if rid is not None:
            found.add((uid, rid))
    return frozenset(found)


def _has_link_property(event: Component) -> bool:
    values: list[object] = []
    for name in _LINK_PROPERTIES:
        value = event.get(name)
        values.extend(value if isinstance(value, list) else [value] if value else [])
    return any(_LINK.search(str(v)) for v in values)


def _series_zones(events: list[Component]) -> dict[str, tzinfo]:
    """The zone of each series master's DTSTART: a floating RECURRENCE-ID refers to it."""
    zones: dict[str, tzinfo] = {}
    for event in events:
        value = getattr(event.get("DTSTART"), "dt", None)
        if event.get("RECURRENCE-ID") is None and isinstance(value, datetime) and value.tzinfo:
            zones[str(event.get("UID", ""))] = value.tzinfo
    return zones


def _recurrence_id(event: Component, floating: tzinfo) -> str | None:
    """The component's recurrence id as :func:`instance_id` gives it; None when unreadable."""
    prop = event.get("RECURRENCE-ID")
    if prop is None:
        return ""
    value = getattr(prop, "dt", None)
    try:
        return format_when(_aware(value, floating))
    except (TypeError, ValueError, OverflowError):
        return None


def _aware(value: object, floating: tzinfo) -> When:
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=floating)
        return aware.astimezone(UTC)
    if isinstance(value, date):
        return value
    raise TypeError(f"not a date or datetime: {value!r}")
