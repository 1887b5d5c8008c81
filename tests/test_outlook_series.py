"""Outlook series: a series moved as a whole, and occurrences deleted without a delta signal.

Graph lists each occurrence on its own and never its master. The connector renders the
master's start on every occurrence (``X-SYNCD-SERIES-START``), so the core pairs the
occurrences of a moved series as moves; and it reconciles the occurrences of every series a
round touches as a set, since Graph may not report an occurrence deleted on its own (the
emulator's ``silent_occurrence_deletes``). First the emulator's side of it over HTTP, then
the connector, then the engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from connectors.outlook import OutlookConnector
from connectors.outlook.etags import key_of, series_in, unread
from connectors.outlook.items import DATA_PROPERTY
from syncd.connector import Delta
from syncd.errors import TransientError
from syncd.model import format_when
from syncd.normalize import SERIES_START
from tests.contract import snapshot
from tests.graph_emulator import GraphEmulator
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
from tests.test_outlook_policy_e2e import (
    HOUR,
    LATER,
    USER,
    GraphHarness,
    appointment,
    h,
    idp,
    weekly,
)
from tests.tls import ca_file

__all__ = ["calendar_id", "connector", "h", "idp", "servers", "user"]  # fixtures used here

ALICE = "alice@contoso.example"
WINDOW = {"startDateTime": "2026-12-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}


# --- the emulator --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(ca_file(tmp_path_factory.mktemp("ca")))


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator() as emulator:
        emulator.add_mailbox(ALICE)
        yield emulator


@pytest.fixture
def http(ca: str) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    s.headers["Authorization"] = f"Bearer {ALICE}"
    return s


def _round(http: requests.Session, url: str) -> tuple[list[dict[str, Any]], str]:
    """Follow a delta round to its deltaLink: (entries, deltaLink)."""
    entries: list[dict[str, Any]] = []
    while True:
        page = http.get(url, headers={"Prefer": "odata.maxpagesize=100"}).json()
        entries += page["value"]
        if "@odata.deltaLink" in page:
            return entries, page["@odata.deltaLink"]
        url = page["@odata.nextLink"]


def _instances(http: requests.Session, emu: GraphEmulator, master: str) -> list[dict[str, Any]]:
    reply = http.get(f"{emu.base}/me/events/{master}/instances", params=WINDOW)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["value"])


def _daily(http: requests.Session, emu: GraphEmulator, **extra: Any) -> dict[str, Any]:
    body = {
        "subject": "Daily",
        "start": {"dateTime": "2026-12-07T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-12-07T10:00:00", "timeZone": "UTC"},
        "recurrence": {
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2026-12-07", "numberOfOccurrences": 3},
        },
        **extra,
    }
    made = http.post(f"{emu.base}/me/events", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def test_emulator_a_master_moved_an_hour_moves_every_occurrence(
    emu: GraphEmulator, http: requests.Session
) -> None:
    """Occurrences follow the master: their originalStart is the new time, their ids are
    new (the old ones are 404 and come as @removed in delta), exceptions are dropped."""
    master = _daily(http, emu)
    before = _instances(http, emu, master["id"])
    http.patch(f"{emu.base}/me/events/{before[1]['id']}", json={"subject": "Special"})
    _, link = _round(http, f"{emu.base}/me/calendarView/delta?{_query()}")
    moved = http.patch(
        f"{emu.base}/me/events/{master['id']}",
        json={
            "start": {"dateTime": "2026-12-07T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-07T11:00:00", "timeZone": "UTC"},
        },
    )
    assert moved.status_code == 200, moved.text
    after = _instances(http, emu, master["id"])
    assert [i["originalStart"] for i in after] == [
        f"2026-12-{day:02d}T10:00:00Z" for day in (7, 8, 9)
    ]
    assert [(i["type"], i["subject"]) for i in after] == [("occurrence", "Daily")] * 3
    assert not {i["id"] for i in after} & {i["id"] for i in before}
    assert http.get(f"{emu.base}/me/events/{before[0]['id']}").status_code == 404
    changes, _ = _round(http, link)
    assert sorted(c["id"] for c in changes if "@removed" in c) == sorted(i["id"] for i in before)
    assert sorted(c["id"] for c in changes if "@removed" not in c) == sorted(i["id"] for i in after)


def test_emulator_a_master_moved_a_day_moves_its_range(
    emu: GraphEmulator, http: requests.Session
) -> None:
    """An all-day daily series whose master moves a day without a new recurrence: the
    range's startDate follows the start, so every occurrence moves a day."""
    master = _daily(
        http,
        emu,
        isAllDay=True,
        start={"dateTime": "2026-12-07T00:00:00", "timeZone": "UTC"},
        end={"dateTime": "2026-12-08T00:00:00", "timeZone": "UTC"},
    )
    moved = http.patch(
        f"{emu.base}/me/events/{master['id']}",
        json={
            "start": {"dateTime": "2026-12-08T00:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-09T00:00:00", "timeZone": "UTC"},
        },
    ).json()
    assert moved["recurrence"]["range"]["startDate"] == "2026-12-08"
    found = _instances(http, emu, master["id"])
    assert [i["start"]["dateTime"][:10] for i in found] == [
        "2026-12-08",
        "2026-12-09",
        "2026-12-10",
    ]


