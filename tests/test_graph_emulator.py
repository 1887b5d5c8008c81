"""The Graph emulator and the fake identity platform, driven by requests and real MSAL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from tests.graph_emulator import GraphEmulator
from tests.identity_provider import IdentityProvider, make_certificate
from tests.tls import ca_file, test_ca

ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
WINDOW = {"startDateTime": "2026-12-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"}
PROP = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name syncd"
GRAPH_SCOPE = ["https://graph.microsoft.com/.default"]


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(ca_file(tmp_path_factory.mktemp("ca")))


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """MSAL's requests session trusts the environment, whose CA bundle would win over verify=."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator() as emulator:
        emulator.add_mailbox(ALICE)
        yield emulator


def session(ca: str, token: str = ALICE) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = ca
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def timed(day: int, hour: int, subject: str = "Meeting", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"2026-12-{day:02d}T{hour:02d}:30:00", "timeZone": "UTC"},
        **extra,
    }


def delta_round(
    s: requests.Session, url: str, page: int = 100
) -> tuple[list[dict[str, Any]], str, int]:
    """Follow a round to its deltaLink: (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        r = s.get(url, headers={"Prefer": f"odata.maxpagesize={page}"})
        assert r.status_code == 200, r.text
        pages += 1
        items += r.json()["value"]
        if "@odata.deltaLink" in r.json():
            return items, r.json()["@odata.deltaLink"], pages
        url = r.json()["@odata.nextLink"]


def first_url(emu: GraphEmulator, calendar: str | None = None) -> str:
    """The URL that starts a delta round over WINDOW."""
    scope = f"/calendars/{calendar}" if calendar else ""
    query = f"startDateTime={WINDOW['startDateTime']}&endDateTime={WINDOW['endDateTime']}"
    return f"{emu.base}/me{scope}/calendarView/delta?{query}"


def first_round(
    s: requests.Session, emu: GraphEmulator, page: int = 100
) -> tuple[list[dict[str, Any]], str, int]:
    return delta_round(s, first_url(emu), page)


# -- TLS and the identity platform --------------------------------------------------------


def test_tls_ca_is_shared_and_not_collected(ca: str) -> None:
    """One CA per process; its PEM is what ca_file writes."""
    assert test_ca() is test_ca()
    assert Path(ca).read_bytes() == test_ca().cert_pem.bytes()
    assert test_ca.__test__ is False  # type: ignore[attr-defined]


def test_device_flow_with_real_msal(
    idp: IdentityProvider, emu: GraphEmulator, ca: str, no_ca_env: None
) -> None:
    """Device code approved from another thread → tokens MSAL caches; Graph accepts them."""
    emu.idp = idp
    idp.register_app("public-app")
    app = msal.PublicClientApplication(
        "public-app", authority=idp.authority, instance_discovery=False, verify=ca
    )
    flow = app.initiate_device_flow(scopes=["Calendars.ReadWrite"])
    assert flow["user_code"] in flow["message"]
    assert idp.base in flow["verification_uri"]
    approver = threading.Thread(target=idp.approve, kwargs={"user": ALICE})
    approver.start()
    result = app.acquire_token_by_device_flow(flow)
    approver.join()
    assert "access_token" in result, result
    assert idp.validate(result["access_token"]) == ALICE
    assert result["id_token_claims"]["preferred_username"] == ALICE
    assert [a["username"] for a in app.get_accounts()] == [ALICE]
    assert session(ca, result["access_token"]).get(f"{emu.base}/me/calendars").status_code == 200
    assert ("GET", "/contoso/v2.0/.well-known/openid-configuration") in idp.requests


def test_device_code_is_pending_until_approved_and_single_use(
    idp: IdentityProvider, ca: str
) -> None:
    """authorization_pending, then tokens once; a redeemed code is refused."""
    idp.register_app("public-app")
    s = session(ca)
    token_url = f"{idp.authority}/oauth2/v2.0/token"
    code = s.post(
        f"{idp.authority}/oauth2/v2.0/devicecode",
        data={"client_id": "public-app", "scope": "Calendars.ReadWrite offline_access"},
    ).json()
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": "public-app",
        "device_code": code["device_code"],
    }
    assert s.post(token_url, data=form).json()["error"] == "authorization_pending"
    idp.approve(code["user_code"], user=BOB)
    assert "refresh_token" in s.post(token_url, data=form).json()
    assert s.post(token_url, data=form).json()["error"] == "invalid_grant"
    second = s.post(
        f"{idp.authority}/oauth2/v2.0/devicecode",
        data={"client_id": "public-app", "scope": "Calendars.ReadWrite"},
    ).json()
    idp.deny()
    declined = s.post(token_url, data={**form, "device_code": second["device_code"]}).json()
    assert declined["error"] == "authorization_declined"


def test_refresh_token_rotation(idp: IdentityProvider, ca: str, no_ca_env: None) -> None:
    """A refresh issues a new refresh token; the old one then fails with invalid_grant."""
    idp.register_app("public-app")
    app = msal.PublicClientApplication(
        "public-app",
        authority=idp.authority,
        instance_discovery=False,
        verify=ca,
        token_cache=msal.SerializableTokenCache(),
    )
    flow = app.initiate_device_flow(scopes=["Calendars.ReadWrite"])
    idp.approve(flow["user_code"], user=ALICE)
    assert "access_token" in app.acquire_token_by_device_flow(flow)
    stale = msal.SerializableTokenCache()
    stale.deserialize(app.token_cache.serialize())
    account = app.get_accounts()[0]
    fresh = app.acquire_token_silent(["Calendars.ReadWrite"], account=account, force_refresh=True)
    assert fresh is not None
    assert fresh["token_source"] == "identity_provider"  # noqa: S105 - not a secret
    other = msal.PublicClientApplication(
        "public-app",
        authority=idp.authority,
        instance_discovery=False,
        verify=ca,
        token_cache=stale,
    )
    failed = other.acquire_token_silent_with_error(
        ["Calendars.ReadWrite"], account=other.get_accounts()[0], force_refresh=True
    )
    assert failed is not None
    assert failed["error"] == "invalid_grant"
    grants = [(r["grant_type"], r["result"]) for r in idp.token_requests]
    assert grants[-2:] == [("refresh_token", "ok"), ("refresh_token", "invalid_grant")]


def test_app_only_with_secret(
    idp: IdentityProvider, emu: GraphEmulator, ca: str, no_ca_env: None
) -> None:
    """client_credentials with a secret; the token reaches /users/{id}, not /me."""
    emu.idp = idp
    idp.register_app("daemon-app", secret="s3cret-value-9")  # noqa: S106 - a test app's secret
    app = msal.ConfidentialClientApplication(
        "daemon-app",
        client_credential="s3cret-value-9",
        authority=idp.authority,
        instance_discovery=False,
        verify=ca,
    )
    result = app.acquire_token_for_client(GRAPH_SCOPE)
    assert idp.validate(result["access_token"]) == "app:daemon-app"
    s = session(ca, result["access_token"])
    assert s.get(f"{emu.base}/users/{ALICE}/calendars").status_code == 200
    assert s.get(f"{emu.base}/me/calendars").status_code == 400
    wrong = msal.ConfidentialClientApplication(
        "daemon-app",
        client_credential="wrong",
        authority=idp.authority,
        instance_discovery=False,
        verify=ca,
    ).acquire_token_for_client(GRAPH_SCOPE)
    assert wrong["error"] == "invalid_client"
    assert all("s3cret" not in str(r) and "wrong" not in str(r) for r in idp.token_requests)
    assert idp.requests[0] == ("GET", "/contoso/v2.0/.well-known/openid-configuration")


def test_app_only_with_certificate(idp: IdentityProvider, ca: str, no_ca_env: None) -> None:
    """A client assertion signed with the registered certificate's key; another key fails."""
    cert, key, thumbprint = make_certificate()
    idp.register_app("cert-app", certificate_pem=cert)
    credential = {"private_key": key.decode(), "thumbprint": thumbprint}
    app = msal.ConfidentialClientApplication(
        "cert-app",
        client_credential=credential,
        authority=idp.authority,
        instance_discovery=False,
        verify=ca,
    )
    assert idp.validate(app.acquire_token_for_client(GRAPH_SCOPE)["access_token"]) == "app:cert-app"
    _, other_key, _ = make_certificate()
    forged = msal.ConfidentialClientApplication(
        "cert-app",
        client_credential={"private_key": other_key.decode(), "thumbprint": thumbprint},
        authority=idp.authority,
        instance_discovery=False,
        verify=ca,
    ).acquire_token_for_client(GRAPH_SCOPE)
    assert forged["error"] == "invalid_client"


