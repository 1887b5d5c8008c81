"""The readiness check and the review reminder end to end: same-cycle edits, recurring series,
several clients, all-day and DST cases, following the appointment, the upgrade of a real
schema-3 database, and the cost of a due review with nothing ahead."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from icalendar import Calendar

import syncd.store
from connectors.local import _etag
from tests.harness import NOW
from tests.ical import calendar, event
from tests.test_policy_e2e import JANE, JANE_DECLINED, PolicyHarness, config_text
from tests.test_reminders_e2e import (
    CHECK,
    DAY,
    HOUR,
    LATER,
    REMOTE,
    at,
    meeting,
    notes_of,
    review_setup,
    text_of,
)

BOB = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com"
ME = "ORGANIZER:mailto:me@example.com"
FIXTURE = Path(__file__).parent / "fixtures" / "state_v3"


def _config(extra: str = "") -> str:
    return config_text().replace(
        'unknown_actor = "ask"', f'unknown_actor = "ask"\nreview_every = "30d"\n{extra}'
    )


@pytest.fixture
def h(tmp_path: Path) -> Iterator[PolicyHarness]:
    harness = PolicyHarness(tmp_path, _config())
    yield harness
    harness.close()


def start_of(note: Calendar) -> object:
    return next(iter(note.walk("VEVENT"))).decoded("DTSTART")


def series(start: datetime, *extra: str, count: int = 4) -> bytes:
    return calendar(
        event(
            "s", start, start + HOUR, ME, JANE, REMOTE, f"RRULE:FREQ=WEEKLY;COUNT={count}", *extra
        )
    )


# --- 1, 2: no crash, no stale snapshot -----------------------------------------------------


def test_a_floating_override_with_a_link_does_not_stop_the_calendar(h: PolicyHarness) -> None:
    """A floating series across the DST change; its post-DST override has a URL: the cycle
    commits, the override counts as linked, the other occurrences get their notes."""
    first = datetime(2027, 3, 24, 10, 0)  # floating: the owner's zone (Europe/Berlin), CET
    linked = datetime(2027, 4, 7, 10, 0)  # CEST: DST starts on 28 March
    data = calendar(
        event("f", first, first + HOUR, ME, JANE, REMOTE, "RRULE:FREQ=WEEKLY;COUNT=3"),
        event(
            "f",
            linked,
            linked + HOUR,
            ME,
            JANE,
            REMOTE,
            "RECURRENCE-ID:" + linked.strftime("%Y%m%dT%H%M%S"),
            "URL:https://meet.example.org/x",
        ),
    )
    h.put("f.ics", data)
    h.cycle_all()
    h.put("f.ics", data.replace(b"SUMMARY:Session", b"SUMMARY:Session 2"))
    h.cycle_all()  # a change: the cycle that crashed
    assert h.engine.store.calendar_state("work").last_error is None
    utc = NOW.tzinfo
    at(h, datetime(2027, 3, 29, 9, 0, tzinfo=utc))  # 31 March 10:00 CEST is 08:00Z
    at(h, datetime(2027, 4, 5, 9, 0, tzinfo=utc))  # the linked 7 April's check
    starts = [start_of(n) for n in notes_of(h, "readiness")]
    assert starts == [datetime(2027, 3, 31, 8, 0, tzinfo=utc)]


def test_a_link_added_in_the_cycle_the_timer_fires_means_no_note(h: PolicyHarness) -> None:
    """The daemon wakes for the timer and lists the edit in the same cycle."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    h.put("a.ics", meeting("a", LATER, REMOTE, "LOCATION:https://zoom.us/j/1"))
    at(h, CHECK)
    assert notes_of(h, "readiness") == []


