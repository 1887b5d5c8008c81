"""Calendar API routing: one request (already authenticated) to one answer, under the lock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.google_emulator import calendars, listing, writes
from tests.google_emulator.errors import ApiError, insufficient_scopes, invalid_parameter, not_found
from tests.google_emulator.events import find
from tests.google_emulator.listing import Pager
from tests.google_emulator.query import Query, single
from tests.google_emulator.store import Actor, Calendar, Store
from tests.google_emulator.times import zone

__all__ = ["ApiAnswer", "ApiRequest", "Context", "handle", "schema_for"]

_AUTH = "https://www.googleapis.com/auth/"
_READ_EVENTS = frozenset(
    _AUTH + s
    for s in (
        "calendar",
        "calendar.readonly",
        "calendar.events",
        "calendar.events.readonly",
        "calendar.events.owned",
        "calendar.events.owned.readonly",
        "calendar.app.created",
    )
)
_WRITE_EVENTS = frozenset(
    _AUTH + s
    for s in ("calendar", "calendar.events", "calendar.events.owned", "calendar.app.created")
)
_READ_CALENDARS = frozenset(
    _AUTH + s
    for s in (
        "calendar",
        "calendar.readonly",
        "calendar.app.created",
        "calendar.calendars",
        "calendar.calendars.readonly",
        "calendar.calendarlist",
        "calendar.calendarlist.readonly",
    )
)
_WRITE_CALENDARS = frozenset(
    _AUTH + s for s in ("calendar", "calendar.calendars", "calendar.app.created")
)
_SEND_UPDATES = ("all", "externalOnly", "none")


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One Calendar API request after authentication."""

    method: str
    segments: list[str]  # the path after /calendar/v3/, percent-decoded
    query: Query
    headers: dict[str, str]
    body: Any
    actor: Actor
    scopes: frozenset[str] | None  # None: not checked (auth_required off, no token)


@dataclass(frozen=True, slots=True)
class ApiAnswer:
    """The answer: status, JSON body (``None`` for none), the schema ``fields`` applies to."""

    status: int
    body: dict[str, Any] | None
    schema: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Context:
    """The state one request works on."""

    store: Store
    pager: Pager


def _need(request: ApiRequest, allowed: frozenset[str]) -> None:
    if request.scopes is not None and not (request.scopes & allowed):
        raise insufficient_scopes()


def _send_updates(query: Query) -> str | None:
    value = single(query, "sendUpdates")
    if value is not None and value not in _SEND_UPDATES:
        raise invalid_parameter("sendUpdates")
    return value


def handle(ctx: Context, request: ApiRequest) -> ApiAnswer:
    """Route ``request`` to its method; Google's 404 for paths the API does not have."""
    seg, method = request.segments, request.method
    if seg[:3] == ["users", "me", "calendarList"]:
        _need(request, _READ_CALENDARS)
        if len(seg) == 3 and method == "GET":
            body = calendars.list_calendars(
                ctx.store, ctx.pager.codec, request.actor, request.query
            )
            return ApiAnswer(200, body, "CalendarList")
        if len(seg) == 4 and method == "GET":
            return ApiAnswer(
                200, calendars.entry_of(ctx.store, request.actor, seg[3]), "CalendarListEntry"
            )
    elif seg and seg[0] == "calendars":
        return _calendars(ctx, request)
    raise not_found()


def _calendars(ctx: Context, request: ApiRequest) -> ApiAnswer:
    seg, method = request.segments, request.method
    if len(seg) == 1 and method == "POST":
        _need(request, _WRITE_CALENDARS)
        return ApiAnswer(
            200, calendars.insert_calendar(ctx.store, request.actor, request.body), "Calendar"
        )
    if len(seg) < 2:
        raise not_found()
    calendar = ctx.store.resolve(request.actor, seg[1])
    if len(seg) == 2 and method == "GET":
        _need(request, _READ_CALENDARS)
        return ApiAnswer(200, calendars.calendar_resource(calendar), "Calendar")
    if len(seg) == 2 and method == "DELETE":
        _need(request, _WRITE_CALENDARS)
        calendars.delete_calendar(ctx.store, calendar)
        return ApiAnswer(204, None)
    if len(seg) >= 3 and seg[2] == "events":
        return _events(ctx, request, calendar)
    raise not_found()


def _events(ctx: Context, request: ApiRequest, calendar: Calendar) -> ApiAnswer:
    seg, method, store = request.segments, request.method, ctx.store
    read = method == "GET"
    _need(request, _READ_EVENTS if read else _WRITE_EVENTS)
    if len(seg) == 3:
        if read:
            return ApiAnswer(
                200, listing.list_events(store, ctx.pager, calendar, request.query), "Events"
            )
        if method == "POST":
            notify = _send_updates(request.query)
            body = writes.insert_event(store, calendar, request.body, request.actor, notify)
            return ApiAnswer(200, body, "Event")
        raise not_found()
    event_id = seg[3]
    if len(seg) == 5 and seg[4] == "instances" and read:
        body = listing.list_instances(store, ctx.pager, calendar, event_id, request.query)
        return ApiAnswer(200, body, "Events")
    if len(seg) != 4:
        raise not_found()
    if_match = request.headers.get("if-match")
    if read:
        resource = find(store, calendar, event_id).resource
        if request.headers.get("if-none-match", "").strip() in (resource["etag"], "*"):
            return ApiAnswer(304, None)
        raw_zone = single(request.query, "timeZone")
        if raw_zone is not None:
            resource = listing.in_zone(resource, zone(raw_zone, "timeZone"))
        return ApiAnswer(200, resource, "Event")
    notify = _send_updates(request.query)
    if method == "PUT":
        body = writes.update_event(
            store,
            calendar,
            event_id,
            request.body,
            request.actor,
            if_match=if_match,
            send_updates=notify,
        )
        return ApiAnswer(200, body, "Event")
    if method == "PATCH":
        body = writes.patch_event(
            store,
            calendar,
            event_id,
            request.body,
            request.actor,
            if_match=if_match,
            send_updates=notify,
        )
        return ApiAnswer(200, body, "Event")
    if method == "DELETE":
        writes.delete_event(store, calendar, event_id, if_match=if_match, send_updates=notify)
        return ApiAnswer(204, None)
    raise ApiError(405, "httpMethodNotAllowed", f"Method {method} is not allowed here.")


def schema_for(method: str, seg: list[str]) -> str | None:
    """The discovery schema of the answer to ``method`` on ``seg`` (what ``fields`` selects in)."""
    if seg[:3] == ["users", "me", "calendarList"]:
        return "CalendarList" if len(seg) == 3 else "CalendarListEntry"
    if not seg or seg[0] != "calendars" or method == "DELETE":
        return None
    if len(seg) <= 2:
        return "Calendar"
    if seg[2] != "events":
        return None
    if len(seg) == 3:
        return "Events" if method == "GET" else "Event"
    return "Events" if len(seg) == 5 else "Event"
