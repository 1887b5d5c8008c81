"""The readiness check of remote meetings and the payment-terms review reminder, end to end
through the engine on a local folder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar

from tests.harness import NOW
from tests.ical import calendar, event
from tests.test_policy_e2e import JANE, JANE_DECLINED, PolicyHarness, config_text

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LATER = NOW + 5 * DAY  # Wed 2 Dec 09:00Z
CHECK = LATER - 48 * HOUR  # the readiness check of LATER
REMOTE = "CATEGORIES:remote"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[PolicyHarness]:
    text = config_text().replace(
        'unknown_actor = "ask"', 'unknown_actor = "ask"\nreview_every = "30d"'
    )
    harness = PolicyHarness(tmp_path, text)
    yield harness
    harness.close()


def meeting(uid: str, start: datetime, *extra: str, client: str = JANE) -> bytes:
    return calendar(
        event(uid, start, start + HOUR, "ORGANIZER:mailto:me@example.com", client, *extra)
    )


def notes_of(h: PolicyHarness, kind: str) -> list[Calendar]:
    found = []
    for path in h.notes():
        note = Calendar.from_ical(path.read_bytes())
        if any(str(e.get("X-SYNCD-VERDICT")) == kind for e in note.walk("VEVENT")):
            found.append(note)
    return found


def text_of(note: Calendar) -> str:
    vevent = next(iter(note.walk("VEVENT")))
    return f"{vevent['SUMMARY']}\n{vevent['DESCRIPTION']}"


def at(h: PolicyHarness, when: datetime) -> None:
    h.now = when
    h.cycle_all()


# --- readiness -----------------------------------------------------------------------------


def test_remote_meeting_without_link_gets_its_note_when_the_timer_fires(h: PolicyHarness) -> None:
    """No note at booking; the daemon wakes at start - 48 h and the note has the draft."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    assert notes_of(h, "readiness") == []
    assert h.engine.store.next_due("work") == CHECK
    at(h, CHECK - HOUR)
    assert notes_of(h, "readiness") == []
    at(h, CHECK)
    [note] = notes_of(h, "readiness")
    text = text_of(note)
    assert "Meeting link missing · Jane Doe" in text
    assert "[meeting link]" in text
    assert "test your camera and sound beforehand" in text
    assert "Hello Jane," in text
    [record] = h.records_of("readiness")
    assert (record["outcome"], record["clients"]) == ("no_link", ["jane@example.com"])


def test_the_readiness_note_is_written_once(h: PolicyHarness) -> None:
    """Later cycles, and an edit that keeps the time, write no second note."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK)
    at(h, CHECK + HOUR)
    h.put("a.ics", meeting("a", LATER, REMOTE, "DESCRIPTION:agenda to follow"))
    h.cycle_all()
    assert len(notes_of(h, "readiness")) == 1
    assert len(h.records_of("readiness")) == 1


@pytest.mark.parametrize(
    "link",
    [
        "LOCATION:https://meet.google.com/abc-defg",
        "DESCRIPTION:Join: https://us02web.zoom.us/j/123",
        "URL:https://teams.example.com/l/meetup",
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example.com/xyz",
    ],
)
def test_remote_meeting_with_a_link_gets_no_note(h: PolicyHarness, link: str) -> None:
    """A link in LOCATION, DESCRIPTION, URL or CONFERENCE: nothing to remind of."""
    h.put("a.ics", meeting("a", LATER, REMOTE, link))
    h.cycle_all()
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []
    assert h.records_of("readiness") == []


def test_a_meeting_not_marked_remote_is_not_checked(h: PolicyHarness) -> None:
    """Without a remote marker there is no readiness timer."""
    h.put("a.ics", meeting("a", LATER))
    h.cycle_all()
    assert h.engine.store.next_due("work") == LATER + HOUR + timedelta(minutes=30)
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []


def test_a_bracketed_summary_keyword_marks_a_meeting_remote(h: PolicyHarness) -> None:
    """``[online]`` in the summary counts as the marker."""
    h.put("a.ics", calendar(event("a", LATER, LATER + HOUR, JANE, summary="Coaching [online]")))
    h.cycle_all()
    at(h, CHECK)
    assert len(notes_of(h, "readiness")) == 1


def test_link_added_before_the_check_means_no_note(h: PolicyHarness) -> None:
    """The owner adds the link a day before the check: the timer finds it."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK - DAY)
    h.put("a.ics", meeting("a", LATER, REMOTE, "LOCATION:https://meet.google.com/abc"))
    h.cycle_all()
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []


def test_moved_meeting_moves_its_timer(h: PolicyHarness) -> None:
    """Moved two days later: nothing at the old check, the note at the new one."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    moved = LATER + 2 * DAY
    h.put("a.ics", meeting("a", moved, REMOTE))
    h.cycle_all()
    assert h.engine.store.next_due("work") == moved - 48 * HOUR
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []
    at(h, moved - 48 * HOUR)
    assert len(notes_of(h, "readiness")) == 1


@pytest.mark.parametrize("how", ["cancelled", "removed", "declined"])
def test_cancelled_meeting_drops_its_timer(h: PolicyHarness, how: str) -> None:
    """Cancelled, deleted or declined: no readiness note ever."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    if how == "cancelled":
        h.put("a.ics", meeting("a", LATER, REMOTE, "STATUS:CANCELLED"))
    elif how == "removed":
        h.remove("a.ics")
    else:
        h.put("a.ics", meeting("a", LATER, REMOTE, client=JANE_DECLINED))
    h.cycle_all()
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []
    assert h.records_of("readiness") == []


