"""The Outlook connector without a server: options, the cursor and its window, Graph JSON as
iCalendar, the fields syncd writes, and the error table with retries (through a fake HTTP
session at the ``requests`` seam)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from connectors.outlook import OutlookConnector
from connectors.outlook.cursor import (
    SLACK,
    Cursor,
    describe,
    effective_horizon,
    fingerprint,
    parse_cursor,
    window_for,
)
from connectors.outlook.items import (
    DATA_PROPERTY,
    HREF_PROPERTY,
    MalformedItem,
    href_of,
    parse_moment,
)
from connectors.outlook.names import could_be_id
from connectors.outlook.options import OutlookOptions, option_warnings, parse_options
from connectors.outlook.render import render
from connectors.outlook.session import DeltaExpired, GraphSession, Reply
from connectors.outlook.writes import create_body, plan_update, read_fields
from syncd.annotate import annotate_event, private_properties
from syncd.config import CalendarConfig
from syncd.connector import available_connectors
from syncd.errors import (
    AuthError,
    ConfigError,
    Conflict,
    ConnectorError,
    NotFound,
    TransientError,
)
from syncd.model import Status
from syncd.normalize import Horizon, normalize_object
from tests.tls import ca_file

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
HORIZON = Horizon(datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC))


def config(tmp_path: Path, name: str = "work", **options: Any) -> CalendarConfig:
    return CalendarConfig(
        name=name,
        connector="outlook",
        options={"client_id": "app-1", **options},
        source=tmp_path / "syncd.toml",
        index=0,
        tokens_dir=tmp_path / "tokens",
    )


def problems(error: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return {p.key.split(".", 1)[1]: p.message for p in error.value.problems}


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def item(**fields: Any) -> dict[str, Any]:
    """A Graph event as calendarView delta lists it (times in UTC)."""
    base: dict[str, Any] = {
        "id": "AAMkAD1=",
        "changeKey": "ck1",
        "iCalUId": "040000008200E00074C5B7101A82E008",
        "type": "singleInstance",
        "subject": "Coaching",
        "body": {"contentType": "text", "content": "Bring notes"},
        "start": graph_time(T0),
        "end": graph_time(T0 + timedelta(hours=1)),
        "isAllDay": False,
        "isCancelled": False,
        "showAs": "busy",
        "lastModifiedDateTime": "2026-11-20T08:30:00.1234567Z",
        "organizer": {"emailAddress": {"address": "me@example.com", "name": "Me"}},
        "attendees": [
            {
                "emailAddress": {"address": "jane@example.com", "name": "Jane Doe"},
                "status": {"response": "accepted", "time": "2026-11-20T08:00:00Z"},
                "type": "required",
            }
        ],
        "categories": [],
    }
    base.update(fields)
    return base


def with_data(data: dict[str, str], **fields: Any) -> dict[str, Any]:
    prop = {"id": DATA_PROPERTY, "value": json.dumps(data)}
    return item(singleValueExtendedProperties=[prop], **fields)


def vevent(data: bytes) -> Any:
    return next(iter(Calendar.from_ical(data).walk("VEVENT")))


def instances(data: bytes) -> list[Any]:
    return list(normalize_object(data, horizon=HORIZON, owner_tz=ZoneInfo("UTC")).instances)


# --- registry and options -------------------------------------------------------------------


def test_the_connector_is_registered_as_outlook() -> None:
    """The entry point ``outlook`` loads OutlookConnector."""
    assert available_connectors()["outlook"] is OutlookConnector


def test_defaults(tmp_path: Path) -> None:
    """Only client_id is needed: the organizations authority, public Graph, the default
    calendar, a token cache in the token folder named after the calendar."""
    options = parse_options(config(tmp_path, name="my work"))
    assert options.authority == "https://login.microsoftonline.com/organizations"
    assert options.graph_url == "https://graph.microsoft.com/v1.0"
    assert options.calendar is None
    assert options.token_cache == tmp_path / "tokens" / "outlook-my_work.json"
    assert options.mailbox_path == "me"
    assert not options.app_only
    assert options.categories is False


def test_check_config_names_a_ca_file_that_is_not_pem(tmp_path: Path) -> None:
    """A ca_file TLS cannot load is pointed out (by key); a PEM bundle passes."""
    bad = tmp_path / "ca.der"
    bad.write_bytes(b"\x30\x82 not PEM")
    warnings = option_warnings(config(tmp_path, ca_file=str(bad)))
    [message] = [w.message for w in warnings if w.key.endswith(".ca_file")]
    assert f"{bad} is not a PEM bundle" in message
    good = config(tmp_path, ca_file=str(ca_file(tmp_path)))
    assert not [w for w in option_warnings(good) if w.key.endswith(".ca_file")]


def test_every_bad_option_is_named(tmp_path: Path) -> None:
    """Each bad key is reported, all at once, naming the key."""
    with pytest.raises(ConfigError) as error:
        parse_options(
            config(
                tmp_path,
                client_id=3,
                graph_url="http://graph.example/v1.0",
                authority="https://login.example",
                timeout="soon",
                categories="yes",
                colour="red",
                ca_file="missing.pem",
                certificate_thumbprint="xyz",
            )
        )
    found = problems(error)
    assert set(found) == {
        "client_id",
        "graph_url",
        "authority",
        "timeout",
        "categories",
        "colour",
        "ca_file",
        "certificate_thumbprint",
    }
    assert "https" in found["graph_url"]
    assert "tenant" in found["authority"]


def test_client_id_is_required(tmp_path: Path) -> None:
    """Without client_id the error says what it is."""
    calendar = config(tmp_path)
    calendar = CalendarConfig(
        name="work", connector="outlook", options={}, source=calendar.source, index=0
    )
    with pytest.raises(ConfigError) as error:
        parse_options(calendar)
    assert "client_id" in problems(error)


def test_app_only_needs_a_user_and_a_tenant(tmp_path: Path) -> None:
    """A client secret without user or with the multi-tenant default is refused."""
    with pytest.raises(ConfigError) as error:
        parse_options(config(tmp_path, **{"client_secret_file": "secret"}))
    assert set(problems(error)) == {"user", "tenant"}


def test_app_only_uses_the_users_path(tmp_path: Path) -> None:
    """App-only sign-in reaches /users/{user}; no token cache is involved."""
    options = parse_options(
        config(tmp_path, user="me@contoso.example", tenant="contoso", **{"client_secret_file": "s"})
    )
    assert options.app_only
    assert options.mailbox_path == "users/me@contoso.example"
    assert options.token_cache is None
    assert options.authority == "https://login.microsoftonline.com/contoso"


def test_secret_and_certificate_exclude_each_other(tmp_path: Path) -> None:
    """Only one app credential may be given."""
    with pytest.raises(ConfigError) as error:
        parse_options(
            config(
                tmp_path,
                certificate_file="c.pem",
                **{"client_secret_file": "s"},
                user="u@x.example",
                tenant="x.example",
            )
        )
    assert "certificate_file" in problems(error)


def test_a_token_cache_name_the_store_refuses_is_a_config_error(tmp_path: Path) -> None:
    """The token cache file name must be one the token store accepts."""
    with pytest.raises(ConfigError) as error:
        parse_options(config(tmp_path, **{"token_cache": "tokens/my cache.json"}))
    assert "token_cache" in problems(error)


def test_a_custom_authority_and_graph_url_are_kept(tmp_path: Path) -> None:
    """National clouds and proxies: both URLs are taken as given (without a trailing slash)."""
    options = parse_options(
        config(
            tmp_path,
            authority="https://login.microsoftonline.us/contoso/",
            graph_url="https://graph.microsoft.us/v1.0/",
            timeout="45s",
        )
    )
    assert options.authority == "https://login.microsoftonline.us/contoso"
    assert options.graph_url == "https://graph.microsoft.us/v1.0"
    assert options.timeout == 45.0


def test_check_config_warnings(tmp_path: Path) -> None:
    """check-config points at a secret file others can read and a sign-in not done yet."""
    secret = tmp_path / "secret"
    secret.write_text("s\n")
    secret.chmod(0o644)
    app_only = config(tmp_path, user="u@x.example", tenant="x.example")
    app_only = CalendarConfig(
        name="work",
        connector="outlook",
        options={**app_only.options, "client_secret_file": str(secret)},
        source=app_only.source,
        index=0,
    )
    [warning] = OutlookConnector.config_warnings(app_only)
    assert warning.key.endswith("client_secret_file")
    assert "chmod 600" in warning.message
    [missing] = OutlookConnector.config_warnings(config(tmp_path))
    assert "syncd auth outlook --calendar work" in missing.message


# --- cursor and window ------------------------------------------------------------------------


def test_cursor_round_trips() -> None:
    """The cursor is compact JSON holding the whole link, the window and the fingerprint."""
    cursor = Cursor("https://g/v1.0/x?$deltatoken=abc", T0, T0 + timedelta(days=1), "fp", "cal")
    text = cursor.text()
    assert json.loads(text) == {
        "v": 1,
        "link": "https://g/v1.0/x?$deltatoken=abc",
        "start": "2026-12-01T10:00:00Z",
        "end": "2026-12-02T10:00:00Z",
        "fp": "fp",
        "cal": "cal",
    }
    assert parse_cursor(text) == cursor
    assert describe(text) == "delta link"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"v": 2}',
        '{"v":1,"link":"x","start":"2026-12-01T00:00:00Z","end":"2026-11-01T00:00:00Z",'
        '"fp":"f","cal":"c"}',
        '{"v":1,"link":"","start":"2026-12-01T00:00:00Z","end":"2026-12-02T00:00:00Z",'
        '"fp":"f","cal":"c"}',
        '{"v":1,"mode":"sync","url":"u","token":"t"}',
    ],
)
def test_unreadable_cursors_are_none(text: str) -> None:
    """Another connector's cursor or a damaged one is not an Outlook cursor."""
    assert parse_cursor(text) is None
    assert describe(text) is None


