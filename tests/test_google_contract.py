"""The Google connector against the Calendar API emulator, through the real client library:
the contract suite, then what is Google's own (pages, sync tokens, series as one object,
the notes calendar found by name or made, what a write sends)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from connectors.google import GoogleConnector
from connectors.google.account import forget_accounts
from connectors.google.ids import event_id
from connectors.google.options import SCOPES
from syncd.config import CalendarConfig
from syncd.errors import AlreadyExists, ConnectorError, CursorExpired
from tests.contract import START, ConnectorContract, Outside, listed, sample, snapshot
from tests.google_emulator import GoogleCalendarEmulator, Recorded

USER = "me@example.com"


# --- shared helpers (the other Google test files import them) -------------------------------


def write_token(emu: GoogleCalendarEmulator, folder: Path, name: str = "google-work.json") -> Path:
    """An authorized-user token file (0600 in a 0700 folder) with syncd's scopes."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(emu.authorized_user_info(scopes=SCOPES)))
    path.chmod(0o600)
    return path


def google_config(
    root: Path,
    emu: GoogleCalendarEmulator,
    name: str = "work",
    *,
    is_notes: bool = False,
    **options: object,
) -> CalendarConfig:
    """A ``connector = "google"`` calendar at the emulator; tokens in ``root/tokens``."""
    return CalendarConfig(
        name=name,
        connector="google",
        options={"api_endpoint": emu.endpoint, **options},
        source=root / "syncd.toml",
        index=0,
        tokens_dir=root / "tokens",
        is_notes=is_notes,
    )


def quick(connector: GoogleConnector) -> GoogleConnector:
    """Backoff in milliseconds, so retries in tests cost no time."""
    connector.session.backoff = 0.01
    return connector


def body_of(href: str, data: bytes) -> dict[str, Any]:
    """Google JSON for a small one-event iCalendar object, at the href's event id."""
    vevent = Calendar.from_ical(data).walk("VEVENT")[0]
    body: dict[str, Any] = {
        "id": event_id(href),
        "iCalUID": str(vevent["UID"]),
        "summary": str(vevent.get("SUMMARY", "")),
    }
    for key in ("DTSTART", "DTEND"):
        value = vevent[key].dt
        google = "start" if key == "DTSTART" else "end"
        if isinstance(value, datetime):
            body[google] = {"dateTime": value.astimezone(UTC).isoformat().replace("+00:00", "Z")}
        else:
            body[google] = {"date": value.isoformat()}
    return body


class GoogleOutside(Outside):
    """Another client of one emulator calendar: the contract's samples as Google JSON."""

    def __init__(self, emu: GoogleCalendarEmulator, calendar_id: str) -> None:
        self.emu = emu
        self.calendar_id = calendar_id

    def put(self, href: str, data: bytes) -> None:
        self.emu.put_event(self.calendar_id, body_of(href, data))

    def remove(self, href: str) -> None:
        self.emu.delete_event(self.calendar_id, event_id(href))

    def expire_cursor(self, cursor: str) -> str | None:
        state = json.loads(cursor)
        state["t"] = "x" + state["t"]  # a tampered token: Google answers 410
        return json.dumps(state)


def api_calls(emu: GoogleCalendarEmulator) -> list[Recorded]:
    """The Calendar API requests recorded (not the token endpoint)."""
    return [r for r in emu.requests if r.path.startswith("/calendar/v3/")]


def lists(emu: GoogleCalendarEmulator) -> list[Recorded]:
    """The ``events.list`` requests recorded."""
    return [r for r in api_calls(emu) if r.method == "GET" and r.path.endswith("/events")]


def param(request: Recorded, name: str) -> str | None:
    values = request.query.get(name)
    return values[0] if values else None


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleCalendarEmulator]:
    with GoogleCalendarEmulator(user=USER) as emulator:
        yield emulator
        assert emulator.internal_errors == []


@pytest.fixture
def calendar_id(emu: GoogleCalendarEmulator) -> str:
    return emu.add_calendar(f"work {uuid.uuid4().hex[:8]}")


@pytest.fixture
def connector(
    emu: GoogleCalendarEmulator, calendar_id: str, tmp_path: Path
) -> Iterator[GoogleConnector]:
    write_token(emu, tmp_path / "tokens")
    made = quick(GoogleConnector.from_config(google_config(tmp_path, emu, calendar_id=calendar_id)))
    yield made
    made.close()
    forget_accounts()


