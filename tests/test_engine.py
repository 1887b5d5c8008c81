"""One cycle end to end on a local folder: detection, audit records, isolation, atomicity."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from syncd.audit import verify
from syncd.connector import Delta
from syncd.errors import AuditError
from tests.harness import NOW, Harness
from tests.ical import calendar, event

T = datetime(2026, 12, 2, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
CLIENT = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jane@example.com"
OWNER = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:me@example.com"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def single(uid: str = "a", start: datetime = T, *extra: str) -> bytes:
    return calendar(event(uid, start, start + HOUR, CLIENT, OWNER, *extra))


def weekly(
    uid: str = "s", *extra: str, start: datetime = T, overrides: tuple[str, ...] = ()
) -> bytes:
    return calendar(
        event(uid, start, start + HOUR, CLIENT, "RRULE:FREQ=WEEKLY;COUNT=6", *extra), *overrides
    )


def baseline(h: Harness, **files: bytes) -> None:
    for name, data in files.items():
        h.put(f"{name}.ics", data)
    h.cycle()


def test_first_cycle_writes_one_baseline_record(h: Harness) -> None:
    """The first cycle records the instance count, not a `created` per event."""
    h.put("a.ics", single())
    h.put("s.ics", weekly())
    report = h.cycle()
    assert report.baseline
    assert report.instance_count == 7
    assert [(r["type"], r.get("instances")) for r in h.audit()] == [("baseline", 7)]


def test_quiet_rerun_writes_nothing(h: Harness) -> None:
    """A cycle that finds nothing writes no audit record."""
    baseline(h, a=single(), s=weekly())
    before = len(h.audit())
    assert h.cycle().changes == ()
    assert len(h.audit()) == before


def test_change_record_carries_the_contract_fields(h: Harness) -> None:
    """A change record has type, change, calendar, uid, instance, starts, changed_at, clients."""
    baseline(h, a=single())
    h.put("a.ics", single("a", T + 2 * HOUR))
    h.cycle()
    record = [r for r in h.audit() if r["type"] == "change"][-1]
    assert {
        k: record[k]
        for k in (
            "type",
            "change",
            "calendar",
            "uid",
            "instance",
            "start_before",
            "start_after",
            "changed_at",
            "clients",
        )
    } == {
        "type": "change",
        "change": "moved",
        "calendar": "work",
        "uid": "a",
        "instance": None,
        "start_before": "2026-12-02T10:00:00Z",
        "start_after": "2026-12-02T12:00:00Z",
        "changed_at": "2026-11-27T09:00:00Z",
        "clients": ["jane@example.com"],
    }


def test_changed_at_is_the_providers_modification_time(h: Harness) -> None:
    """LAST-MODIFIED, when present, is the time of the change."""
    baseline(h, a=single())
    h.put("a.ics", single("a", T, "STATUS:CANCELLED", "LAST-MODIFIED:20261126T080000Z"))
    h.cycle()
    [record] = [r for r in h.audit() if r["type"] == "change"]
    assert record["changed_at"] == "2026-11-26T08:00:00Z"


@pytest.mark.parametrize(
    ("edit", "kind"),
    [
        (single("a", T, "STATUS:CANCELLED"), "cancelled"),
        (single("a", T + HOUR), "moved"),
        (calendar(event("a", T, T + 2 * HOUR, CLIENT, OWNER)), "moved"),
        (
            calendar(event("a", T, T + HOUR, CLIENT.replace("ACCEPTED", "DECLINED"), OWNER)),
            "response_changed",
        ),
        (single("a", T, "CATEGORIES:no-show"), "tags_changed"),
        (calendar(event("a", T, T + HOUR, CLIENT, OWNER, summary="Renamed")), "edited"),
        (single("a", T, "LOCATION:Room 2"), "edited"),
    ],
)
def test_single_event_changes_are_typed(h: Harness, edit: bytes, kind: str) -> None:
    """Each kind of edit to a single event is reported as its kind, once."""
    baseline(h, a=single())
    h.put("a.ics", edit)
    h.cycle()
    assert list(h.changes()) == [(kind, "a", None)]


def test_created_and_deleted_files(h: Harness) -> None:
    """A new file is `created`; a deleted file is `cancelled`."""
    baseline(h, a=single())
    h.put("b.ics", single("b"))
    h.remove("a.ics")
    h.cycle()
    assert sorted(h.changes()) == [("cancelled", "a", None), ("created", "b", None)]


def test_x_syncd_properties_are_not_user_changes(h: Harness) -> None:
    """syncd's own private properties never count as a change."""
    baseline(h, a=single(), s=weekly())
    h.put("a.ics", single("a", T, "X-SYNCD-VERDICT:late_cancellation"))
    h.put("s.ics", weekly("s", "X-SYNCD-NOTE:abc"))
    assert h.cycle().changes == ()
    assert [r["type"] for r in h.audit()] == ["baseline"]


