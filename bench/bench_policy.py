"""Benchmark of the policy step: verdicts, notes and rebooking suggestions for many changes.

Run from the project root::

    .venv/bin/python bench/bench_policy.py [--events 10000] [--changes 1000] [--repeat 3]
        [--days 60] [--clients 200] [--seed 1] [--json] [--tmpdir DIR]

Every run is a fresh child process (this script, re-invoked with a hidden flag) that generates
a vdir calendar folder of ``--events`` events (5% weekly series) spread over the next ``--days``
days inside the owner's working hours, most with one client attendee from a pool of
``--clients`` (a fifth of them configured under ``[[clients]]`` with a rate), plus an empty
notes calendar (a local folder, ``[notes] calendar``), then measures with syncd's real code
(``load_config``, ``syncd.app.open_engine``, ``Engine.cycle``, fixed clock):

1. the baseline cycle of the calendar (reported, not part of any ratio),
2. the timed cycle after ``--changes`` client appointments changed: half declined by the
   client (cancellations, some inside the late-cancellation window, the rest timely with a
   deposit pending), half moved by a few hours through the booking page. ``engine.cycle``
   as a whole: listing, parsing, diff, the policy step (verdicts, notes, suggestions), the
   commit and the drain of the outbox (notes written to the notes folder, annotations on the
   events). The policy step, ``find_slots``, the busy-index build, note rendering, the commit
   and the drain are also timed on their own by shims installed in the child process (the
   engine is not edited),
3. the follow-up cycles (the calendar with syncd's annotations, the notes calendar with the
   new notes) and a quiet cycle, which must write nothing.

Baselines measured in the same run: the same changes on the same calendar whose attendee is
the owner's second address instead of a client (no verdicts, no notes), in its own child
process; and the ``find_slots`` calls of the policy run replayed against a naive finder in
this file that scans every busy interval for every candidate (same inputs, first run only).

Each cycle reports wall time (``perf_counter``), CPU time (``process_time``) and the child's
peak RSS so far (``ru_maxrss``). No timing is a pass or fail: the exit status is 0 unless the
engine gave a wrong answer (exit 1: a changed client appointment without exactly one verdict
or with a verdict of the wrong kind or fee, a verdict without exactly one note file, a
suggested slot that overlaps a busy instance of the generated calendar, ``find_slots``
disagreeing with the naive finder, a follow-up or quiet cycle that writes something) or
something crashed.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import importlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

if TYPE_CHECKING:  # the parent process stays lean: syncd is imported in the child only
    from syncd.engine import CycleReport, Engine
    from syncd.rebook import Busy

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
"""The fixed clock of every cycle (a Wednesday; the next 60 days cross the European DST
switch)."""

WORK, NOTES = "work", "notes"
OWNER_EMAIL = "me@example.com"
DESK_EMAIL = "desk@example.com"
"""The owner's second address: the attendee of the plain calendar's appointments."""
OWNER_ZONE = ZoneInfo("Europe/Berlin")
WORKING_HOURS: dict[int, tuple[int, int]] = {
    0: (8, 20),
    1: (8, 20),
    2: (8, 20),
    3: (8, 20),
    4: (8, 20),
    5: (9, 13),
}
"""Local hours per weekday (0 = Monday); Sunday is off."""
_DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WINDOW = timedelta(hours=48)
"""``late_cancel_window`` (moves follow it) in ``[policy]``."""
SHORT_WINDOW = timedelta(hours=24)
"""The window of the clients with their own policy (every tenth configured client)."""
LATE_FEE_PERCENT = Decimal(50)
DEFAULT_RATE = Decimal(100)
REBOOK_WITHIN = timedelta(days=3)
BOOKING_TEXT = "Booked through the booking page: to reschedule or cancel, use the booking page."
LATE_DECLINE_SHARE = 0.3
"""Share of the declines picked among appointments inside the late-cancellation window."""
EXIT_WRONG = 1
T = TypeVar("T")


class WrongAnswer(Exception):
    """The engine reported something a correct engine would not: a bug, not a timing."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise WrongAnswer(message)


# --- calendar generation ------------------------------------------------------------------


@dataclass(slots=True)
class Spec:
    """One generated event (a single appointment or a weekly series), in local wall time."""

    href: str
    uid: str
    index: int
    client: int | None
    """Index into the client pool; None for the owner's own events."""
    start: datetime
    """Naive local wall time in ``OWNER_ZONE``."""
    minutes: int
    partstat: str = "ACCEPTED"
    series_count: int | None = None
    """None: a single event; 0: a weekly series without end; n: ``COUNT=n``."""

    @property
    def series(self) -> bool:
        """True for a weekly series."""
        return self.series_count is not None


@dataclass(slots=True)
class Change:
    """One generated change: a decline or a move of a single client appointment."""

    spec: Spec
    kind: str
    """``"decline"`` or ``"move"``."""
    new_start: datetime | None = None
    """Naive local wall time of a moved appointment."""


@dataclass(slots=True)
class Corpus:
    """The generated calendar, its configuration and the planned changes."""

    root: Path
    folder: Path
    notes_folder: Path
    config_path: Path
    specs: list[Spec]
    changes: list[Change]
    clients: int
    configured: dict[int, Decimal]
    """Configured clients: pool index -> rate."""
    short_window: set[int]
    """Configured clients with their own 24 h window."""


def client_email(number: int) -> str:
    """The address of client ``number`` of the pool."""
    return f"client{number:03d}@example.org"


def _utc(local: datetime) -> datetime:
    return local.replace(tzinfo=OWNER_ZONE).astimezone(UTC)


