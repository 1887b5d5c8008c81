"""The Google connector without a server: hrefs and ids, the cursor, options, the mapping
between Google's JSON and iCalendar, write bodies, and the error table (through
googleapiclient's own HttpMockSequence)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from googleapiclient.http import HttpMockSequence
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar

from connectors.google import GoogleConnector
from connectors.google.account import account_for, forget_accounts
from connectors.google.cursor import fingerprint, make_cursor, read_cursor
from connectors.google.ids import PREFIX, event_id, href_of
from connectors.google.listing import build_object
from connectors.google.mapping import Malformed, Series, object_etag, to_ical
from connectors.google.options import DEFAULT_ENDPOINT, SCOPES, parse_options
from connectors.google.writes import Unfit, insert_body, patch_for, read_wanted, when_body
from syncd.config import CalendarConfig
from syncd.connector import ItemFailure, RemoteObject, available_connectors
from syncd.errors import (
    AlreadyExists,
    AuthError,
    ConfigError,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
    TransientError,
)
from syncd.normalize import Horizon, normalize_object
from syncd.secrets import scrub
from tests.ical import calendar, event

BERLIN = ZoneInfo("Europe/Berlin")
HORIZON = Horizon(datetime(2026, 11, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))


def config(tmp_path: Path, name: str = "work", **options: object) -> CalendarConfig:
    return CalendarConfig(
        name=name,
        connector="google",
        options=options,
        source=tmp_path / "syncd.toml",
        index=0,
        tokens_dir=tmp_path / "tokens",
    )


def timed(moment: str, zone: str | None = None) -> dict[str, str]:
    return {"dateTime": moment, **({"timeZone": zone} if zone else {})}


def single(**extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "ev0001",
        "etag": '"1"',
        "status": "confirmed",
        "iCalUID": "a@example.com",
        "summary": "Coaching",
        "start": timed("2026-12-01T10:00:00+01:00"),
        "end": timed("2026-12-01T11:00:00+01:00"),
        "updated": "2026-11-20T08:00:00.000Z",
    }
    item.update(extra)
    return item


def master(**extra: Any) -> dict[str, Any]:
    return single(
        id="series01",
        iCalUID="s@example.com",
        start=timed("2026-12-01T10:00:00+01:00", "Europe/Berlin"),
        end=timed("2026-12-01T11:00:00+01:00", "Europe/Berlin"),
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"],
        organizer={"email": "me@example.com"},
        attendees=[{"email": "jane@example.com", "responseStatus": "accepted"}],
        **extra,
    )


def exception_at(day: int, **extra: Any) -> dict[str, Any]:
    """An exception of ``master()`` for its occurrence on 2026-12-``day`` 10:00 Berlin."""
    item: dict[str, Any] = {
        "id": f"series01_202612{day:02d}T090000Z",
        "etag": f'"x{day}"',
        "recurringEventId": "series01",
        "originalStartTime": timed(f"2026-12-{day:02d}T10:00:00+01:00", "Europe/Berlin"),
    }
    item.update(extra)
    return item


def instances(data: bytes) -> dict[Any, Any]:
    normalized = normalize_object(data, horizon=HORIZON, owner_tz=BERLIN)
    return {i.recurrence_id: i for i in normalized.instances}


# --- ids ------------------------------------------------------------------------------------


def test_a_syncd_href_becomes_a_prefixed_base32hex_id() -> None:
    """A note's href is encoded as s0ncd + base32hex, in Google's alphabet, and decodes back."""
    href = "syncd-note-0123abcd.ics"
    encoded = event_id(href)
    assert encoded.startswith(PREFIX)
    assert set(encoded) <= set("0123456789abcdefghijklmnopqrstuv")
    assert href_of(encoded) == href


def test_google_ids_stand_for_themselves() -> None:
    """An id Google generated is its own href, both ways."""
    for google in ("7kq2m3o4p5r6s7t8u9v0abcdef", "abcde", "s0ncd1"):
        assert href_of(google) == google
        assert event_id(google) == google


@given(st.text(min_size=1, max_size=80))
def test_any_href_round_trips(href: str) -> None:
    """Every href maps to a valid id that maps back to it."""
    try:
        encoded = event_id(href)
    except ValueError:
        return  # lone surrogates cannot be UTF-8
    assert href_of(encoded) == href
    assert 5 <= len(encoded) <= 1024


@given(st.text(alphabet="0123456789abcdefghijklmnopqrstuv", min_size=5, max_size=60))
def test_any_google_id_round_trips(google: str) -> None:
    """Every valid Google id maps to an href that maps back to the same id."""
    assert event_id(href_of(google)) == google


def test_an_href_too_long_for_an_id_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        event_id("x" * 700)


# --- cursor ---------------------------------------------------------------------------------


def test_cursor_round_trips_and_rejects_other_texts() -> None:
    query = fingerprint("primary", {"showDeleted": True})
    text = make_cursor(query, "tok")
    assert read_cursor(text) == (query, "tok")
    for other in ("", "not json", '{"v": 2, "q": "a", "t": "b"}', '{"v": 1, "q": "a", "t": ""}'):
        assert read_cursor(other) is None


def test_fingerprint_covers_calendar_and_parameters() -> None:
    base = fingerprint("primary", {"singleEvents": False})
    assert fingerprint("other", {"singleEvents": False}) != base
    assert fingerprint("primary", {"singleEvents": True}) != base
    assert fingerprint("primary", {"singleEvents": False}) == base


def test_cursor_mode_names_sync_tokens() -> None:
    assert GoogleConnector.cursor_mode(make_cursor("q", "t")) == "sync token"
    assert GoogleConnector.cursor_mode("{}") is None


# --- options --------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    """primary, the public endpoint, a token file in syncd's token folder."""
    options = parse_options(config(tmp_path))
    assert options.calendar_id == "primary"
    assert options.api_endpoint == DEFAULT_ENDPOINT
    assert options.token_file == tmp_path / "tokens" / "google-work.json"
    assert options.timeout == 30.0


