"""The policy end to end through the local connector: verdicts, notes, feedback, deposits."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from syncd.annotate import private_properties
from syncd.app import cycled_calendars
from syncd.notes import read_note
from tests.harness import CONFIG, NOW, Harness, syncd_once
from tests.ical import calendar, event

HOUR = timedelta(hours=1)
# Thursday 2026-11-26 09:00Z is NOW - 1 day; appointments are placed relative to NOW (Fri 09:00Z).
SOON = NOW + timedelta(hours=22)  # Sat 07:00Z: 22 h notice
LATER = NOW + timedelta(days=5)  # Wed 2 Dec 09:00Z: 120 h notice
JANE = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jane@example.com"
JANE_DECLINED = JANE.replace("ACCEPTED", "DECLINED")
POLICY = """
[owner]
emails = ["me@example.com"]
timezone = "Europe/Berlin"
[owner.working_hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
sat = "08:00-12:00"
[policy]
late_cancel_window = "48h"
late_cancel_fee = "50%"
deposit = "20%"
rebook_within = "3d"
unknown_actor = "ask"
[pricing]
currency = "EUR"
default_rate = "100"
[[clients]]
email = "jane@example.com"
name = "Jane Doe"
rate = "120"
[[calendars]]
name = "notes"
connector = "local"
path = "notes"
[notes]
calendar = "notes"
"""


def config_text() -> str:
    base = CONFIG.split("[owner]")[0] + CONFIG.split('timezone = "Europe/Berlin"\n')[1]
    return base + POLICY


class PolicyHarness(Harness):
    """The harness cycling every calendar, with helpers for notes and records."""

    def cycle_all(self) -> None:
        for name in cycled_calendars(self.config):
            self.engine.cycle(name)

    @property
    def notes_folder(self) -> Path:
        return self.root / "notes"

    def notes(self) -> list[Path]:
        return sorted(self.notes_folder.glob("*.ics"))

    def edit_note(self, path: Path, category: str) -> None:
        """Add a category to a note, as the owner would in their calendar app."""
        text = path.read_bytes().replace(
            b"TRANSP:TRANSPARENT", b"TRANSP:TRANSPARENT\r\nCATEGORIES:" + category.encode()
        )
        before = path.stat().st_mtime_ns
        path.write_bytes(text)
        if path.stat().st_mtime_ns <= before:
            os.utime(path, ns=(before + 1000, before + 1000))

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r["type"] == kind]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[PolicyHarness]:
    harness = PolicyHarness(tmp_path, config_text())
    yield harness
    harness.close()


def appointment(uid: str, start: datetime, *extra: str, summary: str = "Coaching") -> bytes:
    return calendar(
        event(uid, start, start + HOUR, "ORGANIZER:mailto:me@example.com", *extra, summary=summary)
    )


def note_of(h: PolicyHarness) -> Calendar:
    notes = h.notes()
    assert len(notes) == 1
    return Calendar.from_ical(notes[0].read_bytes())


def test_late_decline_gives_one_verdict_one_note_and_the_right_fee(h: PolicyHarness) -> None:
    """A client declining 22 h ahead: one late_cancellation at 50 % of 120 EUR, one note."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()
    verdicts = h.records_of("verdict")
    assert [
        (v["verdict"], v["client"], v["actor"], v["fee"], v["notice_hours"]) for v in verdicts
    ] == [
        (
            "late_cancellation",
            "jane@example.com",
            "client",
            {"amount": "60.00", "currency": "EUR"},
            22.0,
        )
    ]
    note = note_of(h)
    vevent = next(iter(note.walk("VEVENT")))
    assert str(vevent["SUMMARY"]).startswith("Late cancellation")
    assert "Jane Doe" in str(vevent["SUMMARY"])
    assert str(vevent["TRANSP"]) == "TRANSPARENT"
    assert "ATTENDEE" not in vevent
    assert not vevent.walk("VALARM")


def test_quiet_rerun_writes_nothing(h: PolicyHarness) -> None:
    """After a verdict and its writes, another cycle adds no record and no file."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()
    h.cycle_all()
    records, files = len(h.audit()), [p.read_bytes() for p in h.notes()]
    h.cycle_all()
    assert len(h.audit()) == records
    assert [p.read_bytes() for p in h.notes()] == files


def test_every_write_is_audited_before_and_after(h: PolicyHarness) -> None:
    """Each write has an `intended` record before its `applied` record, with the same key."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()
    writes = h.records_of("write")
    keys = {w["key"] for w in writes}
    assert len(keys) == 2  # the note and the annotation
    for key in keys:
        assert [w["status"] for w in writes if w["key"] == key] == ["intended", "applied"]


def test_suggestions_are_really_free(h: PolicyHarness) -> None:
    """The note's suggested slots overlap no other appointment and sit in working hours."""
    h.put("a.ics", appointment("a", SOON, JANE))
    busy_start = NOW + timedelta(days=3, hours=1)  # Mon 10:00 Berlin
    h.put("b.ics", appointment("b", busy_start, "ATTENDEE:mailto:bob@example.com"))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()
    description = str(next(iter(note_of(h).walk("VEVENT")))["DESCRIPTION"])
    assert "Mon 30 Nov 10:00" not in description
    slots = re.findall(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d+) (\w+) (\d\d):(\d\d)", description)
    assert len(slots) >= 3


def test_waive_marker_on_the_note_waives_and_updates_it_in_place(h: PolicyHarness) -> None:
    """The owner adds 'waive' to the note: the verdict is waived, the note updated, kept once."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()
    [path] = h.notes()
    h.edit_note(path, "waive")
    h.cycle_all()
    waivers = h.records_of("waiver")
    assert [(w["verdict"], w["waived"]) for w in waivers] == [("late_cancellation", True)]
    assert "waive" in (w["waive_reason"] for w in waivers).__next__()
    [again] = h.notes()
    feedback = read_note(again.read_bytes())
    assert feedback is not None
    assert "waive" in feedback.categories
    assert "(waived)" in str(next(iter(note_of(h).walk("VEVENT")))["SUMMARY"])


def test_unknown_actor_is_asked_then_answered(h: PolicyHarness) -> None:
    """A deleted appointment asks who cancelled; 'client' on the note applies the fee."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.remove("a.ics")
    h.cycle_all()
    [verdict] = h.records_of("verdict")
    assert (verdict["actor"], verdict["fee"]) == ("unknown", None)
    [path] = h.notes()
    assert b"who cancelled" in path.read_bytes().lower()
    h.edit_note(path, "client")
    h.cycle_all()
    [revised] = h.records_of("verdict_revised")
    assert (revised["actor"], revised["fee"]) == ("client", {"amount": "60.00", "currency": "EUR"})


def test_timely_cancellation_keeps_the_deposit_when_rebooked_in_time(h: PolicyHarness) -> None:
    """Cancelled 5 days ahead with a deposit: pending; a new booking 2 days later keeps it."""
    h.put("a.ics", appointment("a", LATER, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", LATER, JANE_DECLINED))
    h.cycle_all()
    [verdict] = h.records_of("verdict")
    assert (verdict["verdict"], verdict["deposit"], verdict["fee"]) == (
        "cancellation",
        "pending",
        None,
    )
    h.put("b.ics", appointment("b", LATER + timedelta(days=2), JANE))
    h.cycle_all()
    [resolution] = h.records_of("resolution")
    assert (resolution["deposit"], resolution["linked"]["uid"]) == ("kept_as_credit", "b")


def test_pending_deposit_is_forfeited_after_the_deadline(h: PolicyHarness) -> None:
    """Without a new booking, the deposit is forfeited once the rebooking window has passed."""
    h.put("a.ics", appointment("a", LATER, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", LATER, JANE_DECLINED))
    h.cycle_all()
    h.advance(timedelta(days=5, hours=2))
    h.cycle_all()
    assert h.records_of("resolution") == []
    h.advance(timedelta(days=3))
    h.cycle_all()
    assert [r["deposit"] for r in h.records_of("resolution")] == ["forfeited"]


def test_no_show_marker_after_the_end_records_a_no_show(h: PolicyHarness) -> None:
    """'no-show' on an ended appointment: a no_show verdict at 100 % of the price."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.advance(timedelta(days=1))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE, "CATEGORIES:no-show"))
    h.cycle_all()
    [verdict] = h.records_of("verdict")
    assert (verdict["verdict"], verdict["fee"]) == (
        "no_show",
        {"amount": "120.00", "currency": "EUR"},
    )


def test_unanswered_invitation_becomes_a_possible_no_show(h: PolicyHarness) -> None:
    """A client who never accepted: after end plus grace, a possible no-show without a fee."""
    h.put("a.ics", appointment("a", SOON, JANE.replace("ACCEPTED", "NEEDS-ACTION")))
    h.cycle_all()
    h.advance(timedelta(hours=23, minutes=10))  # end + 10 min: inside the grace
    h.cycle_all()
    assert h.records_of("verdict") == []
    h.advance(timedelta(minutes=30))
    h.cycle_all()
    [verdict] = h.records_of("verdict")
    assert (verdict["verdict"], verdict["fee"]) == ("possible_no_show", None)


def test_owner_events_never_get_a_verdict(h: PolicyHarness) -> None:
    """An event with no client (the owner's own) gets no verdict when cancelled."""
    h.put("d.ics", appointment("d", SOON, summary="Dentist"))
    h.cycle_all()
    h.remove("d.ics")
    h.cycle_all()
    assert h.records_of("verdict") == []
    assert h.notes() == []


def test_client_visible_fields_are_never_modified(h: PolicyHarness) -> None:
    """On an event with attendees syncd adds only X-SYNCD-* lines; all else stays byte-equal."""
    original = appointment("a", LATER, JANE, "DESCRIPTION:Bring your notes", "SEQUENCE:3").replace(
        b"Coaching", b"Coaching with Jane"
    )
    h.put("a.ics", original)
    h.cycle_all()
    moved = (
        original.replace(b"SEQUENCE:3", b"SEQUENCE:4")
        .replace(b"20261202T090000Z", b"20261202T100000Z")
        .replace(b"20261202T100000Z\r\nDTEND", b"20261202T100000Z\r\nDTEND")
    )
    h.put("a.ics", moved)
    h.cycle_all()
    assert h.records_of("verdict"), "the move should have been judged"
    written = (h.folder / "a.ics").read_bytes()
    kept = b"".join(
        line for line in written.splitlines(keepends=True) if not line.startswith(b"X-SYNCD-")
    )
    assert kept == moved
    assert set(private_properties(written)) == {"X-SYNCD-VERDICT", "X-SYNCD-NOTE"}
    h.cycle_all()
    assert [r["type"] for r in h.audit()][-1] != "change"  # the annotation is not a change


@pytest.mark.parametrize("point", ["after-cycle-commit", "after-write-audit"])
def test_crash_between_verdict_and_write_leaves_exactly_one_note(
    tmp_path: Path, point: str
) -> None:
    """SIGKILL after the verdict commits (or mid-write): after restart, one note, one verdict."""
    (tmp_path / "syncd.toml").write_text(config_text())
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "a.ics").write_bytes(appointment("a", SOON, JANE))
    assert syncd_once(tmp_path).returncode == 0
    (tmp_path / "cal" / "a.ics").write_bytes(appointment("a", SOON, JANE_DECLINED))
    assert syncd_once(tmp_path, crash_at=point).returncode == -signal.SIGKILL
    assert syncd_once(tmp_path).returncode == 0
    assert syncd_once(tmp_path).returncode == 0
    assert len(list((tmp_path / "notes").glob("*.ics"))) == 1
    records = [json.loads(x) for x in (tmp_path / "var" / "audit.jsonl").read_text().splitlines()]
    assert [r["verdict"] for r in records if r["type"] == "verdict"] == ["late_cancellation"]
    applied = [r["key"] for r in records if r["type"] == "write" and r["status"] == "applied"]
    assert len(applied) == len(set(applied)) == 2


@pytest.fixture
def held(tmp_path: Path) -> Iterator[PolicyHarness]:
    harness = PolicyHarness(tmp_path, config_text() + "[rebooking]\nholds = true\n")
    yield harness
    harness.close()


def holds_of(h: PolicyHarness) -> list[Calendar]:
    return [Calendar.from_ical(p.read_bytes()) for p in sorted(h.notes_folder.glob("syncd-hold-*"))]


def late_decline(h: PolicyHarness) -> None:
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()


def test_holds_are_placed_on_the_suggested_slots(held: PolicyHarness) -> None:
    """With holds on, each suggested slot gets a tentative hold in the notes calendar."""
    late_decline(held)
    holds = holds_of(held)
    assert len(holds) == 3
    for hold in holds:
        vevent = next(iter(hold.walk("VEVENT")))
        assert str(vevent["STATUS"]) == "TENTATIVE"
        assert "ATTENDEE" not in vevent


def test_holds_are_withdrawn_when_the_client_books_again(held: PolicyHarness) -> None:
    """A new booking by the client removes every hold kept for them."""
    late_decline(held)
    held.put("b.ics", appointment("b", LATER, JANE))
    held.cycle_all()
    assert holds_of(held) == []
    reasons = [
        r["reason"]
        for r in held.records_of("write")
        if r["action"] == "withdraw" and r["status"] == "intended"
    ]
    assert set(reasons) == {"the client booked again"}


def test_no_holds_when_the_client_books_again_in_the_same_cycle(held: PolicyHarness) -> None:
    """A client who declines and books another appointment seen in the same cycle gets no
    holds at all: none written, none left standing, no write audited for one."""
    held.put("a.ics", appointment("a", SOON, JANE))
    held.cycle_all()
    held.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    held.put("b.ics", appointment("b", LATER, JANE))
    held.cycle_all()
    assert holds_of(held) == []
    assert [r["verdict"] for r in held.records_of("verdict")] == ["late_cancellation"]
    assert not [r for r in held.records_of("write") if "hold" in r["href"]]


def test_a_hold_is_withdrawn_when_its_slot_is_taken(held: PolicyHarness) -> None:
    """Another appointment over a held slot withdraws that hold only."""
    late_decline(held)
    first = next(iter(holds_of(held)[0].walk("VEVENT")))
    start = first["DTSTART"].dt
    held.put("bob.ics", appointment("bob", start, "ATTENDEE:mailto:bob@example.com"))
    held.cycle_all()
    assert len(holds_of(held)) == 2
    reasons = [
        r["reason"]
        for r in held.records_of("write")
        if r["action"] == "withdraw" and r["status"] == "intended"
    ]
    assert reasons == ["the slot was taken"]


def test_holds_lapse_when_their_time_has_come(held: PolicyHarness) -> None:
    """Once a held slot's start has passed, its hold is withdrawn."""
    late_decline(held)
    held.advance(timedelta(days=30))
    held.cycle_all()
    assert holds_of(held) == []


def test_new_booking_of_an_escalated_client_gets_a_note(tmp_path: Path) -> None:
    """After two late cancellations (escalation), the client's next booking gets a note."""
    escalation = '[[policy.escalations]]\nafter = 2\nkind = "late_cancellation"\nwithin = "90d"\n'
    text = config_text().replace("[pricing]", escalation + "[pricing]")
    h = PolicyHarness(tmp_path, text)
    try:
        for uid, start in (("a", SOON), ("b", SOON + timedelta(hours=3))):
            h.put(f"{uid}.ics", appointment(uid, start, JANE))
        h.cycle_all()
        for uid, start in (("a", SOON), ("b", SOON + timedelta(hours=3))):
            h.put(f"{uid}.ics", appointment(uid, start, JANE_DECLINED))
        h.cycle_all()
        assert len(h.records_of("verdict")) == 2
        h.put("c.ics", appointment("c", LATER, JANE))
        h.cycle_all()
        [flagged] = h.records_of("booking_flagged")
        assert (flagged["uid"], "require_deposit" in flagged["flags"]) == ("c", True)
        bookings = [p for p in h.notes() if b"SUMMARY:New booking" in p.read_bytes()]
        assert len(bookings) == 1
        assert b"deposit" in bookings[0].read_bytes()
    finally:
        h.close()


def test_a_user_edit_during_the_annotation_survives(
    h: PolicyHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user edits the event between syncd's read and its write: the write conflicts,
    syncd reads the user's version, applies its properties to it, and keeps the edit."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    connector = h.engine.connectors["work"]
    real_update = connector.update
    edits = []

    def user_edits_first(href: str, data: bytes, etag: str) -> str:
        if href == "a.ics" and not edits:
            edited = (
                (h.folder / href)
                .read_bytes()
                .replace(b"SUMMARY:Coaching", b"LOCATION:Room 7\r\nSUMMARY:Coaching")
            )
            h.put(href, edited)
            edits.append(edited)
        return real_update(href, data, etag)

    monkeypatch.setattr(connector, "update", user_edits_first)
    h.cycle_all()
    written = (h.folder / "a.ics").read_bytes()
    assert b"LOCATION:Room 7" in written
    assert b"X-SYNCD-VERDICT:late_cancellation" in written
    applied = [r for r in h.records_of("write") if r["action"] == "annotate"]
    assert [r["status"] for r in applied] == ["intended", "applied"]


def test_a_note_the_server_rewrote_is_not_written_again() -> None:
    """A note stored with its properties reordered and refolded counts as the same note."""
    from syncd.outbox import same_content

    original = (
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nSUMMARY:Late cancellation\r\n"
        b"DESCRIPTION:a long line that the server\r\n  folded\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    rewritten = (
        b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:Late cancellation\nUID:x\n"
        b"DESCRIPTION:a long line that the server folded\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    assert same_content(original, rewritten)
    assert not same_content(original, rewritten.replace(b"Late", b"Timely"))


def test_cancel_and_rebook_in_one_cycle_resolve_the_deposit_once(h: PolicyHarness) -> None:
    """A timely cancellation and two new bookings seen in the same cycle: the deposit is kept
    as credit, by one resolution only."""
    h.put("a.ics", appointment("a", LATER, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", LATER, JANE_DECLINED))
    h.put("b.ics", appointment("b", LATER + timedelta(days=1), JANE))
    h.put("c.ics", appointment("c", LATER + timedelta(days=2), JANE))
    h.cycle_all()
    [verdict] = h.records_of("verdict")
    assert verdict["deposit"] == "pending"
    assert [r["deposit"] for r in h.records_of("resolution")] == ["kept_as_credit"]