@pytest.mark.parametrize("how", ["delete", "cancel"])
def test_emulator_a_silent_occurrence_delete_never_comes_in_delta(
    emu: GraphEmulator, http: requests.Session, how: str
) -> None:
    """With silent_occurrence_deletes on, an occurrence deleted (or cancelled by its
    organizer) on its own is never @removed, not even when its master changes in the same
    round; it is gone from instances and GET."""
    master = _daily(http, emu)
    occurrences = _instances(http, emu, master["id"])
    _, link = _round(http, f"{emu.base}/me/calendarView/delta?{_query()}")
    emu.silent_occurrence_deletes()
    target = f"{emu.base}/me/events/{occurrences[1]['id']}"
    answer = http.delete(target) if how == "delete" else http.post(f"{target}/cancel", json={})
    assert answer.status_code in (202, 204), answer.text
    quiet, link = _round(http, link)
    assert quiet == []
    http.patch(f"{emu.base}/me/events/{master['id']}", json={"subject": "Renamed"})
    emu.delete_event(ALICE, occurrences[2]["id"])
    changes, _ = _round(http, link)
    assert [(c["id"], "@removed" in c) for c in changes] == [(occurrences[0]["id"], False)]
    assert http.get(target).status_code == 404
    assert [i["id"] for i in _instances(http, emu, master["id"])] == [occurrences[0]["id"]]


def _query() -> str:
    return f"startDateTime={WINDOW['startDateTime']}&endDateTime={WINDOW['endDateTime']}"


# --- the connector -------------------------------------------------------------------------


@pytest.fixture
def silent(servers: Servers) -> Iterator[None]:
    """Graph's quirk: occurrences deleted on their own give no delta signal."""
    servers.emu.silent_occurrence_deletes()
    yield
    servers.emu.silent_occurrence_deletes(False)


def _series(servers: Servers, user: str, calendar_id: str, start: datetime) -> dict[str, Any]:
    made = servers.emu.put_event(
        user, calendar_id, meeting("weekly", start, recurrence=weekly(start))
    )
    return dict(made)


def _occurrences(servers: Servers, user: str, calendar_id: str, master: str) -> list[str]:
    found = [e for e in servers.emu.events(user, calendar_id) if e["seriesMasterId"] == master]
    return [e["id"] for e in sorted(found, key=lambda e: str(e["originalStart"]))]