def test_touched_file_is_not_parsed_again(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose mtime moved but whose bytes did not is not normalized again."""
    baseline(h, a=single())
    h.put("a.ics", single())
    calls: list[bytes] = []
    import syncd.engine as engine_module

    real = engine_module.normalize_object
    monkeypatch.setattr(
        engine_module, "normalize_object", lambda data, **kw: calls.append(data) or real(data, **kw)
    )
    assert h.cycle().changes == ()
    assert calls == []
    assert h.cycle().read == 0  # the new etag was stored


def test_exdate_cancels_one_instance(h: Harness) -> None:
    """Adding an EXDATE cancels that occurrence only."""
    baseline(h, s=weekly())
    h.put("s.ics", weekly("s", "EXDATE:20261209T100000Z"))
    h.cycle()
    assert list(h.changes()) == [("cancelled", "s", "2026-12-09T10:00:00Z")]


def test_cancelled_override_cancels_one_instance(h: Harness) -> None:
    """A STATUS:CANCELLED override is a cancelled instance."""
    baseline(h, s=weekly())
    override = event(
        "s",
        T + timedelta(days=14),
        T + timedelta(days=14) + HOUR,
        CLIENT,
        "RECURRENCE-ID:20261216T100000Z",
        "STATUS:CANCELLED",
    )
    h.put("s.ics", weekly(overrides=(override,)))
    h.cycle()
    assert list(h.changes()) == [("cancelled", "s", "2026-12-16T10:00:00Z")]


def test_moved_override_is_a_move_of_that_instance(h: Harness) -> None:
    """An override with a new start moves the instance keyed by its original start."""
    baseline(h, s=weekly())
    moved = T + timedelta(days=7, hours=4)
    override = event("s", moved, moved + HOUR, CLIENT, "RECURRENCE-ID:20261209T100000Z")
    h.put("s.ics", weekly(overrides=(override,)))
    report = h.cycle()
    assert list(h.changes()) == [("moved", "s", "2026-12-09T10:00:00Z")]
    assert report.changes[0].start_after == moved


def test_series_wide_time_change_moves_each_instance(h: Harness) -> None:
    """Moving the master's DTSTART moves every occurrence, not cancel-and-create."""
    baseline(h, s=weekly())
    h.put("s.ics", weekly(start=T + 2 * HOUR))
    h.cycle()
    changes = list(h.changes())
    assert {c[0] for c in changes} == {"moved"}
    assert len(changes) == 6


def test_deleted_series_cancels_each_instance_in_the_horizon(h: Harness) -> None:
    """Deleting a series file cancels each of its instances."""
    baseline(h, s=weekly())
    h.remove("s.ics")
    h.cycle()
    assert [c[0] for c in h.changes()] == ["cancelled"] * 6


def test_all_day_events_stay_dates(h: Harness) -> None:
    """An all-day event's instance keeps dates; moving it by a day is reported as a move."""
    day = date(2026, 12, 5)
    baseline(h, d=calendar(event("d", day, day + timedelta(days=1), CLIENT)))
    h.put("d.ics", calendar(event("d", day + timedelta(days=1), day + timedelta(days=2), CLIENT)))
    h.cycle()
    record = [r for r in h.audit() if r["type"] == "change"][-1]
    assert (record["change"], record["start_before"], record["start_after"]) == (
        "moved",
        "2026-12-05",
        "2026-12-06",
    )


def test_malformed_file_is_isolated_reported_once_and_retried(h: Harness) -> None:
    """A broken file is named in the audit log once, skipped, and read again when it changes."""
    baseline(h, a=single())
    h.put("bad.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n")
    h.put("b.ics", single("b"))
    report = h.cycle()
    assert [e.href for e in report.new_errors] == ["bad.ics"]
    errors = [r for r in h.audit() if r["type"] == "item_error"]
    assert [(r["href"], r["calendar"]) for r in errors] == [("bad.ics", "work")]
    assert list(h.changes()) == [("created", "b", None)]
    assert h.cycle().new_errors == ()  # not reported again while unchanged
    h.put("bad.ics", single("fixed"))
    h.cycle()
    assert ("created", "fixed", None) in list(h.changes())


def test_a_good_file_turned_bad_keeps_its_instances(h: Harness) -> None:
    """A file that becomes unreadable is not a cancellation: its last good state is kept."""
    baseline(h, a=single())
    h.put("a.ics", b"not a calendar")
    report = h.cycle()
    assert report.changes == ()
    assert report.instance_count == 1
    h.put("a.ics", single("a", T + HOUR))
    h.cycle()
    assert list(h.changes()) == [("moved", "a", None)]


def test_audit_failure_commits_nothing(h: Harness) -> None:
    """If the audit log cannot be written the cycle fails and the change is found again later."""
    baseline(h, a=single())
    h.remove("a.ics")

    log = h.config.audit_path
    log.rename(log.with_suffix(".saved"))
    log.mkdir()  # appending to a folder fails like a full or read-only disk would
    with pytest.raises(AuditError):
        h.cycle()
    assert h.engine.store.calendar_state("work").instance_count == 1
    log.rmdir()
    log.with_suffix(".saved").rename(log)
    h.cycle()
    assert list(h.changes()) == [("cancelled", "a", None)]


def test_horizon_moving_reports_nothing(h: Harness) -> None:
    """As days pass, occurrences enter and leave the horizon without being reported."""
    long_series = calendar(
        event(
            "s",
            NOW - timedelta(days=60),
            NOW - timedelta(days=60) + HOUR,
            CLIENT,
            "RRULE:FREQ=DAILY;COUNT=400",
        )
    )
    baseline(h, s=long_series)
    first = h.engine.store.calendar_state("work").instance_count
    h.advance(timedelta(days=10))
    report = h.cycle()
    assert report.changes == ()
    assert report.instance_count == first  # ten days in, ten days out
    h.put("s.ics", long_series.replace(b"COUNT=400", b"COUNT=400\r\nEXDATE:20270101T090000Z"))
    h.cycle()
    assert list(h.changes()) == [("cancelled", "s", "2027-01-01T09:00:00Z")]


def test_instances_outside_the_horizon_are_not_reported(h: Harness) -> None:
    """An event far beyond the horizon is kept but its changes are not reported."""
    far = NOW + timedelta(days=400)
    baseline(h, far=single("far", far))
    h.put("far.ics", single("far", far + HOUR))
    assert h.cycle().changes == ()


class VanishingOnce:
    """Wraps a connector; its first listing pretends that every object vanished."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0
        self.horizons: list[object] = []

    def list_changes(
        self, cursor: str | None, known: Mapping[str, str], *, horizon: object = None
    ) -> Delta:
        self.calls += 1
        self.horizons.append(horizon)
        delta = self.inner.list_changes(cursor, known)  # type: ignore[attr-defined]
        if self.calls == 1:
            return Delta(upserts=[], removed=sorted(known), cursor=delta.cursor, full=False)
        return delta

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_mass_vanishing_is_confirmed_before_cancelling(h: Harness) -> None:
    """A listing that loses most objects is checked by a second listing: no false wave."""
    for i in range(12):
        h.put(f"e{i}.ics", single(f"e{i}", T + i * HOUR))
    h.cycle()
    flaky = VanishingOnce(h.engine.connectors["work"])
    h.engine.connectors = {"work": flaky}  # type: ignore[dict-item]
    report = h.cycle()
    assert flaky.calls == 2
    assert report.changes == ()
    assert report.instance_count == 12
    # Both listings cover the core's horizon (Graph lists a window, not a whole calendar).
    midnight = NOW.replace(hour=0)
    span = (midnight - timedelta(days=30), midnight + timedelta(days=181))
    assert flaky.horizons == [span] * 2


def test_really_emptied_calendar_is_cancelled_after_confirmation(h: Harness) -> None:
    """When the second listing agrees, the removals are real and reported."""
    for i in range(12):
        h.put(f"e{i}.ics", single(f"e{i}", T + i * HOUR))
    h.cycle()
    for i in range(12):
        h.remove(f"e{i}.ics")
    assert len(h.cycle().changes) == 12


def test_audit_log_verifies_after_cycles(h: Harness) -> None:
    """The log written by cycles verifies against the store's anchor."""
    baseline(h, a=single(), s=weekly())
    h.remove("a.ics")
    h.cycle()
    result = verify(h.config.audit_path, h.engine.store.audit_anchor())
    assert result.ok
    assert result.records == len(h.audit()) >= 2


def test_state_survives_a_restart(h: Harness) -> None:
    """After reopening, the stored snapshot and cursor continue where they were."""
    baseline(h, a=single())
    h.reopen()
    assert h.cycle().changes == ()
    h.remove("a.ics")
    h.reopen()
    assert [c.kind.value for c in h.cycle().changes] == ["cancelled"]


def test_notes_calendar_is_never_watched(tmp_path: Path) -> None:
    """Events in the notes calendar (syncd's own) produce no records; the other calendar does."""
    from syncd.cli import main
    from tests.harness import CONFIG

    text = CONFIG + '[[calendars]]\nname = "notes"\nconnector = "local"\npath = "notes"\n'
    (tmp_path / "syncd.toml").write_text(text + '[notes]\ncalendar = "notes"\n')
    for folder in ("cal", "notes"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.ics").write_bytes(single("x"))
    assert main(["once", "--config", str(tmp_path / "syncd.toml")]) == 0
    (tmp_path / "notes" / "x.ics").unlink()
    assert main(["once", "--config", str(tmp_path / "syncd.toml")]) == 0
    lines = (tmp_path / "var" / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["calendar"] for line in lines] == ["work"]


@pytest.mark.parametrize(
    "body",
    [
        "DTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\nRRULE:FREQ=MONTHLY;BYDAY=9MO",
        "DTSTART;VALUE=DATE:99991231",
        "DTSTART:20261202T100000Z\r\nDTEND:20261202T110000Z\r\nRRULE:FREQ=DAILY;INTERVAL=0",
        "DTSTART:99991231T235959Z\r\nDURATION:PT2H",
        "DTSTART;TZID=Asia/Tokyo:00010101T000000\r\nDTEND;TZID=Asia/Tokyo:00010101T010000",
    ],
    ids=["byday-out-of-range", "year-9999-date", "interval-zero", "overflow-end", "year-1"],
)
def test_pathological_file_is_an_item_error_not_a_crash(h: Harness, body: str) -> None:
    """Inputs that break the libraries are reported by name; the other files keep working."""
    baseline(h, a=single())
    bad = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:bad\r\n"
        f"{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    h.put("bad.ics", bad.encode())
    h.put("b.ics", single("b"))
    report = h.cycle()
    assert [e.href for e in report.new_errors] == ["bad.ics"]
    assert [(c.kind.value, c.uid) for c in report.changes] == [("created", "b")]


def test_override_moved_out_of_the_horizon_is_a_move(h: Harness) -> None:
    """An occurrence near the horizon's end moved beyond it is reported as moved, not as
    cancelled, and nothing is reported later when days pass."""
    end = NOW + timedelta(days=170)  # the horizon reaches 180 days ahead
    series = calendar(event("s", end, end + HOUR, CLIENT, "RRULE:FREQ=WEEKLY;COUNT=3"))
    baseline(h, s=series)
    moved = end + timedelta(days=7 + 21)  # the second occurrence, moved four weeks on
    override = event(
        "s",
        moved,
        moved + HOUR,
        CLIENT,
        "RECURRENCE-ID:" + (end + timedelta(days=7)).strftime("%Y%m%dT%H%M%SZ"),
    )
    h.put("s.ics", series.replace(b"END:VCALENDAR", override.encode() + b"END:VCALENDAR"))
    report = h.cycle()
    assert [(c.kind.value, c.start_after) for c in report.changes] == [("moved", moved)]
    for _ in range(4):
        h.advance(timedelta(days=3))
        assert h.cycle().changes == ()


def test_a_copied_file_is_not_a_new_appointment(h: Harness) -> None:
    """Copying an event's file (same UID) creates nothing; removing the copy cancels nothing."""
    baseline(h, a=single())
    h.put("copy.ics", single())
    assert h.cycle().changes == ()
    h.remove("copy.ics")
    assert h.cycle().changes == ()


def test_a_uid_moved_between_files_in_two_steps_is_quiet(h: Harness) -> None:
    """A UID first added to a second file, then removed from the first, is no change."""
    both = calendar(event("x", T, T + HOUR, CLIENT), event("y", T + HOUR, T + 2 * HOUR, CLIENT))
    baseline(h, xy=both)
    h.put("y.ics", calendar(event("y", T + HOUR, T + 2 * HOUR, CLIENT)))
    assert h.cycle().changes == ()
    h.put("xy.ics", calendar(event("x", T, T + HOUR, CLIENT)))
    assert h.cycle().changes == ()


def test_clients_include_an_organizer_who_is_not_the_owner(h: Harness) -> None:
    """A client who organized the event is among the change record's clients."""
    organized = calendar(event("o", T, T + HOUR, "ORGANIZER:mailto:jane@example.com", OWNER))
    baseline(h, o=organized)
    h.remove("o.ics")
    h.cycle()
    [record] = [r for r in h.audit() if r["type"] == "change"]
    assert record["clients"] == ["jane@example.com"]


def test_file_broken_since_the_baseline_joins_it_when_fixed(h: Harness) -> None:
    """An appointment unreadable at the first cycle is not 'created' once it is fixed."""
    h.put("bad.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n")
    h.put("a.ics", single())
    h.cycle()
    h.put("bad.ics", single("fixed"))
    report = h.cycle()
    assert report.changes == ()
    assert report.instance_count == 2
    h.remove("bad.ics")
    assert [c.kind.value for c in h.cycle().changes] == ["cancelled"]


class FailingOnce:
    """Wraps a connector; its first listing reports one object as unreadable."""

    def __init__(self, inner: object, *, lasting: bool = False) -> None:
        self.inner = inner
        self.lasting = lasting
        self.calls = 0
        self.cursors: list[str | None] = []

    def list_changes(
        self, cursor: str | None, known: Mapping[str, str], *, horizon: object = None
    ) -> Delta:
        from syncd.connector import ItemFailure

        self.calls += 1
        self.cursors.append(cursor)
        delta = self.inner.list_changes(cursor, known)  # type: ignore[attr-defined]
        if self.calls > 1:
            return delta
        bad = [o for o in delta.upserts if o.href == "a.ics"]
        return Delta(
            upserts=[o for o in delta.upserts if o.href != "a.ics"],
            removed=delta.removed,
            cursor="advanced-past-a",
            full=delta.full,
            failures=[ItemFailure(o.href, o.etag, "unreadable", self.lasting) for o in bad],
        )

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_listing_with_failures_keeps_the_previous_cursor(h: Harness) -> None:
    """An item that could not be fetched is offered again: the cursor does not move past it."""
    baseline(h, a=single(), b=single("b"))
    before = h.engine.store.calendar_state("work").cursor
    h.put("a.ics", single("a", T + HOUR))
    failing = FailingOnce(h.engine.connectors["work"])
    h.engine.connectors = {"work": failing}  # type: ignore[dict-item]
    h.cycle()
    assert h.engine.store.calendar_state("work").cursor == before
    h.cycle()
    assert failing.cursors == [before, before]  # the next listing starts where this one did


def test_a_malformed_item_does_not_hold_the_cursor_back(h: Harness) -> None:
    """An item whose content is malformed is an item error and the cursor moves on: the feed
    offers it again when its etag changes (otherwise every poll would be a full listing)."""
    baseline(h, a=single(), b=single("b"))
    h.put("a.ics", single("a", T + HOUR))
    failing = FailingOnce(h.engine.connectors["work"], lasting=True)
    h.engine.connectors = {"work": failing}  # type: ignore[dict-item]
    report = h.cycle()
    assert h.engine.store.calendar_state("work").cursor == "advanced-past-a"
    assert [e.href for e in report.new_errors] == ["a.ics"]
