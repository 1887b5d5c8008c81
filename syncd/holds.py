"""Tentative holds: the suggested rebooking slots, kept for a client in the notes calendar.

A hold is a tentative event over one suggested slot. It is withdrawn when the client books
again, when something else takes the slot, or when the slot or the rebooking window has
passed. Holds live only in the owner's notes calendar and carry no attendees.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event

from syncd.verdict import Verdict

__all__ = [
    "HOLD_MIGRATION",
    "Hold",
    "hold_href",
    "hold_key",
    "holds_for",
    "render_hold",
    "stale_holds",
]

HOLD_MIGRATION: tuple[str, ...] = (
    "CREATE TABLE holds ("
    " key TEXT PRIMARY KEY, verdict_key TEXT NOT NULL, client TEXT NOT NULL,"
    " href TEXT NOT NULL, start TEXT NOT NULL, end_at TEXT NOT NULL, until TEXT NOT NULL,"
    " status TEXT NOT NULL)",
    "CREATE INDEX holds_status ON holds (status, client)",
)


@dataclass(frozen=True, slots=True)
class Hold:
    """One tentative hold of a suggested slot for a client."""

    key: str
    verdict_key: str
    client: str
    href: str
    start: datetime
    end: datetime
    until: datetime
    """When the hold lapses by itself: the slot's start or the rebooking deadline."""


def hold_key(verdict_key: str, start: datetime) -> str:
    """The deterministic key of a hold: the verdict and the slot."""
    return hashlib.sha256(f"hold|{verdict_key}|{start.isoformat()}".encode()).hexdigest()


def hold_href(key: str) -> str:
    """The deterministic file name of a hold in the notes calendar."""
    return f"syncd-hold-{key[:40]}.ics"


def holds_for(verdict: Verdict, slots: Sequence[tuple[datetime, datetime]]) -> list[Hold]:
    """Holds for the slots suggested to a verdict's client."""
    found = []
    for start, end in slots:
        key = hold_key(verdict.key, start)
        until = min(start, verdict.deposit_deadline) if verdict.deposit_deadline else start
        found.append(Hold(key, verdict.key, verdict.client, hold_href(key), start, end, until))
    return found


def render_hold(hold: Hold, client_name: str, stamp: datetime) -> bytes:
    """The hold as a tentative, private event without attendees or alarms."""
    event = Event()
    event.add("UID", f"syncd-hold-{hold.key[:40]}@syncd")
    event.add("DTSTAMP", stamp.astimezone(UTC))
    event.add("DTSTART", hold.start.astimezone(UTC))
    event.add("DTEND", hold.end.astimezone(UTC))
    event.add("SUMMARY", f"Hold · {client_name} · rebooking suggestion")
    event.add(
        "DESCRIPTION",
        "Kept free for a rebooking suggested by syncd. It is withdrawn "
        "when the client books, the slot is taken or the window ends.",
    )
    event.add("STATUS", "TENTATIVE")
    event.add("TRANSP", "OPAQUE")
    event.add("CLASS", "PRIVATE")
    event.add("X-SYNCD-HOLD-FOR", hold.verdict_key)
    calendar = Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", "-//syncd//holds//EN")
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


def stale_holds(
    holds: Iterable[Hold], *, now: datetime, rebooked: set[str], taken: set[str]
) -> list[tuple[Hold, str]]:
    """Holds to withdraw, each with the reason: the client booked again (``rebooked`` holds
    client emails), the slot was taken (``taken`` holds hold keys), or its time has come."""
    found = []
    for hold in holds:
        if hold.client in rebooked:
            found.append((hold, "the client booked again"))
        elif hold.key in taken:
            found.append((hold, "the slot was taken"))
        elif hold.until <= now:
            found.append((hold, "the window ended"))
    return found
