"""One listing round of a calendar, in as few requests as it can.

A fresh round follows a new delta round, reads in JSON batches the items whose syncd
property the listing did not give (:meth:`.listing.Lister.from_view`), then the masters of
every series it lists (a batch of them that stays throttled only costs their hints). A round after a
delta link reads, in one JSON batch, the changed items, the ``@removed`` ids the core holds,
and the master and instances of every series it touches (:mod:`.series`): a quiet round is
one request (the delta page), a round that changes an occurrence two. A second batch is sent
only when a touched series's listing lacks an occurrence the core holds, or was refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from connectors.outlook.etags import key_of
from connectors.outlook.graph import Graph
from connectors.outlook.items import MalformedItem, change_key
from connectors.outlook.listing import Found, Lister, Round
from connectors.outlook.names import Names, could_be_id
from connectors.outlook.series import SeriesRound, series_found
from connectors.outlook.session import DeltaExpired
from syncd.connector import ItemFailure, RemoteObject

__all__ = ["Listed", "Rounds"]

log = structlog.get_logger("syncd.outlook")


@dataclass(frozen=True, slots=True)
class Listed:
    """What a round gives the core."""

    objects: list[RemoteObject]
    failures: list[ItemFailure]
    removed: list[str]
    link: str
    """The round's delta link."""


class Rounds:
    """Listing rounds of one calendar."""

    def __init__(self, graph: Graph, names: Names) -> None:
        self.graph = graph
        self.names = names
        self.name = graph.name
        self.lister = Lister(graph, names)
        self.series = SeriesRound(graph, self.lister, names)

    def fresh(
        self, calendar_id: str, window: tuple[datetime, datetime], known: Mapping[str, str]
    ) -> Listed:
        """A new delta round over ``window``: every item in it."""
        delta = self._follow_new(calendar_id, window)
        changed = delta.changed()
        found, pending = self.lister.from_view(changed, known, calendar_id, window, whole=True)
        replies = self.graph.batch_by("get", self.lister.event_calls(pending, calendar_id))
        self.lister.take(found, pending, replies, known)
        masters = self.series.reader.master_calls(series_found(found), calendar_id)
        starts = self.series.reader.starts(self.graph.batch_by("get", masters, settle=True))
        objects, failures = self.lister.finish(found, starts)
        return Listed(objects, failures, [], delta.link)

    def incremental(
        self,
        link: str,
        calendar_id: str,
        window: tuple[datetime, datetime],
        known: Mapping[str, str],
    ) -> Listed:
        """The changes since ``link``."""
        delta = self.lister.follow(link)
        entries = delta.changed()
        changed = {
            identifier: entry
            for identifier, entry in entries.items()
            if not _held(known, self._href_of_entry(identifier, entry), entry)
        }
        found, pending = self.lister.from_view(changed, known, calendar_id, window)
        removed, vanished = self._removed_ids(delta.removed(), known, calendar_id)
        touched = self.series.touched(entries, removed, known)
        calls = {
            **self.lister.event_calls([*pending, *removed], calendar_id),
            **self.series.reader.read_calls(touched, calendar_id, window),
        }
        replies = self.graph.batch_by("get", calls)
        self.lister.take(found, pending, replies, known)
        checked = Found()
        self.lister.take(checked, removed, replies, known)
        found.add_unsettled(checked)  # an href listed anew (a re-made event) is not removed
        read = self.series.reader.read(replies)
        starts = self.series.reconcile(found, read, removed, known, calendar_id)
        objects, failures = self.lister.finish(found, starts)
        gone = {href for href in found.gone | vanished if href in known}
        for href in gone:
            self.names.forget(href)
        return Listed(objects, failures, sorted(gone), delta.link)

    def _follow_new(self, calendar_id: str, window: tuple[datetime, datetime]) -> Round:
        """Follow a new delta round, starting it again once if Graph forgets its state while
        its pages are followed: a round without a cursor has nothing to lose."""
        url = self.graph.delta_url(calendar_id, *window)
        try:
            return self.lister.follow(url)
        except DeltaExpired:
            log.info("outlook.round_restarted", calendar=self.name)
            return self.lister.follow(url)

    def _href_of_entry(self, identifier: str, entry: Mapping[str, Any]) -> str:
        """The href of a delta entry, which may lack ``transactionId`` (a partial update)."""
        self.names.note(entry)
        return self.names.href_of_id(identifier)

    def _removed_ids(
        self, ids: list[str], known: Mapping[str, str], calendar_id: str
    ) -> tuple[list[str], set[str]]:
        """The removed ids of items the core holds, and the created events the core holds
        that a lookup no longer finds."""
        vanished: set[str] = set()
        if any(not self._holds(known, i) for i in ids) and not self.names.resolved:
            vanished = self._resolve_created(known, calendar_id)
        return [i for i in ids if self._holds(known, i)], vanished

    def _holds(self, known: Mapping[str, str], identifier: str) -> bool:
        return self.names.href_of_id(identifier) in known

    def _resolve_created(self, known: Mapping[str, str], calendar_id: str) -> set[str]:
        """After a restart, find the ids of the created events the core holds (a removed id
        may be one of them); the hrefs no longer found are gone."""
        wanted = [h for h in known if self.names.id_of(h) is None and not could_be_id(h)]
        self.names.resolved = True
        if not wanted:
            return set()
        for items in self.graph.find_many(calendar_id, wanted).values():
            for item in items:
                self.names.note(item)
        return {href for href in wanted if self.names.id_of(href) is None}


def _held(known: Mapping[str, str], href: str, entry: Mapping[str, Any]) -> bool:
    """The core already holds this version (a replay, or syncd's own write it has seen)."""
    held = known.get(href)
    try:
        return held is not None and key_of(held) == change_key(entry)
    except MalformedItem:
        return False