def test_a_move_in_the_cycle_the_timer_fires_sets_the_new_timer(h: PolicyHarness) -> None:
    """Moved three days later while its timer fires: no note at the old time."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    h.put("a.ics", meeting("a", LATER + 3 * DAY, REMOTE))
    at(h, CHECK)
    assert notes_of(h, "readiness") == []
    assert h.engine.store.next_due("work") == LATER + DAY


# --- 3, 4: withdrawals ---------------------------------------------------------------------


def test_an_excluded_occurrence_loses_its_note(h: PolicyHarness) -> None:
    """An EXDATE on the noted occurrence withdraws its note."""
    first = NOW + 3 * DAY
    h.put("s.ics", series(first))
    h.cycle_all()
    at(h, first - 48 * HOUR)
    assert len(notes_of(h, "readiness")) == 1
    h.put("s.ics", series(first, "EXDATE:" + first.strftime("%Y%m%dT%H%M%SZ")))
    at(h, first - 47 * HOUR)
    assert notes_of(h, "readiness") == []


def test_a_series_moved_as_a_whole_keeps_one_note(h: PolicyHarness) -> None:
    """New recurrence ids: the old occurrence's note goes, the new one's comes."""
    first = NOW + 3 * DAY
    h.put("s.ics", series(first))
    h.cycle_all()
    at(h, first - 48 * HOUR)
    h.put("s.ics", series(first + HOUR))
    at(h, first - 47 * HOUR)
    [note] = notes_of(h, "readiness")
    assert start_of(note) == first + HOUR


def test_a_replaced_client_is_named_in_the_note(h: PolicyHarness) -> None:
    """Jane replaced by Bob: the note names Bob only."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK)
    h.put("a.ics", meeting("a", LATER, REMOTE, client=BOB))
    at(h, CHECK + HOUR)
    [note] = notes_of(h, "readiness")
    assert "Jane" not in text_of(note)
    assert "bob@example.com" in text_of(note)


@pytest.mark.parametrize("how", ["cancelled", "removed", "declined"])
def test_a_noted_meeting_that_goes_loses_its_note(h: PolicyHarness, how: str) -> None:
    """Cancelled, deleted or declined after the note: the note is withdrawn."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK)
    assert len(notes_of(h, "readiness")) == 1
    if how == "cancelled":
        h.put("a.ics", meeting("a", LATER, REMOTE, "STATUS:CANCELLED"))
    elif how == "removed":
        h.remove("a.ics")
    else:
        h.put("a.ics", meeting("a", LATER, REMOTE, client=JANE_DECLINED))
    at(h, CHECK + HOUR)
    assert notes_of(h, "readiness") == []


def test_a_started_meeting_keeps_its_note(h: PolicyHarness) -> None:
    """An edit after the start does not withdraw the note."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK)
    h.put("a.ics", meeting("a", LATER, REMOTE, "DESCRIPTION:notes of the session"))
    at(h, LATER + 10 * 60 * (HOUR / 3600))
    assert len(notes_of(h, "readiness")) == 1


def test_a_note_written_again_is_withdrawn_again(h: PolicyHarness) -> None:
    """Link added, removed, added: the second withdrawal is applied as well."""
    h.put("a.ics", meeting("a", LATER, REMOTE))
    h.cycle_all()
    at(h, CHECK)
    linked = meeting("a", LATER, REMOTE, "URL:https://meet.example.org/abc")
    h.put("a.ics", linked)
    at(h, CHECK + HOUR)
    h.put("a.ics", meeting("a", LATER, REMOTE))
    at(h, CHECK + 2 * HOUR)
    assert len(notes_of(h, "readiness")) == 1
    h.put("a.ics", linked)
    at(h, CHECK + 3 * HOUR)
    assert notes_of(h, "readiness") == []
    withdrawals = [w for w in h.records_of("write") if w["action"] == "withdraw"]
    assert [w["status"] for w in withdrawals] == ["intended", "applied"] * 2


def test_a_link_on_the_series_master_covers_its_occurrences(h: PolicyHarness) -> None:
    """URL on the master: no occurrence gets a note."""
    first = NOW + 3 * DAY
    h.put("s.ics", series(first, "URL:https://meet.example.org/weekly"))
    h.cycle_all()
    at(h, first - 47 * HOUR)
    assert notes_of(h, "readiness") == []


# --- 9, 11: what counts; one note per appointment --------------------------------------------


def test_a_booking_tools_cancel_link_is_no_meeting_link(h: PolicyHarness) -> None:
    """Links on other hosts in the description do not count."""
    desc = "DESCRIPTION:Need to make changes? https://calendly.example.com/cancellations/abc"
    h.put("a.ics", meeting("a", LATER, REMOTE, desc))
    h.cycle_all()
    at(h, CHECK)
    assert len(notes_of(h, "readiness")) == 1


def test_a_zoom_location_without_a_link_is_checked(h: PolicyHarness) -> None:
    """'Zoom' in the location makes it remote; with no link it gets its note."""
    h.put("a.ics", meeting("a", LATER, "LOCATION:Zoom"))
    h.cycle_all()
    at(h, CHECK)
    assert len(notes_of(h, "readiness")) == 1


