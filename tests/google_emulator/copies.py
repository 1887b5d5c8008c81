"""Attendee copies: an event whose attendee is a calendar of the emulator appears there too.

Google keeps one copy of an invitation per attendee calendar, with the same event id:

- a write on the organizer's copy is pushed to every attendee copy (each keeps its own
  ``extendedProperties.private``; an attendee dropped from the list has its copy cancelled);
- a write on an attendee's copy stays on that copy, except ``extendedProperties.shared`` and
  that attendee's own ``responseStatus``, which reach the organizer's copy and the other
  attendees' copies.
"""

from __future__ import annotations

from typing import Any

from tests.google_emulator.store import Calendar, Entry, Store
from tests.google_emulator.times import format_stamp

__all__ = ["propagate"]

_VOLATILE = ("etag", "updated", "htmlLink")


def propagate(store: Store, calendar: Calendar, event_id: str) -> None:
    """Bring the other copies of ``event_id`` up to date after a write on ``calendar``."""
    entry = calendar.entries[event_id]
    organizer = entry.resource.get("organizer", {}).get("email")
    if organizer == calendar.id:
        _push_from_organizer(store, calendar, entry)
        return
    source = store.calendars.get(organizer) if isinstance(organizer, str) else None
    if source is None or source.deleted or event_id not in source.entries:
        return
    for target in [source, *_attendee_calendars(store, source.entries[event_id], source)]:
        if target is not calendar and event_id in target.entries:
            _merge_from_attendee(store, target, target.entries[event_id], entry, calendar.id)


def _attendee_calendars(store: Store, entry: Entry, organizer: Calendar) -> list[Calendar]:
    out = []
    for person in entry.resource.get("attendees", []):
        target = store.calendars.get(person.get("email", ""))
        if target is not None and not target.deleted and target is not organizer:
            out.append(target)
    return out


def _push_from_organizer(store: Store, calendar: Calendar, entry: Entry) -> None:
    event_id = entry.resource["id"]
    invited = _attendee_calendars(store, entry, calendar)
    if not invited and (calendar.id, event_id) not in store.copy_links:
        return
    linked = store.copy_links.setdefault((calendar.id, event_id), set())
    for target in invited:
        _write_copy(store, target, entry, cancelled=False)
        linked.add(target.id)
    for target_id in sorted(linked - {t.id for t in invited}):
        dropped = store.calendars.get(target_id)
        if dropped is not None and not dropped.deleted and event_id in dropped.entries:
            _write_copy(store, dropped, entry, cancelled=True)


def _write_copy(store: Store, target: Calendar, entry: Entry, *, cancelled: bool) -> None:
    source = entry.resource
    existing = target.entries.get(source["id"])
    resource = {k: v for k, v in source.items() if k != "extendedProperties"}
    props = _copy_properties(source, existing.resource if existing else None)
    if props:
        resource["extendedProperties"] = props
    resource["organizer"] = _self_flag(source.get("organizer", {}), target.id)
    resource["creator"] = _self_flag(source.get("creator", {}), target.id)
    if "attendees" in resource:
        resource["attendees"] = [_self_flag(p, target.id) for p in resource["attendees"]]
    if cancelled:
        resource["status"] = "cancelled"
    if existing is not None and _same(existing.resource, resource):
        return
    resource.update(
        etag=store.next_etag(),
        updated=format_stamp(store.now()),
        htmlLink=store.html_link(source["id"], target.id),
    )
    target.commit(Entry(resource, entry.start, entry.end, entry.series))


def _copy_properties(source: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    shared = source.get("extendedProperties", {}).get("shared")
    private = (existing or {}).get("extendedProperties", {}).get("private")
    if private is not None:
        props["private"] = private
    if shared is not None:
        props["shared"] = shared
    return props


def _merge_from_attendee(
    store: Store, target: Calendar, current: Entry, changed: Entry, attendee: str
) -> None:
    resource = dict(current.resource)
    shared = changed.resource.get("extendedProperties", {}).get("shared")
    props = {k: v for k, v in resource.get("extendedProperties", {}).items() if k != "shared"}
    if shared:
        props["shared"] = shared
    if props:
        resource["extendedProperties"] = props
    else:
        resource.pop("extendedProperties", None)
    answer = next(
        (
            p.get("responseStatus")
            for p in changed.resource.get("attendees", [])
            if p.get("email") == attendee
        ),
        None,
    )
    if answer is not None and "attendees" in resource:
        resource["attendees"] = [
            dict(p, responseStatus=answer) if p.get("email") == attendee else p
            for p in resource["attendees"]
        ]
    if _same(current.resource, resource):
        return
    resource.update(etag=store.next_etag(), updated=format_stamp(store.now()))
    target.commit(Entry(resource, current.start, current.end, current.series))


def _self_flag(person: dict[str, Any], calendar_id: str) -> dict[str, Any]:
    out = {k: v for k, v in person.items() if k != "self"}
    if out.get("email") == calendar_id:
        out["self"] = True
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = (set(a) | set(b)) - set(_VOLATILE)
    return all(a.get(k) == b.get(k) for k in keys)
