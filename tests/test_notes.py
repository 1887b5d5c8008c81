"""Tests for syncd.notes: the readable note, its read-back, and private annotations."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from syncd.annotate import annotate_event, private_properties
from syncd.money import Money
from syncd.notes import (
    MAX_SUGGESTIONS,
    NoteFeedback,
    note_description,
    note_href,
    note_uid,
    read_note,
    render_note,
    summary_line,
)
from syncd.verdict import Actor, ClientRecord, Deposit, Flag, Verdict, VerdictKind
from tests.ical import calendar, event

BERLIN = ZoneInfo("Europe/Berlin")
KEY = "0123456789abcdef" * 4
STAMP = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)
EUR60 = Money(Decimal(60), "EUR")
EUR30 = Money(Decimal(30), "EUR")
WHO = "Who cancelled? Add the category 'client' or 'me' to this note."
WAIVE = "Add 'waive' to this note to waive the fee."
CALL = "video or phone call"
CONFIRM = "add 'no-show' or 'attended' to the appointment"
DRAFT = "Follow-up draft"
UNKIND = ("fault", "blame", "unacceptable")

BASE = Verdict(
    key=KEY,
    kind=VerdictKind.LATE_CANCELLATION,
    calendar="work",
    uid="session-1@example.com",
    instance=None,
    client="jane@example.com",
    client_name="Jane Doe",
    start=datetime(2026, 12, 8, 13, 0, tzinfo=UTC),
    end=datetime(2026, 12, 8, 14, 0, tzinfo=UTC),
    summary="Coaching",
    decided_at=datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
    rule="Cancelled with less than the 48 h late-cancellation window.",
    actor=Actor.CLIENT,
    actor_evidence="the client declined the invitation",
    notice_hours=22.0,
    fee=EUR60,
)
RECORD = ClientRecord(
    client="jane@example.com",
    name="Jane Doe",
    kept=12,
    cancellations=3,
    late_cancellations=2,
    moves=4,
    late_moves=1,
    no_shows=5,
    reliability=0.857,
)
SLOTS = [
    (datetime(2026, 12, 9, 9, 0, tzinfo=UTC), datetime(2026, 12, 9, 10, 0, tzinfo=UTC)),
    (datetime(2026, 12, 10, 13, 0, tzinfo=UTC), datetime(2026, 12, 10, 14, 0, tzinfo=UTC)),
]


def verdict(**changes: Any) -> Verdict:
    """The base verdict with some fields changed."""
    return dataclasses.replace(BASE, **changes)


def describe(v: Verdict, record: ClientRecord = RECORD, slots: Any = SLOTS, **kw: Any) -> str:
    """The note description in Berlin time."""
    return note_description(v, record, slots, BERLIN, **kw)


def draft(text: str) -> str:
    """The follow-up draft part of a description."""
    return text.partition(DRAFT)[2]


def note(v: Verdict = BASE, **kw: Any) -> bytes:
    """A rendered note with the default record, slots and stamp."""
    kw.setdefault("stamp", STAMP)
    return render_note(v, RECORD, SLOTS, BERLIN, **kw)


def vevent(data: bytes) -> Any:
    """The only VEVENT of an object."""
    (found,) = Calendar.from_ical(data).walk("VEVENT")
    return found


def without_private(data: bytes) -> bytes:
    """``data`` without X-SYNCD-* property lines (and their folded continuations)."""
    kept: list[bytes] = []
    dropping = False
    for line in data.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and dropping:
            continue
        dropping = line.upper().startswith(b"X-SYNCD-")
        if not dropping:
            kept.append(line)
    return b"".join(kept)


# --- identity ----------------------------------------------------------------------------


def test_note_uid_uses_the_first_40_characters_of_the_key() -> None:
    """The note UID is the prefix, 40 key characters and @syncd."""
    assert note_uid(KEY) == f"syncd-note-{KEY[:40]}@syncd"


def test_note_href_uses_the_first_40_characters_of_the_key() -> None:
    """The note href is the prefix, 40 key characters and .ics."""
    assert note_href(KEY) == f"syncd-note-{KEY[:40]}.ics"


# --- summary line --------------------------------------------------------------------------


def test_summary_late_cancellation_shows_hours() -> None:
    """A late cancellation names the client and the notice in hours."""
    assert summary_line(BASE) == "Late cancellation · Jane Doe · 22 h notice"


def test_summary_cancellation_shows_days_from_48_hours() -> None:
    """Notice of 48 hours or more is shown in days."""
    v = verdict(kind=VerdictKind.CANCELLATION, notice_hours=120.0, fee=None)
    assert summary_line(v) == "Cancellation · Jane Doe · 5 d notice"


@pytest.mark.parametrize(
    ("hours", "shown"), [(21.5, "22 h"), (47.4, "47 h"), (48.0, "2 d"), (83.0, "3 d")]
)
def test_summary_rounds_the_notice(hours: float, shown: str) -> None:
    """Hours below 48 round to whole hours, longer notice to whole days."""
    assert summary_line(verdict(notice_hours=hours)).endswith(f" · {shown} notice")


def test_summary_late_move() -> None:
    """A late move names the client and the notice."""
    v = verdict(kind=VerdictKind.LATE_MOVE, notice_hours=3.2)
    assert summary_line(v) == "Late move · Jane Doe · 3 h notice"


def test_summary_move() -> None:
    """A move in time names the client and the notice in days."""
    v = verdict(kind=VerdictKind.MOVE, notice_hours=96.0, fee=None)
    assert summary_line(v) == "Move · Jane Doe · 4 d notice"


def test_summary_no_show_has_no_notice() -> None:
    """A no-show names only the client."""
    assert summary_line(verdict(kind=VerdictKind.NO_SHOW)) == "No-show · Jane Doe"


def test_summary_possible_no_show_asks_to_confirm() -> None:
    """A possible no-show asks the owner to confirm."""
    v = verdict(kind=VerdictKind.POSSIBLE_NO_SHOW, notice_hours=None, fee=None)
    assert summary_line(v) == "Possible no-show · Jane Doe · please confirm"


def test_summary_waived() -> None:
    """A waived verdict says so next to its kind."""
    v = verdict(waived=True, waive_reason="emergency")
    assert summary_line(v) == "Late cancellation (waived) · Jane Doe · 22 h notice"


def test_summary_unknown_actor_asks_who_cancelled() -> None:
    """A cancellation by an unknown actor asks who cancelled."""
    v = verdict(actor=Actor.UNKNOWN)
    assert summary_line(v) == "Cancelled — who cancelled? · Jane Doe · 22 h notice"


def test_summary_falls_back_to_the_email_without_a_name() -> None:
    """A client without a name is shown by email."""
    assert summary_line(verdict(client_name=" ")).startswith("Late cancellation · jane@example")


# --- description -------------------------------------------------------------------------


def test_description_shows_the_fee() -> None:
    """The fee is shown with its currency."""
    assert "Fee: 60.00 EUR" in describe(BASE)


def test_description_says_no_fee() -> None:
    """A verdict without a fee says so."""
    assert "Fee: no fee" in describe(verdict(kind=VerdictKind.CANCELLATION, fee=None))


def test_description_shows_the_rule_notice_and_actor_evidence() -> None:
    """The reason, the notice and who made the change with the evidence are shown."""
    text = describe(BASE)
    assert "Why: Cancelled with less than the 48 h late-cancellation window." in text
    assert "Notice: 22 h" in text
    assert "the client declined the invitation" in text


def test_description_deposit_kept_as_credit() -> None:
    """A deposit kept as credit says so with its amount."""
    text = describe(verdict(deposit=Deposit.KEPT_AS_CREDIT, deposit_amount=EUR30))
    assert "Deposit of 30.00 EUR: kept as credit" in text


def test_description_deposit_forfeited() -> None:
    """A forfeited deposit says so."""
    assert "Deposit of 30.00 EUR: forfeited" in describe(
        verdict(deposit=Deposit.FORFEITED, deposit_amount=EUR30)
    )


def test_description_deposit_pending_until_local_deadline() -> None:
    """A pending deposit shows its deadline in the owner's time (13:00 UTC is 14:00 CET)."""
    v = verdict(
        deposit=Deposit.PENDING,
        deposit_amount=EUR30,
        deposit_deadline=datetime(2026, 12, 11, 13, 0, tzinfo=UTC),
    )
    assert "Deposit of 30.00 EUR: pending until Fri 11 Dec 14:00" in describe(v)


