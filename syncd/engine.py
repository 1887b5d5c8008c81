"""One cycle for one calendar: list, normalize, diff, then audit and commit in one step.

Decide, then do: :func:`plan_cycle`-style helpers compute the new snapshot rows and the audit
records; :meth:`Engine.cycle` seals the records into the audit log and commits the snapshot,
the cursor and the audit anchor in one transaction, in that order. If the audit log cannot be
written nothing is committed; if the process dies after the append, :meth:`Engine.recover`
drops the uncommitted tail on the next start and the cycle is redone.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from syncd.audit import AuditLog, seal
from syncd.config import Config
from syncd.connector import Connector, Delta
from syncd.diff import diff
from syncd.errors import CursorExpired
from syncd.faults import crash_point
from syncd.judge import Judge
from syncd.model import Change, Instance, InstanceKey, format_optional, format_when
from syncd.normalize import Horizon, Normalized, ParseError, normalize_object
from syncd.outbox import Outcome, drain
from syncd.policy import appointment_clients
from syncd.reviews import drop_claimed
from syncd.scribe import PolicyStep, write_record
from syncd.store import CalendarState, CycleCommit, ItemErrorRow, Store, StoredObject
from syncd.verdict import Verdict

__all__ = ["MASS_REMOVAL_SHARE", "CycleReport", "Engine"]

MASS_REMOVAL_SHARE = 0.5
"""A listing that drops more than this share of known objects is confirmed by a second one."""
_MASS_REMOVAL_MIN = 10

log = structlog.get_logger("syncd.engine")


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle of one calendar found and committed."""

    calendar: str
    baseline: bool
    changes: tuple[Change, ...]
    new_errors: tuple[ItemErrorRow, ...]
    verdicts: tuple[Verdict, ...]
    instance_count: int
    read: int
    removed: int
    resynced: bool


@dataclass(slots=True)
class _Work:
    """The objects one cycle touches, and what it learned about them."""

    state: CalendarState
    horizon: Horizon
    stored: dict[str, StoredObject]
    errors: dict[str, ItemErrorRow]
    fresh: dict[str, StoredObject] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    etag_updates: list[tuple[str, str]] = field(default_factory=list)
    new_errors: list[ItemErrorRow] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    late_baseline: set[str] = field(default_factory=set)
    """Objects unreadable since the first cycle, now read: part of the baseline, not new."""