def test_calendars_of_one_account_share_its_token_file(tmp_path: Path) -> None:
    """``account`` names the token file, so the work and notes calendars sign in once."""
    work = parse_options(config(tmp_path, account="me@example.com"))
    notes = parse_options(config(tmp_path, "notes", account="me@example.com", calendar="n"))
    assert work.token_file == notes.token_file == tmp_path / "tokens" / "google-me@example.com.json"


def test_account_and_token_file_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"calendars\[0\]\.account"):
        parse_options(config(tmp_path, account="me", token_file="t.json"))  # noqa: S106


def test_the_connector_is_registered() -> None:
    assert available_connectors()["google"] is GoogleConnector


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/calendar/v3/"),
        ("https://proxy.example/google", "https://proxy.example/google/calendar/v3/"),
        ("https://proxy.example/calendar/v3", "https://proxy.example/calendar/v3/"),
        ("https://proxy.example/calendar/v3/", "https://proxy.example/calendar/v3/"),
    ],
)
def test_api_endpoint_gets_the_service_path(tmp_path: Path, given: str, expected: str) -> None:
    assert parse_options(config(tmp_path, api_endpoint=given)).api_endpoint == expected


def test_every_bad_option_is_named(tmp_path: Path) -> None:
    """Each problem names its key; nothing else is echoed."""
    with pytest.raises(ConfigError) as raised:
        parse_options(
            config(
                tmp_path,
                calendar_id="a",
                calendar="Notes",
                api_endpoint="ftp://x",
                ca_file="missing.pem",
                timeout="forever",
                create="yes",
                subject="me@example.com",
                colour="blue",
            )
        )
    keys = {p.key.rsplit(".", 1)[1] for p in raised.value.problems}
    assert keys == {"calendar", "api_endpoint", "ca_file", "timeout", "create", "subject", "colour"}


def test_token_file_and_service_account_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give token_file or service_account_file"):
        parse_options(config(tmp_path, token_file="t.json", service_account_file="sa.json"))  # noqa: S106


def test_a_service_account_needs_no_token_file(tmp_path: Path) -> None:
    options = parse_options(config(tmp_path, service_account_file="sa.json", subject="u@x"))
    assert options.token_file is None
    assert options.account == ("service", str(tmp_path / "sa.json"), "u@x")


def test_without_a_token_folder_the_token_file_is_required(tmp_path: Path) -> None:
    bare = CalendarConfig("work", "google", {}, tmp_path / "syncd.toml", 0)
    with pytest.raises(ConfigError, match="token_file"):
        parse_options(bare)


def test_least_scopes() -> None:
    """Events, calendars the app made, and reading the calendar list: nothing wider."""
    assert {s.rsplit("/", 1)[1] for s in SCOPES} == {
        "calendar.events",
        "calendar.app.created",
        "calendar.calendarlist.readonly",
    }


def test_service_account_without_subject_is_pointed_out(tmp_path: Path) -> None:
    warnings = GoogleConnector.config_warnings(config(tmp_path, service_account_file="sa.json"))
    assert [w.key.rsplit(".", 1)[1] for w in warnings] == ["subject"]


# --- Google JSON to iCalendar ---------------------------------------------------------------


