"""Series of occurrences: the starts of their masters, and their occurrences as a set.

calendarView delta lists occurrences and exceptions one by one, never their series master
(providers.md B.1). The connector reads masters for two reasons:

- **The series start**, rendered on every occurrence and exception as
  ``X-SYNCD-SERIES-START`` (:data:`syncd.normalize.SERIES_START`): with it the core pairs each
  occurrence of a series moved as a whole with its shifted twin (a move, not a cancellation
  and a new booking). A fresh round reads the master of every series it lists, a round after a
  delta link those of the series it touches, in JSON batches that ``$select`` type, start and
  isAllDay. A master that cannot be read (404, another error answer, not a master, a start
  that cannot be read) gives no hint for its series; its items are listed all the same.
- **The occurrences as a set** (providers.md B.4: deleted single occurrences may produce no
  delta signal). When a round after a delta link touches a series (a changed entry of an
  occurrence or exception, or a removed id the core holds of one), the series's instances over
  the round's window are listed (``GET .../events/{master}/instances``, ``$select=id``) in the
  same batch as its master. An occurrence the core holds of that series (the series is part of
  its etag, :mod:`.etags`) that the listing lacks, and that the round has no other answer for,
  is then checked like an ``@removed`` id (:meth:`.listing.Lister.check_removed`): a 404 is a
  removal, an item still there (moved out of the window) is listed anew. When the listing
  itself is refused, those occurrences are item failures and keep their state: lasting for a
  404 (the master is gone from this calendar: nothing to retry, the next full listing settles
  them), else offered again next cycle. Series the round did not touch are never looked at.

A batch whose calls stay throttled or failing after the session's retries raises
``TransientError``: the cycle fails and is retried, nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from connectors.outlook.etags import series_in, series_of
from connectors.outlook.graph import VIEW_PAGE_SIZE, Graph
from connectors.outlook.items import MalformedItem, graph_time
from connectors.outlook.listing import Found, Lister
from connectors.outlook.names import Names
from connectors.outlook.session import Reply
from syncd.connector import ItemFailure
from syncd.errors import NotFound
from syncd.model import When

__all__ = [
    "SeriesRead",
    "SeriesReader",
    "SeriesRound",
    "held_members",
    "series_found",
    "unlisted",
    "unsure",
]

log = structlog.get_logger("syncd.outlook")

_UNANSWERED = Reply(502)
"""What a batch call without an answer counts as (the session answers every call)."""


@dataclass(slots=True)
class SeriesRead:
    """What a read of touched series found."""

    starts: dict[str, When] = field(default_factory=dict)
    """The master's start per series: aware UTC, or a date for an all-day series."""
    listed: dict[str, set[str]] = field(default_factory=dict)
    """The ids of the instances in the window, per series whose listing was read whole."""
    failed: dict[str, int] = field(default_factory=dict)
    """The HTTP status per series whose listing was refused."""


class SeriesReader:
    """Reads series masters and their instances in one calendar."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.name = graph.name

    def starts(self, series: Iterable[str], calendar_id: str) -> dict[str, When]:
        """The start of each series's master that could be read."""
        ids = sorted(set(series))
        if not ids:
            return {}
        calls = [self.graph.master_call(str(n), calendar_id, s) for n, s in enumerate(ids)]
        replies = self.graph.session.batch("get", calls)
        found: dict[str, When] = {}
        for n, identifier in enumerate(ids):
            start = self._start(identifier, replies.get(str(n), _UNANSWERED))
            if start is not None:
                found[identifier] = start
        return found

    def read(
        self, series: Iterable[str], calendar_id: str, window: tuple[datetime, datetime]
    ) -> SeriesRead:
        """The start and the instances over ``window`` of each series (one batch call each)."""
        ids = sorted(set(series))
        calls = []
        for n, identifier in enumerate(ids):
            calls.append(self.graph.master_call(f"m{n}", calendar_id, identifier))
            calls.append(self.graph.instances_call(f"i{n}", calendar_id, identifier, *window))
        replies = self.graph.session.batch("get", calls) if calls else {}
        found = SeriesRead()
        for n, identifier in enumerate(ids):
            start = self._start(identifier, replies.get(f"m{n}", _UNANSWERED))
            if start is not None:
                found.starts[identifier] = start
            self._listing(found, identifier, replies.get(f"i{n}", _UNANSWERED))
        return found

    def _start(self, series: str, reply: Reply) -> When | None:
        self._refused(reply, series)
        body = reply.body
        if reply.status != 200 or not isinstance(body, dict) or body.get("type") != "seriesMaster":
            log.info("outlook.series_start_unknown", calendar=self.name, series=series)
            return None
        try:
            return graph_time(body.get("start"), "start", all_day=body.get("isAllDay") is True)
        except MalformedItem as error:
            log.warning(
                "outlook.series_start_unknown", calendar=self.name, series=series, reason=str(error)
            )
            return None

    def _listing(self, found: SeriesRead, series: str, reply: Reply) -> None:
        self._refused(reply, series)
        if reply.status != 200:
            found.failed[series] = reply.status
            return
        what = f"the occurrences of series {series}"
        items, link = self.graph.batched_page(reply, what)
        try:
            if link is not None:
                items += self.graph.pages("get", link, size=VIEW_PAGE_SIZE)
        except NotFound:
            found.failed[series] = 404
            return
        found.listed[series] = {i["id"] for i in items if isinstance(i.get("id"), str)}

    def _refused(self, reply: Reply, series: str) -> None:
        if reply.status in (401, 403):  # the whole calendar is refused, not this series
            self.graph.session.check("get", reply, f"series {series}")


