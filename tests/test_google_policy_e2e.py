"""The policy end to end on Google: a work calendar and a notes calendar, both on the Calendar
API emulator, through the real client library.

The same scenario as :mod:`tests.test_policy_e2e` (local folders) and
:mod:`tests.test_caldav_policy_e2e`: another client writes Google-native JSON (an attendee's
``responseStatus``, a deleted instance id, a patched instance id, a deleted series); the notes
calendar is found by name and made on the first cycle; syncd's annotation lives in
``extendedProperties.private`` only; every write carries ``sendUpdates=none``. Then: tokens
dying in the middle of a cycle, a 412 on a note update, and an insert whose answer was lost.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.google import GoogleConnector
from connectors.google.account import forget_accounts
from connectors.google.ids import event_id
from syncd.app import cycled_calendars
from syncd.model import format_when
from tests.google_emulator import GoogleCalendarEmulator
from tests.harness import CONFIG, Harness
from tests.test_google_contract import api_calls, param, quick, write_token
from tests.test_policy_e2e import HOUR, LATER, POLICY, SOON

_LOCAL_NOTES = '[[calendars]]\nname = "notes"\nconnector = "local"\npath = "notes"\n'
FEE = {"amount": "60.00", "currency": "EUR"}
JANE = {"email": "jane@example.com", "responseStatus": "accepted"}
ME = {"email": "me@example.com"}
BERLIN = ZoneInfo("Europe/Berlin")


def config_text(emu: GoogleCalendarEmulator, work_id: str, notes_name: str) -> str:
    calendars = (
        f'[[calendars]]\nname = "work"\nconnector = "google"\ncalendar_id = "{work_id}"\n'
        f'api_endpoint = "{emu.endpoint}"\n'
        f'[[calendars]]\nname = "notes"\nconnector = "google"\ncalendar = "{notes_name}"\n'
        f'api_endpoint = "{emu.endpoint}"\n'
    )
    assert _LOCAL_NOTES in POLICY
    return CONFIG.split("[owner]")[0] + POLICY.replace(_LOCAL_NOTES, calendars)


class GoogleHarness(Harness):
    """The engine on two emulator calendars (tokens in syncd's default token folder); the
    emulator's clock is the harness clock, so ``updated`` is when the test says."""

    def __init__(self, root: Path, emu: GoogleCalendarEmulator) -> None:
        self.emu = emu
        self.work_id = emu.add_calendar(f"Work {uuid.uuid4().hex[:8]}")
        self.notes_name = f"syncd notes {uuid.uuid4().hex[:8]}"
        for name in ("work", "notes"):
            write_token(emu, root / "var" / "tokens", f"google-{name}.json")
        super().__init__(root, config_text(emu, self.work_id, self.notes_name))
        emu.clock = lambda: self.now
        self.quicken()

    def quicken(self) -> None:
        for name in ("work", "notes"):
            quick(self.connector(name))

    def reopen(self) -> None:
        super().reopen()
        self.quicken()

    def cycle_all(self) -> None:
        for name in cycled_calendars(self.config):
            self.engine.cycle(name)

    def connector(self, name: str) -> GoogleConnector:
        found = self.engine.connectors[name]
        assert isinstance(found, GoogleConnector)
        return found

    @property
    def notes_id(self) -> str:
        return self.connector("notes").finder.calendar_id(may_create=False)

    def put(self, name: str, body: dict[str, Any]) -> None:  # type: ignore[override]
        """Another client stores an event at the id for ``name``."""
        self.emu.put_event(self.work_id, {"id": event_id(name), **body})

    def remove(self, name: str) -> None:
        self.emu.delete_event(self.work_id, event_id(name))

    def stored(self, name: str) -> dict[str, Any]:
        found = self.emu.event(self.work_id, event_id(name))
        assert found is not None
        return found

    def notes(self) -> list[dict[str, Any]]:
        """The live notes in the notes calendar, as Google holds them."""
        return [e for e in self.emu.events(self.notes_id) if e.get("status") != "cancelled"]

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r["type"] == kind]


@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleCalendarEmulator]:
    with GoogleCalendarEmulator() as emulator:
        yield emulator
        assert emulator.internal_errors == []


@pytest.fixture
def h(tmp_path: Path, emu: GoogleCalendarEmulator) -> Iterator[GoogleHarness]:
    harness = GoogleHarness(tmp_path, emu)
    yield harness
    harness.close()
    forget_accounts()


def when(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.isoformat().replace("+00:00", "Z")}