def test_window_adds_slack_and_covers_the_next_days() -> None:
    """A new round reaches SLACK past the horizon; the next horizons fit until the slack is
    used up."""
    horizon = (T0 - timedelta(days=30), T0 + timedelta(days=180))
    start, end = window_for(horizon)
    assert (start, end) == (horizon[0], horizon[1] + SLACK)
    cursor = Cursor("l", start, end, "f", "c")
    later = (horizon[0] + SLACK, horizon[1] + SLACK)
    assert cursor.covers(later)
    past_slack = (later[0] + timedelta(days=1), later[1] + timedelta(days=1))
    assert not cursor.covers(past_slack)
    assert not cursor.covers((horizon[0] - timedelta(days=1), horizon[1]))


def test_default_horizon_without_the_core() -> None:
    """Without a horizon: midnight UTC 30 days back to 180 ahead."""
    now = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
    start, end = effective_horizon(None, now)
    assert start == datetime(2026, 10, 28, tzinfo=UTC)
    assert end == datetime(2027, 5, 26, tzinfo=UTC)


def test_fingerprint_changes_with_mailbox_calendar_and_service() -> None:
    """The fingerprint binds a link to what it was made for."""
    base = fingerprint("https://graph.microsoft.com/v1.0", "me@x.example", "Work")
    assert base == fingerprint("https://graph.microsoft.com/v1.0/", "ME@x.example", "Work")
    assert base != fingerprint("https://graph.microsoft.com/v1.0", "you@x.example", "Work")
    assert base != fingerprint("https://graph.microsoft.com/v1.0", "me@x.example", None)
    assert base != fingerprint("https://graph.microsoft.us/v1.0", "me@x.example", "Work")


