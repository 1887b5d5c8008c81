"""One cycle's policy step: verdicts, deposit resolutions, attendance timers, owner feedback,
and the notes and annotations they call for. Decides only: it returns ledger changes, audit
records and outbox rows for the engine to commit in the cycle's one transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from syncd.config import Config
from syncd.ledger import KeptRow, Timer
from syncd.model import Change, ChangeKind, Instance, format_when
from syncd.notes import read_note
from syncd.policy import (
    Appointment,
    PastVerdict,
    appointment_clients,
    attendance_verdict,
    change_verdict,
    day_start,
    has_marker,
    resolve_deposit,
    waive,
    with_actor,
)
from syncd.reminder_step import READINESS, Reminders
from syncd.rules import OwnerPolicy
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
        self.reminders = Reminders(config, store, self.scribe)
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
        step = PolicyStep()
        for change in changes:
            self._judge_change(step, calendar, change, now, changed_at(change), href_of)
        # After every verdict of the cycle: a client may cancel and rebook in one cycle.
        for change in changes:
            if change.kind in (ChangeKind.CREATED, ChangeKind.MOVED) and change.after:
                for appointment in self._appointments(calendar, change.after):
                    self._rebooked(step, appointment.client, change.after, now)
        self._set_timers(step, calendar, fresh, gone, now)
        self._fire_timers(step, calendar, now)
        if fresh or step.ledger.timers_fired:  # a quiet cycle skips the search for reviews
            self.reminders.remind(step, calendar, fresh, now)
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
            self.reminders.note_feedback(step, feedback, now)
            verdict = step.decided(feedback.key) or self.store.verdict(feedback.key)
            if verdict is None:
                continue
            marks = set(feedback.categories) | set(feedback.summary_markers)
            self._apply_feedback(step, verdict, marks, now, "note")
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
                self.reminders.marker_added(step, change, appointment.client, now)

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
        rid = None if booked.recurrence_id is None else format_when(booked.recurrence_id)
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
        rid = None if instance.recurrence_id is None else format_when(instance.recurrence_id)
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
        for stored in gone:
            step.ledger.timers_cleared.extend((calendar, i.uid, _rid(i)) for i in stored.instances)
            self._withdraw(step, calendar, stored.instances, "the appointment was removed")
        for stored in fresh:
            for instance in stored.instances:
                # Cleared first, then set again for the clients still expected (the ledger
                # applies deletions before insertions).
                step.ledger.timers_cleared.append((calendar, instance.uid, _rid(instance)))
                if instance.cancelled:
                    self._withdraw(step, calendar, [instance], "the appointment was cancelled")
                    continue
                for appointment in self._appointments(calendar, instance):
                    if _status_of(instance, appointment.client, self.rules) == "DECLINED":
                        self.reminders.gone(
                            step, calendar, instance, appointment.client, "the client declined"
                        )
                        continue  # a declined appointment was judged as a cancellation
                    self.reminders.seen(step, calendar, stored, instance, appointment.client, now)
                    grace = self.rules.policy_for(appointment.client).no_show_grace
                    due = day_start(instance.end, self.zone) + grace
                    if due <= now:
                        continue  # already judged, or ended before syncd knew it
                    step.ledger.timers_set.append(
                        Timer(
                            calendar,
                            instance.uid,
                            _rid(instance),
                            appointment.client,
                            stored.href,
                            due,
                        )
                    )

    def _fire_timers(self, step: PolicyStep, calendar: str, now: datetime) -> None:
        for timer in self.store.due_timers(now):
            if timer.calendar != calendar:
                continue
            if timer.kind == READINESS:
                self.reminders.fire(step, timer, now)
                continue
            step.ledger.timers_fired.append(timer)
            instance = self._current(calendar, timer)
            if instance is None or instance.cancelled:
                continue
            appointment = Appointment(
                calendar, timer.client, self.rules.name_for(timer.client), instance
            )
            status = _status_of(instance, timer.client, self.rules)
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

    def _withdraw(
        self, step: PolicyStep, calendar: str, instances: Iterable[Instance], reason: str
    ) -> None:
        for instance in instances:
            for appointment in self._appointments(calendar, instance):
                self.reminders.gone(step, calendar, instance, appointment.client, reason)

    def _current(self, calendar: str, timer: Timer) -> Instance | None:
        stored = self.store.objects(calendar, [timer.href]).get(timer.href)
        if stored is None:
            return None
        return next(
            (i for i in stored.instances if i.uid == timer.uid and _rid(i) == timer.instance), None
        )

    def _expire_deposits(self, step: PolicyStep, calendar: str, now: datetime) -> None:
        for pending in self._pending(step):
            if pending.calendar != calendar:
                continue
            resolved = resolve_deposit(pending, rebooked_start=None, now=now, zone=self.zone)
            if resolved is not None:
                self._resolve(step, resolved, now, linked=None)


def _status_of(instance: Instance, client: str, rules: OwnerPolicy) -> str | None:
    """The client's PARTSTAT on an instance (aliases count as the client)."""
    return next(
        (status for email, status in instance.attendees if rules.canonical(email) == client), None
    )


def _rid(instance: Instance) -> str:
    return "" if instance.recurrence_id is None else format_when(instance.recurrence_id)
