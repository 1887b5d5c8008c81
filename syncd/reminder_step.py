"""The two reminders inside a cycle's policy step: the readiness check of remote meetings
(a note when one has no link the readiness lead before its start) and the per-client
payment-terms review reminder. Decides only, like :class:`syncd.judge.Judge`."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from syncd.config import Config
from syncd.ledger import OutboxRow, Timer
from syncd.model import Change, Instance, format_when
from syncd.note_event import note_href
from syncd.notes import NoteFeedback
from syncd.policy import appointment_clients, day_start, has_marker
from syncd.reminder_rows import ReadinessNote, Review
from syncd.reminders import (
    has_link,
    is_remote,
    linked_uids,
    readiness_key,
    render_readiness_note,
    render_review_note,
    review_key,
)
from syncd.scribe import PolicyStep, Scribe, write_record
from syncd.store import Store, StoredObject

__all__ = ["READINESS", "Reminders"]

READINESS = "readiness"
"""The kind of a readiness timer."""
_NOTED, _WITHDRAWN = "noted", "withdrawn"


class Reminders:
    """Readiness checks and review reminders for one cycle."""

    def __init__(self, config: Config, store: Store, scribe: Scribe) -> None:
        self.config = config
        self.store = store
        self.scribe = scribe
        self.rules = config.rules
        self.zone = config.owner.timezone
        self.owner = frozenset(config.owner.emails)
        self.enabled = config.notes_calendar is not None
        self._noted_in: dict[str, dict[str, ReadinessNote]] = {}
        self._links: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}

    # --- readiness -------------------------------------------------------------------------

    def seen(
        self,
        step: PolicyStep,
        calendar: str,
        stored: StoredObject,
        instance: Instance,
        client: str,
        now: datetime,
    ) -> None:
        """A client's appointment as it now stands: remember the client, and set, run or
        drop its readiness check (its timers were cleared just before)."""
        step.ledger.reminders.clients_seen.append((client, day_start(instance.start, self.zone)))
        policy = self.rules.policy_for(client)
        start = day_start(instance.start, self.zone)
        if not self.enabled or start <= now:
            return
        if not is_remote(instance, policy):
            self.gone(step, calendar, instance, client, "the appointment is not remote")
            return
        if has_link(instance, self._linked(stored)):
            self.gone(step, calendar, instance, client, "the meeting link was added")
            return
        due = start - policy.readiness_lead
        if due > now:
            self.gone(step, calendar, instance, client, "the appointment moved: checked again")
            rid = _rid(instance)
            step.ledger.timers_set.append(
                Timer(calendar, instance.uid, rid, client, stored.href, due, READINESS)
            )
            return
        self._note(step, calendar, instance, client, now)  # booked at short notice: check now

    def gone(
        self, step: PolicyStep, calendar: str, instance: Instance, client: str, reason: str
    ) -> None:
        """Withdraw the appointment's readiness note, if one stands."""
        key = readiness_key(calendar, instance.uid, _rid(instance), client)
        noted = self._noted(calendar, key)
        if noted is None or noted.status != _NOTED or self.config.notes_calendar is None:
            return
        self._keep(step, replace(noted, status=_WITHDRAWN))
        digest = hashlib.sha256(f"withdraw|{key}|{noted.start.isoformat()}".encode())
        row = OutboxRow(
            key=digest.hexdigest(),
            calendar=self.config.notes_calendar,
            action="withdraw",
            href=note_href(key),
            payload={"reason": reason},
        )
        step.ledger.outbox.append(row)
        step.records.append({**_readiness_record(noted, "withdrawn"), "reason": reason})
        step.records.append({**write_record(row, "intended"), "reason": reason})

    def fire(self, step: PolicyStep, timer: Timer, now: datetime) -> None:
        """A readiness timer is due: note the appointment if it is still remote, still ahead
        and still without a link."""
        step.ledger.timers_fired.append(timer)
        stored = self.store.objects(timer.calendar, [timer.href]).get(timer.href)
        instance = None if stored is None else _find(stored.instances, timer.uid, timer.instance)
        if stored is None or instance is None or instance.cancelled or not self.enabled:
            return
        policy = self.rules.policy_for(timer.client)
        if day_start(instance.start, self.zone) <= now or not is_remote(instance, policy):
            return
        if not has_link(instance, self._linked(stored)):
            self._note(step, timer.calendar, instance, timer.client, now)

    def _note(
        self, step: PolicyStep, calendar: str, instance: Instance, client: str, now: datetime
    ) -> None:
        key = readiness_key(calendar, instance.uid, _rid(instance), client)
        start = day_start(instance.start, self.zone)
        noted = self._noted(calendar, key)
        if noted is not None and noted.status == _NOTED and noted.start == start:
            return  # already said, for this time
        row = ReadinessNote(key, calendar, instance.uid, _rid(instance), client, start, _NOTED)
        self._keep(step, row)
        step.records.append(_readiness_record(row, "no_link"))
        data = render_readiness_note(
            key, instance, client, self.rules.name_for(client), self.zone, stamp=now
        )
        self.scribe.queue_note_text(step, key, data.decode("utf-8"))

    def _linked(self, stored: StoredObject) -> frozenset[tuple[str, str]]:
        """The object's linked components, parsed once per cycle (a series has many
        instances)."""
        cache = (stored.href, stored.content_hash)
        if cache not in self._links:
            self._links[cache] = linked_uids(stored.data)
        return self._links[cache]

    def _noted(self, calendar: str, key: str) -> ReadinessNote | None:
        """The standing readiness note with this key, as this cycle has left it (one query
        per calendar and cycle, not one per appointment)."""
        if calendar not in self._noted_in:
            self._noted_in[calendar] = {r.key: r for r in self.store.readiness_notes(calendar)}
        return self._noted_in[calendar].get(key)

    def _keep(self, step: PolicyStep, row: ReadinessNote) -> None:
        self._noted(row.calendar, row.key)
        self._noted_in[row.calendar][row.key] = row
        step.ledger.reminders.readiness.append(row)

    # --- payment-terms reviews -------------------------------------------------------------

    def remind(
        self, step: PolicyStep, calendar: str, fresh: Sequence[StoredObject], now: datetime
    ) -> None:
        """Put a review reminder over the next appointment of each client whose review is
        due and not yet reminded of; a client with no appointment ahead gets none."""
        due = [r for r in self.store.reviews() if self._due(r, now)]
        if not due or not self.enabled:
            return
        watched = {o.href for o in fresh}
        upcoming = [
            *self.store.instances_of([calendar], {calendar: watched}),
            *(i for o in fresh for i in o.instances),
        ]
        for review in due:
            nxt = self._next(upcoming, review.client, now)
            if nxt is not None:
                self._remind(step, calendar, review, nxt, now)

    def _due(self, review: Review, now: datetime) -> bool:
        every = self.rules.policy_for(review.client).review_every
        return review.reminder_key is None and review.basis + every <= now

    def _next(self, instances: Iterable[Instance], client: str, now: datetime) -> Instance | None:
        ahead = [
            i
            for i in instances
            if not i.cancelled
            and day_start(i.start, self.zone) > now
            and client in appointment_clients(i, self.owner, self.rules)
        ]
        return min(ahead, key=lambda i: day_start(i.start, self.zone), default=None)

    def _remind(
        self, step: PolicyStep, calendar: str, review: Review, nxt: Instance, now: datetime
    ) -> None:
        key = review_key(review.client, review.basis)
        label = "last reviewed" if review.reviewed_at else "client since"
        marker = self.rules.policy_for(review.client).reviewed_markers[:1] or ("reviewed",)
        data = render_review_note(
            key,
            nxt,
            review.client,
            self.rules.name_for(review.client),
            (label, review.basis),
            self.zone,
            stamp=now,
            marker=marker[0],
        )
        step.ledger.reminders.reminded.append((review.client, key, now))
        step.records.append(
            {
                "type": "review_reminder",
                "client": review.client,
                "key": key,
                label.replace(" ", "_"): review.basis.isoformat(),
                "calendar": calendar,
                "uid": nxt.uid,
                "start": format_when(nxt.start),
            }
        )
        self.scribe.queue_note_text(step, key, data.decode("utf-8"))

    def note_feedback(self, step: PolicyStep, feedback: NoteFeedback, now: datetime) -> None:
        """The owner's reviewed marker on an open review reminder records the review."""
        review = next((r for r in self.store.reviews() if r.reminder_key == feedback.key), None)
        if review is None:
            return
        marks = set(feedback.categories) | set(feedback.summary_markers)
        if marks & set(self.rules.policy_for(review.client).reviewed_markers):
            self._reviewed(step, review.client, now, "note")

    def marker_added(self, step: PolicyStep, change: Change, client: str, now: datetime) -> None:
        """The owner's reviewed marker newly on one of the client's appointments."""
        markers = self.rules.policy_for(client).reviewed_markers
        if has_marker(change.after, markers) and not has_marker(change.before, markers):
            self._reviewed(step, client, now, "appointment")

    def _reviewed(self, step: PolicyStep, client: str, now: datetime, where: str) -> None:
        if any(c == client for c, _ in step.ledger.reminders.reviewed):
            return
        step.ledger.reminders.reviewed.append((client, now))
        step.records.append(
            {
                "type": "payment_terms_reviewed",
                "client": client,
                "reviewed_at": now.isoformat(),
                "marked_on": where,
            }
        )


def _rid(instance: Instance) -> str:
    return "" if instance.recurrence_id is None else format_when(instance.recurrence_id)


def _find(instances: Iterable[Instance], uid: str, rid: str) -> Instance | None:
    return next((i for i in instances if i.uid == uid and _rid(i) == rid), None)


def _readiness_record(row: ReadinessNote, outcome: str) -> dict[str, object]:
    return {
        "type": "readiness",
        "outcome": outcome,
        "key": row.key,
        "calendar": row.calendar,
        "uid": row.uid,
        "instance": row.instance or None,
        "client": row.client,
        "start": format_when(row.start),
    }
