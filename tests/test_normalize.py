"""Tests for syncd.normalize: iCalendar objects to normalized instances."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.model import Instance, Status, format_when
from syncd.normalize import Horizon, Normalized, ParseError, normalize_object

OWNER = ZoneInfo("Europe/Oslo")
HORIZON = Horizon(datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))

CUSTOM_ZONE = """BEGIN:VTIMEZONE
TZID:Customized Time Zone
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0530
TZOFFSETTO:+0530
END:STANDARD
END:VTIMEZONE
"""


def ics(*events: str, extra: str = "") -> bytes:
    """Wrap VEVENT bodies (property lines) in a VCALENDAR, with CRLF line ends."""
    parts = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//syncd tests//EN", extra.strip()]
    for body in events:
        parts += ["BEGIN:VEVENT", body.strip(), "END:VEVENT"]
    parts.append("END:VCALENDAR")
    text = "\n".join(part for part in parts if part)
    return ("\r\n".join(text.splitlines()) + "\r\n").encode()


def parse(data: bytes, horizon: Horizon = HORIZON) -> Normalized:
    """Normalize with the default horizon and owner zone."""
    return normalize_object(data, horizon=horizon, owner_tz=OWNER)


def only(data: bytes) -> Instance:
    """The single instance an object yields."""
    (instance,) = parse(data).instances
    return instance


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def starts(result: Normalized) -> list[datetime | date]:
    """The instance starts, in order."""
    return [instance.start for instance in result.instances]


WEEKLY = """UID:weekly
DTSTART;TZID=Europe/Berlin:20240101T100000
DTEND;TZID=Europe/Berlin:20240101T110000
RRULE:FREQ=WEEKLY
SUMMARY:Standup
"""
MARCH = Horizon(utc(2024, 3, 1), utc(2024, 3, 22))


# --- single events ------------------------------------------------------------------------


def test_single_timed_event_in_iana_zone() -> None:
    """A TZID naming an IANA zone is converted to UTC; a single event has no recurrence id."""
    instance = only(
        ics(
            "UID:a\nDTSTART;TZID=America/New_York:20240110T090000\n"
            "DTEND;TZID=America/New_York:20240110T100000\nSUMMARY:Cut"
        )
    )
    assert (instance.uid, instance.recurrence_id) == ("a", None)
    assert (instance.start, instance.end) == (utc(2024, 1, 10, 14), utc(2024, 1, 10, 15))
    assert instance.summary == "Cut"


def test_single_event_outside_horizon_is_kept() -> None:
    """Single events are returned whatever their date."""
    instance = only(ics("UID:old\nDTSTART:20100105T100000Z"))
    assert instance.start == utc(2010, 1, 5, 10)


def test_floating_time_takes_owner_zone() -> None:
    """A datetime without zone is read in the owner's zone."""
    instance = only(ics("UID:f\nDTSTART:20240701T100000\nDTEND:20240701T113000"))
    assert (instance.start, instance.end) == (utc(2024, 7, 1, 8), utc(2024, 7, 1, 9, 30))


def test_all_day_event_stays_date_with_exclusive_end() -> None:
    """VALUE=DATE start and end stay dates; the end is exclusive."""
    instance = only(ics("UID:d\nDTSTART;VALUE=DATE:20240301\nDTEND;VALUE=DATE:20240303"))
    assert (instance.start, instance.end) == (date(2024, 3, 1), date(2024, 3, 3))
    assert instance.all_day


def test_all_day_event_without_end_lasts_one_day() -> None:
    """An all-day event without DTEND or DURATION ends the next day."""
    instance = only(ics("UID:d\nDTSTART;VALUE=DATE:20240301"))
    assert instance.end == date(2024, 3, 2)


def test_duration_gives_the_end() -> None:
    """Without DTEND the end is DTSTART plus DURATION."""
    instance = only(ics("UID:u\nDTSTART:20240301T090000Z\nDURATION:PT1H30M"))
    assert instance.end == utc(2024, 3, 1, 10, 30)


def test_all_day_duration_counts_whole_days() -> None:
    """An all-day event with DURATION ends that many days later."""
    instance = only(ics("UID:u\nDTSTART;VALUE=DATE:20240301\nDURATION:P2D"))
    assert instance.end == date(2024, 3, 3)