def test_description_shows_the_record_numbers() -> None:
    """Every count of the client's record and the reliability percentage appear."""
    text = describe(BASE)
    for part in (
        "Kept 12",
        "cancellations 3",
        "late cancellations 2",
        "moves 4",
        "late moves 1",
        "no-shows 5",
        "reliability 86%",
    ):
        assert part in text


def test_description_shows_flags_with_cause_and_action() -> None:
    """Flags of the verdict and of the record appear with cause and suggested action."""
    v = verdict(flags=(Flag("repeat_late_canceller", "availability", "offer usual slots"),))
    record = dataclasses.replace(RECORD, flags=(Flag("cost", "money trouble", "review terms"),))
    text = describe(v, record)
    assert (
        "Repeat late canceller: likely cause: availability; suggested action: offer usual" in text
    )
    assert "Cost: likely cause: money trouble; suggested action: review terms" in text


def test_description_shows_suggestions_in_local_time_across_dst() -> None:
    """Slots are shown in the owner's zone, in winter, in summer and over the DST switch."""
    slots = [
        (datetime(2026, 12, 8, 13, 0, tzinfo=UTC), datetime(2026, 12, 8, 14, 0, tzinfo=UTC)),
        (datetime(2026, 7, 7, 12, 0, tzinfo=UTC), datetime(2026, 7, 7, 13, 0, tzinfo=UTC)),
        (datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
    ]
    text = describe(BASE, slots=slots)
    assert "- Tue 8 Dec 14:00\u201315:00" in text
    assert "- Tue 7 Jul 14:00\u201315:00" in text
    assert "- Sun 29 Mar 01:30\u201303:30" in text


def test_description_names_both_days_of_a_slot_over_midnight() -> None:
    """A slot that ends on the next local day names both days."""
    slot = (datetime(2026, 12, 9, 22, 30, tzinfo=UTC), datetime(2026, 12, 9, 23, 30, tzinfo=UTC))
    assert "- Wed 9 Dec 23:30 \u2013 Thu 10 Dec 00:30" in describe(BASE, slots=[slot])


def test_description_limits_the_suggestions() -> None:
    """At most MAX_SUGGESTIONS slots are listed."""
    first = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
    slots = [
        (first + timedelta(days=n), first + timedelta(days=n, hours=1))
        for n in range(MAX_SUGGESTIONS + 3)
    ]
    listed = describe(BASE, slots=slots).partition(DRAFT)[0]
    assert listed.count("- ") == MAX_SUGGESTIONS


def test_description_refuses_naive_suggestions() -> None:
    """A naive suggestion is an error, not a guess."""
    with pytest.raises(ValueError, match="naive"):
        describe(BASE, slots=[(datetime(2026, 12, 9, 9), datetime(2026, 12, 9, 10))])


def test_description_asks_who_cancelled_when_actor_unknown() -> None:
    """An unknown actor gets the who-cancelled question."""
    assert WHO in describe(verdict(actor=Actor.UNKNOWN))


def test_description_does_not_ask_who_cancelled_when_actor_known() -> None:
    """A known actor gets no who-cancelled question."""
    assert "Who cancelled?" not in describe(BASE)


def test_description_explains_how_to_waive_a_fee() -> None:
    """A fee that is not waived comes with the way to waive it."""
    assert WAIVE in describe(BASE)


def test_description_shows_waiver_and_reason() -> None:
    """A waived verdict shows the waiver, its reason and no waive instruction."""
    text = describe(verdict(waived=True, waive_reason="family emergency"))
    assert "Waived: family emergency." in text
    assert "Fee: none (60.00 EUR waived)" in text
    assert WAIVE not in text


def test_description_hints_a_call_for_important_late_cancellation() -> None:
    """An important late cancellation suggests a video or phone call."""
    assert CALL in describe(verdict(important=True))


def test_description_no_call_hint_when_not_important() -> None:
    """A late cancellation that is not important has no call hint."""
    assert CALL not in describe(BASE)


def test_description_no_call_hint_for_important_no_show() -> None:
    """The call hint is for cancellations only."""
    assert CALL not in describe(verdict(kind=VerdictKind.NO_SHOW, important=True))


def test_description_possible_no_show_asks_to_confirm() -> None:
    """A possible no-show asks the owner to mark the appointment no-show or attended."""
    v = verdict(kind=VerdictKind.POSSIBLE_NO_SHOW, notice_hours=None, fee=None)
    assert CONFIRM in describe(v)


def test_description_shows_the_deposit_requirement_on_request() -> None:
    """A deposit requirement is shown when asked for, and only then."""
    assert "next bookings need a deposit" in describe(BASE, require_deposit_notice=True)
    assert "next bookings need a deposit" not in describe(BASE)


def test_drafts_differ_per_kind() -> None:
    """Cancellation, move, no-show and possible no-show each get their own draft."""
    kinds = [
        VerdictKind.LATE_CANCELLATION,
        VerdictKind.LATE_MOVE,
        VerdictKind.NO_SHOW,
        VerdictKind.POSSIBLE_NO_SHOW,
    ]
    drafts = {draft(describe(verdict(kind=kind))) for kind in kinds}
    assert len(drafts) == len(kinds)
    assert all(drafts)


def test_draft_offers_the_suggested_times() -> None:
    """The draft lists the suggested times in the owner's zone."""
    text = draft(describe(BASE))
    assert "Wed 9 Dec 10:00\u201311:00" in text
    assert "Thu 10 Dec 14:00\u201315:00" in text


def test_draft_mentions_the_fee_politely_when_one_applies() -> None:
    """A fee is mentioned as part of the booking terms."""
    assert "booking terms" in draft(describe(BASE))
    assert "60.00 EUR" in draft(describe(BASE))


def test_draft_does_not_mention_a_waived_fee() -> None:
    """A waived fee is left out of the draft."""
    assert "60.00 EUR" not in draft(describe(verdict(waived=True)))


def test_draft_of_possible_no_show_mentions_no_fee() -> None:
    """A possible no-show draft never mentions a fee."""
    assert "fee" not in draft(describe(verdict(kind=VerdictKind.POSSIBLE_NO_SHOW)))


def test_draft_apologises_when_the_owner_cancelled() -> None:
    """When the owner cancelled, the draft apologises instead of thanking."""
    text = draft(describe(verdict(kind=VerdictKind.CANCELLATION, actor=Actor.OWNER, fee=None)))
    assert "I'm sorry, but I need to cancel" in text


def test_attended_has_no_draft() -> None:
    """An attended appointment needs no follow-up draft."""
    assert DRAFT not in describe(verdict(kind=VerdictKind.ATTENDED, fee=None))


@pytest.mark.parametrize("kind", list(VerdictKind))
@pytest.mark.parametrize("actor", list(Actor))
def test_text_never_blames(kind: VerdictKind, actor: Actor) -> None:
    """No description or draft uses blaming words."""
    v = verdict(
        kind=kind,
        actor=actor,
        important=True,
        deposit=Deposit.FORFEITED,
        deposit_amount=EUR30,
        flags=(Flag("ghosting", "no-shows without rebooking", "consider ending"),),
    )
    text = describe(v, require_deposit_notice=True).lower()
    assert DRAFT.lower() in text or kind is VerdictKind.ATTENDED
    assert not [word for word in UNKIND if word in text]


# --- render_note -------------------------------------------------------------------------


def test_render_note_has_exactly_the_listed_fields() -> None:
    """The note event holds exactly the listed properties and the calendar VERSION/PRODID."""
    cal = Calendar.from_ical(note(categories=["client"]))
    assert set(cal.keys()) == {"VERSION", "PRODID"}
    assert str(cal["PRODID"]) == "-//syncd//notes//EN"
    (ev,) = cal.subcomponents
    assert set(ev.keys()) == {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "SUMMARY",
        "DESCRIPTION",
        "TRANSP",
        "CLASS",
        "CATEGORIES",
        "X-SYNCD-KEY",
        "X-SYNCD-VERDICT",
        "X-SYNCD-CLIENT",
    }


def test_render_note_values() -> None:
    """UID, times, summary, description and the private keys carry the verdict."""
    ev = vevent(note())
    assert str(ev["UID"]) == note_uid(KEY)
    assert ev["DTSTAMP"].dt == STAMP
    assert ev["DTSTART"].dt == BASE.start
    assert ev["DTEND"].dt == BASE.end
    assert str(ev["SUMMARY"]) == summary_line(BASE)
    assert str(ev["DESCRIPTION"]) == note_description(BASE, RECORD, SLOTS, BERLIN)
    assert str(ev["X-SYNCD-KEY"]) == KEY
    assert str(ev["X-SYNCD-VERDICT"]) == "late_cancellation"
    assert str(ev["X-SYNCD-CLIENT"]) == "jane@example.com"


def test_render_note_is_transparent_and_private() -> None:
    """The note is free time and private."""
    ev = vevent(note())
    assert str(ev["TRANSP"]) == "TRANSPARENT"
    assert str(ev["CLASS"]) == "PRIVATE"


def test_render_note_has_no_attendee_organizer_or_alarm() -> None:
    """The note has no attendees, no organizer and no reminders."""
    data = note()
    assert b"ATTENDEE" not in data
    assert b"ORGANIZER" not in data
    assert b"VALARM" not in data
    assert vevent(data).subcomponents == []


def test_render_note_stamps_in_utc() -> None:
    """An aware stamp in another zone is written as UTC."""
    data = note(stamp=STAMP.astimezone(BERLIN))
    assert b"DTSTAMP:20261207T160000Z" in data


def test_render_note_all_day_uses_dates() -> None:
    """An all-day appointment gives a date-valued note."""
    data = note(verdict(start=date(2026, 12, 8), end=date(2026, 12, 9)))
    assert b"DTSTART;VALUE=DATE:20261208" in data
    assert vevent(data)["DTEND"].dt == date(2026, 12, 9)


def test_render_note_is_deterministic() -> None:
    """Equal inputs give equal bytes."""
    assert note(categories=["waive"]) == note(categories=["waive"])


def test_render_note_keeps_the_owner_categories() -> None:
    """The owner's markers on the note are written back."""
    assert [str(c) for c in vevent(note(categories=["waive", "client"]))["CATEGORIES"].cats] == [
        "waive",
        "client",
    ]


def test_render_note_omits_empty_categories() -> None:
    """No categories means no CATEGORIES line."""
    assert b"CATEGORIES" not in note()


def test_render_note_refuses_a_naive_stamp() -> None:
    """A naive stamp is an error."""
    with pytest.raises(ValueError, match="aware"):
        note(stamp=datetime(2026, 12, 7, 16, 0))


# --- read_note ---------------------------------------------------------------------------


def test_read_note_round_trips_key_and_categories() -> None:
    """A rendered note reads back its key and lower-cased categories."""
    assert read_note(note(categories=["Waive", "ME"])) == NoteFeedback(KEY, ("waive", "me"), ())


def test_read_note_finds_bracketed_summary_markers() -> None:
    """Bracketed words the owner adds to the summary are read, lower-cased."""
    cal = Calendar.from_ical(note())
    ev = cal.walk("VEVENT")[0]
    ev["SUMMARY"] = f"{ev['SUMMARY']} [Waive] [no-show]"
    feedback = read_note(cal.to_ical())
    assert feedback is not None
    assert feedback.summary_markers == ("waive", "no-show")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\xff\xfe not a calendar",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
        b"BEGIN:VCALENDAR\r\nEND:VEVENT\r\n",
        b'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nX-SYNCD-KEY;X="a:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n',
    ],
)
def test_read_note_returns_none_for_garbage(data: bytes) -> None:
    """Unparseable input gives None, never an exception."""
    assert read_note(data) is None


