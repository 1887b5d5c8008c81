"""Mailboxes, calendars, items and the per-calendar change log, behind one lock.

Every change appends a :class:`LogEntry` (the item's id, the item as it was before, and which
occurrences it touched) to its calendar's log under a global, increasing sequence number. A
delta token is a sequence number; what changed since is a slice of the log found by bisection,
so a call with no changes does constant work.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tests.graph_emulator import fields
from tests.graph_emulator.errors import (
    GraphError,
    bad_request,
    conflict,
    not_found,
    precondition_failed,
)
from tests.graph_emulator.model import (
    Instance,
    Item,
    change_key,
    ical_uid,
    item_id,
    parse_id,
    sort_key,
)
from tests.graph_emulator.recurrence import parse_recurrence
from tests.graph_emulator.times import format_local, parse_local, zone

__all__ = ["Calendar", "LogEntry", "Mailbox", "Store"]

_VIEW_CACHE = 16


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One change: the item before it (None: created), and the occurrences it touched."""

    seq: int
    item_id: str
    before: Item | None
    scope: frozenset[datetime] | None  # None: the whole item
    silent: bool = False
    """A deletion of occurrences that delta never reports (``silent_occurrence_deletes``)."""


@dataclass
class Calendar:
    """A calendar folder: its items (by id, in creation order) and its change log."""

    id: str
    name: str
    owner: str
    is_default: bool
    change_key: str
    item_ids: dict[str, None] = field(default_factory=dict)
    log_seqs: list[int] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)
    views: dict[tuple[datetime, datetime], tuple[int, list[Instance]]] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """The sequence number of the calendar's latest change (0: none)."""
        return self.log_seqs[-1] if self.log_seqs else 0

    def changes_since(self, seq: int) -> list[LogEntry]:
        """The log entries after ``seq``."""
        return self.log[bisect.bisect_right(self.log_seqs, seq) :]

    def json(self) -> dict[str, Any]:
        """The calendar resource."""
        local, _, _ = self.owner.partition("@")
        return {
            "@odata.id": f"calendars('{self.id}')",
            "id": self.id,
            "name": self.name,
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": self.is_default,
            "changeKey": self.change_key,
            "canShare": True,
            "canViewPrivateItems": True,
            "canEdit": True,
            "isRemovable": not self.is_default,
            "isTallyingResponses": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "owner": {"name": local, "address": self.owner},
        }


@dataclass
class Mailbox:
    """One user's calendars and items."""

    user: str
    calendars: dict[str, Calendar] = field(default_factory=dict)
    default_id: str = ""
    items: dict[str, Item] = field(default_factory=dict)
    transactions: dict[str, str] = field(default_factory=dict)


