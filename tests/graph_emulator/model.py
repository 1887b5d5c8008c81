"""Stored items and the instances a calendar view shows.

An :class:`Item` is a single event or a series master, immutable: every change stores a new
``Item`` (the change log keeps the old one, which is how a delta round knows what a client saw).
A series master holds its exceptions (``originalStart`` → exception ``Item``) and the original
starts of deleted occurrences. An :class:`Instance` is what ``calendarView`` lists: a single
event, an occurrence (computed from the master) or an exception.

Ids are opaque URL-safe base64 and case-sensitive. An occurrence's id encodes its master's id
and its original start, so the same occurrence keeps its id across reads and an exception
keeps the id of the occurrence it replaced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.graph_emulator.recurrence import Recurrence
from tests.graph_emulator.times import zone

__all__ = [
    "Instance",
    "Item",
    "change_key",
    "ical_uid",
    "item_id",
    "occurrence_id",
    "parse_id",
]

_ITEM, _OCCURRENCE = 0, 1
_GOID_CLASS = bytes.fromhex("040000008200E00074C5B7101A82E008")


def item_id(key: str) -> str:
    """The id of a single event or series master made from a unique ``key``."""
    raw = hashlib.sha256(key.encode()).digest()
    return base64.urlsafe_b64encode(bytes([_ITEM]) + raw).decode()


def occurrence_id(master: str, original_start: datetime) -> str:
    """The id of the occurrence (or exception) of ``master`` at ``original_start``."""
    raw = base64.urlsafe_b64decode(master)[1:]
    stamp = struct.pack(">q", int(original_start.timestamp()))
    return base64.urlsafe_b64encode(bytes([_OCCURRENCE]) + raw + stamp).decode()


def parse_id(value: str) -> tuple[str, datetime | None] | None:
    """(item id, original start or None) for an id this emulator made; None otherwise."""
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if base64.urlsafe_b64encode(raw).decode() != value:
        return None
    if len(raw) == 33 and raw[0] == _ITEM:
        return value, None
    if len(raw) == 41 and raw[0] == _OCCURRENCE:
        master = base64.urlsafe_b64encode(bytes([_ITEM]) + raw[1:33]).decode()
        (seconds,) = struct.unpack(">q", raw[33:])
        return master, datetime.fromtimestamp(seconds, UTC)
    return None


def change_key(item: str, seq: int) -> str:
    """A fresh opaque change key for ``item`` at change ``seq``."""
    digest = hashlib.blake2b(f"{item}:{seq}".encode(), digest_size=12).digest()
    return base64.b64encode(digest).decode()


def ical_uid(seed: str) -> str:
    """An Outlook global object id in hex, with a zero instance date (occurrences set it)."""
    data = hashlib.sha256(seed.encode()).digest()[:16]
    blob = _GOID_CLASS + bytes(4) + bytes(16) + struct.pack("<I", len(data)) + data
    return blob.hex().upper()


@dataclass(frozen=True, slots=True)
class Item:
    """One stored event: a single event, a series master, or (inside a master) an exception.

    ``data`` holds the event's own properties in Graph's shape (``subject``, ``body``,
    ``start``/``end`` as given, ``attendees`` …); computed ones (id, change key, times, type)
    are fields. ``start``/``end`` are UTC.
    """

    id: str
    calendar_id: str
    data: Mapping[str, Any]
    start: datetime
    end: datetime
    change_key: str
    created: datetime
    modified: datetime
    ical_uid: str
    ext: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    recurrence: Recurrence | None = None
    exceptions: Mapping[datetime, Item] = field(default_factory=dict)
    deleted: frozenset[datetime] = frozenset()

    @property
    def zone_name(self) -> str:
        """The zone the event's start was given in."""
        return str(self.data["start"]["timeZone"])

    @property
    def all_day(self) -> bool:
        """Whether it is an all-day event."""
        return bool(self.data.get("isAllDay"))

    def occurrence_starts(self) -> Iterator[tuple[datetime, datetime]]:
        """(original start, end) in UTC of every occurrence the pattern makes, in order."""
        if self.recurrence is None:
            return
        local_zone = zone(self.recurrence.zone_name)
        wall = self.start.astimezone(local_zone).time()
        length = self.wall_length
        for day in self.recurrence.dates():
            begin = datetime.combine(day, wall, tzinfo=local_zone)
            yield begin.astimezone(UTC), (begin + length).astimezone(UTC)

    @property
    def wall_length(self) -> timedelta:
        """The event's length on the wall clock of its start zone (DST keeps it)."""
        local_zone = zone(self.zone_name)
        start = self.start.astimezone(local_zone).replace(tzinfo=None)
        return self.end.astimezone(local_zone).replace(tzinfo=None) - start

    def occurrence_end(self, original_start: datetime) -> datetime:
        """The end of the occurrence starting at ``original_start``."""
        zone_name = self.recurrence.zone_name if self.recurrence else self.zone_name
        return (original_start.astimezone(zone(zone_name)) + self.wall_length).astimezone(UTC)

    def occurrence_uid(self, original_start: datetime) -> str:
        """The ``iCalUId`` of an occurrence: the master's with the instance date set."""
        zone_name = self.recurrence.zone_name if self.recurrence else self.zone_name
        day = original_start.astimezone(zone(zone_name)).date()
        stamp = struct.pack(">HBB", day.year, day.month, day.day).hex().upper()
        if len(self.ical_uid) >= 40 and self.ical_uid.startswith(_GOID_CLASS.hex().upper()):
            return self.ical_uid[:32] + stamp + self.ical_uid[40:]
        return f"{self.ical_uid}-{stamp}"

    def has_occurrence(self, original_start: datetime) -> bool:
        """Whether the pattern makes an occurrence at ``original_start`` (deleted or not)."""
        for begin, _ in self.occurrence_starts():
            if begin >= original_start:
                return begin == original_start
        return False

    def instance_at(self, original_start: datetime) -> Instance | None:
        """The occurrence or exception at ``original_start``; None when deleted or not in it."""
        if original_start in self.deleted:
            return None
        if original_start in self.exceptions:
            return Instance(self, original_start, self.exceptions[original_start])
        if self.has_occurrence(original_start):
            return Instance(self, original_start, None)
        return None

    def instances(self, window_start: datetime, window_end: datetime) -> list[Instance]:
        """The instances that overlap the window (the item itself when not a series)."""
        if self.recurrence is None:
            found = [Instance(self, None, None)]
            return [i for i in found if overlaps(i.start, i.end, window_start, window_end)]
        result: list[Instance] = []
        for begin, end in self.occurrence_starts():
            if begin >= window_end:
                break
            if begin in self.deleted or begin in self.exceptions:
                continue
            if overlaps(begin, end, window_start, window_end):
                result.append(Instance(self, begin, None))
        for original, exception in self.exceptions.items():
            if overlaps(exception.start, exception.end, window_start, window_end):
                result.append(Instance(self, original, exception))
        return result


