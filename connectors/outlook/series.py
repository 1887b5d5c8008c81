"""Series of occurrences: the starts of their masters, and their occurrences as a set.

calendarView delta lists occurrences and exceptions one by one, never their series master
(providers.md B.1). The connector reads masters for two reasons:

- **The series start**, rendered on every occurrence and exception as
  ``X-SYNCD-SERIES-START`` (:data:`syncd.normalize.SERIES_START`): with it the core pairs each
  occurrence of a series moved as a whole with its shifted twin (a move, not a cancellation
  and a new booking). A fresh round reads the master of every series it lists, a round after a
  delta link those of the series it touches, with ``$select`` of type, start and isAllDay, in
  the round's JSON batch. A master that cannot be read (404, another error answer, not a
  master, a start that cannot be read; in a fresh round also one that stays throttled) gives
  no hint for its series; its items are listed all the same.
- **The occurrences as a set** (providers.md B.4: deleted single occurrences may produce no
  delta signal). A round after a delta link touches a series through a changed entry of an
  occurrence or exception (held ones too) or an ``@removed`` id the core holds of one; the
  series of an entry is its ``seriesMasterId``, else the one its held etag names
  (:mod:`.etags`). The instances of each touched series over the round's window are listed
  (``GET .../events/{master}/instances``, ``$select=id``, paged) in the round's batch, next to
  its master. An occurrence the core holds of that series that the listing lacks, and that the
  round has no other answer for, is then read like an ``@removed`` id: a 404 is a removal, an
  item still there (moved out of the window) is listed anew. When the listing itself is
  refused (404 included: the master is gone), every occurrence the core holds of that series
  is read that way, in one batch with the others. Series the round did not touch are never
  looked at.

A series is reconciled whole or its removals wait: when a read of one of its occurrences
fails (an item failure, which holds the cursor back), the round's ``@removed`` ids of that
series are item failures too, so the core still holds them when the round is offered again
and the series is touched, and reconciled, once more; then an occurrence whose read failed
(its etag marked :func:`.etags.unread`) is read again even where the listing has it, so its
item error is cleared.

A batch whose calls stay throttled or failing after the session's retries raises
``TransientError`` (but for a fresh round's master reads): the cycle fails and is retried,
nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from connectors.outlook.etags import is_unread, series_in, series_of, unread
from connectors.outlook.graph import VIEW_PAGE_SIZE, Graph
from connectors.outlook.items import MalformedItem, graph_time
from connectors.outlook.listing import Found, Key, Lister
from connectors.outlook.names import Names
from connectors.outlook.session import Call, Reply
from syncd.connector import ItemFailure
from syncd.errors import NotFound
from syncd.model import When

__all__ = [
    "INSTANCES",
    "MASTER",
    "SeriesRead",
    "SeriesReader",
    "SeriesRound",
    "held_members",
    "series_found",
    "to_check",
]

log = structlog.get_logger("syncd.outlook")

MASTER = "master"
"""The kind of a batched call that reads a series master's start."""
INSTANCES = "instances"
"""The kind of a batched call that lists a series's instances over the window."""


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

    def master_calls(self, series: Iterable[str], calendar_id: str) -> dict[Key, Call]:
        """The batched reads of the masters' starts, keyed ``(MASTER, series)``."""
        return {(MASTER, s): self.graph.master_call(calendar_id, s) for s in sorted(set(series))}

    def read_calls(
        self, series: Iterable[str], calendar_id: str, window: tuple[datetime, datetime]
    ) -> dict[Key, Call]:
        """The master and the first page of instances over ``window`` of each series."""
        calls = self.master_calls(series, calendar_id)
        for s in sorted(set(series)):
            calls[(INSTANCES, s)] = self.graph.instances_call(calendar_id, s, *window)
        return calls

    def starts(self, replies: Mapping[Key, Reply]) -> dict[str, When]:
        """The start of each master in ``replies`` that could be read."""
        found: dict[str, When] = {}
        for (kind, series), reply in replies.items():
            start = self._start(series, reply) if kind == MASTER else None
            if start is not None:
                found[series] = start
        return found

    def read(self, replies: Mapping[Key, Reply]) -> SeriesRead:
        """The starts and the instances listings in ``replies`` (next pages are read)."""
        found = SeriesRead(starts=self.starts(replies))
        for (kind, series), reply in replies.items():
            if kind == INSTANCES:
                self._listing(found, series, reply)
        return found

    def _start(self, series: str, reply: Reply) -> When | None:
        self.graph.check_access("get", reply, f"series {series}")
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
        self.graph.check_access("get", reply, f"series {series}")
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