def test_timed_event_without_end_or_duration_ends_at_start() -> None:
    """A timed event without DTEND or DURATION has zero length."""
    instance = only(ics("UID:u\nDTSTART:20240301T090000Z"))
    assert instance.end == instance.start == utc(2024, 3, 1, 9)


def test_duplicate_single_events_keep_highest_sequence() -> None:
    """Two copies of one single event yield one instance, the one with the higher SEQUENCE."""
    result = parse(
        ics(
            "UID:dup\nSEQUENCE:2\nDTSTART:20240301T100000Z\nSUMMARY:new",
            "UID:dup\nSEQUENCE:1\nDTSTART:20240301T090000Z\nSUMMARY:old",
        )
    )
    assert [i.summary for i in result.instances] == ["new"]


# --- recurring series ---------------------------------------------------------------------


def test_weekly_series_is_limited_to_the_horizon() -> None:
    """A weekly RRULE yields the occurrences starting inside the horizon, keyed by start."""
    result = parse(ics(WEEKLY), MARCH)
    expected = [utc(2024, 3, 4, 9), utc(2024, 3, 11, 9), utc(2024, 3, 18, 9)]
    assert starts(result) == expected
    assert [i.recurrence_id for i in result.instances] == expected
    assert {i.series_start for i in result.instances} == {utc(2024, 1, 1, 9)}
    assert result.recurring


def test_occurrence_overlapping_the_horizon_start_is_left_out() -> None:
    """Only occurrences that start inside the horizon count, not those reaching into it."""
    data = ics("UID:late\nDTSTART:20240229T230000Z\nDURATION:PT2H\nRRULE:FREQ=DAILY;COUNT=2")
    assert starts(parse(data, MARCH)) == [utc(2024, 3, 1, 23)]


def test_series_follows_wall_clock_across_dst() -> None:
    """Occurrences keep the local time of day when daylight saving time starts."""
    result = parse(ics(WEEKLY), Horizon(utc(2024, 3, 25), utc(2024, 4, 2)))
    assert starts(result) == [utc(2024, 3, 25, 9), utc(2024, 4, 1, 8)]


def test_exdate_removes_an_occurrence() -> None:
    """EXDATE removes that occurrence from the expansion."""
    result = parse(ics(WEEKLY + "EXDATE;TZID=Europe/Berlin:20240311T100000"), MARCH)
    assert starts(result) == [utc(2024, 3, 4, 9), utc(2024, 3, 18, 9)]


def test_rdate_adds_an_occurrence() -> None:
    """RDATE adds an occurrence keyed by its own start."""
    result = parse(ics(WEEKLY + "RDATE;TZID=Europe/Berlin:20240313T150000"), MARCH)
    added = [i for i in result.instances if i.recurrence_id == utc(2024, 3, 13, 14)]
    assert [(i.start, i.end) for i in added] == [(utc(2024, 3, 13, 14), utc(2024, 3, 13, 15))]


def test_rdate_alone_makes_an_object_recurring() -> None:
    """An object whose only recurrence is RDATE is a recurring series."""
    result = parse(ics("UID:r\nDTSTART:20240301T090000Z\nRDATE:20240305T090000Z"))
    assert result.recurring
    assert [i.recurrence_id for i in result.instances] == [utc(2024, 3, 1, 9), utc(2024, 3, 5, 9)]


def test_moved_override_keeps_recurrence_id_with_new_start() -> None:
    """An override keeps its original start as key and carries its new start and fields."""
    override = (
        "UID:weekly\nRECURRENCE-ID;TZID=Europe/Berlin:20240311T100000\n"
        "DTSTART;TZID=Europe/Berlin:20240312T140000\n"
        "DTEND;TZID=Europe/Berlin:20240312T150000\nSUMMARY:Moved"
    )
    result = parse(ics(WEEKLY, override), MARCH)
    moved = next(i for i in result.instances if i.recurrence_id == utc(2024, 3, 11, 9))
    assert (moved.start, moved.end, moved.summary) == (
        utc(2024, 3, 12, 13),
        utc(2024, 3, 12, 14),
        "Moved",
    )
    assert len(result.instances) == 3