def test_a_timed_single_event_is_written_in_utc() -> None:
    data = to_ical(Series(single()))
    assert b"DTSTART:20261201T090000Z\r\n" in data
    assert b"DTEND:20261201T100000Z\r\n" in data
    assert b"UID:a@example.com\r\n" in data
    assert b"LAST-MODIFIED:20261120T080000Z\r\n" in data
    [only] = instances(data).values()
    assert only.start == datetime(2026, 12, 1, 9, tzinfo=UTC)


def test_meeting_links_become_conference_properties() -> None:
    """The Meet link and conference video entry points are written as CONFERENCE (once
    each); other entry points and values of the wrong shape are left out."""
    meet = "https://meet.google.com/abc-defg-hij"
    conference = {
        "entryPoints": [
            {"entryPointType": "video", "uri": meet},
            {"entryPointType": "video", "uri": "https://zoom.example/j/1"},
            {"entryPointType": "phone", "uri": "tel:+1-555-0100"},
            {"entryPointType": "video", "uri": 5},
            "junk",
        ]
    }
    data = to_ical(Series(single(hangoutLink=meet, conferenceData=conference)))
    lines = [line for line in data.split(b"\r\n") if line.startswith(b"CONFERENCE")]
    assert lines == [
        b"CONFERENCE;VALUE=URI;FEATURE=VIDEO:" + meet.encode(),
        b"CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://zoom.example/j/1",
    ]
    assert b"CONFERENCE" not in to_ical(Series(single(conferenceData={"entryPoints": 3})))


def test_an_all_day_event_keeps_its_dates() -> None:
    data = to_ical(Series(single(start={"date": "2026-12-24"}, end={"date": "2026-12-25"})))
    assert b"DTSTART;VALUE=DATE:20261224\r\n" in data
    assert b"DTEND;VALUE=DATE:20261225\r\n" in data
    [only] = instances(data).values()
    assert only.start == date(2026, 12, 24)


def test_fields_people_and_private_properties() -> None:
    """Status, texts, transparency, organizer, attendees with PARTSTAT, and only syncd's
    private keys."""
    item = single(
        status="tentative",
        description="Line one\nline two; with, commas",
        location="Room 4",
        transparency="transparent",
        sequence=3,
        organizer={"email": "me@example.com"},
        attendees=[
            {"email": "jane@example.com", "responseStatus": "declined"},
            {"email": "bob@example.com", "responseStatus": "needsAction"},
            {"email": "eve@example.com", "responseStatus": "tentative"},
        ],
        extendedProperties={
            "private": {"X-SYNCD-VERDICT": "late_cancellation", "otherApp": "x"},
            "shared": {"X-SYNCD-SHARED": "no"},
        },
    )
    data = to_ical(Series(item))
    text = data.decode()
    for line in (
        "STATUS:TENTATIVE",
        "DESCRIPTION:Line one\\nline two\\; with\\, commas",
        "LOCATION:Room 4",
        "TRANSP:TRANSPARENT",
        "SEQUENCE:3",
        "ORGANIZER:mailto:me@example.com",
        "ATTENDEE;PARTSTAT=DECLINED:mailto:jane@example.com",
        "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@example.com",
        "ATTENDEE;PARTSTAT=TENTATIVE:mailto:eve@example.com",
        "X-SYNCD-VERDICT:late_cancellation",
    ):
        assert f"{line}\r\n" in text
    assert "otherApp" not in text
    assert "SHARED" not in text
    [only] = instances(data).values()
    assert only.attendees == (
        ("bob@example.com", "NEEDS-ACTION"),
        ("eve@example.com", "TENTATIVE"),
        ("jane@example.com", "DECLINED"),
    )


def test_a_series_is_one_object_with_its_exceptions() -> None:
    """The master keeps its zone; a moved exception and a cancelled one become overrides."""
    moved = exception_at(
        15,
        status="confirmed",
        iCalUID="s@example.com",
        start=timed("2026-12-15T12:00:00+01:00"),
        end=timed("2026-12-15T13:00:00+01:00"),
        attendees=[{"email": "jane@example.com", "responseStatus": "accepted"}],
    )
    cancelled = exception_at(8, status="cancelled")
    data = to_ical(Series(master(), (moved, cancelled)))
    assert b"DTSTART;TZID=Europe/Berlin:20261201T100000\r\n" in data
    assert b"RRULE:FREQ=WEEKLY;COUNT=4\r\n" in data
    assert data.count(b"BEGIN:VEVENT") == 3
    found = instances(data)
    eighth = datetime(2026, 12, 8, 9, tzinfo=UTC)
    fifteenth = datetime(2026, 12, 15, 9, tzinfo=UTC)
    assert found[eighth].status == "cancelled"
    assert found[fifteenth].start == datetime(2026, 12, 15, 11, tzinfo=UTC)
    assert len(found) == 4