def test_expired_access_token_is_401(idp: IdentityProvider, emu: GraphEmulator, ca: str) -> None:
    """After expire_access_tokens() Graph answers 401 InvalidAuthenticationToken."""
    emu.idp = idp
    idp.register_app("daemon-app", secret="x-secret")  # noqa: S106 - a test app's secret
    token = (
        session(ca)
        .post(
            f"{idp.authority}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "daemon-app",
                "client_secret": "x-secret",
                "scope": GRAPH_SCOPE[0],
            },
        )
        .json()["access_token"]
    )
    s = session(ca, token)
    assert s.get(f"{emu.base}/users/{ALICE}/calendar").status_code == 200
    idp.expire_access_tokens()
    r = s.get(f"{emu.base}/users/{ALICE}/calendar")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert session(ca, "nonsense").get(f"{emu.base}/users/{ALICE}/calendar").status_code == 401


# -- calendars and events -----------------------------------------------------------------


def test_calendars(emu: GraphEmulator, ca: str) -> None:
    """The default calendar, a created one, a duplicate name (409), a stranger's mailbox (403)."""
    s = session(ca)
    default = s.get(f"{emu.base}/me/calendar").json()
    assert default["isDefaultCalendar"]
    assert default["owner"]["address"] == ALICE
    made = s.post(f"{emu.base}/me/calendars", json={"name": "Notes"})
    assert made.status_code == 201
    assert not made.json()["isDefaultCalendar"]
    assert s.post(f"{emu.base}/me/calendars", json={"name": "notes"}).status_code == 409
    names = [c["name"] for c in s.get(f"{emu.base}/me/calendars").json()["value"]]
    assert names == ["Calendar", "Notes"]
    assert s.get(f"{emu.base}/me/calendars/{made.json()['id']}").json()["name"] == "Notes"
    emu.add_mailbox(BOB)
    assert s.get(f"{emu.base}/users/{BOB}/calendars").status_code == 403
    assert (
        session(ca, "app-token").get(f"{emu.base}/users/nobody@x.example/calendars").status_code
        == 404
    )


