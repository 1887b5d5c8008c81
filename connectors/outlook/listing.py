"""Listing one calendar: follow a ``calendarView/delta`` round, complete its items with
syncd's extended property, check ``@removed`` ids, and turn items into objects for the core.

Delta payloads never carry extended properties, and in a round that follows a delta link an
updated item may carry only the properties that changed: there a delta entry is used for its
id and change key alone, and changed items are read whole, whichever costs fewer requests,
from a ``calendarView`` listing of whole items with the property over the round's window, or
by fetching them in JSON batches of 20. A fresh round lists every item whole, so its entries
are rendered as they are, with the property from a listing of ids and change keys (taken only
where the change keys agree: the property then belongs to exactly that version; the others
are fetched). Fetches are calls of a round's JSON batch (:meth:`Lister.event_calls`), which
the round shares with its ``@removed`` checks and series reads (:mod:`.rounds`).

An ``@removed`` entry is a deletion only for an item the core holds and Graph no longer has
(it is read like a changed item): Graph also reports items created, changed or moved outside
the window as removed. An item the core holds that still exists is listed with its current
data instead (the core sees a move, not a cancellation); ids the core does not hold are
ignored.

Items are gathered whole first (:class:`Found`) and rendered at the end (:meth:`Lister.finish`),
once the starts of their series are known (:mod:`.series`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from connectors.outlook.etags import etag_of, series_of, unread
from connectors.outlook.graph import MAX_PAGES, VIEW_PAGE_SIZE, Graph
from connectors.outlook.items import MalformedItem, change_key
from connectors.outlook.names import Names
from connectors.outlook.render import render
from connectors.outlook.session import BATCH_SIZE, Call, Reply
from syncd.connector import ItemFailure, RemoteObject
from syncd.errors import TransientError
from syncd.model import When

__all__ = ["EVENT", "Found", "Key", "Lister", "Round"]

log = structlog.get_logger("syncd.outlook")

Key = tuple[str, str]
"""A call of a round's JSON batch: its kind and the id it is about."""
EVENT = "event"
"""The kind of a call that reads an item whole (:meth:`Lister.event_calls`)."""


@dataclass(slots=True)
class Round:
    """A followed delta round: the last entry seen per id, and the delta link."""

    entries: dict[str, dict[str, Any]]
    link: str

    def changed(self) -> dict[str, dict[str, Any]]:
        """Entries of items created or changed."""
        return {i: e for i, e in self.entries.items() if "@removed" not in e}

    def removed(self) -> list[str]:
        """Ids reported as removed."""
        return [i for i, e in self.entries.items() if "@removed" in e]


@dataclass(slots=True)
class Found:
    """Whole items for the core (rendered by :meth:`Lister.finish`), items that could not be
    read, hrefs that are gone."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, ItemFailure] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    def add_unsettled(self, other: Found) -> None:
        """Add ``other``'s results for the hrefs this listing has no answer for yet."""
        settled = self.settled()
        self.items.update((h, i) for h, i in other.items.items() if h not in settled)
        self.failures.update((h, f) for h, f in other.failures.items() if h not in settled)
        self.gone |= other.gone - settled

    def settled(self) -> set[str]:
        """The hrefs this listing has an answer for (listed, failed or gone)."""
        return set(self.items) | set(self.failures) | self.gone


