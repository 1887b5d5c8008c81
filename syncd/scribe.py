"""The writing half of a cycle's policy step: notes with suggestions, booking notes, holds
and annotations, each queued as an outbox row with its ``intended`` audit record."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from syncd.config import Config
from syncd.holds import holds_for, render_hold, stale_holds
from syncd.insights import client_record
from syncd.ledger import LedgerChanges, OutboxRow, verdict_to_json
from syncd.model import Change, ChangeKind, Instance
from syncd.notes import note_href, note_uid, render_booking_note, render_note
from syncd.policy import appointment_clients
from syncd.rebook import BusyIndex, Habits, busy_from_instance, find_slots
from syncd.store import Store, StoredObject
from syncd.verdict import ClientRecord, Deposit, Verdict

__all__ = ["PolicyStep", "Scribe", "write_record"]


@dataclass(slots=True)
class PolicyStep:
    """What the policy step of one cycle decided."""

    ledger: LedgerChanges = field(default_factory=LedgerChanges)
    records: list[dict[str, Any]] = field(default_factory=list)
    _decided: dict[str, Verdict] = field(default_factory=dict)

    def decide(self, verdict: Verdict, record_type: str, **extra: Any) -> None:
        """Keep a new or revised verdict and its audit record."""
        if verdict.key in self._decided:
            index = self.ledger.verdicts.index(self._decided[verdict.key])
            self.ledger.verdicts[index] = verdict
        else:
            self.ledger.verdicts.append(verdict)
        self._decided[verdict.key] = verdict
        record = verdict_to_json(verdict)
        if verdict.notice_hours is not None:  # exact in the ledger, readable in the audit log
            record["notice_hours"] = round(verdict.notice_hours, 2)
        self.records.append({"type": record_type, **record, **extra})

    def queue(self, row: OutboxRow, **extra: Any) -> None:
        """Queue a calendar write and its ``intended`` audit record (with ``extra`` fields)."""
        self.ledger.outbox.append(row)
        self.records.append({**write_record(row, "intended"), **extra})

    def decided(self, key: str) -> Verdict | None:
        """A verdict decided earlier in this cycle."""
        return self._decided.get(key)


class Scribe:
    """Turns decided verdicts into the notes, holds and annotations to write."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.rules = config.rules
        self.zone = config.owner.timezone
        self.owner = frozenset(config.owner.emails)
        self._busy: BusyIndex | None = None
        self._pending: tuple[str, list[StoredObject], list[StoredObject]] = ("", [], [])

    def begin(self, calendar: str, fresh: list[StoredObject], gone: list[StoredObject]) -> None:
        """Start a cycle: this calendar's uncommitted objects count for free/busy."""
        self._busy = None
        self._pending = (calendar, fresh, gone)

    def record(self, client: str, now: datetime, step: PolicyStep) -> ClientRecord:
        stored = {v.key: v for v in self.store.verdicts(client)}
        stored.update({v.key: v for v in step.ledger.verdicts if v.client == client})
        kept = [t for _, t in self.store.kept_starts(client)]
        kept += [k.start for k in step.ledger.kept if k.client == client]
        return client_record(
            client,
            self.rules.name_for(client),
            list(stored.values()),
            kept,
            policy=self.rules.policy_for(client),
            now=now,
            zone=self.zone,
            currency=self.rules.pricing.currency,
        )

    def note(
        self, step: PolicyStep, verdict: Verdict, now: datetime, *, first: bool = False
    ) -> None:
        if self.config.notes_calendar is None:
            return
        record = self.record(verdict.client, now, step)
        slots = self._suggest(verdict, now)
        data = render_note(verdict, record, slots, self.zone, stamp=now).decode("utf-8")
        self.queue_note_text(step, verdict.key, data)
        if first and self.rules.rebooking.holds:
            self._hold(step, verdict, slots, now)

    def _hold(
        self,
        step: PolicyStep,
        verdict: Verdict,
        slots: Sequence[tuple[datetime, datetime]],
        now: datetime,
    ) -> None:
        """Tentative holds over the suggested slots, in the notes calendar."""
        assert self.config.notes_calendar is not None
        for hold in holds_for(verdict, slots):
            step.ledger.holds_set.append(hold)
            data = render_hold(hold, verdict.client_name, now).decode("utf-8")
            row = OutboxRow(
                key=hold.key,
                calendar=self.config.notes_calendar,
                action="note",
                href=hold.href,
                payload={"data": data, "for": verdict.key},
            )
            step.queue(row)

    def withdraw_holds(
        self, step: PolicyStep, changes: Sequence[Change], calendar: str, now: datetime
    ) -> None:
        """Withdraw holds whose client booked again, whose slot was taken, or whose time
        has come; holds of this cycle for a client who also booked again in it are not
        placed at all."""
        if self.config.notes_calendar is None:
            return
        rebooked = {
            client
            for change in changes
            if change.kind in (ChangeKind.CREATED, ChangeKind.MOVED) and change.after
            for client in appointment_clients(change.after, self.owner, self.rules)
        }
        _unplace_holds(step, {h.key for h in step.ledger.holds_set if h.client in rebooked})
        holds = self.store.active_holds()
        if not holds:
            return
        busy = self._busy_index()
        taken = {h.key for h in holds if busy.overlaps(h.start, h.end)}
        for hold, reason in stale_holds(holds, now=now, rebooked=rebooked, taken=taken):
            step.ledger.holds_withdrawn.append(hold.key)
            row = OutboxRow(
                key=f"withdraw-{hold.key}",
                calendar=self.config.notes_calendar,
                action="withdraw",
                href=hold.href,
                payload={"reason": reason},
            )
            step.queue(row, reason=reason)

    def current(self, calendar: str, href: str) -> StoredObject | None:
        """An object as this cycle leaves it: this cycle's fresh copy first, None when this
        cycle removes it, else the stored one."""
        pending, fresh, gone = self._pending
        if calendar == pending:
            for stored in fresh:
                if stored.href == href:
                    return stored
            if any(stored.href == href for stored in gone):
                return None
        return self.store.objects(calendar, [href]).get(href)

    def withdraw_note(self, step: PolicyStep, key: str, reason: str, now: datetime) -> None:
        """Withdraw the note with key ``key``. The write's key is unique per decision: a note
        written again and withdrawn again gets a second withdrawal."""
        if self.config.notes_calendar is None:
            return
        digest = hashlib.sha256(f"withdraw|{key}|{now.isoformat()}".encode()).hexdigest()
        row = OutboxRow(
            key=digest,
            calendar=self.config.notes_calendar,
            action="withdraw",
            href=note_href(key),
            payload={"reason": reason},
        )
        step.queue(row, reason=reason)

    def queue_note_text(self, step: PolicyStep, key: str, data: str) -> None:
        if self.config.notes_calendar is None:
            return
        digest = hashlib.sha256(f"{key}|{data}".encode()).hexdigest()
        row = OutboxRow(
            key=digest,
            calendar=self.config.notes_calendar,
            action="note",
            href=note_href(key),
            payload={"data": data, "for": key},
        )
        step.queue(row)

    def annotate(self, step: PolicyStep, verdict: Verdict, href: str) -> None:
        properties = {"X-SYNCD-VERDICT": verdict.kind.value, "X-SYNCD-NOTE": note_uid(verdict.key)}
        digest = hashlib.sha256(f"annotate|{verdict.key}|{sorted(properties.items())}".encode())
        row = OutboxRow(
            key=digest.hexdigest(),
            calendar=verdict.calendar,
            action="annotate",
            href=href,
            payload={"uid": verdict.uid, "instance": verdict.instance, "properties": properties},
        )
        step.queue(row)

    def booking_note_text(
        self, key: str, client: str, booked: Instance, record: ClientRecord, now: datetime
    ) -> str:
        data = render_booking_note(
            key, record, booked.start, booked.end, booked.summary, self.zone, stamp=now
        )
        return data.decode("utf-8")

    def _suggest(self, verdict: Verdict, now: datetime) -> list[tuple[datetime, datetime]]:
        settings = self.rules.rebooking
        if settings.count <= 0 or not isinstance(verdict.start, datetime):
            return []
        assert isinstance(verdict.end, datetime)
        start, end = verdict.start, verdict.end
        if verdict.deposit is Deposit.PENDING and verdict.deposit_deadline is not None:
            window = verdict.deposit_deadline - start
            search_from, search_until = max(now, start - window), verdict.deposit_deadline
        else:
            search_from = max(now, start - timedelta(days=settings.search_days))
            search_until = search_from + timedelta(days=settings.search_days)
        habits = Habits.from_starts(
            [t for _, t in self.store.kept_starts(verdict.client)], self.zone
        )
        slots = find_slots(
            duration=end - start,
            original_start=start,
            search_from=search_from,
            search_until=search_until,
            busy=self._busy_index(),
            zone=self.zone,
            working_hours=self.config.owner.working_hours,
            buffer=settings.buffer,
            granularity=settings.granularity,
            count=settings.count * 4,
            habits=habits,
        )
        chosen: list[tuple[datetime, datetime]] = []
        for slot in slots:  # best first; suggest distinct times, not three overlapping ones
            if len(chosen) < settings.count and all(
                slot.end <= a or b <= slot.start for a, b in chosen
            ):
                chosen.append((slot.start, slot.end))
        return sorted(chosen)

    def _busy_index(self) -> BusyIndex:
        """Busy time across the watched calendars, with this cycle's own changes applied
        (they are not committed yet)."""
        if self._busy is None:
            watched = [
                c.name for c in self.config.calendars if c.name != self.config.notes_calendar
            ]
            calendar, fresh, gone = self._pending
            skip = {calendar: {o.href for o in (*fresh, *gone)}}
            instances = [
                *self.store.instances_of(watched, skip),
                *(i for o in fresh for i in o.instances),
            ]
            self._busy = BusyIndex(
                busy_from_instance(i.start, i.end, self.zone)
                for i in instances
                if not i.cancelled and not i.transparent
            )
        return self._busy


def _unplace_holds(step: PolicyStep, keys: set[str]) -> None:
    """Take holds decided in this step back before anything is written or audited."""
    if keys:
        step.ledger.holds_set[:] = [h for h in step.ledger.holds_set if h.key not in keys]
        unqueue(step.ledger, step.records, keys)


def unqueue(ledger: LedgerChanges, records: list[dict[str, Any]], keys: Collection[str]) -> None:
    """Take queued writes (outbox rows with these keys) and their audit records back before
    the cycle commits."""
    ledger.outbox[:] = [row for row in ledger.outbox if row.key not in keys]
    records[:] = [r for r in records if r.get("type") != "write" or r.get("key") not in keys]


def write_record(row: OutboxRow, status: str, error: str | None = None) -> dict[str, Any]:
    """The audit record of a calendar write."""
    record: dict[str, Any] = {
        "type": "write",
        "status": status,
        "key": row.key,
        "calendar": row.calendar,
        "action": row.action,
        "href": row.href,
    }
    if error:
        record["error"] = error
    return record