class SeriesRound:
    """The series part of a listing: their starts, and (after a delta link) the occurrences
    of the touched series reconciled as a set."""

    def __init__(self, graph: Graph, lister: Lister, names: Names) -> None:
        self.reader = SeriesReader(graph)
        self.lister = lister
        self.names = names
        self.name = graph.name

    def touched(
        self,
        entries: Mapping[str, Mapping[str, Any]],
        removed: Iterable[str],
        found: Found,
        known: Mapping[str, str],
    ) -> set[str]:
        """The series of a round's changed entries (held ones too: a cycle that failed is
        offered the same entries again), of the removed ids the core holds and of the items
        found."""
        named = [series_of(e) or self._held_series(known, i) for i, e in entries.items()]
        named += [self._held_series(known, identifier) for identifier in removed]
        return series_found(found) | {series for series in named if series is not None}

    def reconcile(
        self,
        found: Found,
        touched: set[str],
        removed: list[str],
        known: Mapping[str, str],
        calendar_id: str,
        window: tuple[datetime, datetime],
    ) -> dict[str, When]:
        """Check the ``removed`` ids the core holds and the occurrences it holds of the
        ``touched`` series that their listing lacks, into ``found``; the starts of the series
        of every item found."""
        read = self.reader.read(touched, calendar_id, window) if touched else SeriesRead()
        held = held_members(known, read.listed.keys() | read.failed.keys())
        settled = found.settled() | {self.names.href_of_id(i) for i in removed}
        missing = unlisted(read, held, settled, self.names.href_of_id)
        if missing:
            log.info("outlook.unlisted_occurrences", calendar=self.name, count=len(missing))
        checked = [*removed, *(self.names.id_of(href) or href for href in missing)]
        found.merge(self.lister.check_removed(checked, known, calendar_id))
        found.merge(Found(failures=unsure(read, held, found.settled(), known, self.name)))
        others = series_found(found) - touched
        return {**read.starts, **self.reader.starts(others, calendar_id)}

    def _held_series(self, known: Mapping[str, str], identifier: str) -> str | None:
        return series_in(known.get(self.names.href_of_id(identifier), ""))


def series_found(found: Found) -> set[str]:
    """The series of the occurrences and exceptions found."""
    return {series for item in found.items.values() if (series := series_of(item)) is not None}


def held_members(known: Mapping[str, str], series: Collection[str]) -> dict[str, set[str]]:
    """The hrefs the core holds of each of ``series`` (read from their etags)."""
    found: dict[str, set[str]] = {s: set() for s in series}
    if not found:
        return found
    for href, etag in known.items():
        member_of = series_in(etag)
        if member_of in found:
            found[member_of].add(href)
    return found


def unlisted(
    read: SeriesRead,
    held: Mapping[str, set[str]],
    settled: Collection[str],
    href_of_id: Callable[[str], str],
) -> list[str]:
    """The hrefs the core holds of series listed whole that the listing lacks and the round
    has no other answer for (``settled``)."""
    missing: list[str] = []
    for series, ids in sorted(read.listed.items()):
        listed = {href_of_id(i) for i in ids}
        missing += sorted(h for h in held.get(series, ()) if h not in listed and h not in settled)
    return missing


def unsure(
    read: SeriesRead,
    held: Mapping[str, set[str]],
    settled: Collection[str],
    known: Mapping[str, str],
    calendar: str,
) -> dict[str, ItemFailure]:
    """Item failures for the occurrences the core holds of series whose listing was refused
    (and that the round has no other answer for): their state is kept."""
    failures: dict[str, ItemFailure] = {}
    for series, status in sorted(read.failed.items()):
        reason = (
            f"the occurrences of series {series} could not be listed (HTTP {status}): "
            "kept as they were"
        )
        for href in sorted(h for h in held.get(series, ()) if h not in settled):
            failures[href] = ItemFailure(
                href=href, etag=known[href], reason=reason, lasting=status == 404
            )
            log.warning("outlook.item_failed", calendar=calendar, href=href, reason=reason)
    return failures
