"""The ledger: verdicts, kept appointments, attendance timers and the outbox, in the store.

SQL lives here and runs on the store's connection inside its transactions, so one cycle's
verdicts, timers and outbox rows commit together with its snapshot and cursor.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from syncd.holds import HOLD_MIGRATION, Hold
from syncd.model import format_optional, format_when, parse_when
from syncd.money import Money
from syncd.reminder_rows import ReminderChanges, apply_reminders
from syncd.verdict import Actor, Deposit, Verdict, VerdictKind

__all__ = [
    "LEDGER_MIGRATION",
    "KeptRow",
    "LedgerChanges",
    "OutboxRow",
    "Timer",
    "TimerKind",
    "apply_ledger",
    "verdict_from_json",
    "verdict_to_json",
]

LEDGER_MIGRATION: tuple[str, ...] = (
    "CREATE TABLE verdicts ("
    " key TEXT PRIMARY KEY, calendar TEXT NOT NULL, uid TEXT NOT NULL, instance TEXT,"
    " client TEXT NOT NULL, kind TEXT NOT NULL, decided_at TEXT NOT NULL, start TEXT NOT NULL,"
    " waived INTEGER NOT NULL, deposit TEXT, deposit_deadline TEXT, payload TEXT NOT NULL)",
    "CREATE INDEX verdicts_client ON verdicts (client, decided_at)",
    "CREATE INDEX verdicts_deposit ON verdicts (deposit, deposit_deadline)",
    "CREATE TABLE timers ("
    " calendar TEXT NOT NULL, uid TEXT NOT NULL, instance TEXT NOT NULL, client TEXT NOT NULL,"
    " href TEXT NOT NULL, due TEXT NOT NULL, PRIMARY KEY (calendar, uid, instance, client))",
    "CREATE INDEX timers_due ON timers (due)",
    "CREATE TABLE kept ("
    " calendar TEXT NOT NULL, uid TEXT NOT NULL, instance TEXT NOT NULL, client TEXT NOT NULL,"
    " start TEXT NOT NULL, PRIMARY KEY (calendar, uid, instance, client))",
    "CREATE INDEX kept_client ON kept (client, start)",
    "CREATE TABLE outbox ("
    " key TEXT PRIMARY KEY, seq INTEGER NOT NULL, calendar TEXT NOT NULL, action TEXT NOT NULL,"
    " href TEXT NOT NULL, payload TEXT NOT NULL, status TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL)",
    "CREATE INDEX outbox_status ON outbox (status, seq)",
    *HOLD_MIGRATION,
)


class TimerKind(StrEnum):
    """What a timer checks."""

    ATTENDANCE = "attendance"
    """Once the appointment has ended plus the no-show grace: was it kept?"""
    READINESS = "readiness"
    """The readiness lead before a remote meeting: does it have its link?"""


@dataclass(frozen=True, slots=True)
class Timer:
    """Check an appointment at ``due``: ``attendance`` once it has ended plus the no-show
    grace, ``readiness`` (a remote meeting's link) the readiness lead before its start."""

    calendar: str
    uid: str
    instance: str  # "" for a single event
    client: str
    href: str
    due: datetime
    kind: TimerKind = TimerKind.ATTENDANCE


@dataclass(frozen=True, slots=True)
class KeptRow:
    """An appointment the client kept."""

    calendar: str
    uid: str
    instance: str
    client: str
    start: datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One intended calendar write: ``action`` is ``note`` (create or update a note at
    ``href``) or ``annotate`` (syncd's private properties on the original event)."""

    key: str
    calendar: str
    action: str
    href: str
    payload: dict[str, Any]
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class LedgerChanges:
    """What one cycle adds to the ledger; committed with the cycle."""

    verdicts: list[Verdict] = field(default_factory=list)
    timers_set: list[Timer] = field(default_factory=list)
    timers_cleared: list[tuple[str, str, str]] = field(default_factory=list)
    timers_fired: list[Timer] = field(default_factory=list)
    kept: list[KeptRow] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    holds_set: list[Hold] = field(default_factory=list)
    holds_withdrawn: list[str] = field(default_factory=list)
    reminders: ReminderChanges = field(default_factory=ReminderChanges)

    def __bool__(self) -> bool:
        return any(
            (
                self.verdicts,
                self.timers_set,
                self.timers_cleared,
                self.kept,
                self.outbox,
                self.holds_set,
                self.holds_withdrawn,
                self.timers_fired,
                self.reminders,
            )
        )


def _money(value: Money | None) -> dict[str, str] | None:
    return None if value is None else value.to_json()


def verdict_to_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as the audit log and the ledger carry it."""
    return {
        "key": verdict.key,
        "verdict": verdict.kind.value,
        "calendar": verdict.calendar,
        "uid": verdict.uid,
        "instance": verdict.instance,
        "client": verdict.client,
        "client_name": verdict.client_name,
        "start": format_optional(verdict.start),
        "end": format_optional(verdict.end),
        "new_start": format_optional(verdict.new_start),
        "summary": verdict.summary,
        "decided_at": format_optional(verdict.decided_at),
        "notice_hours": verdict.notice_hours,
        "actor": verdict.actor.value,
        "actor_evidence": verdict.actor_evidence,
        "fee": _money(verdict.fee),
        "deposit": verdict.deposit.value if verdict.deposit else None,
        "deposit_amount": _money(verdict.deposit_amount),
        "deposit_deadline": format_optional(verdict.deposit_deadline),
        "waived": verdict.waived,
        "waive_reason": verdict.waive_reason,
        "rule": verdict.rule,
        "important": verdict.important,
        "remote": verdict.remote,
    }


def _money_from(value: dict[str, str] | None) -> Money | None:
    return None if value is None else Money(Decimal(value["amount"]), value["currency"])


def verdict_from_json(data: dict[str, Any]) -> Verdict:
    """Inverse of :func:`verdict_to_json`."""

    def when(key: str) -> Any:
        return parse_when(data[key]) if data.get(key) else None

    return Verdict(
        key=data["key"],
        kind=VerdictKind(data["verdict"]),
        calendar=data["calendar"],
        uid=data["uid"],
        instance=data["instance"],
        client=data["client"],
        client_name=data["client_name"],
        start=when("start"),
        end=when("end"),
        new_start=when("new_start"),
        summary=data["summary"],
        decided_at=when("decided_at"),
        notice_hours=data["notice_hours"],
        actor=Actor(data["actor"]),
        actor_evidence=data["actor_evidence"],
        fee=_money_from(data["fee"]),
        deposit=Deposit(data["deposit"]) if data["deposit"] else None,
        deposit_amount=_money_from(data["deposit_amount"]),
        deposit_deadline=when("deposit_deadline"),
        waived=data["waived"],
        waive_reason=data["waive_reason"],
        rule=data["rule"],
        important=data["important"],
        remote=data["remote"],
    )


def apply_ledger(db: sqlite3.Connection, changes: LedgerChanges, at: datetime) -> None:
    """Write one cycle's ledger changes (inside the caller's transaction)."""
    db.executemany(
        "INSERT INTO verdicts (key, calendar, uid, instance, client, kind, decided_at, start,"
        " waived, deposit, deposit_deadline, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET kind = excluded.kind, waived = excluded.waived,"
        " deposit = excluded.deposit, deposit_deadline = excluded.deposit_deadline,"
        " payload = excluded.payload",
        [_verdict_row(v) for v in changes.verdicts],
    )
    db.executemany(
        "DELETE FROM timers WHERE calendar = ? AND uid = ? AND instance = ?",
        changes.timers_cleared,
    )
    db.executemany(
        "DELETE FROM timers WHERE calendar = ? AND uid = ? AND instance = ? AND client = ?"
        " AND kind = ?",
        [(t.calendar, t.uid, t.instance, t.client, t.kind.value) for t in changes.timers_fired],
    )
    db.executemany(
        "INSERT INTO timers (calendar, uid, instance, client, kind, href, due)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (calendar, uid, instance, client, kind)"
        " DO UPDATE SET href = excluded.href, due = excluded.due",
        [
            (t.calendar, t.uid, t.instance, t.client, t.kind.value, t.href, t.due.isoformat())
            for t in changes.timers_set
        ],
    )
    apply_reminders(db, changes.reminders)
    db.executemany(
        "INSERT INTO kept (calendar, uid, instance, client, start) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (calendar, uid, instance, client) DO NOTHING",
        [(k.calendar, k.uid, k.instance, k.client, k.start.isoformat()) for k in changes.kept],
    )
    db.executemany(
        "INSERT INTO holds (key, verdict_key, client, href, start, end_at, until, status)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'active') ON CONFLICT (key) DO NOTHING",
        [
            (
                h.key,
                h.verdict_key,
                h.client,
                h.href,
                h.start.isoformat(),
                h.end.isoformat(),
                h.until.isoformat(),
            )
            for h in changes.holds_set
        ],
    )
    db.executemany(
        "UPDATE holds SET status = 'withdrawn' WHERE key = ?",
        [(key,) for key in changes.holds_withdrawn],
    )
    start = db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0]
    db.executemany(
        "INSERT INTO outbox (key, seq, calendar, action, href, payload, status, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (key) DO NOTHING",
        [
            (
                o.key,
                start + i + 1,
                o.calendar,
                o.action,
                o.href,
                json.dumps(o.payload),
                at.isoformat(),
                at.isoformat(),
            )
            for i, o in enumerate(changes.outbox)
        ],
    )


def _verdict_row(v: Verdict) -> tuple[Any, ...]:
    return (
        v.key,
        v.calendar,
        v.uid,
        v.instance,
        v.client,
        v.kind.value,
        v.decided_at.isoformat(),
        format_when(v.start),
        int(v.waived),
        v.deposit.value if v.deposit else None,
        v.deposit_deadline.isoformat() if v.deposit_deadline else None,
        json.dumps(verdict_to_json(v)),
    )


def verdict_rows(rows: Sequence[Sequence[Any]]) -> list[Verdict]:
    """Decode ``payload`` columns into verdicts."""
    return [verdict_from_json(json.loads(r[0])) for r in rows]


def outbox_rows(rows: Sequence[Sequence[Any]]) -> list[OutboxRow]:
    """Decode outbox rows (key, calendar, action, href, payload, status, attempts, error)."""
    return [
        OutboxRow(
            key=r[0],
            calendar=r[1],
            action=r[2],
            href=r[3],
            payload=json.loads(r[4]),
            status=r[5],
            attempts=r[6],
            last_error=r[7],
        )
        for r in rows
    ]
