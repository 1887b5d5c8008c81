"""Notes: what syncd writes so the owner sees a verdict in the calendar app they already use.

Two outputs, kept apart on purpose because a client must never see their own record:

- the readable **note**, a transparent, private event with no attendees and no reminders in
  the owner's notes calendar (:func:`render_note`), whose owner markers are read back with
  :func:`read_note`;
- a few private ``X-SYNCD-*`` properties on the original event (:func:`annotate_event`),
  written at the text level so nothing else of the event changes by a single byte: no
  scheduling server sees a significant change, no attendee gets an update.

All text is neutral and courteous: it states what happened and what the policy says, never
who is to blame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from syncd.drafts import CANCELLATIONS, MOVES, client_name, draft_section, has_fee
from syncd.model import When
from syncd.note_event import NOTE_PREFIX, note_event, note_href, note_uid, unique_text
from syncd.verdict import Actor, ClientRecord, Deposit, Flag, Verdict, VerdictKind
from syncd.when_text import point_text, slot_text, when_text

__all__ = [
    "MAX_SUGGESTIONS",
    "NOTE_PREFIX",
    "NoteFeedback",
    "note_description",
    "note_href",
    "note_uid",
    "read_note",
    "render_booking_note",
    "render_note",
    "summary_line",
]

_PRIVATE_PREFIX = "X-SYNCD-"
"""The names of syncd's private properties on an original event start with this."""

MAX_SUGGESTIONS = 5
"""A note lists at most this many rebooking suggestions."""

_HOURS_SHOWN_BELOW = 48.0
_DOT = " · "

_NO_SHOWS = frozenset({VerdictKind.NO_SHOW, VerdictKind.POSSIBLE_NO_SHOW})

_LABELS = {
    VerdictKind.LATE_CANCELLATION: "Late cancellation",
    VerdictKind.CANCELLATION: "Cancellation",
    VerdictKind.LATE_MOVE: "Late move",
    VerdictKind.MOVE: "Move",
    VerdictKind.NO_SHOW: "No-show",
    VerdictKind.POSSIBLE_NO_SHOW: "Possible no-show",
    VerdictKind.ATTENDED: "Attended",
}

_WHO_CANCELLED = "Who cancelled? Add the category 'client' or 'me' to this note."
_WHO_MOVED = "Who moved it? Add the category 'client' or 'me' to this note."
_HOW_TO_WAIVE = "Add 'waive' to this note to waive the fee."
_CONFIRM_NO_SHOW = "Please confirm: add 'no-show' or 'attended' to the appointment."
_CALL_HINT = (
    "This appointment is marked important. If its timing matters, consider proposing a "
    "video or phone call at the original time instead of cancelling."
)


# --- summary ------------------------------------------------------------------------------


def summary_line(verdict: Verdict) -> str:
    """One line for the note's SUMMARY: kind, client and notice, e.g.
    ``"Late cancellation · Jane Doe · 22 h notice"``."""
    parts = [_kind_label(verdict), client_name(verdict)]
    if verdict.kind is VerdictKind.POSSIBLE_NO_SHOW:
        parts.append("please confirm")
    elif _has_notice(verdict):
        parts.append(f"{_notice_text(verdict.notice_hours)} notice")
    return _DOT.join(parts)


def _kind_label(verdict: Verdict) -> str:
    if verdict.awaits_owner and verdict.kind in CANCELLATIONS:
        label = "Cancelled — who cancelled?"
    elif verdict.awaits_owner and verdict.kind in MOVES:
        label = "Moved — who moved it?"
    else:
        label = _LABELS[verdict.kind]
    return f"{label} (waived)" if verdict.waived else label


def _has_notice(verdict: Verdict) -> bool:
    return verdict.notice_hours is not None and verdict.kind in CANCELLATIONS | MOVES


def _notice_text(hours: float | None) -> str:
    """``"22 h"`` below 48 hours, else ``"5 d"``; a change after the start says so."""
    if hours is None:
        return "unknown"
    if hours < 0:
        return "after the start, no"
    if hours < _HOURS_SHOWN_BELOW:
        return f"{_round(hours)} h"
    return f"{_round(hours / 24)} d"


def _round(value: float) -> int:
    return int(Decimal(str(value)).quantize(Decimal(1), ROUND_HALF_UP))


# --- description --------------------------------------------------------------------------


