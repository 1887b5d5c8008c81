"""Fixes of the Outlook connector's review findings, each through the path a user takes:
a malformed token cache, partial delta entries, a deleted and re-made calendar, all-day
occurrences far east of UTC, the attendee guard and the mailbox's in-flight limit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from connectors.outlook import OutlookConnector
from connectors.outlook.items import original_start
from connectors.outlook.session import MAX_IN_FLIGHT, Call, GraphSession, Slots
from syncd.cli import main
from syncd.errors import CursorExpired, NotFound
from tests import ical
from tests.contract import sample
from tests.identity_provider import IdentityProvider
from tests.test_outlook_auth import CLIENT, calendar_config, sign_in
from tests.test_outlook_contract import (
    NOW,
    Servers,
    calendar_id,
    connector,
    graph_time,
    meeting,
    servers,
    user,
)

__all__ = ["calendar_id", "connector", "servers", "user"]  # fixtures used here

MALFORMED_CACHES = [
    "[]",
    '"str"',
    '{"Account": 5}',
    '{"Account": {"k": 5}}',
    '{"Account": {"k": {"username": 5, "home_account_id": "a"}}}',
    '{"RefreshToken": {"k": {"secret": ["x"]}}}',
]


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        provider.register_app(CLIENT)
        yield provider


def _config(root: Path) -> Path:
    (root / "home").mkdir()
    config = root / "syncd.toml"
    config.write_text(
        '[state]\npath = "var/state.db"\n[audit]\npath = "var/audit.jsonl"\n'
        '[owner]\nemails = ["me@contoso.example"]\n'
        '[[calendars]]\nname = "work"\nconnector = "outlook"\nclient_id = "c"\n'
        'authority = "https://127.0.0.1:9/tenant"\ngraph_url = "https://127.0.0.1:9/v1.0"\n'
        '[[calendars]]\nname = "home"\nconnector = "local"\npath = "home"\n'
    )
    return config


def _write_cache(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    cache = folder / "outlook-work.json"
    cache.write_text(text)
    cache.chmod(0o600)
    return cache


@pytest.mark.parametrize("text", MALFORMED_CACHES)
def test_a_malformed_token_cache_is_named_by_once_and_doctor(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``once`` and ``doctor`` exit 1 naming the file and the command, without a traceback;
    the other calendar is still processed."""
    config = _config(tmp_path)
    cache = _write_cache(tmp_path / "var" / "tokens", text)
    wanted = f"{cache} is not an MSAL token cache; run 'syncd auth outlook --calendar work'"
    assert main(["once", "--config", str(config)]) == 1
    once = capsys.readouterr()
    assert wanted in once.out
    assert "home: baseline of 0 instances" in once.out
    assert main(["doctor", "--config", str(config)]) == 1
    doctor = capsys.readouterr()
    assert wanted in doctor.out
    for output in (once, doctor):
        assert "Traceback" not in output.out + output.err