def test_short_notice_booking_is_checked_at_once(h: PolicyHarness) -> None:
    """Booked 22 h ahead (inside the 48 h lead): the note comes in the same cycle."""
    h.put("a.ics", meeting("a", NOW + 22 * HOUR, REMOTE))
    h.cycle_all()  # the baseline: the calendar's first cycle
    h.put("b.ics", meeting("b", NOW + 20 * HOUR, REMOTE))
    h.cycle_all()
    assert len(notes_of(h, "readiness")) == 2


def test_link_added_after_the_note_withdraws_it(h: PolicyHarness) -> None:
    """The note goes once the event has its link, and the withdrawal is audited."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK)
    assert len(notes_of(h, "readiness")) == 1
    h.put("a.ics", meeting("a", LATER, REMOTE, "URL:https://meet.example.com/abc"))
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []
    outcomes = [r["outcome"] for r in h.records_of("readiness")]
    assert outcomes == ["no_link", "withdrawn"]
    withdrawals = [w for w in h.records_of("write") if w["action"] == "withdraw"]
    assert [w["status"] for w in withdrawals] == ["intended", "applied"]


def test_per_client_readiness_lead(tmp_path: Path) -> None:
    """A client's own readiness_lead of 72 h sets their timer."""
    text = config_text().replace(
        'rate = "120"', 'rate = "120"\n[clients.policy]\nreadiness_lead = "72h"'
    )
    harness = PolicyHarness(tmp_path, text)
    try:
        harness.put("a.ics", meeting("a", LATER, REMOTE))
        harness.cycle_all()
        assert harness.engine.store.next_due("work") == LATER - 72 * HOUR
    finally:
        harness.close()


# --- payment-terms reviews -----------------------------------------------------------------

PAST = NOW - 10 * DAY  # Jane's first appointment syncd sees: the review is due at NOW + 20 d


def review_setup(h: PolicyHarness) -> None:
    h.put("p.ics", meeting("p", PAST))
    h.put("a.ics", meeting("a", LATER))
    h.put("n.ics", meeting("n", NOW + 25 * DAY))
    h.cycle_all()


def test_review_reminder_appears_once_when_due(h: PolicyHarness) -> None:
    """Not before the period is over; then once, over the client's next appointment."""
    review_setup(h)
    at(h, NOW + 19 * DAY)
    h.put("x.ics", meeting("x", NOW + 60 * DAY))  # a cycle with work, before the due date
    h.cycle_all()
    assert notes_of(h, "review") == []
    at(h, NOW + 21 * DAY)
    h.put("x.ics", meeting("x", NOW + 61 * DAY))
    h.cycle_all()
    [note] = notes_of(h, "review")
    assert "Time to review payment terms with Jane Doe (client since 2026-11-17)" in text_of(note)
    vevent = next(iter(note.walk("VEVENT")))
    assert vevent.decoded("DTSTART") == NOW + 25 * DAY
    h.put("x.ics", meeting("x", NOW + 62 * DAY))
    at(h, NOW + 22 * DAY)
    assert len(notes_of(h, "review")) == 1
    assert len(h.records_of("review_reminder")) == 1


def test_review_due_waits_for_a_cycle_with_work(h: PolicyHarness) -> None:
    """An attendance check firing is enough: the reminder needs no edit of the calendar."""
    review_setup(h)
    at(h, NOW + 24 * DAY)  # LATER's attendance timer fires in this cycle
    assert len(notes_of(h, "review")) == 1


def test_reviewed_marker_on_the_note_resets_the_clock(h: PolicyHarness) -> None:
    """'reviewed' on the reminder records the review; the next one comes a period later."""
    review_setup(h)
    h.put("m.ics", meeting("m", NOW + 70 * DAY))
    at(h, NOW + 24 * DAY)
    [path] = [p for p in h.notes() if b"X-SYNCD-VERDICT:review" in p.read_bytes()]
    h.edit_note(path, "reviewed")
    h.cycle_all()
    [record] = h.records_of("payment_terms_reviewed")
    assert (record["client"], record["marked_on"]) == ("jane@example.com", "note")
    h.put("x.ics", meeting("x", NOW + 65 * DAY))
    at(h, NOW + 50 * DAY)
    assert len(h.records_of("review_reminder")) == 1  # reviewed at +24 d: due at +54 d
    h.put("x.ics", meeting("x", NOW + 66 * DAY))
    at(h, NOW + 55 * DAY)
    reminders = h.records_of("review_reminder")
    assert len(reminders) == 2
    assert reminders[1]["basis_kind"] == "last_reviewed"
    assert reminders[1]["basis"].startswith((NOW + 24 * DAY).date().isoformat())
    assert len(h.records_of("payment_terms_reviewed")) == 1


def test_reviewed_marker_on_an_appointment_records_the_review(h: PolicyHarness) -> None:
    """The marker on one of the client's appointments counts as well."""
    review_setup(h)
    at(h, NOW + 10 * DAY)
    h.put("n.ics", meeting("n", NOW + 25 * DAY, "CATEGORIES:reviewed"))
    h.cycle_all()
    assert [r["marked_on"] for r in h.records_of("payment_terms_reviewed")] == ["appointment"]
    h.put("x.ics", meeting("x", NOW + 61 * DAY))
    at(h, NOW + 21 * DAY)
    assert notes_of(h, "review") == []


def test_no_review_reminder_without_an_appointment_ahead(h: PolicyHarness) -> None:
    """A client with nothing booked gets no reminder."""
    h.put("p.ics", meeting("p", PAST))
    h.cycle_all()
    h.put("x.ics", meeting("x", NOW + 60 * DAY, client="ATTENDEE:mailto:bob@example.com"))
    at(h, NOW + 21 * DAY)
    assert [r["client"] for r in h.records_of("review_reminder")] == []
    assert notes_of(h, "review") == []


# --- the state database --------------------------------------------------------------------