def appointment(
    uid: str, start: datetime, *attendees: dict[str, str], **extra: Any
) -> dict[str, Any]:
    return {
        "iCalUID": uid,
        "summary": "Coaching",
        "start": when(start),
        "end": when(start + HOUR),
        "organizer": ME,
        "attendees": list(attendees),
        **extra,
    }


def series(uid: str, start: datetime) -> dict[str, Any]:
    """A weekly series of four with Jane, in Berlin time."""
    local = start.astimezone(BERLIN)
    return {
        **appointment(uid, start, JANE),
        "start": {"dateTime": local.isoformat(), "timeZone": "Europe/Berlin"},
        "end": {"dateTime": (local + HOUR).isoformat(), "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
    }


def instance_id(name: str, original: datetime) -> str:
    return f"{event_id(name)}_{original.strftime('%Y%m%dT%H%M%SZ')}"


def verdicts(h: GoogleHarness) -> list[tuple[Any, ...]]:
    return [
        (v["verdict"], v["uid"], v["instance"], v["actor"], v["fee"])
        for v in h.records_of("verdict")
    ]


def late_decline(h: GoogleHarness) -> None:
    """Jane declines 22 h ahead: her responseStatus changes on the organizer's copy."""
    h.put("a.ics", appointment("a", SOON, JANE, description="Bring your notes"))
    h.cycle_all()
    h.emu.patch_event(
        h.work_id, event_id("a.ics"), {"attendees": [{**JANE, "responseStatus": "declined"}]}
    )
    h.cycle_all()


# --- the scenario ---------------------------------------------------------------------------


def test_late_decline_gives_one_verdict_one_note_and_the_right_fee(h: GoogleHarness) -> None:
    """One late cancellation at 50 % of 120 EUR with 22 h notice (Google's ``updated``), one
    note in the notes calendar (made on the first cycle), the event annotated in private
    properties."""
    late_decline(h)
    assert verdicts(h) == [("late_cancellation", "a", None, "client", FEE)]
    [verdict] = h.records_of("verdict")
    assert verdict["notice_hours"] == 22.0
    [note] = h.notes()
    assert note["summary"].startswith("Late cancellation")
    assert "Jane Doe" in note["summary"]
    assert note["transparency"] == "transparent"
    assert "attendees" not in note
    assert "X-SYNCD-KEY" in note["extendedProperties"]["private"]
    private = h.stored("a.ics")["extendedProperties"]["private"]
    assert set(private) == {"X-SYNCD-VERDICT", "X-SYNCD-NOTE"}
    writes = h.records_of("write")
    assert sorted((w["action"], w["status"]) for w in writes) == [
        ("annotate", "applied"),
        ("annotate", "intended"),
        ("note", "applied"),
        ("note", "intended"),
    ]


def test_an_annotation_touches_nothing_an_attendee_sees(h: GoogleHarness) -> None:
    """Summary, description, attendees and shared properties of the event stay as they were;
    every write the emulator saw carries sendUpdates=none and sends private data only to
    the event with attendees."""
    h.put(
        "a.ics",
        appointment(
            "a",
            SOON,
            JANE,
            description="Bring your notes",
            extendedProperties={"shared": {"room": "4"}},
        ),
    )
    h.cycle_all()
    h.emu.patch_event(
        h.work_id, event_id("a.ics"), {"attendees": [{**JANE, "responseStatus": "declined"}]}
    )
    before = copy.deepcopy(h.stored("a.ics"))
    h.emu.clear_requests()
    h.cycle_all()
    after = h.stored("a.ics")
    for key in ("summary", "description", "attendees", "start", "end", "sequence"):
        assert after[key] == before[key], key
    assert after["extendedProperties"]["shared"] == {"room": "4"}
    assert set(after["extendedProperties"]["private"]) == {"X-SYNCD-VERDICT", "X-SYNCD-NOTE"}
    writes = [r for r in api_calls(h.emu) if r.method in ("POST", "PATCH", "PUT", "DELETE")]
    assert writes, "the verdict should have written a note and an annotation"
    assert all(param(r, "sendUpdates") == "none" for r in writes if "/events" in r.path)
    assert all(r.method != "PUT" for r in writes)
    work_writes = [r for r in writes if h.work_id in r.path.replace("%40", "@")]
    assert [(r.method, set(r.body)) for r in work_writes] == [("PATCH", {"extendedProperties"})]
    assert set(work_writes[0].body["extendedProperties"]) == {"private"}
    assert h.emu.writes
    assert {w.send_updates for w in h.emu.writes} == {"none"}


def test_deleting_one_instance_is_a_late_cancellation_of_that_instance(h: GoogleHarness) -> None:
    """Another client deletes one instance id 22 h ahead: a cancelled exception; one verdict
    for that instance (who cancelled is asked: Google does not say), one note."""
    h.put("s.ics", series("s", SOON))
    h.cycle_all()
    h.emu.delete_event(h.work_id, instance_id("s.ics", SOON))
    h.cycle_all()
    assert verdicts(h) == [("late_cancellation", "s", format_when(SOON), "unknown", None)]
    assert len(h.notes()) == 1
    changes = [(c["change"], c["instance"]) for c in h.records_of("change")]
    assert changes == [("cancelled", format_when(SOON))]
    exception = h.emu.event(h.work_id, instance_id("s.ics", SOON))
    assert exception is not None
    assert exception["status"] == "cancelled"
    assert set(exception["extendedProperties"]["private"]) == {"X-SYNCD-VERDICT", "X-SYNCD-NOTE"}


def test_a_patched_instance_is_judged_as_a_move(h: GoogleHarness) -> None:
    """The second instance moved by two hours a week ahead: one timely move verdict."""
    second = SOON + timedelta(days=7)
    h.put("s.ics", series("s", SOON))
    h.cycle_all()
    h.emu.patch_event(
        h.work_id,
        instance_id("s.ics", second),
        {"start": when(second + 2 * HOUR), "end": when(second + 3 * HOUR)},
    )
    h.cycle_all()
    assert [(v[0], v[2]) for v in verdicts(h)] == [("move", format_when(second))]
    [change] = h.records_of("change")
    assert (change["change"], change["start_after"]) == ("moved", format_when(second + 2 * HOUR))


def test_deleted_series_cancels_each_instance_once(h: GoogleHarness) -> None:
    """Deleting a series five days ahead cancels its four instances: four verdicts, four
    notes."""
    h.put("s.ics", series("s", LATER))
    h.cycle_all()
    h.remove("s.ics")
    h.cycle_all()
    starts = [format_when(LATER + timedelta(days=7 * n)) for n in range(4)]
    assert sorted(v[2] for v in verdicts(h)) == starts
    assert {v[0] for v in verdicts(h)} == {"cancellation"}
    assert sorted(c["instance"] for c in h.records_of("change")) == starts
    assert len(h.notes()) == 4


def test_own_writes_are_not_reported_back(h: GoogleHarness) -> None:
    """The annotation and the note come back in the next listings and are recognised; a
    quiet cycle afterwards is one request per calendar and adds nothing."""
    late_decline(h)
    records = len(h.audit())
    reports = {name: h.engine.cycle(name) for name in cycled_calendars(h.config)}
    assert all(not r.changes and not r.verdicts for r in reports.values())
    assert len(h.audit()) == records
    h.emu.clear_requests()
    h.cycle_all()
    assert len(h.audit()) == records
    assert len(api_calls(h.emu)) == 2


# --- expired tokens, conflicts, lost answers ------------------------------------------------


def test_tokens_dying_mid_cycle_give_one_resync_and_no_false_cancellation(
    h: GoogleHarness,
) -> None:
    """Tokens expire between two pages of the first listing: that cycle still completes (its
    pages come from the listing's start); the next one gets 410, records one resync, merges
    the full listing and reports only the real change."""
    h.put("a.ics", appointment("a", LATER, JANE))
    h.put("b.ics", appointment("b", LATER + 3 * HOUR, JANE))
    work = h.connector("work")
    real = work.session.execute
    pages: list[str] = []

    def expire_after_first_page(operation: str, request: Any, what: str) -> Any:
        result = real(operation, request, what)
        if what == "events.list":
            pages.append(operation)
            if len(pages) == 1:
                h.emu.expire_sync_tokens(h.work_id)
        return result

    work.session.execute = expire_after_first_page  # type: ignore[method-assign]
    h.emu.page_size_cap = 1
    try:
        h.cycle_all()
    finally:
        h.emu.page_size_cap = None
        work.session.execute = real  # type: ignore[method-assign]
    assert pages == ["list", "list"]
    h.put("c.ics", appointment("c", LATER + 5 * HOUR, JANE))
    h.cycle_all()
    assert [r["calendar"] for r in h.records_of("resync")] == ["work"]
    assert [(c["change"], c["uid"]) for c in h.records_of("change")] == [("created", "c")]
    assert h.records_of("verdict") == []
    records = len(h.audit())
    h.cycle_all()
    assert len(h.audit()) == records


def test_a_410_on_the_second_page_of_a_poll_resyncs_within_the_cycle(h: GoogleHarness) -> None:
    """Google drops the sync token while a poll reads its pages: the same cycle lists
    everything again, records one resync and reports each real change once."""
    h.put("a.ics", appointment("a", LATER, JANE))
    h.cycle_all()
    for name, hours in (("b", 3), ("c", 5), ("d", 7)):
        h.put(f"{name}.ics", appointment(name, LATER + hours * HOUR, JANE))
    h.emu.page_size_cap = 1
    h.emu.clear_requests()  # the emulator serves the whole module
    h.emu.inject("410", path_contains="pageToken=")
    try:
        h.cycle_all()
    finally:
        h.emu.page_size_cap = None
    gone = [r for r in h.emu.requests if r.status == 410]
    assert len(gone) == 1
    assert "syncToken" in gone[0].query
    assert [r["calendar"] for r in h.records_of("resync")] == ["work"]
    assert sorted((c["change"], c["uid"]) for c in h.records_of("change")) == [
        ("created", "b"),
        ("created", "c"),
        ("created", "d"),
    ]
    records = len(h.audit())
    h.cycle_all()
    assert len(h.audit()) == records


def test_an_owner_edit_racing_a_note_update_survives(h: GoogleHarness) -> None:
    """The owner writes [waive] in the note's title: the note is rewritten "(waived)". The
    owner colours the note between syncd's read and its patch: Google answers 412, syncd
    reads again and re-applies, and the colour stays."""
    late_decline(h)
    [note] = h.notes()
    h.emu.patch_event(h.notes_id, note["id"], {"summary": note["summary"] + " [waive]"})
    notes = h.connector("notes")
    real = notes.session.execute
    raced: list[str] = []

    def owner_edits_first(operation: str, request: Any, what: str) -> Any:
        if operation == "update" and not raced:
            raced.append(what)
            h.emu.patch_event(h.notes_id, note["id"], {"colorId": "5"})
        return real(operation, request, what)

    notes.session.execute = owner_edits_first  # type: ignore[method-assign]
    h.emu.clear_requests()
    h.cycle_all()
    assert raced == [f"events.patch {note['id']}"]
    patches = [r.status for r in api_calls(h.emu) if r.method == "PATCH" and note["id"] in r.path]
    assert patches == [412, 200]
    [final] = h.notes()
    assert "(waived)" in final["summary"]
    assert final["colorId"] == "5"
    assert [(w["verdict"], w["waived"]) for w in h.records_of("waiver")] == [
        ("late_cancellation", True)
    ]


class LostAnswer:
    """An HTTP object whose first insert reaches Google but whose answer is lost on the way
    back (a reset after the server stored the event): the connector retries the insert."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.credentials = inner.credentials
        self.lost: list[str] = []

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        answer = self.inner.request(uri, method, *args, **kwargs)
        if method == "POST" and uri.split("?")[0].endswith("/events") and not self.lost:
            self.lost.append(uri)
            raise ConnectionResetError("the answer was lost")
        return answer


def test_a_retried_insert_counts_as_done_without_a_duplicate(h: GoogleHarness) -> None:
    """The note's insert is stored but its answer lost: the retry gets 409, the note is read
    back, found complete, and the write counts as applied once."""
    notes = h.connector("notes")
    made: list[LostAnswer] = []
    plain = notes.session.http_factory

    def losing(credentials: Any) -> Any:
        wrapped = LostAnswer(plain(credentials))
        if not made:
            made.append(wrapped)
            return wrapped
        return plain(credentials)

    notes.session.http_factory = losing
    late_decline(h)
    assert made
    assert made[0].lost
    inserts = [r.status for r in api_calls(h.emu) if r.method == "POST" and "/events" in r.path]
    assert inserts[-2:] == [200, 409]
    assert len(h.notes()) == 1
    notes_writes = [w for w in h.records_of("write") if w["action"] == "note"]
    assert [w["status"] for w in notes_writes] == ["intended", "applied"]


# --- the readiness check sees Meet links ----------------------------------------------------


def test_a_meet_link_counts_for_the_readiness_check(h: GoogleHarness) -> None:
    """A remote meeting whose link lives only in Google's ``conferenceData`` (a Meet or
    add-on conference) is ready; the same meeting without one gets a readiness note."""
    h.put("base.ics", appointment("base", LATER, JANE))
    h.cycle_all()  # the baseline: the calendar's first cycle
    video = {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"}
    linked = appointment("m", SOON, JANE, summary="[remote] Coaching")
    h.put("m.ics", {**linked, "conferenceData": {"entryPoints": [video]}})
    h.put("n.ics", appointment("n", SOON + HOUR, JANE, summary="[remote] Coaching"))
    h.cycle_all()
    kinds = [n["extendedProperties"]["private"].get("X-SYNCD-VERDICT") for n in h.notes()]
    assert kinds == ["readiness"]
    [note] = h.notes()
    assert note["start"] == when(SOON + HOUR)  # over the meeting without a link
