"""Event writes: insert, update (PUT), patch, delete, and the test controls' own writes."""

from __future__ import annotations

from typing import Any

from tests.google_emulator import copies
from tests.google_emulator.errors import (
    ApiError,
    condition_not_met,
    deleted,
    duplicate,
    forbidden_for_non_organizer,
    invalid,
)
from tests.google_emulator.events import (
    Found,
    Identity,
    build_entry,
    find,
    organizer_of,
    times_changed,
)
from tests.google_emulator.recurrence import parse_stamp
from tests.google_emulator.resources import API_READ_ONLY, EVENT_ID, check_event, merge_patch
from tests.google_emulator.store import Actor, Calendar, Entry, Store, WriteRecord, new_event_id
from tests.google_emulator.times import format_stamp

__all__ = ["delete_event", "insert_event", "patch_event", "put_event", "update_event"]

_GUEST_DEFAULTS = {
    "guestsCanInviteOthers": True,
    "guestsCanModify": False,
    "guestsCanSeeOtherGuests": True,
}
_SEQUENCE_BELOW = (
    "Invalid sequence value. The specified sequence number is below the current sequence "
    "number of the resource."
)


def _writable(checked: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in checked.items() if k not in API_READ_ONLY and k != "iCalUID"}


def _check_if_match(found: Found, if_match: str | None) -> None:
    if (
        if_match is not None
        and if_match.strip() != "*"
        and if_match.strip() != found.resource["etag"]
    ):
        raise condition_not_met()


def _check_service_account(actor: Actor, fields: dict[str, Any]) -> None:
    if actor.service_account and fields.get("attendees"):
        raise ApiError(
            403,
            "forbiddenForServiceAccounts",
            "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority.",
            domain="calendar",
        )


def _check_organizer_only(
    calendar: Calendar, current: dict[str, Any], fields: dict[str, Any]
) -> None:
    organizer = current.get("organizer", {}).get("email")
    if organizer is None or organizer == calendar.id:
        return
    for key, default in _GUEST_DEFAULTS.items():
        if fields.get(key, default) != current.get(key, default):
            raise forbidden_for_non_organizer()


def _sequence(current: dict[str, Any], requested: object, fields: dict[str, Any]) -> int:
    now = int(current.get("sequence", 0))
    if isinstance(requested, int) and not isinstance(requested, bool):
        if requested < now:
            raise invalid(_SEQUENCE_BELOW, location="sequence")
        if requested > now:
            return requested
    return now + 1 if times_changed(current, fields) else now


def _identity(found: Found, sequence: int) -> Identity:
    res = found.resource
    return Identity(
        id=res["id"],
        ical_uid=res["iCalUID"],
        created=res["created"],
        creator=res.get("creator", {}),
        organizer=res.get("organizer", {}),
        sequence=sequence,
        recurring_event_id=res.get("recurringEventId"),
        original_start=res.get("originalStartTime"),
    )


def _commit(store: Store, calendar: Calendar, entry: Entry) -> dict[str, Any]:
    calendar.commit(entry)
    copies.propagate(store, calendar, entry.resource["id"])
    return entry.resource


def _record(
    store: Store, op: str, calendar: Calendar, event_id: str, send_updates: str | None
) -> None:
    store.writes.append(WriteRecord(op, calendar.id, event_id, send_updates))


def insert_event(
    store: Store, calendar: Calendar, body: object, actor: Actor, send_updates: str | None
) -> dict[str, Any]:
    """``events.insert``: a client-chosen id (base32hex, 5-1024) or a generated one."""
    checked = check_event(body)
    event_id = checked.get("id")
    if event_id is None:
        event_id = new_event_id()
        while event_id in calendar.entries:
            event_id = new_event_id()
    elif not EVENT_ID.fullmatch(event_id):
        raise invalid("Invalid resource id value.")
    elif event_id in calendar.entries:
        raise duplicate()
    uid = checked.get("iCalUID") or f"{event_id}@google.com"
    if calendar.ical.get(uid):
        raise duplicate()
    fields = _writable(checked)
    _check_service_account(actor, fields)
    now = format_stamp(store.now())
    creator = {"email": actor.email}
    sequence = checked.get("sequence", 0)
    ident = Identity(event_id, uid, now, creator, organizer_of(calendar), sequence)
    entry = build_entry(store, calendar, fields, ident, None)
    _record(store, "insert", calendar, event_id, send_updates)
    return _commit(store, calendar, entry)


def update_event(
    store: Store,
    calendar: Calendar,
    event_id: str,
    body: object,
    actor: Actor,
    *,
    if_match: str | None,
    send_updates: str | None,
) -> dict[str, Any]:
    """``events.update`` (PUT): the body replaces every writable member."""
    found = find(store, calendar, event_id)
    _check_if_match(found, if_match)
    checked = check_event(body)
    return _replace(store, calendar, found, checked, actor, "update", send_updates, control=False)


def patch_event(
    store: Store,
    calendar: Calendar,
    event_id: str,
    patch: object,
    actor: Actor,
    *,
    if_match: str | None,
    send_updates: str | None,
    control: bool = False,
) -> dict[str, Any]:
    """``events.patch``: objects merged, ``null`` removes a member, lists replaced.

    ``control``: a test control's write (another client): not recorded, no caller checks."""
    found = find(store, calendar, event_id)
    _check_if_match(found, if_match)
    if not isinstance(patch, dict):
        raise invalid("Invalid value for: event")
    merged = merge_patch(found.resource, {k: v for k, v in patch.items() if k not in API_READ_ONLY})
    merged.pop("sequence", None)
    if "sequence" in patch:
        merged["sequence"] = patch["sequence"]
    checked = check_event(merged)
    return _replace(store, calendar, found, checked, actor, "patch", send_updates, control=control)