def test_read_note_returns_none_for_other_events() -> None:
    """An ordinary event is not a note."""
    data = calendar(event("u1", BASE.start, BASE.end, "CATEGORIES:waive"))
    assert read_note(data) is None


# --- annotate_event ----------------------------------------------------------------------

START = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
PROPS = {"X-SYNCD-KEY": KEY, "X-SYNCD-VERDICT": "late_cancellation"}
RICH = (
    "ATTENDEE;CN=Jane Doe;PARTSTAT=DECLINED:mailto:jane@example.com",
    "ORGANIZER:mailto:me@example.com",
    "SEQUENCE:3",
    "DESCRIPTION:A long description that is folded by the server over more than",
    "  one line\\, with escapes\\; and more",
)
SERIES = calendar(
    event("s1", START, END, "RRULE:FREQ=WEEKLY;COUNT=4", *RICH),
    event(
        "s1",
        START + timedelta(days=7, hours=1),
        END + timedelta(days=7, hours=1),
        "RECURRENCE-ID:20261208T130000Z",
        summary="Moved",
    ),
    event(
        "s1",
        START + timedelta(days=14),
        END + timedelta(days=14),
        "RECURRENCE-ID;TZID=Europe/Berlin:20261215T140000",
        summary="Zoned",
    ),
)


