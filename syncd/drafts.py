"""The follow-up draft a note offers the owner to send to the client: courteous, never
blaming, with the free times to offer and the fee or deposit the policy applies."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from syncd.money import Money
from syncd.verdict import Actor, Deposit, Verdict, VerdictKind
from syncd.when_text import point_text

__all__ = [
    "CANCELLATIONS",
    "MOVES",
    "client_name",
    "draft_frame",
    "draft_section",
    "first_name",
    "has_fee",
]

CANCELLATIONS = frozenset({VerdictKind.LATE_CANCELLATION, VerdictKind.CANCELLATION})
"""Verdict kinds of a cancellation."""
MOVES = frozenset({VerdictKind.LATE_MOVE, VerdictKind.MOVE})
"""Verdict kinds of a move."""


def client_name(verdict: Verdict) -> str:
    """The client's display name, else their address."""
    return verdict.client_name.strip() or verdict.client


def first_name(name: str) -> str:
    """The first word of a display name; empty for no name or an address."""
    words = name.split()
    return "" if not words or "@" in name else words[0]


def draft_frame(title: str, names: Sequence[str], body: Sequence[str]) -> list[str]:
    """A draft to the client: the heading, a greeting by first name (``Hello,`` when one of
    them has no name), the body and a closing."""
    firsts = [first_name(n) for n in names]
    known = firsts if firsts and all(firsts) else []
    greeting = "Hello " + " and ".join(known) + "," if known else "Hello,"
    return [f"{title} (edit before sending)", "---", greeting, "", *body, "", "Kind regards"]


def has_fee(fee: Money | None) -> bool:
    """True for a fee above zero."""
    return fee is not None and fee.amount > 0


def draft_section(
    verdict: Verdict, slots: Sequence[str], zone: ZoneInfo, require_deposit_notice: bool
) -> list[str]:
    """The draft's lines with a greeting and a closing; none for verdicts that need none."""
    body = _draft_body(verdict, slots, zone)
    if not body:
        return []
    if require_deposit_notice:
        body.append("For future bookings, I will ask for a deposit in advance.")
    return draft_frame("Follow-up draft", [verdict.client_name], body)


def _draft_body(verdict: Verdict, slots: Sequence[str], zone: ZoneInfo) -> list[str]:
    when = point_text(verdict.start, zone)
    if verdict.kind in CANCELLATIONS:
        return _cancellation_draft(verdict, when, slots, zone)
    if verdict.kind in MOVES:
        return _move_draft(verdict, when, slots, zone)
    if verdict.kind is VerdictKind.NO_SHOW:
        return [
            f"I'm sorry we missed each other at our appointment on {when}; "
            "I hope everything is all right.",
            *_offer(slots, "If you would like to book a new time, these are free:"),
            *_fee_reminder(verdict, "appointments missed without notice carry a fee"),
        ]
    if verdict.kind is VerdictKind.POSSIBLE_NO_SHOW:
        return [
            f"I hope you are well. I was expecting you for our appointment on {when}; "
            "if something came up, no problem at all.",
            *_offer(slots, "Would one of these times suit you for a new appointment?"),
        ]
    return []


def _cancellation_draft(
    verdict: Verdict, when: str, slots: Sequence[str], zone: ZoneInfo
) -> list[str]:
    if verdict.actor is Actor.OWNER:
        return [
            f"I'm sorry, but I need to cancel our appointment on {when}.",
            *_offer(slots, "Would one of these times suit you instead?"),
        ]
    return [
        f"Thank you for letting me know that our appointment on {when} cannot go ahead.",
        *_offer(slots, "Would one of these times suit you instead?"),
        *_fee_reminder(verdict, "cancellations at short notice carry a fee"),
        *_deposit_reminder(verdict, zone),
    ]


def _move_draft(verdict: Verdict, when: str, slots: Sequence[str], zone: ZoneInfo) -> list[str]:
    new = "" if verdict.new_start is None else f" to {point_text(verdict.new_start, zone)}"
    if verdict.actor is Actor.OWNER:
        opening = f"I'm sorry for the change: I have moved our appointment on {when}{new}."
    else:
        opening = f"Thank you for letting me know. Our appointment on {when} is now moved{new}."
    return [
        opening,
        *_offer(slots, "If the new time does not suit after all, these times are also free:"),
        *_fee_reminder(verdict, "changes at short notice carry a fee"),
        *_deposit_reminder(verdict, zone),
    ]


def _offer(slots: Sequence[str], question: str) -> list[str]:
    if not slots:
        return ["Just let me know which times suit you, and we will find a new one."]
    return [question, *(f"- {slot}" for slot in slots)]


def _fee_reminder(verdict: Verdict, policy: str) -> list[str]:
    if verdict.waived or verdict.actor is not Actor.CLIENT or not has_fee(verdict.fee):
        return []
    return [f"As set out in my booking terms, {policy}; for this appointment it is {verdict.fee}."]


def _deposit_reminder(verdict: Verdict, zone: ZoneInfo) -> list[str]:
    if verdict.waived or verdict.actor is not Actor.CLIENT:
        return []
    amount = f" of {verdict.deposit_amount}" if verdict.deposit_amount is not None else ""
    if verdict.deposit is Deposit.KEPT_AS_CREDIT:
        return [f"Your deposit{amount} stays as credit for your next appointment."]
    if verdict.deposit is Deposit.PENDING and verdict.deposit_deadline is not None:
        deadline = point_text(verdict.deposit_deadline, zone)
        return [
            f"If you book a new time starting by {deadline}, your deposit{amount} carries over "
            "to it."
        ]
    return []