# --- Graph JSON as iCalendar -------------------------------------------------------------------


def test_a_single_event_maps_to_one_vevent() -> None:
    """UID from iCalUId, UTC times, attendees with PARTSTAT, the organizer, the body."""
    data = render(item())
    event = vevent(data)
    assert str(event["UID"]) == "040000008200E00074C5B7101A82E008"
    assert event["DTSTART"].dt == T0
    assert event["DTEND"].dt == T0 + timedelta(hours=1)
    assert "RECURRENCE-ID" not in event
    assert str(event["SUMMARY"]) == "Coaching"
    assert str(event["DESCRIPTION"]) == "Bring notes"
    assert str(event["ORGANIZER"]) == "mailto:me@example.com"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:jane@example.com"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert attendee.params["CN"] == "Jane Doe"
    assert event["LAST-MODIFIED"].dt == datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    assert str(event["TRANSP"]) == "OPAQUE"
    [instance] = instances(data)
    assert instance.attendees == (("jane@example.com", "ACCEPTED"),)
    assert instance.status is Status.CONFIRMED


def test_rendering_is_deterministic() -> None:
    """The same item gives the same bytes (the engine compares content hashes)."""
    assert render(item()) == render(json.loads(json.dumps(item())))


@pytest.mark.parametrize(
    ("response", "partstat"),
    [
        ("accepted", "ACCEPTED"),
        ("declined", "DECLINED"),
        ("tentativelyAccepted", "TENTATIVE"),
        ("none", "NEEDS-ACTION"),
        ("notResponded", "NEEDS-ACTION"),
        ("organizer", "ACCEPTED"),
    ],
)
def test_responses_map_to_partstat(response: str, partstat: str) -> None:
    """Graph's response values map onto iCalendar PARTSTAT."""
    attendee = {
        "emailAddress": {"address": "jane@example.com"},
        "status": {"response": response},
        "type": "required",
    }
    event = vevent(render(item(attendees=[attendee])))
    assert event["ATTENDEE"].params["PARTSTAT"] == partstat


