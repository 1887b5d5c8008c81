"""The ``outlook`` connector: one calendar of a Microsoft 365 / Outlook mailbox over Graph.

Changes are listed with ``calendarView/delta`` over a window around the core's horizon
(:mod:`.cursor`, :mod:`.listing`); each Graph item (a single event, an occurrence or an
exception) is one object, rendered as iCalendar (:mod:`.render`), an occurrence or exception
with the start of its series and an etag naming its series (:mod:`.series`, :mod:`.etags`):
a round after a delta link reconciles the occurrences of each series it touches as a set,
since Graph may not report an occurrence deleted on its own. Writes go through
:mod:`.writes`: syncd's data in one extended property, conditional on the change key, never
the content of an event with attendees. Events syncd creates (notes, holds) carry their href
in ``transactionId`` and in an extended property (:mod:`.names`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO

import structlog

from connectors.outlook.auth import (
    AppCredentials,
    DelegatedCredentials,
    credentials_for,
    device_code_sign_in,
    verify,
)
from connectors.outlook.calendar import CalendarFinder, CalendarMissing
from connectors.outlook.cursor import (
    Cursor,
    describe,
    effective_horizon,
    fingerprint,
    parse_cursor,
    window_for,
)
from connectors.outlook.etags import etag_of, key_of
from connectors.outlook.graph import Graph
from connectors.outlook.items import (
    TRANSACTION_PREFIX,
    MalformedItem,
    change_key,
    is_meeting,
    item_id,
    private_data,
)
from connectors.outlook.names import Names, could_be_id
from connectors.outlook.options import OutlookOptions, option_warnings, parse_options
from connectors.outlook.render import render
from connectors.outlook.rounds import Rounds
from connectors.outlook.session import GraphSession
from connectors.outlook.writes import (
    Fields,
    Plan,
    UnreadableData,
    create_body,
    data_value,
    plan_update,
    read_fields,
)
from syncd.config import CalendarConfig
from syncd.connector import Connector, Delta, RemoteObject
from syncd.errors import (
    AlreadyExists,
    ConfigProblem,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
)

__all__ = ["PAGE_SIZE", "OutlookConnector"]

PAGE_SIZE = 200
"""Items per listing page asked for with ``Prefer: odata.maxpagesize``."""

log = structlog.get_logger("syncd.outlook")


class OutlookConnector(Connector):
    """A calendar of an Outlook / Microsoft 365 mailbox."""

    kind: ClassVar[str] = "outlook"

    def __init__(
        self,
        name: str,
        options: OutlookOptions,
        *,
        credentials: DelegatedCredentials | AppCredentials | None = None,
        sleep: Callable[[float], object] | None = None,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.name = name
        self.options = options
        self.credentials = credentials or credentials_for(name, options)
        self.session = GraphSession(
            name,
            options.graph_url,
            self.credentials,
            verify=verify(options),
            timeout=options.timeout,
            sleep=sleep,
            jitter=jitter,
        )
        self.graph = Graph(self.session, options.mailbox_path, page_size=page_size)
        self.finder = CalendarFinder(options, self.graph)
        self.names = Names()
        self.rounds = Rounds(self.graph, self.names)
        self.clock = clock

    @classmethod
    def from_config(cls, calendar: CalendarConfig) -> OutlookConnector:
        """Options: ``client_id`` (required), ``calendar``, ``create``, ``tenant``,
        ``authority``, ``graph_url``, ``ca_file``, ``token_cache``, ``client_secret_file`` or
        ``certificate_file`` (+ ``certificate_thumbprint``) with ``user``, ``timeout``,
        ``categories``."""
        return cls(calendar.name, parse_options(calendar))

    @classmethod
    def config_warnings(cls, calendar: CalendarConfig) -> list[ConfigProblem]:
        """A secret or certificate file others can read; a token cache not made yet."""
        return option_warnings(calendar)

    @classmethod
    def cursor_mode(cls, cursor: str | None) -> str | None:
        """``delta link`` for an Outlook cursor."""
        return describe(cursor)

    @classmethod
    def authorize(cls, calendar: CalendarConfig, out: TextIO, *, open_browser: bool) -> str:
        """``syncd auth outlook``: a device-code sign-in (the code and the address are printed;
        no browser is started, the code works from any device). App-only calendars need none:
        a token is acquired once to check the credential."""
        return device_code_sign_in(calendar.name, parse_options(calendar), out)

    # --- listing ---------------------------------------------------------------------------

    def list_changes(
        self,
        cursor: str | None,
        known: Mapping[str, str],
        *,
        horizon: tuple[datetime, datetime] | None = None,
    ) -> Delta:
        """A new delta round (full listing) or the changes since ``cursor``. A new round also
        starts, as a full listing, when the horizon has moved past the cursor's window."""
        try:
            return self._list(cursor, known, horizon)
        except (CursorExpired, NotFound) as error:
            # The calendar may be gone or re-made: the next round looks it up again.
            self.finder.forget()
            if isinstance(error, CursorExpired):
                raise
            raise CursorExpired(self.name, str(error)) from None

    def _list(
        self,
        cursor: str | None,
        known: Mapping[str, str],
        horizon: tuple[datetime, datetime] | None,
    ) -> Delta:
        wanted = effective_horizon(horizon, self.clock())
        fp = self._fingerprint()
        if cursor is not None:
            state = parse_cursor(cursor)
            if state is None:
                raise CursorExpired(self.name, "the stored cursor is not an Outlook cursor")
            if state.fp != fp:
                raise CursorExpired(
                    self.name, "the cursor was made for another mailbox, calendar or version"
                )
            if self.finder.known not in (None, state.calendar):
                raise CursorExpired(self.name, "the cursor was made for a calendar since re-made")
            if state.covers(wanted):
                self.finder.remember(state.calendar)
                return self._incremental(state, known)
            log.info("outlook.window_moved", calendar=self.name)
        return self._new_round(window_for(wanted), known, fp)

    def _new_round(
        self, window: tuple[datetime, datetime], known: Mapping[str, str], fp: str
    ) -> Delta:
        calendar_id = self.finder.id(may_create=not known)
        listed = self.rounds.fresh(calendar_id, window, known)
        cursor = Cursor(listed.link, window[0], window[1], fp, calendar_id).text()
        return Delta(
            upserts=listed.objects, removed=(), cursor=cursor, full=True, failures=listed.failures
        )

    def _incremental(self, state: Cursor, known: Mapping[str, str]) -> Delta:
        window = (state.start, state.end)
        listed = self.rounds.incremental(state.link, state.calendar, window, known)
        return Delta(
            upserts=listed.objects,
            removed=listed.removed,
            cursor=Cursor(listed.link, state.start, state.end, state.fp, state.calendar).text(),
            full=False,
            failures=listed.failures,
        )

    def _fingerprint(self) -> str:
        return fingerprint(
            self.options.graph_url, self.credentials.mailbox(), self.options.calendar
        )

    # --- single objects --------------------------------------------------------------------

    def get(self, href: str) -> RemoteObject:
        """Read one object (with syncd's property). Raises ``NotFound``. An occurrence comes
        without its series start (one request; only writes read objects this way, and they
        never store the start): its data is the listing's but for that line."""
        item = self._find(href)
        return RemoteObject(href=href, etag=self._etag(href, item), data=self._render(href, item))

    def update(self, href: str, data: bytes, etag: str) -> str:
        """Write what differs, conditional on the change key in ``etag``; an event with
        attendees only gets syncd's property and categories. Raises ``Conflict``,
        ``NotFound``."""
        wanted = self._fields(href, data)
        item = self._find(href)
        current = self._key(href, item)
        if current != key_of(etag):
            raise Conflict(self.name, f"{href} changed since it was read")
        plan = self._plan(href, item, wanted)
        if not plan.patch:
            return self._etag(href, item)
        stored = self.graph.update_event(item_id(item), plan.patch, current)
        return self._etag(href, stored if stored is not None else self._find(href))

    def create(self, href: str, data: bytes) -> str:
        """Create an event at ``href`` in this calendar (made first when missing): no
        attendees, no reminder, ``transactionId`` from the href. ``AlreadyExists`` when an
        event is there with other content; the same content counts as done (a retry)."""
        wanted = self._fields(href, data)
        try:
            return self._create(href, data, wanted)
        except NotFound:
            # The calendar is gone: look it up again (made anew when the options allow).
            self.finder.forget()
            return self._create(href, data, wanted)

    def _create(self, href: str, data: bytes, wanted: Fields) -> str:
        calendar_id = self.finder.id(may_create=True)
        existing = self._find_created(href, calendar_id)
        if existing is not None:
            return self._settled(href, existing, wanted)
        body = create_body(wanted, href, show_categories=self.options.categories)
        stored = self.graph.create_event(calendar_id, body)
        self.names.remember(href, item_id(stored))
        # A repeated transactionId returns the event an earlier attempt made.
        plan = plan_update(
            read_fields(self._render(href, stored)),
            data_value(wanted, created=True),
            stored.get("categories") or [],
            wanted,
            created=True,
            show_categories=self.options.categories,
        )
        if plan.patch:
            raise AlreadyExists(self.name, f"{href} already exists with other content")
        return self._etag(href, stored)

    def delete(self, href: str, etag: str) -> None:
        """Delete at the change key in ``etag``. Raises ``Conflict``, ``NotFound``."""
        item = self._find(href)
        current = self._key(href, item)
        if current != key_of(etag):
            raise Conflict(self.name, f"{href} changed since it was read")
        self.graph.delete_event(item_id(item), current)
        self.names.forget(href)

    def check(self) -> str:
        """Find the calendar (``syncd doctor``); never creates it."""
        try:
            calendar_id = self.finder.id(may_create=False)
        except CalendarMissing:
            if not self.options.create:
                raise
            return f"no calendar called {self.options.calendar!r} yet: the first cycle makes it"
        found = self.graph.calendar(calendar_id)
        shown = found.get("name") or calendar_id
        return f"calendar {shown!r} of {self.credentials.mailbox()}, changes by delta link"

    def interrupt(self) -> None:
        """syncd is stopping: end retry waits now and make no further retries."""
        self.session.interrupt()

    def close(self) -> None:
        """Close the HTTP sessions."""
        self.session.close()
        self.credentials.close()

    # --- helpers ---------------------------------------------------------------------------

    def _find(self, href: str) -> dict[str, Any]:
        """The item at ``href`` in this calendar, with syncd's property. Raises ``NotFound``
        (and the calendar is looked up again next time: it may be gone)."""
        try:
            return self._lookup(href)
        except NotFound:
            self.finder.forget()
            raise

    def _lookup(self, href: str) -> dict[str, Any]:
        calendar_id = self.finder.id(may_create=False)
        identifier = self.names.id_of(href)
        if identifier is None and could_be_id(href):
            identifier = href
        if identifier is not None:
            try:
                item = self.graph.event(calendar_id, identifier)
            except NotFound:
                self.names.forget(href)
                if could_be_id(href):
                    raise
            else:
                self.names.note(item)
                return item
        found = self._find_created(href, calendar_id)
        if found is None:
            raise NotFound(self.name, f"{href} does not exist")
        return found

    def _find_created(self, href: str, calendar_id: str) -> dict[str, Any] | None:
        identifier = self.names.id_of(href)
        if identifier is not None:
            try:
                return self.graph.event(calendar_id, identifier)
            except NotFound:
                self.names.forget(href)
        found = [i for i in self.graph.find(calendar_id, href) if _created_at(i, href)]
        if len(found) > 1:
            log.warning("outlook.duplicate_href", calendar=self.name, href=href, count=len(found))
        if not found:
            return None
        self.names.note(found[0])
        return found[0]

    def _settled(self, href: str, item: dict[str, Any], wanted: Fields) -> str:
        plan = self._plan(href, item, wanted)
        if plan.patch:
            raise AlreadyExists(self.name, f"{href} already exists with other content")
        return self._etag(href, item)

    def _plan(self, href: str, item: dict[str, Any], wanted: Fields) -> Plan:
        try:
            # The guard on content is decided from Graph's fields, never from the rendering.
            current = replace(read_fields(self._render(href, item)), attendees=is_meeting(item))
            data = private_data(item)
        except (UnreadableData, MalformedItem) as error:
            raise ConnectorError(self.name, f"{href}: cannot read the event ({error})") from None
        plan = plan_update(
            current,
            data,
            item.get("categories") or [],
            wanted,
            created=_created_at(item, href),
            show_categories=self.options.categories,
        )
        if plan.dropped:
            log.warning(
                "outlook.fields_not_written",
                calendar=self.name,
                href=href,
                fields=list(plan.dropped),
                reason="the event has attendees: Graph would send them an update",
            )
        return plan

    def _render(self, href: str, item: Mapping[str, Any]) -> bytes:
        try:
            return render(item)
        except MalformedItem as error:
            raise ConnectorError(
                self.name, f"{href}: cannot read item {item.get('id')} ({error})"
            ) from None

    def _key(self, href: str, item: Mapping[str, Any]) -> str:
        """The item's change key (what writes are conditional on)."""
        try:
            return change_key(item)
        except MalformedItem as error:
            raise ConnectorError(self.name, f"{href}: {error}") from None

    def _etag(self, href: str, item: Mapping[str, Any]) -> str:
        """The item's etag for the core (its change key and series, :mod:`.etags`)."""
        try:
            return etag_of(item)
        except MalformedItem as error:
            raise ConnectorError(self.name, f"{href}: {error}") from None

    def _fields(self, href: str, data: bytes) -> Fields:
        try:
            return read_fields(data)
        except UnreadableData as error:
            raise ConnectorError(self.name, f"{href}: cannot write it: {error}") from None


def _created_at(item: Mapping[str, Any], href: str) -> bool:
    return item.get("transactionId") == TRANSACTION_PREFIX + href
