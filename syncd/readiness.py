"""The readiness check inside a cycle's policy step: a remote appointment without a meeting
link gets a note the readiness lead before its start (at once when booked later than that),
one note per appointment listing all its clients. A note whose appointment no longer needs it
(link added, no longer remote, moved later, cancelled, declined, excluded, removed) is
withdrawn. Decides only, like :class:`syncd.judge.Judge`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from syncd.config import Config
from syncd.ledger import Timer, TimerKind
from syncd.model import Instance, format_when
from syncd.policy import appointment_clients, client_status, day_start
from syncd.reminder_rows import NoteStatus, ReadinessNote
from syncd.reminders import readiness_key, render_readiness_note
from syncd.remote import has_link, instance_id, is_remote, linked_uids
from syncd.scribe import PolicyStep, Scribe
from syncd.store import Store, StoredObject

__all__ = ["NotesPart", "Readiness", "find_instance"]

_STARTED = "started"
_WAIT = "wait"
_MISSING = "missing"
_FINE = "fine"


@dataclass(frozen=True, slots=True)
class _Assessment:
    """Where one appointment stands: ``started`` (a standing note stays), ``wait`` (check at
    ``due``), ``missing`` (a note is due now), ``fine`` (no note: ``reason``)."""

    outcome: str
    reason: str = ""
    due: datetime | None = None
    clients: tuple[str, ...] = ()


class NotesPart:
    """What a part of the policy step that writes notes needs: the store, the scribe, the
    rules, the owner; ``enabled`` only with a notes calendar to write in."""

    def __init__(self, config: Config, store: Store, scribe: Scribe) -> None:
        self.store = store
        self.scribe = scribe
        self.rules = config.rules
        self.zone = config.owner.timezone
        self.owner = frozenset(config.owner.emails)
        self.enabled = config.notes_calendar is not None


class Readiness(NotesPart):
    """Readiness checks of one calendar's cycle."""

    def __init__(self, config: Config, store: Store, scribe: Scribe) -> None:
        super().__init__(config, store, scribe)
        self._standing: dict[str, dict[str, ReadinessNote]] = {}
        self._links: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}
        self._handled: set[tuple[str, str, str]] = set()

    def check(
        self,
        step: PolicyStep,
        calendar: str,
        objects: Iterable[StoredObject],
        gone: Iterable[StoredObject],
        now: datetime,
    ) -> None:
        """Check the appointments of the objects this cycle brought (set, run or drop their
        timers; their old timers were cleared just before) and withdraw the notes of
        appointments that went."""
        if not self.enabled:
            return
        for stored in gone:
            uids = {i.uid for i in stored.instances}
            for note in self._standing_of(calendar, uids):
                self._withdraw(step, note, "the appointment was removed", now)
        for stored in objects:
            self._check_object(step, calendar, stored, now)

    def _check_object(
        self, step: PolicyStep, calendar: str, stored: StoredObject, now: datetime
    ) -> None:
        live: set[str] = set()
        reasons: dict[str, str] = {}
        for instance in stored.instances:
            rid = instance_id(instance)
            self._handled.add((calendar, instance.uid, rid))
            key = readiness_key(calendar, instance.uid, rid)
            found = self._assess(stored, instance, now)
            if found.outcome == _WAIT:
                assert found.due is not None
                step.ledger.timers_set.append(
                    Timer(
                        calendar, instance.uid, rid, "", stored.href, found.due, TimerKind.READINESS
                    )
                )
                reasons[key] = "the appointment moved: checked again"
            elif found.outcome == _MISSING:
                live.add(key)
                self._note(step, calendar, instance, found.clients, now)
            elif found.outcome == _STARTED:
                live.add(key)  # a started meeting keeps its note
            else:
                reasons[key] = found.reason
        uids = {i.uid for i in stored.instances}
        for note in self._standing_of(calendar, uids):
            if note.key not in live:
                reason = reasons.get(note.key, "the occurrence is no longer in the calendar")
                self._withdraw(step, note, reason, now)

    def fire(self, step: PolicyStep, timer: Timer, now: datetime) -> None:
        """A readiness timer is due: note the appointment if it is still remote, still ahead
        and still without a link. An appointment this cycle already checked is left alone."""
        step.ledger.timers_fired.append(timer)
        if not self.enabled or (timer.calendar, timer.uid, timer.instance) in self._handled:
            return
        stored = self.scribe.current(timer.calendar, timer.href)
        instance = (
            None if stored is None else find_instance(stored.instances, timer.uid, timer.instance)
        )
        if stored is None or instance is None:
            found = _Assessment(_FINE, "the appointment is no longer in the calendar")
        else:
            found = self._assess(stored, instance, now)
        if found.outcome == _MISSING and instance is not None:
            self._note(step, timer.calendar, instance, found.clients, now)
            return
        step.records.append(
            {
                "type": "readiness",
                "outcome": "checked",
                "calendar": timer.calendar,
                "uid": timer.uid,
                "instance": timer.instance or None,
                "result": found.reason or found.outcome,
            }
        )

    def _assess(self, stored: StoredObject, instance: Instance, now: datetime) -> _Assessment:
        if instance.cancelled:
            return _Assessment(_FINE, "the appointment was cancelled")
        clients = tuple(
            c
            for c in appointment_clients(instance, self.owner, self.rules)
            if client_status(instance, c, self.rules) != "DECLINED"
        )
        if not clients:
            return _Assessment(_FINE, "no client is expected")
        start = day_start(instance.start, self.zone)
        if start <= now:
            return _Assessment(_STARTED)
        policies = [self.rules.policy_for(c) for c in clients]
        if not any(is_remote(instance, p) for p in policies):
            return _Assessment(_FINE, "the appointment is not remote")
        hosts = {h for p in policies for h in p.meeting_link_hosts}
        if has_link(instance, self._linked(stored), hosts):
            return _Assessment(_FINE, "the meeting link was added")
        due = start - max(p.readiness_lead for p in policies)
        if due > now:
            return _Assessment(_WAIT, due=due)
        return _Assessment(_MISSING, clients=clients)

    def _note(
        self,
        step: PolicyStep,
        calendar: str,
        instance: Instance,
        clients: Sequence[str],
        now: datetime,
    ) -> None:
        rid = instance_id(instance)
        key = readiness_key(calendar, instance.uid, rid)
        start = day_start(instance.start, self.zone)
        joined = ",".join(clients)
        noted = self._standing_in(calendar).get(key)
        if noted is not None and noted.start == start and noted.clients == joined:
            return  # already said, for this time and these clients
        row = ReadinessNote(key, calendar, instance.uid, rid, joined, start, NoteStatus.NOTED)
        self._keep(step, row)
        step.records.append(_record(row, "no_link"))
        lead = max(self.rules.policy_for(c).readiness_lead for c in clients)
        named = [(c, self.rules.name_for(c)) for c in clients]
        data = render_readiness_note(key, instance, named, self.zone, lead=lead, stamp=now)
        self.scribe.queue_note_text(step, key, data.decode("utf-8"))

    def _withdraw(self, step: PolicyStep, note: ReadinessNote, reason: str, now: datetime) -> None:
        self._keep(step, replace(note, status=NoteStatus.WITHDRAWN))
        step.records.append({**_record(note, "withdrawn"), "reason": reason})
        self.scribe.withdraw_note(step, note.key, reason, now)

    def _linked(self, stored: StoredObject) -> frozenset[tuple[str, str]]:
        """The object's linked components, parsed once per cycle (a series has many
        instances)."""
        cache = (stored.href, stored.content_hash)
        if cache not in self._links:
            self._links[cache] = linked_uids(stored.data, self.zone)
        return self._links[cache]

    def _standing_in(self, calendar: str) -> dict[str, ReadinessNote]:
        """The calendar's standing notes as this cycle has left them (one query per calendar
        and cycle)."""
        if calendar not in self._standing:
            self._standing[calendar] = {n.key: n for n in self.store.readiness_notes(calendar)}
        return self._standing[calendar]

    def _standing_of(self, calendar: str, uids: set[str]) -> list[ReadinessNote]:
        return [
            n
            for n in self._standing_in(calendar).values()
            if n.uid in uids and n.status is NoteStatus.NOTED
        ]

    def _keep(self, step: PolicyStep, row: ReadinessNote) -> None:
        self._standing_in(row.calendar)[row.key] = row
        step.ledger.reminders.readiness.append(row)


def find_instance(instances: Iterable[Instance], uid: str, rid: str) -> Instance | None:
    """The instance with this UID and recurrence id (``""`` for a single event)."""
    return next((i for i in instances if i.uid == uid and instance_id(i) == rid), None)


def _record(row: ReadinessNote, outcome: str) -> dict[str, object]:
    return {
        "type": "readiness",
        "outcome": outcome,
        "key": row.key,
        "calendar": row.calendar,
        "uid": row.uid,
        "instance": row.instance or None,
        "clients": row.clients.split(","),
        "start": format_when(row.start),
    }