def test_cancelled_override_becomes_cancelled_instance() -> None:
    """An override with STATUS:CANCELLED stays as an instance with status cancelled."""
    override = (
        "UID:weekly\nRECURRENCE-ID;TZID=Europe/Berlin:20240311T100000\n"
        "DTSTART;TZID=Europe/Berlin:20240311T100000\nSTATUS:CANCELLED"
    )
    result = parse(ics(WEEKLY, override), MARCH)
    statuses = {format_when(i.recurrence_id or i.start): i.status for i in result.instances}
    assert statuses == {
        "2024-03-04T09:00:00Z": Status.CONFIRMED,
        "2024-03-11T09:00:00Z": Status.CANCELLED,
        "2024-03-18T09:00:00Z": Status.CONFIRMED,
    }


def test_all_day_recurring_series_keeps_dates() -> None:
    """An all-day series yields date starts, ends and recurrence ids."""
    data = ics(
        "UID:ad\nDTSTART;VALUE=DATE:20240304\nDTEND;VALUE=DATE:20240305\nRRULE:FREQ=DAILY;COUNT=3"
    )
    result = parse(data)
    assert [(i.recurrence_id, i.start, i.end) for i in result.instances] == [
        (date(2024, 3, 4), date(2024, 3, 4), date(2024, 3, 5)),
        (date(2024, 3, 5), date(2024, 3, 5), date(2024, 3, 6)),
        (date(2024, 3, 6), date(2024, 3, 6), date(2024, 3, 7)),
    ]
    assert result.instances[0].series_start == date(2024, 3, 4)


def test_all_day_series_override_with_datetime_id_is_keyed_by_date() -> None:
    """A date-time RECURRENCE-ID on an all-day series still gives a date key."""
    data = ics(
        "UID:ad\nDTSTART;VALUE=DATE:20240304\nRRULE:FREQ=DAILY;COUNT=2",
        "UID:ad\nRECURRENCE-ID:20240305T000000\nDTSTART;VALUE=DATE:20240307\nSUMMARY:Moved",
    )
    result = parse(data)
    assert [(i.recurrence_id, i.start) for i in result.instances] == [
        (date(2024, 3, 4), date(2024, 3, 4)),
        (date(2024, 3, 5), date(2024, 3, 7)),
    ]


def test_all_day_series_is_cut_at_utc_midnight() -> None:
    """An all-day occurrence belongs to the horizon when its UTC midnight does."""
    data = ics("UID:ad\nDTSTART;VALUE=DATE:20240304\nRRULE:FREQ=DAILY;COUNT=5")
    result = parse(data, Horizon(utc(2024, 3, 5), utc(2024, 3, 7)))
    assert starts(result) == [date(2024, 3, 5), date(2024, 3, 6)]


def test_floating_series_takes_owner_zone() -> None:
    """A series with floating times is expanded on the owner's wall clock."""
    data = ics("UID:fl\nDTSTART:20240701T230000\nRRULE:FREQ=DAILY;COUNT=2")
    assert starts(parse(data)) == [utc(2024, 7, 1, 21), utc(2024, 7, 2, 21)]


def test_floating_recurrence_id_refers_to_the_series_zone() -> None:
    """A RECURRENCE-ID without zone in a zoned series is read in the master's zone."""
    data = ics(
        "UID:ny\nDTSTART;TZID=America/New_York:20240304T090000\nRRULE:FREQ=DAILY;COUNT=2",
        "UID:ny\nRECURRENCE-ID:20240305T090000\nDTSTART;TZID=America/New_York:20240305T120000",
    )
    result = parse(data)
    assert [(i.recurrence_id, i.start) for i in result.instances] == [
        (utc(2024, 3, 4, 14), utc(2024, 3, 4, 14)),
        (utc(2024, 3, 5, 14), utc(2024, 3, 5, 17)),
    ]


def test_orphan_override_is_an_instance_with_its_recurrence_id() -> None:
    """An override whose master is missing becomes an instance keyed by its RECURRENCE-ID."""
    result = parse(
        ics("UID:o\nRECURRENCE-ID:20240311T090000Z\nDTSTART:20240311T120000Z\nSUMMARY:Lone")
    )
    (instance,) = result.instances
    assert (instance.recurrence_id, instance.start) == (utc(2024, 3, 11, 9), utc(2024, 3, 11, 12))