def test_cancellation_comes_from_is_cancelled_not_the_subject() -> None:
    """isCancelled gives STATUS:CANCELLED and the server's prefix is stripped; the prefix
    alone cancels nothing."""
    cancelled = vevent(render(item(isCancelled=True, subject="Canceled: Canceled: Coaching")))
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert str(cancelled["SUMMARY"]) == "Coaching"
    typed = vevent(render(item(subject="Canceled: the old plan")))
    assert "STATUS" not in typed
    assert str(typed["SUMMARY"]) == "Canceled: the old plan"


def test_occurrences_share_the_series_uid_and_carry_their_original_start() -> None:
    """An occurrence and an exception: UID = seriesMasterId, RECURRENCE-ID = originalStart;
    the core reads an object holding only that VEVENT as one instance of the series."""
    moved = T0 + timedelta(days=7, hours=2)
    occurrence = item(
        id="occ1",
        type="occurrence",
        seriesMasterId="master-1",
        originalStart="2026-12-01T10:00:00Z",
    )
    exception = item(
        id="exc1",
        type="exception",
        seriesMasterId="master-1",
        originalStart="2026-12-08T10:00:00Z",
        start=graph_time(moved),
        end=graph_time(moved + timedelta(hours=1)),
    )
    first, second = instances(render(occurrence))[0], instances(render(exception))[0]
    assert (first.uid, first.recurrence_id, first.start) == ("master-1", T0, T0)
    assert (second.uid, second.recurrence_id, second.start) == (
        "master-1",
        T0 + timedelta(days=7),
        moved,
    )


def test_all_day_events_are_dates() -> None:
    """isAllDay: DTSTART/DTEND and RECURRENCE-ID as dates."""
    day = {"dateTime": "2026-12-03T00:00:00.0000000", "timeZone": "UTC"}
    next_day = {"dateTime": "2026-12-04T00:00:00.0000000", "timeZone": "UTC"}
    single = vevent(render(item(isAllDay=True, start=day, end=next_day)))
    assert single["DTSTART"].dt == date(2026, 12, 3)
    assert single["DTEND"].dt == date(2026, 12, 4)
    occurrence = item(
        isAllDay=True,
        start=day,
        end=next_day,
        type="occurrence",
        seriesMasterId="m",
        originalStart="2026-12-02T23:00:00Z",  # midnight in Berlin
    )
    [instance] = instances(render(occurrence))
    assert instance.recurrence_id == date(2026, 12, 3)


def test_syncd_data_comes_from_the_extended_property() -> None:
    """X-SYNCD-* properties come back from the property's JSON; a created event keeps the UID
    syncd gave it."""
    data = render(
        with_data(
            {"X-SYNCD-VERDICT": "late_cancellation", "X-SYNCD-NOTE": "n@syncd", "UID": "note-1"},
            transactionId="syncd:note-1.ics",
        )
    )
    assert private_properties(data) == {
        "X-SYNCD-VERDICT": "late_cancellation",
        "X-SYNCD-NOTE": "n@syncd",
    }
    assert str(vevent(data)["UID"]) == "note-1"


def test_syncd_categories_are_not_the_owners() -> None:
    """Categories syncd writes (option categories) never show up as the owner's tags."""
    event = vevent(render(item(categories=["Blue", "syncd: late cancellation"])))
    assert event["CATEGORIES"].cats == ["Blue"]


def test_html_bodies_become_text() -> None:
    """A body in HTML is reduced to its text."""
    body = {
        "contentType": "html",
        "content": "<html><head><style>p{}</style></head><body><p>Room&nbsp;4</p>"
        "<p>Bring &amp; share</p></body></html>",
    }
    assert str(vevent(render(item(body=body)))["DESCRIPTION"]) == "Room 4\nBring & share"