def _stamp(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _booked_spans(rng: random.Random) -> dict[int, list[tuple[int, int]]]:
    """Per weekday, the booked spans in minutes after midnight: busy runs of 2-4 hours
    between free runs of 2-3 hours (so that rebooking suggestions exist at all: at 10,000
    events in 60 days the booked hours hold some 25 parallel sessions)."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for weekday, (opens, closes) in WORKING_HOURS.items():
        hour, booked, found = opens, rng.random() < 0.7, []
        while hour < closes:
            length = min(rng.choice((2, 3, 4)) if booked else rng.choice((2, 3)), closes - hour)
            if booked:
                found.append((hour * 60, (hour + length) * 60))
            hour, booked = hour + length, not booked
        spans[weekday] = found or [(opens * 60, closes * 60)]
    return spans


def _place(
    rng: random.Random, day: date, spans: Mapping[int, list[tuple[int, int]]], minutes: int
) -> datetime:
    """A start on the 15-minute grid inside one booked span of ``day`` that fits ``minutes``."""
    fitting = [(a, b) for a, b in spans[day.weekday()] if b - a >= minutes]
    low, high = rng.choices(fitting, weights=[b - a for a, b in fitting])[0]
    minute = low + 15 * rng.randint(0, (high - low - minutes) // 15)
    return datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)


def generate(root: Path, args: argparse.Namespace, with_clients: bool) -> Corpus:
    """Write the calendar, an empty notes folder and the configuration; plan the changes.

    The plain corpus (``with_clients=False``) is the same calendar, byte for byte, except
    that the appointments' attendee is the owner's second address instead of a client."""
    rng = random.Random(args.seed * 1_000_003 + args.events)
    folder, notes = root / "calendars" / WORK, root / "calendars" / NOTES
    folder.mkdir(parents=True, mode=0o700)
    notes.mkdir(parents=True, mode=0o700)
    spans = _booked_spans(rng)
    today = NOW.astimezone(OWNER_ZONE).date()
    earliest = NOW.astimezone(OWNER_ZONE).replace(tzinfo=None) + timedelta(hours=1)
    days = [
        d
        for d in (today + timedelta(days=n) for n in range(args.days))
        if d.weekday() in WORKING_HOURS
    ]
    configured = {n: Decimal(60 + 10 * (n % 10)) for n in range(0, args.clients, 5)}
    short_window = {n for n in configured if n % 10 == 0 and n % 50 != 0}
    series_at = set(rng.sample(range(args.events), round(args.events * 0.05)))
    specs: list[Spec] = []
    for index in range(args.events):
        uid = f"policy-{index:06d}-{rng.getrandbits(32):08x}@syncd.example"
        client = rng.randrange(args.clients) if rng.random() < 0.9 else None
        partstat = rng.choice(("ACCEPTED",) * 8 + ("TENTATIVE", "NEEDS-ACTION"))
        if index in series_at:
            minutes = rng.choice((45, 60))
            first = today - timedelta(days=7 * rng.randint(1, 9))
            first -= timedelta(days=rng.randint(0, 5))
            while first.weekday() not in WORKING_HOURS:
                first -= timedelta(days=1)
            start = _place(rng, first, spans, minutes)
            count = rng.choice((0, 26))
        else:
            minutes = rng.choice((30, 45, 60, 90))
            while True:
                start = _place(rng, rng.choice(days), spans, minutes)
                if start >= earliest:
                    break
            count = None
        spec = Spec(f"{uid}.ics", uid, index, client, start, minutes, partstat, count)
        specs.append(spec)
        (folder / spec.href).write_bytes(render(spec, with_clients))
    config_path = root / "syncd.toml"
    config_path.write_text(
        config_text(root, folder, notes, configured, short_window), encoding="utf-8"
    )
    return Corpus(
        root=root,
        folder=folder,
        notes_folder=notes,
        config_path=config_path,
        specs=specs,
        changes=plan_changes(random.Random(args.seed), specs, args.changes),
        clients=args.clients,
        configured=configured,
        short_window=short_window,
    )


def plan_changes(rng: random.Random, specs: Sequence[Spec], count: int) -> list[Change]:
    """Half declines (some late, the rest timely), half moves by 2-4 hours that stay inside
    the working hours; all on distinct single client appointments starting after now + 1 h."""
    horizon = NOW + timedelta(hours=1)
    eligible = [
        s for s in specs if s.client is not None and not s.series and _utc(s.start) > horizon
    ]
    rng.shuffle(eligible)
    declines = count // 2
    late = [s for s in eligible if _utc(s.start) - NOW < WINDOW]
    late = late[: min(round(declines * LATE_DECLINE_SHARE), len(late) // 2)]
    taken = {s.href for s in late}
    rest = [s for s in eligible if s.href not in taken]
    rng.shuffle(rest)  # the late ones left are no longer only at the end
    changes = [Change(s, "decline") for s in late]
    changes += [Change(s, "decline") for s in rest[: declines - len(late)]]
    for spec in rest[declines - len(late) :]:
        if len(changes) == count:
            break
        new_start = _shift(rng, spec)
        if new_start is not None:
            changes.append(Change(spec, "move", new_start))
    if len(changes) != count:
        raise SystemExit(f"only {len(changes)} of {count} changes fit: use more --events")
    return changes


def _shift(rng: random.Random, spec: Spec) -> datetime | None:
    opens, closes = WORKING_HOURS[spec.start.weekday()]
    for hours in rng.sample((-4, -3, -2, 2, 3, 4), 6):
        start = spec.start + timedelta(hours=hours)
        end = start + timedelta(minutes=spec.minutes)
        if (
            start.hour >= opens
            and end <= start.replace(hour=0, minute=0) + timedelta(hours=closes)
            and _utc(start) > NOW + timedelta(hours=1)
        ):
            return start
    return None


def render(
    spec: Spec,
    with_clients: bool,
    *,
    start: datetime | None = None,
    partstat: str | None = None,
    changed: bool = False,
) -> bytes:
    """The ``.ics`` text of one event; ``changed`` bumps SEQUENCE and LAST-MODIFIED (now)."""
    begin = start or spec.start
    end = begin + timedelta(minutes=spec.minutes)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//syncd//bench-policy//EN",
        "BEGIN:VEVENT",
        f"UID:{spec.uid}",
        "DTSTAMP:20260101T080000Z",
        f"LAST-MODIFIED:{_stamp(NOW) if changed else '20260101T080000'}Z",
        f"SEQUENCE:{1 if changed else 0}",
        f"DTSTART;TZID={OWNER_ZONE.key}:{_stamp(begin)}",
        f"DTEND;TZID={OWNER_ZONE.key}:{_stamp(end)}",
        "STATUS:CONFIRMED",
    ]
    if spec.series_count is not None:
        count = f";COUNT={spec.series_count}" if spec.series_count else ""
        lines.append(f"RRULE:FREQ=WEEKLY{count}")
    if spec.client is None:
        lines.append(f"SUMMARY:{('Admin block', 'Supervision', 'Case notes')[spec.index % 3]}")
    else:
        status = partstat or spec.partstat
        who = (
            f"CN=Client {spec.client};PARTSTAT={status};RSVP=TRUE:mailto:"
            f"{client_email(spec.client)}"
            if with_clients
            else f"CN=Front desk;PARTSTAT={status};RSVP=TRUE:mailto:{DESK_EMAIL}"
        )
        lines += [
            f"SUMMARY:{'Weekly session' if spec.series else 'Session'} {spec.index}",
            f"ORGANIZER;CN=Me:mailto:{OWNER_EMAIL}",
            f"ATTENDEE;{who}",
            f"LOCATION:Room {spec.index % 12 + 1}",
            f"DESCRIPTION:{BOOKING_TEXT}",
        ]
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def apply_changes(corpus: Corpus, with_clients: bool) -> None:
    """Write every planned change as a calendar app would (atomic save, new mtime)."""
    for change in corpus.changes:
        if change.kind == "decline":
            data = render(change.spec, with_clients, partstat="DECLINED", changed=True)
        else:
            data = render(change.spec, with_clients, start=change.new_start, changed=True)
        path = corpus.folder / change.spec.href
        before = path.stat()
        temp = path.with_name(f".{path.name}.tmp")
        temp.write_bytes(data)
        os.replace(temp, path)
        after = path.stat()
        mtime = max(after.st_mtime_ns, before.st_mtime_ns + 1_000_000_000)
        os.utime(path, ns=(after.st_atime_ns, mtime))


def config_text(
    root: Path,
    folder: Path,
    notes: Path,
    configured: Mapping[int, Decimal],
    short_window: set[int],
) -> str:
    """The configuration: [owner] with working hours, the calendar and the notes calendar,
    [policy] with a deposit and an actor rule, [pricing], [[clients]] and [rebooking]."""

    def quoted(path: Path) -> str:
        return json.dumps(str(path))  # a JSON string is a valid TOML basic string

    hours = ", ".join(
        f'{_DAY_KEYS[day]} = "{opens:02d}:00-{closes:02d}:00"'
        for day, (opens, closes) in WORKING_HOURS.items()
    )
    lines = [
        "[state]",
        f"path = {quoted(root / 'var' / 'state.db')}",
        "[audit]",
        f"path = {quoted(root / 'var' / 'audit.jsonl')}",
        "[daemon]",
        'horizon_past = "30d"',
        'horizon_future = "180d"',
        "[owner]",
        f'emails = ["{OWNER_EMAIL}", "{DESK_EMAIL}"]',
        f'timezone = "{OWNER_ZONE.key}"',
        f"working_hours = {{ {hours} }}",
        "[[calendars]]",
        f'name = "{WORK}"',
        'connector = "local"',
        f"path = {quoted(folder)}",
        "create = false",
        "[[calendars]]",
        f'name = "{NOTES}"',
        'connector = "local"',
        f"path = {quoted(notes)}",
        "[notes]",
        f'calendar = "{NOTES}"',
        "[policy]",
        f'late_cancel_window = "{WINDOW.total_seconds() / 3600:g}h"',
        f'late_cancel_fee = "{LATE_FEE_PERCENT}%"',
        'deposit = "20%"',
        f'rebook_within = "{REBOOK_WITHIN.days}d"',
        'unknown_actor = "ask"',
        "[[policy.actor_rules]]",
        'contains = "use the booking page"',
        'actor = "client"',
        "[pricing]",
        'currency = "EUR"',
        f'default_rate = "{DEFAULT_RATE}"',
        "[rebooking]",
        "count = 3",
        'buffer = "15m"',
        "search_days = 7",
        'granularity = "30m"',
    ]
    for number, rate in configured.items():
        lines += [
            "[[clients]]",
            f'email = "{client_email(number)}"',
            f'name = "Client {number} Example"',
            f'rate = "{rate}"',
        ]
        if number in short_window:
            lines.append(
                f'policy = {{ late_cancel_window = "{SHORT_WINDOW.total_seconds() / 3600:g}h" }}'
            )
    return "\n".join([*lines, ""])


def busy_truth(corpus: Corpus, horizon_end: datetime) -> list[tuple[datetime, datetime]]:
    """Every busy interval (UTC) of the calendar after the changes, computed from the
    generated data alone: declined appointments stay on the calendar, moved ones count at
    their new time, series expand weekly in local time (so across the DST switch)."""
    moved = {c.spec.href: c.new_start for c in corpus.changes if c.kind == "move"}
    found: list[tuple[datetime, datetime]] = []
    for spec in corpus.specs:
        length = timedelta(minutes=spec.minutes)
        if not spec.series:
            start = moved.get(spec.href) or spec.start
            found.append((_utc(start), _utc(start + length)))
            continue
        week = 0
        while not spec.series_count or week < spec.series_count:
            start = spec.start + timedelta(weeks=week)
            if _utc(start) > horizon_end:
                break
            found.append((_utc(start), _utc(start + length)))
            week += 1
    return found


class Intervals:
    """The bench's own overlap check over the generated busy intervals (sorted starts and a
    running maximum of the ends): independent of syncd's ``BusyIndex``."""

    def __init__(self, intervals: Sequence[tuple[datetime, datetime]]) -> None:
        ordered = sorted(intervals)
        self.starts = [s for s, _ in ordered]
        self.max_ends: list[datetime] = []
        for _, end in ordered:
            self.max_ends.append(max(end, self.max_ends[-1]) if self.max_ends else end)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True when some interval meets ``[start, end)``."""
        before = bisect.bisect_left(self.starts, end)
        return before > 0 and self.max_ends[before - 1] > start


# --- the naive slot finder ----------------------------------------------------------------


def naive_find_slots(
    *,
    duration: timedelta,
    original_start: datetime,
    search_from: datetime,
    search_until: datetime,
    busy: Sequence[tuple[datetime, datetime]],
    working_hours: Mapping[str, tuple[Any, Any]],
    zone: ZoneInfo,
    buffer: timedelta,
    granularity: timedelta,
    count: int,
    shares: Mapping[tuple[int, int], float],
    exclude: Sequence[tuple[datetime, datetime]] = (),
) -> list[tuple[datetime, datetime, float]]:
    """What ``syncd.rebook.find_slots`` documents, done naively: every candidate on the
    local grid of every day's working hours is checked against every busy interval in turn
    (stopping at the first overlap), then all free candidates are sorted by score."""
    original, earliest = original_start.astimezone(UTC), search_from.astimezone(UTC)
    latest = search_until.astimezone(UTC)
    candidates: list[tuple[datetime, datetime, float]] = []
    day = search_from.astimezone(zone).date()
    while day <= search_until.astimezone(zone).date():
        hours = working_hours.get(_DAY_KEYS[day.weekday()])
        if hours is not None:
            opens, closes = hours
            stop = datetime.combine(day, closes)
            first = stop.replace(tzinfo=zone, fold=0).astimezone(UTC)
            second = stop.replace(tzinfo=zone, fold=1).astimezone(UTC)
            closing = min(first, second)
            wall = datetime.combine(day, opens)
            while wall < stop:
                start = wall.replace(tzinfo=zone).astimezone(UTC)
                hour, wall = wall.hour, wall + granularity
                if start.astimezone(zone).replace(tzinfo=None) != wall - granularity:
                    continue  # the wall time does not exist (spring forward)
                end = start + duration
                if end > closing or end > latest or start < earliest:
                    continue
                low, high = start - buffer, end + buffer
                taken = False
                for b_start, b_end in busy:
                    if b_start < high and low < b_end:
                        taken = True
                        break
                if taken or any(a < end and start < b for a, b in exclude):
                    continue
                away = abs((start - original).total_seconds()) / 86400.0
                score = shares.get((day.weekday(), hour), 0.0) * 2 + 1 / (1 + away)
                candidates.append((start, end, score))
        day += timedelta(days=1)
    candidates.sort(key=lambda c: (-c[2], c[0]))
    return candidates[:count]


# --- measuring ----------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(action: Callable[[], T]) -> tuple[T, float, float]:
    """Run ``action`` after a full collection; return its result, wall and CPU seconds."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