def by_summary(data: bytes) -> dict[str, dict[str, str]]:
    """The X-SYNCD-* properties of each VEVENT, by SUMMARY."""
    out: dict[str, dict[str, str]] = {}
    for ev in Calendar.from_ical(data).walk("VEVENT"):
        out[str(ev["SUMMARY"])] = {k: str(v) for k, v in ev.items() if k.startswith("X-SYNCD-")}
    return out


def public(ev: Any) -> list[tuple[str, bytes]]:
    """An event's properties other than X-SYNCD-*, as iCalendar text."""
    out: list[tuple[str, bytes]] = []
    for name, value in ev.items():
        for item in value if isinstance(value, list) else [value]:
            if not name.startswith("X-SYNCD-"):
                out.append((name, item.to_ical()))
    return out


def test_annotate_adds_lines_and_changes_nothing_else() -> None:
    """Removing the added lines gives back the input, byte for byte."""
    data = calendar(event("u1", START, END, *RICH))
    out = annotate_event(data, uid="u1", instance=None, properties=PROPS)
    assert out != data
    assert without_private(out) == data
    assert private_properties(out) == PROPS


def test_annotate_inserts_just_before_end_vevent() -> None:
    """New lines go right before the target's END:VEVENT."""
    data = calendar(event("u1", START, END))
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-A": "1"})
    assert b"X-SYNCD-A:1\r\nEND:VEVENT\r\n" in out