def test_event_shape_and_timezone_preference(emu: GraphEmulator, ca: str) -> None:
    """Times in UTC by default, in the preferred zone when asked; the preference is echoed."""
    s = session(ca)
    body = {
        "subject": "Plan",
        "start": {"dateTime": "2026-12-01T10:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2026-12-01T11:00:00", "timeZone": "W. Europe Standard Time"},
        "attendees": [{"emailAddress": {"address": BOB}, "type": "required"}],
        "location": {"displayName": "Room 1"},
    }
    event = s.post(f"{emu.base}/me/events", json=body).json()
    assert event["start"] == {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"}
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["type"] == "singleInstance"
    assert event["isOrganizer"]
    assert event["responseStatus"]["response"] == "organizer"
    assert event["attendees"][0]["status"]["response"] == "none"
    assert event["location"]["displayName"] == "Room 1"
    r = s.get(
        f"{emu.base}/me/events/{event['id']}",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert r.json()["start"] == {
        "dateTime": "2026-12-01T01:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    assert r.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    lowered = event["id"].swapcase()
    assert s.get(f"{emu.base}/me/events/{lowered}").status_code == 404


def test_all_day_events_keep_their_dates_and_bodies_convert(emu: GraphEmulator, ca: str) -> None:
    """An all-day event shows its own dates in any zone; text bodies on request; IdType echoed."""
    s = session(ca)
    day = {
        "subject": "Holiday",
        "isAllDay": True,
        "start": {"dateTime": "2026-12-24T00:00:00", "timeZone": "Tokyo Standard Time"},
        "end": {"dateTime": "2026-12-25T00:00:00", "timeZone": "Tokyo Standard Time"},
        "body": {"contentType": "html", "content": "<p>Closed &amp; quiet</p>"},
    }
    made = s.post(f"{emu.base}/me/events", json=day).json()
    prefer = 'outlook.timezone="Pacific Standard Time", outlook.body-content-type="text", '
    r = s.get(
        f"{emu.base}/me/events/{made['id']}",
        headers={"Prefer": prefer + 'IdType="ImmutableId"'},
    )
    assert r.json()["start"]["dateTime"] == "2026-12-24T00:00:00.0000000"
    assert r.json()["body"] == {"contentType": "text", "content": "Closed & quiet"}
    assert 'IdType="ImmutableId"' in r.headers["Preference-Applied"]
    assert made["bodyPreview"] == "Closed & quiet"


def test_recurrence_patterns(emu: GraphEmulator) -> None:
    """Day 31 falls on the last day of short months; relative and yearly patterns."""
    calendar = emu.add_calendar(ALICE, "Patterns")

    def dates(pattern: dict[str, Any], count: int) -> list[str]:
        master = emu.put_event(
            ALICE,
            calendar,
            timed(
                1,
                9,
                recurrence={
                    "pattern": pattern,
                    "range": {
                        "type": "numbered",
                        "startDate": "2027-01-01",
                        "numberOfOccurrences": count,
                    },
                },
            ),
        )
        found = [e for e in emu.events(ALICE, calendar) if e["seriesMasterId"] == master["id"]]
        return [e["start"]["dateTime"][:10] for e in found]

    monthly = {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31}
    assert dates(monthly, 4) == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    last_friday = {
        "type": "relativeMonthly",
        "interval": 2,
        "daysOfWeek": ["friday"],
        "index": "last",
    }
    assert dates(last_friday, 2) == ["2027-01-29", "2027-03-26"]
    yearly = {"type": "absoluteYearly", "interval": 1, "month": 2, "dayOfMonth": 29}
    assert dates(yearly, 2) == ["2027-02-28", "2028-02-29"]


def test_writes_reject_read_only_and_unknown_properties(emu: GraphEmulator, ca: str) -> None:
    """isCancelled is read-only (ErrorInvalidPropertySet); a made-up property is RequestBodyRead."""
    s = session(ca)
    event = s.post(f"{emu.base}/me/events", json=timed(1, 9)).json()
    r = s.patch(f"{emu.base}/me/events/{event['id']}", json={"isCancelled": True})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "ErrorInvalidPropertySet"
    r = s.patch(f"{emu.base}/me/events/{event['id']}", json={"colour": "red"})
    assert r.json()["error"]["code"] == "RequestBodyRead"
    r = s.post(
        f"{emu.base}/me/events",
        json=timed(1, 9, end={"dateTime": "2026-12-01T08:00:00", "timeZone": "UTC"}),
    )
    assert r.json()["error"]["code"] == "ErrorCalendarEndDateIsEarlierThanStartDate"
    assert (
        s.post(
            f"{emu.base}/me/events", data="{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_stale_if_match_is_412_and_every_change_makes_a_new_change_key(
    emu: GraphEmulator, ca: str
) -> None:
    """PATCH/DELETE with an old etag → 412 ErrorIrresolvableConflict; the current one works."""
    s = session(ca)
    event = s.post(f"{emu.base}/me/events", json=timed(2, 9)).json()
    url = f"{emu.base}/me/events/{event['id']}"
    changed = s.patch(
        url, json={"subject": "Two"}, headers={"If-Match": event["@odata.etag"]}
    ).json()
    assert changed["changeKey"] != event["changeKey"]
    assert changed["subject"] == "Two"
    r = s.patch(url, json={"subject": "Three"}, headers={"If-Match": event["@odata.etag"]})
    assert r.status_code == 412
    assert r.json()["error"]["code"] == "ErrorIrresolvableConflict"
    assert s.delete(url, headers={"If-Match": event["@odata.etag"]}).status_code == 412
    assert emu.event(ALICE, event["id"])["subject"] == "Two"  # type: ignore[index]
    assert s.delete(url, headers={"If-Match": changed["@odata.etag"]}).status_code == 204
    assert emu.event(ALICE, event["id"]) is None


def test_transaction_id_does_not_duplicate(emu: GraphEmulator, ca: str) -> None:
    """A retried POST with the same transactionId answers 201 with the existing event."""
    s = session(ca)
    body = timed(3, 9, transactionId="syncd:note-1")
    first, second = (s.post(f"{emu.base}/me/events", json=body) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert len(emu.events(ALICE, s.get(f"{emu.base}/me/calendar").json()["id"])) == 1
    changed = s.patch(f"{emu.base}/me/events/{first.json()['id']}", json={"transactionId": "other"})
    assert changed.status_code == 400


def test_series_occurrences_exceptions_and_instances(emu: GraphEmulator, ca: str) -> None:
    """Occurrences carry seriesMasterId/originalStart; PATCH: an exception; DELETE: one gone."""
    s = session(ca)
    series = timed(
        7,
        9,
        "Standup",
        recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"]},
            "range": {"type": "numbered", "startDate": "2026-12-07", "numberOfOccurrences": 4},
        },
    )
    master = s.post(f"{emu.base}/me/events", json=series).json()
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 4
    found = s.get(f"{emu.base}/me/events/{master['id']}/instances", params=WINDOW).json()["value"]
    assert [o["start"]["dateTime"][:10] for o in found] == [
        "2026-12-07",
        "2026-12-09",
        "2026-12-14",
        "2026-12-16",
    ]
    assert {o["seriesMasterId"] for o in found} == {master["id"]}
    assert found[0]["originalStart"] == "2026-12-07T09:00:00Z"
    assert len({o["iCalUId"] for o in found} | {master["iCalUId"]}) == 5
    moved = s.patch(
        f"{emu.base}/me/events/{found[1]['id']}",
        json={
            "subject": "Moved",
            "start": {"dateTime": "2026-12-10T15:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-10T15:30:00", "timeZone": "UTC"},
        },
    ).json()
    assert moved["type"] == "exception"
    assert moved["id"] == found[1]["id"]
    crossing = s.patch(
        f"{emu.base}/me/events/{found[2]['id']}",
        json={
            "start": {"dateTime": "2026-12-16T15:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-16T15:30:00", "timeZone": "UTC"},
        },
    )
    assert crossing.json()["error"]["code"] == "ErrorOccurrenceCrossingBoundary"
    assert s.delete(f"{emu.base}/me/events/{found[3]['id']}").status_code == 204
    view = s.get(f"{emu.base}/me/calendarView", params=WINDOW).json()["value"]
    assert [(v["type"], v["subject"]) for v in view] == [
        ("occurrence", "Standup"),
        ("exception", "Moved"),
        ("occurrence", "Standup"),
    ]
    assert s.delete(f"{emu.base}/me/events/{master['id']}").status_code == 204
    assert s.get(f"{emu.base}/me/calendarView", params=WINDOW).json()["value"] == []


def test_cancellation_organizer_and_attendee(emu: GraphEmulator, ca: str) -> None:
    """The organizer's cancel removes the item; an attendee's copy: isCancelled, 'Canceled: '."""
    s = session(ca)
    mine = s.post(f"{emu.base}/me/events", json=timed(4, 9, "Mine")).json()
    assert (
        s.post(f"{emu.base}/me/events/{mine['id']}/cancel", json={"comment": "sorry"}).status_code
        == 202
    )
    assert emu.event(ALICE, mine["id"]) is None
    calendar = s.get(f"{emu.base}/me/calendar").json()["id"]
    invite = emu.put_event(
        ALICE, calendar, timed(4, 10, "Review", organizer={"emailAddress": {"address": BOB}})
    )
    assert not invite["isOrganizer"]
    assert invite["responseStatus"]["response"] == "notResponded"
    r = s.post(f"{emu.base}/me/events/{invite['id']}/cancel", json={})
    assert r.status_code == 400
    cancelled = emu.cancel_for_attendee(ALICE, invite["id"])
    assert cancelled["isCancelled"]
    assert cancelled["subject"] == "Canceled: Review"
    assert cancelled["changeKey"] != invite["changeKey"]


def test_calendar_view_paging_top_and_select(emu: GraphEmulator, ca: str) -> None:
    """$top sets the page size, nextLink continues with $skip; $select keeps id and etag."""
    s = session(ca)
    for day in range(1, 8):
        s.post(f"{emu.base}/me/events", json=timed(day, 9, f"E{day}"))
    r = s.get(f"{emu.base}/me/calendarView", params={**WINDOW, "$top": "3", "$select": "subject"})
    subjects = []
    while True:
        body = r.json()
        subjects += [v["subject"] for v in body["value"]]
        assert all(set(v) == {"@odata.etag", "id", "subject"} for v in body["value"])
        if "@odata.nextLink" not in body:
            break
        r = s.get(body["@odata.nextLink"])
    assert subjects == [f"E{d}" for d in range(1, 8)]
    emu.page_size_cap = 2
    r = s.get(
        f"{emu.base}/me/calendarView", params=WINDOW, headers={"Prefer": "odata.maxpagesize=50"}
    )
    assert len(r.json()["value"]) == 2
    assert s.get(f"{emu.base}/me/calendarView").json()["error"]["code"] == "ErrorInvalidParameter"


# -- delta ----------------------------------------------------------------------------------


def test_delta_round_pages_then_delta_link(emu: GraphEmulator, ca: str) -> None:
    """A first round pages with $skiptoken and ends with a $deltatoken link; nothing new → empty."""
    s = session(ca)
    for day in range(1, 26):
        s.post(f"{emu.base}/me/events", json=timed(day, 9, f"E{day}"))
    items, link, pages = first_round(s, emu, page=10)
    assert pages == 3
    assert len(items) == 25
    assert len({i["id"] for i in items}) == 25
    assert "$deltatoken=" in link
    assert "startDateTime" not in link
    pages_asked = [r for r in emu.requests if r.method == "GET"]
    assert ["$skiptoken" in r.query for r in pages_asked] == [False, True, True]
    again, _, _ = delta_round(s, link)
    assert again == []
    assert "singleValueExtendedProperties" not in items[0]


def test_incremental_after_create_patch_delete(emu: GraphEmulator, ca: str) -> None:
    """Created and patched items come whole; a deleted one as @removed."""
    s = session(ca)
    keep, change, drop = (
        s.post(f"{emu.base}/me/events", json=timed(d, 9, f"E{d}")).json() for d in (1, 2, 3)
    )
    _, link, _ = first_round(s, emu)
    created = s.post(f"{emu.base}/me/events", json=timed(5, 9, "New")).json()
    s.patch(f"{emu.base}/me/events/{change['id']}", json={"subject": "Changed"})
    s.delete(f"{emu.base}/me/events/{drop['id']}")
    items, link, _ = delta_round(s, link)
    full = {i["id"]: i["subject"] for i in items if "@removed" not in i}
    removed = [i for i in items if "@removed" in i]
    assert full == {created["id"]: "New", change["id"]: "Changed"}
    assert removed == [
        {
            "@odata.type": "#microsoft.graph.event",
            "id": drop["id"],
            "@removed": {"reason": "deleted"},
        }
    ]
    assert keep["id"] not in full
    assert delta_round(s, link)[0] == []


def test_outside_the_window_shows_as_removed(emu: GraphEmulator, ca: str) -> None:
    """A creation outside the window, and an event moved out of it, arrive as @removed."""
    s = session(ca)
    inside = s.post(f"{emu.base}/me/events", json=timed(10, 9)).json()
    _, link, _ = first_round(s, emu)
    outside = s.post(
        f"{emu.base}/me/events",
        json={
            **timed(10, 9),
            "start": {"dateTime": "2027-03-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-01T10:00:00", "timeZone": "UTC"},
        },
    ).json()
    s.patch(
        f"{emu.base}/me/events/{inside['id']}",
        json={
            "start": {"dateTime": "2027-02-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-02-01T10:00:00", "timeZone": "UTC"},
        },
    )
    items, _, _ = delta_round(s, link)
    assert sorted(i["id"] for i in items) == sorted([outside["id"], inside["id"]])
    assert all(i["@removed"] == {"reason": "deleted"} for i in items)


def test_occurrence_changes_in_delta(emu: GraphEmulator, ca: str) -> None:
    """A deleted occurrence is @removed by its own id; an edited one comes as an exception."""
    s = session(ca)
    master = s.post(
        f"{emu.base}/me/events",
        json=timed(
            1,
            8,
            "Daily",
            recurrence={
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "endDate", "startDate": "2026-12-01", "endDate": "2026-12-05"},
            },
        ),
    ).json()
    items, link, _ = first_round(s, emu)
    assert [i["type"] for i in items] == ["occurrence"] * 5
    s.delete(f"{emu.base}/me/events/{items[1]['id']}")
    s.patch(f"{emu.base}/me/events/{items[2]['id']}", json={"subject": "Special"})
    changes, link, _ = delta_round(s, link)
    assert [(c["id"], c.get("type"), "@removed" in c) for c in changes] == [
        (items[1]["id"], None, True),
        (items[2]["id"], "exception", False),
    ]
    s.delete(f"{emu.base}/me/events/{master['id']}")
    changes, _, _ = delta_round(s, link)
    assert sorted(c["id"] for c in changes) == sorted(
        i["id"] for i in items if i["id"] != items[1]["id"]
    )


def test_replayed_and_empty_pages(emu: GraphEmulator, ca: str) -> None:
    """replay_next_page serves a page twice; empty_next_page inserts an empty page."""
    s = session(ca)
    for day in range(1, 6):
        s.post(f"{emu.base}/me/events", json=timed(day, 9))
    emu.replay_next_page()
    items, _, pages = first_round(s, emu, page=2)
    assert len(items) == 7
    assert len({i["id"] for i in items}) == 5
    assert pages == 4
    assert items[:2] == items[2:4]
    emu.empty_next_page()
    start = first_url(emu)
    r = s.get(start, headers={"Prefer": "odata.maxpagesize=10"})
    assert r.json()["value"] == []
    assert "@odata.nextLink" in r.json()
    items, _, _ = delta_round(s, r.json()["@odata.nextLink"], page=10)
    assert len(items) == 5


def test_expired_tokens_are_410(emu: GraphEmulator, ca: str) -> None:
    """expire_delta_tokens(): deltaLink and nextLink both answer 410 SyncStateNotFound."""
    s = session(ca)
    for day in range(1, 4):
        s.post(f"{emu.base}/me/events", json=timed(day, 9))
    _, link, _ = first_round(s, emu)
    start = first_url(emu)
    next_link = s.get(start, headers={"Prefer": "odata.maxpagesize=1"}).json()["@odata.nextLink"]
    emu.expire_delta_tokens()
    for url in (link, next_link, link.replace("$deltatoken=", "$deltatoken=x")):
        r = s.get(url)
        assert r.status_code == 410
        assert r.json()["error"]["code"] == "SyncStateNotFound"
    assert len(first_round(s, emu)[0]) == 3


def test_delta_refuses_odata_options_and_other_calendars(emu: GraphEmulator, ca: str) -> None:
    """$select on delta is 400; a token only works for its own calendar."""
    s = session(ca)
    r = s.get(f"{emu.base}/me/calendarView/delta", params={**WINDOW, "$select": "subject"})
    assert r.status_code == 400
    _, link, _ = first_round(s, emu)
    other = s.post(f"{emu.base}/me/calendars", json={"name": "Other"}).json()["id"]
    token = link.split("$deltatoken=")[1]
    r = s.get(f"{emu.base}/me/calendars/{other}/calendarView/delta", params={"$deltatoken": token})
    assert r.status_code == 400


# -- extended properties, batch -------------------------------------------------------------


def test_extended_property_round_trip(emu: GraphEmulator, ca: str) -> None:
    """Written with the event; read only through $expand; filterable; never in delta."""
    s = session(ca)
    body = timed(6, 9, singleValueExtendedProperties=[{"id": PROP, "value": '{"k":1}'}])
    event = s.post(f"{emu.base}/me/events", json=body).json()
    s.post(f"{emu.base}/me/events", json=timed(6, 10))
    assert "singleValueExtendedProperties" not in event
    expand = f"singleValueExtendedProperties($filter=id eq '{PROP}')"
    got = s.get(f"{emu.base}/me/events/{event['id']}", params={"$expand": expand}).json()
    assert got["singleValueExtendedProperties"] == [{"id": PROP, "value": '{"k":1}'}]
    s.patch(
        f"{emu.base}/me/events/{event['id']}",
        json={"singleValueExtendedProperties": [{"id": PROP, "value": "v2"}]},
    )
    assert emu.extended_property(ALICE, event["id"], PROP.upper()) == "v2"
    view = s.get(f"{emu.base}/me/calendarView", params={**WINDOW, "$expand": expand}).json()[
        "value"
    ]
    assert [("singleValueExtendedProperties" in v) for v in view] == [True, False]
    wanted = f"singleValueExtendedProperties/Any(ep: ep/id eq '{PROP}' and ep/value eq 'v2')"
    listed = s.get(f"{emu.base}/me/events", params={"$filter": wanted}).json()["value"]
    assert [e["id"] for e in listed] == [event["id"]]
    items, _, _ = first_round(s, emu)
    assert all("singleValueExtendedProperties" not in i for i in items)


def test_batch(emu: GraphEmulator, ca: str) -> None:
    """Up to 20 requests, each served with the outer token; dependsOn; more than 20 is 400."""
    s = session(ca)
    event = s.post(f"{emu.base}/me/events", json=timed(8, 9)).json()
    emu.clear_requests()
    batch = {
        "requests": [
            {"id": "1", "method": "GET", "url": f"/me/events/{event['id']}?$select=subject"},
            {
                "id": "2",
                "method": "POST",
                "url": "/me/events",
                "headers": {"Content-Type": "application/json"},
                "body": timed(9, 9, "Batched"),
            },
            {"id": "3", "method": "GET", "url": "/me/events/AAAA"},
            {
                "id": "4",
                "method": "PATCH",
                "url": "/me/events/AAAA",
                "dependsOn": ["3"],
                "headers": {"Content-Type": "application/json"},
                "body": {"subject": "x"},
            },
        ]
    }
    r = s.post(f"{emu.base}/$batch", json=batch)
    responses = {x["id"]: x for x in r.json()["responses"]}
    assert [responses[i]["status"] for i in "1234"] == [200, 201, 404, 424]
    assert responses["1"]["body"]["subject"] == "Meeting"
    assert responses["2"]["body"]["subject"] == "Batched"
    assert [x.batch for x in emu.requests] == [False, True, True, True]  # 4 never ran
    many = {"requests": [{"id": str(i), "method": "GET", "url": "/me/calendar"} for i in range(21)]}
    assert s.post(f"{emu.base}/$batch", json=many).status_code == 400
    assert session(ca, "").post(f"{emu.base}/$batch", json=batch).status_code == 401


# -- throttling and faults ------------------------------------------------------------------


def test_more_than_four_in_flight_is_429(emu: GraphEmulator, ca: str) -> None:
    """Four slow requests in flight for one mailbox: a fifth gets 429 with Retry-After."""
    emu.inject("slow", times=4, delay=1.0)
    statuses: list[int] = []

    def slow_get() -> None:
        statuses.append(session(ca).get(f"{emu.base}/me/calendar").status_code)

    threads = [threading.Thread(target=slow_get) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while emu.peak_in_flight.get(ALICE, 0) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    r = session(ca).get(f"{emu.base}/me/calendar")
    for thread in threads:
        thread.join()
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "ApplicationThrottled"
    assert r.headers["Retry-After"] == "1"
    assert statuses == [200] * 4
    assert emu.peak_in_flight[ALICE] == 5


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("429", 429, "TooManyRequests"),
        ("503", 503, "ServiceNotAvailable"),
        ("500", 500, "generalException"),
        ("504", 504, "GatewayTimeout"),
        ("401", 401, "InvalidAuthenticationToken"),
    ],
)
def test_injected_fault_answers_and_changes_nothing(
    emu: GraphEmulator, ca: str, fault: str, status: int, code: str
) -> None:
    """The matching request gets the fault and creates nothing; the retry succeeds."""
    s = session(ca)
    emu.inject(fault, method="POST", path_contains="/me/events", retry_after=3)
    assert s.get(f"{emu.base}/me/calendar").status_code == 200
    r = s.post(f"{emu.base}/me/events", json=timed(11, 9))
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    if fault in ("429", "503"):
        assert r.headers["Retry-After"] == "3"
    assert emu.events(ALICE, s.get(f"{emu.base}/me/calendar").json()["id"]) == []
    assert s.post(f"{emu.base}/me/events", json=timed(11, 9)).status_code == 201


def test_reset_and_slow_faults(emu: GraphEmulator, ca: str) -> None:
    """reset: the connection closes unanswered, nothing changes; slow: served late, normally."""
    s = session(ca)
    emu.inject("reset", method="POST")
    with pytest.raises(requests.ConnectionError):
        s.post(f"{emu.base}/me/events", json=timed(12, 9))
    assert emu.requests[-1].status is None
    calendar = s.get(f"{emu.base}/me/calendar").json()["id"]
    assert emu.events(ALICE, calendar) == []
    emu.inject("slow", delay=0.2, times=2)
    assert s.post(f"{emu.base}/me/events", json=timed(12, 9)).status_code == 201
    assert s.get(f"{emu.base}/me/calendar").status_code == 200
    assert len(emu.events(ALICE, calendar)) == 1


def test_stop_cuts_connections_and_start_serves_again(emu: GraphEmulator, ca: str) -> None:
    """An outage: after stop() even a kept-alive connection fails; start() serves the same state."""
    s = session(ca)
    event = s.post(f"{emu.base}/me/events", json=timed(13, 9)).json()
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        s.get(f"{emu.base}/me/events/{event['id']}")
    emu.start()
    assert s.get(f"{emu.base}/me/events/{event['id']}").json()["id"] == event["id"]


# -- test API -------------------------------------------------------------------------------


def test_put_event_bulk_load_and_events(emu: GraphEmulator, ca: str) -> None:
    """bulk_load seeds quickly; put_event merges; events() lists like calendarView."""
    calendar = emu.add_calendar(ALICE, "Work")
    emu.bulk_load(ALICE, calendar, [timed(1 + i % 28, i % 20, f"S{i}") for i in range(300)])
    listed = emu.events(ALICE, calendar)
    assert len(listed) == 300
    merged = emu.put_event(
        ALICE, calendar, {"id": listed[0]["id"], "subject": "Renamed", "showAs": "free"}
    )
    assert (merged["subject"], merged["showAs"]) == ("Renamed", "free")
    s = session(ca)
    items, _, _ = delta_round(s, first_url(emu, calendar), 1000)
    assert len(items) == 300
    with pytest.raises(KeyError):
        emu.delete_event(ALICE, "AAAA")