def test_a_bare_cancelled_exception_keeps_the_series_people() -> None:
    """Only id, recurringEventId and originalStartTime are guaranteed: the cancelled instance
    still has the master's attendees and the master's duration."""
    data = to_ical(Series(master(), (exception_at(8, status="cancelled"),)))
    cancelled = instances(data)[datetime(2026, 12, 8, 9, tzinfo=UTC)]
    assert cancelled.status == "cancelled"
    assert cancelled.attendees == (("jane@example.com", "ACCEPTED"),)
    assert cancelled.end - cancelled.start == timedelta(hours=1)


def test_the_same_json_gives_the_same_bytes() -> None:
    parts = (exception_at(8, status="cancelled"), exception_at(22, status="cancelled"))
    assert to_ical(Series(master(), parts)) == to_ical(Series(master(), parts[::-1]))


def test_object_etag_of_a_series_follows_every_part() -> None:
    """A single event's etag is Google's; a series' changes when an exception changes."""
    assert object_etag(Series(single())) == '"1"'
    before = object_etag(Series(master(), (exception_at(8, status="cancelled"),)))
    after = object_etag(Series(master(), (exception_at(8, status="cancelled", etag='"y"'),)))
    assert before.startswith("series:")
    assert before != after


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"start": None}, "no start"),
        ({"start": {"dateTime": "yesterday"}}, "not an RFC 3339"),
        ({"start": {"date": "2026-13-01"}, "end": {"date": "2026-12-02"}}, "not a date"),
        ({"summary": 5}, "summary is not text"),
        ({"attendees": "jane"}, "attendees is not a list"),
        ({"recurrence": ["BEGIN:VEVENT"]}, "is not an RRULE"),
        ({"status": "gone"}, "unknown status"),
        ({"start": timed("2026-12-01T10:00:00", "Mars/Olympus")}, "unknown time zone"),
        ({"end": {"date": "2026-12-02"}}, "mix a date and a date-time"),
    ],
)
def test_a_malformed_item_names_the_event(change: dict[str, Any], words: str) -> None:
    item = {k: v for k, v in {**single(), **change}.items() if v is not None}
    with pytest.raises(Malformed, match=words) as raised:
        to_ical(Series(item))
    assert "ev0001" in str(raised.value)


def test_a_malformed_item_becomes_an_item_failure() -> None:
    failure = build_object(Series(single(start={"dateTime": "soon"})))
    assert isinstance(failure, ItemFailure)
    assert failure.lasting  # malformed content: the cursor may move past it
    assert (failure.href, failure.etag) == ("ev0001", '"1"')
    assert "ev0001" in failure.reason
    assert isinstance(build_object(Series(single())), RemoteObject)


# --- iCalendar to Google --------------------------------------------------------------------


def test_read_wanted_takes_texts_times_and_private_properties() -> None:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    data = calendar(
        event(
            "n@syncd",
            start,
            start + timedelta(minutes=30),
            "TRANSP:TRANSPARENT",
            "STATUS:TENTATIVE",
            "DESCRIPTION:Two\\nlines",
            "X-SYNCD-KEY:abc",
            summary="Note",
        )
    )
    [wanted] = read_wanted(data)
    assert (wanted.uid, wanted.summary, wanted.description) == ("n@syncd", "Note", "Two\nlines")
    assert (wanted.status, wanted.transparency) == ("tentative", "transparent")
    assert wanted.private == {"X-SYNCD-KEY": "abc"}
    assert wanted.start == start


def test_an_event_with_attendees_gets_only_private_properties() -> None:
    """Summary and times differ, yet only extendedProperties.private is patched."""
    item = single(
        attendees=[{"email": "jane@example.com", "responseStatus": "accepted"}],
        extendedProperties={"private": {"X-SYNCD-OLD": "1", "otherApp": "keep"}},
    )
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    data = calendar(event("a@example.com", start, start + timedelta(hours=1), "X-SYNCD-NEW:2"))
    patch = patch_for(item, read_wanted(data)[0])
    assert patch.body == {
        "extendedProperties": {"private": {"X-SYNCD-OLD": None, "X-SYNCD-NEW": "2"}}
    }
    assert set(patch.dropped) == {"summary", "start", "end"}


def test_an_event_without_attendees_gets_what_differs() -> None:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    data = calendar(event("a@example.com", start, start + timedelta(hours=2), summary="Coaching"))
    patch = patch_for(single(), read_wanted(data)[0])
    assert patch.body == {"end": {"dateTime": "2026-12-01T11:00:00Z"}}


