"""Finding the calendar collection: the configured URL, or discovery by display name
(principal -> calendar home -> the calendar called so), created with MKCALENDAR when allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from connectors.caldav.dav import CALDAV, CS, DAV, Member, members, mkcalendar_body, propfind_body
from connectors.caldav.options import CalDAVOptions
from connectors.caldav.session import Session
from connectors.caldav.transport import Reply
from syncd.errors import ConnectorError

__all__ = ["CalendarMissing", "CollectionFinder", "Probe"]

_PROBE = ("D:resourcetype", "D:displayname", "D:supported-report-set", "D:sync-token", "CS:getctag")
_DEPTH0 = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
_DEPTH1 = {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"}


class CalendarMissing(ConnectorError):
    """No calendar has the configured display name (yet)."""


@dataclass(frozen=True, slots=True)
class Probe:
    """What the collection says about itself."""

    is_calendar: bool
    sync: bool
    """It offers RFC 6578 sync-collection (a ``DAV:sync-token`` or the report is listed)."""
    ctag: str | None


class CollectionFinder:
    """Resolves (once) and probes the collection URL of one calendar."""

    def __init__(self, name: str, options: CalDAVOptions, session: Session) -> None:
        self.name = name
        self.options = options
        self.session = session
        self._url: str | None = None

    def url(self, *, may_create: bool) -> str:
        """The collection URL (absolute, ending in ``/``); discovery runs once."""
        if self._url is None:
            if self.options.calendar is None:
                self._url = _folder(self.options.url)
            else:
                self._url = self._discover(self.options.calendar, may_create=may_create)
        return self._url

    def probe(self, url: str) -> Probe | None:
        """The collection's type and change-tracking properties; None when it does not exist."""

        def read(reply: Reply) -> Probe | None:
            if reply.status == 404:
                return None
            found = members(reply.tree)
            if not found:
                return None
            first = found[0]
            return Probe(
                is_calendar=first.has(f"{DAV}resourcetype", f"{CALDAV}calendar"),
                sync=f"{DAV}sync-token" in first.props
                or f"{DAV}sync-collection" in first.names(f"{DAV}supported-report-set"),
                ctag=first.text(f"{CS}getctag") or None,
            )

        return self.session.request(
            "probe",
            "PROPFIND",
            url,
            read,
            body=propfind_body(_PROBE),
            headers=_DEPTH0,
            ok=(207, 404),
        )

    def ensure(self, *, may_create: bool) -> tuple[str, Probe]:
        """The collection and its probe; MKCALENDAR it when missing and allowed."""
        url = self.url(may_create=may_create)
        probe = self.probe(url)
        if probe is None:
            if not (self.options.create and may_create):
                raise ConnectorError(self.name, f"the calendar collection {_path(url)} is missing")
            self.make(url, self.options.calendar or self.name)
            probe = self.probe(url)
            if probe is None:
                raise ConnectorError(self.name, f"MKCALENDAR {_path(url)} left no collection")
        if not probe.is_calendar:
            raise ConnectorError(
                self.name,
                f"{_path(url)} is not a calendar collection; give its URL, or the server URL "
                'with calendar = "display name"',
            )
        return url, probe

    def make(self, url: str, display_name: str) -> None:
        """MKCALENDAR an event calendar at ``url``."""
        self.session.request(
            "mkcalendar",
            "MKCALENDAR",
            url,
            lambda _reply: None,
            body=mkcalendar_body(display_name),
            headers={"Content-Type": "application/xml; charset=utf-8"},
            ok=(200, 201),
        )

    def _discover(self, display_name: str, *, may_create: bool) -> str:
        start = self.options.url
        principal = self._href(start, f"{DAV}current-user-principal", "D:current-user-principal")
        base = urljoin(start, principal) if principal else start
        home_href = self._href(base, f"{CALDAV}calendar-home-set", "C:calendar-home-set")
        home = _folder(urljoin(base, home_href) if home_href else base)
        calendars = self._calendars(home)
        matches = [m.href for m in calendars if m.text(f"{DAV}displayname") == display_name]
        if len(matches) == 1:
            return _folder(urljoin(home, matches[0]))
        if len(matches) > 1:
            raise ConnectorError(
                self.name, f"{len(matches)} calendars are called {display_name!r} under {home}"
            )
        if not (self.options.create and may_create):
            names = sorted(m.text(f"{DAV}displayname") or m.href for m in calendars)
            raise CalendarMissing(
                self.name,
                f"no calendar called {display_name!r} under {_path(home)} "
                f"(found: {', '.join(names) or 'none'})",
            )
        url = urljoin(home, _slug(display_name) + "/")
        self.make(url, display_name)
        return url

    def _href(self, url: str, tag: str, name: str) -> str | None:
        def read(reply: Reply) -> str | None:
            for member in members(reply.tree):
                element = member.props.get(tag)
                href = None if element is None else element.find(f"{DAV}href")
                if href is not None and href.text:
                    return href.text.strip()
            return None

        return self.session.request(
            "discover", "PROPFIND", url, read, body=propfind_body([name]), headers=_DEPTH0
        )

    def _calendars(self, home: str) -> list[Member]:
        def read(reply: Reply) -> list[Member]:
            return [
                m for m in members(reply.tree) if m.has(f"{DAV}resourcetype", f"{CALDAV}calendar")
            ]

        return self.session.request(
            "discover",
            "PROPFIND",
            home,
            read,
            body=propfind_body(["D:displayname", "D:resourcetype"]),
            headers=_DEPTH1,
            ok=(207,),
        )


def _folder(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _path(url: str) -> str:
    return urlsplit(url).path or url


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "calendar"