def test_syncd_auth_outlook_replaces_a_malformed_cache(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """The sign-in starts from an empty cache when the file holds none, and writes a good one."""
    calendar = calendar_config(tmp_path, idp)
    cache = _write_cache(tmp_path / "var" / "tokens", '{"Account": 5}')
    assert "signed in" in sign_in(calendar, idp)
    assert set(json.loads(cache.read_text())) >= {"Account", "RefreshToken"}


# --- 2. partial delta entries --------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 30], ids=["fetched in a batch", "read from the view"])
def test_partial_delta_updates_are_rendered_from_whole_items(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str, count: int
) -> None:
    """Graph may send an updated item with only its changed properties: moved meetings keep
    their attendees and subject, whichever way the items are read."""
    made = [
        servers.emu.put_event(user, calendar_id, meeting(f"m{n}", NOW + timedelta(hours=n + 1)))
        for n in range(count)
    ]
    first = connector.list_changes(None, {})
    known = {o.href: o.etag for o in first.upserts}
    servers.emu.partial_updates()
    try:
        moved = NOW + timedelta(days=2)
        for item in made:
            servers.emu.patch_event(
                user,
                item["id"],
                {"start": graph_time(moved), "end": graph_time(moved + timedelta(hours=1))},
            )
        changed = connector.list_changes(first.cursor, known)
    finally:
        servers.emu.partial_updates(False)
    assert not changed.failures
    assert len(changed.upserts) == count
    for found in changed.upserts:
        text = found.data.decode()
        assert "ATTENDEE;CN=Jane Doe" in text
        assert "SUMMARY:m" in text
        assert f"DTSTART:{moved.strftime('%Y%m%dT%H%M%SZ')}" in text


def test_a_partial_update_of_a_created_event_keeps_its_href_after_a_restart(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str, tmp_path: Path
) -> None:
    """A partial entry has no transactionId: the note is still listed at the href it was
    created at, by a connector that has not seen it yet."""
    soon = NOW + timedelta(days=1)  # inside the connector's window, on its (real) clock
    note = ical.calendar(ical.event("syncd-note-9", soon, soon + timedelta(hours=1)))
    connector.create("syncd-note-9.ics", note)
    first = connector.list_changes(None, {})
    known = {o.href: o.etag for o in first.upserts}
    assert set(known) == {"syncd-note-9.ics"}
    [stored] = servers.emu.events(user, calendar_id)
    moved = NOW + timedelta(days=3)
    servers.emu.patch_event(
        user, stored["id"], {"start": graph_time(moved), "end": graph_time(moved)}
    )
    restarted = servers.connector(tmp_path, calendar=calendar_id, user=user)
    servers.emu.partial_updates()
    try:
        changed = restarted.list_changes(first.cursor, known)
    finally:
        servers.emu.partial_updates(False)
        restarted.close()
    assert [o.href for o in changed.upserts] == ["syncd-note-9.ics"]
    assert not changed.removed


# --- 3. a deleted (and re-made) calendar ---------------------------------------------------


def _delete_calendar(servers: Servers, user: str, calendar_id: str) -> None:
    """The calendar and its events are gone, as when the owner deletes it in Outlook."""
    with servers.emu.store.lock:
        mailbox = servers.emu.store.mailbox(user)
        del mailbox.calendars[calendar_id]
        for ident in [i for i, item in mailbox.items.items() if item.calendar_id == calendar_id]:
            del mailbox.items[ident]


def test_a_deleted_and_remade_calendar_starts_a_new_round(
    servers: Servers, user: str, tmp_path: Path
) -> None:
    """The old delta link's 404 is an expired cursor; the next round finds the new calendar
    by name, in this process and after a restart; a cursor for the old calendar is refused."""
    old = servers.emu.add_calendar(user, "Work")
    servers.emu.put_event(user, old, meeting("old", NOW + timedelta(days=1)))
    connector = servers.connector(tmp_path, calendar="Work", user=user)
    first = connector.list_changes(None, {})
    known = {o.href: o.etag for o in first.upserts}
    _delete_calendar(servers, user, old)
    new = servers.emu.add_calendar(user, "Work")
    servers.emu.put_event(user, new, meeting("new", NOW + timedelta(days=2)))
    restarted = servers.connector(tmp_path, calendar="Work", user=user)
    try:
        for each in (connector, restarted):
            with pytest.raises(CursorExpired):
                each.list_changes(first.cursor, known)
            again = each.list_changes(None, known)
            assert [b"SUMMARY:new" in o.data for o in again.upserts] == [True]
            assert json.loads(again.cursor)["cal"] == new
            servers.emu.clear_requests()
            with pytest.raises(CursorExpired, match="re-made"):
                each.list_changes(first.cursor, known)
            assert not servers.emu.requests
    finally:
        connector.close()
        restarted.close()


def test_the_notes_calendar_is_made_again_when_deleted(
    servers: Servers, user: str, tmp_path: Path
) -> None:
    """A create after the calendar was deleted looks it up again and makes it (create = true)."""
    connector = servers.connector(tmp_path, calendar="Notes", user=user, create=True)
    try:
        connector.create("syncd-note-1.ics", sample("syncd-note-1"))
        [first] = [
            c for c, cal in servers.emu.store.mailbox(user).calendars.items() if cal.name == "Notes"
        ]
        _delete_calendar(servers, user, first)
        connector.create("syncd-note-2.ics", sample("syncd-note-2"))
        [second] = [
            c for c, cal in servers.emu.store.mailbox(user).calendars.items() if cal.name == "Notes"
        ]
        assert second != first
        [stored] = servers.emu.events(user, second)
        assert stored["transactionId"] == "syncd:syncd-note-2.ics"
        with pytest.raises(NotFound):
            connector.get("syncd-note-1.ics")
    finally:
        connector.close()


# --- 4. all-day occurrences far east of UTC ------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["Pacific/Kiritimati", "New Zealand Standard Time", "Pacific/Apia", "Pacific/Honolulu"]
)
def test_all_day_occurrences_keep_their_day_in_any_zone(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str, zone: str
) -> None:
    """RECURRENCE-ID is the occurrence's own day, from originalStartTimeZone (IANA or Windows
    name), also 13 and 14 hours east of UTC."""
    day = (NOW + timedelta(days=10)).date()
    servers.emu.put_event(
        user,
        calendar_id,
        {
            "subject": "all day",
            "isAllDay": True,
            "start": {"dateTime": f"{day.isoformat()}T00:00:00", "timeZone": zone},
            "end": {
                "dateTime": f"{(day + timedelta(days=1)).isoformat()}T00:00:00",
                "timeZone": zone,
            },
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": 2,
                    "startDate": day.isoformat(),
                },
            },
        },
    )
    found = connector.list_changes(None, {})
    days = set()
    for item in found.upserts:
        lines = item.data.decode().split("\r\n")
        [recurrence] = [line for line in lines if line.startswith("RECURRENCE-ID")]
        [start] = [line for line in lines if line.startswith("DTSTART")]
        assert recurrence.split(":")[1] == start.split(":")[1]
        days.add(start.split(":")[1])
    assert days == {d.strftime("%Y%m%d") for d in (day, day + timedelta(days=1))}