def test_show_as_free_is_transparent_and_tentative_is_tentative() -> None:
    """showAs maps onto TRANSP and (tentative) STATUS."""
    assert str(vevent(render(item(showAs="free")))["TRANSP"]) == "TRANSPARENT"
    assert str(vevent(render(item(showAs="tentative")))["STATUS"]) == "TENTATIVE"


def test_long_and_special_text_is_escaped_and_folded() -> None:
    """Commas, semicolons, newlines and long lines survive a parse."""
    subject = "Review; part 1, then 2\n" + "é" * 80
    data = render(item(subject=subject, location={"displayName": "Room, 4"}))
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    event = vevent(data)
    assert str(event["SUMMARY"]) == subject
    assert str(event["LOCATION"]) == "Room, 4"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"start": None}, "start is missing"),
        ({"start": {"dateTime": "yesterday", "timeZone": "UTC"}}, "start is not an ISO 8601"),
        ({"start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "Nowhere/Atlantis"}}, "zone"),
        ({"iCalUId": None}, "iCalUId is missing"),
        ({"type": "occurrence"}, "seriesMasterId is missing"),
        ({"type": "seriesMaster"}, "seriesMaster"),
        ({"attendees": "jane"}, "attendees is not a list"),
        (
            {"singleValueExtendedProperties": [{"id": DATA_PROPERTY, "value": "{oops"}]},
            "not JSON",
        ),
        ({"end": graph_time(T0 - timedelta(hours=1))}, "before start"),
    ],
)
def test_malformed_items_name_the_field(fields: dict[str, Any], reason: str) -> None:
    """A malformed item raises MalformedItem naming what is wrong, never its content."""
    with pytest.raises(MalformedItem, match=reason):
        render(item(**fields))


def test_times_with_seven_fractional_digits_and_offsets() -> None:
    """Graph's timestamps: up to 7 fractional digits, Z or an offset."""
    assert parse_moment("2026-12-01T10:00:00.1234567", "f", UTC) == T0
    assert parse_moment("2026-12-01T11:00:00+01:00", "f", UTC) == T0
    assert parse_moment("2026-12-01T10:00:00Z", "f", ZoneInfo("Europe/Berlin")) == T0
    berlin = parse_moment("2026-12-01T11:00:00", "f", ZoneInfo("Europe/Berlin"))
    assert berlin.astimezone(UTC) == T0


def test_hrefs_of_created_events_come_from_the_transaction_id() -> None:
    """An event syncd created is known by its href; any other by its id."""
    assert href_of(item(transactionId="syncd:syncd-note-ab.ics")) == "syncd-note-ab.ics"
    assert href_of(item(transactionId="someone-else")) == "AAMkAD1="
    assert could_be_id("AAMkADAwATM0MDAAMS1iNjRkLTA3AGQtMDACLTAwCgBGAAAD_x-y+z/=")
    assert not could_be_id("syncd-note-ab.ics")


# --- writes --------------------------------------------------------------------------------------


def annotated(source: dict[str, Any], **properties: str) -> bytes:
    event = vevent(render(source))
    return annotate_event(
        render(source), uid=str(event["UID"]), instance=None, properties=properties
    )


def test_an_event_with_attendees_only_gets_syncds_property() -> None:
    """Annotating a meeting writes the extended property and nothing else."""
    current = item()
    wanted = read_fields(annotated(current, **{"X-SYNCD-VERDICT": "late_cancellation"}))
    plan = plan_update(
        read_fields(render(current)), {}, [], wanted, created=False, show_categories=False
    )
    assert plan.patch == {
        "singleValueExtendedProperties": [
            {"id": DATA_PROPERTY, "value": '{"X-SYNCD-VERDICT":"late_cancellation"}'}
        ]
    }
    assert plan.dropped == ()


def test_content_changes_to_a_meeting_are_dropped_and_reported() -> None:
    """Subject, body and times of an event with attendees are never written."""
    current = item()
    edited = render(current).replace(b"SUMMARY:Coaching", b"SUMMARY:Changed")
    edited = edited.replace(b"DTSTART:20261201T100000Z", b"DTSTART:20261201T090000Z")
    plan = plan_update(
        read_fields(render(current)),
        {},
        [],
        read_fields(edited),
        created=False,
        show_categories=False,
    )
    assert plan.patch == {}
    assert plan.dropped == ("subject", "times")


