"""Property: random edits to a calendar folder are detected exactly, and a quiet rerun is quiet.

The model below knows each event (single, all-day or weekly series in one of several zones,
with EXDATEs and overrides); each round applies random edits to distinct events, computes the
changes they must cause, runs a real cycle and compares.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import Harness
from tests.ical import calendar, stamp

OWNER_ZONE = "Europe/Berlin"
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", None]  # None: floating
Expected = set[tuple[str, str, str | None]]


@dataclass
class Ev:
    """One event of the model calendar."""

    uid: str
    kind: str  # "single" | "allday" | "series"
    local: datetime  # wall-clock start (naive); for all-day, midnight of the day
    zone: str | None
    hours: int = 1
    cancelled: bool = False
    partstat: str = "ACCEPTED"
    tags: tuple[str, ...] = ()
    count: int = 5
    exdates: set[int] = field(default_factory=set)
    overrides: dict[int, int | None] = field(
        default_factory=dict
    )  # shift in hours; None: cancelled

    def utc(self, local: datetime) -> datetime:
        zone = ZoneInfo(self.zone or OWNER_ZONE)
        return local.replace(tzinfo=zone).astimezone(UTC)

    def occurrence(self, index: int) -> datetime:
        return self.local + timedelta(days=7 * index)

    def key(self, index: int | None) -> str | None:
        if index is None:
            return None
        return self.utc(self.occurrence(index)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def live(self) -> list[int]:
        """Occurrences neither excluded nor cancelled."""
        return [
            i
            for i in range(self.count)
            if i not in self.exdates and not (i in self.overrides and self.overrides[i] is None)
        ]

    def free(self) -> list[int]:
        """Occurrences with no EXDATE and no override yet."""
        return [i for i in range(self.count) if i not in self.exdates and i not in self.overrides]


def _time(name: str, ev: Ev, local: datetime) -> str:
    if ev.kind == "allday":
        return f"{name};VALUE=DATE:{local.strftime('%Y%m%d')}"
    if ev.zone == "UTC":
        return f"{name}:{stamp(local)}Z"
    if ev.zone is None:
        return f"{name}:{stamp(local)}"
    return f"{name};TZID={ev.zone}:{stamp(local)}"


def _vevent(ev: Ev, start: datetime, *extra: str) -> list[str]:
    length = timedelta(days=1) if ev.kind == "allday" else timedelta(hours=ev.hours)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{ev.uid}",
        "DTSTAMP:20260101T000000Z",
        "SUMMARY:Session",
        _time("DTSTART", ev, start),
        _time("DTEND", ev, start + length),
        f"ATTENDEE;PARTSTAT={ev.partstat}:mailto:client-{ev.uid}@example.com",
        "ORGANIZER:mailto:me@example.com",
    ]
    if ev.tags:
        lines.append("CATEGORIES:" + ",".join(ev.tags))
    return [*lines, *extra, "END:VEVENT"]


def render(ev: Ev) -> bytes:
    """The model event as one iCalendar object."""
    if ev.kind != "series":
        status = ["STATUS:CANCELLED"] if ev.cancelled else []
        return calendar("".join(f"{x}\r\n" for x in _vevent(ev, ev.local, *status)))
    extra = [f"RRULE:FREQ=WEEKLY;COUNT={ev.count}"]
    extra += [_time("EXDATE", ev, ev.occurrence(i)) for i in sorted(ev.exdates)]
    parts = [_vevent(ev, ev.local, *extra)]
    for index, shift in sorted(ev.overrides.items()):
        rid = _time("RECURRENCE-ID", ev, ev.occurrence(index))
        if shift is None:
            parts.append(_vevent(ev, ev.occurrence(index), rid, "STATUS:CANCELLED"))
        else:
            parts.append(_vevent(ev, ev.occurrence(index) + timedelta(hours=shift), rid))
    return calendar("".join(f"{x}\r\n" for part in parts for x in part))


def instances(ev: Ev) -> list[str | None]:
    """Keys of the live instances of an event."""
    if ev.kind != "series":
        return [] if ev.cancelled else [None]
    return [ev.key(i) for i in ev.live()]


# --- strategies --------------------------------------------------------------------------

BASE = datetime(2026, 11, 10, 0, 0)  # inside the horizon around NOW, far from its edges


@st.composite
def events(draw: st.DrawFn, uid: str) -> Ev:
    kind = draw(st.sampled_from(["single", "single", "allday", "series"]))
    day = draw(st.integers(0, 100))
    hour = 0 if kind == "allday" else draw(st.integers(7, 19))
    zone = draw(st.sampled_from(ZONES))
    return Ev(
        uid=uid,
        kind=kind,
        local=BASE + timedelta(days=day, hours=hour),
        zone=zone,
        hours=draw(st.integers(1, 3)),
        count=draw(st.integers(2, 6)),
    )


OPS = [
    "move",
    "cancel",
    "retag",
    "decline",
    "delete",
    "exdate",
    "cancel_override",
    "move_override",
    "shift_series",
]


def apply(op: str, ev: Ev, shift: int) -> tuple[Ev | None, Expected]:
    """Apply one edit to a model event; return the new event (None: deleted) and its changes."""
    key = ev.key
    if op == "delete":
        return None, {("cancelled", ev.uid, k) for k in instances(ev)}
    if op == "retag":
        new = replace(ev, tags=("no-show",) if not ev.tags else ())
        return new, {("tags_changed", ev.uid, k) for k in instances(ev)}
    if op == "decline":
        new = replace(ev, partstat="DECLINED" if ev.partstat == "ACCEPTED" else "ACCEPTED")
        return new, {("response_changed", ev.uid, k) for k in instances(ev)}
    if ev.kind != "series":
        if op == "cancel":
            return replace(ev, cancelled=True), {("cancelled", ev.uid, None)}
        step = timedelta(days=shift) if ev.kind == "allday" else timedelta(hours=shift)
        return replace(ev, local=ev.local + step), {("moved", ev.uid, None)}
    if op == "shift_series" and not ev.exdates and not ev.overrides:
        return (
            replace(ev, local=ev.local + timedelta(hours=shift)),
            {("moved", ev.uid, k) for k in instances(ev)},
        )
    free = ev.free()
    if not free:
        return ev, set()
    index = free[shift % len(free)]
    if op == "exdate":
        return replace(ev, exdates=ev.exdates | {index}), {("cancelled", ev.uid, key(index))}
    if op == "cancel_override" or op == "cancel":
        return (
            replace(ev, overrides={**ev.overrides, index: None}),
            {("cancelled", ev.uid, key(index))},
        )
    return (replace(ev, overrides={**ev.overrides, index: shift}), {("moved", ev.uid, key(index))})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_edits_are_detected_exactly(data: st.DataObject) -> None:
    """Each round's reported changes equal the model's; a quiet rerun reports nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp))
        try:
            model = {
                f"e{i}": data.draw(events(f"e{i}")) for i in range(data.draw(st.integers(1, 6)))
            }
            for uid, ev in model.items():
                h.put(f"{uid}.ics", render(ev))
            h.cycle()
            next_uid = len(model)
            for _ in range(data.draw(st.integers(1, 3))):
                expected: Expected = set()
                live = [u for u, e in model.items() if not e.cancelled]
                touched = data.draw(
                    st.lists(st.sampled_from(live), unique=True) if live else st.just([])
                )
                for uid in touched:
                    op = data.draw(st.sampled_from(OPS))
                    shift = data.draw(st.integers(1, 5))
                    new, changes = apply(op, model[uid], shift)
                    expected |= changes
                    if new is None:
                        del model[uid]
                        h.remove(f"{uid}.ics")
                    else:
                        model[uid] = new
                        h.put(f"{uid}.ics", render(new))
                if data.draw(st.booleans()):
                    uid = f"e{next_uid}"
                    next_uid += 1
                    model[uid] = data.draw(events(uid))
                    h.put(f"{uid}.ics", render(model[uid]))
                    expected |= {("created", uid, k) for k in instances(model[uid])}
                report = h.cycle()
                found = {(c.kind.value, c.uid, h_key(c)) for c in report.changes}
                assert found == expected
                assert len(found) == len(report.changes)  # nothing reported twice
                assert h.cycle().changes == ()
        finally:
            h.close()


def h_key(change: object) -> str | None:
    rid = change.recurrence_id  # type: ignore[attr-defined]
    if rid is None:
        return None
    if isinstance(rid, datetime):
        return rid.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert isinstance(rid, date)
    return rid.isoformat()