@dataclass(slots=True)
class Clock:
    """Accumulated wall and CPU seconds and calls of one shimmed function."""

    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0

    def wrap(self, function: Callable[..., T]) -> Callable[..., T]:
        """``function`` with its time added to this clock."""

        def shim(*args: Any, **kwargs: Any) -> T:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - wall
                self.cpu += time.process_time() - cpu
                self.calls += 1

        return shim


STEPS = ("policy", "find_slots", "busy_index", "render_note", "commit", "drain")
STEP_LABELS = {
    "policy": "policy step (judge.on_changes)",
    "find_slots": "find_slots",
    "busy_index": "busy index build",
    "render_note": "note rendering",
    "commit": "commit (store.commit_cycle)",
    "drain": "outbox drain",
}


@dataclass(slots=True)
class Shims:
    """Timing shims on the engine's steps, installed in the child process only.

    ``judge.on_changes``, ``judge._busy_index``, ``judge._suggest``, ``engine.drain`` and
    ``store.commit_cycle`` are wrapped on the instances; ``find_slots``, ``render_note`` and
    ``BusyIndex`` in the ``syncd.judge`` module namespace, where the judge looks them up."""

    clocks: dict[str, Clock] = field(default_factory=lambda: {k: Clock() for k in STEPS})
    searches: list[tuple[dict[str, Any], list[Any]]] = field(default_factory=list)
    suggested: list[tuple[str, list[tuple[datetime, datetime]]]] = field(default_factory=list)
    busy_lists: list[list[Busy]] = field(default_factory=list)
    recording: bool = False

    def install(self, engine: Engine) -> None:
        """Wrap the steps; nothing is recorded until :meth:`reset`."""
        from syncd.rebook import BusyIndex

        module: Any = importlib.import_module("syncd.judge")  # patched where the judge looks

        judge, clocks = engine.judge, self.clocks
        judge.on_changes = clocks["policy"].wrap(judge.on_changes)  # type: ignore[method-assign]
        judge._busy_index = clocks["busy_index"].wrap(judge._busy_index)  # type: ignore[method-assign]
        engine.drain = clocks["drain"].wrap(engine.drain)  # type: ignore[method-assign]
        store: Any = engine.store
        store.commit_cycle = clocks["commit"].wrap(store.commit_cycle)
        module.render_note = clocks["render_note"].wrap(module.render_note)
        timed_find = clocks["find_slots"].wrap(module.find_slots)
        original_suggest = judge._suggest

        def find_slots(**kwargs: Any) -> Any:
            slots = timed_find(**kwargs)
            if self.recording:
                self.searches.append((kwargs, list(slots)))
            return slots

        def suggest(verdict: Any, now: datetime) -> list[tuple[datetime, datetime]]:
            chosen = original_suggest(verdict, now)
            if self.recording:
                self.suggested.append((verdict.key, list(chosen)))
            return chosen

        shims = self

        class RecordingIndex(BusyIndex):
            """``BusyIndex`` that keeps its input, so the naive finder gets the same one."""

            def __init__(self, intervals: Any) -> None:
                kept = list(intervals)
                if shims.recording:
                    shims.busy_lists.append(kept)
                super().__init__(kept)

        module.find_slots = find_slots
        module.BusyIndex = RecordingIndex
        judge._suggest = suggest  # type: ignore[method-assign]

    def reset(self, recording: bool) -> None:
        """Forget what was measured so far; record searches from now on if asked."""
        for clock in self.clocks.values():  # the shims hold these objects: zero them in place
            clock.wall, clock.cpu, clock.calls = 0.0, 0.0, 0
        self.searches.clear()
        self.suggested.clear()
        self.busy_lists.clear()
        self.recording = recording

    def snapshot(self) -> dict[str, dict[str, float]]:
        """The clocks as plain numbers."""
        return {k: asdict(c) for k, c in self.clocks.items()}