@pytest.fixture
def outside(emu: GoogleCalendarEmulator, calendar_id: str) -> GoogleOutside:
    return GoogleOutside(emu, calendar_id)


class TestGoogleContract(ConnectorContract):
    """The contract suite on a fresh emulator calendar per test."""


# --- listings -------------------------------------------------------------------------------


HORIZON = (START - timedelta(days=30), START + timedelta(days=180))


def put_many(outside: GoogleOutside, count: int) -> None:
    for number in range(count):
        outside.put(f"e{number}.ics", sample(f"e{number}", 8 + number % 10))


def test_full_listing_follows_every_page_and_takes_the_last_token(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """Five events in pages of two: three list requests with the fixed parameters and
    fields=, without timeMin (the whole calendar); the cursor's token is the last page's and
    works."""
    put_many(outside, 5)
    emu.page_size_cap = 2
    try:
        emu.clear_requests()
        first = connector.list_changes(None, {}, horizon=HORIZON)
    finally:
        emu.page_size_cap = None
    assert len(first.upserts) == 5
    pages = lists(emu)
    assert len(pages) == 3
    for page in pages:
        assert param(page, "showDeleted") == "true"
        assert param(page, "singleEvents") == "false"
        assert param(page, "maxResults") == "2500"
        assert param(page, "timeMin") is None
        assert "nextSyncToken" in (param(page, "fields") or "")
    assert [param(p, "pageToken") is None for p in pages] == [True, False, False]
    emu.clear_requests()
    quiet = connector.list_changes(first.cursor, snapshot(first, {}), horizon=HORIZON)
    assert (list(quiet.upserts), list(quiet.removed)) == ([], [])


def test_a_quiet_poll_is_one_request_without_forbidden_parameters(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    put_many(outside, 3)
    first = connector.list_changes(None, {}, horizon=HORIZON)
    emu.clear_requests()
    connector.list_changes(first.cursor, snapshot(first, {}), horizon=HORIZON)
    [only] = emu.requests
    assert param(only, "syncToken")
    forbidden = {"timeMin", "timeMax", "iCalUID", "q", "orderBy", "updatedMin"}
    assert not forbidden & set(only.query)
    assert param(only, "fields")


def test_a_cursor_of_another_calendar_is_expired(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside, tmp_path: Path
) -> None:
    """The fingerprint holds the calendar id: the cursor is refused before any request."""
    outside.put("a.ics", sample("a"))
    cursor = connector.list_changes(None, {}).cursor
    assert cursor is not None
    other = GoogleConnector.from_config(
        google_config(tmp_path, emu, calendar_id=emu.add_calendar("other"))
    )
    emu.clear_requests()
    with pytest.raises(CursorExpired):
        other.list_changes(cursor, {})
    assert api_calls(emu) == []


def test_a_token_expiring_between_pages_expires_the_next_poll(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """Tokens expire while an incremental listing is paged: its pages still come (Google
    serves them from the listing's start), and the token they end with answers 410 at the
    next poll, which is CursorExpired."""
    outside.put("a.ics", sample("a"))
    first = connector.list_changes(None, {})
    put_many(outside, 4)
    real = connector.session.execute
    pages: list[str] = []

    def expire_after_first_page(operation: str, request: Any, what: str) -> Any:
        result = real(operation, request, what)
        pages.append(operation)
        if len(pages) == 1:
            emu.expire_sync_tokens(outside.calendar_id)
        return result

    connector.session.execute = expire_after_first_page  # type: ignore[method-assign]
    emu.page_size_cap = 2
    try:
        second = connector.list_changes(first.cursor, snapshot(first, {}))
    finally:
        emu.page_size_cap = None
    assert pages == ["sync"] * 2
    assert len(second.upserts) == 4
    with pytest.raises(CursorExpired):
        connector.list_changes(second.cursor, snapshot(second, snapshot(first, {})))


# --- series ---------------------------------------------------------------------------------

SERIES_START = datetime(2026, 12, 1, 10, tzinfo=UTC)


def series_body(event: str = "series0001", **extra: Any) -> dict[str, Any]:
    return {
        "id": event,
        "iCalUID": f"{event}@example.com",
        "summary": "Coaching",
        "start": {"dateTime": "2026-12-01T11:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-12-01T12:00:00+01:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
        "attendees": [{"email": "jane@example.com", "responseStatus": "accepted"}],
        **extra,
    }


def vevents(data: bytes) -> list[Any]:
    return list(Calendar.from_ical(data).walk("VEVENT"))


def test_a_series_is_one_object_and_its_changes_refetch_it(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """A deleted instance and a moved instance each come back as the whole series (one
    object with a cancelled and a moved override); a deleted series is removed."""
    calendar = outside.calendar_id
    emu.put_event(calendar, series_body())
    first = connector.list_changes(None, {})
    assert [o.href for o in first.upserts] == ["series0001"]
    known = snapshot(first, {})
    emu.delete_event(calendar, "series0001_20261208T100000Z")
    emu.patch_event(
        calendar,
        "series0001_20261215T100000Z",
        {
            "start": {"dateTime": "2026-12-15T15:00:00Z"},
            "end": {"dateTime": "2026-12-15T16:00:00Z"},
        },
    )
    second = connector.list_changes(first.cursor, known)
    [series] = second.upserts
    assert series.href == "series0001"
    assert series.etag != known["series0001"]
    parts = vevents(series.data)
    assert len(parts) == 3
    overrides = {p["RECURRENCE-ID"].dt.astimezone(UTC): p for p in parts if "RECURRENCE-ID" in p}
    cancelled = overrides[SERIES_START + timedelta(days=7)]
    assert str(cancelled["STATUS"]) == "CANCELLED"
    moved = overrides[SERIES_START + timedelta(days=14)]
    assert moved["DTSTART"].dt == datetime(2026, 12, 15, 15, tzinfo=UTC)
    known = snapshot(second, known)
    emu.delete_event(calendar, "series0001")
    third = connector.list_changes(second.cursor, known)
    assert (list(third.upserts), list(third.removed)) == ([], ["series0001"])


def test_get_and_update_of_a_series_patch_only_private_properties(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """An annotation on a cancelled instance of a series with attendees goes to that
    exception's extendedProperties.private, with If-Match and sendUpdates=none."""
    calendar = outside.calendar_id
    emu.put_event(calendar, series_body())
    emu.delete_event(calendar, "series0001_20261208T100000Z")
    current = connector.get("series0001")
    data = current.data.replace(
        b"STATUS:CANCELLED\r\n", b"STATUS:CANCELLED\r\nX-SYNCD-VERDICT:late\r\n"
    )
    emu.clear_requests()
    new_etag = connector.update("series0001", data, current.etag)
    [patch] = [r for r in api_calls(emu) if r.method == "PATCH"]
    assert patch.path.endswith("/events/series0001_20261208T100000Z")
    assert patch.body == {"extendedProperties": {"private": {"X-SYNCD-VERDICT": "late"}}}
    assert param(patch, "sendUpdates") == "none"
    assert patch.headers["if-match"]
    assert connector.get("series0001").etag == new_etag
    stored = emu.event(calendar, "series0001_20261208T100000Z")
    assert stored is not None
    assert stored["extendedProperties"]["private"] == {"X-SYNCD-VERDICT": "late"}


# --- writes and the notes calendar ----------------------------------------------------------


def test_create_inserts_at_the_encoded_id_without_notifications(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    data = sample("n@syncd").replace(
        b"END:VEVENT", b"TRANSP:TRANSPARENT\r\nX-SYNCD-KEY:k1\r\nEND:VEVENT"
    )
    emu.clear_requests()
    connector.create("syncd-note-k1.ics", data)
    [insert] = [r for r in api_calls(emu) if r.method == "POST"]
    assert param(insert, "sendUpdates") == "none"
    stored = emu.event(outside.calendar_id, event_id("syncd-note-k1.ics"))
    assert stored is not None
    assert stored["transparency"] == "transparent"
    assert stored["iCalUID"] == "n@syncd"
    assert stored["extendedProperties"]["private"] == {"X-SYNCD-KEY": "k1"}
    assert "attendees" not in stored
    assert listed(connector.list_changes(None, {})).keys() == {"syncd-note-k1.ics"}


def test_the_notes_calendar_is_found_by_name_or_made_once(
    emu: GoogleCalendarEmulator, tmp_path: Path
) -> None:
    """check() says it is missing; the first listing of an unknown calendar makes it; a
    second connector finds it by name."""
    write_token(emu, tmp_path / "tokens", "google-notes.json")
    name = f"syncd notes {uuid.uuid4().hex[:8]}"
    config = google_config(tmp_path, emu, "notes", is_notes=True, calendar=name)
    first = GoogleConnector.from_config(config)
    assert "first cycle makes it" in first.check()
    first.list_changes(None, {})
    second = GoogleConnector.from_config(config)
    emu.clear_requests()
    assert second.check() == f"reachable, calendar {name!r}"
    assert next(r.path for r in api_calls(emu)).endswith("/users/me/calendarList")
    made = [r for r in emu.requests if r.method == "POST" and r.path.endswith("/calendars")]
    assert made == []
    forget_accounts()


def test_a_hidden_notes_calendar_is_found_not_made_again(
    emu: GoogleCalendarEmulator, tmp_path: Path
) -> None:
    """The user hid the notes calendar in the web UI: it is still the notes calendar."""
    write_token(emu, tmp_path / "tokens", "google-notes.json")
    name = f"syncd notes {uuid.uuid4().hex[:8]}"
    hidden = emu.add_calendar(name, hidden=True)
    config = google_config(tmp_path, emu, "notes", is_notes=True, calendar=name)
    connector = GoogleConnector.from_config(config)
    connector.list_changes(None, {})
    assert connector.finder.calendar_id(may_create=False) == hidden
    assert [r for r in emu.requests if r.method == "POST" and r.path.endswith("/calendars")] == []
    forget_accounts()


def test_a_deleted_notes_calendar_is_looked_up_and_made_again(
    emu: GoogleCalendarEmulator, tmp_path: Path
) -> None:
    """Google answers 404 for the notes calendar: the poll is CursorExpired (the id is
    forgotten), and the full listing that follows makes it again, also with known notes."""
    write_token(emu, tmp_path / "tokens", "google-notes.json")
    name = f"syncd notes {uuid.uuid4().hex[:8]}"
    config = google_config(tmp_path, emu, "notes", is_notes=True, calendar=name)
    connector = quick(GoogleConnector.from_config(config))
    first = connector.list_changes(None, {})
    connector.create("syncd-note-1.ics", sample("n1@syncd"))
    old = connector.finder.calendar_id(may_create=False)
    gone = connector.session.resource("calendars").delete(calendarId=old)
    connector.session.execute("calendar", gone, "calendars.delete")  # the user deletes it
    known = {"syncd-note-1.ics": "x"}
    with pytest.raises(CursorExpired, match="looked up again"):
        connector.list_changes(first.cursor, known)
    with pytest.raises(CursorExpired, match="a full listing follows"):
        connector.list_changes(first.cursor, known)
    again = connector.list_changes(None, known)
    assert list(again.upserts) == []
    assert connector.finder.calendar_id(may_create=False) not in (old, None)
    connector.create("syncd-note-1.ics", sample("n1@syncd"))
    forget_accounts()


def test_a_watched_calendar_by_name_is_never_made(
    emu: GoogleCalendarEmulator, tmp_path: Path
) -> None:
    """Only the notes calendar is made when missing: a watched one is a clear error."""
    write_token(emu, tmp_path / "tokens")
    connector = GoogleConnector.from_config(google_config(tmp_path, emu, calendar="No such"))
    emu.clear_requests()
    with pytest.raises(ConnectorError, match="syncd makes only the notes calendar"):
        connector.list_changes(None, {})
    assert [r.method for r in api_calls(emu)] == ["GET"]
    forget_accounts()


def test_a_deleted_note_can_be_written_again(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """Google keeps a deleted event's id (insert: 409): the tombstone is patched back to
    life with the new content, If-Match and sendUpdates=none, its old properties cleared."""
    href = "syncd-note-abc.ics"
    first = sample("n@syncd").replace(b"END:VEVENT", b"X-SYNCD-OLD:1\r\nEND:VEVENT")
    connector.create(href, first)
    connector.delete(href, connector.get(href).etag)
    emu.clear_requests()
    again = sample("n@syncd", 14).replace(b"END:VEVENT", b"X-SYNCD-NEW:2\r\nEND:VEVENT")
    etag = connector.create(href, again)
    [patch] = [r for r in api_calls(emu) if r.method == "PATCH"]
    assert param(patch, "sendUpdates") == "none"
    assert patch.headers["if-match"]
    current = connector.get(href)
    assert current.etag == etag
    stored = emu.event(outside.calendar_id, event_id(href))
    assert stored is not None
    assert stored["status"] == "confirmed"
    assert stored["extendedProperties"]["private"] == {"X-SYNCD-NEW": "2"}
    assert vevents(current.data)[0]["DTSTART"].dt == vevents(again)[0]["DTSTART"].dt
    with pytest.raises(AlreadyExists):
        connector.create(href, again)


def test_a_series_moved_before_the_horizon_keeps_its_exception(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """An instance moved long before the horizon is still part of its listed series: the
    full listing and events.get give the same object (no phantom instance)."""
    calendar = outside.calendar_id
    emu.put_event(calendar, series_body(recurrence=["RRULE:FREQ=WEEKLY;COUNT=30"]))
    moved = {"dateTime": "2026-09-02T10:00:00Z"}
    emu.patch_event(
        calendar,
        "series0001_20261215T100000Z",
        {"start": moved, "end": {"dateTime": "2026-09-02T11:00:00Z"}},
    )
    full = connector.list_changes(None, {}, horizon=HORIZON)
    [listed] = full.upserts
    got = connector.get("series0001")
    assert (listed.etag, listed.data) == (got.etag, got.data)
    assert [str(p["DTSTART"].dt) for p in vevents(listed.data) if "RECURRENCE-ID" in p] == [
        "2026-09-02 10:00:00+00:00"
    ]


def test_a_series_that_cannot_be_read_again_is_an_item_failure(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """Its refetch fails (500 on every attempt): that series is a failure that is not
    lasting, the other changes of the poll are listed and a new cursor is given."""
    calendar = outside.calendar_id
    emu.put_event(calendar, series_body())
    first = connector.list_changes(None, {})
    emu.delete_event(calendar, "series0001_20261208T100000Z")
    outside.put("a.ics", sample("a"))
    emu.inject("500", times=connector.session.attempts, path_contains="iCalUID=")
    delta = connector.list_changes(first.cursor, snapshot(first, {}))
    assert [o.href for o in delta.upserts] == ["a.ics"]
    [failure] = delta.failures
    assert (failure.href, failure.lasting) == ("series0001", False)
    assert "server error" in failure.reason
    assert delta.cursor is not None


def test_the_connector_asks_for_no_wider_scopes(
    emu: GoogleCalendarEmulator, tmp_path: Path
) -> None:
    """With a token of syncd's three scopes only, the notes calendar is found or made, its
    events listed and written, and no request is refused."""
    write_token(emu, tmp_path / "tokens", "google-notes.json")
    name = f"syncd notes {uuid.uuid4().hex[:8]}"
    config = google_config(tmp_path, emu, "notes", is_notes=True, calendar=name)
    connector = GoogleConnector.from_config(config)
    emu.clear_requests()
    listing = connector.list_changes(None, {})
    connector.create("n.ics", sample("n@syncd"))
    connector.list_changes(listing.cursor, {})
    assert connector.get("n.ics").href == "n.ics"
    calls = api_calls(emu)
    assert {r.method for r in calls} == {"GET", "POST"}
    assert len(calls) >= 5
    assert all(r.status == 200 for r in calls)
    forget_accounts()


def test_working_locations_and_birthdays_are_not_listed(
    emu: GoogleCalendarEmulator, connector: GoogleConnector, outside: GoogleOutside
) -> None:
    """Not appointments: left out of the full listing; a change to one is a removal."""
    outside.put("a.ics", sample("a"))
    for event, kind in (("office0001", "workingLocation"), ("anniv00001", "birthday")):
        emu.put_event(
            outside.calendar_id,
            {**body_of("x.ics", sample(event)), "id": event, "eventType": kind},
        )
    first = connector.list_changes(None, {})
    assert [o.href for o in first.upserts] == ["a.ics"]
    emu.patch_event(outside.calendar_id, "office0001", {"summary": "Home"})
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert (list(second.upserts), list(second.removed)) == ([], ["office0001"])