def test_an_event_without_attendees_gets_every_difference() -> None:
    """A note or the owner's own entry: subject, body and times are written, in UTC."""
    current = item(attendees=[])
    edited = render(current).replace(b"SUMMARY:Coaching", b"SUMMARY:Changed")
    edited = edited.replace(b"DTSTART:20261201T100000Z", b"DTSTART:20261201T090000Z")
    plan = plan_update(
        read_fields(render(current)),
        {},
        [],
        read_fields(edited),
        created=False,
        show_categories=False,
    )
    assert plan.patch == {
        "subject": "Changed",
        "start": {"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
        "isAllDay": False,
    }


def test_an_unchanged_event_needs_no_write() -> None:
    """The rendering read back equals itself: nothing to PATCH (a quiet retry costs nothing)."""
    current = with_data({"X-SYNCD-VERDICT": "move"}, categories=["Blue"])
    fields = read_fields(render(current))
    plan = plan_update(
        fields, {"X-SYNCD-VERDICT": "move"}, ["Blue"], fields, created=False, show_categories=False
    )
    assert plan.patch == {}


def test_the_categories_option_shows_the_verdict() -> None:
    """With categories = true the verdict becomes a category next to the owner's."""
    current = item(categories=["Blue"])
    wanted = read_fields(annotated(current, **{"X-SYNCD-VERDICT": "late_cancellation"}))
    plan = plan_update(
        read_fields(render(current)), {}, ["Blue"], wanted, created=False, show_categories=True
    )
    assert plan.patch["categories"] == ["Blue", "syncd: late cancellation"]


def test_create_body_of_a_note() -> None:
    """A note: free, no reminder, no attendees, transactionId and both properties."""
    note = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        b"UID:syncd-note-1@syncd\r\nDTSTAMP:20261127T090000Z\r\n"
        b"DTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nSUMMARY:Late cancellation\r\n"
        b"DESCRIPTION:Line 1\\nLine 2\r\nTRANSP:TRANSPARENT\r\nCLASS:PRIVATE\r\n"
        b"X-SYNCD-KEY:k1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    body = create_body(read_fields(note), "syncd-note-1.ics", show_categories=False)
    assert body == {
        "subject": "Late cancellation",
        "body": {"contentType": "text", "content": "Line 1\nLine 2"},
        "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"},
        "isAllDay": False,
        "showAs": "free",
        "sensitivity": "private",
        "isReminderOn": False,
        "categories": [],
        "transactionId": "syncd:syncd-note-1.ics",
        "singleValueExtendedProperties": [
            {"id": DATA_PROPERTY, "value": '{"UID":"syncd-note-1@syncd","X-SYNCD-KEY":"k1"}'},
            {"id": HREF_PROPERTY, "value": "syncd-note-1.ics"},
        ],
    }


def test_a_created_event_reads_back_as_written() -> None:
    """What a create writes and what a listing renders are the same fields (so a retried
    create of the same note is recognised as done)."""
    note = render(
        with_data(
            {"UID": "syncd-note-1@syncd", "X-SYNCD-KEY": "k1"},
            attendees=[],
            organizer=None,
            showAs="free",
            sensitivity="private",
            transactionId="syncd:syncd-note-1.ics",
        )
    )
    fields = read_fields(note)
    body = create_body(fields, "syncd-note-1.ics", show_categories=False)
    stored = item(**{k: v for k, v in body.items() if k != "transactionId"}, attendees=[])
    stored["transactionId"] = body["transactionId"]
    again = read_fields(render(stored))
    assert (
        plan_update(
            again,
            {"UID": "syncd-note-1@syncd", "X-SYNCD-KEY": "k1"},
            [],
            fields,
            created=True,
            show_categories=False,
        ).patch
        == {}
    )


# --- the error table and retries ---------------------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status_code = status
        self.content = b"" if body is None else json.dumps(body).encode()
        self.headers = headers or {}


class FakeHTTP:
    """Stands in for requests.Session: answers from a script, records what was sent."""

    def __init__(self, *answers: FakeResponse | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        self.sent.append((method, url, kwargs["headers"]))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self) -> None:
        pass


class FakeCredentials:
    def __init__(self) -> None:
        self.renewed = 0

    def token(self) -> str:
        return f"token-{self.renewed}"

    def renew(self) -> str:
        self.renewed += 1
        return self.token()

    def mailbox(self) -> str:
        return "me@example.com"


