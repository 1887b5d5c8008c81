"""Finding the calendar: the mailbox's default one, or one named by id or display name,
made when it is missing and the options allow it."""

from __future__ import annotations

from connectors.outlook.graph import Graph
from connectors.outlook.options import OutlookOptions
from syncd.errors import ConnectorError

__all__ = ["CalendarFinder", "CalendarMissing"]


class CalendarMissing(ConnectorError):
    """No calendar matches the ``calendar`` option."""


class CalendarFinder:
    """Resolves the ``calendar`` option to a calendar id once and remembers it."""

    def __init__(self, options: OutlookOptions, graph: Graph) -> None:
        self.options = options
        self.graph = graph
        self._id: str | None = None

    @property
    def known(self) -> str | None:
        """The id found so far, if any."""
        return self._id

    def remember(self, calendar_id: str) -> None:
        """Take the id a cursor was made for (no lookup needed)."""
        if self._id is None:
            self._id = calendar_id

    def forget(self) -> None:
        """Look the calendar up again next time (it may have been deleted)."""
        self._id = None

    def id(self, *, may_create: bool) -> str:
        """The calendar's id; with ``may_create`` a missing named calendar is made (when the
        ``create`` option allows it). Raises :class:`CalendarMissing`."""
        if self._id is None:
            self._id = self._resolve(may_create=may_create)
        return self._id

    def _resolve(self, *, may_create: bool) -> str:
        wanted = self.options.calendar
        if wanted is None:
            return _id_of(self.graph, self.graph.default_calendar())
        calendars = list(self.graph.calendars())
        for matches in (
            lambda c: c.get("id") == wanted,
            lambda c: c.get("name") == wanted,
            lambda c: str(c.get("name", "")).casefold() == wanted.casefold(),
        ):
            found = [c for c in calendars if matches(c)]
            if found:
                return _id_of(self.graph, found[0])
        if may_create and self.options.create:
            return _id_of(self.graph, self.graph.create_calendar(wanted))
        raise CalendarMissing(self.graph.name, f"the mailbox has no calendar called {wanted!r}")


def _id_of(graph: Graph, calendar: dict[str, object]) -> str:
    value = calendar.get("id")
    if not isinstance(value, str) or not value:
        raise ConnectorError(graph.name, "Graph sent a calendar without an id")
    return value
