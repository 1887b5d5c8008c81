"""Reading events: full and incremental listings, and one series at a time.

Full listing: ``events.list`` with ``showDeleted=true``, ``singleEvents=false``,
``maxResults=2500`` and ``fields=``, every page, the ``nextSyncToken`` taken from the last page
only. It has no ``timeMin``: the sync token covers the whole calendar anyway, and a bounded
listing would leave out the exceptions of a listed series that were moved before the bound
(the series would then show a phantom instance, and read differently from ``events.get``).
Incremental: ``syncToken`` with the same fixed parameters and nothing else; 410 on any page is
``CursorExpired``.

Google lists a series as its master plus one item per exception; syncd's object is the whole
series. On an incremental listing anything that touches a series (a master with
``recurrence``, an item with ``recurringEventId``) refetches that series in one request
(``events.list`` by ``iCalUID``), after an ``events.get`` of the master when only a bare
cancelled exception arrived. A cancelled single event or master is a removal; a cancelled
exception of a live series stays in the object as a cancelled instance. A series whose refetch
fails is a (not lasting) :class:`~syncd.connector.ItemFailure` of its href: the rest of the
listing is used and the engine keeps the previous cursor, so it is offered again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from connectors.google.ids import href_of
from connectors.google.mapping import (
    ITEM_FIELDS,
    Item,
    Malformed,
    Series,
    group,
    object_etag,
    to_ical,
    unique,
)
from connectors.google.session import Session
from syncd.connector import ItemFailure, RemoteObject
from syncd.errors import AuthError, ConnectorError, CursorExpired, NotFound, TransientError

__all__ = ["LIST_FIELDS", "LIST_PARAMS", "Listing", "Reader"]

log = structlog.get_logger("syncd.google")

LIST_PARAMS: Mapping[str, object] = {"showDeleted": True, "singleEvents": False, "maxResults": 2500}
"""The parameters every listing sends, full or incremental: part of the cursor's fingerprint."""
LIST_FIELDS = f"nextPageToken,nextSyncToken,items({ITEM_FIELDS})"
NOT_APPOINTMENTS = frozenset({"workingLocation", "birthday"})
"""``eventType`` values that are no appointment: left out of listings (a change to one is a
removal, which the engine ignores for an object it never had). ``fromGmail`` events (a flight,
a reservation), ``outOfOffice`` and ``focusTime`` are kept: they are the user's time."""
MAX_PAGES = 10_000


class Listing:
    """What a listing found: objects, unreadable objects, removed hrefs, the next token."""

    def __init__(self) -> None:
        self.objects: list[RemoteObject] = []
        self.failures: list[ItemFailure] = []
        self.removed: list[str] = []
        self.token: str | None = None


