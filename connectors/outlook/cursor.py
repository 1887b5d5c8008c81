"""The Outlook cursor and the window its delta link covers.

A ``calendarView/delta`` round is bound to the window it started with, so the cursor keeps the
window next to the whole delta link. The engine's horizon moves a day at a time; a round
covers the horizon plus :data:`SLACK` ahead, so a new round (a full listing the engine merges)
is needed only when the horizon's end passes the round's end. ``fp`` fingerprints what the
link was made for (service root, mailbox, configured calendar, code version): a cursor issued
for anything else is expired. ``cal`` is the resolved calendar id, so an incremental listing
after a restart needs no lookup of the calendar.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeGuard

from syncd.connector import cursor_fields

__all__ = [
    "CODE_VERSION",
    "DEFAULT_FUTURE",
    "DEFAULT_PAST",
    "MODE",
    "SLACK",
    "Cursor",
    "describe",
    "effective_horizon",
    "fingerprint",
    "parse_cursor",
    "window_for",
]

CODE_VERSION = 2
"""Bumped when what a listing returns changes shape: older cursors then start a new round.
2: occurrences carry their series start and their etags name their series; the new round it
starts also brings CONFERENCE (a Teams or Skype join link, read since a4958c7) to items listed
before it."""
SLACK = timedelta(days=14)
"""How far past the horizon's end a round reaches, so the daily horizon step rarely needs a
new round."""
DEFAULT_PAST = timedelta(days=30)
DEFAULT_FUTURE = timedelta(days=180)
MODE = "delta link"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where change tracking of one calendar stands."""

    link: str
    """The whole ``@odata.deltaLink`` of the last round."""
    start: datetime
    end: datetime
    fp: str
    calendar: str

    def text(self) -> str:
        """The opaque text the engine stores."""
        return json.dumps(
            {
                "v": 1,
                "link": self.link,
                "start": _iso(self.start),
                "end": _iso(self.end),
                "fp": self.fp,
                "cal": self.calendar,
            },
            separators=(",", ":"),
        )

    def covers(self, window: tuple[datetime, datetime]) -> bool:
        """Whether this round's window holds all of ``window`` (a horizon)."""
        return self.start <= window[0] and window[1] <= self.end


def parse_cursor(text: str) -> Cursor | None:
    """The cursor in ``text``, or None if it is not a readable Outlook cursor."""
    data = cursor_fields(text)
    if data is None:
        return None
    link, fp, calendar = data.get("link"), data.get("fp"), data.get("cal")
    if not (_text(link) and _text(fp) and _text(calendar)):
        return None
    start, end = _parse_iso(data.get("start")), _parse_iso(data.get("end"))
    if start is None or end is None or end <= start:
        return None
    return Cursor(link=link, start=start, end=end, fp=fp, calendar=calendar)


def fingerprint(graph_url: str, mailbox: str, calendar: str | None) -> str:
    """What a delta link is bound to, hashed: the service, the mailbox, the configured
    calendar (name or id, or the default one) and :data:`CODE_VERSION`."""
    parts = [graph_url.rstrip("/").lower(), mailbox.lower(), calendar or "", str(CODE_VERSION)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def effective_horizon(
    horizon: tuple[datetime, datetime] | None, now: datetime
) -> tuple[datetime, datetime]:
    """The engine's horizon in UTC, or without one 30 days back to 180 ahead from midnight."""
    if horizon is None:
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        return today - DEFAULT_PAST, today + DEFAULT_FUTURE
    return horizon[0].astimezone(UTC), horizon[1].astimezone(UTC)


def window_for(horizon: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    """The window of a new round: the horizon with :data:`SLACK` added to its end."""
    return horizon[0], horizon[1] + SLACK


def describe(text: str | None) -> str | None:
    """A line for ``syncd status``: how this cursor tracks changes."""
    return None if text is None or parse_cursor(text) is None else MODE


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if moment.tzinfo is None else moment.astimezone(UTC)
