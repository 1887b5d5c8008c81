"""The connector contract on the Graph emulator, through real MSAL and real requests over
HTTPS, plus Outlook behaviour the contract does not name: quiet rounds cost one request,
pages and replays, ``@removed`` checks, the href of created events after a restart.

The contract names objects by href (``a.ics``). On Graph another client's event is known by
its id, so :class:`GraphOutside` writes its events the way syncd's own creates look
(``transactionId`` ``syncd:{href}``, the href and the UID in syncd's extended properties):
that is how the connector finds an href it did not make up itself.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from icalendar import Calendar

from connectors.outlook import OutlookConnector
from connectors.outlook.items import DATA_PROPERTY, HREF_PROPERTY
from syncd.config import CalendarConfig
from syncd.connector import RemoteObject
from syncd.errors import ConnectorError, CursorExpired
from tests.contract import START, ConnectorContract, Outside, sample, snapshot
from tests.graph_emulator import GraphEmulator
from tests.identity_provider import IdentityProvider
from tests.tls import ca_file

CLIENT = "syncd-contract"
SECRET = "contract-secret-0123456789"  # noqa: S105 - the fake IdP's test app secret
USER = "me@contoso.example"


@dataclass
class Servers:
    """The fake identity platform, the Graph emulator and a folder with the CA and secret."""

    idp: IdentityProvider
    emu: GraphEmulator
    root: Path

    def options(self, **extra: Any) -> dict[str, Any]:
        """App-only options for a mailbox on the emulator (``user``: USER by default)."""
        secret = self.root / "secret"
        return {
            "client_id": CLIENT,
            "authority": self.idp.authority,
            "graph_url": self.emu.base,
            "ca_file": str(ca_file(self.root)),
            "user": USER,
            "timeout": 10,
            **{"client_secret_file": str(secret)},
            **extra,
        }

    def connector(self, root: Path, **extra: Any) -> OutlookConnector:
        """A connector built from a ``[[calendars]]`` table, retry waits not slept."""
        calendar = CalendarConfig(
            name="work",
            connector="outlook",
            options=self.options(**extra),
            source=root / "syncd.toml",
            index=0,
            tokens_dir=root / "tokens",
        )
        connector = OutlookConnector.from_config(calendar)
        connector.session.sleep = lambda _seconds: None
        return connector

    def wire(self) -> list[Any]:
        """Requests that went over the wire (a $batch once, not its inner requests)."""
        return [r for r in self.emu.requests if not r.batch]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("graph")
    secret = root / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    with IdentityProvider() as idp, GraphEmulator(idp=idp) as emu:
        idp.register_app(CLIENT, secret=SECRET)
        emu.add_mailbox(USER)
        yield Servers(idp, emu, root)


def graph_time(value: datetime | date) -> dict[str, str]:
    if isinstance(value, datetime):
        return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}
    return {"dateTime": value.strftime("%Y-%m-%dT00:00:00"), "timeZone": "UTC"}


def graph_body(data: bytes) -> dict[str, Any]:
    """The Graph JSON another client would write for a simple one-event object."""
    event = next(iter(Calendar.from_ical(data).walk("VEVENT")))
    start, end = event["DTSTART"].dt, event["DTEND"].dt
    return {
        "subject": str(event.get("SUMMARY", "")),
        "start": graph_time(start),
        "end": graph_time(end),
        "isAllDay": not isinstance(start, datetime),
        "body": {"contentType": "text", "content": str(event.get("DESCRIPTION", ""))},
    }


class GraphOutside(Outside):
    """Another client of one calendar, writing Graph JSON through the emulator's test API."""

    def __init__(self, emu: GraphEmulator, user: str, calendar_id: str) -> None:
        self.emu = emu
        self.user = user
        self.calendar_id = calendar_id
        self.ids: dict[str, str] = {}

    def put(self, href: str, data: bytes) -> None:
        body = graph_body(data)
        uid = str(next(iter(Calendar.from_ical(data).walk("VEVENT")))["UID"])
        if href in self.ids:
            self.emu.patch_event(self.user, self.ids[href], body)
            return
        body["transactionId"] = f"syncd:{href}"
        body["singleValueExtendedProperties"] = [
            {"id": DATA_PROPERTY, "value": json.dumps({"UID": uid})},
            {"id": HREF_PROPERTY, "value": href},
        ]
        self.ids[href] = self.emu.put_event(self.user, self.calendar_id, body)["id"]

    def remove(self, href: str) -> None:
        self.emu.delete_event(self.user, self.ids.pop(href))

    def expire_cursor(self, cursor: str) -> str | None:
        self.emu.expire_delta_tokens()
        return cursor