class Store:
    """All mailboxes. Callers hold :attr:`lock` across a read-modify-write."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.mailboxes: dict[str, Mailbox] = {}
        self.seq = 0
        self._counter = 0
        self.silent_occurrence_deletes = False
        """Deleting (or cancelling) one occurrence leaves no trace in delta (Graph's quirk)."""

    # -- mailboxes and calendars -------------------------------------------------------

    def mailbox(self, user: str) -> Mailbox:
        """The mailbox of ``user``; 404 when there is none."""
        found = self.mailboxes.get(user.lower())
        if found is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
        return found

    def add_mailbox(self, user: str) -> str:
        """Make ``user``'s mailbox (with its default calendar "Calendar"); the calendar id."""
        with self.lock:
            existing = self.mailboxes.get(user.lower())
            if existing is not None:
                return existing.default_id
            mailbox = Mailbox(user)
            self.mailboxes[user.lower()] = mailbox
            calendar = self._new_calendar(mailbox, "Calendar", default=True)
            mailbox.default_id = calendar.id
            return calendar.id

    def add_calendar(self, mailbox: Mailbox, name: object) -> Calendar:
        """A new calendar; 409 ``ErrorFolderExists`` when the name is taken."""
        if not isinstance(name, str) or not name.strip():
            raise bad_request("A calendar needs a non-empty 'name'.", "ErrorInvalidParameter")
        with self.lock:
            if any(c.name.lower() == name.lower() for c in mailbox.calendars.values()):
                raise conflict("A folder with the specified name already exists.")
            return self._new_calendar(mailbox, name, default=False)

    def _new_calendar(self, mailbox: Mailbox, name: str, *, default: bool) -> Calendar:
        self.seq += 1
        ident = item_id(f"calendar:{mailbox.user}:{self.seq}")
        calendar = Calendar(ident, name, mailbox.user, default, change_key(ident, self.seq))
        mailbox.calendars[ident] = calendar
        return calendar

    def calendar(self, mailbox: Mailbox, calendar_id: str | None) -> Calendar:
        """A calendar by id (None: the default); 404 when unknown."""
        found = mailbox.calendars.get(calendar_id or mailbox.default_id)
        if found is None:
            raise not_found("calendar")
        return found

    # -- reads -------------------------------------------------------------------------

    def instance(self, mailbox: Mailbox, ident: str, calendar: Calendar | None = None) -> Instance:
        """The item, occurrence or exception with id ``ident``; 404 when there is none."""
        parsed = parse_id(ident)
        item = mailbox.items.get(parsed[0]) if parsed else None
        if parsed is None or item is None or (calendar and item.calendar_id != calendar.id):
            raise not_found()
        original = parsed[1]
        if original is None:
            return Instance(item, None, None)
        found = item.instance_at(original)
        if found is None:
            raise not_found()
        return found

    def view(
        self, mailbox: Mailbox, calendar: Calendar, start: datetime, end: datetime
    ) -> list[Instance]:
        """The instances in the window, in calendar-view order (cached per calendar version)."""
        cached = calendar.views.get((start, end))
        if cached is not None and cached[0] == calendar.version:
            return cached[1]
        found = [
            inst
            for ident in calendar.item_ids
            for inst in mailbox.items[ident].instances(start, end)
        ]
        found.sort(key=sort_key)
        if len(calendar.views) >= _VIEW_CACHE:
            calendar.views.clear()
        calendar.views[(start, end)] = (calendar.version, found)
        return found

    def items(self, mailbox: Mailbox, calendar: Calendar) -> list[Item]:
        """Single events and series masters of a calendar, in creation order."""
        return [mailbox.items[ident] for ident in calendar.item_ids]

    # -- writes ------------------------------------------------------------------------

    def create(
        self, mailbox: Mailbox, calendar: Calendar, body: object, *, privileged: bool
    ) -> tuple[Instance, bool]:
        """Create an event; (instance, created). A repeated transactionId gives the existing one."""
        props = fields.check_write(body, privileged=privileged)
        ext = fields.extended_properties(body)
        with self.lock:
            repeated = self._repeated_transaction(mailbox, props.get("transactionId"))
            if repeated is not None:
                return Instance(repeated, None, None), False
            data = fields.new_event_defaults()
            data["organizer"] = {
                "emailAddress": {"name": mailbox.user.partition("@")[0], "address": mailbox.user}
            }
            data.update(props)
            self._counter += 1
            ident = item_id(f"{mailbox.user}/{self._counter}")
            self.seq += 1
            now = self.clock()
            item = self._build(
                data,
                ident=ident,
                calendar_id=calendar.id,
                key=change_key(ident, self.seq),
                created=now,
                ical=str(data.pop("iCalUId", None) or ical_uid(ident)),
                ext=_merge_ext({}, ext),
            )
            mailbox.items[ident] = item
            calendar.item_ids[ident] = None
            if data.get("transactionId"):
                mailbox.transactions[data["transactionId"]] = ident
            self._log(calendar, ident, None, None)
            return Instance(item, None, None), True

    def _repeated_transaction(self, mailbox: Mailbox, transaction: object) -> Item | None:
        if not isinstance(transaction, str) or not transaction:
            return None
        ident = mailbox.transactions.get(transaction)
        return mailbox.items.get(ident) if ident else None

    def update(
        self,
        mailbox: Mailbox,
        ident: str,
        body: object,
        *,
        privileged: bool,
        if_match: str | None = None,
        calendar: Calendar | None = None,
    ) -> Instance:
        """PATCH: merge the given properties into an item or (making an exception) an occurrence."""
        with self.lock:
            current = self.instance(mailbox, ident, calendar)
            _check_etag(current, if_match)
            props = fields.check_write(
                body, privileged=privileged, previous=dict(current.source.data)
            )
            ext = fields.extended_properties(body)
            transaction = props.pop("transactionId", None)
            if transaction is not None and transaction != current.item.data.get("transactionId"):
                raise bad_request("The transactionId of an event cannot be changed.")
            if current.original_start is None:
                return self._update_item(mailbox, current.item, props, ext)
            return self._update_occurrence(mailbox, current, props, ext)

    def _update_item(
        self, mailbox: Mailbox, item: Item, props: dict[str, Any], ext: list[tuple[str, str]]
    ) -> Instance:
        data = {**item.data, **props}
        if item.recurrence is not None and "start" in props and "recurrence" not in props:
            data["recurrence"] = _range_following_start(item, data)
        self.seq += 1
        new = self._build(
            data,
            ident=item.id,
            calendar_id=item.calendar_id,
            key=change_key(item.id, self.seq),
            created=item.created,
            ical=str(data.pop("iCalUId", item.ical_uid)),
            ext=_merge_ext(item.ext, ext),
        )
        reshaped = any(k in props for k in ("start", "end", "recurrence", "isAllDay"))
        if new.recurrence is not None and not reshaped:
            # Outlook keeps exceptions unless the series' times or pattern change.
            new = replace(new, exceptions=item.exceptions, deleted=item.deleted)
        mailbox.items[item.id] = new
        self._log(mailbox.calendars[item.calendar_id], item.id, item, None)
        return Instance(new, None, None)

    def _update_occurrence(
        self, mailbox: Mailbox, current: Instance, props: dict[str, Any], ext: list[tuple[str, str]]
    ) -> Instance:
        if "recurrence" in props:
            raise bad_request("The recurrence of a single occurrence cannot be set.")
        master, original = current.item, current.original_start
        assert original is not None
        base = current.exception or self._occurrence_item(current)
        data = {**base.data, **props}
        self.seq += 1
        exception = self._build(
            data,
            ident=current.id,
            calendar_id=master.calendar_id,
            key=change_key(current.id, self.seq),
            created=base.created,
            ical=master.ical_uid,
            ext=_merge_ext(base.ext, ext),
        )
        _check_boundaries(master, original, exception)
        new_master = replace(master, exceptions={**master.exceptions, original: exception})
        mailbox.items[master.id] = new_master
        self._log(mailbox.calendars[master.calendar_id], master.id, master, frozenset({original}))
        return Instance(new_master, original, exception)

    def _occurrence_item(self, occurrence: Instance) -> Item:
        """An occurrence as a stand-alone item: the master's data at the occurrence's times."""
        master = occurrence.item
        tz = zone(master.zone_name)
        data = {k: v for k, v in master.data.items() if k not in ("recurrence", "transactionId")}
        data["start"] = {
            "dateTime": format_local(occurrence.start.astimezone(tz)),
            "timeZone": master.zone_name,
        }
        data["end"] = {
            "dateTime": format_local(occurrence.end.astimezone(tz)),
            "timeZone": master.zone_name,
        }
        return replace(master, data=data, recurrence=None, exceptions={}, deleted=frozenset())

    def delete(
        self,
        mailbox: Mailbox,
        ident: str,
        *,
        if_match: str | None = None,
        calendar: Calendar | None = None,
    ) -> None:
        """Delete an item (a master: the whole series) or one occurrence."""
        with self.lock:
            current = self.instance(mailbox, ident, calendar)
            _check_etag(current, if_match)
            item = current.item
            owner = mailbox.calendars[item.calendar_id]
            self.seq += 1
            if current.original_start is None:
                del mailbox.items[item.id]
                del owner.item_ids[item.id]
                transaction = item.data.get("transactionId")
                if transaction:
                    mailbox.transactions.pop(transaction, None)
                self._log(owner, item.id, item, None)
                return
            original = current.original_start
            exceptions = {k: v for k, v in item.exceptions.items() if k != original}
            mailbox.items[item.id] = replace(
                item, exceptions=exceptions, deleted=item.deleted | {original}
            )
            silent = self.silent_occurrence_deletes
            self._log(owner, item.id, item, frozenset({original}), silent=silent)

    def _build(
        self,
        data: dict[str, Any],
        *,
        ident: str,
        calendar_id: str,
        key: str,
        created: datetime,
        ical: str,
        ext: dict[str, tuple[str, str]],
    ) -> Item:
        start, end = _event_times(data)
        recurrence = parse_recurrence(
            data.get("recurrence"),
            data["start"]["timeZone"],
            start.astimezone(zone(data["start"]["timeZone"])).date(),
        )
        data["recurrence"] = recurrence.render() if recurrence else None
        data.pop("iCalUId", None)
        return Item(
            id=ident,
            calendar_id=calendar_id,
            data=data,
            start=start,
            end=end,
            change_key=key,
            created=created,
            modified=self.clock(),
            ical_uid=ical,
            ext=ext,
            recurrence=recurrence,
        )

    def _log(
        self,
        calendar: Calendar,
        ident: str,
        before: Item | None,
        scope: frozenset[datetime] | None,
        *,
        silent: bool = False,
    ) -> None:
        calendar.log_seqs.append(self.seq)
        calendar.log.append(LogEntry(self.seq, ident, before, scope, silent))

    def cancel(self, mailbox: Mailbox, ident: str, *, calendar: Calendar | None = None) -> None:
        """The organizer cancels a meeting (or one occurrence): it leaves the calendar."""
        with self.lock:
            current = self.instance(mailbox, ident, calendar)
            organizer = current.source.data.get("organizer") or {}
            address = organizer.get("emailAddress", {}).get("address", "")
            if address.lower() != mailbox.user.lower():
                raise bad_request(
                    "Your request can't be completed. You need to be an organizer to cancel a "
                    "meeting."
                )
            self.delete(mailbox, ident, calendar=calendar)

    def cancel_for_attendee(self, mailbox: Mailbox, ident: str) -> Instance:
        """The organizer's cancellation as it reaches an attendee's copy."""
        with self.lock:
            current = self.instance(mailbox, ident)
            subject = current.source.data["subject"]
            patch = {"isCancelled": True, "subject": f"Canceled: {subject}"}
            return self.update(mailbox, ident, patch, privileged=True)


def _range_following_start(master: Item, data: dict[str, Any]) -> dict[str, Any]:
    """The master's recurrence with its range's ``startDate`` moved by as many days as the
    master's start moved, so it stays the start's date (Graph: "must be the same value as the
    start property of the recurring event"); the pattern itself is kept."""
    assert master.recurrence is not None
    rendered = master.recurrence.render()
    local = zone(master.recurrence.zone_name)
    new_start, _ = _event_times(dict(data))
    days = new_start.astimezone(local).date() - master.start.astimezone(local).date()
    first = master.recurrence.start_date + days
    return {**rendered, "range": {**rendered["range"], "startDate": first.isoformat()}}


def _merge_ext(old: Any, updates: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    merged = dict(old)
    for prop_id, value in updates:
        merged[prop_id.lower()] = (prop_id, value)
    return merged


def _check_etag(current: Instance, if_match: str | None) -> None:
    if if_match is None or if_match.strip() == "*":
        return
    key = current.item.change_key if current.kind == "occurrence" else current.source.change_key
    offered = if_match.strip()
    if offered.startswith("W/"):
        offered = offered[2:]
    if offered.strip('"') != key:
        raise precondition_failed()


def _check_boundaries(master: Item, original: datetime, exception: Item) -> None:
    """An occurrence may not move onto or past its neighbours' days."""
    previous = next_one = None
    for begin, _ in master.occurrence_starts():
        if begin < original:
            previous = begin
        elif begin > original:
            next_one = begin
            break
    if (previous and exception.start.date() <= previous.date()) or (
        next_one and exception.start.date() >= next_one.date()
    ):
        raise bad_request(
            "The occurrence couldn't be moved because it would overlap or cross an adjacent "
            "occurrence.",
            "ErrorOccurrenceCrossingBoundary",
        )


def _event_times(data: dict[str, Any]) -> tuple[datetime, datetime]:
    """Start and end in UTC; normalizes ``data``'s start/end; 400 when they are wrong."""
    if "start" not in data or "end" not in data:
        raise bad_request("An event needs both 'start' and 'end'.")
    times = []
    for name in ("start", "end"):
        given = data[name]
        tz = zone(given["timeZone"], f"{name}.timeZone")
        local, aware = parse_local(given["dateTime"], f"{name}.dateTime")
        moment = local.astimezone(tz) if aware else local.replace(tzinfo=tz)
        data[name] = {"dateTime": format_local(moment), "timeZone": given["timeZone"]}
        times.append(moment)
    start, end = times
    if end < start:
        raise bad_request(
            "The end time of the event is earlier than its start time.",
            "ErrorCalendarEndDateIsEarlierThanStartDate",
        )
    if data.get("isAllDay") and not _midnights(start, end):
        raise bad_request(
            "If the event is an all-day event, it must start and end at midnight and last "
            "at least one day."
        )
    return start.astimezone(UTC), end.astimezone(UTC)


def _midnights(start: datetime, end: datetime) -> bool:
    def midnight(value: datetime) -> bool:
        return (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)

    return midnight(start) and midnight(end) and end.date() > start.date()
