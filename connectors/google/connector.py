"""The ``google`` connector: one calendar of Google Calendar API v3.

Objects are single events or whole series (see :mod:`.mapping`), keyed by the Google event
id of the event or series master (see :mod:`.ids`). Changes come from ``events.list`` with
sync tokens (see :mod:`.listing`, :mod:`.cursor`). Writes only ever ``patch`` (never PUT),
with ``If-Match`` on the item's etag and ``sendUpdates=none``; syncd's data lives in
``extendedProperties.private`` (see :mod:`.writes`). Notes are inserted with a client-chosen
id, so a retried insert answers 409 and counts as done; an id whose event was deleted (Google
keeps it as a cancelled tombstone, and refuses it to a new insert) is patched back to life.
A calendar found by name that Google answers 404 for is looked up again: the call raises
``CursorExpired``, so the engine's full listing may make the notes calendar anew.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from connectors.google.account import account_for
from connectors.google.calendars import CalendarFinder, CalendarMissing
from connectors.google.cursor import fingerprint, make_cursor, read_cursor
from connectors.google.ids import event_id
from connectors.google.listing import LIST_FIELDS, LIST_PARAMS, Reader, build_object
from connectors.google.mapping import ITEM_FIELDS, Item, Series, object_etag, same_original
from connectors.google.options import GoogleOptions, option_warnings, parse_options
from connectors.google.session import CalendarGone, Session
from connectors.google.writes import (
    Unfit,
    Wanted,
    insert_body,
    patch_for,
    read_wanted,
    restore_body,
)
from syncd.connector import Connector, Delta, ItemFailure, RemoteObject
from syncd.errors import (
    AlreadyExists,
    ConfigProblem,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
)

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = ["GoogleConnector"]

log = structlog.get_logger("syncd.google")
_SERIES = "series:"


class GoogleConnector(Connector):
    """A calendar of a Google account."""

    kind = "google"

    def __init__(
        self,
        name: str,
        options: GoogleOptions,
        *,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.options = options
        self.session = Session(name, options, account_for(options), sleep=sleep, jitter=jitter)
        self.finder = CalendarFinder(name, options, self.session)
        self.reader = Reader(name, self.session)

    @classmethod
    def from_config(cls, calendar: CalendarConfig) -> GoogleConnector:
        """Options: ``calendar_id`` (default ``primary``) or ``calendar`` (a name; made when
        missing if ``create``, which is true by default for the notes calendar only),
        ``token_file`` (default ``<token folder>/google-<account>.json``, ``account``
        defaulting to the calendar's name) or ``service_account_file`` with ``subject``,
        ``client_secrets_file`` (for ``syncd auth google``), ``api_endpoint``, ``ca_file``,
        ``timeout``."""
        return cls(calendar.name, parse_options(calendar))

    @classmethod
    def config_warnings(cls, calendar: CalendarConfig) -> list[ConfigProblem]:
        """A service account without a subject, token files open to others, http://."""
        return option_warnings(calendar)

    @classmethod
    def cursor_mode(cls, cursor: str | None) -> str | None:
        """``sync token`` for a Google cursor."""
        return None if cursor is None or read_cursor(cursor) is None else "sync token"

    @classmethod
    def authorize(cls, calendar: CalendarConfig, out: TextIO, *, open_browser: bool) -> str:
        """``syncd auth google``: the installed-app consent flow with a loopback redirect."""
        from connectors.google.auth import authorize

        return authorize(calendar, out, open_browser=open_browser)

    # --- listing ------------------------------------------------------------------------

    def _query(self, calendar: str) -> str:
        return fingerprint(calendar, {**LIST_PARAMS, "fields": LIST_FIELDS})

    def list_changes(
        self,
        cursor: str | None,
        known: Mapping[str, str],
        *,
        horizon: tuple[datetime, datetime] | None = None,
    ) -> Delta:
        """A full listing of the whole calendar (``cursor`` None; the horizon is not used:
        the sync token covers every event anyway) or the changes since ``cursor``. A calendar
        named in ``calendar`` is made by a full listing when ``create`` allows it, if it is
        the notes calendar or syncd knows nothing of it yet."""
        with self._calendar_gone():
            if cursor is None:
                return self._full(known)
            return self._changes(cursor)

    def _full(self, known: Mapping[str, str]) -> Delta:
        calendar = self.finder.calendar_id(may_create=self.options.is_notes or not known)
        listing = self.reader.full(calendar)
        assert listing.token is not None
        cursor = make_cursor(self._query(calendar), listing.token)
        return Delta(listing.objects, (), cursor, full=True, failures=listing.failures)

    def _changes(self, cursor: str) -> Delta:
        state = read_cursor(cursor)
        try:
            calendar = self.finder.calendar_id(may_create=False)
        except CalendarMissing as missing:
            raise CursorExpired(self.name, f"{_detail(missing)}; a full listing follows") from None
        if state is None:
            raise CursorExpired(self.name, "the stored cursor is not a Google cursor")
        if state[0] != self._query(calendar):
            raise CursorExpired(self.name, "the cursor was issued for another query or release")
        listing = self.reader.changes(calendar, state[1])
        assert listing.token is not None
        return Delta(
            upserts=listing.objects,
            removed=sorted(set(listing.removed)),
            cursor=make_cursor(state[0], listing.token),
            full=False,
            failures=listing.failures,
        )

    @contextmanager
    def _calendar_gone(self) -> Iterator[None]:
        """A 404 for a calendar found by name: forget its id and expire the cursor, so the
        next listing looks the name up again (and may make the notes calendar anew)."""
        try:
            yield
        except CalendarGone as gone:
            if self.options.calendar is None:
                raise
            self.finder.forget()
            raise CursorExpired(
                self.name,
                f"the calendar {self.options.calendar!r} is gone ({_detail(gone)}); "
                "it is looked up again",
            ) from None

    # --- single objects -------------------------------------------------------------------

    def _event(self, href: str) -> str:
        try:
            return event_id(href)
        except ValueError as error:
            raise ConnectorError(self.name, str(error)) from None

    def get(self, href: str) -> RemoteObject:
        """Read one event or series. Raises ``NotFound`` (also for a deleted one)."""
        calendar = self.finder.calendar_id(may_create=False)
        return self._object(self.reader.read(calendar, self._event(href)))

    def _object(self, series: Series) -> RemoteObject:
        result = build_object(series)
        if isinstance(result, ItemFailure):
            raise ConnectorError(self.name, result.reason)
        return result

    def update(self, href: str, data: bytes, etag: str) -> str:
        """Patch what differs between the current object and ``data`` (see
        :mod:`.writes`); ``Conflict`` when the object is no longer at ``etag`` or changes
        under the patch, ``NotFound`` when it is gone."""
        calendar = self.finder.calendar_id(may_create=False)
        event = self._event(href)
        series = self.reader.read(calendar, event)
        if object_etag(series) != etag:
            raise Conflict(self.name, f"{href} changed since it was read")
        targets = self._targets(series, self._wanted(href, data), href)
        items = {str(item.get("id")): item for item in series.items}
        for item, body in targets:
            items[str(item.get("id"))] = self._patch(calendar, item, body)
        master = items.pop(str(series.master.get("id")))
        return object_etag(Series(master, tuple(items.values())))

    def _wanted(self, href: str, data: bytes) -> list[Wanted]:
        try:
            return read_wanted(data)
        except Unfit as error:
            raise ConnectorError(self.name, f"{href}: {error}") from None

    def _targets(
        self, series: Series, wanted: list[Wanted], href: str
    ) -> list[tuple[Item, dict[str, Any]]]:
        """Each item to patch with its body. An override without an exception on Google's side
        gives only its private properties, to the master (its times describe one instance)."""
        uid = str(series.master.get("iCalUID") or "")
        masters = [w for w in wanted if w.rid is None]
        loose: dict[str, str] = {}
        pairs: list[tuple[Item, Wanted]] = []
        for want in wanted:
            if uid and want.uid != uid:
                raise ConnectorError(
                    self.name, f"{href}: a VEVENT of UID {want.uid!r} is not {uid!r}"
                )
            if want.rid is None:
                continue
            match = next((e for e in series.exceptions if same_original(e, want.rid)), None)
            if match is None:
                loose.update(want.private)
            else:
                pairs.append((match, want))
        targets: list[tuple[Item, dict[str, Any]]] = []
        if masters:
            merged = replace(masters[0], private={**loose, **masters[0].private})
            pairs.insert(0, (series.master, merged))
        elif loose:
            targets.append((series.master, {"extendedProperties": {"private": loose}}))
        for item, want in pairs:
            patch = patch_for(item, want)
            if patch.dropped:
                log.warning(
                    "google.change_dropped",
                    calendar=self.name,
                    event_id=item.get("id"),
                    fields=list(patch.dropped),
                    reason="an event with attendees gets only syncd's private properties",
                )
            if patch.body:
                targets.append((item, patch.body))
        return targets

    def _patch(self, calendar: str, item: Item, body: dict[str, Any]) -> Item:
        event = str(item.get("id"))
        request = self.session.events.patch(
            calendarId=calendar, eventId=event, body=body, sendUpdates="none", fields=ITEM_FIELDS
        )
        request.headers["If-Match"] = str(item.get("etag") or "")
        patched = self.session.execute("update", request, f"events.patch {event}")
        if not isinstance(patched, Mapping):
            raise ConnectorError(self.name, f"events.patch {event} answered with no event")
        return patched

    def create(self, href: str, data: bytes) -> str:
        """``events.insert`` with the id derived from ``href``. On 409 the id is read: a
        deleted event there is patched back as ``data`` (Google never frees a deleted id);
        a live one is ``AlreadyExists``."""
        event = self._event(href)
        wanted = self._wanted(href, data)
        if len(wanted) != 1 or wanted[0].rid is not None:
            raise ConnectorError(self.name, f"{href}: only a single event can be created")
        with self._calendar_gone():
            calendar = self.finder.calendar_id(may_create=True)
            request = self.session.events.insert(
                calendarId=calendar,
                body=insert_body(event, wanted[0]),
                sendUpdates="none",
                fields=ITEM_FIELDS,
            )
            try:
                made = self.session.execute("create", request, f"events.insert {event}")
            except AlreadyExists:
                made = self._restore(calendar, event, wanted[0], href)
        if not isinstance(made, Mapping):
            raise ConnectorError(self.name, f"events.insert {event} answered with no event")
        return object_etag(Series(made))

    def _restore(self, calendar: str, event: str, wanted: Wanted, href: str) -> Item:
        """The insert found ``event`` taken: bring a deleted one back, else AlreadyExists."""
        try:
            held = self.reader.item(calendar, event)
        except NotFound:
            raise ConnectorError(
                self.name,
                f"{href}: Google refused the insert as a duplicate, but no event has the id "
                f"{event} (another event uses the UID {wanted.uid!r}?)",
            ) from None
        if held.get("status") != "cancelled":
            raise AlreadyExists(self.name, f"{href} already exists (event {event})")
        log.info("google.event_restored", calendar=self.name, event_id=event)
        return self._patch(calendar, held, restore_body(held, wanted))

    def delete(self, href: str, etag: str) -> None:
        """``events.delete`` with ``If-Match``; ``Conflict`` on 412, ``NotFound`` on 404/410.
        A series' etag is checked against a fresh read first (Google has no etag for it)."""
        calendar = self.finder.calendar_id(may_create=False)
        event = self._event(href)
        item_etag = etag
        if etag.startswith(_SERIES):
            series = self.reader.read(calendar, event)
            if object_etag(series) != etag:
                raise Conflict(self.name, f"{href} changed since it was read")
            item_etag = str(series.master.get("etag") or "")
        request = self.session.events.delete(calendarId=calendar, eventId=event, sendUpdates="none")
        request.headers["If-Match"] = item_etag
        self.session.execute("delete", request, f"events.delete {event}")

    def check(self) -> str:
        """One cheap call (``events.list`` of one item, ``fields=summary``), which needs only
        the events scope; never makes the calendar."""
        try:
            calendar = self.finder.calendar_id(may_create=False)
        except CalendarMissing:
            if not self.options.create:
                raise
            return f"no calendar called {self.options.calendar!r} yet: the first cycle makes it"
        request = self.session.events.list(calendarId=calendar, maxResults=1, fields="summary")
        found = self.session.execute("list", request, "events.list")
        summary = found.get("summary") if isinstance(found, Mapping) else None
        return f"reachable, calendar {summary or calendar!r}"

    def interrupt(self) -> None:
        """syncd is stopping: end retry waits now and make no further retries."""
        self.session.interrupt()

    def close(self) -> None:
        """Close this thread's connections."""
        self.session.close()


def _detail(error: ConnectorError) -> str:
    """The message of ``error`` without its ``calendar '...': `` prefix."""
    prefix = f"calendar {error.calendar!r}: "
    text = str(error)
    return text[len(prefix) :] if text.startswith(prefix) else text