class Engine:
    """Runs cycles for the configured calendars against one store and one audit log."""

    def __init__(
        self,
        config: Config,
        store: Store,
        audit: AuditLog,
        connectors: Mapping[str, Connector],
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.store = store
        self.audit = audit
        self.connectors = connectors
        self.clock = clock
        self._commit_lock = threading.RLock()
        self._drain_lock = threading.Lock()

    def recover(self) -> list[int]:
        """Drop audit records of a cycle that never committed; record that it happened."""
        with self._commit_lock:
            dropped = self.audit.recover(self.store.audit_anchor())
            if dropped:
                log.warning("audit.recovered", dropped_seqs=dropped)
                self._append_and_commit(
                    [
                        {
                            "type": "recovery",
                            "dropped_seqs": dropped,
                            "reason": "records of a cycle that did not commit",
                        }
                    ],
                    self.clock(),
                    None,
                )
        return dropped

    def cycle(self, name: str) -> CycleReport:
        """Run one cycle of calendar ``name``; raises ``ConnectorError``, ``AuditError``,
        ``StoreError``, and commits nothing when it raises."""
        connector = self.connectors[name]
        now = self.clock()
        state = self.store.calendar_state(name)
        horizon = Horizon.around(
            now, self.config.daemon.horizon_past, self.config.daemon.horizon_future
        )
        known = self.store.known_etags(name)
        delta, resynced = self._list(
            name, connector, state.cursor, known, (horizon.start, horizon.end)
        )
        work = self._gather(name, state, horizon, delta, known)
        crash_point("after-fetch")
        window = horizon if state.horizon is None else horizon.intersect(Horizon(*state.horizon))
        baseline = state.baseline_at is None
        old, new = self._instances(name, work)
        notes = name == self.config.notes_calendar
        changes = () if baseline or notes else tuple(diff(old, new, window))
        count = (
            state.instance_count
            + _count(work.fresh.values())
            - _count(
                work.stored[h] for h in set(work.fresh) | set(work.removed) if h in work.stored
            )
        )
        step = self._policy(name, work, changes, now, notes)
        records = self._records(name, work, changes, now, baseline and not notes, count, resynced)
        records.extend(step.records)
        commit = CycleCommit(
            calendar=name,
            at=now,
            cursor=_next_cursor(delta, state.cursor, resynced),
            horizon=(horizon.start, horizon.end),
            upserts=list(work.fresh.values()),
            etag_updates=work.etag_updates,
            removed=work.removed,
            errors=work.new_errors,
            cleared_errors=work.cleared,
            baseline=baseline,
            ledger=step.ledger,
        )
        self._append_and_commit(records, now, commit)
        crash_point("after-cycle-commit")
        self.drain()
        for change in changes:
            log.info("change", calendar=name, change=change.kind.value, uid=change.uid)
        return CycleReport(
            calendar=name,
            baseline=baseline,
            changes=changes,
            new_errors=tuple(work.new_errors),
            verdicts=tuple(step.ledger.verdicts),
            instance_count=count,
            read=len(delta.upserts),
            removed=len(work.removed),
            resynced=resynced,
        )

    def _policy(
        self, name: str, work: _Work, changes: Sequence[Change], now: datetime, notes: bool
    ) -> PolicyStep:
        if notes:
            return Judge(self.config, self.store).on_notes(work.fresh.values(), now)
        owners = {i.uid: o.href for o in work.fresh.values() for i in o.instances}
        gone = [work.stored[h] for h in work.removed if h in work.stored]
        # A Judge per cycle: it holds the cycle's free/busy view, and cycles of different
        # calendars may run on different threads.
        return Judge(self.config, self.store).on_changes(
            name,
            changes,
            work.fresh.values(),
            gone,
            now,
            changed_at=lambda change: _changed_at(change, now),
            href_of=owners.get,
        )

    def drain(self) -> None:
        """Perform the pending calendar writes; each outcome is audited and recorded. One
        drain at a time: a cycle finishing while another drains leaves its rows to it."""
        if not self._drain_lock.acquire(blocking=False):
            return
        try:
            attempted: set[str] = set()  # a row left pending waits for the next drain
            while rows := [r for r in self.store.outbox("pending") if r.key not in attempted]:
                attempted.update(r.key for r in rows)
                drain(rows, self.connectors, self._finish_writes)
        finally:
            self._drain_lock.release()

    def _finish_writes(self, outcomes: list[Outcome]) -> None:
        """Audit a batch of write outcomes and record them with the anchor, in one step."""
        records = []
        for row, status, error in outcomes:
            record = write_record(row, "applied" if status == "done" else "failed", error)
            if status == "pending":
                record["retry"] = True
            records.append(record)
        with self._commit_lock:
            now = self.clock()
            sealed, anchor = seal(records, self.store.audit_anchor(), now)
            self.audit.append(sealed)
            crash_point("after-write-audit")
            self.store.finish_writes(
                [(row.key, status, error) for row, status, error in outcomes], now, anchor
            )

    def _list(
        self,
        name: str,
        connector: Connector,
        cursor: str | None,
        known: Mapping[str, str],
        horizon: tuple[datetime, datetime],
    ) -> tuple[Delta, bool]:
        resynced = False
        try:
            delta = connector.list_changes(cursor, known, horizon=horizon)
        except CursorExpired as expired:
            log.warning("cursor.expired", calendar=name, reason=str(expired))
            delta, resynced = connector.list_changes(None, known, horizon=horizon), True
        return (
            self._confirm_removals(connector, _as_removals(delta, known), known, horizon),
            resynced,
        )

    @staticmethod
    def _confirm_removals(
        connector: Connector,
        delta: Delta,
        known: Mapping[str, str],
        horizon: tuple[datetime, datetime],
    ) -> Delta:
        """Invariant: an unusual share of vanished objects is confirmed by a second listing."""
        if len(known) < _MASS_REMOVAL_MIN or len(delta.removed) <= len(known) * MASS_REMOVAL_SHARE:
            return delta
        second = _as_removals(connector.list_changes(None, known, horizon=horizon), known)
        confirmed = sorted(set(delta.removed) & set(second.removed))
        log.warning("removals.confirmed", listed=len(delta.removed), confirmed=len(confirmed))
        return Delta(
            upserts=delta.upserts,
            removed=confirmed,
            cursor=delta.cursor,
            full=False,
            failures=delta.failures,
        )

    def _gather(
        self,
        name: str,
        state: CalendarState,
        horizon: Horizon,
        delta: Delta,
        known: Mapping[str, str],
    ) -> _Work:
        hrefs = [o.href for o in delta.upserts] + list(delta.removed)
        work = _Work(
            state=state,
            horizon=horizon,
            stored=self.store.objects(name, hrefs),
            errors=self.store.item_errors(name),
        )
        for remote in delta.upserts:
            self._take(work, remote.href, remote.etag, remote.data)
        for failure in delta.failures:
            if work.errors.get(failure.href, ItemErrorRow("", "", "")).etag != failure.etag:
                work.new_errors.append(ItemErrorRow(failure.href, failure.etag, failure.reason))
        for href in delta.removed:
            if href in work.stored:
                work.removed.append(href)
            if href in work.errors:
                work.cleared.append(href)
        if state.horizon is not None and state.horizon != (horizon.start, horizon.end):
            self._reexpand(name, work)
        return work

    def _take(self, work: _Work, href: str, etag: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        stored = work.stored.get(href)
        if href in work.errors:
            work.cleared.append(href)
        if stored is not None and stored.content_hash == digest:
            work.etag_updates.append((href, etag))
            return
        parsed = self._normalize(href, data, work.horizon)
        if isinstance(parsed, str):
            if href in work.cleared:
                work.cleared.remove(href)
            work.new_errors.append(ItemErrorRow(href, etag, parsed))
            return
        if href not in work.stored and work.errors.get(href, _NO_ERROR).at_baseline:
            work.late_baseline.add(href)
        work.fresh[href] = StoredObject(
            href=href,
            etag=etag,
            content_hash=digest,
            data=data.decode("utf-8"),
            recurring=parsed.recurring,
            instances=parsed.instances,
        )

    def _normalize(self, href: str, data: bytes, horizon: Horizon) -> Normalized | str:
        """The object's instances, or the reason it cannot be read (one bad file never stops
        the calendar)."""
        try:
            data.decode("utf-8")
            return normalize_object(data, horizon=horizon, owner_tz=self.config.owner.timezone)
        except UnicodeDecodeError:
            return "not UTF-8 text"
        except ParseError as error:
            return str(error)
        except Exception as error:
            log.error("item.unexpected", href=href, error=type(error).__name__, exc_info=True)
            return f"cannot read this calendar object ({type(error).__name__})"

    def _reexpand(self, name: str, work: _Work) -> None:
        """The horizon moved: expand every unchanged series again inside the new horizon."""
        for stored in self.store.recurring_objects(name):
            if stored.href in work.fresh or stored.href in work.removed:
                continue
            parsed = self._normalize(stored.href, stored.data.encode("utf-8"), work.horizon)
            if isinstance(parsed, str):
                # Keep its last instances; name the file once, as for any other bad file.
                if stored.href not in work.errors:
                    work.new_errors.append(ItemErrorRow(stored.href, stored.etag, parsed))
                continue
            work.stored[stored.href] = stored
            work.fresh[stored.href] = replace(stored, instances=parsed.instances)

    def _instances(
        self, name: str, work: _Work
    ) -> tuple[dict[InstanceKey, Instance], dict[InstanceKey, Instance]]:
        """Old and new instances of the touched objects, plus the unchanged objects that hold
        the same UIDs (a UID copied into a second file is then no creation, and removing the
        copy no cancellation)."""
        touched = set(work.fresh) | set(work.removed)
        before = [i for h in touched if h in work.stored for i in work.stored[h].instances]
        after = [i for o in work.fresh.values() for i in o.instances]
        uids = {i.uid for i in (*before, *after)}
        others = self.store.objects_with_uids(name, uids) if uids else {}
        same = [i for h, o in others.items() if h not in touched for i in o.instances]
        same += [i for h in work.late_baseline for i in work.fresh[h].instances]
        return _keyed((*same, *before)), _keyed((*same, *after))

    def _records(
        self,
        name: str,
        work: _Work,
        changes: Sequence[Change],
        now: datetime,
        baseline: bool,
        count: int,
        resynced: bool,
    ) -> list[dict[str, object]]:
        records: list[dict[str, object]] = []
        if resynced:
            records.append({"type": "resync", "calendar": name, "reason": "cursor expired"})
        if baseline:
            records.append({"type": "baseline", "calendar": name, "instances": count})
        records.extend(self._change_record(name, c, now) for c in changes)
        for error in work.new_errors:
            log.error("item.invalid", calendar=name, href=error.href, reason=error.reason)
            records.append(
                {"type": "item_error", "calendar": name, "href": error.href, "reason": error.reason}
            )
        return records

    def _change_record(self, name: str, change: Change, now: datetime) -> dict[str, object]:
        changed_at = _changed_at(change, now)
        subject = change.after or change.before
        assert subject is not None
        clients = appointment_clients(
            subject, frozenset(self.config.owner.emails), self.config.rules
        )
        return {
            "type": "change",
            "change": change.kind.value,
            "calendar": name,
            "uid": change.uid,
            "instance": format_optional(change.recurrence_id),
            "start_before": format_optional(change.start_before),
            "start_after": format_optional(change.start_after),
            "changed_at": format_when(changed_at),
            "clients": clients,
        }

    def _append_and_commit(
        self, records: list[dict[str, object]], now: datetime, commit: CycleCommit | None
    ) -> None:
        with self._commit_lock:
            if commit is not None and commit.ledger and commit.ledger.reminders.reminded:
                # Two calendars' cycles must not both remind: the first to commit wins.
                clients = {r.client for r in commit.ledger.reminders.reminded}
                drop_claimed(self.store.claimed_reviews(clients), commit.ledger, records)
            anchor = self.store.audit_anchor()
            sealed, new_anchor = seal(records, anchor, now)
            if sealed:
                self.audit.append(sealed)
            crash_point("after-audit-append")
            if commit is None:
                self.store.commit_anchor(new_anchor)
                return
            self.store.commit_cycle(commit, new_anchor)


def _as_removals(delta: Delta, known: Mapping[str, str]) -> Delta:
    """Turn a full listing into a delta: what it lacks of the snapshot is removed (a merge)."""
    if not delta.full:
        return delta
    listed = {o.href for o in delta.upserts} | {f.href for f in delta.failures}
    removed = sorted(set(known) - listed)
    return Delta(
        upserts=delta.upserts,
        removed=removed,
        cursor=delta.cursor,
        full=False,
        failures=delta.failures,
    )


_NO_ERROR = ItemErrorRow("", "", "")


def _next_cursor(delta: Delta, previous: str | None, resynced: bool) -> str | None:
    """The cursor to store. A listing with items that could not be fetched keeps the previous
    cursor, so the next listing offers them again (a change-feed cursor would otherwise move
    past them for good); after an expired cursor that means a full listing again. Items whose
    content is malformed (``lasting``) do not hold it back: they stay item errors until the
    feed reports them with a new etag."""
    if all(failure.lasting for failure in delta.failures):
        return delta.cursor
    return None if resynced else previous


def _changed_at(change: Change, now: datetime) -> datetime:
    """The provider's modification time of the change when known, else detection time."""
    after = change.after
    return after.modified if after is not None and after.modified else now


def _count(objects: Iterable[StoredObject]) -> int:
    return sum(len(o.instances) for o in objects)


def _keyed(instances: Iterable[Instance]) -> dict[InstanceKey, Instance]:
    return {i.key: i for i in instances}
