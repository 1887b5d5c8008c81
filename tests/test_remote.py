"""The pure parts of the reminders: remote, meeting links, linked components, the notes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from syncd.model import Instance, Status
from syncd.reminders import lead_text, render_readiness_note, render_review_note
from syncd.remote import has_link, is_remote, linked_uids
from syncd.rules import PolicySettings
from tests.ical import calendar, event

BERLIN = ZoneInfo("Europe/Berlin")
START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
POLICY = PolicySettings()


def instance(**changes: object) -> Instance:
    base = Instance(
        uid="u1",
        recurrence_id=None,
        start=START,
        end=START + timedelta(hours=1),
        status=Status.CONFIRMED,
        summary="Coaching",
        location="",
        description="",
        organizer="me@example.com",
        attendees=(("jane@example.com", "ACCEPTED"),),
        categories=(),
        transparent=False,
        modified=None,
        series_start=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "remote"),
    [
        pytest.param({}, False, id="plain"),
        pytest.param({"categories": ("Remote",)}, True, id="category"),
        pytest.param({"summary": "Coaching [online]"}, True, id="bracketed"),
        pytest.param({"location": "Microsoft Teams"}, True, id="teams-location"),
        pytest.param({"location": "Office 2"}, False, id="office"),
        pytest.param({"description": "https://meet.google.com/abc"}, True, id="meet-link"),
        pytest.param({"description": "https://cal.com/x/reschedule"}, False, id="other-link"),
    ],
)
def test_is_remote(changes: dict[str, object], remote: bool) -> None:
    """Markers, a video service in the location, a conferencing link: remote."""
    assert is_remote(instance(**changes), POLICY) is remote


@pytest.mark.parametrize(
    ("text", "hosts", "linked"),
    [
        pytest.param("https://us02web.zoom.us/j/1", (), True, id="zoom-subdomain"),
        pytest.param("https://evilzoom.us/j/1", (), False, id="lookalike"),
        pytest.param("https://acme.webex.com/meet/x", (), True, id="webex"),
        pytest.param("https://calendly.com/cancellations/1", (), False, id="booking"),
        pytest.param("https://video.example.net/r", ("video.example.net",), True, id="extra"),
        pytest.param("https://[::1", (), False, id="malformed"),
    ],
)
def test_has_link_in_text(text: str, hosts: tuple[str, ...], linked: bool) -> None:
    """Only links on conferencing hosts in location or description count."""
    assert has_link(instance(description=text), frozenset(), hosts) is linked


def test_linked_uids_reads_floating_tzid_and_date_recurrence_ids() -> None:
    """Recurrence ids as the instances carry them: floating in the series' zone, TZID'd in
    theirs, dates as dates; a master's link covers the series."""
    data = calendar(
        event("m", START, START, "URL:https://x.example/1"),
        event("f", datetime(2027, 4, 7, 10), datetime(2027, 4, 7, 11), "RRULE:FREQ=WEEKLY"),
        event(
            "f",
            datetime(2027, 4, 14, 10),
            datetime(2027, 4, 14, 11),
            "RECURRENCE-ID:20270414T100000",
            "CONFERENCE;VALUE=URI:https://x.example/2",
        ),
        event(
            "d",
            date(2027, 1, 2),
            date(2027, 1, 3),
            "RECURRENCE-ID;VALUE=DATE:20270102",
            "URL:https://x.example/3",
        ),
    ).decode()
    assert linked_uids(data, BERLIN) == {
        ("m", ""),
        ("f", "2027-04-14T08:00:00Z"),  # 10:00 CEST
        ("d", "2027-01-02"),
    }
    linked = linked_uids(data, BERLIN)
    occurrence = instance(uid="m", recurrence_id=START)
    assert has_link(occurrence, linked)


def test_linked_uids_of_unreadable_data_is_empty() -> None:
    """Not iCalendar: no links, no exception."""
    assert linked_uids("not a calendar", BERLIN) == frozenset()


@pytest.mark.parametrize(
    ("lead", "text"),
    [
        (timedelta(hours=48), "2 days"),
        (timedelta(hours=24), "1 day"),
        (timedelta(hours=36), "36 hours"),
        (timedelta(hours=1), "1 hour"),
    ],
)
def test_lead_text(lead: timedelta, text: str) -> None:
    """Whole days as days, else hours."""
    assert lead_text(lead) == text


def _text(data: bytes) -> str:
    vevent = next(iter(Calendar.from_ical(data).walk("VEVENT")))
    return f"{vevent['SUMMARY']}\n{vevent['DESCRIPTION']}"


def test_readiness_note_for_one_client() -> None:
    """Greeting by first name, the lead, the link placeholder and the test instructions."""
    text = _text(
        render_readiness_note(
            "k",
            instance(),
            [("jane@example.com", "Jane Doe")],
            BERLIN,
            lead=timedelta(hours=48),
            stamp=START,
        )
    )
    assert "Meeting link missing · Jane Doe" in text
    assert "Hello Jane," in text
    assert "at least 2 days ahead" in text
    assert "[meeting link]" in text
    assert "test your camera and sound" in text


def test_readiness_note_for_a_client_without_a_name_says_hello() -> None:
    """An address is no first name."""
    text = _text(
        render_readiness_note(
            "k",
            instance(),
            [("jane@example.com", "Jane Doe"), ("bob@example.com", "bob@example.com")],
            BERLIN,
            lead=timedelta(hours=24),
            stamp=START,
        )
    )
    assert "Hello,\n" in text
    assert "Draft to the clients" in text
    assert "at least 1 day ahead" in text


def test_review_note_names_the_basis_and_the_marker() -> None:
    """The basis date in the owner's zone and the marker to add."""
    text = _text(
        render_review_note(
            "k",
            instance(),
            "jane@example.com",
            "Jane Doe",
            ("client since", datetime(2026, 5, 31, 23, 30, tzinfo=UTC)),
            BERLIN,
            stamp=START,
            marker="reviewed",
        )
    )
    assert "Time to review payment terms with Jane Doe (client since 2026-06-01)" in text
    assert "add 'reviewed' to this note" in text