@pytest.fixture
def sleeps() -> list[float]:
    return []


def session_with(sleeps: list[float], *answers: FakeResponse | Exception) -> GraphSession:
    session = GraphSession(
        "work",
        "https://graph.test/v1.0",
        FakeCredentials(),
        sleep=sleeps.append,
        jitter=lambda: 0.5,
    )
    session.http = FakeHTTP(*answers)  # type: ignore[assignment]
    return session


def error(code: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": "..."}}


def test_every_request_prefers_immutable_ids_utc_and_text(sleeps: list[float]) -> None:
    """Prefer IdType, timezone and body type on every request; a bearer token."""
    session = session_with(sleeps, FakeResponse(200, {}))
    session.request("get", "GET", "https://graph.test/v1.0/me/events/x")
    [(_method, _url, headers)] = session.http.sent  # type: ignore[attr-defined]
    assert 'IdType="ImmutableId"' in headers["Prefer"]
    assert 'outlook.timezone="UTC"' in headers["Prefer"]
    assert headers["Authorization"] == "Bearer token-0"


def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    """429 and 503 wait exactly Retry-After, then succeed."""
    session = session_with(
        sleeps,
        FakeResponse(429, error("TooManyRequests"), {"Retry-After": "7"}),
        FakeResponse(503, None, {"Retry-After": "2"}),
        FakeResponse(200, {"ok": True}),
    )
    reply = session.request("get", "GET", "https://graph.test/v1.0/me/events/x")
    assert reply.body == {"ok": True}
    assert sleeps == [7.0, 2.0]


def test_backoff_without_retry_after_is_capped_and_jittered(sleeps: list[float]) -> None:
    """Without Retry-After: exponential steps times the jitter, then TransientError."""
    import requests

    session = session_with(
        sleeps,
        FakeResponse(500),
        requests.ConnectionError("reset"),
        FakeResponse(504),
        FakeResponse(502),
        FakeResponse(500),
    )
    with pytest.raises(TransientError, match="HTTP 500"):
        session.request("get", "GET", "https://graph.test/v1.0/me/events/x")
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_a_401_renews_the_token_once(sleeps: list[float]) -> None:
    """The first 401 gets a new token and a retry; a second is AuthError."""
    session = session_with(sleeps, FakeResponse(401), FakeResponse(200, {}))
    session.request("get", "GET", "https://graph.test/v1.0/me/events/x")
    assert [h["Authorization"] for _m, _u, h in session.http.sent] == [  # type: ignore[attr-defined]
        "Bearer token-0",
        "Bearer token-1",
    ]
    refused = session_with(sleeps, FakeResponse(401), FakeResponse(401))
    with pytest.raises(AuthError, match="needs consent"):
        refused.request("get", "GET", "https://graph.test/v1.0/me/events/x")


@pytest.mark.parametrize(
    ("operation", "status", "code", "expected"),
    [
        ("delta", 410, "SyncStateNotFound", DeltaExpired),
        ("delta", 410, "", DeltaExpired),
        ("delta", 400, "SyncStateInvalid", DeltaExpired),
        ("delta", 404, "ResyncRequired", DeltaExpired),
        ("delta", 400, "BadRequest", ConnectorError),
        ("get", 404, "ErrorItemNotFound", NotFound),
        ("update", 412, "ErrorIrresolvableConflict", Conflict),
        ("delete", 412, "ErrorIrresolvableConflict", Conflict),
        ("get", 403, "ErrorAccessDenied", AuthError),
    ],
)
def test_the_error_table(
    sleeps: list[float], operation: str, status: int, code: str, expected: type[Exception]
) -> None:
    """Statuses and error codes map onto syncd's errors."""
    session = session_with(sleeps, FakeResponse(status, error(code) if code else None))
    with pytest.raises(expected) as raised:
        session.request(operation, "GET", "https://graph.test/v1.0/me/events/x")
    assert type(raised.value) is expected
    assert "calendar 'work'" in str(raised.value)
    assert "/v1.0/me/events/x" in str(raised.value)
    assert sleeps == []


def test_a_long_retry_after_leaves_it_to_the_next_cycle(sleeps: list[float]) -> None:
    """Graph asking for more than the longest wait fails the cycle at once."""
    session = session_with(sleeps, FakeResponse(429, None, {"Retry-After": "3600"}))
    with pytest.raises(TransientError, match="asks to wait 3600s"):
        session.request("get", "GET", "https://graph.test/v1.0/me/events/x")
    assert sleeps == []


def test_interrupt_ends_retries(sleeps: list[float]) -> None:
    """Once syncd stops, no further attempt is made."""
    session = session_with(sleeps, FakeResponse(503), FakeResponse(200, {}))
    session.sleep = lambda _s: session.interrupt()
    with pytest.raises(TransientError, match="stopping"):
        session.request("get", "GET", "https://graph.test/v1.0/me/events/x")


def test_batches_retry_only_the_throttled_calls(sleeps: list[float]) -> None:
    """Inside a $batch a 429 call is sent again after its Retry-After; others are kept."""
    from connectors.outlook.session import Call

    first = {
        "responses": [
            {"id": "0", "status": 200, "body": {"id": "a"}},
            {"id": "1", "status": 429, "headers": {"Retry-After": "3"}, "body": error("x")},
            {"id": "2", "status": 404, "body": error("ErrorItemNotFound")},
        ]
    }
    second = {"responses": [{"id": "0", "status": 200, "body": {"id": "b"}}]}
    session = session_with(sleeps, FakeResponse(200, first), FakeResponse(200, second))
    calls = [Call(str(n), "GET", f"me/events/{n}") for n in range(3)]
    replies = session.batch("get", calls)
    assert {k: (v.status, (v.body or {}).get("id")) for k, v in replies.items()} == {
        "0": (200, "a"),
        "1": (200, "b"),
        "2": (404, None),
    }
    assert sleeps == [3.0]


def test_a_reply_is_a_plain_record() -> None:
    """Replies are small frozen records (no vendor objects leave the session)."""
    assert Reply(200).headers == {}


def test_options_are_frozen(tmp_path: Path) -> None:
    """Parsed options cannot be changed afterwards."""
    options = parse_options(config(tmp_path))
    assert isinstance(options, OutlookOptions)
    with pytest.raises(AttributeError):
        options.client_id = "x"  # type: ignore[misc]


def test_only_the_notes_calendar_is_created_by_default(tmp_path: Path) -> None:
    """A misspelt watched calendar is an error, never a new empty calendar; the notes
    calendar is made when missing; an explicit ``create`` wins either way."""
    from dataclasses import replace

    assert not parse_options(config(tmp_path, calendar="Wrok")).create
    notes = replace(config(tmp_path, "notes", calendar="syncd notes"), is_notes=True)
    assert parse_options(notes).create
    assert parse_options(config(tmp_path, calendar="Work", create=True)).create


def test_calendars_of_one_account_share_its_token_cache(tmp_path: Path) -> None:
    """``account`` names the cache file, so a work and a notes calendar sign in once."""
    work = parse_options(config(tmp_path, account="me"))
    notes = parse_options(config(tmp_path, "notes", account="me", calendar="n"))
    assert work.token_cache == notes.token_cache == tmp_path / "tokens" / "outlook-me.json"
    with pytest.raises(ConfigError) as error:
        parse_options(config(tmp_path, account="me", token_cache="elsewhere.json"))  # noqa: S106
    assert "account" in problems(error)


def test_a_teams_join_link_becomes_a_conference_property() -> None:
    """``onlineMeeting.joinUrl`` (or the older ``onlineMeetingUrl``) is written as
    CONFERENCE; a value of the wrong shape is left out, and the item still renders."""
    from connectors.outlook.render import render as render_item

    join = "https://teams.microsoft.com/l/meetup-join/abc"
    base = {
        "id": "AAMk1",
        "iCalUId": "u1",
        "type": "singleInstance",
        "subject": "Coaching",
        "start": {"dateTime": "2026-12-01T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-01T11:00:00.0000000", "timeZone": "UTC"},
    }
    data = render_item({**base, "onlineMeeting": {"joinUrl": join}, "onlineMeetingUrl": join})
    unfolded = data.replace(b"\r\n ", b"").split(b"\r\n")
    lines = [line for line in unfolded if line.startswith(b"CONFERENCE")]
    assert lines == [b"CONFERENCE;VALUE=URI;FEATURE=VIDEO:" + join.encode()]
    assert b"CONFERENCE" not in render_item({**base, "onlineMeeting": {"joinUrl": 7}})
