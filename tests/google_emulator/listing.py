"""``events.list`` and ``events.instances``: filters, the showDeleted x singleEvents matrix,
sync tokens and pages.

Consistency across pages: the first page of a listing computes the whole result and the
calendar's change number at that moment; later pages are cut from that snapshot, and the
``nextSyncToken`` on the last page carries the change number of the first page. A change
made while the pages are being read is therefore not in the pages, but is after the token,
so the next incremental listing returns it: nothing is missed.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.google_emulator.errors import full_sync_required, invalid, not_found
from tests.google_emulator.events import Item, cancelled_stub, expand
from tests.google_emulator.query import (
    ListQuery,
    Query,
    fingerprint,
    parse_bool,
    parse_list_query,
    parse_max_results,
    parse_window,
    single,
)
from tests.google_emulator.store import Calendar, Entry, Store
from tests.google_emulator.times import (
    format_stamp,
    parse_event_time,
    parse_query_time,
    render_datetime,
    zone,
)
from tests.google_emulator.tokens import TokenCodec

__all__ = ["Pager", "in_zone", "list_events", "list_instances"]

_SNAPSHOTS = 512


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The full result of one listing, cut into pages on demand."""

    calendar_id: str
    fingerprint: str
    items: list[dict[str, Any]]
    sync: list[Any] | None  # payload of the nextSyncToken, None when the method has none
    key: str = field(default_factory=lambda: secrets.token_urlsafe(12))


