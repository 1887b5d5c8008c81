"""The text of the two reminders' notes: the readiness note (a remote meeting without a link)
and the payment-terms review reminder, with their keys. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.drafts import draft_frame
from syncd.model import Instance
from syncd.note_event import note_event
from syncd.when_text import point_text, when_text

__all__ = [
    "lead_text",
    "readiness_key",
    "render_readiness_note",
    "render_review_note",
    "review_key",
]

_DOT = " · "


def readiness_key(calendar: str, uid: str, instance: str) -> str:
    """The key of an appointment's readiness note (one per appointment, for all its
    clients)."""
    return hashlib.sha256(f"readiness|{calendar}|{uid}|{instance}".encode()).hexdigest()


def review_key(client: str, basis: datetime) -> str:
    """The key of a payment-terms review reminder: one per client and review period."""
    return hashlib.sha256(f"review|{client}|{basis.isoformat()}".encode()).hexdigest()


def lead_text(lead: timedelta) -> str:
    """``2 days``, ``36 hours``, ``1 day``: how far ahead the link should go out."""
    hours = round(lead.total_seconds() / 3600)
    if hours >= 24 and hours % 24 == 0:
        days = hours // 24
        return f"{days} day" if days == 1 else f"{days} days"
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def render_readiness_note(
    key: str,
    instance: Instance,
    clients: Sequence[tuple[str, str]],
    zone: ZoneInfo,
    *,
    lead: timedelta,
    stamp: datetime,
) -> bytes:
    """The note on a remote appointment without a meeting link, with a draft to its clients
    (``(email, name)`` each) carrying a link placeholder and test instructions."""
    names = [name for _, name in clients]
    title = _DOT.join(("Meeting link missing", ", ".join(names)))
    lines = [
        title,
        f"Appointment: {instance.summary.strip() or '(no title)'}, "
        f"{when_text(instance.start, instance.end, zone)}",
        f"Times are in {zone.key}.",
        "",
        "This remote appointment has no meeting link yet. Add the link to the event "
        "(its URL or conference field, or a video-service link in location or description) "
        f"and send it to the {'clients' if len(clients) > 1 else 'client'} "
        f"at least {lead_text(lead)} ahead. "
        "Once the event has a link, syncd withdraws this note.",
        "",
        *draft_frame(
            f"Draft to the {'clients' if len(clients) > 1 else 'client'}",
            names,
            [
                f"I'm looking forward to our online meeting on {point_text(instance.start, zone)}.",
                "Here is the link to join: [meeting link]",
                "",
                "Please test your camera and sound beforehand: open the link a few minutes "
                "early, allow your browser to use the camera and microphone, and check that "
                "you can see and hear yourself. If anything does not work, just let me know "
                "and we will find another way to meet.",
            ],
        ),
    ]
    return note_event(
        key,
        instance.start,
        instance.end,
        title,
        "\n".join(lines),
        categories=(),
        stamp=stamp,
        private={
            "X-SYNCD-VERDICT": "readiness",
            "X-SYNCD-CLIENT": ",".join(email for email, _ in clients),
        },
    )


def render_review_note(
    key: str,
    instance: Instance,
    client: str,
    name: str,
    basis: tuple[str, datetime],
    zone: ZoneInfo,
    *,
    stamp: datetime,
    marker: str,
) -> bytes:
    """The payment-terms review reminder, over the client's next appointment. ``basis`` is
    ``("last reviewed" or "client since", when)``."""
    since = f"{basis[0]} {basis[1].astimezone(zone).date().isoformat()}"
    lines = [
        f"Time to review payment terms with {name} ({since}).",
        f"Next appointment: {instance.summary.strip() or '(no title)'}, "
        f"{when_text(instance.start, instance.end, zone)} ({zone.key}).",
        "",
        "A good moment to look at their record together with your terms: prepayment or "
        "deposit, the window for changes and what late changes cost.",
        f"When you have reviewed them, add '{marker}' to this note (or to the appointment); "
        "syncd records the date and reminds you again after the next period.",
    ]
    return note_event(
        key,
        instance.start,
        instance.end,
        _DOT.join(("Review payment terms", name)),
        "\n".join(lines),
        categories=(),
        stamp=stamp,
        private={"X-SYNCD-VERDICT": "review", "X-SYNCD-CLIENT": client},
    )
