"""The policy end to end on the Graph emulator: a work calendar and a notes calendar in one
Outlook mailbox, signed in app-only through real MSAL, every request through real requests
over HTTPS.

The scenario of :mod:`tests.test_caldav_policy_e2e` in Graph's terms (a late decline, an
occurrence cancelled by its organizer on the attendee's copy, a moved occurrence, a deleted
series), the notes calendar made on the first cycle, and what Graph adds: delta links that
expire (also in the middle of a round), ``@removed`` for changes outside the window, replayed
pages, a 412 between syncd's read and its PATCH, a create whose answer was lost, and a window
that slides with the clock. The emulator's clock is the harness clock, so Graph's
``lastModifiedDateTime`` is the moment the test makes a change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.outlook import OutlookConnector
from connectors.outlook.items import DATA_PROPERTY
from syncd.app import cycled_calendars
from syncd.engine import Engine
from syncd.errors import TransientError
from syncd.model import format_when
from tests.graph_emulator import GraphEmulator
from tests.harness import CONFIG, Harness
from tests.identity_provider import IdentityProvider
from tests.test_outlook_contract import graph_time
from tests.test_policy_e2e import HOUR, LATER, POLICY, SOON
from tests.tls import ca_file

CLIENT = "syncd-e2e"
SECRET = "e2e-secret-0123456789abcdef"  # noqa: S105 - the fake IdP's test app secret
USER = "me@example.com"
JANE = "jane@example.com"
FEE = {"amount": "60.00", "currency": "EUR"}
_LOCAL_NOTES = '[[calendars]]\nname = "notes"\nconnector = "local"\npath = "notes"\n'


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        provider.register_app(CLIENT, secret=SECRET)
        yield provider


def config_text(root: Path, idp: IdentityProvider, emu: GraphEmulator) -> str:
    """The policy test's configuration with both calendars in USER's mailbox."""
    secret = root / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    options = (
        f'client_id = "{CLIENT}"\nauthority = "{idp.authority}"\ngraph_url = "{emu.base}"\n'
        f'ca_file = "{ca_file(root)}"\nclient_secret_file = "secret"\nuser = "{USER}"\n'
    )
    calendars = "".join(
        f'[[calendars]]\nname = "{name}"\nconnector = "outlook"\ncalendar = "{shown}"\n{options}'
        for name, shown in (("work", "Work"), ("notes", "syncd notes"))
    )
    assert _LOCAL_NOTES in POLICY
    return CONFIG.split("[owner]")[0] + POLICY.replace(_LOCAL_NOTES, calendars)


class GraphHarness(Harness):
    """The engine on two calendars of one mailbox on the Graph emulator; ``put``, ``patch``
    and ``remove`` act as another client (the user in Outlook, the organizer's server)."""

    def __init__(self, root: Path, idp: IdentityProvider, emu: GraphEmulator) -> None:
        self.emu = emu
        self.sleeps: list[float] = []
        emu.add_mailbox(USER)
        self.work_id = emu.add_calendar(USER, "Work")
        emu.clock = lambda: self.now
        super().__init__(root, config_text(root, idp, emu))

    def _open(self) -> Engine:
        engine = super()._open()
        for connector in engine.connectors.values():
            assert isinstance(connector, OutlookConnector)
            connector.session.sleep = self.sleeps.append
        return engine

    def put(self, name: str, data: bytes) -> None:
        raise NotImplementedError("Graph events are written as JSON: use add()")

    def add(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.emu.put_event(USER, self.work_id, body)

    def patch(self, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.emu.patch_event(USER, event_id, patch)

    def remove(self, name: str) -> None:
        self.emu.delete_event(USER, name)

    def cycle_all(self) -> None:
        for name in cycled_calendars(self.config):
            self.engine.cycle(name)

    def connector(self, name: str) -> OutlookConnector:
        found = self.engine.connectors[name]
        assert isinstance(found, OutlookConnector)
        return found

    def notes(self) -> list[dict[str, Any]]:
        """The events in the notes calendar, as Graph holds them."""
        notes_id = self.connector("notes").finder.known
        assert notes_id is not None
        return self.emu.events(USER, notes_id)

    def occurrences(self) -> list[dict[str, Any]]:
        """The occurrences and exceptions in the work calendar, by original start."""
        found = [e for e in self.emu.events(USER, self.work_id) if e.get("seriesMasterId")]
        return sorted(found, key=lambda e: str(e["originalStart"]))

    def data(self, event_id: str) -> dict[str, str]:
        value = self.emu.extended_property(USER, event_id, DATA_PROPERTY)
        return {} if value is None else dict(json.loads(value))

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r["type"] == kind]

    def wire(self) -> list[Any]:
        return [r for r in self.emu.requests if not r.batch]


@pytest.fixture
def h(tmp_path: Path, idp: IdentityProvider) -> Iterator[GraphHarness]:
    with GraphEmulator(idp=idp) as emu:
        harness = GraphHarness(tmp_path, idp, emu)
        yield harness
        harness.close()


def attendee(address: str, response: str, name: str = "") -> dict[str, Any]:
    return {
        "emailAddress": {"address": address, "name": name},
        "type": "required",
        "status": {"response": response},
    }


def jane(response: str = "accepted") -> dict[str, Any]:
    return attendee(JANE, response, "Jane Doe")


def appointment(start: datetime, *people: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Graph JSON of a one-hour coaching session the owner organizes."""
    return {
        "subject": "Coaching",
        "start": graph_time(start),
        "end": graph_time(start + HOUR),
        "organizer": {"emailAddress": {"address": USER, "name": "Me"}},
        "attendees": list(people) or [jane()],
        **extra,
    }


def weekly(start: datetime, count: int = 4) -> dict[str, Any]:
    return {
        "pattern": {
            "type": "weekly",
            "interval": 1,
            "daysOfWeek": [start.strftime("%A").lower()],
        },
        "range": {
            "type": "numbered",
            "numberOfOccurrences": count,
            "startDate": start.strftime("%Y-%m-%d"),
        },
    }


def verdicts(h: GraphHarness) -> list[tuple[Any, ...]]:
    return [
        (v["verdict"], v["uid"], v["instance"], v["actor"], v["fee"])
        for v in h.records_of("verdict")
    ]


# --- the policy scenario ---------------------------------------------------------------------


def test_late_decline_gives_one_verdict_one_note_and_the_right_fee(h: GraphHarness) -> None:
    """Jane declines 22 h ahead: one late cancellation at 50 % of 120 EUR; one note in the
    notes calendar (made on the first cycle: free, no reminder, no attendees); the meeting
    gets only syncd's extended property."""
    made = h.add(appointment(SOON))
    h.cycle_all()
    h.patch(made["id"], {"attendees": [jane("declined")]})
    h.cycle_all()
    assert verdicts(h) == [("late_cancellation", made["iCalUId"], None, "client", FEE)]
    [verdict] = h.records_of("verdict")
    assert verdict["notice_hours"] == 22.0
    [note] = h.notes()
    assert note["subject"].startswith("Late cancellation")
    assert "Jane Doe" in note["subject"]
    assert (note["showAs"], note["isReminderOn"], note["attendees"]) == ("free", False, [])
    assert set(h.data(made["id"])) == {"X-SYNCD-VERDICT", "X-SYNCD-NOTE"}
    event = h.emu.event(USER, made["id"])
    assert event is not None
    assert (event["subject"], event["body"]["content"]) == ("Coaching", "")
    writes = h.records_of("write")
    assert sorted((w["action"], w["status"]) for w in writes) == [
        ("annotate", "applied"),
        ("annotate", "intended"),
        ("note", "applied"),
        ("note", "intended"),
    ]
    made_calendars = [
        r.body for r in h.wire() if r.method == "POST" and r.path.endswith("/calendars")
    ]
    assert made_calendars == [{"name": "syncd notes"}]
    patches = [r for r in h.wire() if r.method == "PATCH"]
    assert [set(p.body) for p in patches] == [{"singleValueExtendedProperties"}]


def test_an_occurrence_cancelled_by_its_organizer(h: GraphHarness) -> None:
    """Jane organizes a weekly series; she cancels the first occurrence 22 h ahead: on the
    owner's copy it stays with isCancelled and a "Canceled: " subject. One late
    cancellation for that instance, and nothing for the others."""
    h.add(
        appointment(
            SOON,
            attendee(USER, "accepted", "Me"),
            organizer={"emailAddress": {"address": JANE, "name": "Jane Doe"}},
            recurrence=weekly(SOON),
        )
    )
    h.cycle_all()
    first = h.occurrences()[0]
    h.emu.cancel_for_attendee(USER, first["id"])
    h.cycle_all()
    assert [(v[0], v[2]) for v in verdicts(h)] == [("late_cancellation", format_when(SOON))]
    changes = [(c["change"], c["instance"]) for c in h.records_of("change")]
    assert changes == [("cancelled", format_when(SOON))]
    assert len(h.notes()) == 1


def test_a_moved_occurrence_is_judged_as_a_move(h: GraphHarness) -> None:
    """The second occurrence moved by two hours a week ahead (it becomes an exception): one
    timely move verdict for that instance."""
    master = h.add(appointment(SOON, recurrence=weekly(SOON)))
    h.cycle_all()
    second = h.occurrences()[1]
    moved = SOON + timedelta(days=7) + 2 * HOUR
    h.patch(second["id"], {"start": graph_time(moved), "end": graph_time(moved + HOUR)})
    h.cycle_all()
    original = format_when(SOON + timedelta(days=7))
    assert [(v[0], v[1], v[2]) for v in verdicts(h)] == [("move", master["id"], original)]
    [change] = h.records_of("change")
    assert (change["change"], change["start_after"]) == ("moved", format_when(moved))


def test_a_deleted_series_cancels_each_instance_once(h: GraphHarness) -> None:
    """Deleting a series five days ahead cancels its four instances: four timely verdicts,
    four notes."""
    master = h.add(appointment(LATER, recurrence=weekly(LATER)))
    h.cycle_all()
    h.remove(master["id"])
    h.cycle_all()
    starts = [format_when(LATER + timedelta(days=7 * n)) for n in range(4)]
    assert sorted(v[2] for v in verdicts(h)) == starts
    assert {v[0] for v in verdicts(h)} == {"cancellation"}
    assert sorted(c["instance"] for c in h.records_of("change")) == starts
    assert len(h.notes()) == 4


def test_own_writes_are_not_reported_back(h: GraphHarness) -> None:
    """The annotation and the note come back in the next rounds with new change keys and are
    recognised: no change, no verdict, no write; a further quiet cycle costs one request
    per calendar and adds nothing."""
    made = h.add(appointment(SOON))
    h.cycle_all()
    h.patch(made["id"], {"attendees": [jane("declined")]})
    h.cycle_all()
    records = len(h.audit())
    reports = {name: h.engine.cycle(name) for name in cycled_calendars(h.config)}
    assert reports["work"].read == 1  # the annotated event, listed with its new change key
    assert all(not r.changes and not r.verdicts for r in reports.values())
    assert len(h.audit()) == records
    h.emu.clear_requests()
    h.cycle_all()
    assert len(h.audit()) == records
    assert len(h.wire()) == len(cycled_calendars(h.config))


# --- what Graph adds --------------------------------------------------------------------------


def test_an_expired_delta_link_resyncs_without_false_cancellations(h: GraphHarness) -> None:
    """Graph forgets the delta tokens (410): one resync record per calendar, the new round is
    merged, only the real change is reported, and the next cycle is incremental again."""
    a = h.add(appointment(LATER))
    h.add(appointment(LATER + 3 * HOUR))
    h.cycle_all()
    h.emu.expire_delta_tokens()
    c = h.add(appointment(LATER + 5 * HOUR))
    h.cycle_all()
    assert sorted(r["calendar"] for r in h.records_of("resync")) == ["notes", "work"]
    assert [(x["change"], x["uid"]) for x in h.records_of("change")] == [("created", c["iCalUId"])]
    assert h.records_of("verdict") == []
    assert a["id"] in h.engine.store.known_etags("work")
    records = len(h.audit())
    h.cycle_all()
    assert len(h.audit()) == records


def test_a_delta_link_expiring_in_the_middle_of_a_round(h: GraphHarness) -> None:
    """The tokens expire between two pages of an incremental round: the cycle resyncs once and
    reports only the real changes."""
    for n in range(5):
        h.add(appointment(LATER + n * 2 * HOUR))
    h.cycle_all()
    moved = h.add(appointment(LATER + 20 * HOUR))
    h.add(appointment(LATER + 22 * HOUR))
    work = h.connector("work")
    work.graph.page_size = 1
    real_page = work.graph.page
    served: list[str] = []

    def expiring(operation: str, url: str) -> Any:
        served.append(url)
        if len(served) == 2:
            h.emu.expire_delta_tokens()
        return real_page(operation, url)

    work.graph.page = expiring  # type: ignore[method-assign]
    h.engine.cycle("work")
    assert [r["calendar"] for r in h.records_of("resync")] == ["work"]
    assert sorted(c["change"] for c in h.records_of("change")) == ["created", "created"]
    assert moved["id"] in h.engine.store.known_etags("work")


def test_a_change_outside_the_window_changes_nothing(h: GraphHarness) -> None:
    """An event created two years ahead arrives as @removed of an unknown id: no record, and
    the id is not even fetched."""
    h.add(appointment(SOON))
    h.cycle_all()
    records = len(h.audit())
    h.add(appointment(SOON + timedelta(days=730)))
    h.emu.clear_requests()
    h.engine.cycle("work")
    assert len(h.audit()) == records
    assert [r.path.rsplit("/", 1)[-1] for r in h.wire()] == ["delta"]


def test_a_replayed_page_gives_no_duplicate_change(h: GraphHarness) -> None:
    """Graph serves a page twice: each change is reported once."""
    made = [h.add(appointment(LATER + n * 2 * HOUR)) for n in range(5)]
    h.cycle_all()
    h.connector("work").graph.page_size = 2
    for n, event in enumerate(made[:3]):
        later = LATER + timedelta(days=1, hours=2 * n)
        h.patch(event["id"], {"start": graph_time(later), "end": graph_time(later + HOUR)})
    h.emu.replay_next_page()
    h.engine.cycle("work")
    changes = [(c["change"], c["uid"]) for c in h.records_of("change")]
    assert sorted(changes) == sorted(("moved", e["iCalUId"]) for e in made[:3])


def test_a_412_during_the_annotation_keeps_the_users_edit(h: GraphHarness) -> None:
    """The owner edits the meeting between syncd's read and its PATCH: Graph answers 412,
    syncd reads again and re-applies; the edit and the annotation are both there."""
    made = h.add(appointment(SOON))
    h.cycle_all()
    h.patch(made["id"], {"attendees": [jane("declined")]})
    work = h.connector("work")
    real_update = work.graph.update_event
    calls: list[str] = []

    def racing(event_id: str, patch: Any, change_key: str) -> Any:
        calls.append(event_id)
        if len(calls) == 1:
            h.patch(made["id"], {"location": {"displayName": "Room 4"}})
        return real_update(event_id, patch, change_key)

    work.graph.update_event = racing  # type: ignore[method-assign]
    h.cycle_all()
    assert calls == [made["id"], made["id"]]
    assert [r.status for r in h.wire() if r.method == "PATCH"] == [412, 200]
    event = h.emu.event(USER, made["id"])
    assert event is not None
    assert event["location"]["displayName"] == "Room 4"
    assert h.data(made["id"])["X-SYNCD-VERDICT"] == "late_cancellation"
    annotations = [w["status"] for w in h.records_of("write") if w["action"] == "annotate"]
    assert annotations == ["intended", "applied"]


def test_a_create_whose_answer_was_lost_is_not_made_twice(h: GraphHarness) -> None:
    """The note's POST succeeded but syncd never saw the answer: the next drain finds the note
    by its href and counts it as done; one note."""
    made = h.add(appointment(SOON))
    h.cycle_all()
    h.patch(made["id"], {"attendees": [jane("declined")]})
    notes = h.connector("notes")
    real_create = notes.graph.create_event
    lost: list[str] = []

    def answer_lost(calendar_id: str, body: Any) -> Any:
        real_create(calendar_id, body)
        if not lost:
            lost.append(body["transactionId"])
            notes.names = type(notes.names)()  # the process died: nothing remembered
            raise TransientError("notes", "the connection broke before the answer")
        return real_create(calendar_id, body)

    notes.graph.create_event = answer_lost  # type: ignore[method-assign]
    h.cycle_all()
    h.cycle_all()
    assert len(lost) == 1
    assert len(h.notes()) == 1
    statuses = [w["status"] for w in h.records_of("write") if w["action"] == "note"]
    assert statuses == ["intended", "failed", "applied"]


def test_the_window_slides_with_the_clock(h: GraphHarness) -> None:
    """Fifteen days on, the horizon passes the round's window: a new round is merged, the
    event that fell out of the past is dropped silently, one that came into the window is
    held, and nothing is reported cancelled or created."""
    past = h.add(appointment(h.now - timedelta(days=29), subject="past"))
    near = h.add(appointment(SOON))
    beyond = h.add(appointment(h.now + timedelta(days=200)))
    h.cycle_all()
    held = h.engine.store.known_etags("work")
    assert {past["id"], near["id"]} <= set(held)
    assert beyond["id"] not in held
    h.advance(timedelta(days=7))
    h.emu.clear_requests()
    h.cycle_all()
    assert all(r.path.endswith("/delta") for r in h.wire())  # still the same round
    h.advance(timedelta(days=8))
    h.cycle_all()
    held = h.engine.store.known_etags("work")
    assert beyond["id"] in held
    assert past["id"] not in held
    assert near["id"] in held
    assert h.records_of("change") == []
    assert h.records_of("resync") == []


# --- the readiness check sees Teams links ---------------------------------------------------


def test_a_teams_link_counts_for_the_readiness_check(h: GraphHarness) -> None:
    """A remote meeting made as a Teams meeting (Graph holds its join link in
    ``onlineMeeting``) is ready; the same meeting without one gets a readiness note."""
    h.add(appointment(LATER))
    h.cycle_all()  # the baseline: the calendar's first cycle
    teams = {"isOnlineMeeting": True, "onlineMeetingProvider": "teamsForBusiness"}
    h.add(appointment(SOON, subject="[remote] Coaching", **teams))
    h.add(appointment(SOON + HOUR, subject="[remote] Coaching"))
    h.cycle_all()
    [note] = h.notes()
    assert note["subject"].startswith("Meeting link missing")
    assert note["start"]["dateTime"].startswith(format_when(SOON + HOUR)[:19])