def test_meeting_link_hosts_extend_the_known_hosts(tmp_path: Path) -> None:
    """A link on a host from policy.meeting_link_hosts counts."""
    harness = PolicyHarness(tmp_path, _config('meeting_link_hosts = ["video.example.net"]'))
    try:
        link = "DESCRIPTION:Join https://video.example.net/r/1"
        harness.put("a.ics", meeting("a", LATER, REMOTE, link))
        harness.cycle_all()
        at(harness, CHECK)
        assert notes_of(harness, "readiness") == []
    finally:
        harness.close()


def test_a_group_meeting_gets_one_note_naming_all_clients(h: PolicyHarness) -> None:
    """Jane and Bob on one meeting: one note, both named, one greeting."""
    h.put("a.ics", calendar(event("a", LATER, LATER + HOUR, ME, JANE, BOB, REMOTE)))
    h.cycle_all()
    at(h, CHECK)
    [note] = notes_of(h, "readiness")
    text = text_of(note)
    assert "bob@example.com, Jane Doe" in text
    assert "Draft to the clients" in text


def test_an_all_day_remote_appointment_is_checked_before_its_day(h: PolicyHarness) -> None:
    """A date: the check is 48 h before its midnight in the owner's zone."""
    day = date(2026, 12, 5)
    h.put("d.ics", calendar(event("d", day, day + timedelta(days=1), ME, JANE, REMOTE)))
    h.cycle_all()
    midnight = datetime(2026, 12, 4, 23, 0, tzinfo=NOW.tzinfo)  # 5 Dec 00:00 in Berlin
    assert h.engine.store.next_due("work") == midnight - 48 * HOUR


def test_the_note_states_the_clients_lead(tmp_path: Path) -> None:
    """readiness_lead = 72h: the note asks for the link three days ahead."""
    harness = PolicyHarness(tmp_path, _config('readiness_lead = "72h"'))
    try:
        harness.put("a.ics", meeting("a", LATER, REMOTE))
        harness.cycle_all()
        at(harness, LATER - 72 * HOUR)
        [note] = notes_of(harness, "readiness")
        assert "at least 3 days ahead" in text_of(note)
    finally:
        harness.close()


# --- 7, 8: the review reminder ----------------------------------------------------------------


def test_the_review_reminder_skips_an_appointment_removed_in_the_same_cycle(
    h: PolicyHarness,
) -> None:
    """n removed in the cycle that reminds: the reminder goes over x."""
    review_setup(h)
    at(h, NOW + 21 * DAY)
    h.remove("n.ics")
    h.put("x.ics", meeting("x", NOW + 40 * DAY))
    h.cycle_all()
    [note] = notes_of(h, "review")
    assert start_of(note) == NOW + 40 * DAY


def test_the_review_reminder_follows_its_appointment(h: PolicyHarness) -> None:
    """Moved: the note moves; cancelled: over the next one; nothing ahead: withdrawn."""
    review_setup(h)
    h.put("m.ics", meeting("m", NOW + 50 * DAY))
    at(h, NOW + 21 * DAY)
    [note] = notes_of(h, "review")
    assert start_of(note) == NOW + 25 * DAY
    h.put("n.ics", meeting("n", NOW + 26 * DAY))
    at(h, NOW + 21 * DAY + HOUR)
    [note] = notes_of(h, "review")
    assert start_of(note) == NOW + 26 * DAY
    h.put("n.ics", meeting("n", NOW + 26 * DAY, "STATUS:CANCELLED"))
    at(h, NOW + 21 * DAY + 2 * HOUR)
    [note] = notes_of(h, "review")
    assert start_of(note) == NOW + 50 * DAY
    h.remove("m.ics")
    at(h, NOW + 21 * DAY + 3 * HOUR)
    assert notes_of(h, "review") == []
    assert [r["client"] for r in h.records_of("review_reminder")] == ["jane@example.com"]


def test_reviewed_on_the_appointment_withdraws_the_reminder(h: PolicyHarness) -> None:
    """The marker on the appointment under the note records the review and removes it."""
    review_setup(h)
    at(h, NOW + 21 * DAY)
    assert len(notes_of(h, "review")) == 1
    h.put("n.ics", meeting("n", NOW + 25 * DAY, "CATEGORIES:reviewed"))
    at(h, NOW + 21 * DAY + HOUR)
    assert notes_of(h, "review") == []
    assert len(h.records_of("payment_terms_reviewed")) == 1