@pytest.fixture
def user(servers: Servers) -> str:
    """A fresh mailbox per test (transactionIds are unique per mailbox)."""
    address = f"user-{uuid.uuid4().hex[:8]}@contoso.example"
    servers.emu.add_mailbox(address)
    return address


@pytest.fixture
def calendar_id(servers: Servers, user: str) -> str:
    return servers.emu.add_calendar(user, "Work")


@pytest.fixture
def connector(
    servers: Servers, user: str, calendar_id: str, tmp_path: Path
) -> Iterator[OutlookConnector]:
    found = servers.connector(tmp_path, calendar=calendar_id, user=user)
    yield found
    found.close()


@pytest.fixture
def outside(servers: Servers, user: str, calendar_id: str) -> GraphOutside:
    return GraphOutside(servers.emu, user, calendar_id)


def on_contract_day(connector: OutlookConnector) -> OutlookConnector:
    """``connector`` with its clock fixed on the day of :func:`tests.contract.sample`'s
    events, so they are inside its window whatever today is."""
    connector.clock = lambda: START
    return connector


class TestOutlookContract(ConnectorContract):
    """The shared contract suite on the Graph emulator, the connector's clock on the contract's
    day: its window (30 days back, 180 ahead) holds the contract's events whatever today is."""

    @pytest.fixture
    def connector(
        self, servers: Servers, user: str, calendar_id: str, tmp_path: Path
    ) -> Iterator[OutlookConnector]:
        found = on_contract_day(servers.connector(tmp_path, calendar=calendar_id, user=user))
        yield found
        found.close()


# --- Outlook behaviour beyond the contract ------------------------------------------------


NOW = datetime.now(UTC).replace(microsecond=0)


def meeting(subject: str, start: datetime, **extra: Any) -> dict[str, Any]:
    """Graph JSON of a one-hour meeting with Jane (another client's event)."""
    return {
        "subject": subject,
        "start": graph_time(start),
        "end": graph_time(start + timedelta(hours=1)),
        "attendees": [
            {
                "emailAddress": {"address": "jane@example.com", "name": "Jane Doe"},
                "type": "required",
                "status": {"response": "accepted"},
            }
        ],
        **extra,
    }


def hrefs(objects: list[RemoteObject] | Any) -> set[str]:
    return {o.href for o in objects}