# --- results ------------------------------------------------------------------------------


@dataclass(slots=True)
class Cycle:
    """Wall and CPU seconds of one cycle, what it read and found."""

    wall: float
    cpu: float
    read: int = 0
    changes: int = 0
    verdicts: int = 0


@dataclass(slots=True)
class RunResult:
    """Everything one child process measured."""

    mode: str
    """``"policy"`` (client calendar) or ``"plain"`` (the owner's address as attendee)."""
    instances: int
    baseline: Cycle
    cycle: Cycle
    rss_before_mb: float
    """``ru_maxrss`` after generation and the baseline cycle."""
    peak_rss_mb: float
    """``ru_maxrss`` right after the timed cycle: the child's peak so far."""
    steps: dict[str, dict[str, float]] = field(default_factory=dict)
    followup: Cycle | None = None
    notes_cycle: Cycle | None = None
    quiet: Cycle | None = None
    counts: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    replay: list[float] | None = None
    """Wall and CPU seconds of the recorded find_slots calls, replayed."""
    naive: list[float] | None = None
    """Wall and CPU seconds of the naive finder on the same calls (first run only)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        """Inverse of :func:`dataclasses.asdict`."""
        cycles = ("baseline", "cycle", "followup", "notes_cycle", "quiet")
        for key in cycles:
            if data.get(key) is not None:
                data[key] = Cycle(**data[key])
        return cls(**data)


def _cycle(engine: Engine, name: str) -> tuple[CycleReport, Cycle]:
    report, wall, cpu = timed(lambda: engine.cycle(name))
    _check(
        not report.new_errors,
        f"{name}: {len(report.new_errors)} objects failed to parse, first: "
        f"{report.new_errors[0] if report.new_errors else None}",
    )
    return report, Cycle(wall, cpu, report.read, len(report.changes), len(report.verdicts))


# --- the child: one run -------------------------------------------------------------------


class Audit:
    """The audit log, read from a line onwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen = 0

    def new(self) -> list[dict[str, Any]]:
        """Records appended since the last call."""
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        fresh, self.seen = lines[self.seen :], len(lines)
        return [json.loads(line) for line in fresh]


