"""The Graph calendar routes: one authenticated :class:`Call` in, one :class:`Reply` out.

Mailbox prefixes: ``/me`` (delegated tokens only) and ``/users/{id}`` (app-only tokens, or a
user's own mailbox). Calendar prefixes: none (the mailbox level: ``/events`` lists the default
calendar, ``/events/{id}`` finds an event in any calendar), ``/calendar`` (the default one) or
``/calendars/{id}``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.graph_emulator import delta as delta_mod
from tests.graph_emulator.delta import DeltaState, Entry, Round, Token
from tests.graph_emulator.errors import GraphError, access_denied, bad_request, not_implemented
from tests.graph_emulator.model import Instance, sort_key
from tests.graph_emulator.odata import (
    ExtFilter,
    Prefer,
    parse_expand,
    parse_filter,
    parse_select,
    query_int,
)
from tests.graph_emulator.render import View, render
from tests.graph_emulator.store import Calendar, Mailbox, Store
from tests.graph_emulator.times import parse_query_time, zone

_PARTIAL_KEPT = frozenset(
    {
        "@odata.type",
        "@odata.etag",
        "id",
        "changeKey",
        "type",
        "start",
        "end",
        "lastModifiedDateTime",
    }
)
"""What an updated item carries in a delta page with ``partial_updates`` on."""

__all__ = ["Api", "Call", "Reply", "target_user"]

DEFAULT_PAGE = 10
MAX_PAGE = 1000


@dataclass
class Call:
    """An authenticated request. ``path`` follows ``/v1.0``; header names are lower-case."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    prefer: Prefer
    body: Any
    principal: str

    @property
    def segments(self) -> list[str]:
        """The path's segments, percent-decoded."""
        return [urllib.parse.unquote(s) for s in self.path.split("/") if s]