def test_annotate_master_when_instance_is_none() -> None:
    """Without an instance the series master is annotated."""
    out = annotate_event(SERIES, uid="s1", instance=None, properties=PROPS)
    assert by_summary(out) == {"Session": PROPS, "Moved": {}, "Zoned": {}}
    assert without_private(out) == SERIES


def test_annotate_override_with_utc_recurrence_id() -> None:
    """An instance with a UTC override annotates that override only."""
    out = annotate_event(SERIES, uid="s1", instance="2026-12-08T13:00:00Z", properties=PROPS)
    assert by_summary(out) == {"Session": {}, "Moved": PROPS, "Zoned": {}}
    assert without_private(out) == SERIES


def test_annotate_override_with_tzid_recurrence_id() -> None:
    """A TZID RECURRENCE-ID is matched by its UTC time (14:00 Berlin is 13:00 UTC)."""
    out = annotate_event(SERIES, uid="s1", instance="2026-12-15T13:00:00Z", properties=PROPS)
    assert by_summary(out) == {"Session": {}, "Moved": {}, "Zoned": PROPS}


def test_annotate_override_with_custom_vtimezone() -> None:
    """A RECURRENCE-ID in a custom VTIMEZONE is converted with that zone."""
    zone = (
        "BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\n"
        "DTSTART:16010101T000000\r\nTZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\n"
        "END:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    body = event("c1", START, END, "RRULE:FREQ=DAILY") + event(
        "c1", START, END, 'RECURRENCE-ID;TZID="Customized Time Zone":20261202T183000'
    )
    data = calendar(body).replace(b"BEGIN:VEVENT", zone.encode() + b"BEGIN:VEVENT", 1)
    out = annotate_event(data, uid="c1", instance="2026-12-02T13:00:00Z", properties=PROPS)
    events = Calendar.from_ical(out).walk("VEVENT")
    assert ["X-SYNCD-KEY" in ev for ev in events] == [False, True]