def _fingerprint(*folders: Path) -> dict[str, tuple[int, int, int]]:
    found = {}
    for folder in folders:
        with os.scandir(folder) as entries:
            for entry in entries:
                stat = entry.stat()
                found[f"{folder.name}/{entry.name}"] = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    return found


def run_child(args: argparse.Namespace) -> RunResult:
    """Generate the calendar, run the baseline, the timed cycle and the checks."""
    from syncd.logs import configure_logging

    configure_logging(level="warning", stream=sys.stderr, json=False)
    for module in ("syncd.app", "syncd.judge", "syncd.normalize", "connectors.local"):
        importlib.import_module(module)  # so the start-up RSS includes syncd's imports
    policy = args.child_mode == "policy"
    with tempfile.TemporaryDirectory(prefix="syncd-bench-policy-", dir=args.tmpdir) as temp:
        _progress(f"run {args.child_run + 1} {args.child_mode}: generating {args.events:,} events")
        corpus = generate(Path(temp), args, with_clients=policy)
        return measure(corpus, args, policy)


def measure(corpus: Corpus, args: argparse.Namespace, policy: bool) -> RunResult:
    """The measured cycles on one generated corpus."""
    from syncd.app import open_engine
    from syncd.config import load_config

    config = load_config(corpus.config_path)
    audit = Audit(config.audit_path)
    label = f"run {args.child_run + 1} {args.child_mode}"
    with open_engine(config, lambda: NOW) as engine:
        shims = Shims()
        shims.install(engine)
        _progress(f"{label}: baseline cycle")
        report, baseline = _cycle(engine, WORK)
        _check(report.baseline and not report.changes, "baseline cycle reported changes")
        engine.cycle(NOTES)
        audit.new()
        apply_changes(corpus, with_clients=policy)
        gc.collect()
        rss_before = peak_rss_mb()
        shims.reset(recording=policy)
        _progress(f"{label}: timed cycle after {len(corpus.changes):,} changes")
        report, cycle = _cycle(engine, WORK)
        peak = peak_rss_mb()
        steps = shims.snapshot()
        shims.recording = False
        result = RunResult(
            mode=args.child_mode,
            instances=report.instance_count,
            baseline=baseline,
            cycle=cycle,
            rss_before_mb=rss_before,
            peak_rss_mb=peak,
            steps=steps,
        )
        check_changes(corpus, report)
        records = audit.new()
        if not policy:
            _check(
                not report.verdicts and not records_of(records, "verdict"),
                f"plain calendar: {len(report.verdicts)} verdicts, expected none",
            )
            _check(not os.listdir(corpus.notes_folder), "plain calendar: notes were written")
            return result
        check_verdicts(corpus, report, records, result)
        check_notes(corpus, records, result)
        check_suggestions(corpus, shims, result)
        check_quiet(engine, corpus, audit, result)
        replay(shims, args, result)
    return result


