"""The emulator's state: users, calendars, stored events and each calendar's change log.

Stored resources are never mutated after they are stored (a change stores a new dict), so a
listing can keep references to them as its snapshot and encode them outside the lock.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.google_emulator.errors import not_found
from tests.google_emulator.recurrence import Series

__all__ = ["Actor", "Calendar", "Entry", "Store", "WriteRecord", "new_event_id"]


def new_event_id() -> str:
    """An id the server picks: 26 characters of the base32hex alphabet, like Google's."""
    return secrets.token_hex(13)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a request: a user, or a service account acting as itself."""

    email: str
    service_account: bool = False


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One event write through the API, with the ``sendUpdates`` it asked for."""

    op: str  # insert | update | patch | delete
    calendar_id: str
    event_id: str
    send_updates: str | None


@dataclass(slots=True)
class Entry:
    """A stored event: its resource, its span (UTC) and, for a master, its series."""

    resource: dict[str, Any]
    start: datetime
    end: datetime
    series: Series | None
    seq: int = 0

    @property
    def cancelled(self) -> bool:
        """Whether the event is deleted (or a cancelled exception)."""
        return self.resource.get("status") == "cancelled"

    @property
    def master_id(self) -> str | None:
        """``recurringEventId`` for an exception, else ``None``."""
        value = self.resource.get("recurringEventId")
        return value if isinstance(value, str) else None


@dataclass(slots=True)
class Calendar:
    """A calendar with its events, in a stable (creation) order, and its change log."""

    id: str
    summary: str
    owner: str
    time_zone: str
    etag: str
    description: str | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    log: OrderedDict[str, int] = field(default_factory=OrderedDict)  # id -> seq, seq order
    children: dict[str, set[str]] = field(default_factory=dict)  # master id -> exception ids
    ical: dict[str, set[str]] = field(default_factory=dict)  # iCalUID -> ids
    seq: int = 0
    # Sync tokens carry it: expiring them bumps it, a calendar made again starts elsewhere.
    epoch: int = field(default_factory=lambda: secrets.randbelow(2**31))
    list_seq: int = 0
    updated: str = "1970-01-01T00:00:00.000Z"
    deleted: bool = False
    hidden: bool = False  # the caller's calendar list entry is hidden (``hidden`` member)

    @property
    def tz(self) -> ZoneInfo:
        """The calendar's zone."""
        return ZoneInfo(self.time_zone)

    @property
    def primary(self) -> bool:
        """Whether this is its owner's primary calendar (its id is the owner's address)."""
        return self.id == self.owner

    def commit(self, entry: Entry) -> Entry:
        """Store ``entry`` as the event's current version and log the change."""
        event_id = entry.resource["id"]
        self.seq += 1
        entry.seq = self.seq
        self.entries[event_id] = entry
        self.log[event_id] = self.seq
        self.log.move_to_end(event_id)
        if entry.master_id is not None:
            self.children.setdefault(entry.master_id, set()).add(event_id)
        self.updated = max(self.updated, entry.resource.get("updated", self.updated))
        uid = entry.resource.get("iCalUID")
        if isinstance(uid, str):
            self.ical.setdefault(uid, set()).add(event_id)
        return entry

    def changed_since(self, seq: int) -> list[str]:
        """Ids of events changed after change number ``seq``, oldest change first: O(changes)."""
        out: list[str] = []
        for event_id in reversed(self.log):
            if self.log[event_id] <= seq:
                break
            out.append(event_id)
        out.reverse()
        return out


class Store:
    """Users, calendars and the counters that make etags and timestamps unique."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.calendars: dict[str, Calendar] = {}
        self.users: set[str] = set()
        self.writes: list[WriteRecord] = []
        self.expansion_limit = 730
        self.list_seq = 0
        # (organizer calendar, event id) -> attendee calendars that hold a copy
        self.copy_links: dict[tuple[str, str], set[str]] = {}
        self._etags = itertools.count(1)
        self._etag_base = 3_500_000_000_000_000 + secrets.randbelow(10**12) * 1000
        self._last = datetime(1970, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The clock's time, made strictly increasing (by at least 1 ms) across calls."""
        moment = self.clock().astimezone(UTC)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if moment <= self._last:
            moment = self._last + timedelta(milliseconds=1)
        self._last = moment
        return moment

    def next_etag(self) -> str:
        """A new quoted etag, never given out before."""
        return f'"{self._etag_base + next(self._etags)}"'

    def add_user(self, email: str, time_zone: str = "UTC") -> Calendar:
        """A user and their primary calendar (whose id is their address)."""
        self.users.add(email)
        existing = self.calendars.get(email)
        if existing is not None:
            return existing
        return self.add_calendar(email, owner=email, calendar_id=email, time_zone=time_zone)

    def add_calendar(
        self, summary: str, *, owner: str, calendar_id: str | None = None, time_zone: str = "UTC"
    ) -> Calendar:
        """A new calendar owned by ``owner``; a generated id looks like Google's group ids."""
        ZoneInfo(time_zone)
        cal_id = calendar_id or f"c_{secrets.token_hex(16)}@group.calendar.google.com"
        if cal_id in self.calendars and not self.calendars[cal_id].deleted:
            raise ValueError(f"calendar {cal_id!r} exists already")
        self.list_seq += 1
        calendar = Calendar(
            cal_id, summary, owner, time_zone, self.next_etag(), list_seq=self.list_seq
        )
        self.calendars[cal_id] = calendar
        return calendar

    def resolve(self, actor: Actor, calendar_id: str) -> Calendar:
        """``calendar_id`` (``primary``: the actor's own) when the actor owns it, else 404."""
        if calendar_id == "primary":
            calendar = self.calendars.get(actor.email)
            if calendar is None and actor.service_account:
                calendar = self.add_calendar(
                    actor.email, owner=actor.email, calendar_id=actor.email
                )
        else:
            calendar = self.calendars.get(calendar_id)
        if calendar is None or calendar.deleted or calendar.owner != actor.email:
            raise not_found()
        return calendar

    def calendar(self, calendar_id: str) -> Calendar:
        """The calendar ``calendar_id`` whoever owns it (for test controls); KeyError if none."""
        calendar = self.calendars.get(calendar_id)
        if calendar is None or calendar.deleted:
            raise KeyError(f"no calendar {calendar_id!r} in the emulator")
        return calendar

    def delete_calendar(self, calendar: Calendar) -> None:
        """Mark ``calendar`` deleted: it leaves the calendar list, its tokens stop working."""
        calendar.deleted = True
        calendar.epoch += 1
        self.list_seq += 1
        calendar.list_seq = self.list_seq

    def html_link(self, event_id: str, calendar_id: str) -> str:
        """``htmlLink`` of an event (the ``eid`` is base64 of id and calendar, as Google's)."""
        eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
        return f"https://www.google.com/calendar/event?eid={eid}"