def test_annotate_all_day_override() -> None:
    """A date instance matches a date RECURRENCE-ID."""
    day = date(2026, 12, 1)
    data = calendar(
        event("d1", day, day + timedelta(days=1), "RRULE:FREQ=DAILY"),
        event("d1", day, day + timedelta(days=1), "RECURRENCE-ID;VALUE=DATE:20261203"),
    )
    out = annotate_event(data, uid="d1", instance="2026-12-03", properties=PROPS)
    assert ["X-SYNCD-KEY" in ev for ev in Calendar.from_ical(out).walk("VEVENT")] == [False, True]


def test_annotate_instance_without_override_goes_to_master() -> None:
    """An occurrence without an override is annotated on the master."""
    out = annotate_event(SERIES, uid="s1", instance="2026-12-22T13:00:00Z", properties=PROPS)
    assert by_summary(out)["Session"] == PROPS


def test_annotate_replaces_an_existing_property() -> None:
    """An existing X-SYNCD property is replaced in place, not duplicated."""
    data = calendar(event("u1", START, END, "X-SYNCD-KEY:old", "SEQUENCE:2"))
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-KEY": "new"})
    assert out == data.replace(b"X-SYNCD-KEY:old", b"X-SYNCD-KEY:new")


def test_annotate_replaces_a_folded_property() -> None:
    """A folded X-SYNCD property is replaced with all its continuation lines."""
    folded = ("X-SYNCD-NOTE:" + "a" * 70, " " + "b" * 70, "\t" + "c" * 10)
    data = calendar(event("u1", START, END, *folded, "SEQUENCE:2"))
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-NOTE": "short"})
    assert out == without_private(data).replace(b"SEQUENCE:2", b"X-SYNCD-NOTE:short\r\nSEQUENCE:2")