def test_several_uids_are_each_handled() -> None:
    """An object holding two UIDs yields the instances of both and lists the UIDs in order."""
    result = parse(ics("UID:b\nDTSTART:20240301T090000Z", WEEKLY), MARCH)
    assert result.uids == ("b", "weekly")
    assert [i.uid for i in result.instances] == ["b", "weekly", "weekly", "weekly"]


def test_object_without_vevent_yields_nothing() -> None:
    """A calendar with only a VTODO is valid and yields no instances."""
    data = ics(extra="BEGIN:VTODO\nUID:t\nDTSTART:20240301T090000Z\nEND:VTODO")
    assert parse(data) == Normalized(instances=(), recurring=False, uids=())


# --- time zones ---------------------------------------------------------------------------


def test_custom_vtimezone_is_honoured() -> None:
    """A VTIMEZONE with an Exchange-style custom TZID defines the offset."""
    data = ics("UID:c\nDTSTART;TZID=Customized Time Zone:20240301T100000", extra=CUSTOM_ZONE)
    assert only(data).start == utc(2024, 3, 1, 4, 30)


def test_custom_vtimezone_is_honoured_in_series() -> None:
    """A series and its override in a custom VTIMEZONE share the same keys."""
    data = ics(
        "UID:c\nDTSTART;TZID=Customized Time Zone:20240301T100000\nRRULE:FREQ=DAILY;COUNT=2",
        "UID:c\nRECURRENCE-ID;TZID=Customized Time Zone:20240302T100000\n"
        "DTSTART;TZID=Customized Time Zone:20240302T110000",
        extra=CUSTOM_ZONE,
    )
    result = parse(data)
    assert [(i.recurrence_id, i.start) for i in result.instances] == [
        (utc(2024, 3, 1, 4, 30), utc(2024, 3, 1, 4, 30)),
        (utc(2024, 3, 2, 4, 30), utc(2024, 3, 2, 5, 30)),
    ]


def test_windows_zone_name_is_mapped() -> None:
    """A Windows zone name such as "W. Europe Standard Time" is read as its IANA zone."""
    data = ics("UID:w\nDTSTART;TZID=W. Europe Standard Time:20240701T100000")
    assert only(data).start == utc(2024, 7, 1, 8)


def test_microsoft_utc_tzid_is_utc() -> None:
    """The TZID "tzone://Microsoft/Utc", unknown to icalendar, is read as UTC."""
    data = ics('UID:m\nDTSTART;TZID="tzone://Microsoft/Utc":20240701T100000')
    assert only(data).start == utc(2024, 7, 1, 10)


def test_microsoft_utc_series_keys_match_overrides() -> None:
    """In a tzone://Microsoft/Utc series an override replaces the occurrence it names."""
    tz = 'TZID="tzone://Microsoft/Utc"'
    data = ics(
        f"UID:m\nDTSTART;{tz}:20240701T100000\nRRULE:FREQ=DAILY;COUNT=2\n"
        f"EXDATE;{tz}:20240702T100000",
        f"UID:m\nRECURRENCE-ID;{tz}:20240701T100000\nDTSTART;{tz}:20240701T120000",
    )
    result = parse(data)
    assert [(i.recurrence_id, i.start) for i in result.instances] == [
        (utc(2024, 7, 1, 10), utc(2024, 7, 1, 12))
    ]


def test_unknown_tzid_falls_back_to_owner_zone() -> None:
    """A TZID that is neither defined nor known is read in the owner's zone."""
    data = ics("UID:x\nDTSTART;TZID=Somewhere Odd:20240701T100000")
    assert only(data).start == utc(2024, 7, 1, 8)


# --- fields -------------------------------------------------------------------------------


def test_private_x_syncd_properties_are_ignored() -> None:
    """X-SYNCD-* properties, even with broken values, do not change the instance."""
    plain = ics(WEEKLY)
    marked = ics(
        WEEKLY + "X-SYNCD-NOTE:client late twice\nX-SYNCD-STATE;VALUE=DATE-TIME:garbage\n"
        "X-SYNCD-CATEGORIES:Annotated"
    )
    assert parse(marked, MARCH) == parse(plain, MARCH)