def records_of(records: Sequence[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The records of one type."""
    return [r for r in records if r["type"] == kind]


def check_changes(corpus: Corpus, report: CycleReport) -> None:
    """The diff found exactly the planned changes: a response change per decline, a move per
    move."""
    expected = Counter(
        (c.spec.uid, "response_changed" if c.kind == "decline" else "moved") for c in corpus.changes
    )
    found = Counter((c.uid, c.kind.value) for c in report.changes)
    _check(
        found == expected,
        f"timed cycle: expected {len(corpus.changes)} changes "
        f"({dict(Counter(k for _, k in expected))}), got {len(report.changes)} "
        f"({dict(Counter(k for _, k in found))})",
    )


def expected_verdict(corpus: Corpus, change: Change) -> tuple[str, Decimal | None, str | None]:
    """Kind, fee amount and deposit state the policy calls for, from the generated data."""
    assert change.spec.client is not None
    client = change.spec.client
    window = SHORT_WINDOW if client in corpus.short_window else WINDOW
    late = _utc(change.spec.start) - NOW < window
    price = corpus.configured.get(client, DEFAULT_RATE)
    fee = (price * LATE_FEE_PERCENT / 100).quantize(Decimal("0.01"))
    if change.kind == "decline":
        return (
            ("late_cancellation", fee, "forfeited") if late else ("cancellation", None, "pending")
        )
    assert change.new_start is not None
    if late:
        return "late_move", fee, None
    within = abs(_utc(change.new_start) - _utc(change.spec.start)) <= REBOOK_WITHIN
    return "move", None, "kept_as_credit" if within else "forfeited"


def check_verdicts(
    corpus: Corpus, report: CycleReport, records: Sequence[dict[str, Any]], result: RunResult
) -> None:
    """Exactly one verdict record per changed client appointment, of the kind, fee and
    deposit state the policy calls for, attributed to the client."""
    verdicts = records_of(records, "verdict")
    by_uid = Counter(v["uid"] for v in verdicts)
    changed = {c.spec.uid: c for c in corpus.changes}
    extra = sorted(set(by_uid) - set(changed))
    missing = sorted(set(changed) - set(by_uid))
    doubled = sorted(u for u, n in by_uid.items() if n > 1)
    _check(
        not extra and not missing and not doubled,
        f"verdict records: {len(verdicts)} for {len(changed)} changed appointments; "
        f"missing {len(missing)} (first {missing[:1]}), doubled {len(doubled)}, "
        f"unexpected {len(extra)}",
    )
    _check(len(report.verdicts) == len(verdicts), "cycle report and audit log disagree")
    wrong = []
    for record in verdicts:
        change = changed[record["uid"]]
        kind, fee, deposit = expected_verdict(corpus, change)
        got_fee = Decimal(record["fee"]["amount"]) if record["fee"] else None
        assert change.spec.client is not None
        if (
            (record["verdict"], got_fee, record["deposit"]) != (kind, fee, deposit)
            or record["actor"] != "client"
            or record["client"] != client_email(change.spec.client)
        ):
            wrong.append(
                f"{record['uid']}: expected {kind}/{fee}/{deposit}/client, got "
                f"{record['verdict']}/{got_fee}/{record['deposit']}/{record['actor']}"
            )
    _check(not wrong, f"{len(wrong)} verdicts disagree with the policy, first: {wrong[:1]}")
    result.kinds = dict(Counter(v["verdict"] for v in verdicts))
    result.counts["verdicts"] = len(verdicts)


def check_notes(corpus: Corpus, records: Sequence[dict[str, Any]], result: RunResult) -> None:
    """Exactly one note file per verdict, every write applied, every event annotated."""
    from syncd.annotate import private_properties
    from syncd.notes import note_href

    keys = [v["key"] for v in records_of(records, "verdict")]
    wanted = {note_href(k) for k in keys}
    present = {n for n in os.listdir(corpus.notes_folder) if n.endswith(".ics")}
    _check(
        len(wanted) == len(keys) and present == wanted,
        f"notes: {len(present)} files for {len(keys)} verdicts "
        f"({len(wanted - present)} missing, {len(present - wanted)} unexpected)",
    )
    writes = records_of(records, "write")
    failed = [w for w in writes if w["status"] not in ("intended", "applied")]
    _check(not failed, f"{len(failed)} writes did not apply, first: {failed[:1]}")
    applied = Counter(w["action"] for w in writes if w["status"] == "applied")
    unannotated = [
        c.spec.href
        for c in corpus.changes
        if "X-SYNCD-VERDICT" not in private_properties((corpus.folder / c.spec.href).read_bytes())
    ]
    _check(not unannotated, f"{len(unannotated)} changed events carry no X-SYNCD-VERDICT")
    result.counts.update(
        notes=len(present),
        note_writes=applied["note"],
        annotations=applied["annotate"],
        audit_records=len(records),
    )


def check_suggestions(corpus: Corpus, shims: Shims, result: RunResult) -> None:
    """Every suggested slot (what went into the notes) and every slot ``find_slots``
    returned is free: no overlap with any busy interval of the generated calendar."""
    truth = Intervals(busy_truth(corpus, NOW + timedelta(days=200)))
    bad = [
        (key[:12], start.isoformat())
        for key, slots in shims.suggested
        for start, end in slots
        if truth.overlaps(start, end)
    ]
    bad += [
        ("find_slots", slot.start.isoformat())
        for _, slots in shims.searches
        for slot in slots
        if truth.overlaps(slot.start, slot.end)
    ]
    _check(not bad, f"{len(bad)} suggested slots overlap a busy instance, first: {bad[:1]}")
    _check(
        len(shims.suggested) == result.counts["verdicts"] == len(shims.searches),
        f"{len(shims.suggested)} suggestion lists and {len(shims.searches)} searches for "
        f"{result.counts['verdicts']} verdicts",
    )
    _check(len(shims.busy_lists) == 1, f"{len(shims.busy_lists)} busy indexes built, expected 1")
    result.counts.update(
        searches=len(shims.searches),
        suggestions=sum(len(s) for _, s in shims.suggested),
        without_suggestion=sum(1 for _, s in shims.suggested if not s),
        candidates_returned=sum(len(s) for _, s in shims.searches),
        busy_intervals=len(shims.busy_lists[0]),
    )


def check_quiet(engine: Engine, corpus: Corpus, audit: Audit, result: RunResult) -> None:
    """The follow-up cycles (syncd's own annotations, the new notes) and a quiet cycle
    after them write nothing: no audit record, no outbox row, no file touched."""
    before = _fingerprint(corpus.folder, corpus.notes_folder)
    outbox = len(engine.store.outbox("done"))
    _progress("policy: follow-up and quiet cycles")
    cycles: dict[str, Cycle] = {}
    for label, name in (("followup", WORK), ("notes_cycle", NOTES), ("quiet", WORK)):
        report, cycles[label] = _cycle(engine, name)
        _check(
            not report.changes and not report.verdicts,
            f"{label} cycle: {len(report.changes)} changes, {len(report.verdicts)} verdicts",
        )
        records = audit.new()
        _check(not records, f"{label} cycle wrote {len(records)} audit records: {records[:1]}")
    engine.cycle(NOTES)
    _check(not audit.new(), "quiet notes cycle wrote audit records")
    _check(cycles["quiet"].read == 0, f"quiet cycle read {cycles['quiet'].read} objects")
    _check(
        _fingerprint(corpus.folder, corpus.notes_folder) == before,
        "a follow-up or quiet cycle changed a file",
    )
    _check(
        len(engine.store.outbox("done")) == outbox and not engine.store.outbox("pending"),
        "a follow-up or quiet cycle queued a write",
    )
    result.followup, result.notes_cycle, result.quiet = (
        cycles["followup"],
        cycles["notes_cycle"],
        cycles["quiet"],
    )


def replay(shims: Shims, args: argparse.Namespace, result: RunResult) -> None:
    """The recorded ``find_slots`` calls again, outside the cycle, then (first run only)
    the same calls against the naive finder; their answers must agree."""
    from syncd.rebook import find_slots

    searches = list(shims.searches)
    answers, wall, cpu = timed(lambda: [find_slots(**kw) for kw, _ in searches])
    result.replay = [wall, cpu]
    _check(answers == [s for _, s in searches], "find_slots replay gave other answers")
    if not args.child_naive:
        return
    busy = [(b.start, b.end) for b in shims.busy_lists[0]]
    _progress(f"policy: naive finder, {len(searches):,} searches over {len(busy):,} intervals")

    def naive_all() -> list[list[tuple[datetime, datetime, float]]]:
        return [
            naive_find_slots(
                duration=kw["duration"],
                original_start=kw["original_start"],
                search_from=kw["search_from"],
                search_until=kw["search_until"],
                busy=busy,
                working_hours=kw["working_hours"],
                zone=kw["zone"],
                buffer=kw["buffer"],
                granularity=kw["granularity"],
                count=kw["count"],
                shares=kw["habits"].shares() if kw.get("habits") else {},
                exclude=list(kw.get("exclude", ())),
            )
            for kw, _ in searches
        ]

    naive, wall, cpu = timed(naive_all)
    result.naive = [wall, cpu]
    differ = [
        i
        for i, ((_, slots), mine) in enumerate(zip(searches, naive, strict=True))
        if [(s.start, s.end, s.score) for s in slots] != mine
    ]
    _check(not differ, f"find_slots and the naive finder disagree on {len(differ)} searches")


def _progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


# --- parent: children, then the report ----------------------------------------------------


def spawn(args: argparse.Namespace, mode: str, run: int) -> RunResult:
    """One measured run in a fresh interpreter, so its peak RSS is its own."""
    with tempfile.NamedTemporaryFile(prefix="syncd-bench-policy-", suffix=".json") as out:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child-mode",
            mode,
            "--child-run",
            str(run),
            "--child-out",
            out.name,
            "--events",
            str(args.events),
            "--changes",
            str(args.changes),
            "--days",
            str(args.days),
            "--clients",
            str(args.clients),
            "--seed",
            str(args.seed),
        ]
        if mode == "policy" and run == 0 and not args.no_naive:
            argv.append("--child-naive")
        if args.tmpdir:
            argv += ["--tmpdir", args.tmpdir]
        code = subprocess.run(argv, check=False).returncode
        if code == EXIT_WRONG:
            print(f"ERROR: run {run + 1} ({mode}): the engine gave a wrong answer (see above)")
            sys.exit(EXIT_WRONG)
        if code != 0:
            print(
                f"ERROR: run {run + 1} ({mode}): the child crashed (exit {code})", file=sys.stderr
            )
            sys.exit(code if code > 0 else 2)
        return RunResult.from_json(json.loads(Path(out.name).read_text(encoding="utf-8")))


@dataclass(slots=True)
class Row:
    """One line of the table: a label and the per-run values."""

    label: str
    wall: list[float]
    cpu: list[float] | None = None
    peak: float | None = None
    extra: str = ""


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def rows(policy: Sequence[RunResult], plain: Sequence[RunResult]) -> list[Row]:
    """The table's rows, medians over the runs."""

    def cycles(runs: Sequence[RunResult], key: str) -> tuple[list[float], list[float]]:
        found = [getattr(r, key) for r in runs if getattr(r, key) is not None]
        return [c.wall for c in found], [c.cpu for c in found]

    first = policy[0]
    changes = first.cycle.changes
    found: list[Row] = []
    wall, cpu = cycles(policy, "baseline")
    found.append(
        Row("baseline cycle, client calendar", wall, cpu, None, f"read {first.baseline.read:,}")
    )
    wall, cpu = cycles(policy, "cycle")
    found.append(
        Row(
            f"{changes:,}-change cycle, client calendar",
            wall,
            cpu,
            _median([r.peak_rss_mb for r in policy]),
            f"{first.cycle.changes:,} changes, {first.cycle.verdicts:,} verdicts",
        )
    )
    for step in STEPS:
        calls = int(first.steps[step]["calls"])
        extra = f"{calls:,} calls" if calls != 1 else ""
        if step == "busy_index":
            extra = f"built once, {calls:,} lookups"
        found.append(
            Row(
                f"  of which {STEP_LABELS[step]}",
                [r.steps[step]["wall"] for r in policy],
                [r.steps[step]["cpu"] for r in policy],
                None,
                extra,
            )
        )
    for key, label in (
        ("followup", "follow-up cycle (annotated events)"),
        ("notes_cycle", "notes calendar cycle (new notes)"),
        ("quiet", "quiet cycle"),
    ):
        wall, cpu = cycles(policy, key)
        found.append(Row(label, wall, cpu, None, f"read {getattr(first, key).read:,}"))
    wall, cpu = cycles(plain, "baseline")
    found.append(
        Row("baseline cycle, plain calendar", wall, cpu, None, f"read {plain[0].baseline.read:,}")
    )
    wall, cpu = cycles(plain, "cycle")
    found.append(
        Row(
            f"{changes:,}-change cycle, plain calendar",
            wall,
            cpu,
            _median([r.peak_rss_mb for r in plain]),
            f"{plain[0].cycle.changes:,} changes, {plain[0].cycle.verdicts:,} verdicts",
        )
    )
    searches = first.counts["searches"]
    replayed = [r.replay for r in policy if r.replay]
    found.append(
        Row(
            f"find_slots replay, {searches:,} searches",
            [w for w, _ in replayed],
            [c for _, c in replayed],
            extra="the recorded calls, outside the cycle",
        )
    )
    naive = [r.naive for r in policy if r.naive]
    if naive:
        found.append(
            Row(
                f"naive finder, same {searches:,} searches",
                [w for w, _ in naive],
                [c for _, c in naive],
                extra="first run only",
            )
        )
    return found


def print_table(table: Sequence[Row], repeat: int) -> None:
    """Wall, CPU and peak RSS per row."""
    head = (
        f"{'phase':<44}{'runs':>5}{'wall ms':>12}{'(min-max)':>24}{'cpu ms':>12}"
        f"{'peak RSS MB':>13}  notes"
    )
    print()
    print(head)
    print("-" * len(head))
    for row in table:
        spread = f"({_ms(min(row.wall))}-{_ms(max(row.wall))})" if len(row.wall) > 1 else ""
        cpu = _ms(_median(row.cpu)) if row.cpu else "-"
        peak = f"{row.peak:.1f}" if row.peak is not None else ""
        print(
            f"{row.label:<44}{len(row.wall):>5}{_ms(_median(row.wall)):>12}{spread:>24}"
            f"{cpu:>12}{peak:>13}  {row.extra}"
        )
    print(
        f"\n(median of {repeat} runs, each in its own child process; peak RSS is ru_maxrss "
        "right after the timed cycle, i.e. the child's peak so far; the 'of which' rows are "
        "timing shims around the engine's steps inside the timed cycle)"
    )


def ratios(policy: Sequence[RunResult], plain: Sequence[RunResult]) -> dict[str, float]:
    """The ratios against the baselines measured in the same run, and per-verdict costs."""
    first = policy[0]
    verdicts = first.counts["verdicts"]
    cycle = _median([r.cycle.wall for r in policy])
    plain_cycle = _median([r.cycle.wall for r in plain])
    found = {
        "policy_over_plain_wall": cycle / plain_cycle,
        "policy_over_plain_cpu": _median([r.cycle.cpu for r in policy])
        / _median([r.cycle.cpu for r in plain]),
        "cycle_ms_per_verdict": cycle * 1000 / verdicts,
        "marginal_ms_per_verdict": (cycle - plain_cycle) * 1000 / verdicts,
    }
    for step in ("policy", "find_slots", "drain"):
        step_s = _median([r.steps[step]["wall"] for r in policy])
        found[f"{step}_ms_per_verdict"] = step_s * 1000 / verdicts
    naive = [r.naive for r in policy if r.naive]
    if naive and first.replay:
        # The same run's replay: the naive finder runs in the first child only.
        found["naive_over_find_slots_wall"] = naive[0][0] / first.replay[0]
    return found


def print_summary(policy: Sequence[RunResult], plain: Sequence[RunResult]) -> dict[str, float]:
    """Counters, ratios and per-verdict costs."""
    first = policy[0]
    counts = first.counts
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(first.kinds.items()))
    print(
        f"\nverdicts {counts['verdicts']:,} ({kinds}); notes written {counts['notes']:,} "
        f"({counts['note_writes']:,} note writes), annotations {counts['annotations']:,}; "
        f"audit records {counts['audit_records']:,}"
    )
    print(
        f"rebooking: {counts['searches']:,} searches over {counts['busy_intervals']:,} busy "
        f"intervals, {counts['suggestions']:,} suggestions in the notes "
        f"({counts['without_suggestion']:,} verdicts without any), "
        f"{counts['candidates_returned']:,} slots returned by find_slots (asked for 4x count)"
    )
    found = ratios(policy, plain)
    print(f"\n{'ratio':<48}{'value':>10}")
    lines = [
        ("policy cycle / plain cycle (wall)", found["policy_over_plain_wall"], "x"),
        ("policy cycle / plain cycle (cpu)", found["policy_over_plain_cpu"], "x"),
    ]
    if "naive_over_find_slots_wall" in found:
        lines.append(
            (
                "naive finder / find_slots (wall, same searches)",
                found["naive_over_find_slots_wall"],
                "x",
            )
        )
    lines += [
        ("cycle per verdict", found["cycle_ms_per_verdict"], " ms"),
        ("(policy cycle - plain cycle) per verdict", found["marginal_ms_per_verdict"], " ms"),
        ("policy step per verdict", found["policy_ms_per_verdict"], " ms"),
        ("  find_slots per verdict", found["find_slots_ms_per_verdict"], " ms"),
        ("outbox drain per verdict (note + annotation)", found["drain_ms_per_verdict"], " ms"),
    ]
    for label, value, unit in lines:
        print(f"{label:<48}{value:>10.2f}{unit}")
    return found


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the ``--child-*`` ones are internal."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events in the calendar")
    parser.add_argument(
        "--changes", type=int, default=1_000, help="client appointments changed (half declined)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs (median), one child each")
    parser.add_argument("--days", type=int, default=60, help="days ahead the events spread over")
    parser.add_argument("--clients", type=int, default=200, help="size of the client pool")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated calendar")
    parser.add_argument(
        "--tmpdir", default=None, help="where to put the temporary calendars (default: system temp)"
    )
    parser.add_argument(
        "--no-naive", action="store_true", help="skip the naive slot finder (slow by design)"
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the results as one JSON line at the end"
    )
    parser.add_argument("--child-mode", choices=("policy", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--child-run", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--child-naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.changes < 2 or args.changes > args.events // 4:
        parser.error("--changes must be between 2 and a quarter of --events")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if not 7 <= args.days <= 170:
        parser.error("--days must be between 7 and 170 (the horizon is 180 days)")
    if args.clients < 10:
        parser.error("--clients must be at least 10")
    return args


def child_main(args: argparse.Namespace) -> int:
    """Measure one run and write the result as JSON to ``--child-out``."""
    try:
        result = run_child(args)
    except WrongAnswer as wrong:
        print(f"ERROR: run {args.child_run + 1} ({args.child_mode}): {wrong}", flush=True)
        return EXIT_WRONG
    Path(args.child_out).write_text(json.dumps(asdict(result)), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the policy and plain children, then print the report."""
    args = parse_args(argv)
    if args.child_mode is not None:
        return child_main(args)
    print(
        f"syncd policy benchmark: python {platform.python_version()}, clock {NOW.isoformat()}, "
        f"{args.events:,} events (5% weekly series) over {args.days} days, {args.changes:,} "
        f"changes ({args.changes // 2:,} declines, {args.changes - args.changes // 2:,} moves), "
        f"{args.clients} clients, {args.repeat} runs",
        flush=True,
    )
    policy: list[RunResult] = []
    plain: list[RunResult] = []
    for run in range(args.repeat):
        policy.append(spawn(args, "policy", run))
        plain.append(spawn(args, "plain", run))
    print(
        f"\ncalendar: {args.events:,} files, {policy[0].instances:,} instances in the horizon; "
        f"RSS after generation and the baseline cycle "
        f"{_median([r.rss_before_mb for r in policy]):.1f} MB "
        f"(plain {_median([r.rss_before_mb for r in plain]):.1f} MB)"
    )
    print_table(rows(policy, plain), args.repeat)
    found = print_summary(policy, plain)
    if args.json:
        document = {
            "benchmark": "syncd-policy",
            "python": platform.python_version(),
            "clock": NOW.isoformat(),
            "events": args.events,
            "changes": args.changes,
            "days": args.days,
            "clients": args.clients,
            "repeat": args.repeat,
            "seed": args.seed,
            "runs": {"policy": [asdict(r) for r in policy], "plain": [asdict(r) for r in plain]},
            "medians_s": {
                "policy_cycle": {
                    "wall": _median([r.cycle.wall for r in policy]),
                    "cpu": _median([r.cycle.cpu for r in policy]),
                },
                "plain_cycle": {
                    "wall": _median([r.cycle.wall for r in plain]),
                    "cpu": _median([r.cycle.cpu for r in plain]),
                },
                **{step: _median([r.steps[step]["wall"] for r in policy]) for step in STEPS},
            },
            "ratios": found,
        }
        print(json.dumps(document, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
