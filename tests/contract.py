"""The connector contract suite: every connector's tests subclass :class:`ConnectorContract`.

A subclass provides two fixtures: ``connector`` (a connector on an empty calendar) and
``outside`` (a :class:`Outside` that changes that calendar the way another client would).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

import pytest

from syncd.connector import Connector, Delta
from syncd.errors import AlreadyExists, Conflict, CursorExpired, NotFound
from tests.ical import calendar, event

START = datetime(2026, 12, 1, 10, tzinfo=UTC)


class Outside(ABC):
    """Another client of the same calendar: the user's app, a booking tool."""

    @abstractmethod
    def put(self, href: str, data: bytes) -> None:
        """Create or replace an object."""

    @abstractmethod
    def remove(self, href: str) -> None:
        """Delete an object."""

    def expire_cursor(self, cursor: str) -> str | None:
        """Return a cursor the provider no longer accepts, or None if it has no such thing."""
        return None


def sample(uid: str, hour: int = 10) -> bytes:
    """A one-event object starting at ``hour`` on the contract's day."""
    start = START.replace(hour=hour)
    return calendar(event(uid, start, start + timedelta(hours=1)))


def listed(delta: Delta) -> dict[str, bytes]:
    """href -> data of the objects a delta lists."""
    return {o.href: o.data for o in delta.upserts}


def snapshot(delta: Delta, known: dict[str, str]) -> dict[str, str]:
    """Apply a delta to an href -> etag map, as the engine does."""
    result = dict(known)
    if delta.full:
        result = {}
    for href in delta.removed:
        result.pop(href, None)
    result.update({o.href: o.etag for o in delta.upserts})
    return result


class ConnectorContract:
    """Behaviour every connector must show; see :mod:`syncd.connector`."""

    def test_full_listing_returns_every_object(
        self, connector: Connector, outside: Outside
    ) -> None:
        """A listing without a cursor returns every object with its data."""
        outside.put("a.ics", sample("a"))
        outside.put("b.ics", sample("b", 12))
        delta = connector.list_changes(None, {})
        assert set(listed(delta)) == {"a.ics", "b.ics"}
        assert b"UID:b" in listed(delta)["b.ics"]

    def test_incremental_listing_returns_only_changes(
        self, connector: Connector, outside: Outside
    ) -> None:
        """After a cursor, only created, modified and removed objects are listed."""
        for name in ("a", "b", "c"):
            outside.put(f"{name}.ics", sample(name))
        first = connector.list_changes(None, {})
        known = snapshot(first, {})
        outside.put("a.ics", sample("a", 15))
        outside.remove("b.ics")
        outside.put("d.ics", sample("d"))
        second = connector.list_changes(first.cursor, known)
        assert set(listed(second)) == {"a.ics", "d.ics"}
        assert set(snapshot(second, known)) == {"a.ics", "c.ics", "d.ics"}

    def test_quiet_listing_returns_nothing(self, connector: Connector, outside: Outside) -> None:
        """Without changes, an incremental listing is empty."""
        outside.put("a.ics", sample("a"))
        first = connector.list_changes(None, {})
        second = connector.list_changes(first.cursor, snapshot(first, {}))
        assert listed(second) == {}
        assert list(second.removed) == []

    def test_expired_cursor_raises_cursor_expired(
        self, connector: Connector, outside: Outside
    ) -> None:
        """A cursor the provider no longer accepts raises CursorExpired, never a silent reset."""
        outside.put("a.ics", sample("a"))
        first = connector.list_changes(None, {})
        assert first.cursor is not None
        expired = outside.expire_cursor(first.cursor)
        if expired is None:
            pytest.skip("this provider's cursors never expire")
        with pytest.raises(CursorExpired):
            connector.list_changes(expired, snapshot(first, {}))

    def test_conditional_update_conflicts_on_a_changed_object(
        self, connector: Connector, outside: Outside
    ) -> None:
        """An update at a stale etag raises Conflict and leaves the user's change in place."""
        outside.put("a.ics", sample("a"))
        stale = connector.get("a.ics").etag
        outside.put("a.ics", sample("a", 16))
        with pytest.raises(Conflict):
            connector.update("a.ics", sample("a", 9), stale)
        assert b"T160000" in connector.get("a.ics").data

    def test_update_at_current_etag_succeeds(self, connector: Connector, outside: Outside) -> None:
        """An update at the current etag replaces the object and returns its new etag."""
        outside.put("a.ics", sample("a"))
        current = connector.get("a.ics")
        new_etag = connector.update("a.ics", sample("a", 9), current.etag)
        fetched = connector.get("a.ics")
        assert fetched.etag == new_etag != current.etag
        assert b"T090000" in fetched.data

    def test_create_is_idempotent(self, connector: Connector) -> None:
        """A second create at the same href raises AlreadyExists and keeps the first object."""
        connector.create("note-1.ics", sample("note-1"))
        with pytest.raises(AlreadyExists):
            connector.create("note-1.ics", sample("note-1", 18))
        assert b"T100000" in connector.get("note-1.ics").data

    def test_get_missing_raises_not_found(self, connector: Connector) -> None:
        """Reading an object that does not exist raises NotFound."""
        with pytest.raises(NotFound):
            connector.get("missing.ics")

    def test_delete_is_conditional(self, connector: Connector, outside: Outside) -> None:
        """Delete at a stale etag conflicts; at the current etag it removes the object."""
        outside.put("a.ics", sample("a"))
        stale = connector.get("a.ics").etag
        outside.put("a.ics", sample("a", 11))
        with pytest.raises(Conflict):
            connector.delete("a.ics", stale)
        connector.delete("a.ics", connector.get("a.ics").etag)
        with pytest.raises(NotFound):
            connector.get("a.ics")

    def test_own_write_is_listed_with_its_new_etag(
        self, connector: Connector, outside: Outside
    ) -> None:
        """syncd's own update shows up in the next listing (the engine recognises it by content)."""
        outside.put("a.ics", sample("a"))
        first = connector.list_changes(None, {})
        known = snapshot(first, {})
        data = sample("a").replace(
            b"END:VEVENT", b"X-SYNCD-VERDICT:late_cancellation\r\nEND:VEVENT"
        )
        new_etag = connector.update("a.ics", data, known["a.ics"])
        second = connector.list_changes(first.cursor, known)
        assert [(o.href, o.etag) for o in second.upserts] == [("a.ics", new_etag)]