def test_people_and_categories_are_normalized() -> None:
    """Emails lose mailto: and case; attendees dedupe and sort; categories flatten and sort."""
    instance = only(
        ics(
            "UID:p\nDTSTART:20240301T090000Z\nORGANIZER;CN=Boss:MAILTO:Boss@Example.COM\n"
            "ATTENDEE;PARTSTAT=accepted:mailto:zed@example.com\n"
            "ATTENDEE:mailto:Amy@Example.com\n"
            "ATTENDEE;PARTSTAT=DECLINED:mailto:ZED@example.com\n"
            "CATEGORIES:work, Client ,\n"
            "CATEGORIES:WORK,alpha"
        )
    )
    assert instance.organizer == "boss@example.com"
    assert instance.attendees == (
        ("amy@example.com", "NEEDS-ACTION"),
        ("zed@example.com", "ACCEPTED"),
    )
    assert instance.categories == ("alpha", "Client", "work")


def test_absent_fields_take_defaults() -> None:
    """Without optional properties the text fields are empty and the rest default."""
    instance = only(ics("UID:e\nDTSTART:20240301T090000Z"))
    assert instance == Instance(
        uid="e",
        recurrence_id=None,
        start=utc(2024, 3, 1, 9),
        end=utc(2024, 3, 1, 9),
        status=Status.CONFIRMED,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CANCELLED", Status.CANCELLED),
        ("cancelled", Status.CANCELLED),
        ("TENTATIVE", Status.TENTATIVE),
        ("CONFIRMED", Status.CONFIRMED),
        ("X-ODD", Status.CONFIRMED),
    ],
)
def test_status_is_mapped(value: str, expected: Status) -> None:
    """STATUS maps to cancelled or tentative, anything else to confirmed."""
    assert only(ics(f"UID:s\nDTSTART:20240301T090000Z\nSTATUS:{value}")).status is expected


def test_text_transparency_and_modified_are_read() -> None:
    """Summary, location, description, TRANSP and LAST-MODIFIED (as UTC) are carried over."""
    instance = only(
        ics(
            "UID:t\nDTSTART:20240301T090000Z\nSUMMARY:Cut\nLOCATION:Room 1\n"
            "DESCRIPTION:Line one\\nLine two\nTRANSP:TRANSPARENT\n"
            "LAST-MODIFIED:20240201T120000Z"
        )
    )
    assert (instance.summary, instance.location, instance.description) == (
        "Cut",
        "Room 1",
        "Line one\nLine two",
    )
    assert instance.transparent
    assert instance.modified == utc(2024, 2, 1, 12)


# --- malformed input ----------------------------------------------------------------------


def test_garbage_bytes_raise_parse_error() -> None:
    """Bytes that are not iCalendar raise ParseError without quoting them."""
    with pytest.raises(ParseError) as caught:
        parse(b"\x00\xff secret-garbage \x89PNG")
    assert "secret" not in str(caught.value)


def test_non_calendar_component_raises_parse_error() -> None:
    """A vCard is not a calendar object."""
    with pytest.raises(ParseError, match="VCALENDAR"):
        parse(b"BEGIN:VCARD\r\nFN:Someone\r\nEND:VCARD\r\n")


def test_broken_dtstart_raises_parse_error_naming_it() -> None:
    """A DTSTART value that cannot be parsed names the property and UID, not the value."""
    with pytest.raises(ParseError, match=r"DTSTART.*'b1'") as caught:
        parse(ics("UID:b1\nDTSTART:2024-13-45T99\nSUMMARY:private"))
    assert "2024-13-45" not in str(caught.value)


def test_broken_exdate_in_series_raises_parse_error() -> None:
    """A broken value inside a series raises ParseError, not a library error."""
    with pytest.raises(ParseError, match="EXDATE"):
        parse(ics(WEEKLY + "EXDATE:zz"))


def test_broken_rrule_raises_parse_error() -> None:
    """An RRULE the expander cannot read raises ParseError."""
    with pytest.raises(ParseError, match="'weekly'"):
        parse(ics(WEEKLY.replace("FREQ=WEEKLY", "FREQ=SOMETIMES")))


def test_vevent_without_uid_raises_parse_error() -> None:
    """A VEVENT without UID raises ParseError naming the VEVENT."""
    with pytest.raises(ParseError, match="VEVENT #2 has no UID"):
        parse(ics("UID:a\nDTSTART:20240301T090000Z", "DTSTART:20240301T090000Z"))