class SeriesRound:
    """The series part of a listing: their starts, and (after a delta link) the occurrences
    of the touched series reconciled as a set."""

    def __init__(self, graph: Graph, lister: Lister, names: Names) -> None:
        self.reader = SeriesReader(graph)
        self.lister = lister
        self.names = names
        self.name = graph.name
        self.graph = graph

    def touched(
        self,
        entries: Mapping[str, Mapping[str, Any]],
        removed: Iterable[str],
        known: Mapping[str, str],
    ) -> set[str]:
        """The series of a round's changed entries (held ones too: a round whose cursor was
        held back is offered the same entries again, and the core may hold them by then) and
        of the removed ids the core holds."""
        named = [series_of(e) or self._held_series(known, i) for i, e in entries.items()]
        named += [self._held_series(known, identifier) for identifier in removed]
        return {series for series in named if series is not None}

    def reconcile(
        self,
        found: Found,
        read: SeriesRead,
        removed: Collection[str],
        known: Mapping[str, str],
        calendar_id: str,
    ) -> dict[str, When]:
        """Read the occurrences the core holds of the series in ``read`` that their listing
        lacks (all of them where it was refused) into ``found``, with the masters of series
        found but not read; keep the ``removed`` ids of a series not reconciled whole. The
        starts of the series of every item found."""
        held = held_members(known, read.listed.keys() | read.failed.keys())
        missing = to_check(read, held, found.settled(), known, self.names.href_of_id)
        if missing:
            log.info("outlook.unlisted_occurrences", calendar=self.name, count=len(missing))
        ids = [self.names.id_of(href) or href for href in missing]
        late = series_found(found) - read.starts.keys() - held.keys()
        calls = {
            **self.lister.event_calls(ids, calendar_id),
            **self.reader.master_calls(late, calendar_id),
        }
        replies = self.graph.batch_by("get", calls)
        self.lister.take(found, ids, replies, known)
        self._hold_back(found, held, removed, known)
        return {**read.starts, **self.reader.starts(replies)}

    def _hold_back(
        self,
        found: Found,
        held: Mapping[str, set[str]],
        removed: Collection[str],
        known: Mapping[str, str],
    ) -> None:
        """Removals reported by ``@removed`` of a series one of whose occurrences could not
        be read become item failures: the round offered again must touch the series again."""
        hrefs = {self.names.href_of_id(i) for i in removed}
        for series, members in sorted(held.items()):
            if not members & found.failures.keys():
                continue
            reason = (
                f"removed, kept until the occurrences of series {series} can all be read "
                "(one of them could not)"
            )
            for href in sorted(members & hrefs & found.gone):
                found.gone.discard(href)
                failure = ItemFailure(href=href, etag=unread(known[href]), reason=reason)
                found.failures[href] = failure
                log.warning("outlook.item_failed", calendar=self.name, href=href, reason=reason)

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


def to_check(
    read: SeriesRead,
    held: Mapping[str, set[str]],
    settled: Collection[str],
    known: Mapping[str, str],
    href_of_id: Callable[[str], str],
) -> list[str]:
    """The hrefs the core holds of the series read that the round has no other answer for
    (``settled``) and that their listing lacks, or all of them where it was refused; and
    those it holds as :func:`.etags.unread` (a read that failed before)."""
    missing: list[str] = []
    for series, members in sorted(held.items()):
        listed = {href_of_id(i) for i in read.listed.get(series, set())}
        missing += sorted(
            h for h in members if h not in settled and (h not in listed or is_unread(known[h]))
        )
    return missing
