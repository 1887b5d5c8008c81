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
or with a verdict of the wrong kind or fee, a verdict without exactly one note file, a pending
deposit that a move in the same cycle rebooks without exactly one resolution (kept as credit:
the verdict's note is rendered and written again), a note rendering without exactly one
suggestion list from one ``find_slots`` search, a suggested slot that overlaps a busy
instance of the generated calendar, ``find_slots`` disagreeing with the naive finder, a
follow-up or quiet cycle that writes something) or something crashed.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import importlib
import json
import os
import random
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

from _common import (
    NOW,
    Table,
    check,
    child_main,
    config_prelude,
    forward,
    median,
    parse,
    parser,
    peak_rss_mb,
    print_banner,
    print_json,
    progress,
    save_as_an_app,
    spawn,
    stamp,
    start_child,
    timed,
    timed_cycle,
    toml_path,
)

if TYPE_CHECKING:  # the parent process stays lean: syncd is imported in the child only
    from syncd.engine import CycleReport, Engine
    from syncd.rebook import Busy, Habits
    from syncd.scribe import Scribe
    from syncd.verdict import Verdict

# NOW, the fixed clock of every cycle, is a Wednesday: the next 60 days cross the European
# DST switch.
WORK, NOTES = "work", "notes"
OWNER_EMAIL = "me@example.com"
DESK_EMAIL = "desk@example.com"
"""The owner's second address: the attendee of the plain calendar's appointments."""
OWNER_ZONE = ZoneInfo("Europe/Berlin")
WORKING_HOURS: dict[int, tuple[int, int]] = {**dict.fromkeys(range(5), (8, 20)), 5: (9, 13)}
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
T = TypeVar("T")


# --- calendar generation ------------------------------------------------------------------


@dataclass(slots=True)
class Spec:
    """One generated event (a single appointment or a weekly series), in local wall time."""

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
    def href(self) -> str:
        """The file name: the UID plus ``.ics``."""
        return f"{self.uid}.ics"

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

    folder: Path
    notes_folder: Path
    config_path: Path
    specs: list[Spec]
    changes: list[Change]
    configured: dict[int, Decimal]
    """Configured clients: pool index -> rate."""
    short_window: set[int]
    """Configured clients with their own 24 h window."""


def client_email(number: int) -> str:
    """The address of client ``number`` of the pool."""
    return f"client{number:03d}@example.org"


