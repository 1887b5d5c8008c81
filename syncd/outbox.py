"""Draining the outbox: each intended write is performed conditionally or idempotently, and
its outcome is audited and recorded in one step.

A note is created at its deterministic href; if it is already there (a retry after a crash,
or an update of the verdict) it is replaced at its current etag, keeping the markers the owner
added to it. An annotation re-reads the event, adds syncd's private properties and writes at
the etag it read; on a conflict it reads again, so a user's edit is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import structlog
from icalendar import Calendar

from syncd.annotate import annotate_event
from syncd.connector import Connector
from syncd.errors import AlreadyExists, Conflict, ConnectorError, NotFound
from syncd.ledger import OutboxRow
from syncd.notes import read_note

__all__ = ["BATCH", "MAX_ATTEMPTS", "Outcome", "drain"]

MAX_ATTEMPTS = 5
"""A write still failing after this many cycles is given up (status ``failed``)."""
_CONFLICT_RETRIES = 3

log = structlog.get_logger("syncd.outbox")

Outcome = tuple[OutboxRow, str, str | None]
Finish = Callable[[list[Outcome]], None]
BATCH = 100
"""Outcomes are recorded (audited and committed) this many at a time: a write done but not yet
recorded when the process dies is simply done again, idempotently, on the next drain."""


class _GiveUp(Exception):
    """The write cannot succeed by retrying (the event is gone, the data does not fit)."""


def drain(rows: list[OutboxRow], connectors: Mapping[str, Connector], finish: Finish) -> None:
    """Perform each pending write in order; ``finish(outcomes)`` records each outcome
    (``done``, ``pending`` to retry next cycle, or ``failed``), a batch at a time."""
    outcomes: list[Outcome] = []
    for row in rows:
        outcomes.append(_attempt(row, connectors.get(row.calendar)))
        if len(outcomes) >= BATCH:
            finish(outcomes)
            outcomes = []
    if outcomes:
        finish(outcomes)


def _attempt(row: OutboxRow, connector: Connector | None) -> Outcome:
    try:
        if connector is None:
            raise _GiveUp(f"calendar {row.calendar!r} is not configured")
        _perform(row, connector)
    except _GiveUp as error:
        log.error("write.failed", key=row.key, calendar=row.calendar, error=str(error))
        return row, "failed", str(error)
    except ConnectorError as error:
        last = row.attempts + 1 >= MAX_ATTEMPTS
        log.warning(
            "write.failed" if last else "write.retry",
            key=row.key,
            calendar=row.calendar,
            error=str(error),
        )
        return row, "failed" if last else "pending", str(error)
    return row, "done", None


def _perform(row: OutboxRow, connector: Connector) -> None:
    if row.action == "note":
        _write_note(row, connector)
    elif row.action == "annotate":
        _annotate(row, connector)
    elif row.action == "withdraw":
        _withdraw(row, connector)
    else:
        raise _GiveUp(f"unknown write action {row.action!r}")


def _write_note(row: OutboxRow, connector: Connector) -> None:
    data = str(row.payload["data"]).encode("utf-8")
    try:
        connector.create(row.href, data)
        return
    except AlreadyExists:
        pass  # an earlier try, or the same note with an older verdict: update it in place
    _rewrite(row, connector, lambda current: keep_owner_markers(data, current))


def keep_owner_markers(new: bytes, current: bytes) -> bytes:
    """The new note text carrying the categories the owner put on the current note."""
    feedback = read_note(current)
    if feedback is None or not feedback.categories:
        return new
    calendar = Calendar.from_ical(new)
    for event in calendar.walk("VEVENT"):
        event.pop("CATEGORIES", None)
        event.add("CATEGORIES", list(feedback.categories))
    return bytes(calendar.to_ical())


def _annotate(row: OutboxRow, connector: Connector) -> None:
    properties = {str(k): str(v) for k, v in dict(row.payload["properties"]).items()}
    instance = row.payload.get("instance")

    def annotated(current: bytes) -> bytes:
        try:
            return annotate_event(
                current,
                uid=str(row.payload["uid"]),
                instance=None if instance is None else str(instance),
                properties=properties,
            )
        except ValueError as error:
            raise _GiveUp(f"{row.href}: {error}") from None

    _rewrite(row, connector, annotated)


def same_content(a: bytes, b: bytes) -> bool:
    """Equal iCalendar content, whatever the line folding, line endings or the order of
    properties (servers such as Radicale rewrite what they store)."""
    return a == b or _content_lines(a) == _content_lines(b)


def _content_lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    unfolded = text.replace("\n ", "").replace("\n\t", "")
    return sorted(line for line in unfolded.split("\n") if line)


def _rewrite(row: OutboxRow, connector: Connector, change: Callable[[bytes], bytes]) -> None:
    """Read, change, write at the etag read; on a conflict read the user's version and change
    that instead, so their edit is never overwritten."""
    for _ in range(_CONFLICT_RETRIES):
        try:
            current = connector.get(row.href)
        except NotFound:
            raise _GiveUp(f"{row.href} is gone") from None
        wanted = change(current.data)
        if same_content(wanted, current.data):
            return
        try:
            connector.update(row.href, wanted, current.etag)
            return
        except Conflict:
            continue
    raise Conflict(row.calendar, f"{row.href} kept changing while syncd wrote it")


def _withdraw(row: OutboxRow, connector: Connector) -> None:
    """Delete a hold; one that is already gone counts as withdrawn."""
    for _ in range(_CONFLICT_RETRIES):
        try:
            current = connector.get(row.href)
            connector.delete(row.href, current.etag)
            return
        except NotFound:
            return
        except Conflict:
            continue
    raise Conflict(row.calendar, f"{row.href} kept changing while syncd withdrew it")
