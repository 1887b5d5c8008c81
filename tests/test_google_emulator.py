"""The Google Calendar emulator, driven through the real google-api-python-client."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import google.auth.exceptions
import google_auth_httplib2
import httplib2
import pytest
import requests
import trustme
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from tests.google_emulator import SCOPE_CALENDAR, ApiError, GoogleCalendarEmulator

START = "2026-03-02T10:00:00"
ZONE = "Europe/Berlin"


@pytest.fixture
def emu() -> Iterator[GoogleCalendarEmulator]:
    with GoogleCalendarEmulator() as emulator:
        yield emulator
        assert emulator.internal_errors == []


def service_for(emu: GoogleCalendarEmulator, creds: Any) -> Any:
    return build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": emu.endpoint},
    )


def user_creds(emu: GoogleCalendarEmulator) -> Credentials:
    creds = Credentials.from_authorized_user_info(emu.authorized_user_info())
    return creds.with_token_uri(emu.token_uri)


@pytest.fixture
def svc(emu: GoogleCalendarEmulator) -> Any:
    return service_for(emu, user_creds(emu))


def timed(hour: int, day: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "summary": f"at {day} {hour}",
        "start": {"dateTime": f"2026-03-{day:02d}T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2026-03-{day:02d}T{hour + 1:02d}:00:00Z"},
        **extra,
    }


def weekly(count: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "summary": "weekly",
        "start": {"dateTime": START, "timeZone": ZONE},
        "end": {"dateTime": "2026-03-02T11:00:00", "timeZone": ZONE},
        "recurrence": [f"RRULE:FREQ=WEEKLY;COUNT={count}"],
        **extra,
    }


def full_sync(
    svc: Any, calendar_id: str = "primary", **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every page of a listing; asserts the token rules on the way; (items, nextSyncToken)."""
    request = svc.events().list(calendarId=calendar_id, **params)
    items: list[dict[str, Any]] = []
    token = None
    while request is not None:
        page = request.execute()
        assert not ("nextPageToken" in page and "nextSyncToken" in page)
        items += page.get("items", [])
        token = page.get("nextSyncToken")
        if "nextPageToken" in page:
            assert token is None
        request = svc.events().list_next(request, page)
    assert token is not None
    return items, token


def status_and_reason(excinfo: pytest.ExceptionInfo[HttpError]) -> tuple[int, str]:
    error = excinfo.value
    return error.status_code, error.error_details[0]["reason"]


# ----------------------------------------------------------------------------- sync and pages