def _replace(
    store: Store,
    calendar: Calendar,
    found: Found,
    checked: dict[str, Any],
    actor: Actor,
    op: str,
    send_updates: str | None,
    *,
    control: bool,
) -> dict[str, Any]:
    fields = _writable(checked)
    if not control:
        if fields.get("attendees") != found.resource.get("attendees"):
            _check_service_account(actor, fields)
        _check_organizer_only(calendar, found.resource, fields)
    sequence = _sequence(found.resource, checked.get("sequence"), fields)
    fields.pop("sequence", None)
    entry = build_entry(store, calendar, fields, _identity(found, sequence), found.resource)
    if not control:
        _record(store, op, calendar, found.resource["id"], send_updates)
    return _commit(store, calendar, entry)


def delete_event(
    store: Store,
    calendar: Calendar,
    event_id: str,
    *,
    if_match: str | None,
    send_updates: str | None,
    control: bool = False,
) -> None:
    """``events.delete``: the event (or instance) becomes ``cancelled``; twice is 410."""
    found = find(store, calendar, event_id)
    _check_if_match(found, if_match)
    if found.resource.get("status") == "cancelled":
        raise deleted()
    if not control:
        _record(store, "delete", calendar, found.resource["id"], send_updates)
    cancel(store, calendar, found)


def cancel(store: Store, calendar: Calendar, found: Found) -> None:
    """Mark ``found`` cancelled; a deleted master takes its stored exceptions with it."""
    entry = found.entry
    resource = dict(found.resource, status="cancelled", etag=store.next_etag())
    resource["updated"] = format_stamp(store.now())
    if entry is None:
        assert found.master is not None
        entry = Entry(resource, found.master.start, found.master.end, None)
        if found.occurrence is not None and found.master.series is not None:
            start = found.master.series.instant(found.occurrence, calendar.tz)
            entry = Entry(resource, start, start + found.master.series.duration, None)
        _commit(store, calendar, entry)
        return
    _commit(store, calendar, Entry(resource, entry.start, entry.end, entry.series))
    for child_id in sorted(calendar.children.get(resource["id"], set())):
        child = calendar.entries[child_id]
        if not child.cancelled:
            cancel(store, calendar, Found(child.resource, child))


def put_event(
    store: Store, calendar: Calendar, body: dict[str, Any], stamp: str | None = None
) -> dict[str, Any]:
    """Insert or replace ``body["id"]`` as another client would (the web UI, an invitation):
    ``organizer``, ``creator`` and ``iCalUID`` may be given. The id must be one Google could
    have made: base32hex, or ``<master id>_<stamp>`` for an exception (whose
    ``recurringEventId`` and ``originalStartTime`` then come from the series)."""
    checked = check_event(body)
    event_id = checked.get("id") or new_event_id()
    _check_put_id(event_id, checked.get("recurringEventId"))
    found: Found | None = None
    if event_id in calendar.entries or "_" in event_id:
        try:
            found = find(store, calendar, event_id)
        except ApiError:
            found = None
    current = found.resource if found is not None else {}
    now = stamp or format_stamp(store.now())
    owner = {"email": calendar.owner}
    fields = {k: v for k, v in checked.items() if k not in API_READ_ONLY and k != "iCalUID"}
    sequence = checked.get("sequence")
    if not isinstance(sequence, int):
        sequence = _sequence(current, None, fields) if current else 0
    uid = checked.get("iCalUID") or current.get("iCalUID") or f"{event_id}@google.com"
    _check_put_uid(calendar, uid, event_id)
    ident = Identity(
        id=event_id,
        ical_uid=uid,
        created=current.get("created", now),
        creator=checked.get("creator") or current.get("creator") or owner,
        organizer=checked.get("organizer") or current.get("organizer") or organizer_of(calendar),
        sequence=sequence,
        recurring_event_id=checked.get("recurringEventId") or current.get("recurringEventId"),
        original_start=checked.get("originalStartTime") or current.get("originalStartTime"),
    )
    entry = build_entry(store, calendar, fields, ident, current or None, stamp)
    return _commit(store, calendar, entry)


def _check_put_id(event_id: str, recurring_event_id: object) -> None:
    master, sep, stamp = event_id.rpartition("_")
    if sep and EVENT_ID.fullmatch(master) and parse_stamp(stamp) is not None:
        if recurring_event_id not in (None, master):
            raise invalid("recurringEventId does not match the instance id.")
        return
    if recurring_event_id is not None:
        raise invalid("An exception's id is <recurringEventId>_<original start stamp>.")
    if not EVENT_ID.fullmatch(event_id):
        raise invalid("Invalid resource id value.")


def _check_put_uid(calendar: Calendar, uid: str, event_id: str) -> None:
    """An iCalUID is shared only by a series' master and its exceptions."""
    series = event_id.rpartition("_")[0] or event_id
    for other in calendar.ical.get(uid, set()):
        if (other.rpartition("_")[0] or other) != series:
            raise duplicate()