def test_a_client_on_two_calendars_is_reminded_once_over_the_earliest(tmp_path: Path) -> None:
    """Jane's next appointment is on the second calendar: the reminder goes there, once."""
    text = _config() + '[[calendars]]\nname = "home"\nconnector = "local"\npath = "home"\n'
    harness = PolicyHarness(tmp_path, text)
    try:
        (tmp_path / "home").mkdir()
        harness.put("p.ics", meeting("p", NOW - 10 * DAY))
        harness.put("n.ics", meeting("n", NOW + 40 * DAY))
        (tmp_path / "home" / "h.ics").write_bytes(meeting("h", NOW + 30 * DAY))
        harness.cycle_all()
        harness.put("x.ics", meeting("x", NOW + 60 * DAY))
        at(harness, NOW + 21 * DAY)
        harness.put("y.ics", meeting("y", NOW + 61 * DAY))
        at(harness, NOW + 22 * DAY)
        [note] = notes_of(harness, "review")
        assert start_of(note) == NOW + 30 * DAY
        [record] = harness.records_of("review_reminder")
        assert record["calendar"] == "home"
    finally:
        harness.close()


# --- 5: the upgrade of a real schema-3 database ----------------------------------------------


def _v3(root: Path) -> None:
    shutil.copytree(FIXTURE / "cal", root / "cal")
    (root / "var").mkdir(mode=0o700)
    (root / "notes").mkdir()
    shutil.copy(FIXTURE / "audit.jsonl", root / "var" / "audit.jsonl")
    db = sqlite3.connect(root / "var" / "state.db")
    db.executescript((FIXTURE / "state.sql").read_text())
    for path in (root / "cal").iterdir():  # the files are copies: as the last cycle saw them
        db.execute("UPDATE objects SET etag = ? WHERE href = ?", (_etag(os.stat(path)), path.name))
    db.commit()
    db.close()


def test_a_version_3_database_made_by_the_old_code_upgrades(tmp_path: Path) -> None:
    """Reviews are seeded from the ledger, stored remote appointments get their readiness
    check on the next cycle (once), and attendance timers survive."""
    _v3(tmp_path)
    h = PolicyHarness(tmp_path, _config())
    try:
        store = h.engine.store
        assert store.schema_version() == syncd.store.SCHEMA_VERSION == 5
        kept_since = datetime(2026, 11, 27, 11, 0, tzinfo=NOW.tzinfo)
        assert store.reviews_of(["jane@example.com"])["jane@example.com"].since == kept_since
        assert store.rearm_pending("work")
        at(h, NOW + 5 * HOUR)  # a quiet cycle: nothing changed in the folder
        assert not store.rearm_pending("work")
        assert store.next_due("work") == CHECK
        at(h, CHECK)
        assert len(notes_of(h, "readiness")) == 1
        since = store.reviews_of(["jane@example.com"])["jane@example.com"].since
        assert since == NOW - 10 * DAY  # p, seen by the one-time check
    finally:
        h.close()


# --- 6: the cost of a due review with nothing ahead ------------------------------------------


def test_a_due_review_with_nothing_ahead_does_not_decode_the_calendar(
    h: PolicyHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Busy cycles of a 60-object calendar decode only the changed object."""
    h.put("p.ics", meeting("p", NOW - 20 * DAY, client=BOB))
    for i in range(60):
        start = NOW + i * 5 * HOUR
        h.put(f"o{i}.ics", calendar(event(f"o{i}", start, start + HOUR, ME)))
    h.cycle_all()
    at(h, NOW + 200 * DAY)
    decoded: list[int] = []
    real = syncd.store.decode_instances

    def counted(text: str) -> object:
        found = real(text)
        decoded.append(len(found))
        return found

    monkeypatch.setattr(syncd.store, "decode_instances", counted)
    for k in range(3):
        h.put("own.ics", calendar(event("own", NOW + 210 * DAY, NOW + 211 * DAY, f"SUMMARY:{k}")))
        at(h, NOW + 200 * DAY + (k + 1) * HOUR)
    assert sum(decoded) <= 3 * 2
    assert h.records_of("review_reminder") == []