class Lister:
    """Listings of one calendar."""

    def __init__(self, graph: Graph, names: Names) -> None:
        self.graph = graph
        self.names = names
        self.name = graph.name

    def follow(self, url: str) -> Round:
        """Every page from ``url`` to the delta link; a replayed or later entry of an id wins."""
        entries: dict[str, dict[str, Any]] = {}
        for _ in range(MAX_PAGES):
            items, next_link, delta_link = self.graph.page("delta", url)
            for entry in items:
                identifier = entry.get("id")
                if isinstance(identifier, str) and identifier:
                    entries[identifier] = entry
                else:
                    log.warning("outlook.entry_without_id", calendar=self.name)
            if next_link is not None:
                url = next_link
            elif delta_link is not None:
                return Round(entries, delta_link)
            else:
                raise TransientError(self.name, "a delta page had neither a next nor a delta link")
        raise TransientError(self.name, f"the delta round ran past {MAX_PAGES} pages")

    def from_view(
        self,
        changed: Mapping[str, dict[str, Any]],
        known: Mapping[str, str],
        calendar_id: str,
        window: tuple[datetime, datetime],
        *,
        whole: bool = False,
    ) -> tuple[Found, list[str]]:
        """The changed items a ``calendarView`` listing gives whole with syncd's property,
        when that is cheaper than fetching them (``whole``: the entries are whole items, a
        fresh round); the ids still to fetch (:meth:`event_calls`, :meth:`take`)."""
        found = Found()
        pending = dict(changed)
        if pending and self._view_is_cheaper(len(pending), len(known)):
            view = self._with_property if whole else self._with_view_data
            for identifier, item in view(pending, calendar_id, window):
                del pending[identifier]
                self._take(found, item)
        return found, list(pending)

    def event_calls(self, ids: Iterable[str], calendar_id: str) -> dict[Key, Call]:
        """The batched reads of items with syncd's property, keyed ``(EVENT, id)``."""
        return {(EVENT, i): self.graph.event_call(calendar_id, i) for i in ids}

    def take(
        self,
        found: Found,
        ids: Iterable[str],
        replies: Mapping[Key, Reply],
        known: Mapping[str, str],
    ) -> None:
        """Read the answers to :meth:`event_calls` into ``found``: an item (changed, or
        moved out of the window or changed outside it), gone (404: deleted or moved to
        another calendar; or now a series master, whose occurrences are listed on their
        own), or an item failure at the etag the core holds."""
        for identifier in ids:
            reply = replies[(EVENT, identifier)]
            href = self.names.href_of_id(identifier)
            if reply.status == 404 or (
                isinstance(reply.body, dict) and reply.body.get("type") == "seriesMaster"
            ):
                found.gone.add(href)
            elif reply.status == 200 and isinstance(reply.body, dict):
                self._take(found, reply.body)
            else:
                # The core's etag (with its series) marked unread, not the entry's change key:
                # the entry offered again next cycle must not look like a version it holds.
                self._failed(found, href, known.get(href, ""), identifier, reply)

    def finish(
        self, found: Found, starts: Mapping[str, When]
    ) -> tuple[list[RemoteObject], list[ItemFailure]]:
        """Render the items found, each occurrence and exception with the start of its series
        when known; an item that cannot be rendered is a lasting failure."""
        objects: list[RemoteObject] = []
        failures = dict(found.failures)
        for href, item in found.items.items():
            series = series_of(item)
            try:
                etag = etag_of(item)
                data = render(item, series_start=None if series is None else starts.get(series))
            except MalformedItem as error:
                reason = f"item {item.get('id')}: {error}"
                log.warning("outlook.item_failed", calendar=self.name, href=href, reason=reason)
                failures[href] = ItemFailure(
                    href=href, etag=_etag(item), reason=reason, lasting=True
                )
                continue
            objects.append(RemoteObject(href=href, etag=etag, data=data))
        return objects, list(failures.values())

    # --- internals -------------------------------------------------------------------------

    def _view_is_cheaper(self, changed: int, known: int) -> bool:
        batches = math.ceil(changed / BATCH_SIZE)
        pages = math.ceil(max(changed, known) / VIEW_PAGE_SIZE)
        return pages < batches

    def _with_view_data(
        self,
        pending: Mapping[str, dict[str, Any]],
        calendar_id: str,
        window: tuple[datetime, datetime],
    ) -> list[tuple[str, dict[str, Any]]]:
        url = self.graph.view_url(calendar_id, *window)
        listed = {
            item.get("id"): item for item in self.graph.pages("view", url, size=VIEW_PAGE_SIZE)
        }
        # The listing is at least as new as the delta entry: its whole item is rendered.
        return [(i, listed[i]) for i in pending if isinstance(listed.get(i), dict)]

    def _with_property(
        self,
        pending: Mapping[str, dict[str, Any]],
        calendar_id: str,
        window: tuple[datetime, datetime],
    ) -> list[tuple[str, dict[str, Any]]]:
        url = self.graph.view_url(calendar_id, *window, whole=False)
        listed = {
            item.get("id"): item for item in self.graph.pages("view", url, size=VIEW_PAGE_SIZE)
        }
        ready = []
        for identifier, entry in pending.items():
            view = listed.get(identifier)
            if not isinstance(view, dict) or _key(view) is None or _key(view) != _key(entry):
                continue
            props = view.get("singleValueExtendedProperties") or []
            ready.append((identifier, {**entry, "singleValueExtendedProperties": props}))
        return ready

    def _take(self, found: Found, item: dict[str, Any]) -> None:
        try:
            href = self.names.note(item)
        except MalformedItem as error:
            log.warning("outlook.item_failed", calendar=self.name, reason=str(error))
            return
        found.failures.pop(href, None)
        found.items[href] = item

    def _failed(self, found: Found, href: str, etag: str, identifier: str, reply: Reply) -> None:
        self.graph.check_access("get", reply, f"item {identifier}")
        reason = f"item {identifier}: Graph answered HTTP {reply.status} when it was fetched"
        log.warning("outlook.item_failed", calendar=self.name, href=href, reason=reason)
        found.failures[href] = ItemFailure(href=href, etag=unread(etag), reason=reason)


def _key(item: Mapping[str, Any]) -> str | None:
    try:
        return change_key(item)
    except MalformedItem:
        return None


def _etag(item: Mapping[str, Any]) -> str:
    try:
        return etag_of(item)
    except MalformedItem:
        return ""
