"""``calendarView/delta``: rounds of pages, skip and delta tokens, what changed since a token.

A round's entries are computed once when it starts (under the store lock) and served page by
page; its ``@odata.deltaLink`` carries the global sequence number at that moment, so changes
made while a client pages through arrive in the next round. Tokens are self-contained (user,
calendar, window, sequence, generation), so an unchanged calendar answers in constant time;
:meth:`DeltaState.expire` bumps the generation and every older token is ``410``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.graph_emulator.errors import GraphError, bad_request, sync_state_not_found
from tests.graph_emulator.model import Instance, Item, occurrence_id, overlaps, sort_key
from tests.graph_emulator.store import Calendar, Mailbox

__all__ = ["DeltaState", "Entry", "Round", "Token"]

_UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search")
_ROUNDS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Entry:
    """One delta item: a full event, or a removal of ``removed``."""

    instance: Instance | None
    removed: str | None = None
    updated: bool = False
    """An instance the previous round already listed (may be served partial)."""


@dataclass(frozen=True, slots=True)
class Token:
    """What a delta token stands for."""

    user: str
    calendar_id: str
    start: datetime
    end: datetime
    seq: int


@dataclass
class Round:
    """A round being paged through."""

    id: int
    token: Token  # the round's deltaLink
    entries: list[Entry]


def _encode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(value: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise sync_state_not_found() from None
    if not isinstance(payload, dict):
        raise sync_state_not_found()
    return payload


class DeltaState:
    """Token generation, rounds in progress and the page knobs (replay, empty page)."""

    def __init__(self) -> None:
        self.generation = 1
        self.replays = 0
        self.empty_pages = 0
        self.partial = False
        self._rounds: OrderedDict[int, Round] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add_replays(self, times: int) -> None:
        """The next ``times`` pages served lead back to themselves (each is served twice)."""
        with self._lock:
            self.replays += times

    def add_empty_pages(self, times: int) -> None:
        """The next ``times`` pages served are empty, with a nextLink to the real one."""
        with self._lock:
            self.empty_pages += times

    def expire(self) -> None:
        """Every delta and skip token issued so far becomes unknown (410)."""
        with self._lock:
            self.generation += 1
            self._rounds.clear()

    # -- tokens --------------------------------------------------------------------------

    def delta_token(self, token: Token) -> str:
        """The ``$deltatoken`` for ``token``."""
        return _encode(
            {
                "g": self.generation,
                "u": token.user,
                "c": token.calendar_id,
                "s": token.start.isoformat(),
                "e": token.end.isoformat(),
                "q": token.seq,
            }
        )

    def read_delta_token(self, value: str) -> Token:
        """The token behind ``$deltatoken``; 410 when unknown or expired."""
        payload = _decode(value)
        if payload.get("g") != self.generation:
            raise sync_state_not_found()
        try:
            return Token(
                user=str(payload["u"]),
                calendar_id=str(payload["c"]),
                start=datetime.fromisoformat(str(payload["s"])).astimezone(UTC),
                end=datetime.fromisoformat(str(payload["e"])).astimezone(UTC),
                seq=int(payload["q"]),
            )
        except (KeyError, TypeError, ValueError):
            raise sync_state_not_found() from None

    def skip_token(self, round_: Round, offset: int) -> str:
        """The ``$skiptoken`` for the page of ``round_`` at ``offset``."""
        return _encode({"g": self.generation, "r": round_.id, "o": offset})

    def read_skip_token(self, value: str) -> tuple[Round, int]:
        """(round, offset) behind ``$skiptoken``; 410 when unknown or expired."""
        payload = _decode(value)
        with self._lock:
            found = (
                self._rounds.get(payload.get("r", -1))
                if payload.get("g") == self.generation
                else None
            )
        offset = payload.get("o")
        if found is None or not isinstance(offset, int) or not 0 <= offset <= len(found.entries):
            raise sync_state_not_found()
        return found, offset

    # -- rounds ----------------------------------------------------------------------------

    def new_round(self, token: Token, entries: list[Entry]) -> Round:
        """Keep a round for paging."""
        with self._lock:
            round_ = Round(next(self._ids), token, entries)
            self._rounds[round_.id] = round_
            while len(self._rounds) > _ROUNDS_KEPT:
                self._rounds.popitem(last=False)
            return round_

    def page(self, round_: Round, offset: int, size: int) -> tuple[list[Entry], int | None]:
        """The entries of one page and the offset of the next (None: the round is done)."""
        with self._lock:
            if self.empty_pages and offset < len(round_.entries):
                self.empty_pages -= 1
                return [], offset
            entries = round_.entries[offset : offset + size]
            following = offset + len(entries)
            if self.replays:
                self.replays -= 1
                return entries, offset
        return entries, (following if following < len(round_.entries) else None)


def check_options(query: dict[str, str]) -> None:
    """``$select``, ``$expand``, ``$filter``, ``$orderby``, ``$search``: 400 on delta."""
    given = [name for name in _UNSUPPORTED if name in query]
    if given:
        raise bad_request(
            "The following parameters are not supported with change tracking over the "
            f"'CalendarView' resource: '{', '.join(given)}'.",
            "BadRequest",
        )


def check_scope(token: Token, mailbox: Mailbox, calendar: Calendar) -> None:
    """A token is only good for the mailbox and calendar it was made for."""
    if token.user != mailbox.user.lower() or token.calendar_id != calendar.id:
        raise GraphError(
            400,
            "ErrorInvalidSyncStateData",
            "The sync state belongs to another calendar or mailbox.",
        )


def full_entries(instances: list[Instance]) -> list[Entry]:
    """A first round: every instance in the window."""
    return [Entry(instance) for instance in instances]


def changed_entries(mailbox: Mailbox, calendar: Calendar, token: Token) -> list[Entry]:
    """What changed in the calendar's window since ``token``.

    Created or updated instances in the window are full events; an instance that was in the
    window and is no longer there (deleted, cancelled by its organizer, moved out) is
    ``@removed``; and, as Graph does, so is anything changed entirely outside the window.
    An occurrence deleted while ``silent_occurrence_deletes`` was on is never ``@removed``.
    """
    first_before: dict[str, Item | None] = {}
    scopes: dict[str, frozenset[datetime] | None] = {}
    silent: set[str] = set()
    for entry in calendar.changes_since(token.seq):
        if entry.silent and entry.scope is not None:
            silent.update(occurrence_id(entry.item_id, o) for o in entry.scope)
        if entry.item_id not in first_before:
            first_before[entry.item_id] = entry.before
            scopes[entry.item_id] = entry.scope
        elif scopes[entry.item_id] is not None:
            scope = scopes[entry.item_id]
            scopes[entry.item_id] = (
                None if entry.scope is None or scope is None else scope | entry.scope
            )
    result: list[Entry] = []
    for ident, before in first_before.items():
        after = mailbox.items.get(ident)
        if after is not None and after.calendar_id != calendar.id:
            after = None
        scope = scopes[ident]
        if scope is None:
            result.extend(_item_changes(ident, before, after, token))
        else:
            result.extend(_occurrence_changes(ident, before, after, scope, token))
    # Graph's quirk: an occurrence deleted on its own may never be reported, not even when
    # its series changes again before the next round.
    return [e for e in result if e.removed is None or e.removed not in silent]


def _item_changes(ident: str, before: Item | None, after: Item | None, token: Token) -> list[Entry]:
    was = {i.id for i in before.instances(token.start, token.end)} if before else set()
    now = sorted(after.instances(token.start, token.end), key=sort_key) if after else []
    result = [Entry(instance, updated=instance.id in was) for instance in now]
    gone = was - {i.id for i in now}
    result.extend(Entry(None, removed) for removed in sorted(gone))
    if not was and not now:
        result.append(Entry(None, ident))
    return result


def _occurrence_changes(
    ident: str, before: Item | None, after: Item | None, scope: frozenset[datetime], token: Token
) -> list[Entry]:
    result = []
    for original in sorted(scope):
        now = after.instance_at(original) if after else None
        was = before.instance_at(original) if before else None
        if now is not None and overlaps(now.start, now.end, token.start, token.end):
            result.append(Entry(now, updated=was is not None))
        elif was is not None and overlaps(was.start, was.end, token.start, token.end):
            result.append(Entry(None, was.id))
        else:
            result.append(Entry(None, occurrence_id(ident, original)))
    return result