def test_vevent_without_dtstart_raises_parse_error() -> None:
    """A VEVENT without DTSTART raises ParseError naming its UID."""
    with pytest.raises(ParseError, match="'nostart' has no DTSTART"):
        parse(ics("UID:nostart\nSUMMARY:x"))


DAMAGE = [b"", b":", b";", b"=", b",", b"Z", b"T", b"\r\n", b"VALUE=DATE", b"9"]


@settings(max_examples=200, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=1, exclude_max=True),
            st.sampled_from(DAMAGE),
            st.integers(min_value=0, max_value=4),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_damaged_input_raises_only_parse_error(edits: list[tuple[float, bytes, int]]) -> None:
    """Any damage to a valid series either still parses or raises ParseError, nothing else."""
    data = bytearray(
        ics(
            WEEKLY + "EXDATE;TZID=Europe/Berlin:20240311T100000\nRDATE;VALUE=DATE:20240320",
            "UID:weekly\nRECURRENCE-ID;TZID=Europe/Berlin:20240304T100000\n"
            "DTSTART;TZID=Customized Time Zone:20240305T100000\nSTATUS:CANCELLED",
            extra=CUSTOM_ZONE,
        )
    )
    for where, insert, cut in edits:
        position = int(where * len(data))
        data[position : position + cut] = insert
    with contextlib.suppress(ParseError):
        parse(bytes(data), MARCH)


# --- horizon ------------------------------------------------------------------------------


def test_horizon_around_is_day_aligned() -> None:
    """around() floors both ends to UTC midnight and adds a day to the end."""
    now = datetime(2024, 3, 10, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))  # 9 March in UTC
    horizon = Horizon.around(now, timedelta(days=2), timedelta(days=3))
    assert (horizon.start, horizon.end) == (utc(2024, 3, 7), utc(2024, 3, 13))


def test_horizon_around_moves_once_a_day() -> None:
    """Two instants of the same UTC day give the same horizon."""
    past, future = timedelta(days=30), timedelta(days=90)
    morning = Horizon.around(utc(2024, 3, 10, 0, 1), past, future)
    assert morning == Horizon.around(utc(2024, 3, 10, 23, 59), past, future)