def test_annotate_leaves_an_equal_value_untouched() -> None:
    """An existing property with the same value stays as it is, however it is folded."""
    data = calendar(event("u1", START, END, "X-SYNCD-KEY:ab", " c\\,d"))
    assert (
        annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-KEY": "abc,d"}) == data
    )


def test_annotate_removes_duplicate_properties() -> None:
    """Duplicates of a replaced property are removed, so one value remains."""
    data = calendar(event("u1", START, END, "X-SYNCD-KEY:a", "SEQUENCE:1", "X-SYNCD-KEY:b"))
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-KEY": "c"})
    assert out == data.replace(b"X-SYNCD-KEY:a", b"X-SYNCD-KEY:c").replace(
        b"X-SYNCD-KEY:b\r\n", b""
    )


def test_annotate_escapes_values_per_rfc_5545() -> None:
    """Backslash, semicolon, comma and newline are escaped in the written line."""
    data = calendar(event("u1", START, END))
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-A": "a,b;c\\d\ne"})
    assert b"\r\nX-SYNCD-A:a\\,b\\;c\\\\d\\ne\r\n" in out


def test_annotate_reads_a_floating_recurrence_id_in_the_master_zone() -> None:
    """A floating RECURRENCE-ID takes the master's zone (14:00 Berlin is 13:00 UTC)."""
    data = calendar(
        event("f1", START, END, "RRULE:FREQ=DAILY", tzid="Europe/Berlin"),
        event("f1", START, END, "RECURRENCE-ID:20261202T140000"),
    )
    out = annotate_event(data, uid="f1", instance="2026-12-02T13:00:00Z", properties=PROPS)
    assert ["X-SYNCD-KEY" in ev for ev in Calendar.from_ical(out).walk("VEVENT")] == [False, True]


def test_annotate_reads_a_floating_recurrence_id_in_the_given_zone() -> None:
    """With a floating master, a floating RECURRENCE-ID is read in the given zone."""
    floating = (START.replace(tzinfo=None), END.replace(tzinfo=None))
    data = calendar(
        event("f2", *floating, "RRULE:FREQ=DAILY"),
        event("f2", START, END, "RECURRENCE-ID:20261202T140000"),
    )
    out = annotate_event(
        data, uid="f2", instance="2026-12-02T13:00:00Z", properties=PROPS, zone=BERLIN
    )
    assert ["X-SYNCD-KEY" in ev for ev in Calendar.from_ical(out).walk("VEVENT")] == [False, True]


def test_annotate_ignores_properties_of_nested_alarms() -> None:
    """An X-SYNCD property inside a VALARM is not the event's own and stays."""
    alarm = ("BEGIN:VALARM", "ACTION:DISPLAY", "X-SYNCD-KEY:alarm", "END:VALARM")
    data = calendar(event("u1", START, END, *alarm))
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-KEY": "k"})
    assert b"X-SYNCD-KEY:alarm\r\n" in out
    assert b"X-SYNCD-KEY:k\r\nEND:VEVENT" in out