def overlaps(start: datetime, end: datetime, window_start: datetime, window_end: datetime) -> bool:
    """Whether [start, end) meets the window; an event of no length counts at its start."""
    if start == end:
        return window_start <= start < window_end
    return start < window_end and end > window_start


@dataclass(frozen=True, slots=True)
class Instance:
    """What a calendar view shows: a single event, an occurrence or an exception."""

    item: Item
    original_start: datetime | None
    exception: Item | None

    @property
    def kind(self) -> str:
        """Graph's ``type``."""
        if self.original_start is None:
            return "seriesMaster" if self.item.recurrence is not None else "singleInstance"
        return "exception" if self.exception is not None else "occurrence"

    @property
    def id(self) -> str:
        """The instance's id."""
        if self.original_start is None:
            return self.item.id
        return occurrence_id(self.item.id, self.original_start)

    @property
    def start(self) -> datetime:
        """Start in UTC."""
        if self.exception is not None:
            return self.exception.start
        if self.original_start is not None:
            return self.original_start
        return self.item.start

    @property
    def end(self) -> datetime:
        """End in UTC."""
        if self.exception is not None:
            return self.exception.end
        if self.original_start is not None:
            return self.item.occurrence_end(self.original_start)
        return self.item.end

    @property
    def source(self) -> Item:
        """The item whose properties the instance shows."""
        return self.exception or self.item


def sort_key(instance: Instance) -> tuple[datetime, str]:
    """Calendar-view order: by start, then id."""
    return instance.start, instance.id