def test_switching_between_dates_and_times_nulls_the_other_form() -> None:
    """A patch merges objects: the form no longer used must be patched to null."""
    assert when_body(date(2026, 12, 1), {"dateTime": "x", "timeZone": "Europe/Berlin"}) == {
        "date": "2026-12-01",
        "dateTime": None,
        "timeZone": None,
    }
    moment = datetime(2026, 12, 1, 10, tzinfo=BERLIN)
    assert when_body(moment, {"date": "2026-12-01"}) == {
        "dateTime": "2026-12-01T10:00:00+01:00",
        "timeZone": "Europe/Berlin",
        "date": None,
    }


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("X-SYNCD-" + "K" * 40 + ":v", "longer than Google's 44"),
        ("X-SYNCD-NOTE:" + "v" * 1025, "longer than Google's 1024"),
    ],
)
def test_google_limits_are_refused_not_truncated(line: str, words: str) -> None:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(Unfit, match=words):
        read_wanted(calendar(event("a", start, start, line)))


def test_insert_body_has_no_attendees_and_private_properties() -> None:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    data = calendar(
        event(
            "n@syncd",
            start,
            start + timedelta(minutes=15),
            "ATTENDEE:mailto:jane@example.com",
            "TRANSP:TRANSPARENT",
            "X-SYNCD-KEY:k",
        )
    )
    body = insert_body("s0ncdabc", read_wanted(data)[0])
    assert body["id"] == "s0ncdabc"
    assert body["iCalUID"] == "n@syncd"
    assert body["transparency"] == "transparent"
    assert body["extendedProperties"] == {"private": {"X-SYNCD-KEY": "k"}}
    assert "attendees" not in body


