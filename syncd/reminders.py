"""The two reminders' pure parts: which appointments are remote and whether they have a
meeting link (the readiness check), and the text of the readiness and review notes."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar

from syncd.model import Instance, format_when
from syncd.note_event import note_event
from syncd.policy import has_marker
from syncd.rules import PolicySettings
from syncd.when_text import point_text, when_text

__all__ = [
    "has_link",
    "is_remote",
    "linked_uids",
    "readiness_key",
    "render_readiness_note",
    "render_review_note",
    "review_key",
]

_LINK = re.compile(r"https?://[^\s<>\"']+", re.I)
_LINK_PROPERTIES = ("URL", "CONFERENCE")
_DOT = " · "


def is_remote(instance: Instance, policy: PolicySettings) -> bool:
    """True when the owner marked the appointment remote (a category or a ``[bracketed]``
    word in its summary, from ``policy.remote_markers``)."""
    return has_marker(instance, policy.remote_markers) is not None


def linked_uids(data: str) -> frozenset[tuple[str, str]]:
    """``(uid, recurrence id or "")`` of the components whose ``URL`` or ``CONFERENCE``
    property (RFC 5545 / RFC 7986) holds an http(s) link. Unreadable data gives none."""
    try:
        calendar = Calendar.from_ical(data)
    except ValueError:
        return frozenset()
    found = set()
    for event in calendar.walk("VEVENT"):
        values = []
        for name in _LINK_PROPERTIES:
            value = event.get(name)
            values.extend(value if isinstance(value, list) else [value] if value else [])
        if any(_LINK.search(str(v)) for v in values):
            rid = event.get("RECURRENCE-ID")
            found.add((str(event.get("UID", "")), "" if rid is None else format_when(rid.dt)))
    return frozenset(found)


def has_link(instance: Instance, linked: frozenset[tuple[str, str]]) -> bool:
    """True when the appointment carries a meeting link: an http(s) URL in its location or
    description, or a link property on its own component or on its series master."""
    if _LINK.search(f"{instance.location}\n{instance.description}"):
        return True
    rid = "" if instance.recurrence_id is None else format_when(instance.recurrence_id)
    return (instance.uid, rid) in linked or (instance.uid, "") in linked


def readiness_key(calendar: str, uid: str, instance: str, client: str) -> str:
    """The key of an appointment's readiness note (one per appointment and client)."""
    return hashlib.sha256(f"readiness|{calendar}|{uid}|{instance}|{client}".encode()).hexdigest()


def review_key(client: str, basis: datetime) -> str:
    """The key of a payment-terms review reminder: one per client and review period."""
    return hashlib.sha256(f"review|{client}|{basis.isoformat()}".encode()).hexdigest()


def render_readiness_note(
    key: str,
    instance: Instance,
    client: str,
    name: str,
    zone: ZoneInfo,
    *,
    stamp: datetime,
) -> bytes:
    """The note on a remote appointment without a meeting link, with a draft to the client
    carrying a link placeholder and test instructions."""
    first = name.split()[0] if name.strip() and "@" not in name else ""
    when = point_text(instance.start, zone)
    lines = [
        _DOT.join(("Meeting link missing", name)),
        f"Appointment: {instance.summary.strip() or '(no title)'}, "
        f"{when_text(instance.start, instance.end, zone)}",
        f"Times are in {zone.key}.",
        "",
        "This remote appointment has no meeting link yet. Add the link to the event "
        "(location, description or URL) and send it to the client at least two days ahead. "
        "Once the event has a link, syncd withdraws this note.",
        "",
        "Draft to the client (edit before sending)",
        "---",
        f"Hello {first}," if first else "Hello,",
        "",
        f"I'm looking forward to our online meeting on {when}.",
        "Here is the link to join: [meeting link]",
        "",
        "Please test your camera and sound beforehand: open the link a few minutes early, "
        "allow your browser to use the camera and microphone, and check that you can see "
        "and hear yourself. If anything does not work, just let me know and we will find "
        "another way to meet.",
        "",
        "Kind regards",
    ]
    return note_event(
        key,
        instance.start,
        instance.end,
        _DOT.join(("Meeting link missing", name)),
        "\n".join(lines),
        categories=(),
        stamp=stamp,
        private={"X-SYNCD-VERDICT": "readiness", "X-SYNCD-CLIENT": client},
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
    line = f"Time to review payment terms with {name} ({since})."
    lines = [
        line,
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
