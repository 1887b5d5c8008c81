"""The Graph endpoints the connector uses, as typed calls: URLs, queries and the shape of
their answers in one place.

Every URL is built here from the service root and the mailbox (``me`` or ``users/{user}``);
links Graph hands back (``@odata.nextLink``, ``@odata.deltaLink``) are followed only when they
point at the same scheme, host and port as the configured service root.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import structlog

from connectors.outlook.items import DATA_PROPERTY, HREF_PROPERTY
from connectors.outlook.session import BATCH_SIZE, PREFER, Call, GraphSession, Reply
from syncd.errors import ConnectorError, TransientError

__all__ = ["MASTER_FIELDS", "MAX_PAGES", "VIEW_FIELDS", "Graph", "odata_text"]

log = structlog.get_logger("syncd.outlook")

K = TypeVar("K")

_UNANSWERED = Reply(503)
"""What a batched call without an answer, or given up (``settle``), counts as."""

MAX_PAGES = 10_000
"""Pages of one listing followed before the cycle gives up."""
VIEW_PAGE_SIZE = 1000
"""Items per page of the id and change-key listing (small items; Graph's largest page)."""
EXPAND_DATA = f"singleValueExtendedProperties($filter=id eq '{DATA_PROPERTY}')"
VIEW_FIELDS = ",".join(
    (
        "id",
        "changeKey",
        "type",
        "seriesMasterId",
        "iCalUId",
        "transactionId",
        "originalStart",
        "originalStartTimeZone",
        "isAllDay",
        "start",
        "end",
        "lastModifiedDateTime",
        "subject",
        "body",
        "location",
        "isCancelled",
        "showAs",
        "sensitivity",
        "organizer",
        "isOrganizer",
        "responseStatus",
        "attendees",
        "categories",
        "onlineMeeting",
        "onlineMeetingUrl",
    )
)
"""Every field the connector renders or decides on: a ``calendarView`` item with these is
whole (a delta entry may carry only the properties that changed)."""
MASTER_FIELDS = "type,start,isAllDay"
"""What the connector reads of a series master: its start (rendered on its occurrences)."""


def odata_text(value: str) -> str:
    """``value`` as an OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


_QUERY_SAFE = "'(),:$/"


def _query(params: Mapping[str, str]) -> str:
    return "&".join(f"{key}={quote(value, safe=_QUERY_SAFE)}" for key, value in params.items())


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Graph:
    """One mailbox on one Graph service, through a :class:`GraphSession`."""

    def __init__(self, session: GraphSession, mailbox_path: str, *, page_size: int) -> None:
        self.session = session
        self.mailbox = mailbox_path
        self.page_size = page_size
        root = urlsplit(session.graph_url)
        self._origin = (root.scheme, root.hostname, root.port or 443)

    @property
    def name(self) -> str:
        """The calendar the session works for (for messages)."""
        return self.session.name

    # --- calendars ------------------------------------------------------------------------

    def default_calendar(self) -> dict[str, Any]:
        """The mailbox's default calendar."""
        url = self.session.url(f"{self.mailbox}/calendar?$select=id,name")
        return self._object(self.session.request("calendar", "GET", url), "the default calendar")

    def calendars(self) -> Iterator[dict[str, Any]]:
        """Every calendar of the mailbox (all pages)."""
        url: str | None = self.session.url(f"{self.mailbox}/calendars?$select=id,name")
        for _ in range(MAX_PAGES):
            if url is None:
                return
            page = self._object(self.session.request("calendar", "GET", url), "the calendars")
            yield from self._values(page, "the calendars")
            url = self._link(page.get("@odata.nextLink"), "next")
        raise TransientError(self.name, f"the calendar list ran past {MAX_PAGES} pages")

    def calendar(self, calendar_id: str) -> dict[str, Any]:
        """One calendar by id."""
        path = f"{self.mailbox}/calendars/{_segment(calendar_id)}?$select=id,name"
        url = self.session.url(path)
        return self._object(self.session.request("calendar", "GET", url), "the calendar")

    def create_calendar(self, name: str) -> dict[str, Any]:
        """Make a calendar called ``name``."""
        url = self.session.url(f"{self.mailbox}/calendars")
        reply = self.session.request("calendar", "POST", url, body={"name": name})
        return self._object(reply, f"the new calendar {name!r}")

    # --- listings -------------------------------------------------------------------------

    def delta_url(self, calendar_id: str, start: datetime, end: datetime) -> str:
        """The first page of a new ``calendarView/delta`` round over [start, end)."""
        query = _query({"startDateTime": _moment(start), "endDateTime": _moment(end)})
        path = f"{self.mailbox}/calendars/{_segment(calendar_id)}/calendarView/delta?{query}"
        return self.session.url(path)

    def view_url(
        self, calendar_id: str, start: datetime, end: datetime, *, whole: bool = True
    ) -> str:
        """A ``calendarView`` listing over [start, end) with syncd's data: of whole items, or
        (``whole=False``) of ids and change keys only."""
        query = _query(
            {
                "startDateTime": _moment(start),
                "endDateTime": _moment(end),
                "$select": VIEW_FIELDS if whole else "id,changeKey",
                "$expand": EXPAND_DATA,
            }
        )
        path = f"{self.mailbox}/calendars/{_segment(calendar_id)}/calendarView?{query}"
        return self.session.url(path)

    def page(
        self, operation: str, url: str, *, size: int | None = None
    ) -> tuple[list[dict[str, Any]], str | None, str | None]:
        """One page of a listing (``size`` items at most, else :attr:`page_size`): its
        items, the next link and the delta link."""
        self._link(url, operation)  # a stored link is checked like a followed one
        prefer = f"{PREFER}, odata.maxpagesize={size or self.page_size}"
        reply = self.session.request(operation, "GET", url, headers={"Prefer": prefer})
        page = self._object(reply, "a listing page")
        items = list(self._values(page, "a listing page"))
        next_link = self._link(page.get("@odata.nextLink"), "next")
        delta_link = self._link(page.get("@odata.deltaLink"), "delta")
        return items, next_link, delta_link

    def pages(
        self, operation: str, url: str, *, size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a listing without a delta link (all pages)."""
        current: str | None = url
        for _ in range(MAX_PAGES):
            if current is None:
                return
            items, current, _delta = self.page(operation, current, size=size)
            yield from items
        raise TransientError(self.name, f"the listing ran past {MAX_PAGES} pages")

    def batched_page(self, reply: Reply, what: str) -> tuple[list[dict[str, Any]], str | None]:
        """The items and the next link of a listing page answered inside a JSON batch."""
        page = self._object(reply, what)
        return list(self._values(page, what)), self._link(page.get("@odata.nextLink"), "next")

    # --- batches --------------------------------------------------------------------------

    def batch_by(
        self, operation: str, calls: Mapping[K, Call], *, settle: bool = False
    ) -> dict[K, Reply]:
        """Send ``calls`` in JSON batches (:meth:`GraphSession.batch`); the replies by the
        caller's keys (the calls' own ids are not used). ``settle``: the calls are reads the
        caller can do without, so a batch of them that stays throttled or failing counts as
        a 503 for each of its calls rather than failing the cycle (not when syncd stops)."""
        keys = list(calls)
        numbered = [replace(calls[key], id=str(n)) for n, key in enumerate(keys)]
        replies: dict[str, Reply] = {}
        step = BATCH_SIZE if settle else max(len(numbered), 1)
        for start in range(0, len(numbered), step):
            chunk = numbered[start : start + step]
            try:
                replies.update(self.session.batch(operation, chunk))
            except TransientError:
                if not settle or self.session.interrupted.is_set():
                    raise
                log.warning("outlook.batch_given_up", calendar=self.name, calls=len(chunk))
        return {key: replies.get(str(n), _UNANSWERED) for n, key in enumerate(keys)}

    def check_access(self, operation: str, reply: Reply, what: str) -> None:
        """Raise for a batched reply that refuses the whole calendar (401, 403), not the one
        thing asked for."""
        if reply.status in (401, 403):
            self.session.check(operation, reply, what)

    # --- events ---------------------------------------------------------------------------

    def event_path(self, calendar_id: str, event_id: str) -> str:
        """An event of one calendar with syncd's data expanded (relative to the service
        root). Ids are unique in the mailbox; naming the calendar makes an event moved to
        another calendar a 404 here."""
        calendar = _segment(calendar_id)
        query = _query({"$expand": EXPAND_DATA})
        return f"{self.mailbox}/calendars/{calendar}/events/{_segment(event_id)}?{query}"

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        """One event with syncd's data; ``NotFound`` when the calendar does not hold it."""
        url = self.session.url(self.event_path(calendar_id, event_id))
        return self._object(self.session.request("get", "GET", url), "an event")

    def event_call(self, calendar_id: str, event_id: str) -> Call:
        """:meth:`event` as a call inside a JSON batch (:meth:`GraphSession.batch_by`)."""
        return Call("", "GET", self.event_path(calendar_id, event_id))

    def master_call(self, calendar_id: str, master_id: str) -> Call:
        """A series master's type, start and all-day flag, as a call inside a JSON batch."""
        query = _query({"$select": MASTER_FIELDS})
        return Call("", "GET", f"{self._events(calendar_id)}/{_segment(master_id)}?{query}")

    def instances_call(
        self, calendar_id: str, master_id: str, start: datetime, end: datetime
    ) -> Call:
        """The first page of the ids of a series's occurrences and exceptions over
        [start, end), as a call inside a JSON batch (:data:`VIEW_PAGE_SIZE` per page; the
        next pages are read with :meth:`pages`)."""
        query = _query(
            {"startDateTime": _moment(start), "endDateTime": _moment(end), "$select": "id"}
        )
        path = f"{self._events(calendar_id)}/{_segment(master_id)}/instances?{query}"
        prefer = f"{PREFER}, odata.maxpagesize={VIEW_PAGE_SIZE}"
        return Call("", "GET", path, headers={"Prefer": prefer})

    def _events(self, calendar_id: str) -> str:
        return f"{self.mailbox}/calendars/{_segment(calendar_id)}/events"

    def find_path(self, calendar_id: str, href: str) -> str:
        """The events syncd created at ``href`` (by its href property), with syncd's data."""
        found = (
            "singleValueExtendedProperties/Any(ep: ep/id eq "
            f"{odata_text(HREF_PROPERTY)} and ep/value eq {odata_text(href)})"
        )
        query = _query({"$filter": found, "$expand": EXPAND_DATA})
        return f"{self.mailbox}/calendars/{_segment(calendar_id)}/events?{query}"

    def find(self, calendar_id: str, href: str) -> list[dict[str, Any]]:
        """The events syncd created at ``href``."""
        url = self.session.url(self.find_path(calendar_id, href))
        return list(self.pages("find", url))

    def find_many(self, calendar_id: str, hrefs: list[str]) -> dict[str, list[dict[str, Any]]]:
        """:meth:`find` for many hrefs in JSON batches (first page of each: one event per
        href is expected)."""
        calls = {href: Call("", "GET", self.find_path(calendar_id, href)) for href in hrefs}
        found: dict[str, list[dict[str, Any]]] = {}
        for href, reply in self.batch_by("find", calls).items():
            self.session.check("find", reply, f"the lookup of {href}")
            page = self._object(reply, f"the lookup of {href}")
            found[href] = list(self._values(page, f"the lookup of {href}"))
        return found

    def create_event(self, calendar_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST an event into a calendar; the stored event."""
        url = self.session.url(f"{self.mailbox}/calendars/{_segment(calendar_id)}/events")
        return self._object(self.session.request("create", "POST", url, body=body), "a new event")

    def update_event(
        self, event_id: str, patch: Mapping[str, Any], change_key: str
    ) -> dict[str, Any] | None:
        """PATCH an event at ``change_key``; the stored event when Graph returns it."""
        url = self.session.url(f"{self.mailbox}/events/{_segment(event_id)}")
        headers = {"If-Match": f'W/"{change_key}"'}
        reply = self.session.request("update", "PATCH", url, body=patch, headers=headers)
        return reply.body if isinstance(reply.body, dict) and reply.body.get("id") else None

    def delete_event(self, event_id: str, change_key: str) -> None:
        """DELETE an event at ``change_key``."""
        url = self.session.url(f"{self.mailbox}/events/{_segment(event_id)}")
        headers = {"If-Match": f'W/"{change_key}"'}
        self.session.request("delete", "DELETE", url, headers=headers)

    # --- answers --------------------------------------------------------------------------

    def _object(self, reply: Reply, what: str) -> dict[str, Any]:
        if not isinstance(reply.body, dict):
            raise TransientError(self.name, f"Graph sent no JSON object for {what}")
        return reply.body

    def _values(self, page: Mapping[str, Any], what: str) -> Iterator[dict[str, Any]]:
        values = page.get("value", [])
        if not isinstance(values, list):
            raise TransientError(self.name, f"{what} has no list of values")
        for value in values:
            if isinstance(value, dict):
                yield value

    def _link(self, value: Any, kind: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise TransientError(self.name, f"Graph sent a {kind} link that is not text")
        parts = urlsplit(value)
        if (parts.scheme, parts.hostname, parts.port or 443) != self._origin:
            raise ConnectorError(
                self.name,
                f"refused a {kind} link to {parts.hostname or '?'}: it is not the configured "
                "graph_url's host",
            )
        return value


def _segment(value: str) -> str:
    return quote(value, safe="")
