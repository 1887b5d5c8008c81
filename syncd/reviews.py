"""The payment-terms review reminder inside a cycle's policy step. When a client's last review
(never reviewed: their first appointment syncd saw) is ``review_every`` ago, a reminder note
stands over their next appointment on any watched calendar; it follows that appointment (moved,
or over the next one when it is cancelled or removed, withdrawn when none is ahead) and is
withdrawn once the owner marks ``reviewed`` on it or on one of the client's appointments,
which records the review and restarts the clock. Decides only."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from syncd.config import Config
from syncd.ledger import LedgerChanges
from syncd.model import Change, Instance, format_when
from syncd.notes import NoteFeedback
from syncd.policy import appointment_clients, client_status, day_start, has_marker
from syncd.readiness import NotesPart, find_instance
from syncd.reminder_rows import Reminded, Review, ReviewPlace
from syncd.reminders import render_review_note, review_key
from syncd.remote import instance_id
from syncd.scribe import PolicyStep, Scribe, unqueue
from syncd.store import Store, StoredObject

__all__ = ["Reviews", "drop_claimed"]


class Reviews(NotesPart):
    """Review reminders of one calendar's cycle."""

    def __init__(self, config: Config, store: Store, scribe: Scribe) -> None:
        super().__init__(config, store, scribe)
        self.watched = tuple(c.name for c in config.calendars if c.name != config.notes_calendar)
        self._fresh: tuple[str, list[StoredObject], list[StoredObject]] = ("", [], [])

    def begin(self, calendar: str, fresh: list[StoredObject], gone: list[StoredObject]) -> None:
        """Start a cycle: this calendar's uncommitted objects count as its appointments."""
        self._fresh = (calendar, fresh, gone)

    # --- who is a client since when --------------------------------------------------------

    def see(self, step: PolicyStep, objects: Iterable[StoredObject]) -> None:
        """Remember each client's earliest appointment among ``objects``."""
        for stored in objects:
            for instance in stored.instances:
                if instance.cancelled:
                    continue
                start = day_start(instance.start, self.zone)
                for client in appointment_clients(instance, self.owner, self.rules):
                    step.ledger.reminders.see(client, start)

    def audit_since(self, step: PolicyStep) -> None:
        """One record per client whose review start date moves earlier this cycle."""
        seen = step.ledger.reminders.clients_seen
        if not seen:
            return
        for client, review in self.store.reviews_of(seen).items():
            if seen[client] < review.since:
                step.records.append(
                    {
                        "type": "review_since",
                        "client": client,
                        "since": seen[client].isoformat(),
                        "was": review.since.isoformat(),
                    }
                )

    # --- reminding -------------------------------------------------------------------------

    def remind(self, step: PolicyStep, now: datetime) -> None:
        """Put a reminder over the next appointment of each client whose review is due and
        not yet reminded of; a client with no appointment ahead gets none."""
        if not self.enabled:
            return
        shortest = min(
            (
                self.rules.policy.review_every,
                *(c.policy.review_every for c in self.rules.clients if c.policy),
            ),
        )
        for review in self.store.due_reviews(now - shortest):
            if review.basis + self.rules.policy_for(review.client).review_every > now:
                continue
            found = self._next(review.client, now)
            if found is not None:
                self._place(step, review, found[0], found[1], now, claim=True)

    def follow(self, step: PolicyStep, now: datetime) -> None:
        """Open reminders over an appointment this cycle changed or removed follow it: to its
        new time, else to the client's next appointment, else they are withdrawn."""
        calendar, fresh, gone = self._fresh
        uids = {i.uid for o in (*fresh, *gone) for i in o.instances}
        if not self.enabled or not uids:
            return
        current = [i for o in fresh for i in o.instances]
        for review in self.store.reviews_over(calendar, uids):
            if review.place is None or review.reminder_key is None:
                continue  # the query selects open reminders with a place only
            there = find_instance(current, review.place.uid, review.place.instance)
            if there is not None and self._ahead(there, review.client, now):
                if format_when(there.start) != review.place.start:
                    self._place(step, review, calendar, there, now, claim=False)
                continue
            found = self._next(review.client, now)
            if found is not None:
                self._place(step, review, found[0], found[1], now, claim=False)
                continue
            reason = "no appointment ahead to stand over"
            step.ledger.reminders.unreminded.append(review.client)
            step.records.append(_record("review_withdrawn", review, reason=reason))
            self.scribe.withdraw_note(step, review.reminder_key, reason, now)

    def _place(
        self,
        step: PolicyStep,
        review: Review,
        calendar: str,
        nxt: Instance,
        now: datetime,
        *,
        claim: bool,
    ) -> None:
        key = review.reminder_key or review_key(review.client, review.basis)
        kind = "last reviewed" if review.reviewed_at else "client since"
        marker = self.rules.policy_for(review.client).reviewed_markers[0]
        data = render_review_note(
            key,
            nxt,
            review.client,
            self.rules.name_for(review.client),
            (kind, review.basis),
            self.zone,
            stamp=now,
            marker=marker,
        )
        place = ReviewPlace(calendar, nxt.uid, instance_id(nxt), format_when(nxt.start))
        step.ledger.reminders.reminded.append(Reminded(review.client, key, now, place, claim))
        step.records.append(
            {
                **_record("review_reminder" if claim else "review_moved", review),
                "key": key,
                "basis": review.basis.isoformat(),
                "basis_kind": kind.replace(" ", "_"),
                "calendar": calendar,
                "uid": nxt.uid,
                "instance": place.instance or None,
                "start": place.start,
            }
        )
        self.scribe.queue_note_text(step, key, data.decode("utf-8"))

    def _next(self, client: str, now: datetime) -> tuple[str, Instance] | None:
        """The client's next appointment on any watched calendar, with this cycle's changes
        applied: an indexed query, decoding only the objects it names."""
        calendar, fresh, gone = self._fresh
        found = [(calendar, i) for o in fresh for i in o.instances if self._ahead(i, client, now)]
        known = self.rules.client(client)
        emails = {client, *(a.lower() for a in (known.aliases if known else ()))}
        skip = {calendar: {o.href for o in (*fresh, *gone)}}
        for name, href, uid, rid in self.store.next_appointments(emails, now, self.watched, skip):
            stored = self.store.objects(name, [href]).get(href)
            instance = None if stored is None else find_instance(stored.instances, uid, rid)
            if instance is not None and self._ahead(instance, client, now):
                found.append((name, instance))
                break
        return min(found, key=lambda f: day_start(f[1].start, self.zone), default=None)

    def _ahead(self, instance: Instance, client: str, now: datetime) -> bool:
        return (
            not instance.cancelled
            and day_start(instance.start, self.zone) > now
            and client in appointment_clients(instance, self.owner, self.rules)
            and client_status(instance, client, self.rules) != "DECLINED"
        )

    # --- the owner's review ----------------------------------------------------------------

    def note_feedback(self, step: PolicyStep, feedback: NoteFeedback, now: datetime) -> None:
        """The owner's reviewed marker on an open review reminder records the review."""
        review = self.store.review_by_key(feedback.key)
        if review is None:
            return
        if feedback.marks & set(self.rules.policy_for(review.client).reviewed_markers):
            self._reviewed(step, review, now, "note")

    def marker_added(self, step: PolicyStep, change: Change, client: str, now: datetime) -> None:
        """The owner's reviewed marker newly on one of the client's appointments."""
        markers = self.rules.policy_for(client).reviewed_markers
        if has_marker(change.after, markers) and not has_marker(change.before, markers):
            review = self.store.reviews_of([client]).get(client) or Review(client, now)
            self._reviewed(step, review, now, "appointment")

    def _reviewed(self, step: PolicyStep, review: Review, now: datetime, where: str) -> None:
        if any(c == review.client for c, _ in step.ledger.reminders.reviewed):
            return
        step.ledger.reminders.reviewed.append((review.client, now))
        step.records.append(
            {
                **_record("payment_terms_reviewed", review),
                "reviewed_at": now.isoformat(),
                "marked_on": where,
            }
        )
        if review.reminder_key is not None:
            self.scribe.withdraw_note(step, review.reminder_key, "the terms were reviewed", now)


def _record(kind: str, review: Review, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "client": review.client, **extra}


def drop_claimed(claimed: set[str], ledger: LedgerChanges, records: list[dict[str, Any]]) -> None:
    """Leave out of a cycle's commit the new reminders of clients another cycle reminded
    first (checked under the engine's commit lock; the transaction checks again)."""
    dropped = [r for r in ledger.reminders.reminded if r.claim and r.client in claimed]
    if not dropped:
        return
    keys = {r.key for r in dropped}
    ledger.reminders.reminded[:] = [r for r in ledger.reminders.reminded if r not in dropped]
    unqueue(ledger, records, {o.key for o in ledger.outbox if o.payload.get("for") in keys})
    records[:] = [
        r for r in records if not (r.get("type") == "review_reminder" and r.get("key") in keys)
    ]