def test_without_original_zone_the_noon_rule_is_kept() -> None:
    """An occurrence without originalStartTimeZone takes the day holding its start at noon."""
    item = {"originalStart": "2026-12-06T22:00:00Z"}
    assert original_start(item, all_day=True) == date(2026, 12, 7)
    item["originalStartTimeZone"] = "Pacific Standard Time"
    assert original_start(item, all_day=True) == date(2026, 12, 6)


# --- 5. the attendee guard -----------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"attendees": [{"emailAddress": {"name": "Room 1", "address": " "}, "type": "resource"}]},
        {"organizer": {"emailAddress": {"address": "boss@example.com", "name": "Boss"}}},
    ],
    ids=["an attendee without address", "organized by someone else"],
)
def test_content_of_a_meeting_is_never_written(
    servers: Servers,
    connector: OutlookConnector,
    user: str,
    calendar_id: str,
    extra: dict[str, object],
) -> None:
    """Whether an event has attendees is read from Graph's fields: an attendee the rendering
    leaves out, or another organizer, still keeps subject and times from being written."""
    start = NOW + timedelta(days=1)
    body = {
        "subject": "m",
        "start": graph_time(start),
        "end": graph_time(start + timedelta(hours=1)),
        **extra,
    }
    made = servers.emu.put_event(user, calendar_id, body)
    current = connector.get(made["id"])
    assert b"ATTENDEE" not in current.data
    edited = current.data.replace(b"SUMMARY:m", b"SUMMARY:renamed").replace(
        b"END:VEVENT", b"X-SYNCD-VERDICT:move\r\nEND:VEVENT"
    )
    servers.emu.clear_requests()
    connector.update(made["id"], edited, current.etag)
    [patch] = [r for r in servers.wire() if r.method == "PATCH"]
    assert set(patch.body) == {"singleValueExtendedProperties"}
    assert servers.emu.event(user, made["id"])["subject"] == "m"  # type: ignore[index]


# --- 6. the mailbox's in-flight limit ------------------------------------------------------


class _Tokens:
    def token(self) -> str:
        return "token"

    def renew(self) -> str:
        return "token"

    def mailbox(self) -> str:
        return f"{uuid.uuid4().hex}@example.com"


@pytest.mark.parametrize(("calls", "taken"), [(1, 1), (3, 3), (20, 4)])
def test_a_batch_takes_one_slot_per_inner_request(calls: int, taken: int) -> None:
    """While a ``$batch`` of N requests is in flight it holds min(4, N) of the mailbox's four
    slots, so a process never has more than four requests of one mailbox in flight."""
    session = GraphSession("work", "https://graph.invalid/v1.0", _Tokens())
    held: list[int] = []

    def answer(method: str, url: str, **_kwargs: object) -> requests.Response:
        slots = session._mailbox_slots()
        held.append(slots.limit - slots.free)
        requests_ = json.loads(_kwargs["data"])["requests"]  # type: ignore[arg-type]
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(
            {"responses": [{"id": r["id"], "status": 200, "body": {}} for r in requests_]}
        ).encode()
        return response

    session.http.request = answer  # type: ignore[method-assign,assignment]
    replies = session.batch("get", [Call(str(n), "GET", "me/events") for n in range(calls)])
    assert len(replies) == calls
    assert held == [taken]
    assert session._mailbox_slots().free == MAX_IN_FLIGHT


def test_slots_are_taken_together_and_given_back() -> None:
    """A batch waits for all its slots at once: two batches never deadlock holding half."""
    slots = Slots()
    assert slots.acquire(3, timeout=0)
    assert not slots.acquire(2, timeout=0)
    assert slots.free == 1
    slots.release(3)
    assert slots.acquire(4, timeout=0)
    assert not slots.acquire(1, timeout=0)
    slots.release(4)
    assert slots.free == 4