def _utc(local: datetime) -> datetime:
    return local.replace(tzinfo=OWNER_ZONE).astimezone(UTC)


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
        spec = Spec(uid, index, client, start, minutes, partstat, count)
        specs.append(spec)
        (folder / spec.href).write_bytes(render(spec, with_clients))
    config_path = root / "syncd.toml"
    config_path.write_text(
        config_text(root, folder, notes, configured, short_window), encoding="utf-8"
    )
    return Corpus(
        folder=folder,
        notes_folder=notes,
        config_path=config_path,
        specs=specs,
        changes=plan_changes(random.Random(args.seed), specs, args.changes),
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
        f"LAST-MODIFIED:{stamp(NOW) if changed else '20260101T080000'}Z",
        f"SEQUENCE:{1 if changed else 0}",
        f"DTSTART;TZID={OWNER_ZONE.key}:{stamp(begin)}",
        f"DTEND;TZID={OWNER_ZONE.key}:{stamp(end)}",
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
        save_as_an_app(corpus.folder / change.spec.href, data)


def owner_lines() -> list[str]:
    """``[owner]``: the owner's addresses, zone and working hours."""
    hours = ", ".join(
        f'{_DAY_KEYS[day]} = "{opens:02d}:00-{closes:02d}:00"'
        for day, (opens, closes) in WORKING_HOURS.items()
    )
    return [
        "[owner]",
        f'emails = ["{OWNER_EMAIL}", "{DESK_EMAIL}"]',
        f'timezone = "{OWNER_ZONE.key}"',
        f"working_hours = {{ {hours} }}",
    ]


def policy_lines(notes: Path) -> list[str]:
    """The local notes calendar, ``[notes]``, ``[policy]`` with a deposit and an actor rule,
    ``[pricing]`` and ``[rebooking]``."""
    return [
        "[[calendars]]",
        f'name = "{NOTES}"',
        'connector = "local"',
        f"path = {toml_path(notes)}",
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


def config_text(
    root: Path,
    folder: Path,
    notes: Path,
    configured: Mapping[int, Decimal],
    short_window: set[int],
) -> str:
    """The configuration: [owner] with working hours, the calendar and the notes calendar,
    [policy] with a deposit and an actor rule, [pricing], [[clients]] and [rebooking]."""
    lines = [
        *config_prelude(root),
        *owner_lines(),
        "[[calendars]]",
        f'name = "{WORK}"',
        'connector = "local"',
        f"path = {toml_path(folder)}",
        "create = false",
        *policy_lines(notes),
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
    habits: Habits | None = None,
    exclude: Sequence[tuple[datetime, datetime]] = (),
) -> list[tuple[datetime, datetime, float]]:
    """What ``syncd.rebook.find_slots`` documents, done naively (same arguments, but ``busy``
    a plain list): every candidate on the local grid of every day's working hours is checked
    against every busy interval in turn (stopping at the first overlap), then all free
    candidates are sorted by score."""
    shares = habits.shares() if habits else {}
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


@dataclass(frozen=True, slots=True)
class Suggested:
    """One call of ``Scribe._suggest``: one note being rendered for a verdict."""

    key: str
    deposit: str | None
    """The deposit state of the verdict the note is rendered for: it tells the verdict's own
    note (``pending`` for a timely cancellation) from its resolution note (``kept_as_credit``)."""
    slots: list[tuple[datetime, datetime]]
    searches: int
    """``find_slots`` calls made while this note's suggestions were chosen."""


@dataclass(slots=True)
class Shims:
    """Timing shims on the engine's steps, installed in the child process only.

    ``Judge.on_changes``, ``Scribe._busy_index`` and ``Scribe._suggest`` are wrapped on the
    classes (the engine makes a judge per cycle), ``engine.drain`` and ``store.commit_cycle``
    on the instances; ``find_slots``, ``render_note`` and ``BusyIndex`` in the
    ``syncd.scribe`` module namespace, where the scribe looks them up."""

    clocks: dict[str, Clock] = field(default_factory=lambda: {k: Clock() for k in STEPS})
    searches: list[tuple[dict[str, Any], list[Any]]] = field(default_factory=list)
    suggested: list[Suggested] = field(default_factory=list)
    busy_lists: list[list[Busy]] = field(default_factory=list)
    recording: bool = False

    def install(self, engine: Engine) -> None:
        """Wrap the steps; nothing is recorded until :meth:`reset`."""
        from syncd.judge import Judge
        from syncd.rebook import BusyIndex
        from syncd.scribe import Scribe

        module = importlib.import_module("syncd.scribe")
        for owner, name, step in (
            (Judge, "on_changes", "policy"),
            (Scribe, "_busy_index", "busy_index"),
            (engine, "drain", "drain"),
            (engine.store, "commit_cycle", "commit"),
            (module, "render_note", "render_note"),
        ):
            setattr(owner, name, self.clocks[step].wrap(getattr(owner, name)))
        timed_find = self.clocks["find_slots"].wrap(module.find_slots)
        original_suggest = Scribe._suggest
        shims = self

        def find_slots(**kwargs: Any) -> Any:
            slots = timed_find(**kwargs)
            if shims.recording:
                shims.searches.append((kwargs, list(slots)))
            return slots

        def suggest(
            scribe: Scribe, verdict: Verdict, now: datetime
        ) -> list[tuple[datetime, datetime]]:
            before = len(shims.searches)
            chosen = original_suggest(scribe, verdict, now)
            if shims.recording:
                deposit = verdict.deposit.value if verdict.deposit else None
                searches = len(shims.searches) - before
                shims.suggested.append(Suggested(verdict.key, deposit, list(chosen), searches))
            return chosen

        class RecordingIndex(BusyIndex):
            """``BusyIndex`` that keeps its input, so the naive finder gets the same one."""

            def __init__(self, intervals: Any) -> None:
                kept = list(intervals)
                if shims.recording:
                    shims.busy_lists.append(kept)
                super().__init__(kept)

        for owner, name, value in (
            (module, "find_slots", find_slots),
            (module, "BusyIndex", RecordingIndex),
            (Scribe, "_suggest", suggest),
        ):
            setattr(owner, name, value)

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
    report, wall, cpu = timed_cycle(engine, name, name)
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
    start_child("syncd.app", "syncd.judge", "syncd.normalize", "connectors.local")
    policy = args.child_mode == "policy"
    with tempfile.TemporaryDirectory(prefix="syncd-bench-policy-", dir=args.tmpdir) as temp:
        progress(f"run {args.child_run + 1} {args.child_mode}: generating {args.events:,} events")
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
        progress(f"{label}: baseline cycle")
        report, baseline = _cycle(engine, WORK)
        check(report.baseline and not report.changes, "baseline cycle reported changes")
        engine.cycle(NOTES)
        audit.new()
        apply_changes(corpus, with_clients=policy)
        gc.collect()
        rss_before = peak_rss_mb()
        shims.reset(recording=policy)
        progress(f"{label}: timed cycle after {len(corpus.changes):,} changes")
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
            check(
                not report.verdicts and not records_of(records, "verdict"),
                f"plain calendar: {len(report.verdicts)} verdicts, expected none",
            )
            check(not os.listdir(corpus.notes_folder), "plain calendar: notes were written")
            return result
        check_verdicts(corpus, report, records, result)
        check_resolutions(corpus, records, result)
        check_notes(corpus, records, result)
        check_suggestions(corpus, shims, records, result)
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
    check(
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
    check(
        not extra and not missing and not doubled,
        f"verdict records: {len(verdicts)} for {len(changed)} changed appointments; "
        f"missing {len(missing)} (first {missing[:1]}), doubled {len(doubled)}, "
        f"unexpected {len(extra)}",
    )
    check(len(report.verdicts) == len(verdicts), "cycle report and audit log disagree")
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
    check(not wrong, f"{len(wrong)} verdicts disagree with the policy, first: {wrong[:1]}")
    result.kinds = dict(Counter(v["verdict"] for v in verdicts))
    result.counts["verdicts"] = len(verdicts)


def expected_resolutions(corpus: Corpus) -> dict[str, set[str]]:
    """The timely declines whose pending deposit the same cycle keeps as credit, by UID, with
    the UIDs of the moves that may resolve it: the engine resolves deposits after all of a
    cycle's verdicts, so a client's move to within ``REBOOK_WITHIN`` of the declined
    appointment's start keeps its deposit (whichever such move the engine meets first)."""
    moves = [c for c in corpus.changes if c.kind == "move"]
    found: dict[str, set[str]] = {}
    for change in corpus.changes:
        if change.kind != "decline" or expected_verdict(corpus, change)[2] != "pending":
            continue
        start = _utc(change.spec.start)
        rebooked = {
            m.spec.uid
            for m in moves
            if m.spec.client == change.spec.client
            and m.new_start is not None
            and abs(_utc(m.new_start) - start) <= REBOOK_WITHIN
        }
        if rebooked:
            found[change.spec.uid] = rebooked
    return found


def check_resolutions(corpus: Corpus, records: Sequence[dict[str, Any]], result: RunResult) -> None:
    """Exactly one resolution record, ``kept_as_credit`` and linked to one of the client's
    qualifying moves, per pending deposit the generated changes rebook; none other."""
    expected = expected_resolutions(corpus)
    resolutions = records_of(records, "resolution")
    by_uid = Counter(r["uid"] for r in resolutions)
    wrong = [
        f"{r['uid']}: {r['resolution']}, linked to {(r.get('linked') or {}).get('uid')}"
        for r in resolutions
        if r["resolution"] != "kept_as_credit"
        or (r.get("linked") or {}).get("uid") not in expected.get(r["uid"], set())
    ]
    check(
        set(by_uid) == set(expected) and all(n == 1 for n in by_uid.values()) and not wrong,
        f"resolutions: {len(resolutions)} records for {len(expected)} rebooked pending "
        f"deposits; missing {len(set(expected) - set(by_uid))}, unexpected "
        f"{len(set(by_uid) - set(expected))}, doubled {sum(n > 1 for n in by_uid.values())}, "
        f"wrong {len(wrong)} (first {wrong[:1]})",
    )
    result.counts["resolutions"] = len(resolutions)


def check_notes(corpus: Corpus, records: Sequence[dict[str, Any]], result: RunResult) -> None:
    """Exactly one note file per verdict, every write applied, every event annotated; one
    note write per decision: the verdict's, and its resolution's when the cycle resolves
    its deposit (the same file, written again with the deposit kept as credit)."""
    from syncd.annotate import private_properties
    from syncd.notes import note_href

    keys = [v["key"] for v in records_of(records, "verdict")]
    wanted = {note_href(k) for k in keys}
    present = {n for n in os.listdir(corpus.notes_folder) if n.endswith(".ics")}
    check(
        len(wanted) == len(keys) and present == wanted,
        f"notes: {len(present)} files for {len(keys)} verdicts "
        f"({len(wanted - present)} missing, {len(present - wanted)} unexpected)",
    )
    writes = records_of(records, "write")
    failed = [w for w in writes if w["status"] not in ("intended", "applied")]
    check(not failed, f"{len(failed)} writes did not apply, first: {failed[:1]}")
    applied = Counter(w["action"] for w in writes if w["status"] == "applied")
    unannotated = [
        c.spec.href
        for c in corpus.changes
        if "X-SYNCD-VERDICT" not in private_properties((corpus.folder / c.spec.href).read_bytes())
    ]
    check(not unannotated, f"{len(unannotated)} changed events carry no X-SYNCD-VERDICT")
    decisions = len(keys) + len(records_of(records, "resolution"))
    check(
        applied["note"] == decisions,
        f"{applied['note']} note writes for {decisions} decisions (verdicts and resolutions)",
    )
    result.counts.update(
        notes=len(present),
        note_writes=applied["note"],
        annotations=applied["annotate"],
        audit_records=len(records),
    )


def check_suggestions(
    corpus: Corpus, shims: Shims, records: Sequence[dict[str, Any]], result: RunResult
) -> None:
    """Every suggested slot (what went into the notes) and every slot ``find_slots``
    returned is free: no overlap with any busy interval of the generated calendar. One
    suggestion list, from one ``find_slots`` search, per note rendered: per verdict for its
    own note (with the deposit state of its verdict record) and per resolution for the
    verdict's note written again (with the resolved deposit state); nothing else."""
    truth = Intervals(busy_truth(corpus, NOW + timedelta(days=200)))
    bad = [
        (s.key[:12], start.isoformat())
        for s in shims.suggested
        for start, end in s.slots
        if truth.overlaps(start, end)
    ]
    bad += [
        ("find_slots", slot.start.isoformat())
        for _, slots in shims.searches
        for slot in slots
        if truth.overlaps(slot.start, slot.end)
    ]
    check(not bad, f"{len(bad)} suggested slots overlap a busy instance, first: {bad[:1]}")
    verdicts = records_of(records, "verdict")
    resolutions = records_of(records, "resolution")
    expected = Counter((r["key"], r["deposit"]) for r in [*verdicts, *resolutions])
    found = Counter((s.key, s.deposit) for s in shims.suggested)
    check(
        found == expected,
        f"{len(shims.suggested)} suggestion lists for {len(verdicts)} verdict notes and "
        f"{len(resolutions)} resolution notes: {(found - expected).total()} unexpected "
        f"(first {sorted(found - expected)[:1]}), {(expected - found).total()} missing "
        f"(first {sorted(expected - found)[:1]})",
    )
    searches = Counter(s.searches for s in shims.suggested)
    check(
        set(searches) == {1} and len(shims.searches) == len(shims.suggested),
        f"{len(shims.searches)} searches for {len(shims.suggested)} suggestion lists "
        f"(searches per list: {dict(searches)})",
    )
    check(len(shims.busy_lists) == 1, f"{len(shims.busy_lists)} busy indexes built, expected 1")
    result.counts.update(
        searches=len(shims.searches),
        suggestion_lists=len(shims.suggested),
        suggestions=sum(len(s.slots) for s in shims.suggested),
        without_suggestion=sum(1 for s in shims.suggested if not s.slots),
        candidates_returned=sum(len(s) for _, s in shims.searches),
        busy_intervals=len(shims.busy_lists[0]),
    )


def check_quiet(engine: Engine, corpus: Corpus, audit: Audit, result: RunResult) -> None:
    """The follow-up cycles (syncd's own annotations, the new notes) and a quiet cycle
    after them write nothing: no audit record, no outbox row, no file touched."""
    before = _fingerprint(corpus.folder, corpus.notes_folder)
    outbox = len(engine.store.outbox("done"))
    progress("policy: follow-up and quiet cycles")
    cycles: dict[str, Cycle] = {}
    for label, name in (("followup", WORK), ("notes_cycle", NOTES), ("quiet", WORK)):
        report, cycles[label] = _cycle(engine, name)
        check(
            not report.changes and not report.verdicts,
            f"{label} cycle: {len(report.changes)} changes, {len(report.verdicts)} verdicts",
        )
        records = audit.new()
        check(not records, f"{label} cycle wrote {len(records)} audit records: {records[:1]}")
    engine.cycle(NOTES)
    check(not audit.new(), "quiet notes cycle wrote audit records")
    check(cycles["quiet"].read == 0, f"quiet cycle read {cycles['quiet'].read} objects")
    check(
        _fingerprint(corpus.folder, corpus.notes_folder) == before,
        "a follow-up or quiet cycle changed a file",
    )
    check(
        len(engine.store.outbox("done")) == outbox and not engine.store.outbox("pending"),
        "a follow-up or quiet cycle queued a write",
    )
    result.followup, result.notes_cycle, result.quiet = cycles.values()


def replay(shims: Shims, args: argparse.Namespace, result: RunResult) -> None:
    """The recorded ``find_slots`` calls again, outside the cycle, then (first run only)
    the same calls against the naive finder; their answers must agree."""
    from syncd.rebook import find_slots

    searches = list(shims.searches)
    answers, wall, cpu = timed(lambda: [find_slots(**kw) for kw, _ in searches])
    result.replay = [wall, cpu]
    check(answers == [s for _, s in searches], "find_slots replay gave other answers")
    if not args.child_naive:
        return
    busy = [(b.start, b.end) for b in shims.busy_lists[0]]
    progress(f"policy: naive finder, {len(searches):,} searches over {len(busy):,} intervals")

    naive, wall, cpu = timed(
        lambda: [naive_find_slots(**{**kw, "busy": busy}) for kw, _ in searches]
    )
    result.naive = [wall, cpu]
    differ = [
        i
        for i, ((_, slots), mine) in enumerate(zip(searches, naive, strict=True))
        if [(s.start, s.end, s.score) for s in slots] != mine
    ]
    check(not differ, f"find_slots and the naive finder disagree on {len(differ)} searches")


# --- parent: children, then the report ----------------------------------------------------


def run_once(args: argparse.Namespace, mode: str, run: int) -> RunResult:
    """One measured run in a fresh interpreter, so its peak RSS is its own."""
    options = ["--child-mode", mode, "--child-run", str(run)]
    options += forward(args, "events", "changes", "days", "clients", "seed")
    if mode == "policy" and run == 0 and not args.no_naive:
        options.append("--child-naive")
    return RunResult.from_json(spawn(__file__, options, f"run {run + 1} ({mode})", args.tmpdir))


@dataclass(slots=True)
class Row:
    """One line of the table: a label and the per-run values."""

    label: str
    wall: list[float]
    cpu: list[float] | None = None
    peak: float | None = None
    extra: str = ""


def _times(runs: Sequence[RunResult], key: str) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of cycle ``key`` over the runs that have it."""
    found = [getattr(r, key) for r in runs if getattr(r, key) is not None]
    return [c.wall for c in found], [c.cpu for c in found]


def _cycle_medians(runs: Sequence[RunResult]) -> dict[str, float]:
    """Median wall and CPU seconds of the timed cycle."""
    wall, cpu = _times(runs, "cycle")
    return {"wall": median(wall), "cpu": median(cpu)}


def _step_median(runs: Sequence[RunResult], step: str) -> float:
    """Median wall seconds of one shimmed step."""
    return median([r.steps[step]["wall"] for r in runs])


def _pairs_row(label: str, pairs: Sequence[list[float]], extra: str) -> Row:
    """A row from per-run ``[wall, cpu]`` pairs."""
    return Row(label, [w for w, _ in pairs], [c for _, c in pairs], extra=extra)


def rows(policy: Sequence[RunResult], plain: Sequence[RunResult]) -> list[Row]:
    """The table's rows, medians over the runs."""
    first = policy[0]
    changes = first.cycle.changes

    def calendar_rows(runs: Sequence[RunResult], calendar: str) -> list[Row]:
        """The baseline and the timed cycle of one calendar."""
        head = runs[0]
        return [
            Row(
                f"baseline cycle, {calendar} calendar",
                *_times(runs, "baseline"),
                None,
                f"read {head.baseline.read:,}",
            ),
            Row(
                f"{changes:,}-change cycle, {calendar} calendar",
                *_times(runs, "cycle"),
                median([r.peak_rss_mb for r in runs]),
                f"{head.cycle.changes:,} changes, {head.cycle.verdicts:,} verdicts",
            ),
        ]

    found = calendar_rows(policy, "client")
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
        found.append(Row(label, *_times(policy, key), None, f"read {getattr(first, key).read:,}"))
    found += calendar_rows(plain, "plain")
    searches = first.counts["searches"]
    replayed = [r.replay for r in policy if r.replay]
    label = f"find_slots replay, {searches:,} searches"
    found.append(_pairs_row(label, replayed, "the recorded calls, outside the cycle"))
    naive = [r.naive for r in policy if r.naive]
    if naive:
        label = f"naive finder, same {searches:,} searches"
        found.append(_pairs_row(label, naive, "first run only"))
    return found


def print_table(table: Sequence[Row], repeat: int) -> None:
    """Wall, CPU and peak RSS per row."""
    layout = Table(44, 24, [("peak RSS MB", 13)], "  notes")
    print()
    layout.print_head()
    for row in table:
        peak = f"{row.peak:.1f}" if row.peak is not None else ""
        layout.print_row(row.label, row.wall, row.cpu, peak, tail=f"  {row.extra}")
    print(
        f"\n(median of {repeat} runs, each in its own child process; peak RSS is ru_maxrss "
        "right after the timed cycle, i.e. the child's peak so far; the 'of which' rows are "
        "timing shims around the engine's steps inside the timed cycle)"
    )


def ratios(policy: Sequence[RunResult], plain: Sequence[RunResult]) -> dict[str, float]:
    """The ratios against the baselines measured in the same run, and per-verdict costs."""
    first = policy[0]
    verdicts = first.counts["verdicts"]
    cycle, plain_cycle = _cycle_medians(policy), _cycle_medians(plain)
    found = {
        "policy_over_plain_wall": cycle["wall"] / plain_cycle["wall"],
        "policy_over_plain_cpu": cycle["cpu"] / plain_cycle["cpu"],
        "cycle_ms_per_verdict": cycle["wall"] * 1000 / verdicts,
        "marginal_ms_per_verdict": (cycle["wall"] - plain_cycle["wall"]) * 1000 / verdicts,
    }
    for step in ("policy", "find_slots", "drain"):
        found[f"{step}_ms_per_verdict"] = _step_median(policy, step) * 1000 / verdicts
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
        f"intervals for {counts['suggestion_lists']:,} notes rendered ({counts['verdicts']:,} "
        f"verdicts, {counts['resolutions']:,} resolutions of a deposit rebooked in the same "
        f"cycle), {counts['suggestions']:,} suggestions in them "
        f"({counts['without_suggestion']:,} without any), "
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
    options = parser(__doc__, repeat=3, repeat_help="runs (median), one child each")
    options.add_argument("--events", type=int, default=10_000, help="events in the calendar")
    options.add_argument(
        "--changes", type=int, default=1_000, help="client appointments changed (half declined)"
    )
    options.add_argument("--days", type=int, default=60, help="days ahead the events spread over")
    options.add_argument("--clients", type=int, default=200, help="size of the client pool")
    options.add_argument(
        "--no-naive", action="store_true", help="skip the naive slot finder (slow by design)"
    )
    options.add_argument("--child-mode", choices=("policy", "plain"), help=argparse.SUPPRESS)
    options.add_argument("--child-run", type=int, default=0, help=argparse.SUPPRESS)
    options.add_argument("--child-naive", action="store_true", help=argparse.SUPPRESS)
    args = parse(options, argv)
    if args.changes < 2 or args.changes > args.events // 4:
        options.error("--changes must be between 2 and a quarter of --events")
    if not 7 <= args.days <= 170:
        options.error("--days must be between 7 and 170 (the horizon is 180 days)")
    if args.clients < 10:
        options.error("--clients must be at least 10")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the policy and plain children, then print the report."""
    args = parse_args(argv)
    if args.child_out is not None:
        label = f"run {args.child_run + 1} ({args.child_mode})"
        return child_main(args.child_out, label, lambda: run_child(args))
    print_banner(
        "syncd policy benchmark",
        f"{args.events:,} events (5% weekly series) over {args.days} days, {args.changes:,} "
        f"changes ({args.changes // 2:,} declines, {args.changes - args.changes // 2:,} moves), "
        f"{args.clients} clients, {args.repeat} runs",
    )
    policy: list[RunResult] = []
    plain: list[RunResult] = []
    for run in range(args.repeat):
        policy.append(run_once(args, "policy", run))
        plain.append(run_once(args, "plain", run))
    print(
        f"\ncalendar: {args.events:,} files, {policy[0].instances:,} instances in the horizon; "
        f"RSS after generation and the baseline cycle "
        f"{median([r.rss_before_mb for r in policy]):.1f} MB "
        f"(plain {median([r.rss_before_mb for r in plain]):.1f} MB)"
    )
    print_table(rows(policy, plain), args.repeat)
    found = print_summary(policy, plain)
    if args.json:
        print_json(
            "syncd-policy",
            events=args.events,
            changes=args.changes,
            days=args.days,
            clients=args.clients,
            repeat=args.repeat,
            seed=args.seed,
            runs={"policy": [asdict(r) for r in policy], "plain": [asdict(r) for r in plain]},
            medians_s={
                "policy_cycle": _cycle_medians(policy),
                "plain_cycle": _cycle_medians(plain),
                **{step: _step_median(policy, step) for step in STEPS},
            },
            ratios=found,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