def test_a_quiet_round_is_one_request(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """No change since the cursor: exactly one request (the delta link), nothing listed."""
    for n in range(3):
        servers.emu.put_event(user, calendar_id, meeting(f"m{n}", NOW + timedelta(days=n + 1)))
    first = connector.list_changes(None, {})
    servers.emu.clear_requests()
    quiet = connector.list_changes(first.cursor, snapshot(first, {}))
    assert (list(quiet.upserts), list(quiet.removed)) == ([], [])
    [request] = servers.wire()
    assert request.path.endswith("/calendarView/delta")
    assert "$deltatoken" in request.query
    prefer = request.headers["prefer"]
    assert 'IdType="ImmutableId"' in prefer
    assert 'outlook.timezone="UTC"' in prefer


def test_a_few_changes_cost_two_requests(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Changed items are completed with syncd's property in one $batch."""
    made = [
        servers.emu.put_event(user, calendar_id, meeting(f"m{n}", NOW + timedelta(days=n + 1)))
        for n in range(3)
    ]
    first = connector.list_changes(None, {})
    servers.emu.patch_event(user, made[0]["id"], {"subject": "changed"})
    servers.emu.clear_requests()
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert hrefs(second.upserts) == {made[0]["id"]}
    assert b"SUMMARY:changed" in second.upserts[0].data
    assert [r.path.rsplit("/", 1)[-1] for r in servers.wire()] == ["delta", "$batch"]


def test_pages_replays_and_empty_pages(
    servers: Servers, user: str, calendar_id: str, tmp_path: Path
) -> None:
    """A round over many pages, one served twice and one empty, lists each item once."""
    connector = servers.connector(tmp_path, calendar=calendar_id, user=user)
    connector.graph.page_size = 3
    for n in range(10):
        servers.emu.put_event(user, calendar_id, meeting(f"m{n}", NOW + timedelta(days=n + 1)))
    servers.emu.replay_next_page()
    servers.emu.empty_next_page()
    first = connector.list_changes(None, {})
    assert len(first.upserts) == len(hrefs(first.upserts)) == 10
    assert first.full


def test_an_out_of_window_change_is_ignored(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """An event created far outside the window comes as @removed: nothing is listed or
    removed, and the unknown id is not even fetched."""
    servers.emu.put_event(user, calendar_id, meeting("inside", NOW + timedelta(days=1)))
    first = connector.list_changes(None, {})
    servers.emu.put_event(user, calendar_id, meeting("far", NOW + timedelta(days=700)))
    servers.emu.clear_requests()
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert (list(second.upserts), list(second.removed)) == ([], [])
    assert len(servers.wire()) == 1


def test_an_event_moved_out_of_the_window_is_listed_not_removed(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Graph reports an event moved out of the window as removed; it still exists, so it is
    listed with its new time (the core sees a move, not a cancellation)."""
    made = servers.emu.put_event(user, calendar_id, meeting("m", NOW + timedelta(days=1)))
    first = connector.list_changes(None, {})
    far = NOW + timedelta(days=400)
    servers.emu.patch_event(
        user, made["id"], {"start": graph_time(far), "end": graph_time(far + timedelta(hours=1))}
    )
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert list(second.removed) == []
    [moved] = second.upserts
    assert moved.href == made["id"]
    assert far.strftime("DTSTART:%Y%m%dT%H%M%SZ").encode() in moved.data


def test_a_deleted_occurrence_and_series(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Occurrences are objects of their own with the series' UID; deleting one removes it,
    deleting the master removes the rest."""
    start = NOW + timedelta(days=1)
    master = servers.emu.put_event(
        user,
        calendar_id,
        meeting(
            "weekly",
            start,
            recurrence={
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [_weekday(start)]},
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": 4,
                    "startDate": start.strftime("%Y-%m-%d"),
                },
            },
        ),
    )
    first = connector.list_changes(None, {})
    assert len(first.upserts) == 4
    assert all(
        f"UID:{master['id']}".encode()[:60] in o.data.replace(b"\r\n ", b"") for o in first.upserts
    )
    known = snapshot(first, {})
    one = sorted(known)[0]
    servers.emu.delete_event(user, one)
    second = connector.list_changes(first.cursor, known)
    assert list(second.removed) == [one]
    known = snapshot(second, known)
    servers.emu.delete_event(user, master["id"])
    third = connector.list_changes(second.cursor, known)
    assert set(third.removed) == set(known)


def test_expired_delta_link_is_cursor_expired_and_a_new_round_lists_all(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """410 SyncStateNotFound raises CursorExpired; a new round lists everything."""
    servers.emu.put_event(user, calendar_id, meeting("m", NOW + timedelta(days=1)))
    first = connector.list_changes(None, {})
    servers.emu.expire_delta_tokens()
    with pytest.raises(CursorExpired):
        connector.list_changes(first.cursor, snapshot(first, {}))
    again = connector.list_changes(None, snapshot(first, {}))
    assert again.full
    assert hrefs(again.upserts) == hrefs(first.upserts)


def test_a_new_round_whose_state_expires_midway_starts_again_once(
    servers: Servers,
    connector: OutlookConnector,
    user: str,
    calendar_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Graph forgets a brand-new round's state between its pages (410): the round starts
    again once and lists everything, instead of failing the cycle; a second 410 fails it."""
    for n in range(3):
        servers.emu.put_event(user, calendar_id, meeting(f"m{n}", NOW + timedelta(days=n + 1)))
    monkeypatch.setattr(servers.emu, "page_size_cap", 1)
    original = connector.graph.page
    expirations = [1]

    def page(operation: str, url: str, **kwargs: Any) -> Any:
        """Serve the page, then (while expirations are left) make Graph forget the round."""
        answer = original(operation, url, **kwargs)
        if operation == "delta" and expirations[0] > 0:
            expirations[0] -= 1
            servers.emu.expire_delta_tokens()
        return answer

    monkeypatch.setattr(connector.graph, "page", page)
    first = connector.list_changes(None, {})
    assert first.full
    assert len(first.upserts) == 3
    expirations[0] = 2
    with pytest.raises(CursorExpired, match="no longer accepts the delta link"):
        connector.list_changes(None, {})


def test_ca_variables_in_the_environment_do_not_replace_ca_file_for_graph(
    servers: Servers,
    user: str,
    calendar_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE naming another CA change nothing: the Graph
    session trusts ca_file (as MSAL's does)."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))
    servers.emu.put_event(user, calendar_id, meeting("m", NOW + timedelta(days=1)))
    connector = servers.connector(tmp_path, calendar=calendar_id, user=user)
    try:
        assert len(connector.list_changes(None, {}).upserts) == 1
    finally:
        connector.close()


def test_a_cursor_for_another_calendar_is_expired(
    servers: Servers, connector: OutlookConnector, user: str, tmp_path: Path
) -> None:
    """A cursor made for another configured calendar is not used."""
    first = connector.list_changes(None, {})
    other = servers.connector(tmp_path, calendar=servers.emu.add_calendar(user, "Other"), user=user)
    with pytest.raises(CursorExpired, match="another mailbox, calendar"):
        other.list_changes(first.cursor, {})


def test_a_moved_horizon_starts_a_new_round(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Once the horizon's end passes the round's window, a new round (a full listing) starts
    and picks up events that came into the window."""
    horizon = (NOW - timedelta(days=30), NOW + timedelta(days=180))
    servers.emu.put_event(user, calendar_id, meeting("near", NOW + timedelta(days=1)))
    beyond = servers.emu.put_event(user, calendar_id, meeting("later", NOW + timedelta(days=200)))
    first = connector.list_changes(None, {}, horizon=horizon)
    assert beyond["id"] not in hrefs(first.upserts)
    step = (horizon[0] + timedelta(days=7), horizon[1] + timedelta(days=7))
    quiet = connector.list_changes(first.cursor, snapshot(first, {}), horizon=step)
    assert not quiet.full
    slid = (horizon[0] + timedelta(days=20), horizon[1] + timedelta(days=20))
    second = connector.list_changes(quiet.cursor, snapshot(first, {}), horizon=slid)
    assert second.full
    assert beyond["id"] in hrefs(second.upserts)


def test_a_link_to_another_host_is_refused(servers: Servers, connector: OutlookConnector) -> None:
    """A stored delta link that points elsewhere is never followed with the token."""
    first = connector.list_changes(None, {})
    state = json.loads(first.cursor or "")
    state["link"] = state["link"].replace("127.0.0.1", "localhost")
    servers.emu.clear_requests()
    with pytest.raises(ConnectorError, match="not the configured graph_url"):
        connector.list_changes(json.dumps(state), {})
    assert servers.wire() == []


def test_created_events_are_found_by_href_after_a_restart(
    servers: Servers, user: str, calendar_id: str, tmp_path: Path
) -> None:
    """A new connector (a restart) finds an event syncd created by its href, and a removal
    of it reported by id is matched to that href."""
    first_run = on_contract_day(servers.connector(tmp_path, calendar=calendar_id, user=user))
    first_run.create("syncd-note-1.ics", sample("syncd-note-1"))
    listed = first_run.list_changes(None, {})
    assert hrefs(listed.upserts) == {"syncd-note-1.ics"}
    known = snapshot(listed, {})
    restarted = servers.connector(tmp_path, calendar=calendar_id, user=user)
    assert restarted.get("syncd-note-1.ics").etag == known["syncd-note-1.ics"]
    again = on_contract_day(servers.connector(tmp_path, calendar=calendar_id, user=user))
    [made] = servers.emu.events(user, calendar_id)
    servers.emu.delete_event(user, made["id"])
    gone = again.list_changes(listed.cursor, known)
    assert list(gone.removed) == ["syncd-note-1.ics"]


def test_a_note_is_free_private_and_without_reminder(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """What create writes: showAs free, no reminder, no attendees, the transactionId."""
    note = sample("syncd-note-2").replace(
        b"END:VEVENT", b"TRANSP:TRANSPARENT\r\nCLASS:PRIVATE\r\nX-SYNCD-KEY:k\r\nEND:VEVENT"
    )
    connector.create("syncd-note-2.ics", note)
    [stored] = servers.emu.events(user, calendar_id)
    assert (stored["showAs"], stored["isReminderOn"], stored["attendees"]) == ("free", False, [])
    assert stored["sensitivity"] == "private"
    assert stored["transactionId"] == "syncd:syncd-note-2.ics"
    value = servers.emu.extended_property(user, stored["id"], DATA_PROPERTY)
    assert json.loads(value or "") == {"UID": "syncd-note-2", "X-SYNCD-KEY": "k"}


def test_a_meeting_keeps_its_content_when_annotated(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Annotating an event with attendees PATCHes only the extended property, with If-Match."""
    made = servers.emu.put_event(user, calendar_id, meeting("m", NOW + timedelta(days=1)))
    current = connector.get(made["id"])
    edited = current.data.replace(b"SUMMARY:m", b"SUMMARY:renamed").replace(
        b"END:VEVENT", b"X-SYNCD-VERDICT:move\r\nEND:VEVENT"
    )
    servers.emu.clear_requests()
    connector.update(made["id"], edited, current.etag)
    [patch] = [r for r in servers.wire() if r.method == "PATCH"]
    assert set(patch.body) == {"singleValueExtendedProperties"}
    assert patch.headers["if-match"] == f'W/"{current.etag}"'
    assert servers.emu.event(user, made["id"])["subject"] == "m"  # type: ignore[index]


def test_the_categories_option_shows_the_verdict_in_outlook(
    servers: Servers, user: str, calendar_id: str, tmp_path: Path
) -> None:
    """With categories = true the verdict is also a category next to the owner's; syncd's
    category is never read back as the owner's."""
    connector = servers.connector(tmp_path, calendar=calendar_id, user=user, categories=True)
    made = servers.emu.put_event(
        user, calendar_id, meeting("m", NOW + timedelta(days=1), categories=["Blue"])
    )
    current = connector.get(made["id"])
    annotated = current.data.replace(
        b"END:VEVENT", b"X-SYNCD-VERDICT:late_cancellation\r\nEND:VEVENT"
    )
    connector.update(made["id"], annotated, current.etag)
    stored = servers.emu.event(user, made["id"])
    assert stored is not None
    assert stored["categories"] == ["Blue", "syncd: late cancellation"]
    again = connector.get(made["id"]).data
    assert b"CATEGORIES:Blue\r\n" in again
    assert b"X-SYNCD-VERDICT:late_cancellation" in again


def test_check_names_the_calendar_and_never_creates_it(
    servers: Servers, user: str, calendar_id: str, tmp_path: Path
) -> None:
    """``syncd doctor``: the calendar found, or a missing one that the first cycle would make
    (only with create = true); doctor itself creates nothing."""
    assert "'Work' of" in servers.connector(tmp_path, calendar="Work", user=user).check()
    missing = servers.connector(tmp_path, calendar="syncd notes", user=user, create=True)
    assert "first cycle makes it" in missing.check()
    strict = servers.connector(tmp_path, calendar="syncd notes", user=user, create=False)
    with pytest.raises(ConnectorError, match="no calendar called 'syncd notes'"):
        strict.check()
    assert [e["id"] for e in servers.emu.events(user, calendar_id)] == []
    with pytest.raises(ConnectorError, match="no calendar called"):
        strict.list_changes(None, {})


def test_a_large_round_reads_syncds_data_from_one_listing(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """45 new items in a fresh round (whole entries): syncd's property comes from one
    calendarView listing of ids and change keys instead of three batches; an item changed
    between the two reads (its change key differs) is fetched whole in its newer version."""
    made = [
        servers.emu.put_event(user, calendar_id, meeting(f"m{n}", NOW + timedelta(hours=n + 1)))
        for n in range(45)
    ]
    annotated = made[0]["id"]
    servers.emu.patch_event(
        user,
        annotated,
        {"singleValueExtendedProperties": [{"id": DATA_PROPERTY, "value": '{"X-SYNCD-X":"1"}'}]},
    )
    real_follow = connector.rounds.lister.follow

    def follow_then_edit(url: str) -> Any:
        round_ = real_follow(url)
        servers.emu.patch_event(user, made[1]["id"], {"subject": "edited meanwhile"})
        return round_

    connector.rounds.lister.follow = follow_then_edit  # type: ignore[method-assign]
    servers.emu.clear_requests()
    first = connector.list_changes(None, {})
    assert len(first.upserts) == 45
    assert not first.failures
    data = {o.href: o.data for o in first.upserts}
    assert b"X-SYNCD-X:1" in data[annotated]
    assert b"SUMMARY:edited meanwhile" in data[made[1]["id"]]
    wire = [r for r in servers.wire() if "calendars" in r.path or r.path.endswith("$batch")]
    assert [r.path.rsplit("/", 1)[-1] for r in wire][-3:] == ["delta", "calendarView", "$batch"]
    [view] = [r for r in servers.emu.requests if r.path.endswith("calendarView")]
    assert view.query["$select"] == "id,changeKey"  # not the whole items a second time


def test_a_malformed_item_is_a_lasting_failure_naming_its_id(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Another client wrote garbage into syncd's property: that item is an item failure
    (its content, not the fetch: the cursor may move on); the others are listed."""
    good = servers.emu.put_event(user, calendar_id, meeting("good", NOW + timedelta(days=1)))
    bad = servers.emu.put_event(
        user,
        calendar_id,
        meeting(
            "bad",
            NOW + timedelta(days=2),
            singleValueExtendedProperties=[{"id": DATA_PROPERTY, "value": "{oops"}],
        ),
    )
    first = connector.list_changes(None, {})
    assert hrefs(first.upserts) == {good["id"]}
    [failure] = first.failures
    assert (failure.href, failure.lasting) == (bad["id"], True)
    assert bad["id"] in failure.reason
    assert "not JSON" in failure.reason


def _weekday(moment: datetime) -> str:
    return moment.strftime("%A").lower()