class Reader:
    """Lists and reads the events of one calendar through a :class:`Session`."""

    def __init__(self, name: str, session: Session) -> None:
        self.name = name
        self.session = session

    @property
    def _events(self) -> Any:
        return self.session.events

    # --- listings -------------------------------------------------------------------------

    def full(self, calendar: str) -> Listing:
        """Every live object of the calendar, and the token of the listing."""
        items, token = self._pages("list", calendar, LIST_PARAMS)
        masters, exceptions = group(unique(_appointments(items)))
        listing = Listing()
        listing.token = token
        for event, master in masters.items():
            parts = exceptions.pop(event, [])
            if master.get("status") != "cancelled":
                self._add(listing, Series(master, tuple(parts)))
        for event in sorted(exceptions):  # exceptions whose master is not listed (not ours?)
            self._refetch(listing, calendar, event, None, exceptions[event], removal=False)
        return listing

    def changes(self, calendar: str, token: str) -> Listing:
        """What changed since ``token``, each touched series read whole."""
        items, new_token = self._pages("sync", calendar, {**LIST_PARAMS, "syncToken": token})
        masters, exceptions = group(unique(_appointments(items)))
        listing = Listing()
        listing.token = new_token
        skipped = [i.get("id") for i in items if not _appointment(i)]
        listing.removed += [href_of(event) for event in skipped if isinstance(event, str)]
        touched: dict[str, Item | None] = {}
        for event, item in masters.items():
            if item.get("status") == "cancelled":
                listing.removed.append(href_of(event))
                exceptions.pop(event, None)
            elif "recurrence" in item or event in exceptions:
                touched[event] = item
            else:
                self._add(listing, Series(item))
        for event in exceptions:
            touched.setdefault(event, None)
        for event, master in sorted(touched.items()):
            parts = exceptions.get(event, [])
            self._refetch(listing, calendar, event, master, parts, removal=True)
        return listing

    def _refetch(
        self,
        listing: Listing,
        calendar: str,
        event: str,
        master: Item | None,
        parts: list[Item],
        *,
        removal: bool,
    ) -> None:
        """Read one touched series whole into ``listing``: its object, its removal (when
        ``removal``) or, when the refetch fails, a failure that is not lasting."""
        try:
            series = self.series(calendar, event, master, _uid_hint(parts))
        except (AuthError, CursorExpired):
            raise
        except ConnectorError as error:
            etag = str(master.get("etag") or "") if master is not None else ""
            reason = f"the series {event} could not be read again: {error}"
            log.warning("google.series_failed", calendar=self.name, event_id=event, reason=reason)
            listing.failures.append(ItemFailure(href_of(event), etag, reason))
            return
        if series is not None:
            self._add(listing, series)
        elif removal:
            listing.removed.append(href_of(event))

    def _pages(
        self, operation: str, calendar: str, params: Mapping[str, object], *, token: bool = True
    ) -> tuple[list[Item], str]:
        """Every item of a listing and its ``nextSyncToken``, which only the full and the
        incremental listings must carry (``token``); otherwise it may be empty."""
        request = self._events.list(calendarId=calendar, fields=LIST_FIELDS, **params)
        items: list[Item] = []
        for _ in range(MAX_PAGES):
            page = self.session.execute(operation, request, "events.list")
            items.extend(_items(self.name, page))
            following = self._events.list_next(request, page)
            if following is None:
                found = page.get("nextSyncToken")
                if isinstance(found, str) and found:
                    return items, found
                if token:
                    raise TransientError(self.name, "the last page of events.list has no token")
                return items, ""
            request = following
        raise TransientError(self.name, f"events.list did not end after {MAX_PAGES} pages")

    # --- one object -----------------------------------------------------------------------

    def item(self, calendar: str, event: str) -> Item:
        """One item by id (cancelled ones too); ``NotFound`` when Google has none."""
        request = self._events.get(calendarId=calendar, eventId=event, fields=ITEM_FIELDS)
        found = self.session.execute("get", request, f"events.get {event}")
        if not isinstance(found, Mapping):
            raise ConnectorError(self.name, f"events.get {event} answered with no event")
        return found

    def series(
        self, calendar: str, event: str, master: Item | None, uid: str | None = None
    ) -> Series | None:
        """The live object whose master is ``event``: one request by ``iCalUID`` (the master's,
        or ``uid`` from one of its exceptions), after reading the master when neither is
        known; None when the series is deleted or gone."""
        if master is not None and isinstance(master.get("iCalUID"), str):
            uid = str(master["iCalUID"])
        if uid is None:
            try:
                master = self.item(calendar, event)
            except NotFound:
                return None
            found = master.get("iCalUID")
            uid = found if isinstance(found, str) and found else None
        if master is not None and master.get("status") == "cancelled":
            return None
        if uid is None:
            return None if master is None else Series(master)
        params = {"iCalUID": uid, "showDeleted": True, "singleEvents": False}
        items, _token = self._pages("list", calendar, params, token=False)
        parts = [i for i in unique(items) if event in (i.get("id"), i.get("recurringEventId"))]
        fresh = next((i for i in parts if i.get("id") == event), master)
        if fresh is None:  # not listed under that UID: read it by id
            try:
                fresh = self.item(calendar, event)
            except NotFound:
                return None
        if fresh.get("status") == "cancelled":
            return None
        return Series(fresh, tuple(i for i in parts if i.get("id") != event))

    def read(self, calendar: str, event: str) -> Series:
        """The live object at ``event``; ``NotFound`` when deleted."""
        item = self.item(calendar, event)
        if item.get("status") == "cancelled":
            raise NotFound(self.name, f"event {event} is deleted")
        if "recurrence" not in item:
            return Series(item)
        series = self.series(calendar, event, item)
        if series is None:
            raise NotFound(self.name, f"event {event} is deleted")
        return series

    def _add(self, listing: Listing, series: Series) -> None:
        result = build_object(series)
        if isinstance(result, RemoteObject):
            listing.objects.append(result)
        else:
            log.warning("google.item_failed", calendar=self.name, reason=result.reason)
            listing.failures.append(result)


def build_object(series: Series) -> RemoteObject | ItemFailure:
    """The object for a series, or why it cannot be read."""
    event = str(series.master.get("id"))
    href, etag = href_of(event), object_etag(series)
    try:
        return RemoteObject(href=href, etag=etag, data=to_ical(series))
    except Malformed as error:
        return ItemFailure(href=href, etag=etag, reason=str(error), lasting=True)


def _appointment(item: Item) -> bool:
    return item.get("eventType") not in NOT_APPOINTMENTS


def _appointments(items: list[Item]) -> list[Item]:
    return [item for item in items if _appointment(item)]


def _uid_hint(parts: list[Item]) -> str | None:
    """The series' iCalUID as one of its exceptions carries it (a bare one may not)."""
    found = [p["iCalUID"] for p in parts if isinstance(p.get("iCalUID"), str) and p["iCalUID"]]
    return str(found[0]) if found else None


def _items(name: str, page: Any) -> list[Item]:
    if not isinstance(page, Mapping):
        raise TransientError(name, "events.list answered with something other than a page")
    items = page.get("items") or []
    if not isinstance(items, list):
        raise TransientError(name, "events.list answered with items that are not a list")
    return [item for item in items if _identified(name, item)]


def _identified(name: str, item: Any) -> bool:
    """Whether ``item`` is an event with an id. One without cannot be named by an href (nor
    reported as an item failure), so it is skipped with a warning rather than in silence."""
    if isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
        return True
    uid = item.get("iCalUID") if isinstance(item, Mapping) else None
    log.warning(
        "google.item_skipped",
        calendar=name,
        reason="an event without an id" if isinstance(item, Mapping) else "not an event",
        ical_uid=uid if isinstance(uid, str) else None,
    )
    return False