def test_unparsable_data_is_unfit() -> None:
    with pytest.raises(Unfit):
        read_wanted(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")


def test_written_then_read_again_is_the_same_content() -> None:
    """An event syncd inserted reads back with the same summary, times and properties."""
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    data = calendar(event("n@syncd", start, start + timedelta(hours=1), "X-SYNCD-KEY:k"))
    body = insert_body("s0ncdabc", read_wanted(data)[0])
    stored = {**body, "etag": '"1"', "status": "confirmed"}
    again = Calendar.from_ical(to_ical(Series(stored)))
    vevent = again.walk("VEVENT")[0]
    assert str(vevent["SUMMARY"]) == "Session"
    assert vevent["DTSTART"].dt == start
    assert str(vevent["X-SYNCD-KEY"]) == "k"


# --- the error table, through the client library --------------------------------------------


@pytest.fixture
def token_file(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    path = folder / "google-work.json"
    info = {
        "type": "authorized_user",
        "client_id": "client",
        "client_secret": "client-secret-value-123",
        "refresh_token": "refresh-token-value-456",
        "token_uri": "http://127.0.0.1:9/token",
    }
    path.write_text(json.dumps(info))
    path.chmod(0o600)
    yield path
    forget_accounts()


def error_body(status: int, reason: str) -> bytes:
    return json.dumps(
        {"error": {"code": status, "message": reason, "errors": [{"reason": reason}]}}
    ).encode()


def mocked(
    tmp_path: Path, replies: list[tuple[dict[str, str], bytes | str]]
) -> tuple[GoogleConnector, list[float], HttpMockSequence]:
    """A connector whose HTTP is a googleapiclient HttpMockSequence; sleeps are recorded."""
    sleeps: list[float] = []
    connector = GoogleConnector.from_config(config(tmp_path))
    connector.session.sleep = sleeps.append
    connector.session.jitter = lambda: 0.5
    mock = HttpMockSequence(replies)
    connector.session.http_factory = lambda _credentials: mock
    return connector, sleeps, mock


EVENT = json.dumps(single()).encode()


def test_retry_after_is_honoured(tmp_path: Path, token_file: Path) -> None:
    connector, sleeps, _mock = mocked(
        tmp_path,
        [
            ({"status": "429", "retry-after": "0.2"}, error_body(429, "rateLimitExceeded")),
            ({"status": "200"}, EVENT),
        ],
    )
    assert connector.get("ev0001").etag == '"1"'
    assert sleeps == [0.2]


@pytest.mark.parametrize(
    "reply",
    [
        ({"status": "403"}, error_body(403, "rateLimitExceeded")),
        ({"status": "403"}, error_body(403, "userRateLimitExceeded")),
        ({"status": "500"}, error_body(500, "backendError")),
        ({"status": "503"}, b"unavailable"),
    ],
)
def test_rate_limits_and_server_errors_back_off(
    tmp_path: Path, token_file: Path, reply: tuple[dict[str, str], bytes]
) -> None:
    connector, sleeps, _mock = mocked(tmp_path, [reply, reply, ({"status": "200"}, EVENT)])
    connector.get("ev0001")
    assert sleeps == [0.5, 1.0]  # full jitter (0.5 here) of 1 s, then 2 s


def test_attempts_end_in_a_transient_error(tmp_path: Path, token_file: Path) -> None:
    reply = ({"status": "500"}, error_body(500, "backendError"))
    connector, sleeps, _mock = mocked(tmp_path, [reply] * 5)
    with pytest.raises(TransientError, match="server error"):
        connector.get("ev0001")
    assert len(sleeps) == 4


@pytest.mark.parametrize(
    "reason", ["quotaExceeded", "dailyLimitExceeded", "variableTermLimitExceeded"]
)
def test_quota_exceeded_pauses_the_account(tmp_path: Path, token_file: Path, reason: str) -> None:
    """403 quotaExceeded (or a daily or variable-term limit): no retry, and the next request
    is not even sent."""
    connector, sleeps, mock = mocked(tmp_path, [({"status": "403"}, error_body(403, reason))])
    with pytest.raises(TransientError, match="usage limits"):
        connector.get("ev0001")
    with pytest.raises(TransientError, match="usage limits"):
        connector.get("ev0001")
    assert sleeps == []
    assert len(mock.request_sequence) == 1


@pytest.mark.parametrize(
    ("call", "status", "reason", "error"),
    [
        ("get", 404, "notFound", NotFound),
        ("get", 410, "deleted", NotFound),
        ("delete", 412, "conditionNotMet", Conflict),
        ("delete", 410, "deleted", NotFound),
        ("create", 409, "duplicate", AlreadyExists),
        ("get", 400, "badRequest", ConnectorError),
        ("get", 403, "forbiddenForNonOrganizer", ConnectorError),
    ],
)
def test_statuses_map_onto_syncd_errors(
    tmp_path: Path,
    token_file: Path,
    call: str,
    status: int,
    reason: str,
    error: type[Exception],
) -> None:
    live = ({"status": "200"}, EVENT)  # a 409 reads the id: a live event is AlreadyExists
    connector, _sleeps, _mock = mocked(
        tmp_path, [({"status": str(status)}, error_body(status, reason)), live]
    )
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    calls = {
        "get": lambda: connector.get("a.ics"),
        "delete": lambda: connector.delete("a.ics", '"1"'),
        "create": lambda: connector.create("a.ics", calendar(event("a", start, start))),
    }
    with pytest.raises(error) as raised:
        calls[call]()
    assert type(raised.value) is error
    assert "calendar 'work'" in str(raised.value)


def test_410_on_a_sync_page_expires_the_cursor(tmp_path: Path, token_file: Path) -> None:
    connector, _sleeps, _mock = mocked(
        tmp_path, [({"status": "410"}, error_body(410, "fullSyncRequired"))]
    )
    query = connector._query("primary")
    with pytest.raises(CursorExpired):
        connector.list_changes(make_cursor(query, "old"), {})


def test_a_cursor_of_another_query_is_expired_without_a_request(
    tmp_path: Path, token_file: Path
) -> None:
    connector, _sleeps, mock = mocked(tmp_path, [])
    with pytest.raises(CursorExpired):
        connector.list_changes(make_cursor("another", "tok"), {})
    with pytest.raises(CursorExpired):
        connector.list_changes("garbage", {})
    assert mock.request_sequence == []


def test_401_asks_for_consent_without_secrets(tmp_path: Path, token_file: Path) -> None:
    connector, _sleeps, _mock = mocked(
        tmp_path, [({"status": "401"}, error_body(401, "authError"))]
    )
    with pytest.raises(AuthError) as raised:
        connector.get("ev0001")
    message = str(raised.value)
    assert "syncd auth google --calendar work" in message
    assert "refresh-token-value-456" not in message
    assert scrub("x refresh-token-value-456 client-secret-value-123") == "x *** ***"


def test_a_broken_connection_rebuilds_the_http_object(tmp_path: Path, token_file: Path) -> None:
    """A reset connection is retried on a new HTTP object."""
    connector, sleeps, _mock = mocked(tmp_path, [])
    made: list[object] = []

    class Broken:
        connections: dict[str, Any] = {}  # noqa: RUF012 - what httplib2.Http has

        def request(self, *args: object, **kwargs: object) -> None:
            raise ConnectionResetError("reset by peer")

    def factory(_credentials: object) -> object:
        http = Broken() if not made else HttpMockSequence([({"status": "200"}, EVENT)])
        made.append(http)
        return http

    connector.session.http_factory = factory
    connector.get("ev0001")
    assert len(made) == 2
    assert len(sleeps) == 1


def test_interrupt_stops_retrying(tmp_path: Path, token_file: Path) -> None:
    reply = ({"status": "503"}, b"unavailable")
    connector, sleeps, mock = mocked(tmp_path, [reply, reply])
    connector.interrupt()
    with pytest.raises(TransientError):
        connector.get("ev0001")
    assert len(mock.request_sequence) == 1
    assert sleeps == []


def test_a_missing_token_file_needs_consent(tmp_path: Path) -> None:
    connector = GoogleConnector.from_config(config(tmp_path))
    with pytest.raises(AuthError, match="syncd auth google --calendar work"):
        connector.get("ev0001")
    forget_accounts()


def test_a_token_file_open_to_others_is_refused(tmp_path: Path, token_file: Path) -> None:
    token_file.chmod(0o644)
    connector = GoogleConnector.from_config(config(tmp_path))
    with pytest.raises(AuthError, match="chmod 600"):
        connector.get("ev0001")
    assert os.stat(token_file).st_mode & 0o777 == 0o644  # never repaired behind one's back


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=300))
def test_long_text_is_folded_within_75_octets_and_unfolds_back(text: str) -> None:
    """Folding never splits a character and iCalendar readers get the same text back."""
    data = to_ical(Series(single(description=text or "x")))
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    vevent = Calendar.from_ical(data).walk("VEVENT")[0]
    assert str(vevent["DESCRIPTION"]) == (text or "x").replace("\r\n", "\n").replace("\r", "\n")