def test_annotate_keeps_lf_files_lf() -> None:
    """An LF-only file stays LF-only."""
    data = calendar(event("u1", START, END, *RICH)).replace(b"\r\n", b"\n")
    out = annotate_event(data, uid="u1", instance=None, properties=PROPS)
    assert b"\r" not in out
    assert without_private(out) == data


def test_annotate_folds_long_values_at_75_octets() -> None:
    """Long values are folded without splitting characters."""
    data = calendar(event("u1", START, END))
    value = "ü€" * 60
    out = annotate_event(data, uid="u1", instance=None, properties={"X-SYNCD-LONG": value})
    assert all(len(line) <= 75 for line in out.split(b"\r\n"))
    assert private_properties(out) == {"X-SYNCD-LONG": value}


@pytest.mark.parametrize("name", ["SUMMARY", "X-OTHER", "X-SYNCD-BAD NAME", "X-SYNCD-A:B"])
def test_annotate_refuses_other_names(name: str) -> None:
    """Only X-SYNCD-* names made of letters, digits and hyphens are accepted."""
    with pytest.raises(ValueError, match="X-SYNCD"):
        annotate_event(SERIES, uid="s1", instance=None, properties={name: "x"})


def test_annotate_refuses_control_characters() -> None:
    """A carriage return or other control character in a value is refused."""
    with pytest.raises(ValueError, match="control"):
        annotate_event(SERIES, uid="s1", instance=None, properties={"X-SYNCD-A": "a\rb"})


def test_annotate_refuses_an_unknown_uid() -> None:
    """No VEVENT with the UID is an error."""
    with pytest.raises(ValueError, match="no VEVENT"):
        annotate_event(SERIES, uid="other", instance=None, properties=PROPS)


def test_annotate_refuses_a_missing_instance_without_master() -> None:
    """An instance with neither its override nor a master among several overrides is an
    error."""
    data = calendar(
        event("o1", START, END, "RECURRENCE-ID:20261201T130000Z"),
        event("o1", START, END, "RECURRENCE-ID:20261202T130000Z"),
    )
    with pytest.raises(ValueError, match="no VEVENT"):
        annotate_event(data, uid="o1", instance="2026-12-08T13:00:00Z", properties=PROPS)


def test_annotate_takes_a_lone_occurrence_whose_key_moved_with_its_series() -> None:
    """An object holding one occurrence on its own (as Graph lists them) is annotated even
    when the verdict names the occurrence's old key: its series moved as a whole."""
    data = calendar(event("o1", START, END, "RECURRENCE-ID:20261201T140000Z"))
    out = annotate_event(data, uid="o1", instance="2026-12-01T13:00:00Z", properties=PROPS)
    assert private_properties(out) == PROPS


def test_private_properties_reads_all_vevents() -> None:
    """Private properties of every VEVENT are read back, unescaped."""
    data = calendar(event("u1", START, END, "X-SYNCD-A:x\\, y\\;z\\nw\\\\"))
    assert private_properties(data) == {"X-SYNCD-A": "x, y;z\nw\\"}


VALUES = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t;,\\:\"'"),
    max_size=200,
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["X-SYNCD-KEY", "X-SYNCD-VERDICT", "X-SYNCD-NOTE-1"]), VALUES
    ),
    crlf=st.booleans(),
)
def test_annotate_round_trips_any_text(values: dict[str, str], crlf: bool) -> None:
    """Any text value reads back exactly, by syncd and by icalendar, and nothing else changes."""
    data = SERIES if crlf else SERIES.replace(b"\r\n", b"\n")
    out = annotate_event(data, uid="s1", instance="2026-12-08T13:00:00Z", properties=values)
    assert private_properties(out) == values
    assert without_private(out) == data
    as_text = re.sub(rb"(?m)^(X-SYNCD-[A-Z0-9-]+):", rb"\1;VALUE=TEXT:", out)
    moved = Calendar.from_ical(as_text).walk("VEVENT")[1]
    assert {k: str(v) for k, v in moved.items() if k.startswith("X-SYNCD-")} == values
    before = Calendar.from_ical(data).walk("VEVENT")
    after = Calendar.from_ical(out).walk("VEVENT")
    assert [public(ev) for ev in after] == [public(ev) for ev in before]