def note_description(
    verdict: Verdict,
    record: ClientRecord,
    suggestions: Sequence[tuple[datetime, datetime]],
    zone: ZoneInfo,
    *,
    require_deposit_notice: bool = False,
) -> str:
    """The note's plain-text DESCRIPTION: the verdict and why, fee and deposit, what the owner
    can answer, the client's record and flags, rebooking suggestions and a follow-up draft.

    Times are shown in ``zone`` (the owner's); suggestions are aware ``(start, end)`` pairs,
    of which at most :data:`MAX_SUGGESTIONS` are listed.
    """
    slots = [slot_text(start, end, zone) for start, end in suggestions[:MAX_SUGGESTIONS]]
    sections = [
        _verdict_section(verdict, zone),
        _money_section(verdict, zone, require_deposit_notice),
        _answer_section(verdict),
        _important_section(verdict),
        _record_section(verdict, record),
        _suggestions_section(slots),
        draft_section(verdict, slots, zone, require_deposit_notice),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines)


def _verdict_section(verdict: Verdict, zone: ZoneInfo) -> list[str]:
    lines = [
        _DOT.join((_kind_label(verdict), client_name(verdict))),
        f"Appointment: {verdict.summary.strip() or '(no title)'}, "
        f"{when_text(verdict.start, verdict.end, zone)}",
    ]
    if verdict.new_start is not None:
        lines.append(f"New time: {point_text(verdict.new_start, zone)}")
    if _has_notice(verdict):
        lines.append(f"Notice: {_notice_text(verdict.notice_hours)}")
    if verdict.rule.strip():
        lines.append(f"Why: {verdict.rule.strip()}")
    lines.append(f"Made by: {_actor_text(verdict)}")
    lines.append(f"Times are in {zone.key}.")
    return lines


def _actor_text(verdict: Verdict) -> str:
    who = {Actor.CLIENT: "the client", Actor.OWNER: "you", Actor.UNKNOWN: "not known yet"}
    text = who[verdict.actor]
    evidence = verdict.actor_evidence.strip()
    return f"{text} ({evidence})" if evidence else text


def _money_section(verdict: Verdict, zone: ZoneInfo, require_deposit_notice: bool) -> list[str]:
    if verdict.kind is VerdictKind.ATTENDED:
        return []
    lines = [_fee_text(verdict)]
    if verdict.deposit is not None:
        lines.append(_deposit_text(verdict, zone))
    if verdict.waived:
        reason = (verdict.waive_reason or "").strip() or "no reason given"
        lines.append(f"Waived: {reason}.")
    elif _charges_something(verdict):
        lines.append(_HOW_TO_WAIVE)
    if require_deposit_notice:
        lines.append(
            "Deposit required: under your policy, this client's next bookings need a deposit."
        )
    return lines


def _fee_text(verdict: Verdict) -> str:
    if not has_fee(verdict.fee):
        return "Fee: no fee"
    if verdict.waived:
        return f"Fee: none ({verdict.fee} waived)"
    if verdict.kind is VerdictKind.POSSIBLE_NO_SHOW:
        return f"Fee: {verdict.fee}, only once you confirm a no-show"
    if verdict.awaits_owner:
        return f"Fee: {verdict.fee}, only if the client made the change"
    return f"Fee: {verdict.fee}"


def _deposit_text(verdict: Verdict, zone: ZoneInfo) -> str:
    amount = f" of {verdict.deposit_amount}" if verdict.deposit_amount is not None else ""
    if verdict.deposit is Deposit.KEPT_AS_CREDIT:
        return f"Deposit{amount}: kept as credit"
    if verdict.deposit is Deposit.FORFEITED:
        return f"Deposit{amount}: forfeited"
    deadline = verdict.deposit_deadline
    until = "" if deadline is None else f" until {point_text(deadline, zone)}"
    return (
        f"Deposit{amount}: pending{until}. It stays as credit if a new appointment starting "
        "by then is booked; otherwise it is forfeited."
    )


def _charges_something(verdict: Verdict) -> bool:
    return has_fee(verdict.fee) or verdict.deposit in (Deposit.FORFEITED, Deposit.PENDING)


def _answer_section(verdict: Verdict) -> list[str]:
    if verdict.kind is VerdictKind.POSSIBLE_NO_SHOW:
        return [_CONFIRM_NO_SHOW]
    if verdict.awaits_owner and verdict.kind in CANCELLATIONS:
        return [_WHO_CANCELLED]
    if verdict.awaits_owner and verdict.kind in MOVES:
        return [_WHO_MOVED]
    return []


def _important_section(verdict: Verdict) -> list[str]:
    return [_CALL_HINT] if verdict.important and verdict.kind in CANCELLATIONS else []


def _record_section(verdict: Verdict, record: ClientRecord) -> list[str]:
    return _record_lines(record, verdict.flags)


def _record_lines(record: ClientRecord, extra: Iterable[Flag]) -> list[str]:
    counts = _DOT.join(
        (
            f"Kept {record.kept}",
            f"cancellations {record.cancellations}",
            f"late cancellations {record.late_cancellations}",
            f"moves {record.moves}",
            f"late moves {record.late_moves}",
            f"no-shows {record.no_shows}",
            f"waivers {record.waivers}",
            f"reliability {_percent(record.reliability)}",
        )
    )
    lines = ["Client record (private)", counts]
    if record.fees_due is not None:
        lines.append(f"Fees due: {record.fees_due}")
    if record.require_deposit:
        lines.append("New bookings: a deposit is required.")
    lines.extend(_flag_text(flag) for flag in _flags(extra, record.flags))
    return lines


