"""Which Google calendar a connector works on: an id, or a name looked up (and made).

With ``calendar = "Name"`` the account's calendar list (``calendarList.list``) is searched
for a calendar of that summary that the account owns or may write, hidden ones included
(``showHidden``: a calendar the user hid in the web UI is still there, and making another
would split the notes); when there is none and ``create`` allows it (by default only for the
notes calendar), ``calendars.insert`` makes it (with the ``calendar.app.created`` scope). The
resolved id is kept in memory until :meth:`CalendarFinder.forget` (Google answered 404 for it:
the calendar was deleted, and is looked up again).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import structlog

from connectors.google.options import GoogleOptions
from connectors.google.session import Session
from syncd.errors import ConnectorError

__all__ = ["CalendarFinder", "CalendarMissing"]

log = structlog.get_logger("syncd.google")
_WRITABLE = ("owner", "writer")
_MAX_PAGES = 100


class CalendarMissing(ConnectorError):
    """No calendar of the configured name exists (and none was made)."""


class CalendarFinder:
    """Resolves and caches the calendar id of one connector."""

    def __init__(self, name: str, options: GoogleOptions, session: Session) -> None:
        self.name = name
        self.options = options
        self.session = session
        self._found: str | None = None
        self._lock = threading.Lock()

    def calendar_id(self, *, may_create: bool) -> str:
        """The calendar's id; ``CalendarMissing`` when a named one does not exist and may
        not (or cannot) be made here."""
        wanted = self.options.calendar
        if wanted is None:
            return self.options.calendar_id
        with self._lock:
            if self._found is None:
                self._found = self._lookup(wanted)
            if self._found is None and may_create and self.options.create:
                self._found = self._make(wanted)
            if self._found is None:
                raise CalendarMissing(self.name, self._missing(wanted))
            return self._found

    def _missing(self, wanted: str) -> str:
        text = f"the account has no calendar called {wanted!r} that it may write"
        if self.options.is_notes or self.options.create:
            return text
        return f"{text}; syncd makes only the notes calendar (check the name, or set create = true)"

    def forget(self) -> None:
        """Drop the resolved id: the next use looks the name up again."""
        with self._lock:
            self._found = None

    def _lookup(self, wanted: str) -> str | None:
        calendars = self.session.resource("calendarList")
        request = calendars.list(
            fields="nextPageToken,items(id,summary,accessRole)", maxResults=250, showHidden=True
        )
        for _ in range(_MAX_PAGES):
            page = self.session.execute("calendar", request, "calendarList.list")
            for entry in _entries(page):
                if entry.get("summary") == wanted and entry.get("accessRole") in _WRITABLE:
                    found = entry.get("id")
                    if isinstance(found, str) and found:
                        return found
            request = calendars.list_next(request, page)
            if request is None:
                return None
        raise ConnectorError(self.name, "the calendar list does not end")

    def _make(self, wanted: str) -> str:
        request = self.session.resource("calendars").insert(body={"summary": wanted}, fields="id")
        made = self.session.execute("calendar", request, "calendars.insert")
        found = made.get("id") if isinstance(made, Mapping) else None
        if not isinstance(found, str) or not found:
            raise ConnectorError(self.name, "calendars.insert answered without an id")
        log.info("google.calendar_created", calendar=self.name, summary=wanted)
        return found


def _entries(page: Any) -> list[Mapping[str, Any]]:
    items = page.get("items") if isinstance(page, Mapping) else None
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping)]
