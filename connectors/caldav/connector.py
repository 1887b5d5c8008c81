"""The ``caldav`` connector: one calendar collection on a CalDAV server.

Changes are listed with RFC 6578 sync-collection from the stored sync token; a server without
it is followed by ``CS:getctag`` plus an etag listing (the mode is in the cursor and shown by
``syncd status``). Changed objects are fetched with calendar-multiget, a batch of hrefs per
REPORT. Objects are keyed by href: the member name relative to the collection as the server
spells it (the full path for a member elsewhere). Writes are conditional: ``If-Match`` on the
etag read, ``If-None-Match: *`` for a create; the bytes are sent as the core wrote them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import quote, unquote, urljoin, urlsplit

import structlog

from connectors.caldav.collection import CalendarMissing, CollectionFinder
from connectors.caldav.cursor import Cursor, Mode, describe, parse_cursor
from connectors.caldav.dav import (
    CALDAV,
    DAV,
    MalformedReply,
    Member,
    calendar_data,
    members,
    multiget_body,
    propfind_body,
    sync_body,
    sync_token,
)
from connectors.caldav.options import CalDAVOptions, option_warnings, parse_options
from connectors.caldav.session import Session, SyncUnsupported
from connectors.caldav.transport import CaldavTransport, Reply, Transport
from syncd.config import CalendarConfig
from syncd.connector import Connector, Delta, ItemFailure, RemoteObject
from syncd.errors import ConfigProblem, ConnectorError, CursorExpired, NotFound, TransientError

__all__ = ["BATCH", "CalDAVConnector"]

BATCH = 100
"""hrefs per calendar-multiget REPORT."""
MAX_PAGES = 1000
"""Truncated (507) sync replies followed before the cycle gives up."""
_XML = "application/xml; charset=utf-8"
_SAFE = "%@:+!$&'()*,;=/"

log = structlog.get_logger("syncd.caldav")

Listed = dict[str, str | None]
"""href -> etag as listed (None when the listing gave none)."""


class CalDAVConnector(Connector):
    """A calendar collection on a CalDAV server."""

    kind = "caldav"

    def __init__(
        self,
        name: str,
        options: CalDAVOptions,
        *,
        transport: Transport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        batch: int = BATCH,
    ) -> None:
        self.name = name
        self.options = options
        self.transport = transport or CaldavTransport(name, options)
        self.session = Session(name, self.transport, sleep=sleep, jitter=jitter)
        self.finder = CollectionFinder(name, options, self.session)
        self.batch = batch
        self._ensured = False

    @classmethod
    def from_config(cls, calendar: CalendarConfig) -> CalDAVConnector:
        """Options: ``url`` (required), ``calendar``, ``username``, one of ``password_file``,
        ``password_env`` or ``password``, ``ca_file``, ``verify_tls``, ``timeout``, ``create``."""
        return cls(calendar.name, parse_options(calendar))

    @classmethod
    def config_warnings(cls, calendar: CalendarConfig) -> list[ConfigProblem]:
        """An inline password, a readable password file, TLS off, a password over http://."""
        return option_warnings(calendar)

    @classmethod
    def cursor_mode(cls, cursor: str | None) -> str | None:
        """sync-collection, ctag + etag listing, or etag listing."""
        return describe(cursor)

    # --- listing ----------------------------------------------------------------------

    def list_changes(
        self,
        cursor: str | None,
        known: Mapping[str, str],
        *,
        horizon: tuple[datetime, datetime] | None = None,
    ) -> Delta:
        """A full listing (``cursor`` None) or the changes since ``cursor``."""
        if cursor is None:
            return self._full(may_create=not known)
        state = parse_cursor(cursor)
        if state is None:
            raise CursorExpired(self.name, "the stored cursor is not a CalDAV cursor")
        url = self.finder.url(may_create=False)
        if state.url != url:
            raise CursorExpired(self.name, "the cursor belongs to another collection URL")
        if state.mode != "sync":
            return self._etag_delta(url, state, known)
        assert state.token is not None
        try:
            token, changed, removed = self._sync(url, state.token)
        except SyncUnsupported:
            raise CursorExpired(self.name, "the server no longer offers sync-collection") from None
        wanted = {h: e for h, e in changed.items() if e is None or known.get(h) != e}
        objects, failures, gone = self._fetch(url, wanted)
        return Delta(
            upserts=objects,
            removed=sorted(removed | gone),
            cursor=Cursor("sync", url, token).text(),
            full=False,
            failures=failures,
        )

    def _full(self, *, may_create: bool) -> Delta:
        """Every object, for the engine to merge. A missing collection is made only for a
        calendar syncd knows nothing of yet: a known one that vanished is an error, never a
        wave of cancellations."""
        url, probe = self.finder.ensure(may_create=may_create)
        if probe.sync:
            try:
                token, changed, _removed = self._sync(url, "")
            except SyncUnsupported:
                log.warning("caldav.sync_unsupported", calendar=self.name)
            else:
                objects, failures, _gone = self._fetch(url, changed)
                cursor = Cursor("sync", url, token).text()
                return Delta(objects, (), cursor, full=True, failures=failures)
        listed = self._etags(url)
        objects, failures, _gone = self._fetch(url, listed)
        mode: Mode = "ctag" if probe.ctag else "etag"
        cursor = Cursor(mode, url, probe.ctag).text()
        return Delta(objects, (), cursor, full=True, failures=failures)

    def _etag_delta(self, url: str, state: Cursor, known: Mapping[str, str]) -> Delta:
        """Fallback: an unchanged ctag means nothing changed; else diff etags with ``known``."""
        ctag = None
        if state.mode == "ctag":
            probe = self.finder.probe(url)
            if probe is None:
                raise ConnectorError(self.name, f"the calendar collection {_path(url)} is gone")
            if probe.ctag is not None and probe.ctag == state.token:
                return Delta((), (), state.text(), full=False)
            ctag = probe.ctag
        listed = self._etags(url)
        wanted = {h: e for h, e in listed.items() if e is None or known.get(h) != e}
        objects, failures, gone = self._fetch(url, wanted)
        removed = (set(known) - set(listed)) | gone
        mode: Mode = "ctag" if ctag else "etag"
        cursor = Cursor(mode, url, ctag).text()
        return Delta(objects, sorted(removed), cursor, full=False, failures=failures)

    def _sync(self, url: str, token: str) -> tuple[str, Listed, set[str]]:
        """Follow sync-collection from ``token`` until the reply is no longer truncated."""
        changed: Listed = {}
        removed: set[str] = set()
        base = urlsplit(url).path
        for _ in range(MAX_PAGES):
            new_token, page, truncated = self.session.request(
                "sync",
                "REPORT",
                url,
                _read_sync,
                body=sync_body(token),
                headers={"Depth": "0", "Content-Type": _XML},
                ok=(207,),
            )
            for member in page:
                key = _key(member.href, base)
                if key is None:
                    continue
                if member.status == 404:
                    removed.add(key)
                    changed.pop(key, None)
                else:  # 200; any other status is fetched, and multiget tells what it is
                    changed[key] = _etag(member) if member.status == 200 else None
                    removed.discard(key)
            if not truncated:
                return new_token, changed, removed
            if new_token == token:
                raise TransientError(self.name, "the sync reply is truncated without progress")
            token = new_token
        raise TransientError(self.name, f"the sync reply stayed truncated after {MAX_PAGES} pages")

    def _etags(self, url: str) -> Listed:
        """PROPFIND depth 1: every member object with its etag."""
        base = urlsplit(url).path

        def read(reply: Reply) -> Listed:
            listed: Listed = {}
            for member in members(reply.tree):
                key = _key(member.href, base)
                if key is None or member.has(f"{DAV}resourcetype", f"{DAV}collection"):
                    continue
                listed[key] = _etag(member)
            return listed

        return self.session.request(
            "list",
            "PROPFIND",
            url,
            read,
            body=propfind_body(["D:getetag", "D:resourcetype"]),
            headers={"Depth": "1", "Content-Type": _XML},
            ok=(207,),
        )

    def _fetch(
        self, url: str, wanted: Listed
    ) -> tuple[list[RemoteObject], list[ItemFailure], set[str]]:
        """calendar-multiget in batches: the objects, the members that failed, the ones gone."""
        objects: list[RemoteObject] = []
        failures: list[ItemFailure] = []
        gone: set[str] = set()
        keys = sorted(wanted)
        for start in range(0, len(keys), self.batch):
            batch = keys[start : start + self.batch]
            paths = {k: urlsplit(self._object_url(url, k)).path for k in batch}
            found = self.session.request(
                "fetch",
                "REPORT",
                url,
                _read_multiget,
                body=multiget_body(paths.values()),
                headers={"Depth": "1", "Content-Type": _XML},
                ok=(207,),
            )
            for key in batch:
                member = found.get(unquote(paths[key]))
                result = self._object(key, wanted[key], member)
                if isinstance(result, RemoteObject):
                    objects.append(result)
                elif isinstance(result, ItemFailure):
                    failures.append(result)
                else:
                    gone.add(key)
        return objects, failures, gone

    def _object(
        self, key: str, listed: str | None, member: Member | None
    ) -> RemoteObject | ItemFailure | None:
        """One multiget result: the object, why it cannot be read, or None when it is gone."""
        if member is not None and member.status == 404:
            return None
        if member is None:
            reason = f"{key}: the server sent nothing for it in calendar-multiget"
        elif member.status != 200:
            reason = f"{key}: the server answered HTTP {member.status} for it in calendar-multiget"
        elif not member.text(f"{CALDAV}calendar-data"):
            reason = f"{key}: came back without calendar data"
        elif not _etag(member):
            reason = f"{key}: came back without an etag"
        else:
            data = calendar_data(member.text(f"{CALDAV}calendar-data") or "")
            return RemoteObject(href=key, etag=_etag(member) or "", data=data)
        log.warning("caldav.item_failed", calendar=self.name, href=key, reason=reason)
        return ItemFailure(href=key, etag=listed or "", reason=reason)

    # --- single objects and writes ------------------------------------------------------

    def get(self, href: str) -> RemoteObject:
        """Read one object (a calendar-multiget of one href). Raises ``NotFound``."""
        url = self.finder.url(may_create=False)
        objects, failures, gone = self._fetch(url, {href: None})
        if gone:
            raise NotFound(self.name, f"{href} does not exist")
        if failures:
            raise ConnectorError(self.name, failures[0].reason)
        return objects[0]

    def update(self, href: str, data: bytes, etag: str) -> str:
        """PUT with ``If-Match``; ``Conflict`` on 412, ``NotFound`` on 404."""
        return self._put("update", href, data, {"If-Match": etag})

    def create(self, href: str, data: bytes) -> str:
        """PUT with ``If-None-Match: *``; ``AlreadyExists`` on 412. The collection is made
        first when it is missing and ``create`` allows it (the notes calendar)."""
        if not self._ensured:
            self.finder.ensure(may_create=True)
            self._ensured = True
        return self._put("create", href, data, {"If-None-Match": "*"})

    def delete(self, href: str, etag: str) -> None:
        """DELETE with ``If-Match``; ``Conflict`` on 412, ``NotFound`` on 404."""
        url = self._object_url(self.finder.url(may_create=False), href)
        self.session.request(
            "delete", "DELETE", url, lambda _r: None, headers={"If-Match": etag}, ok=(200, 204)
        )

    def _put(self, operation: str, href: str, data: bytes, condition: dict[str, str]) -> str:
        url = self._object_url(self.finder.url(may_create=False), href)
        headers = {"Content-Type": "text/calendar; charset=utf-8", **condition}
        etag = self.session.request(
            operation,
            "PUT",
            url,
            lambda reply: reply.headers.get("etag"),
            body=data,
            headers=headers,
            ok=(200, 201, 204),
        )
        # A server that changed the bytes must not send a strong etag (RFC 4791 5.3.4); some
        # send none at all: then ask for it.
        if etag and not etag.startswith("W/"):
            return etag
        return self._etag_of(url, href)

    def _etag_of(self, url: str, href: str) -> str:
        def read(reply: Reply) -> str | None:
            found = members(reply.tree)
            return _etag(found[0]) if found else None

        etag = self.session.request(
            "get",
            "PROPFIND",
            url,
            read,
            body=propfind_body(["D:getetag"]),
            headers={"Depth": "0", "Content-Type": _XML},
            ok=(207,),
        )
        if not etag:
            log.warning("caldav.no_etag", calendar=self.name, href=href)
        return etag or ""

    def _object_url(self, collection: str, href: str) -> str:
        if href.startswith("/"):
            return urljoin(collection, quote(href, safe=_SAFE))
        return collection + quote(href, safe=_SAFE)

    def check(self) -> str:
        """Find and probe the collection (``syncd doctor``); never creates it."""
        try:
            url = self.finder.url(may_create=False)
        except CalendarMissing:
            if not self.options.create:
                raise
            return f"no calendar called {self.options.calendar!r} yet: the first cycle makes it"
        probe = self.finder.probe(url)
        if probe is None:
            if not self.options.create:
                raise ConnectorError(self.name, f"the calendar collection {_path(url)} is missing")
            return f"{_path(url)} does not exist yet: the first cycle makes it"
        if not probe.is_calendar:
            raise ConnectorError(self.name, f"{_path(url)} is not a calendar collection")
        mode = "sync-collection" if probe.sync else "ctag" if probe.ctag else "etag listing"
        return f"calendar collection {_path(url)}, changes by {mode}"

    def interrupt(self) -> None:
        """syncd is stopping: end retry waits now and make no further retries."""
        self.session.interrupted.set()

    def close(self) -> None:
        """Close the HTTP session."""
        self.transport.close()


def _read_sync(reply: Reply) -> tuple[str, list[Member], bool]:
    token = sync_token(reply.tree)
    found = members(reply.tree)
    if token is None:
        raise MalformedReply("a sync-collection reply without a sync-token")
    truncated = any(m.status == 507 for m in found)
    return token, [m for m in found if m.status != 507], truncated


def _read_multiget(reply: Reply) -> dict[str, Member]:
    return {unquote(urlsplit(m.href).path): m for m in members(reply.tree)}


def _etag(member: Member) -> str | None:
    value = member.text(f"{DAV}getetag")
    if value is None or not value.strip():
        return None
    return value.strip()


def _key(href: str, base: str) -> str | None:
    """The href the core stores: the member name when it lies in the collection (``base``
    compared decoded, the name kept as the server spells it), else the path. None for the
    collection itself and for sub-collections."""
    path = urlsplit(href).path if "://" in href else href
    if unquote(path).rstrip("/") == unquote(base).rstrip("/") or path.endswith("/"):
        return None
    parent, _, name = path.rpartition("/")
    if unquote(parent + "/") == unquote(base):
        return name
    return path


def _path(url: str) -> str:
    return urlsplit(url).path or url
