"""``calendarList`` and ``calendars``: the caller's calendars, making and deleting them."""

from __future__ import annotations

from typing import Any

from tests.google_emulator.errors import ApiError, full_sync_required, invalid, required
from tests.google_emulator.query import Query, parse_bool, single
from tests.google_emulator.store import Actor, Calendar, Store
from tests.google_emulator.times import zone
from tests.google_emulator.tokens import TokenCodec

__all__ = [
    "calendar_resource",
    "delete_calendar",
    "entry_of",
    "insert_calendar",
    "list_calendars",
    "list_entry",
]


def calendar_resource(calendar: Calendar) -> dict[str, Any]:
    """The ``Calendar`` resource."""
    out: dict[str, Any] = {
        "kind": "calendar#calendar",
        "etag": calendar.etag,
        "id": calendar.id,
        "summary": calendar.summary,
    }
    if calendar.description:
        out["description"] = calendar.description
    out["timeZone"] = calendar.time_zone
    out["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
    return out


def list_entry(calendar: Calendar) -> dict[str, Any]:
    """The caller's ``CalendarListEntry`` for ``calendar`` (the caller owns it)."""
    out = calendar_resource(calendar)
    out["kind"] = "calendar#calendarListEntry"
    out.pop("conferenceProperties")
    out.update(
        colorId="14",
        backgroundColor="#9fe1e7",
        foregroundColor="#000000",
        selected=True,
        accessRole="owner",
        defaultReminders=[],
        conferenceProperties={"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
    )
    if calendar.primary:
        out["primary"] = True
    if calendar.hidden:
        out["hidden"] = True
    if calendar.deleted:
        out = {"kind": out["kind"], "etag": out["etag"], "id": out["id"], "deleted": True}
    return out


def list_calendars(store: Store, codec: TokenCodec, actor: Actor, query: Query) -> dict[str, Any]:
    """``calendarList.list``: one page with every calendar the caller owns and a sync token.
    Hidden entries only with ``showHidden=true`` (always with a sync token, which forbids
    ``showHidden=false`` as it does ``showDeleted=false``)."""
    token = single(query, "syncToken")
    since = 0
    if token is not None:
        refused = (
            parse_bool(query, "showDeleted") is False or parse_bool(query, "showHidden") is False
        )
        if refused or "minAccessRole" in query:
            raise invalid("Sync token cannot be used with these parameters.", location="syncToken")
        payload = codec.decode(token, "l")
        if payload is None or payload[1] != actor.email:
            raise full_sync_required()
        since = int(payload[2])
    show_deleted = token is not None or bool(parse_bool(query, "showDeleted"))
    show_hidden = token is not None or bool(parse_bool(query, "showHidden"))
    items = [
        list_entry(calendar)
        for calendar in store.calendars.values()
        if calendar.owner == actor.email
        and calendar.list_seq > since
        and (show_deleted or not calendar.deleted)
        and (show_hidden or not calendar.hidden)
    ]
    return {
        "kind": "calendar#calendarList",
        "etag": f'"p{store.list_seq:08x}"',
        "nextSyncToken": codec.encode(["l", actor.email, store.list_seq]),
        "items": items,
    }


def insert_calendar(store: Store, actor: Actor, body: object) -> dict[str, Any]:
    """``calendars.insert``: a secondary calendar owned by the caller."""
    if not isinstance(body, dict):
        raise invalid("Invalid value for: calendar")
    summary = body.get("summary")
    if not isinstance(summary, str) or not summary:
        raise required("Missing title.")
    raw_zone = body.get("timeZone", "UTC")
    zone(raw_zone, "timeZone")
    calendar = store.add_calendar(summary, owner=actor.email, time_zone=raw_zone)
    description = body.get("description")
    if isinstance(description, str):
        calendar.description = description
    return calendar_resource(calendar)


def delete_calendar(store: Store, calendar: Calendar) -> None:
    """``calendars.delete``: secondary calendars only (the primary is cleared, not deleted)."""
    if calendar.primary:
        raise ApiError(400, "cannotDeletePrimaryCalendar", "Cannot delete primary calendar.")
    store.delete_calendar(calendar)


def entry_of(store: Store, actor: Actor, calendar_id: str) -> dict[str, Any]:
    """``calendarList.get``."""
    return list_entry(store.resolve(actor, calendar_id))