def test_horizon_contains_is_half_open_and_counts_dates_at_utc_midnight() -> None:
    """contains() includes the start, excludes the end, and places a date at UTC midnight."""
    horizon = Horizon(utc(2024, 3, 1), utc(2024, 3, 2))
    assert horizon.contains(utc(2024, 3, 1))
    assert not horizon.contains(utc(2024, 3, 2))
    assert horizon.contains(date(2024, 3, 1))
    assert not horizon.contains(date(2024, 3, 2))
    assert not horizon.contains(datetime(2024, 3, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin")))


def test_horizon_intersect() -> None:
    """intersect() gives the overlap, or an empty horizon when there is none."""
    a = Horizon(utc(2024, 1, 1), utc(2024, 3, 1))
    b = Horizon(utc(2024, 2, 1), utc(2024, 4, 1))
    assert a.intersect(b) == Horizon(utc(2024, 2, 1), utc(2024, 3, 1))
    empty = a.intersect(Horizon(utc(2024, 5, 1), utc(2024, 6, 1)))
    assert empty.start == empty.end
    assert not empty.contains(empty.start)


def test_horizon_rejects_naive_bounds() -> None:
    """A horizon with naive datetimes is refused."""
    with pytest.raises(ValueError, match="aware"):
        Horizon(datetime(2024, 1, 1), utc(2024, 2, 1))


# --- determinism and properties -----------------------------------------------------------


def test_normalization_is_deterministic() -> None:
    """The same bytes give equal results in every parse."""
    override = (
        "UID:weekly\nRECURRENCE-ID;TZID=Europe/Berlin:20240311T100000\n"
        "DTSTART;TZID=Europe/Berlin:20240312T140000\nATTENDEE:mailto:b@x\nATTENDEE:mailto:a@x"
    )
    data = ics(WEEKLY + "CATEGORIES:b,A", override)
    assert parse(data, MARCH) == parse(data, MARCH)


ZONES = sorted(available_timezones())


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    first=st.datetimes(min_value=datetime(2023, 10, 1), max_value=datetime(2024, 6, 1)),
    excluded=st.sets(st.integers(min_value=0, max_value=60), max_size=8),
    utc_exdates=st.booleans(),
)
def test_weekly_series_keys_are_starts_in_horizon_minus_exdates(
    zone: str, first: datetime, excluded: set[int], utc_exdates: bool
) -> None:
    """For a weekly series, the keys are the original starts inside the horizon minus EXDATEs."""
    first = first.replace(second=0, microsecond=0)
    tz = ZoneInfo(zone)
    local = [first + timedelta(weeks=n) for n in range(61)]
    starts_utc = [moment.replace(tzinfo=tz).astimezone(UTC) for moment in local]
    stamp = "%Y%m%dT%H%M%S"
    if utc_exdates:
        exdates = [f"EXDATE:{starts_utc[n]:{stamp}}Z" for n in sorted(excluded)]
    else:
        exdates = [f"EXDATE;TZID={zone}:{local[n]:{stamp}}" for n in sorted(excluded)]
    data = ics(
        f"UID:prop\nDTSTART;TZID={zone}:{first:{stamp}}\nDURATION:PT45M\n"
        f"RRULE:FREQ=WEEKLY;COUNT=61\n" + "\n".join(exdates)
    )
    horizon = Horizon(utc(2024, 1, 1), utc(2024, 4, 1))
    expected = {
        format_when(moment)
        for n, moment in enumerate(starts_utc)
        if horizon.contains(moment) and n not in excluded
    }
    result = normalize_object(data, horizon=horizon, owner_tz=OWNER)
    assert {instance.key[1] for instance in result.instances} == expected


def test_runaway_recurrence_is_refused() -> None:
    """A rule that repeats every minute across the horizon is a ParseError, not a memory bomb."""
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:flood\r\n"
        b"DTSTART:20240101T000000Z\r\nDTEND:20240101T000100Z\r\nRRULE:FREQ=MINUTELY\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with pytest.raises(ParseError, match="more than"):
        normalize_object(data, horizon=HORIZON, owner_tz=OWNER)


LONE_OCCURRENCE = (
    "UID:series-1\nRECURRENCE-ID:20240311T090000Z\n{hint}"
    "DTSTART:20240311T090000Z\nDTEND:20240311T100000Z\nSUMMARY:Session"
)


def test_a_lone_occurrence_carries_its_series_start_hint() -> None:
    """An occurrence delivered without its master takes the series start from the hint."""
    hint = "X-SYNCD-SERIES-START;VALUE=DATE-TIME:20240304T090000Z\n"
    assert only(ics(LONE_OCCURRENCE.format(hint=hint))).series_start == utc(2024, 3, 4, 9)


@pytest.mark.parametrize(
    "hint",
    ["", "X-SYNCD-SERIES-START:not a date\n", "X-SYNCD-SERIES-START;VALUE=DATE-TIME:2024xx\n"],
)
def test_a_missing_or_unreadable_series_start_hint_is_no_hint(hint: str) -> None:
    """Without a readable hint the occurrence is still read, with no series start."""
    instance = only(ics(LONE_OCCURRENCE.format(hint=hint)))
    assert (instance.start, instance.series_start) == (utc(2024, 3, 11, 9), None)


def test_a_series_moved_as_a_whole_pairs_lone_occurrences_as_moves() -> None:
    """Occurrences listed one by one, each with its series start, diff as moves when the
    whole series moves an hour (not as cancellations and new bookings)."""
    from syncd.diff import diff

    def occurrence(day: int, hour: int, series_hour: int) -> str:
        return (
            f"UID:series-1\nRECURRENCE-ID:202403{day:02}T{hour:02}0000Z\n"
            f"X-SYNCD-SERIES-START;VALUE=DATE-TIME:20240304T{series_hour:02}0000Z\n"
            f"DTSTART:202403{day:02}T{hour:02}0000Z\nDTEND:202403{day:02}T{hour + 1:02}0000Z\n"
            "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jane@example.com"
        )

    before = [only(ics(occurrence(day, 9, 9))) for day in (11, 18)]
    after = [only(ics(occurrence(day, 10, 10))) for day in (11, 18)]
    changes = diff({i.key: i for i in before}, {i.key: i for i in after}, HORIZON)
    assert [c.kind.value for c in changes] == ["moved", "moved"]