class Pager:
    """Keeps the snapshots of listings that span several pages (the most recent 512)."""

    def __init__(self, codec: TokenCodec) -> None:
        self.codec = codec
        self.page_size_cap: int | None = None
        self._snapshots: OrderedDict[str, Snapshot] = OrderedDict()

    def resume(self, token: str, calendar: Calendar, fingerprint_now: str) -> tuple[Snapshot, int]:
        """The snapshot and offset a ``pageToken`` points at; 400 if it is not one of ours."""
        payload = self.codec.decode(token, "p")
        snap = self._snapshots.get(payload[1]) if payload else None
        if payload is None or snap is None:
            raise invalid("Invalid page token value.", location="pageToken")
        if snap.calendar_id != calendar.id or snap.fingerprint != fingerprint_now:
            raise invalid("Invalid page token value.", location="pageToken")
        self._snapshots.move_to_end(payload[1])
        return snap, int(payload[2])

    def serve(
        self, snap: Snapshot, offset: int, max_results: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Fill ``body`` with the page at ``offset`` and the next page or sync token."""
        size = max_results if self.page_size_cap is None else min(max_results, self.page_size_cap)
        size = max(size, 1)
        end = offset + size
        if end < len(snap.items):
            body["nextPageToken"] = self.codec.encode(["p", self._keep(snap), end])
        elif snap.sync is not None:
            body["nextSyncToken"] = self.codec.encode(snap.sync)
        body["items"] = snap.items[offset:end]
        return body

    def _keep(self, snap: Snapshot) -> str:
        if snap.key not in self._snapshots:
            self._snapshots[snap.key] = snap
            while len(self._snapshots) > _SNAPSHOTS:
                self._snapshots.popitem(last=False)
        return snap.key


def _envelope(calendar: Calendar) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": f'"p{calendar.seq:08x}{calendar.epoch:04x}"',
        "summary": calendar.summary,
    }
    if calendar.description:
        out["description"] = calendar.description
    out.update(
        updated=calendar.updated,
        timeZone=calendar.time_zone,
        accessRole="owner",
        defaultReminders=[],
    )
    return out


# ------------------------------------------------------------------------------ events.list


def list_events(store: Store, pager: Pager, calendar: Calendar, query: Query) -> dict[str, Any]:
    """One page of ``events.list``."""
    q = parse_list_query(query)
    if q.page_token is not None:
        snap, offset = pager.resume(q.page_token, calendar, q.fingerprint)
        return pager.serve(snap, offset, q.max_results, _envelope(calendar))
    since = _sync_seq(pager.codec, calendar, q) if q.sync_token is not None else None
    sync = ["s", calendar.id, calendar.seq, calendar.epoch, q.single_events, bool(q.show_deleted)]
    items = [_view(item.resource, q.time_zone) for item in _collect(store, calendar, q, since)]
    snap = Snapshot(calendar.id, q.fingerprint, items, sync)
    return pager.serve(snap, 0, q.max_results, _envelope(calendar))


def _sync_seq(codec: TokenCodec, calendar: Calendar, q: ListQuery) -> int:
    assert q.sync_token is not None
    payload = codec.decode(q.sync_token, "s")
    if payload is None or len(payload) != 6:
        raise full_sync_required()
    # showDeleted is carried but not compared: an incremental listing includes deleted items
    # whatever it says, so a difference changes nothing (singleEvents changes everything).
    _, calendar_id, seq, epoch, single_events, _show_deleted = payload
    if (
        calendar_id != calendar.id
        or epoch != calendar.epoch
        or single_events != q.single_events
        or seq > calendar.seq
    ):
        raise full_sync_required()
    return int(seq)


def _collect(store: Store, calendar: Calendar, q: ListQuery, since: int | None) -> list[Item]:
    if since is not None:
        entries: Iterable[Entry] = [calendar.entries[i] for i in calendar.changed_since(since)]
    else:
        entries = calendar.entries.values()
    out: list[Item] = []
    for entry in entries:
        if not _matches(entry.resource, q):
            continue
        if q.single_events and entry.series is not None:
            if not entry.cancelled or q.with_deleted:
                out.extend(expand(store, calendar, entry, q.time_min, q.time_max))
            continue
        if _visible(calendar, entry, q) and _in_window(calendar, entry, q.time_min, q.time_max):
            out.append(Item(entry.resource, entry.start, entry.end))
    if q.order_by == "startTime":
        out.sort(key=lambda item: item.start)
    elif q.order_by == "updated":
        out.sort(key=lambda item: str(item.resource.get("updated", "")))
    return out


def _visible(calendar: Calendar, entry: Entry, q: ListQuery) -> bool:
    """The documented showDeleted x singleEvents matrix for one stored item."""
    if not entry.cancelled or q.with_deleted:
        return True
    if q.single_events or entry.master_id is None:
        return False
    master = calendar.entries.get(entry.master_id)
    return master is not None and not master.cancelled


def _in_window(
    calendar: Calendar, entry: Entry, time_min: datetime | None, time_max: datetime | None
) -> bool:
    if time_min is None and time_max is None:
        return True
    if entry.series is not None:
        return next(entry.series.overlapping(calendar.tz, time_min, time_max), None) is not None
    return (time_min is None or entry.end > time_min) and (
        time_max is None or entry.start < time_max
    )


def _matches(resource: dict[str, Any], q: ListQuery) -> bool:
    if q.ical_uid is not None and resource.get("iCalUID") != q.ical_uid:
        return False
    if q.updated_min is not None and str(resource.get("updated", "")) < format_stamp(q.updated_min):
        return False
    if q.event_types and resource.get("eventType", "default") not in q.event_types:
        return False
    if q.terms and not all(term in _haystack(resource) for term in q.terms):
        return False
    props = resource.get("extendedProperties", {})
    for scope, wanted in (("private", q.private), ("shared", q.shared)):
        have = props.get(scope, {})
        if wanted and not any(have.get(key) == value for key, value in wanted):
            return False
    return True


def _haystack(resource: dict[str, Any]) -> str:
    parts = [str(resource.get(k, "")) for k in ("summary", "description", "location")]
    for person in [resource.get("organizer", {}), *resource.get("attendees", [])]:
        parts += [str(person.get("email", "")), str(person.get("displayName", ""))]
    return "\n".join(parts).casefold()


def _view(resource: dict[str, Any], tz: ZoneInfo | None) -> dict[str, Any]:
    """A listed item: a stub if cancelled, times re-rendered in the ``timeZone`` parameter."""
    if resource.get("status") == "cancelled":
        return cancelled_stub(resource)
    if tz is None:
        return resource
    return in_zone(resource, tz)


def in_zone(resource: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """``resource`` with its ``dateTime`` values written with the offsets of ``tz``."""
    out = dict(resource)
    for key in ("start", "end", "originalStartTime"):
        value = out.get(key)
        if isinstance(value, dict) and "dateTime" in value:
            instant = parse_event_time(value, key).instant
            assert instant is not None
            out[key] = dict(value, dateTime=render_datetime(instant, tz))
    return out


# ------------------------------------------------------------------------- events.instances


def list_instances(
    store: Store, pager: Pager, calendar: Calendar, event_id: str, query: Query
) -> dict[str, Any]:
    """One page of ``events.instances`` (no sync token: the method has none)."""
    max_results = parse_max_results(query)
    token = single(query, "pageToken")
    print_ = fingerprint(query)
    if token is not None:
        snap, offset = pager.resume(token, calendar, print_)
        return pager.serve(snap, offset, max_results, _envelope(calendar))
    master = calendar.entries.get(event_id)
    if master is None or master.master_id is not None:
        raise not_found()
    time_min, time_max = parse_window(query)
    show_deleted = bool(parse_bool(query, "showDeleted"))
    raw_zone = single(query, "timeZone")
    tz = zone(raw_zone, "timeZone") if raw_zone is not None else None
    found = _instances(store, calendar, master, time_min, time_max)
    original = _original_start(query, calendar)
    items = [
        _view(resource, tz)
        for start, resource in found
        if (show_deleted or resource.get("status") != "cancelled")
        and (original is None or start == original)
    ]
    snap = Snapshot(calendar.id, print_, items, None)
    return pager.serve(snap, 0, max_results, _envelope(calendar))


def _instances(
    store: Store,
    calendar: Calendar,
    master: Entry,
    time_min: datetime | None,
    time_max: datetime | None,
) -> list[tuple[datetime, dict[str, Any]]]:
    """Generated instances and stored exceptions, by original start (``timeMin`` inclusive)."""
    if master.series is None:
        return []
    inclusive_min = None if time_min is None else time_min - timedelta(microseconds=1)
    out = [
        (item.start, item.resource)
        for item in expand(store, calendar, master, inclusive_min, time_max)
    ]
    for child_id in calendar.children.get(master.resource["id"], set()):
        child = calendar.entries[child_id]
        if not _in_window(calendar, child, inclusive_min, time_max):
            continue
        original = parse_event_time(child.resource.get("originalStartTime"), "originalStartTime")
        out.append((original.start_instant(calendar.tz), child.resource))
    out.sort(key=lambda pair: pair[0])
    return out


def _original_start(query: Query, calendar: Calendar) -> datetime | None:
    raw = single(query, "originalStart")
    if raw is None:
        return None
    if len(raw) == 10:
        return parse_event_time({"date": raw}, "originalStart").start_instant(calendar.tz)
    return parse_query_time(raw, "originalStart")