def _data(delta: Delta) -> dict[str, str]:
    return {o.href: o.data.decode().replace("\r\n ", "") for o in delta.upserts}


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _deleted_and_renamed(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> tuple[dict[str, Any], Delta, dict[str, str], list[str]]:
    """A weekly series listed (master, listing, the core's etags, occurrence ids), then its
    second occurrence deleted and its third renamed."""
    a = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    of_a = _occurrences(servers, user, calendar_id, a["id"])
    servers.emu.delete_event(user, of_a[1])
    servers.emu.patch_event(user, of_a[2], {"subject": "renamed"})
    return a, first, snapshot(first, {}), of_a


def test_occurrences_carry_their_series_start_and_series(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """A fresh round renders the master's start on each occurrence (an all-day series as a
    date) and names the series in each etag; single events have neither."""
    start = (NOW + timedelta(days=1)).replace(minute=0, second=0)
    timed = _series(servers, user, calendar_id, start)
    day = (NOW + timedelta(days=2)).date()
    all_day = servers.emu.put_event(
        user,
        calendar_id,
        {
            "subject": "Retreat",
            "isAllDay": True,
            "start": graph_time(day),
            "end": graph_time(day + timedelta(days=1)),
            "recurrence": weekly(datetime.combine(day, datetime.min.time())),
        },
    )
    single = servers.emu.put_event(user, calendar_id, meeting("once", start))
    first = connector.list_changes(None, {})
    data = _data(first)
    etags = {o.href: o.etag for o in first.upserts}
    for href in _occurrences(servers, user, calendar_id, timed["id"]):
        assert f"{SERIES_START};VALUE=DATE-TIME:{_moment(start)}\r\n" in data[href]
        assert series_in(etags[href]) == timed["id"]
    for href in _occurrences(servers, user, calendar_id, all_day["id"]):
        assert f"{SERIES_START};VALUE=DATE:{day.strftime('%Y%m%d')}\r\n" in data[href]
    assert SERIES_START not in data[single["id"]]
    assert etags[single["id"]] == key_of(etags[single["id"]])
    assert len(first.upserts) == 9
    assert not first.failures


def test_masters_are_read_in_batches_of_twenty(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """21 series: their masters are read in two $batch requests that $select only what is
    rendered; a quiet round after that is still one request."""
    for n in range(21):
        _series(servers, user, calendar_id, NOW + timedelta(days=1, hours=n))
    servers.emu.clear_requests()
    first = connector.list_changes(None, {})
    masters = [
        r
        for r in servers.wire()
        if r.path.endswith("$batch") and "$select=type" in json.dumps(r.body)
    ]
    assert [len(r.body["requests"]) for r in masters] == [20, 1]
    assert all(
        inner["url"].endswith("?$select=type,start,isAllDay")
        for r in masters
        for inner in r.body["requests"]
    )
    servers.emu.clear_requests()
    quiet = connector.list_changes(first.cursor, snapshot(first, {}))
    assert (list(quiet.upserts), list(quiet.removed), len(servers.wire())) == ([], [], 1)


def test_a_master_that_cannot_be_read_gives_no_hint(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """A 404 on a master's read: its occurrences are listed without the series start, and
    nothing fails."""
    master = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    servers.emu.inject("404", path_contains=f"/events/{master['id']}?$select=type")
    first = connector.list_changes(None, {})
    assert len(first.upserts) == 4
    assert not first.failures
    assert all(SERIES_START not in text for text in _data(first).values())


def test_get_gives_an_occurrence_as_the_listing_does_without_its_series_start(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """get() of an occurrence: the listing's etag and data but for the series start, in one
    request (only writes read objects this way, and they never store the start)."""
    master = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    href = _occurrences(servers, user, calendar_id, master["id"])[1]
    [listed] = [o for o in first.upserts if o.href == href]
    servers.emu.clear_requests()
    got = connector.get(href)
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in servers.wire()] == [("GET", href)]
    assert got.etag == listed.etag
    without_start = [
        line for line in listed.data.split(b"\r\n") if not line.startswith(SERIES_START.encode())
    ]
    assert got.data.split(b"\r\n") == without_start
    assert len(without_start) == len(listed.data.split(b"\r\n")) - 1


def test_an_annotation_never_stores_the_series_start(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Annotating an occurrence writes syncd's own properties only (the series start is
    Graph's data); the write takes and returns etags with the series."""
    master = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    href = _occurrences(servers, user, calendar_id, master["id"])[0]
    servers.emu.clear_requests()
    current = connector.get(href)
    annotated = current.data.replace(b"END:VEVENT", b"X-SYNCD-VERDICT:move\r\nEND:VEVENT")
    etag = connector.update(href, annotated, current.etag)
    assert [r.method for r in servers.wire()] == ["GET", "GET", "PATCH"]
    assert series_in(etag) == master["id"]
    value = servers.emu.extended_property(user, href, DATA_PROPERTY)
    assert json.loads(value or "") == {"X-SYNCD-VERDICT": "move"}
    again = connector.list_changes(first.cursor, snapshot(first, {}))
    [text] = [t for h, t in _data(again).items() if h == href]
    assert text.count(SERIES_START) == 1
    assert "X-SYNCD-VERDICT:move" in text


@pytest.mark.parametrize("touch", ["another occurrence", "the master"])
@pytest.mark.usefixtures("silent")
def test_a_silently_deleted_occurrence_is_removed_when_its_series_changes(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str, touch: str
) -> None:
    """An occurrence deleted without a delta signal is removed once its series changes
    (another occurrence or the master); a series the round does not touch is never
    reconciled, so its silently deleted occurrence stays."""
    a = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    b = _series(servers, user, calendar_id, NOW + timedelta(days=1, hours=3))
    first = connector.list_changes(None, {})
    known = snapshot(first, {})
    of_a = _occurrences(servers, user, calendar_id, a["id"])
    of_b = _occurrences(servers, user, calendar_id, b["id"])
    servers.emu.delete_event(user, of_a[1])
    servers.emu.delete_event(user, of_b[1])
    quiet = connector.list_changes(first.cursor, known)
    assert (list(quiet.upserts), list(quiet.removed)) == ([], [])
    changed = of_a[2] if touch == "another occurrence" else a["id"]
    servers.emu.patch_event(user, changed, {"subject": "renamed"})
    servers.emu.clear_requests()
    second = connector.list_changes(quiet.cursor, known)
    assert list(second.removed) == [of_a[1]]
    assert not second.failures
    assert of_b[1] in snapshot(second, known)
    batches = [r.body for r in servers.wire() if r.path.endswith("$batch")]
    instances = [i["url"] for b in batches for i in b["requests"] if "/instances" in i["url"]]
    assert [url.split("/events/")[1].split("/")[0] for url in instances] == [a["id"]]


@pytest.mark.parametrize("status", ["404", "400"])
@pytest.mark.usefixtures("silent")
def test_a_refused_listing_of_the_series_reads_each_occurrence_held(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str, status: str
) -> None:
    """The instances listing is refused (404 or another error): every occurrence the core
    holds of the series is read instead, in one batch; the deleted one is removed, the others
    are listed again, nothing fails. A listing throttled past the retries fails the cycle as
    transient."""
    a, first, known, of_a = _deleted_and_renamed(servers, connector, user, calendar_id)
    servers.emu.inject("503", times=5, path_contains=f"/events/{a['id']}/instances")
    with pytest.raises(TransientError):
        connector.list_changes(first.cursor, known)
    servers.emu.inject(status, path_contains=f"/events/{a['id']}/instances")
    servers.emu.clear_requests()
    refused = connector.list_changes(first.cursor, known)
    assert list(refused.removed) == [of_a[1]]
    assert sorted(o.href for o in refused.upserts) == sorted([of_a[0], of_a[2], of_a[3]])
    assert not refused.failures
    batches = [r.body["requests"] for r in servers.wire() if r.path.endswith("$batch")]
    assert len(batches) == 2
    assert sorted(unquote(i["url"].split("?")[0].rsplit("/", 1)[-1]) for i in batches[1]) == sorted(
        [of_a[0], of_a[1], of_a[3]]
    )


def _as_the_engine_keeps_it(delta: Delta, known: dict[str, str]) -> dict[str, str]:
    """The core's etags after a cycle whose cursor was held back (failures keep theirs)."""
    kept = snapshot(delta, known)
    kept.update({f.href: f.etag for f in delta.failures})
    return kept


def test_a_series_touched_by_a_removed_id_alone_is_reconciled(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """The only signal of a series is an @removed occurrence the core holds: the series is
    reconciled all the same, and its silently deleted occurrence is removed with it, in two
    requests (the delta page, one batch)."""
    a = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    of_a = _occurrences(servers, user, calendar_id, a["id"])
    servers.emu.silent_occurrence_deletes()
    servers.emu.delete_event(user, of_a[1])
    servers.emu.silent_occurrence_deletes(False)
    servers.emu.delete_event(user, of_a[2])
    servers.emu.clear_requests()
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert sorted(second.removed) == sorted([of_a[1], of_a[2]])
    assert (list(second.upserts), list(second.failures)) == ([], [])
    assert [r.path.rsplit("/", 1)[-1] for r in servers.wire()] == ["delta", "$batch", "$batch"]


def test_a_removed_id_waits_while_its_series_cannot_be_read_whole(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """A series touched only by an @removed id, its listing refused and the read of one of
    its occurrences refused too: the removal is an item failure at the etag the core holds,
    so the round offered again (the cursor held back) touches the series again; then the
    reported and the silently deleted occurrence are both removed and nothing fails."""
    a = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    known = snapshot(first, {})
    of_a = _occurrences(servers, user, calendar_id, a["id"])
    servers.emu.silent_occurrence_deletes()
    servers.emu.delete_event(user, of_a[1])
    servers.emu.silent_occurrence_deletes(False)
    servers.emu.delete_event(user, of_a[2])
    servers.emu.inject("400", path_contains=f"/events/{a['id']}/instances")
    servers.emu.inject("400", path_contains=f"/events/{of_a[3]}?$expand")
    refused = connector.list_changes(first.cursor, known)
    assert list(refused.removed) == [of_a[1]]
    failed = {f.href: f for f in refused.failures}
    assert sorted(failed) == sorted([of_a[2], of_a[3]])
    assert all(not f.lasting and f.etag == unread(known[f.href]) for f in failed.values())
    assert f"series {a['id']}" in failed[of_a[2]].reason
    again = connector.list_changes(first.cursor, _as_the_engine_keeps_it(refused, known))
    assert sorted(again.removed) == sorted([of_a[2]])
    assert [o.href for o in again.upserts] == [of_a[3]]
    assert not again.failures


@pytest.mark.usefixtures("silent")
def test_a_series_is_touched_by_a_changed_entry_the_core_already_holds(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """The read of the silently deleted occurrence fails once: the cursor is held back and
    the same round is offered again, by then with the changed occurrence held. The series is
    still touched by that entry, so the deleted occurrence is removed on the retry."""
    _a, first, known, of_a = _deleted_and_renamed(servers, connector, user, calendar_id)
    servers.emu.inject("400", path_contains=f"/events/{of_a[1]}?$expand")
    refused = connector.list_changes(first.cursor, known)
    assert [o.href for o in refused.upserts] == [of_a[2]]
    assert [(f.href, f.lasting) for f in refused.failures] == [(of_a[1], False)]
    again = connector.list_changes(first.cursor, _as_the_engine_keeps_it(refused, known))
    assert (list(again.upserts), list(again.removed)) == ([], [of_a[1]])
    assert not again.failures


@pytest.mark.usefixtures("silent")
def test_the_instances_listing_is_followed_page_by_page(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Instances served a page at a time (page_size_cap=1): every page is read, so only the
    deleted occurrence is missing from the listing."""
    _a, first, known, of_a = _deleted_and_renamed(servers, connector, user, calendar_id)
    servers.emu.page_size_cap = 1
    try:
        servers.emu.clear_requests()
        second = connector.list_changes(first.cursor, known)
    finally:
        servers.emu.page_size_cap = None
    assert (list(second.removed), list(second.failures)) == ([of_a[1]], [])
    pages = [r for r in servers.wire() if r.path.endswith("/instances")]
    assert len(pages) == 2  # the batch read the first of three pages


def test_a_round_that_changes_an_occurrence_costs_two_requests(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """One changed occurrence: the delta page, and one batch with its read, its master and
    the listing of its series."""
    a = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    href = _occurrences(servers, user, calendar_id, a["id"])[1]
    servers.emu.patch_event(user, href, {"subject": "renamed"})
    servers.emu.clear_requests()
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert [o.href for o in second.upserts] == [href]
    assert f"{SERIES_START};VALUE=DATE-TIME" in _data(second)[href]
    wire = servers.wire()
    assert [r.path.rsplit("/", 1)[-1] for r in wire] == ["delta", "$batch"]
    urls = sorted(unquote(i["url"].split("?")[0]) for i in wire[1].body["requests"])
    assert [u.rsplit("/events/", 1)[1] for u in urls] == sorted(
        [a["id"], f"{a['id']}/instances", href]
    )


def test_a_fresh_round_lists_without_hints_when_masters_stay_throttled(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """A fresh round whose master reads stay throttled past the retries: the occurrences are
    listed without the series start, nothing fails."""
    _series(servers, user, calendar_id, NOW + timedelta(days=1))
    servers.emu.inject("503", times=5, path_contains="?$select=type")
    first = connector.list_changes(None, {})
    assert len(first.upserts) == 4
    assert not first.failures
    assert all(SERIES_START not in text for text in _data(first).values())


@pytest.mark.usefixtures("silent")
def test_etags_without_a_series_still_work(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """Etags stored before the series was part of them (the bare change key) mean "no
    series known": rounds and writes work, and nothing is removed on a guess."""
    a, first, known, of_a = _deleted_and_renamed(servers, connector, user, calendar_id)
    old = {href: key_of(etag) for href, etag in known.items()}
    second = connector.list_changes(first.cursor, old)
    assert (list(second.removed), list(second.failures)) == ([], [])
    assert [o.href for o in second.upserts] == [of_a[2]]
    current = connector.get(of_a[3]).data
    annotated = current.replace(b"END:VEVENT", b"X-SYNCD-VERDICT:move\r\nEND:VEVENT")
    assert series_in(connector.update(of_a[3], annotated, old[of_a[3]])) == a["id"]


def test_a_failed_fetch_keeps_the_etag_the_core_holds(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str
) -> None:
    """A changed occurrence whose fetch is refused: the failure carries the etag the core
    holds (with its series) marked unread, so the same entry, offered again while the engine
    holds the cursor back, is fetched then and not taken for a version the core already has."""
    master = _series(servers, user, calendar_id, NOW + timedelta(days=1))
    first = connector.list_changes(None, {})
    known = snapshot(first, {})
    href = _occurrences(servers, user, calendar_id, master["id"])[1]
    servers.emu.patch_event(user, href, {"subject": "renamed"})
    servers.emu.inject("400", path_contains=f"/events/{href}?$expand")
    refused = connector.list_changes(first.cursor, known)
    [failure] = refused.failures
    assert (failure.href, failure.etag, failure.lasting) == (href, unread(known[href]), False)
    assert series_in(failure.etag) == master["id"]
    as_the_engine_keeps_it = {**known, href: failure.etag}
    again = connector.list_changes(first.cursor, as_the_engine_keeps_it)
    assert [o.href for o in again.upserts] == [href]
    assert not again.failures


# --- the engine ----------------------------------------------------------------------------


def _changes(h: GraphHarness) -> list[tuple[str, str]]:
    return [(c["change"], c["instance"]) for c in h.records_of("change")]


def test_a_series_moved_an_hour_is_a_move_of_each_occurrence(h: GraphHarness) -> None:
    """The owner moves a weekly series an hour later: the core sees each occurrence moved,
    no cancellation and no new booking."""
    master = h.add(appointment(LATER, recurrence=weekly(LATER)))
    h.cycle_all()
    later = LATER + HOUR
    h.patch(master["id"], {"start": graph_time(later), "end": graph_time(later + HOUR)})
    h.cycle_all()
    originals = [LATER + timedelta(days=7 * n) for n in range(4)]
    assert _changes(h) == [("moved", format_when(o)) for o in originals]
    starts = [c["start_after"] for c in h.records_of("change")]
    assert starts == [format_when(o + HOUR) for o in originals]
    # Each move's annotation lands on the shifted occurrence, whose key is the new start.
    writes = [(w["action"], w["status"]) for w in h.records_of("write")]
    assert writes.count(("annotate", "applied")) == len(originals)
    assert not [w for w in writes if w[1] == "failed"]


def test_an_all_day_series_moved_a_day_is_a_move_of_each_occurrence(h: GraphHarness) -> None:
    """An all-day weekly series moved to the next day (start, end and pattern, as Outlook
    sends it): each occurrence moved a day."""
    first = LATER.date()
    master = h.add(_all_day(first))
    h.cycle_all()
    h.patch(master["id"], _all_day(first + timedelta(days=1)))
    h.cycle_all()
    originals = [first + timedelta(days=7 * n) for n in range(4)]
    assert _changes(h) == [("moved", format_when(o)) for o in originals]
    starts = [c["start_after"] for c in h.records_of("change")]
    assert starts == [format_when(o + timedelta(days=1)) for o in originals]


def _all_day(first: date) -> dict[str, Any]:
    start = datetime.combine(first, datetime.min.time())
    return {
        "subject": "Workshop",
        "isAllDay": True,
        "start": graph_time(first),
        "end": graph_time(first + timedelta(days=1)),
        "recurrence": weekly(start),
        "organizer": {"emailAddress": {"address": USER, "name": "Me"}},
    }


def test_a_silently_deleted_occurrence_is_cancelled_when_its_series_changes(
    h: GraphHarness,
) -> None:
    """Graph gives no signal for a deleted occurrence; once another occurrence of the series
    changes, the core records the deleted one as cancelled."""
    h.add(appointment(LATER, recurrence=weekly(LATER)))
    h.cycle_all()
    occurrences = h.occurrences()
    h.emu.silent_occurrence_deletes()
    h.emu.delete_event(USER, occurrences[1]["id"])
    h.cycle_all()
    assert _changes(h) == []
    h.patch(occurrences[2]["id"], {"subject": "Coaching (room 2)"})
    h.cycle_all()
    second, third = (format_when(LATER + timedelta(days=7 * n)) for n in (1, 2))
    assert _changes(h) == [("cancelled", second), ("edited", third)]


@pytest.mark.parametrize("signal", ["removed", "changed"])
def test_a_refused_series_listing_loses_no_deletion_and_leaves_no_item_error(
    h: GraphHarness, signal: str
) -> None:
    """A series touched by a reported deletion (or an edit) of one occurrence next to a
    silent deletion of another, its instances listing refused once: the silent deletion is
    still recorded as a cancellation and no item error stays behind."""
    h.add(appointment(LATER, recurrence=weekly(LATER)))
    h.cycle_all()
    occurrences = h.occurrences()
    h.emu.silent_occurrence_deletes()
    h.emu.delete_event(USER, occurrences[1]["id"])
    h.emu.silent_occurrence_deletes(False)
    if signal == "removed":
        h.emu.delete_event(USER, occurrences[2]["id"])
    else:
        h.patch(occurrences[2]["id"], {"subject": "Coaching (room 2)"})
    master = occurrences[0]["seriesMasterId"]
    h.emu.inject("400", path_contains=f"/events/{master}/instances")
    h.cycle_all()
    h.cycle_all()
    second, third = (format_when(LATER + timedelta(days=7 * n)) for n in (1, 2))
    kinds = dict((i, c) for c, i in _changes(h))
    assert kinds == {second: "cancelled", third: "cancelled" if signal == "removed" else "edited"}
    assert not h.engine.store.item_errors("work")


def test_rounds_without_series_cost_what_they_did(
    servers: Servers, connector: OutlookConnector, user: str, calendar_id: str, tmp_path: Path
) -> None:
    """A changed single event next to a series: delta and one $batch, no series read."""
    _series(servers, user, calendar_id, NOW + timedelta(days=1))
    made = servers.emu.put_event(user, calendar_id, meeting("once", NOW + timedelta(days=2)))
    first = connector.list_changes(None, {})
    servers.emu.patch_event(user, made["id"], {"subject": "changed"})
    servers.emu.clear_requests()
    second = connector.list_changes(first.cursor, snapshot(first, {}))
    assert [o.href for o in second.upserts] == [made["id"]]
    assert [r.path.rsplit("/", 1)[-1] for r in servers.wire()] == ["delta", "$batch"]