def test_syncd_auth_google_needs_a_client_secrets_file(tmp_path: Path) -> None:
    """Without client_secrets_file, or with a service account, there is no consent flow."""
    with pytest.raises(ConfigError, match="client_secrets_file"):
        GoogleConnector.authorize(config(tmp_path), io.StringIO(), open_browser=False)
    with pytest.raises(ConfigError, match="needs no consent"):
        GoogleConnector.authorize(
            config(tmp_path, service_account_file="sa.json"), io.StringIO(), open_browser=False
        )
    (tmp_path / "client.json").write_text("{}")
    with pytest.raises(ConfigError, match="not an OAuth client JSON"):
        GoogleConnector.authorize(
            config(tmp_path, client_secrets_file="client.json"), io.StringIO(), open_browser=False
        )


def test_an_unexpected_failure_inside_a_request_names_the_calendar(
    tmp_path: Path, token_file: Path
) -> None:
    """Whatever the client library raises beyond the table becomes a ConnectorError."""
    connector, _sleeps, _mock = mocked(tmp_path, [])

    class Buggy:
        def request(self, *args: object, **kwargs: object) -> None:
            raise TypeError("'int' object is not iterable")

    connector.session.http_factory = lambda _credentials: Buggy()
    with pytest.raises(ConnectorError) as raised:
        connector.get("ev0001")
    assert type(raised.value) is ConnectorError
    assert "calendar 'work'" in str(raised.value)
    assert "TypeError" in str(raised.value)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("scopes", 5, "scopes is not a list of strings"),
        ("scopes", [1], "scopes is not a list of strings"),
        ("token_uri", 5, "token_uri is not a string"),
        ("expiry", 17, "expiry is not a string"),
        ("refresh_token", None, "refresh_token is missing"),
        ("client_id", ["x"], "client_id is not a string"),
        ("client_secret", {}, "client_secret is missing"),
    ],
)
def test_a_token_file_field_of_the_wrong_type_is_named(
    tmp_path: Path, token_file: Path, key: str, value: object, words: str
) -> None:
    info = json.loads(token_file.read_text())
    token_file.write_text(json.dumps({**info, key: value}))
    connector, _sleeps, mock = mocked(tmp_path, [({"status": "200"}, EVENT)])
    with pytest.raises(AuthError, match=f"{token_file}: {words}"):
        connector.get("ev0001")
    assert mock.request_sequence == []


def test_a_page_without_a_sync_token_is_fine_for_a_series_refetch(
    tmp_path: Path, token_file: Path
) -> None:
    """Only full and incremental listings must end with nextSyncToken; the iCalUID listing
    that reads a touched series again need not."""
    changed = {"items": [master(etag='"m2"')], "nextSyncToken": "t2"}
    refetched = {"items": [master(etag='"m2"'), exception_at(8, status="cancelled")]}
    connector, _sleeps, _mock = mocked(
        tmp_path,
        [({"status": "200"}, json.dumps(page).encode()) for page in (changed, refetched)],
    )
    delta = connector.list_changes(make_cursor(connector._query("primary"), "t1"), {})
    [series] = delta.upserts
    assert series.data.count(b"RECURRENCE-ID") == 1
    assert delta.failures == []