@dataclass
class Reply:
    """A response: status, JSON body (None: empty) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def target_user(principal: str, path: str) -> str | None:
    """The mailbox a request addresses (for throttling), or None."""
    parts = [urllib.parse.unquote(s) for s in path.split("/") if s]
    if parts[:1] == ["me"] and not principal.startswith("app:"):
        return principal.lower()
    if len(parts) >= 2 and parts[0] == "users":
        return parts[1].lower()
    return None


class Api:
    """Routes calls to the store and renders the answers."""

    def __init__(
        self,
        store: Store,
        deltas: DeltaState,
        base: Callable[[], str],
        cap: Callable[[], int | None],
    ) -> None:
        self.store = store
        self.deltas = deltas
        self._base = base
        self._cap = cap

    def handle(self, call: Call) -> Reply:
        """Serve one call."""
        parts = call.segments
        mailbox, rest = self._mailbox(call, parts)
        if rest[:1] == ["calendars"] and len(rest) <= 2:
            return self._calendars(call, mailbox, rest[1:])
        if rest == ["calendar"]:
            return self._only(
                call, "GET", lambda: Reply(200, self.store.calendar(mailbox, None).json())
            )
        calendar, rest = self._calendar_scope(mailbox, rest)
        if rest == ["events"]:
            return self._events(call, mailbox, calendar)
        if rest == ["calendarView"]:
            return self._only(call, "GET", lambda: self._calendar_view(call, mailbox, calendar))
        if rest == ["calendarView", "delta"]:
            return self._only(call, "GET", lambda: self._delta(call, mailbox, calendar))
        if rest == ["events", "delta"]:
            raise bad_request(
                "events/delta is beta-only; v1.0 has calendarView/delta.", "BadRequest"
            )
        if len(rest) in (2, 3) and rest[0] == "events":
            return self._event(call, mailbox, calendar, rest[1], rest[2:])
        segment = rest[0] if rest else parts[-1] if parts else ""
        raise bad_request(f"Resource not found for the segment '{segment}'.", "BadRequest")

    # -- resolution ----------------------------------------------------------------------

    def _mailbox(self, call: Call, parts: list[str]) -> tuple[Mailbox, list[str]]:
        app = call.principal.startswith("app:")
        if parts[:1] == ["me"]:
            if app:
                raise bad_request(
                    "/me request is only valid with delegated authentication flow.", "BadRequest"
                )
            return self.store.mailbox(call.principal), parts[1:]
        if len(parts) >= 2 and parts[0] == "users":
            if not app and parts[1].lower() != call.principal.lower():
                raise access_denied()
            return self.store.mailbox(parts[1]), parts[2:]
        raise bad_request(
            f"Resource not found for the segment '{parts[0] if parts else ''}'.", "BadRequest"
        )

    def _calendar_scope(
        self, mailbox: Mailbox, rest: list[str]
    ) -> tuple[Calendar | None, list[str]]:
        if rest[:1] == ["calendar"] and len(rest) > 1:
            return self.store.calendar(mailbox, None), rest[1:]
        if rest[:1] == ["calendars"] and len(rest) > 2:
            return self.store.calendar(mailbox, rest[1]), rest[2:]
        return None, rest

    @staticmethod
    def _only(call: Call, method: str, serve: Callable[[], Reply]) -> Reply:
        if call.method != method:
            raise GraphError(405, "BadRequest", f"The method {call.method} is not allowed here.")
        return serve()

    # -- calendars -----------------------------------------------------------------------

    def _calendars(self, call: Call, mailbox: Mailbox, rest: list[str]) -> Reply:
        if rest:
            return self._only(
                call, "GET", lambda: Reply(200, self.store.calendar(mailbox, rest[0]).json())
            )
        if call.method == "GET":
            value = [c.json() for c in mailbox.calendars.values()]
            return Reply(
                200, {"@odata.context": self._context(mailbox, "calendars"), "value": value}
            )
        if call.method == "POST":
            if not isinstance(call.body, dict):
                raise bad_request(
                    "A calendar needs a JSON body with 'name'.", "ErrorInvalidParameter"
                )
            return Reply(201, self.store.add_calendar(mailbox, call.body.get("name")).json())
        raise GraphError(405, "BadRequest", f"The method {call.method} is not allowed here.")

    # -- events --------------------------------------------------------------------------

    def _events(self, call: Call, mailbox: Mailbox, calendar: Calendar | None) -> Reply:
        target = self.store.calendar(mailbox, calendar.id if calendar else None)
        if call.method == "POST":
            instance, _ = self.store.create(mailbox, target, call.body, privileged=False)
            return self._one(call, mailbox, instance, 201)
        if call.method != "GET":
            raise GraphError(405, "BadRequest", f"The method {call.method} is not allowed here.")
        with self.store.lock:
            found = [Instance(item, None, None) for item in self.store.items(mailbox, target)]
        return self._paged(call, mailbox, found, "events")

    def _event(
        self, call: Call, mailbox: Mailbox, calendar: Calendar | None, ident: str, action: list[str]
    ) -> Reply:
        if action == ["instances"]:
            return self._only(call, "GET", lambda: self._instances(call, mailbox, calendar, ident))
        if action == ["cancel"]:

            def cancel() -> Reply:
                self.store.cancel(mailbox, ident, calendar=calendar)
                return Reply(202)

            return self._only(call, "POST", cancel)
        if action:
            raise not_implemented(f"the event action '{action[0]}'")
        if_match = call.headers.get("if-match")
        if call.method == "GET":
            with self.store.lock:
                instance = self.store.instance(mailbox, ident, calendar)
            return self._one(call, mailbox, instance, 200)
        if call.method == "PATCH":
            instance = self.store.update(
                mailbox, ident, call.body, privileged=False, if_match=if_match, calendar=calendar
            )
            return self._one(call, mailbox, instance, 200)
        if call.method == "DELETE":
            self.store.delete(mailbox, ident, if_match=if_match, calendar=calendar)
            return Reply(204)
        raise GraphError(405, "BadRequest", f"The method {call.method} is not allowed here.")

    def _instances(
        self, call: Call, mailbox: Mailbox, calendar: Calendar | None, ident: str
    ) -> Reply:
        start, end = self._window(call)
        with self.store.lock:
            master = self.store.instance(mailbox, ident, calendar)
        found = master.item.instances(start, end) if master.kind == "seriesMaster" else []
        found.sort(key=sort_key)
        return self._paged(call, mailbox, found, "events")

    def _calendar_view(self, call: Call, mailbox: Mailbox, calendar: Calendar | None) -> Reply:
        start, end = self._window(call)
        target = self.store.calendar(mailbox, calendar.id if calendar else None)
        with self.store.lock:
            found = self.store.view(mailbox, target, start, end)
        return self._paged(call, mailbox, found, "calendarView")

    # -- delta ---------------------------------------------------------------------------

    def _delta(self, call: Call, mailbox: Mailbox, calendar: Calendar | None) -> Reply:
        delta_mod.check_options(call.query)
        target = self.store.calendar(mailbox, calendar.id if calendar else None)
        if "$skiptoken" in call.query:
            round_, offset = self.deltas.read_skip_token(call.query["$skiptoken"])
            delta_mod.check_scope(round_.token, mailbox, target)
            return self._delta_page(call, mailbox, round_, offset)
        with self.store.lock:
            if "$deltatoken" in call.query:
                token = self.deltas.read_delta_token(call.query["$deltatoken"])
                delta_mod.check_scope(token, mailbox, target)
                if target.version <= token.seq:
                    return self._delta_done(call, mailbox, token, [])
                entries = delta_mod.changed_entries(mailbox, target, token)
                window = token.start, token.end
            else:
                window = self._window(call)
                entries = delta_mod.full_entries(self.store.view(mailbox, target, *window))
            fresh = Token(mailbox.user.lower(), target.id, window[0], window[1], self.store.seq)
        return self._delta_page(call, mailbox, self.deltas.new_round(fresh, entries), 0)

    def _delta_page(self, call: Call, mailbox: Mailbox, round_: Round, offset: int) -> Reply:
        entries, following = self.deltas.page(round_, offset, self._page_size(call, None))
        if following is None:
            return self._delta_done(call, mailbox, round_.token, entries)
        link = self._link(call, {"$skiptoken": self.deltas.skip_token(round_, following)})
        return self._delta_reply(call, mailbox, entries, {"@odata.nextLink": link})

    def _delta_done(
        self, call: Call, mailbox: Mailbox, token: Token, entries: list[Entry]
    ) -> Reply:
        link = self._link(call, {"$deltatoken": self.deltas.delta_token(token)})
        return self._delta_reply(call, mailbox, entries, {"@odata.deltaLink": link})

    def _delta_reply(
        self, call: Call, mailbox: Mailbox, entries: list[Entry], link: dict[str, str]
    ) -> Reply:
        view = self._view(call, allow_query=False)
        value = [
            self._entry(e, render(e.instance, mailbox.user, view))
            if e.instance is not None
            else {
                "@odata.type": "#microsoft.graph.event",
                "id": e.removed,
                "@removed": {"reason": "deleted"},
            }
            for e in entries
        ]
        body = {
            "@odata.context": self._context(mailbox, "calendarView/$delta"),
            **link,
            "value": value,
        }
        return Reply(200, body, self._applied(call, paged=True))

    def _entry(self, entry: Entry, event: dict[str, Any]) -> dict[str, Any]:
        """An updated item as Graph may send it (``partial_updates``): only its identity,
        change key, type and times, as if nothing else had changed."""
        if not (self.deltas.partial and entry.updated):
            return event
        return {k: v for k, v in event.items() if k in _PARTIAL_KEPT}

    # -- shared helpers ------------------------------------------------------------------

    def _window(self, call: Call) -> tuple[datetime, datetime]:
        start = parse_query_time(call.query.get("startdatetime"), "startDateTime")
        end = parse_query_time(call.query.get("enddatetime"), "endDateTime")
        if end < start:
            raise bad_request(
                "The endDateTime is earlier than the startDateTime.", "ErrorInvalidParameter"
            )
        return start, end

    def _view(self, call: Call, *, allow_query: bool = True) -> View:
        zone_name = call.prefer.time_zone or "UTC"
        zone(zone_name, "Prefer: outlook.timezone")
        return View(
            zone_name=zone_name,
            body_type=call.prefer.body_type,
            select=parse_select(call.query.get("$select")) if allow_query else None,
            ext_ids=parse_expand(call.query.get("$expand")) if allow_query else (),
        )

    def _one(self, call: Call, mailbox: Mailbox, instance: Instance, status: int) -> Reply:
        body = render(instance, mailbox.user, self._view(call))
        body = {"@odata.context": self._context(mailbox, "events/$entity"), **body}
        return Reply(status, body, self._applied(call, paged=False))

    def _paged(self, call: Call, mailbox: Mailbox, found: list[Instance], what: str) -> Reply:
        view = self._view(call)
        wanted = parse_filter(call.query.get("$filter"))
        if wanted is not None:
            found = [i for i in found if _matches(i, wanted)]
        top = query_int(call.query, "$top", 1, MAX_PAGE)
        skip = query_int(call.query, "$skip", 0, 10**9) or 0
        size = self._page_size(call, top)
        page = found[skip : skip + size]
        body: dict[str, Any] = {"@odata.context": self._context(mailbox, what)}
        body["value"] = [render(i, mailbox.user, view) for i in page]
        if skip + size < len(found):
            body["@odata.nextLink"] = self._link(call, {**call.query, "$skip": str(skip + size)})
        return Reply(200, body, self._applied(call, paged=top is None))

    def _page_size(self, call: Call, top: int | None) -> int:
        size = top or call.prefer.max_page_size or DEFAULT_PAGE
        cap = self._cap()
        return max(1, min(size, MAX_PAGE, cap if cap else MAX_PAGE))

    def _applied(self, call: Call, *, paged: bool) -> dict[str, str]:
        applied = []
        if paged and call.prefer.max_page_size:
            applied.append(f"odata.maxpagesize={call.prefer.max_page_size}")
        if call.prefer.time_zone:
            applied.append(f'outlook.timezone="{call.prefer.time_zone}"')
        if call.prefer.body_type:
            applied.append(f'outlook.body-content-type="{call.prefer.body_type}"')
        if call.prefer.immutable_ids:
            applied.append('IdType="ImmutableId"')
        return {"Preference-Applied": ", ".join(applied)} if applied else {}

    def _link(self, call: Call, query: dict[str, str]) -> str:
        encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="$")
        return f"{self._base()}{call.path}?{encoded}"

    def _context(self, mailbox: Mailbox, what: str) -> str:
        user = urllib.parse.quote(mailbox.user, safe="@")
        return f"{self._base()}/$metadata#users('{user}')/{what}"


def _matches(instance: Instance, wanted: ExtFilter) -> bool:
    found = instance.source.ext.get(wanted.prop_id)
    return found is not None and (wanted.value is None or found[1] == wanted.value)
