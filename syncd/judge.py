"""One cycle's policy step: verdicts, deposit resolutions, attendance timers, owner feedback,
and the notes and annotations they call for. Decides only: it returns ledger changes, audit
records and outbox rows for the engine to commit in the cycle's one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from syncd.config import Config
from syncd.ledger import KeptRow, Timer, TimerKind
from syncd.model import Change, ChangeKind, Instance, format_when
from syncd.notes import read_note
from syncd.policy import (
    Appointment,
    PastVerdict,
    appointment_clients,
    attendance_verdict,
    change_verdict,
    client_status,
    day_start,
    has_marker,
    resolve_deposit,
    waive,
    with_actor,
)
from syncd.readiness import Readiness, find_instance
from syncd.remote import instance_id
from syncd.reviews import Reviews
from syncd.scribe import PolicyStep, Scribe
from syncd.store import Store, StoredObject
from syncd.verdict import Actor, Deposit, Verdict

__all__ = ["Judge"]

_INFER_NO_SHOW = ("NEEDS-ACTION", "DECLINED")
_OWNER_ANSWERS = {"client": Actor.CLIENT, "me": Actor.OWNER, "owner": Actor.OWNER}


class Judge:
    """Applies the owner's policy to one calendar's cycle."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.rules = config.rules
        self.zone = config.owner.timezone
        self.owner = frozenset(config.owner.emails)
        self.scribe = Scribe(config, store)
        self.readiness = Readiness(config, store, self.scribe)
        self.reviews = Reviews(config, store, self.scribe)
        self._stored_pending: list[Verdict] | None = None

    # --- entry points ----------------------------------------------------------------------

    def on_changes(
        self,
        calendar: str,
        changes: Sequence[Change],
        fresh: Iterable[StoredObject],
        gone: Iterable[StoredObject],
        now: datetime,
        changed_at: Callable[[Change], datetime],
        href_of: Callable[[str], str | None],
    ) -> PolicyStep:
        """Judge a watched calendar's changes, fire its due timers and deposit deadlines."""
        fresh, gone = list(fresh), list(gone)
        self.scribe.begin(calendar, fresh, gone)
        self.reviews.begin(calendar, fresh, gone)
        step = PolicyStep()
        for change in changes:
            self._judge_change(step, calendar, change, now, changed_at(change), href_of)
        # After every verdict of the cycle: a client may cancel and rebook in one cycle.
        for change in changes:
            if change.kind in (ChangeKind.CREATED, ChangeKind.MOVED) and change.after:
                for appointment in self._appointments(calendar, change.after):
                    self._rebooked(step, appointment.client, change.after, now)
        self._set_timers(step, calendar, fresh, gone, now)
        self._reminders(step, calendar, fresh, gone, now)
        self._fire_timers(step, calendar, now)
        if fresh or gone or step.ledger.timers_fired:  # a quiet cycle skips reviews
            self.reviews.follow(step, now)
            self.reviews.remind(step, now)
        self._expire_deposits(step, calendar, now)
        self.scribe.withdraw_holds(step, changes, calendar, now)
        return step

    def on_notes(self, notes: Iterable[StoredObject], now: datetime) -> PolicyStep:
        """Read the owner's markers on syncd's notes: waive, or answer who made a change."""
        self.scribe.begin("", [], [])
        step = PolicyStep()
        for note in notes:
            feedback = read_note(note.data.encode("utf-8"))
            if feedback is None:
                continue
            self.reviews.note_feedback(step, feedback, now)
            verdict = step.decided(feedback.key) or self.store.verdict(feedback.key)
            if verdict is None:
                continue
            self._apply_feedback(step, verdict, feedback.marks, now, "note")
        return step

    # --- changes ---------------------------------------------------------------------------

    def _appointments(self, calendar: str, instance: Instance) -> list[Appointment]:
        return [
            Appointment(calendar, client, self.rules.name_for(client), instance)
            for client in appointment_clients(instance, self.owner, self.rules)
        ]

    def _judge_change(
        self,
        step: PolicyStep,
        calendar: str,
        change: Change,
        now: datetime,
        changed_at: datetime,
        href_of: Callable[[str], str | None],
    ) -> None:
        subject = change.before or change.after
        assert subject is not None
        for appointment in self._appointments(calendar, subject):
            history = self._history(appointment.client)
            verdict = change_verdict(
                change,
                appointment,
                rules=self.rules,
                zone=self.zone,
                changed_at=changed_at,
                now=now,
                history=history,
            )
            if verdict is not None and self._is_new(step, verdict.key):
                self._issue(step, verdict, now, href_of(change.uid))
            if change.kind is ChangeKind.CREATED and change.after:
                self._flagged_booking(step, calendar, appointment.client, change.after, now)
            if change.kind is ChangeKind.TAGS_CHANGED and change.after:
                self._markers_changed(step, calendar, appointment.client, change.after, now)
                self.reviews.marker_added(step, change, appointment.client, now)

    def _is_new(self, step: PolicyStep, key: str) -> bool:
        return step.decided(key) is None and self.store.verdict(key) is None

    def _history(self, client: str) -> list[PastVerdict]:
        return [
            PastVerdict(v.kind, v.decided_at, v.waived, v.waive_reason)
            for v in self.store.verdicts(client)
        ]

    def _issue(self, step: PolicyStep, verdict: Verdict, now: datetime, href: str | None) -> None:
        step.decide(verdict, "verdict")
        self.scribe.note(step, verdict, now, first=True)
        if href is not None and self.config.notes_calendar is not None:
            self.scribe.annotate(step, verdict, href)

    def _rebooked(self, step: PolicyStep, client: str, booked: Instance, now: datetime) -> None:
        """A client's new (or moved) appointment may resolve their pending deposits."""
        for pending in self._pending(step, client):
            resolved = resolve_deposit(
                pending, rebooked_start=booked.start, now=now, zone=self.zone
            )
            if resolved is not None:
                self._resolve(step, resolved, now, linked=booked)

    def _pending(self, step: PolicyStep, client: str | None = None) -> list[Verdict]:
        """Deposits pending now: the store's, as this step has left them, and this step's."""
        if self._stored_pending is None:
            self._stored_pending = self.store.pending_deposits()
        found = {v.key: step.decided(v.key) or v for v in self._stored_pending}
        found.update((v.key, v) for v in step.ledger.verdicts)
        return [
            v
            for v in found.values()
            if v.deposit is Deposit.PENDING and (client is None or v.client == client)
        ]

    def _resolve(
        self, step: PolicyStep, verdict: Verdict, now: datetime, linked: Instance | None
    ) -> None:
        link = None if linked is None else {"uid": linked.uid, "start": format_when(linked.start)}
        step.decide(
            verdict,
            "resolution",
            resolution=verdict.deposit.value if verdict.deposit else None,
            linked=link,
        )
        self.scribe.note(step, verdict, now)

    def _flagged_booking(
        self, step: PolicyStep, calendar: str, client: str, booked: Instance, now: datetime
    ) -> None:
        record = self.scribe.record(client, now, step)
        if not record.flags and not record.require_deposit:
            return
        rid = instance_id(booked) or None
        key = hashlib.sha256(f"booking|{calendar}|{booked.uid}|{rid}".encode()).hexdigest()
        step.records.append(
            {
                "type": "booking_flagged",
                "calendar": calendar,
                "uid": booked.uid,
                "instance": rid,
                "client": client,
                "flags": [f.code for f in record.flags],
            }
        )
        self.scribe.queue_note_text(
            step, key, self.scribe.booking_note_text(key, client, booked, record, now)
        )

    def _markers_changed(
        self, step: PolicyStep, calendar: str, client: str, instance: Instance, now: datetime
    ) -> None:
        """Markers on the appointment itself: a no-show or attended mark on an ended
        appointment decides at once; a waive mark waives its existing verdicts."""
        appointment = Appointment(calendar, client, self.rules.name_for(client), instance)
        verdict = attendance_verdict(
            appointment, rules=self.rules, now=now, zone=self.zone, inferred=False
        )
        if verdict is not None:
            existing = step.decided(verdict.key) or self.store.verdict(verdict.key)
            if existing is None:
                self._issue(step, verdict, now, None)
            elif existing.kind != verdict.kind:  # the owner changed their mark
                step.decide(verdict, "verdict_revised", reason="the owner changed the mark")
                self.scribe.note(step, verdict, now)
        policy = self.rules.policy_for(client)
        mark = has_marker(instance, policy.waive_markers)
        if mark:
            for existing in self._verdicts_of(calendar, instance, client, step):
                self._apply_feedback(step, existing, {mark}, now, "event")

    def _verdicts_of(
        self, calendar: str, instance: Instance, client: str, step: PolicyStep
    ) -> list[Verdict]:
        rid = instance_id(instance) or None
        found = [
            v
            for v in self.store.verdicts(client)
            if v.calendar == calendar and v.uid == instance.uid and v.instance == rid
        ]
        return [step.decided(v.key) or v for v in found]

    # --- owner feedback --------------------------------------------------------------------

    def _apply_feedback(
        self, step: PolicyStep, verdict: Verdict, marks: set[str], now: datetime, where: str
    ) -> None:
        policy = self.rules.policy_for(verdict.client)
        answer = next((_OWNER_ANSWERS[m] for m in marks if m in _OWNER_ANSWERS), None)
        revised = verdict
        if answer is not None and verdict.actor is Actor.UNKNOWN:
            revised = with_actor(
                verdict,
                answer,
                f"the owner answered on the {where}",
                rules=self.rules,
                zone=self.zone,
                history=self._history(verdict.client),
            )
            step.decide(revised, "verdict_revised", reason=f"owner answered '{answer.value}'")
        waiver = next((m for m in policy.waive_markers if m in marks), None)
        if (
            waiver
            and not revised.waived
            and (revised.fee is not None or revised.deposit is Deposit.FORFEITED)
        ):
            revised = waive(revised, f"the owner marked '{waiver}' on the {where}")
            step.decide(revised, "waiver")
        if revised is not verdict:
            self.scribe.note(step, revised, now)

    # --- timers ----------------------------------------------------------------------------

    def _set_timers(
        self,
        step: PolicyStep,
        calendar: str,
        fresh: Iterable[StoredObject],
        gone: Iterable[StoredObject],
        now: datetime,
    ) -> None:
        """Attendance timers of the appointments this cycle brought."""
        for stored in gone:
            step.ledger.timers_cleared.extend(
                (calendar, i.uid, instance_id(i)) for i in stored.instances
            )
        for stored in fresh:
            for instance in stored.instances:
                # Cleared first, then set again for the clients still expected (the ledger
                # applies deletions before insertions).
                step.ledger.timers_cleared.append((calendar, instance.uid, instance_id(instance)))
                if instance.cancelled:
                    continue
                for appointment in self._appointments(calendar, instance):
                    if client_status(instance, appointment.client, self.rules) == "DECLINED":
                        continue  # a declined appointment was judged as a cancellation
                    grace = self.rules.policy_for(appointment.client).no_show_grace
                    due = day_start(instance.end, self.zone) + grace
                    if due <= now:
                        continue  # already judged, or ended before syncd knew it
                    step.ledger.timers_set.append(
                        Timer(
                            calendar,
                            instance.uid,
                            instance_id(instance),
                            appointment.client,
                            stored.href,
                            due,
                        )
                    )

    def _reminders(
        self,
        step: PolicyStep,
        calendar: str,
        fresh: list[StoredObject],
        gone: list[StoredObject],
        now: datetime,
    ) -> None:
        """Readiness checks and review clocks of the appointments this cycle brought; once
        after an upgrade, of every stored appointment of the calendar."""
        objects = list(fresh)
        if self.store.rearm_pending(calendar):
            handled = {o.href for o in (*fresh, *gone)}
            objects += [o for o in self.store.all_objects(calendar) if o.href not in handled]
            step.ledger.reminders.rearmed = calendar
        self.readiness.check(step, calendar, objects, gone, now)
        self.reviews.see(step, objects)
        self.reviews.audit_since(step)

    def _fire_timers(self, step: PolicyStep, calendar: str, now: datetime) -> None:
        for timer in self.store.due_timers(now):
            if timer.calendar != calendar:
                continue
            if timer.kind is TimerKind.READINESS:
                self.readiness.fire(step, timer, now)
                continue
            step.ledger.timers_fired.append(timer)
            instance = self._current(calendar, timer)
            if instance is None or instance.cancelled:
                continue
            appointment = Appointment(
                calendar, timer.client, self.rules.name_for(timer.client), instance
            )
            status = client_status(instance, timer.client, self.rules)
            verdict = attendance_verdict(
                appointment,
                rules=self.rules,
                now=now,
                zone=self.zone,
                inferred=status in _INFER_NO_SHOW,
            )
            if verdict is None or verdict.kind.value == "attended":
                step.ledger.kept.append(
                    KeptRow(
                        calendar,
                        timer.uid,
                        timer.instance,
                        timer.client,
                        day_start(instance.start, self.zone),
                    )
                )
            if verdict is not None and self._is_new(step, verdict.key):
                self._issue(step, verdict, now, None)

    def _current(self, calendar: str, timer: Timer) -> Instance | None:
        stored = self.scribe.current(calendar, timer.href)
        return (
            None if stored is None else find_instance(stored.instances, timer.uid, timer.instance)
        )

    def _expire_deposits(self, step: PolicyStep, calendar: str, now: datetime) -> None:
        for pending in self._pending(step):
            if pending.calendar != calendar:
                continue
            resolved = resolve_deposit(pending, rebooked_start=None, now=now, zone=self.zone)
            if resolved is not None:
                self._resolve(step, resolved, now, linked=None)