def test_a_410_on_the_second_page_of_a_poll_expires_the_cursor(
    tmp_path: Path, token_file: Path
) -> None:
    """Tokens may die between the pages of an incremental listing: CursorExpired, and the
    full listing that follows is one request."""
    first = {"items": [single()], "nextPageToken": "p2"}
    connector, _sleeps, mock = mocked(
        tmp_path,
        [
            ({"status": "200"}, json.dumps(first).encode()),
            ({"status": "410"}, error_body(410, "fullSyncRequired")),
            ({"status": "200"}, json.dumps({"items": [single()], "nextSyncToken": "t9"}).encode()),
        ],
    )
    with pytest.raises(CursorExpired):
        connector.list_changes(make_cursor(connector._query("primary"), "t1"), {})
    assert "pageToken=p2" in mock.request_sequence[1][0]
    full = connector.list_changes(None, {})
    assert [o.href for o in full.upserts] == ["ev0001"]
    assert len(mock.request_sequence) == 3


def test_an_annotation_of_texts_with_crlf_and_control_characters_patches_only_it() -> None:
    """The texts read back from the object (LF, no control characters) are not a change."""
    item = single(summary="Lunch\x0c", description="line1\r\nline2\rline3", location="A\x01")
    data = to_ical(Series(item)).replace(b"END:VEVENT", b"X-SYNCD-VERDICT:x\r\nEND:VEVENT")
    patch = patch_for(item, read_wanted(data)[0])
    assert patch.body == {"extendedProperties": {"private": {"X-SYNCD-VERDICT": "x"}}}


def test_a_series_with_a_bare_offset_is_written_in_utc() -> None:
    """Without start.timeZone an offset names no zone: UTC, never TZID=UTC+01:00."""
    item = {
        **master(),
        "start": timed("2026-12-01T10:00:00+01:00"),
        "end": timed("2026-12-01T11:00:00+01:00"),
    }
    data = to_ical(Series(item))
    assert b"TZID" not in data
    assert b"DTSTART:20261201T090000Z" in data
    assert len(instances(data)) == 4


def test_reloading_the_token_file_does_not_grow_the_secrets(
    tmp_path: Path, token_file: Path
) -> None:
    """Each reload replaces the registered secrets of the previous version of the file."""
    account = account_for(parse_options(config(tmp_path)))
    account.credentials("work")
    for length in range(5, 8):
        info = json.loads(token_file.read_text())
        token_file.write_text(json.dumps({**info, "refresh_token": "r" * 20 + "s" * length}))
        account.credentials("work")
    assert len(account._secrets) == 2  # the refresh token and the client secret
    assert scrub("r" * 20 + "s" * 7) == "***"


def test_a_refresh_token_handed_out_by_a_refresh_is_scrubbed(
    tmp_path: Path, token_file: Path
) -> None:
    account = account_for(parse_options(config(tmp_path)))
    credentials = account.credentials("work")
    credentials._refresh_token = "rotated-refresh-token-789"  # type: ignore[attr-defined]  # noqa: S105
    credentials.token = "new-access-token-value-000"  # noqa: S105 - a test value
    account.after_request("work")
    assert scrub("a rotated-refresh-token-789 b") == "a *** b"


def test_syncd_auth_google_checks_the_token_folder_before_the_consent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token folder open to others is refused before the browser step, not after it."""
    client = {
        "installed": {
            "client_id": "client",
            "client_secret": "secret",
            "auth_uri": "https://127.0.0.1:9/auth",
            "token_uri": "https://127.0.0.1:9/token",
            "redirect_uris": ["http://localhost"],
        }
    }
    (tmp_path / "client.json").write_text(json.dumps(client))
    (tmp_path / "tokens").mkdir(mode=0o755)
    (tmp_path / "tokens").chmod(0o755)

    def no_consent(*args: object) -> None:
        raise AssertionError("the consent flow ran")

    monkeypatch.setattr("connectors.google.auth._consent", no_consent)
    with pytest.raises(AuthError, match="cannot be stored"):
        GoogleConnector.authorize(
            config(tmp_path, client_secrets_file="client.json"), io.StringIO(), open_browser=False
        )


def test_items_without_an_id_are_skipped_with_a_warning(tmp_path: Path, token_file: Path) -> None:
    """An event without an id (or a page entry that is no event) cannot be named by an href:
    it is skipped, the rest of the page is kept, and the warning names the calendar."""
    from structlog.testing import capture_logs

    page = {"items": [single(), {"iCalUID": "b@example.com"}, "junk"], "nextSyncToken": "t1"}
    connector, _sleeps, _mock = mocked(tmp_path, [({"status": "200"}, json.dumps(page))])
    with capture_logs() as logs:
        delta = connector.list_changes(None, {})
    assert [o.href for o in delta.upserts] == ["ev0001"]
    skipped = [e for e in logs if e["event"] == "google.item_skipped"]
    assert [(e["calendar"], e["ical_uid"]) for e in skipped] == [
        ("work", "b@example.com"),
        ("work", None),
    ]