def test_full_sync_pages_carry_the_sync_token_on_the_last_page_only(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    emu.bulk_load(emu.user, [timed(h) for h in range(1, 8)])
    request = svc.events().list(calendarId="primary", maxResults=3)
    pages = []
    while request is not None:
        page = request.execute()
        pages.append(page)
        request = svc.events().list_next(request, page)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert ["nextPageToken" in p for p in pages] == [True, True, False]
    assert ["nextSyncToken" in p for p in pages] == [False, False, True]


def test_page_size_cap_makes_short_pages(emu: GoogleCalendarEmulator, svc: Any) -> None:
    emu.bulk_load(emu.user, [timed(h) for h in range(1, 6)])
    emu.page_size_cap = 2
    items, _ = full_sync(svc, maxResults=2500)
    assert len(items) == 5
    assert len([r for r in emu.requests if r.path.endswith("/events")]) == 3


def test_incremental_sync_returns_inserts_patches_and_deletes(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    kept, patched, deleted = emu.bulk_load(emu.user, [timed(9), timed(10), timed(11)])
    _, token = full_sync(svc, showDeleted=True)
    inserted = svc.events().insert(calendarId="primary", body=timed(12)).execute()
    svc.events().patch(calendarId="primary", eventId=patched, body={"summary": "moved"}).execute()
    emu.delete_event(emu.user, deleted)
    items, token2 = full_sync(svc, syncToken=token, showDeleted=True)
    by_id = {item["id"]: item for item in items}
    assert set(by_id) == {inserted["id"], patched, deleted}
    assert kept not in by_id
    assert by_id[patched]["summary"] == "moved"
    assert by_id[deleted] == {
        "kind": "calendar#event",
        "etag": by_id[deleted]["etag"],
        "id": deleted,
        "status": "cancelled",
    }
    again, _ = full_sync(svc, syncToken=token2, showDeleted=True)
    assert again == []


def test_a_change_between_pages_is_in_the_next_incremental_listing(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    ids = emu.bulk_load(emu.user, [timed(h) for h in range(1, 5)])
    request = svc.events().list(calendarId="primary", maxResults=2)
    first = request.execute()
    emu.patch_event(emu.user, ids[3], {"summary": "changed while paging"})
    second = svc.events().list_next(request, first).execute()
    assert [i["id"] for i in first["items"] + second["items"]] == ids
    changes, _ = full_sync(svc, syncToken=second["nextSyncToken"])
    assert [(c["id"], c["summary"]) for c in changes] == [(ids[3], "changed while paging")]


def test_tampered_sync_token_is_410_full_sync_required(svc: Any) -> None:
    _, token = full_sync(svc)
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId="primary", syncToken="x" + token).execute()
    assert status_and_reason(excinfo) == (410, "fullSyncRequired")


def test_expired_sync_token_is_410(emu: GoogleCalendarEmulator, svc: Any) -> None:
    _, token = full_sync(svc)
    emu.expire_sync_tokens(emu.user)
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId="primary", syncToken=token).execute()
    assert status_and_reason(excinfo) == (410, "fullSyncRequired")


def test_sync_token_of_another_calendar_or_query_is_410(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    other = emu.add_calendar("other")
    _, token = full_sync(svc)
    for params in ({"calendarId": other}, {"calendarId": "primary", "singleEvents": True}):
        with pytest.raises(HttpError) as excinfo:
            svc.events().list(syncToken=token, **params).execute()
        assert status_and_reason(excinfo) == (410, "fullSyncRequired")


def test_a_calendar_made_again_does_not_take_old_sync_tokens(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    made = svc.calendars().insert(body={"summary": "Notes"}).execute()
    _, token = full_sync(svc, calendar_id=made["id"])
    svc.calendars().delete(calendarId=made["id"]).execute()
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId=made["id"], syncToken=token).execute()
    assert excinfo.value.status_code == 404
    emu.add_calendar("Notes", calendar_id=made["id"])
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId=made["id"], syncToken=token).execute()
    assert status_and_reason(excinfo) == (410, "fullSyncRequired")


@pytest.mark.parametrize(
    "param",
    [
        {"iCalUID": "x@google.com"},
        {"orderBy": "updated"},
        {"privateExtendedProperty": "k=v"},
        {"q": "x"},
        {"sharedExtendedProperty": "k=v"},
        {"timeMin": "2026-01-01T00:00:00Z"},
        {"timeMax": "2026-01-01T00:00:00Z"},
        {"updatedMin": "2026-01-01T00:00:00Z"},
        {"showDeleted": False},
    ],
)
def test_forbidden_combinations_with_a_sync_token_are_400(svc: Any, param: dict[str, Any]) -> None:
    _, token = full_sync(svc)
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId="primary", syncToken=token, **param).execute()
    assert excinfo.value.status_code == 400


def test_order_by_start_time_needs_single_events(svc: Any) -> None:
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId="primary", orderBy="startTime").execute()
    assert status_and_reason(excinfo) == (400, "badRequest")