def _percent(share: float | None) -> str:
    return "not known yet" if share is None else f"{_round(share * 100)}%"


def _flags(*groups: Iterable[Flag]) -> list[Flag]:
    """All flags, the first of each code."""
    seen: dict[str, Flag] = {}
    for group in groups:
        for flag in group:
            seen.setdefault(flag.code, flag)
    return list(seen.values())


def _flag_text(flag: Flag) -> str:
    title = flag.code.replace("_", " ").replace("-", " ").strip().capitalize()
    return f"- {title}: likely cause: {flag.cause}; suggested action: {flag.action}"


def _suggestions_section(slots: Sequence[str]) -> list[str]:
    if not slots:
        return []
    return ["Free times to offer", *(f"- {slot}" for slot in slots)]


# --- the note event -----------------------------------------------------------------------


def render_note(
    verdict: Verdict,
    record: ClientRecord,
    suggestions: Sequence[tuple[datetime, datetime]],
    zone: ZoneInfo,
    *,
    categories: Sequence[str] = (),
    stamp: datetime,
    require_deposit_notice: bool = False,
) -> bytes:
    """The note as one VCALENDAR object holding one transparent, private VEVENT over the
    appointment's slot, with no attendees, organizer or alarms.

    ``categories`` are the owner's markers already on the note (kept on update); ``stamp``
    (aware) becomes DTSTAMP. Equal inputs give equal bytes.
    """
    description = note_description(
        verdict, record, suggestions, zone, require_deposit_notice=require_deposit_notice
    )
    return note_event(
        verdict.key,
        verdict.start,
        verdict.end,
        summary_line(verdict),
        description,
        categories=categories,
        stamp=stamp,
        private={"X-SYNCD-VERDICT": verdict.kind.value, "X-SYNCD-CLIENT": verdict.client},
    )


def render_booking_note(
    key: str,
    record: ClientRecord,
    start: When,
    end: When,
    summary: str,
    zone: ZoneInfo,
    *,
    stamp: datetime,
) -> bytes:
    """A note on a new booking by a client with a record: their record, the flags with
    their suggested actions, and a deposit reminder when escalation requires one."""
    name = record.name or record.client
    booked = f"{name} booked {when_text(start, end, zone)}" + (f" ({summary})" if summary else "")
    lines = [booked + ".", "", *_record_lines(record, ())]
    if record.require_deposit:
        lines += ["", "Policy: please ask for the deposit before confirming this booking."]
    return note_event(
        key,
        start,
        end,
        _DOT.join(("New booking", name, "see their record")),
        "\n".join(lines),
        categories=(),
        stamp=stamp,
        private={"X-SYNCD-VERDICT": "booking", "X-SYNCD-CLIENT": record.client},
    )


@dataclass(frozen=True, slots=True)
class NoteFeedback:
    """What the owner did to a note: its verdict key and the markers they added."""

    key: str
    categories: tuple[str, ...] = field(default_factory=tuple)
    """The note's CATEGORIES, lower-cased."""
    summary_markers: tuple[str, ...] = field(default_factory=tuple)
    """Words in square brackets in the SUMMARY (``[waive]``), lower-cased."""

    @property
    def marks(self) -> set[str]:
        """Every marker the owner put on the note: categories and bracketed words."""
        return set(self.categories) | set(self.summary_markers)


_MARKER = re.compile(r"\[([^\[\]\r\n]+)\]")


def read_note(data: bytes) -> NoteFeedback | None:
    """Read a note back; None when ``data`` does not parse or is not a syncd note.

    Never raises on bad input.
    """
    try:
        calendar = Calendar.from_ical(data)
        for event in calendar.walk("VEVENT"):
            key = str(event.get("X-SYNCD-KEY") or "").strip()
            if key:
                return NoteFeedback(
                    key=key,
                    categories=tuple(unique_text(c.lower() for c in _category_values(event))),
                    summary_markers=tuple(unique_text(_markers(str(event.get("SUMMARY") or "")))),
                )
    except Exception:  # any parser failure means "not a note we can read"
        return None
    return None


def _category_values(event: Any) -> list[str]:
    value = event.get("CATEGORIES")
    props = value if isinstance(value, list) else [] if value is None else [value]
    found: list[str] = []
    for prop in props:
        cats = getattr(prop, "cats", None)
        found.extend(str(cat) for cat in (cats if cats is not None else [prop]))
    return found


def _markers(summary: str) -> list[str]:
    return [match.group(1).strip().lower() for match in _MARKER.finditer(summary)]
