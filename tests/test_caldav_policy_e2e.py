"""The policy end to end on Radicale: a work calendar and a notes calendar, both CalDAV.

The same scenario as :mod:`tests.test_policy_e2e` (which runs it on local folders), with the
changes made by another HTTP client, the notes calendar found by display name and made with
MKCALENDAR on the first cycle, and syncd's writes going through conditional PUTs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from icalendar import Calendar

from connectors.caldav import CalDAVConnector
from syncd.annotate import private_properties
from syncd.app import cycled_calendars
from syncd.model import format_when
from tests.harness import CONFIG, Harness
from tests.ical import calendar, event, stamp
from tests.radicale_server import PASSWORD, USER, HTTPOutside, Radicale, radicale
from tests.test_policy_e2e import HOUR, JANE, JANE_DECLINED, LATER, POLICY, SOON

_LOCAL_NOTES = '[[calendars]]\nname = "notes"\nconnector = "local"\npath = "notes"\n'
FEE = {"amount": "60.00", "currency": "EUR"}


def config_text(work_url: str, server: Radicale, notes_name: str) -> str:
    calendars = "".join(
        f'[[calendars]]\nname = "{name}"\nconnector = "caldav"\n{where}'
        f'username = "{USER}"\npassword_file = "secret"\n'
        for name, where in (
            ("work", f'url = "{work_url}"\n'),
            ("notes", f'url = "{server.base}/{USER}/"\ncalendar = "{notes_name}"\n'),
        )
    )
    assert _LOCAL_NOTES in POLICY
    return CONFIG.split("[owner]")[0] + POLICY.replace(_LOCAL_NOTES, calendars)


class CalDAVHarness(Harness):
    """The engine on two Radicale calendars; ``put`` and ``remove`` act as another client."""

    def __init__(self, root: Path, server: Radicale) -> None:
        self.server = server
        self.work_url = server.new_calendar("Work")
        self.work = HTTPOutside(server, self.work_url)
        secret = root / "secret"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        notes = f"syncd notes {uuid.uuid4().hex[:8]}"
        super().__init__(root, config_text(self.work_url, server, notes))

    def put(self, name: str, data: bytes) -> None:
        self.work.put(name, data)

    def remove(self, name: str) -> None:
        self.work.remove(name)

    def cycle_all(self) -> None:
        for name in cycled_calendars(self.config):
            self.engine.cycle(name)

    def connector(self, name: str) -> CalDAVConnector:
        found = self.engine.connectors[name]
        assert isinstance(found, CalDAVConnector)
        return found

    def notes(self) -> list[Calendar]:
        """The notes in the notes collection, as the server holds them."""
        url = self.connector("notes").finder.url(may_create=False)
        outside = HTTPOutside(self.server, url)
        return [Calendar.from_ical(outside.get(h)) for h in outside.hrefs()]

    def records_of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.audit() if r["type"] == kind]


@pytest.fixture
def h(tmp_path: Path) -> Iterator[CalDAVHarness]:
    harness = CalDAVHarness(tmp_path, radicale())
    yield harness
    harness.close()


def appointment(uid: str, start: datetime, *extra: str) -> bytes:
    return calendar(
        event(
            uid, start, start + HOUR, "ORGANIZER:mailto:me@example.com", *extra, summary="Coaching"
        )
    )


def series(uid: str, start: datetime, *extra: str, overrides: tuple[str, ...] = ()) -> bytes:
    """A weekly series of four with Jane, plus override VEVENTs."""
    master = event(
        uid,
        start,
        start + HOUR,
        "ORGANIZER:mailto:me@example.com",
        JANE,
        "RRULE:FREQ=WEEKLY;COUNT=4",
        *extra,
        summary="Coaching",
    )
    return calendar(master, *overrides)


def override(uid: str, original: datetime, start: datetime, *extra: str) -> str:
    return event(
        uid,
        start,
        start + HOUR,
        f"RECURRENCE-ID:{stamp(original)}",
        "ORGANIZER:mailto:me@example.com",
        *extra,
        summary="Coaching",
    )


def verdicts(h: CalDAVHarness) -> list[tuple[Any, ...]]:
    return [
        (v["verdict"], v["uid"], v["instance"], v["actor"], v["fee"])
        for v in h.records_of("verdict")
    ]


def test_late_decline_gives_one_verdict_one_note_and_the_right_fee(h: CalDAVHarness) -> None:
    """Jane declines 22 h ahead: one late cancellation at 50 % of 120 EUR, one note in the
    notes collection (made on the first cycle), the event annotated without a new SEQUENCE."""
    h.put("a.ics", appointment("a", SOON, JANE, "SEQUENCE:3"))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED, "SEQUENCE:3"))
    h.cycle_all()
    assert verdicts(h) == [("late_cancellation", "a", None, "client", FEE)]
    [verdict] = h.records_of("verdict")
    assert verdict["notice_hours"] == 22.0
    [note] = h.notes()
    summary = str(next(iter(note.walk("VEVENT")))["SUMMARY"])
    assert summary.startswith("Late cancellation")
    assert "Jane Doe" in summary
    annotated = h.work.get("a.ics")
    assert set(private_properties(annotated)) == {"X-SYNCD-VERDICT", "X-SYNCD-NOTE"}
    assert b"SEQUENCE:3\r\n" in annotated
    writes = h.records_of("write")
    assert sorted((w["action"], w["status"]) for w in writes) == [
        ("annotate", "applied"),
        ("annotate", "intended"),
        ("note", "applied"),
        ("note", "intended"),
    ]


def test_late_cancellation_of_one_instance_of_a_series(h: CalDAVHarness) -> None:
    """One occurrence cancelled by an override 22 h ahead: one verdict, for that instance."""
    h.put("s.ics", series("s", SOON))
    h.cycle_all()
    cancelled = override("s", SOON, SOON, JANE_DECLINED, "STATUS:CANCELLED")
    h.put("s.ics", series("s", SOON, overrides=(cancelled,)))
    h.cycle_all()
    assert verdicts(h) == [("late_cancellation", "s", format_when(SOON), "client", FEE)]
    assert len(h.notes()) == 1
    changes = [(c["change"], c["instance"]) for c in h.records_of("change")]
    assert ("cancelled", format_when(SOON)) in changes
    assert {i for _c, i in changes} == {format_when(SOON)}


def test_moved_instance_is_judged_as_a_move(h: CalDAVHarness) -> None:
    """The second occurrence moved by two hours a week ahead: one timely move verdict."""
    second = SOON + timedelta(days=7)
    h.put("s.ics", series("s", SOON))
    h.cycle_all()
    moved = override("s", second, second + 2 * HOUR, JANE)
    h.put("s.ics", series("s", SOON, overrides=(moved,)))
    h.cycle_all()
    assert [(v[0], v[2]) for v in verdicts(h)] == [("move", format_when(second))]
    [change] = h.records_of("change")
    assert (change["change"], change["start_after"]) == (
        "moved",
        format_when(second + 2 * HOUR),
    )


def test_deleted_series_cancels_each_instance_once(h: CalDAVHarness) -> None:
    """Deleting a series five days ahead cancels its four instances: four timely verdicts."""
    h.put("s.ics", series("s", LATER))
    h.cycle_all()
    h.remove("s.ics")
    h.cycle_all()
    starts = [format_when(LATER + timedelta(days=7 * n)) for n in range(4)]
    assert sorted(v[2] for v in verdicts(h)) == starts
    assert {v[0] for v in verdicts(h)} == {"cancellation"}
    assert sorted(c["instance"] for c in h.records_of("change")) == starts
    assert len(h.notes()) == 4


def test_expired_token_resyncs_without_false_cancellations(h: CalDAVHarness) -> None:
    """Radicale forgets its sync tokens: one resync record, the full listing is merged, only
    the real change is reported, and the next poll is incremental again."""
    h.put("a.ics", appointment("a", LATER, JANE))
    h.put("b.ics", appointment("b", LATER + 3 * HOUR, JANE))
    h.cycle_all()
    h.server.forget_sync_tokens(h.work_url)
    h.put("c.ics", appointment("c", LATER + 5 * HOUR, JANE))
    h.cycle_all()
    assert [r["calendar"] for r in h.records_of("resync")] == ["work"]
    assert [(c["change"], c["uid"]) for c in h.records_of("change")] == [("created", "c")]
    assert h.records_of("verdict") == []
    records = len(h.audit())
    h.cycle_all()
    assert len(h.audit()) == records


def test_conflicting_edit_during_the_annotation_is_kept(h: CalDAVHarness) -> None:
    """The user edits the event between syncd's read and its PUT: the PUT gets 412, syncd
    reads again and re-applies, and the user's edit survives next to the annotation."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    declined = appointment("a", SOON, JANE_DECLINED)
    h.put("a.ics", declined)
    work = h.connector("work")
    real_update = work.update
    calls: list[str] = []

    def racing_update(href: str, data: bytes, etag: str) -> str:
        calls.append(href)
        if len(calls) == 1:
            h.put("a.ics", declined.replace(b"SUMMARY:Coaching", b"SUMMARY:Coaching (room 4)"))
        return real_update(href, data, etag)

    work.update = racing_update  # type: ignore[method-assign]
    h.cycle_all()
    assert calls == ["a.ics", "a.ics"]
    final = h.work.get("a.ics")
    assert b"SUMMARY:Coaching (room 4)" in final
    assert "X-SYNCD-VERDICT" in private_properties(final)
    annotations = [w for w in h.records_of("write") if w["action"] == "annotate"]
    assert [w["status"] for w in annotations] == ["intended", "applied"]


def test_own_writes_are_not_reported_back(h: CalDAVHarness) -> None:
    """The annotation and the note come back in the next listings with new etags and are
    recognised: no change, no verdict, no write; a further quiet cycle adds nothing."""
    h.put("a.ics", appointment("a", SOON, JANE))
    h.cycle_all()
    h.put("a.ics", appointment("a", SOON, JANE_DECLINED))
    h.cycle_all()
    records = len(h.audit())
    reports = {name: h.engine.cycle(name) for name in cycled_calendars(h.config)}
    assert reports["work"].read == 1  # the annotated event, listed with its new etag
    assert all(not r.changes and not r.verdicts for r in reports.values())
    assert len(h.audit()) == records
    h.cycle_all()
    assert len(h.audit()) == records