def test_time_window_selects_by_overlap_and_start_time_orders(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    late, early, outside = emu.bulk_load(emu.user, [timed(15), timed(9), timed(9, day=5)])
    page = (
        svc.events()
        .list(
            calendarId="primary",
            timeMin="2026-03-02T09:30:00Z",
            timeMax="2026-03-02T15:30:00Z",
            singleEvents=True,
            orderBy="startTime",
        )
        .execute()
    )
    assert [i["id"] for i in page["items"]] == [early, late]
    assert outside not in [i["id"] for i in page["items"]]


# ----------------------------------------------------------------------------- recurrence


def test_instances_have_utc_stamped_ids_and_original_start_across_dst(svc: Any) -> None:
    master = svc.events().insert(calendarId="primary", body=weekly(count=6)).execute()
    items = svc.events().instances(calendarId="primary", eventId=master["id"]).execute()["items"]
    ids = [i["id"] for i in items]
    assert ids[0] == f"{master['id']}_20260302T090000Z"
    assert ids[-1] == f"{master['id']}_20260406T080000Z"  # 10:00 Berlin after the DST change
    assert items[-1]["originalStartTime"] == {
        "dateTime": "2026-04-06T10:00:00+02:00",
        "timeZone": ZONE,
    }
    assert all(i["recurringEventId"] == master["id"] and "recurrence" not in i for i in items)


def test_all_day_instances_are_stamped_with_the_date(svc: Any) -> None:
    body = {
        "summary": "daily",
        "start": {"date": "2026-03-02"},
        "end": {"date": "2026-03-03"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"],
    }
    master = svc.events().insert(calendarId="primary", body=body).execute()
    items = svc.events().instances(calendarId="primary", eventId=master["id"]).execute()["items"]
    assert [i["id"] for i in items] == [f"{master['id']}_20260302", f"{master['id']}_20260303"]
    assert items[1]["originalStartTime"] == {"date": "2026-03-03"}


def test_a_recurring_event_needs_a_start_time_zone(svc: Any) -> None:
    body = timed(10, recurrence=["RRULE:FREQ=DAILY;COUNT=2"])
    with pytest.raises(HttpError) as excinfo:
        svc.events().insert(calendarId="primary", body=body).execute()
    assert excinfo.value.status_code == 400


def test_deleting_an_instance_makes_a_cancelled_exception(svc: Any) -> None:
    master = svc.events().insert(calendarId="primary", body=weekly()).execute()
    second = f"{master['id']}_20260309T090000Z"
    svc.events().delete(calendarId="primary", eventId=second).execute()

    items, _ = full_sync(svc)  # singleEvents=false, showDeleted=false: the matrix keeps it
    assert [i["id"] for i in items] == [master["id"], second]
    assert items[1]["status"] == "cancelled"
    assert items[1]["recurringEventId"] == master["id"]
    assert items[1]["originalStartTime"] == {
        "dateTime": "2026-03-09T10:00:00+01:00",
        "timeZone": ZONE,
    }

    expanded, _ = full_sync(svc, singleEvents=True)
    assert second not in [i["id"] for i in expanded]
    assert len(expanded) == 3
    with_deleted, _ = full_sync(svc, singleEvents=True, showDeleted=True)
    assert [i["status"] for i in with_deleted if i["id"] == second] == ["cancelled"]
    with pytest.raises(HttpError) as excinfo:
        svc.events().delete(calendarId="primary", eventId=second).execute()
    assert status_and_reason(excinfo) == (410, "deleted")


def test_patching_an_instance_makes_a_moved_exception(svc: Any) -> None:
    master = svc.events().insert(calendarId="primary", body=weekly()).execute()
    third = f"{master['id']}_20260316T090000Z"
    moved = {
        "start": {"dateTime": "2026-03-17T12:00:00+01:00"},
        "end": {"dateTime": "2026-03-17T13:00:00+01:00"},
    }
    exception = svc.events().patch(calendarId="primary", eventId=third, body=moved).execute()
    assert exception["recurringEventId"] == master["id"]
    assert exception["originalStartTime"]["dateTime"] == "2026-03-16T10:00:00+01:00"
    assert exception["start"]["dateTime"] == "2026-03-17T12:00:00+01:00"
    expanded, _ = full_sync(svc, singleEvents=True, orderBy="startTime")
    assert [i["start"]["dateTime"][:10] for i in expanded] == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-17",
        "2026-03-23",
    ]
    series, _ = full_sync(svc, iCalUID=master["iCalUID"])
    assert [i["id"] for i in series] == [master["id"], third]


def test_a_deleted_series_lists_instance_tombstones_with_single_events(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    master = svc.events().insert(calendarId="primary", body=weekly(count=3)).execute()
    _, token = full_sync(svc, singleEvents=True, showDeleted=True)
    svc.events().delete(calendarId="primary", eventId=master["id"]).execute()
    items, _ = full_sync(svc, singleEvents=True, showDeleted=True, syncToken=token)
    assert [(i["id"][-16:], i["status"]) for i in items] == [
        ("20260302T090000Z", "cancelled"),
        ("20260309T090000Z", "cancelled"),
        ("20260316T090000Z", "cancelled"),
    ]
    assert all(i["recurringEventId"] == master["id"] for i in items)
    assert full_sync(svc, singleEvents=True)[0] == []


def test_instances_honour_the_window_and_original_start(svc: Any) -> None:
    master = svc.events().insert(calendarId="primary", body=weekly(count=6)).execute()
    window = (
        svc.events()
        .instances(
            calendarId="primary",
            eventId=master["id"],
            timeMin="2026-03-09T10:00:00Z",  # inclusive for instances: the 09 Mar one ends then
            timeMax="2026-03-23T09:00:00Z",
        )
        .execute()["items"]
    )
    assert [i["id"][-16:] for i in window] == ["20260309T090000Z", "20260316T090000Z"]
    one = (
        svc.events()
        .instances(
            calendarId="primary", eventId=master["id"], originalStart="2026-03-16T10:00:00+01:00"
        )
        .execute()["items"]
    )
    assert [i["id"][-16:] for i in one] == ["20260316T090000Z"]


def test_updating_an_instance_replaces_only_that_occurrence(svc: Any) -> None:
    master = svc.events().insert(calendarId="primary", body=weekly()).execute()
    second = f"{master['id']}_20260309T090000Z"
    body = {**timed(8, day=9), "summary": "early"}
    exception = svc.events().update(calendarId="primary", eventId=second, body=body).execute()
    assert exception["id"] == second
    assert exception["recurringEventId"] == master["id"]
    again = svc.events().get(calendarId="primary", eventId=second).execute()
    assert again == exception
    untouched = svc.events().get(calendarId="primary", eventId=master["id"]).execute()
    assert untouched["summary"] == "weekly"


# ----------------------------------------------------------------------------- writes


def test_stale_if_match_is_412_and_if_none_match_is_304(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    event = svc.events().insert(calendarId="primary", body=timed(10)).execute()
    emu.patch_event(emu.user, event["id"], {"summary": "someone else"})
    request = svc.events().patch(
        calendarId="primary", eventId=event["id"], body={"summary": "mine"}
    )
    request.headers["If-Match"] = event["etag"]
    with pytest.raises(HttpError) as excinfo:
        request.execute()
    assert status_and_reason(excinfo) == (412, "conditionNotMet")
    assert emu.event(emu.user, event["id"])["summary"] == "someone else"  # type: ignore[index]

    current = emu.event(emu.user, event["id"])
    assert current is not None
    get = svc.events().get(calendarId="primary", eventId=event["id"])
    get.headers["If-None-Match"] = current["etag"]
    with pytest.raises(HttpError) as excinfo:
        get.execute()
    assert excinfo.value.status_code == 304


def test_client_chosen_ids_duplicate_409_and_invalid_400(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    svc.events().insert(calendarId="primary", body=timed(10, id="abc12345")).execute()
    svc.events().delete(calendarId="primary", eventId="abc12345").execute()
    with pytest.raises(HttpError) as excinfo:
        svc.events().insert(calendarId="primary", body=timed(11, id="abc12345")).execute()
    assert status_and_reason(excinfo) == (409, "duplicate")
    with pytest.raises(HttpError) as excinfo:
        svc.events().insert(calendarId="primary", body=timed(11, id="ABC-not-base32hex")).execute()
    assert status_and_reason(excinfo) == (400, "invalid")


def test_etag_changes_and_updated_has_milliseconds(svc: Any) -> None:
    event = svc.events().insert(calendarId="primary", body=timed(10)).execute()
    after = (
        svc.events()
        .patch(calendarId="primary", eventId=event["id"], body={"summary": "b"})
        .execute()
    )
    assert after["etag"] != event["etag"]
    assert after["etag"][0] == after["etag"][-1] == '"'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", after["updated"])
    assert event["iCalUID"] == f"{event['id']}@google.com"
    assert event["organizer"] == {"email": "me@example.com", "self": True}


def test_private_properties_merge_and_a_null_removes_a_key(svc: Any) -> None:
    body = timed(10, extendedProperties={"private": {"a": "1", "b": "2"}, "shared": {"s": "x"}})
    event = svc.events().insert(calendarId="primary", body=body).execute()
    patch = {"extendedProperties": {"private": {"b": None, "c": "3"}}}
    after = svc.events().patch(calendarId="primary", eventId=event["id"], body=patch).execute()
    assert after["extendedProperties"] == {"private": {"a": "1", "c": "3"}, "shared": {"s": "x"}}
    replaced = (
        svc.events().update(calendarId="primary", eventId=event["id"], body=timed(10)).execute()
    )
    assert "extendedProperties" not in replaced


def test_extended_property_limits_drop_long_keys_and_truncate_long_values(svc: Any) -> None:
    props = {"k" * 44: "fits", "k" * 45: "dropped", "long": "v" * 1100}
    event = (
        svc.events()
        .insert(calendarId="primary", body=timed(10, extendedProperties={"private": props}))
        .execute()
    )
    stored = event["extendedProperties"]["private"]
    assert set(stored) == {"k" * 44, "long"}
    assert stored["long"] == "v" * 1024


def test_private_properties_stay_on_each_attendee_copy(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    bob = emu.add_user("bob@example.com")
    body = timed(10, attendees=[{"email": bob}], extendedProperties={"private": {"mine": "1"}})
    event = svc.events().insert(calendarId="primary", body=body).execute()
    copy = emu.event(bob, event["id"])
    assert copy is not None
    assert copy["organizer"] == {"email": "me@example.com"}
    assert "extendedProperties" not in copy
    emu.patch_event(
        bob, event["id"], {"extendedProperties": {"private": {"bobs": "2"}, "shared": {"s": "3"}}}
    )
    mine = svc.events().get(calendarId="primary", eventId=event["id"]).execute()
    assert mine["extendedProperties"] == {"private": {"mine": "1"}, "shared": {"s": "3"}}


def test_send_updates_is_recorded_for_each_write(emu: GoogleCalendarEmulator, svc: Any) -> None:
    event = svc.events().insert(calendarId="primary", body=timed(10), sendUpdates="none").execute()
    svc.events().patch(
        calendarId="primary", eventId=event["id"], body={}, sendUpdates="all"
    ).execute()
    svc.events().delete(calendarId="primary", eventId=event["id"]).execute()
    assert [(w.op, w.send_updates) for w in emu.writes] == [
        ("insert", "none"),
        ("patch", "all"),
        ("delete", None),
    ]


FIELDS = "nextSyncToken,items(id,start(dateTime),extendedProperties/private)"


def test_fields_returns_only_what_was_asked(emu: GoogleCalendarEmulator, svc: Any) -> None:
    emu.bulk_load(emu.user, [timed(10, extendedProperties={"private": {"k": "v"}})])
    svc.events().list(calendarId="primary").execute()
    emu.clear_requests()
    page = (
        svc.events()
        .list(
            calendarId="primary",
            fields=FIELDS,
        )
        .execute()
    )
    assert set(page) == {"nextSyncToken", "items"}
    (item,) = page["items"]
    assert set(item) == {"id", "start", "extendedProperties"}
    assert item["start"] == {"dateTime": "2026-03-02T10:00:00Z"}
    assert item["extendedProperties"] == {"private": {"k": "v"}}
    svc.events().list(calendarId="primary").execute()
    partial, full = emu.requests
    assert partial.query["fields"] == [FIELDS]
    assert partial.bytes_out < full.bytes_out
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId="primary", fields="items(nosuchfield)").execute()
    assert status_and_reason(excinfo) == (400, "invalidParameter")


def test_calendars_insert_lists_it_and_other_users_calendars_are_404(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    made = svc.calendars().insert(body={"summary": "Notes"}).execute()
    assert made["id"].endswith("@group.calendar.google.com")
    listed = svc.calendarList().list().execute()["items"]
    assert {c["id"] for c in listed} == {"me@example.com", made["id"]}
    assert [c["id"] for c in listed if c.get("primary")] == ["me@example.com"]
    foreign = emu.add_calendar("not mine", owner="eve@example.com")
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId=foreign).execute()
    assert status_and_reason(excinfo) == (404, "notFound")


def test_sequence_rises_when_the_event_moves_and_a_lower_one_is_400(svc: Any) -> None:
    event = svc.events().insert(calendarId="primary", body=timed(10)).execute()
    renamed = (
        svc.events()
        .patch(calendarId="primary", eventId=event["id"], body={"summary": "n"})
        .execute()
    )
    assert renamed["sequence"] == 0
    moved = svc.events().update(calendarId="primary", eventId=event["id"], body=timed(12)).execute()
    assert moved["sequence"] == 1
    with pytest.raises(HttpError) as excinfo:
        svc.events().patch(
            calendarId="primary", eventId=event["id"], body={"sequence": 0}
        ).execute()
    assert status_and_reason(excinfo) == (400, "invalid")


def test_a_reminders_only_change_keeps_updated_but_not_the_etag(svc: Any) -> None:
    event = svc.events().insert(calendarId="primary", body=timed(10)).execute()
    patch = {"reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]}}
    after = svc.events().patch(calendarId="primary", eventId=event["id"], body=patch).execute()
    assert after["updated"] == event["updated"]
    assert after["etag"] != event["etag"]


def test_guest_settings_of_an_invitation_are_the_organizers(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    invitation = timed(
        10,
        id="invite12345",
        organizer={"email": "boss@example.org"},
        attendees=[{"email": "boss@example.org"}, {"email": emu.user}],
        guestsCanModify=True,
    )
    emu.put_event(emu.user, invitation)
    mine = svc.events().get(calendarId="primary", eventId="invite12345").execute()
    assert mine["organizer"] == {"email": "boss@example.org"}
    assert [a.get("self", False) for a in mine["attendees"]] == [False, True]
    with pytest.raises(HttpError) as excinfo:
        svc.events().update(calendarId="primary", eventId="invite12345", body=timed(10)).execute()
    assert status_and_reason(excinfo) == (403, "forbiddenForNonOrganizer")
    patch = {"extendedProperties": {"private": {"syncd": "note"}}}
    svc.events().patch(calendarId="primary", eventId="invite12345", body=patch).execute()


def test_the_time_zone_parameter_rewrites_offsets(emu: GoogleCalendarEmulator, svc: Any) -> None:
    (event_id,) = emu.bulk_load(emu.user, [timed(10)])
    got = (
        svc.events()
        .get(calendarId="primary", eventId=event_id, timeZone="America/New_York")
        .execute()
    )
    assert got["start"]["dateTime"] == "2026-03-02T05:00:00-05:00"
    listed = svc.events().list(calendarId="primary", timeZone="Asia/Tokyo").execute()["items"]
    assert listed[0]["start"]["dateTime"] == "2026-03-02T19:00:00+09:00"


def test_q_and_extended_property_filters(emu: GoogleCalendarEmulator, svc: Any) -> None:
    bodies = [
        timed(9, summary="Dentist", extendedProperties={"private": {"kind": "a"}}),
        timed(
            10,
            summary="Lunch",
            location="Dentist street",
            extendedProperties={"private": {"kind": "b"}},
        ),
        timed(11, summary="Gym", extendedProperties={"shared": {"kind": "a"}}),
    ]
    dentist, lunch, gym = emu.bulk_load(emu.user, bodies)
    found = svc.events().list(calendarId="primary", q="dentist").execute()["items"]
    assert {i["id"] for i in found} == {dentist, lunch}
    private = svc.events().list(calendarId="primary", privateExtendedProperty="kind=a").execute()
    assert [i["id"] for i in private["items"]] == [dentist]
    either = (
        svc.events()
        .list(calendarId="primary", privateExtendedProperty=["kind=a", "kind=b"])
        .execute()
    )
    assert {i["id"] for i in either["items"]} == {dentist, lunch}
    shared = svc.events().list(calendarId="primary", sharedExtendedProperty="kind=a").execute()
    assert [i["id"] for i in shared["items"]] == [gym]


def test_show_deleted_and_updated_min_list_cancelled_events_as_stubs(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    kept, gone = emu.bulk_load(emu.user, [timed(9), timed(10)])
    emu.delete_event(emu.user, gone)
    assert [i["id"] for i in full_sync(svc)[0]] == [kept]
    with_deleted, _ = full_sync(svc, showDeleted=True)
    assert [(i["id"], i["status"]) for i in with_deleted] == [
        (kept, "confirmed"),
        (gone, "cancelled"),
    ]
    assert set(with_deleted[1]) == {"kind", "etag", "id", "status"}
    stored = emu.event(emu.user, gone)
    assert stored is not None
    since = svc.events().list(calendarId="primary", updatedMin=stored["updated"]).execute()
    assert [i["id"] for i in since["items"]] == [gone]


def test_a_page_token_only_fits_its_own_query(emu: GoogleCalendarEmulator, svc: Any) -> None:
    emu.bulk_load(emu.user, [timed(h) for h in range(1, 4)])
    first = svc.events().list(calendarId="primary", maxResults=2).execute()
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(
            calendarId="primary", pageToken=first["nextPageToken"], singleEvents=True
        ).execute()
    assert status_and_reason(excinfo) == (400, "invalid")


def test_calendar_list_sync_token_returns_new_and_deleted_calendars(svc: Any) -> None:
    first = svc.calendarList().list().execute()
    made = svc.calendars().insert(body={"summary": "Notes"}).execute()
    changed = svc.calendarList().list(syncToken=first["nextSyncToken"]).execute()
    assert [c["id"] for c in changed["items"]] == [made["id"]]
    svc.calendars().delete(calendarId=made["id"]).execute()
    gone = svc.calendarList().list(syncToken=changed["nextSyncToken"]).execute()
    assert gone["items"] == [
        {
            "kind": "calendar#calendarListEntry",
            "etag": gone["items"][0]["etag"],
            "id": made["id"],
            "deleted": True,
        }
    ]


def test_a_read_only_token_cannot_write(emu: GoogleCalendarEmulator) -> None:
    info = emu.authorized_user_info(scopes=[SCOPE_CALENDAR + ".readonly"])
    creds = Credentials.from_authorized_user_info(info).with_token_uri(emu.token_uri)
    service = service_for(emu, creds)
    assert service.events().list(calendarId="primary").execute()["items"] == []
    with pytest.raises(HttpError) as excinfo:
        service.events().insert(calendarId="primary", body=timed(10)).execute()
    assert status_and_reason(excinfo) == (403, "insufficientPermissions")


def test_concurrent_clients_each_with_their_own_connection(emu: GoogleCalendarEmulator) -> None:
    info = emu.authorized_user_info()

    def work(n: int) -> None:
        creds = Credentials.from_authorized_user_info(info).with_token_uri(emu.token_uri)
        service = service_for(emu, creds)
        for hour in range(5):
            service.events().insert(calendarId="primary", body=timed(hour + 1, day=n + 1)).execute()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(emu.events(emu.user)) == 30
    assert len({e["etag"] for e in emu.events(emu.user)}) == 30


def test_controls_only_store_what_google_could_hold(emu: GoogleCalendarEmulator) -> None:
    with pytest.raises(ApiError) as excinfo:
        emu.put_event(emu.user, timed(10, id="evt-1"))
    assert excinfo.value.reason == "invalid"
    master = emu.put_event(emu.user, weekly(id="series01"))
    moved = emu.put_event(emu.user, timed(15, day=9, id="series01_20260309T090000Z"))
    assert moved["recurringEventId"] == "series01"
    assert moved["iCalUID"] == master["iCalUID"]
    assert moved["originalStartTime"]["dateTime"] == "2026-03-09T10:00:00+01:00"
    with pytest.raises(ApiError) as excinfo:
        emu.put_event(emu.user, timed(11, id="other001", iCalUID=master["iCalUID"]))
    assert excinfo.value.reason == "duplicate"


# ----------------------------------------------------------------------------- faults


@pytest.mark.parametrize(
    ("fault", "status", "reason"),
    [
        ("429", 429, "rateLimitExceeded"),
        ("403-rate", 403, "rateLimitExceeded"),
        ("403-user-rate", 403, "userRateLimitExceeded"),
        ("403-quota", 403, "quotaExceeded"),
        ("500", 500, "backendError"),
        ("503", 503, "backendError"),
        ("410", 410, "fullSyncRequired"),
    ],
)
def test_injected_errors_change_nothing(
    emu: GoogleCalendarEmulator, svc: Any, fault: str, status: int, reason: str
) -> None:
    emu.inject(fault, method="POST", path_contains="/events", retry_after=2)
    with pytest.raises(HttpError) as excinfo:
        svc.events().insert(calendarId="primary", body=timed(10)).execute()
    assert status_and_reason(excinfo) == (status, reason)
    assert excinfo.value.resp["retry-after"] == "2"
    assert emu.events(emu.user) == []
    svc.events().insert(calendarId="primary", body=timed(10)).execute()  # consumed: next one works
    assert len(emu.events(emu.user)) == 1


def test_429_without_retry_after_has_no_header(emu: GoogleCalendarEmulator, svc: Any) -> None:
    emu.inject("429")
    with pytest.raises(HttpError) as excinfo:
        svc.events().list(calendarId="primary").execute()
    assert "retry-after" not in excinfo.value.resp


def test_faults_are_consumed_in_order_and_only_by_matching_requests(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    emu.inject("500", method="DELETE")
    emu.inject("503", times=2)
    statuses = []
    for _ in range(3):
        try:
            svc.events().list(calendarId="primary").execute()
            statuses.append(200)
        except HttpError as error:
            statuses.append(error.status_code)
    assert statuses == [503, 503, 200]


def test_injected_401_answers_auth_error(emu: GoogleCalendarEmulator) -> None:
    http = httplib2.Http()
    emu.inject("401")
    response, content = http.request(emu.endpoint + "users/me/calendarList")
    assert response.status == 401
    assert json.loads(content)["error"]["errors"][0]["reason"] == "authError"


def test_slow_answers_normally(emu: GoogleCalendarEmulator, svc: Any) -> None:
    emu.inject("slow", delay=0.01)
    assert svc.events().list(calendarId="primary").execute()["items"] == []
    assert emu.requests[-1].status == 200


def test_reset_closes_the_connection_without_an_answer(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    emu.inject("reset", method="POST")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        svc.events().insert(calendarId="primary", body=timed(10)).execute()
    assert emu.events(emu.user) == []
    assert emu.requests[-1].status == 0
    svc.events().insert(calendarId="primary", body=timed(10)).execute()
    assert len(emu.events(emu.user)) == 1


# ----------------------------------------------------------------------------- auth


def test_refresh_token_grant_and_a_401_with_an_expired_token(
    emu: GoogleCalendarEmulator, svc: Any
) -> None:
    svc.calendarList().list().execute()
    emu.expire_access_tokens()
    svc.calendarList().list().execute()  # google-auth refreshes on the 401 and retries
    trail = [(r.method, r.path, r.status) for r in emu.requests]
    assert trail == [
        ("POST", "/token", 200),
        ("GET", "/calendar/v3/users/me/calendarList", 200),
        ("GET", "/calendar/v3/users/me/calendarList", 401),
        ("POST", "/token", 200),
        ("GET", "/calendar/v3/users/me/calendarList", 200),
    ]
    assert emu.requests[0].body["grant_type"] == "refresh_token"


def test_access_tokens_expire_on_the_emulator_clock(emu: GoogleCalendarEmulator, svc: Any) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    emu.clock = lambda: start
    svc.calendarList().list().execute()
    emu.clock = lambda: start + timedelta(seconds=3600)
    svc.calendarList().list().execute()
    assert [r.status for r in emu.requests] == [200, 200, 401, 200, 200]


def test_a_revoked_refresh_token_is_invalid_grant(emu: GoogleCalendarEmulator, svc: Any) -> None:
    emu.revoke_refresh_tokens()
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        svc.calendarList().list().execute()


def test_api_calls_need_a_token_unless_auth_is_off(emu: GoogleCalendarEmulator) -> None:
    http = httplib2.Http()
    response, content = http.request(emu.endpoint + "calendars/primary/events")
    assert response.status == 401
    assert json.loads(content)["error"]["errors"][0]["reason"] == "required"
    response, _ = http.request(
        emu.endpoint + "calendars/primary/events", headers={"Authorization": "Bearer nope"}
    )
    assert response.status == 401
    emu.auth_required = False
    response, _ = http.request(emu.endpoint + "calendars/primary/events")
    assert response.status == 200


def test_authorization_code_flow_with_pkce(
    emu: GoogleCalendarEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulator's redirect is plain http
    flow = Flow.from_client_config(
        emu.client_secrets(), scopes=[SCOPE_CALENDAR], redirect_uri="http://localhost:8765/"
    )
    url, _ = flow.authorization_url()
    consent = requests.get(url, allow_redirects=False, timeout=10)
    assert consent.status_code == 302
    assert consent.headers["Location"].startswith("http://localhost:8765/?state=")
    flow.fetch_token(authorization_response=consent.headers["Location"])
    creds = flow.credentials
    assert creds.refresh_token
    assert emu.consents[0].scopes == (SCOPE_CALENDAR,)
    assert emu.consents[0].code_challenge is not None
    service = service_for(emu, creds)
    assert service.calendars().get(calendarId="primary").execute()["id"] == "me@example.com"


def test_authorization_code_needs_the_right_verifier_and_is_single_use(
    emu: GoogleCalendarEmulator,
) -> None:
    secrets_ = emu.client_secrets()["installed"]
    consent = requests.get(
        emu.auth_uri,
        params={
            "client_id": secrets_["client_id"],
            "redirect_uri": "http://127.0.0.1:9/",
            "response_type": "code",
            "scope": SCOPE_CALENDAR,
            "code_challenge": "c" * 43,
            "code_challenge_method": "plain",
        },
        allow_redirects=False,
        timeout=10,
    )
    code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:9/",
        "client_id": secrets_["client_id"],
        "client_secret": secrets_["client_secret"],
    }
    wrong = requests.post(emu.token_uri, data={**form, "code_verifier": "d" * 43}, timeout=10)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    reused = requests.post(emu.token_uri, data={**form, "code_verifier": "c" * 43}, timeout=10)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


def test_service_account_with_subject_acts_for_the_user(emu: GoogleCalendarEmulator) -> None:
    emu.bulk_load(emu.user, [timed(10)])
    info = emu.service_account_info()
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=[SCOPE_CALENDAR], subject=emu.user
    )
    service = service_for(emu, creds)
    assert len(service.events().list(calendarId="primary").execute()["items"]) == 1
    assert emu.requests[0].body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"

    alone = service_for(emu, creds.with_subject(None))
    with pytest.raises(HttpError) as excinfo:
        alone.events().list(calendarId=emu.user).execute()
    assert excinfo.value.status_code == 404
    with pytest.raises(HttpError) as excinfo:
        alone.events().insert(
            calendarId="primary", body=timed(10, attendees=[{"email": "x@y.z"}])
        ).execute()
    assert status_and_reason(excinfo) == (403, "forbiddenForServiceAccounts")


def test_a_self_signed_service_account_jwt_is_a_bearer_token(emu: GoogleCalendarEmulator) -> None:
    info = emu.service_account_info(email="robot@syncd-test.iam.gserviceaccount.com")
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=[SCOPE_CALENDAR], always_use_jwt_access=True
    )
    primary = service_for(emu, creds).calendars().get(calendarId="primary").execute()
    assert primary["id"] == "robot@syncd-test.iam.gserviceaccount.com"
    assert not [r for r in emu.requests if r.path == "/token"]


def test_a_subject_that_is_no_user_is_refused(emu: GoogleCalendarEmulator) -> None:
    creds = service_account.Credentials.from_service_account_info(
        emu.service_account_info(), scopes=[SCOPE_CALENDAR], subject="nobody@example.com"
    )
    with pytest.raises(google.auth.exceptions.RefreshError, match="invalid_grant"):
        service_for(emu, creds).calendarList().list().execute()


def test_https_with_a_test_ca(tmp_path: Any) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with GoogleCalendarEmulator(ssl_context=context) as emu:
        assert emu.endpoint.startswith("https://127.0.0.1:")
        creds = user_creds(emu)
        http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(ca_certs=str(ca_file)))
        creds.refresh(google_auth_httplib2.Request(httplib2.Http(ca_certs=str(ca_file))))
        service = build(
            "calendar",
            "v3",
            http=http,
            static_discovery=True,
            client_options={"api_endpoint": emu.endpoint},
        )
        assert service.calendarList().list().execute()["items"][0]["id"] == emu.user
