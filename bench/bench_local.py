"""Benchmark of the ``local`` connector plus the engine, against a naive full re-parse.

Run from the project root::

    .venv/bin/python bench/bench_local.py --sizes 1000,10000 [--recurring-share 0.05]
        [--repeat 5] [--json] [--tracemalloc] [--tmpdir DIR]

For each size a fresh child process (this script, re-invoked with a hidden flag) generates a
vdir calendar folder and a configuration in a temporary folder, then measures with syncd's real
code (``load_config``, ``syncd.app.open_engine``, ``Engine.cycle``, fixed clock):

1. the initial cycle (baseline),
2. the no-change cycle (median of ``--repeat`` runs),
3. a cycle after 10 single events were moved by an hour (median of ``--repeat`` runs, each
   on 10 other files),
4. a naive sync: read and ``normalize_object`` every file, build the full instance map
   (median of ``--repeat`` runs).

Each phase reports wall time (``perf_counter``), CPU time (``process_time``) and the process's
peak RSS so far (``ru_maxrss``). With ``--tracemalloc`` a second, untimed child run reports the
peak of Python allocations per phase. Targets are printed as PASS/MISS; the exit status is 0
unless the engine gave a wrong answer (exit 1: no-change cycle with changes, 10-change cycle
without exactly 10 ``moved`` changes, ...) or something crashed.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import tempfile
import tracemalloc
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from _common import (
    NOW,
    Table,
    Target,
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
    from syncd.model import Instance, InstanceKey
    from syncd.normalize import Horizon

CALENDAR = "work"
OWNER_EMAIL = "me@example.com"
OWNER_ZONE = "Europe/Berlin"
ZONES = ("Europe/Berlin", "America/New_York", "UTC")
CHANGED_FILES = 10
TARGET_SIZE = 10_000
TARGET_NAIVE_RATIO = 20.0
TARGET_CHANGE_RATIO = 2.0
TARGET_PEAK_MB = 200.0


# --- results ------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    """Timings and counters of one measured phase (one or several runs)."""

    name: str
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    """``ru_maxrss`` of the process right after the phase: the peak so far, not per phase."""
    read: int = 0
    changes: int = 0
    instances: int = 0
    trace_peak_mb: float | None = None

    @property
    def wall(self) -> float:
        """Median wall time in seconds."""
        return median(self.wall_s)

    @property
    def cpu(self) -> float:
        """Median CPU time in seconds."""
        return median(self.cpu_s)

    def add(self, wall: float, cpu: float, trace: Trace) -> None:
        """One run's times, the peak RSS so far and the run's tracemalloc peak."""
        self.wall_s.append(wall)
        self.cpu_s.append(cpu)
        self.peak_rss_mb = peak_rss_mb()
        peak = trace.peak_mb()
        if peak is not None:
            self.trace_peak_mb = (
                peak if self.trace_peak_mb is None else max(self.trace_peak_mb, peak)
            )


@dataclass(slots=True)
class SizeResult:
    """Everything measured for one calendar size."""

    size: int
    series: int
    instances: int
    disk_mb: float
    startup_rss_mb: float
    phases: dict[str, Phase]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SizeResult:
        """Inverse of :func:`dataclasses.asdict`."""
        phases = {k: Phase(**v) for k, v in data.pop("phases").items()}
        return cls(phases=phases, **data)

    def ratio(self, numerator: str, denominator: str, cpu: bool = False) -> float:
        """Median of phase ``numerator`` over median of phase ``denominator``."""
        top, bottom = self.phases[numerator], self.phases[denominator]
        return (top.cpu / bottom.cpu) if cpu else (top.wall / bottom.wall)

    @property
    def engine_peak_mb(self) -> float:
        """Peak RSS over the engine phases (before the naive baseline ran)."""
        return max(self.phases[p].peak_rss_mb for p in ENGINE_PHASES)


INITIAL, NO_CHANGE, TEN_CHANGES, NAIVE = "initial", "no_change", "ten_changes", "naive"
ENGINE_PHASES = (INITIAL, NO_CHANGE, TEN_CHANGES)
LABELS = {
    INITIAL: "initial cycle (baseline)",
    NO_CHANGE: "no-change cycle",
    TEN_CHANGES: f"{CHANGED_FILES}-change cycle",
    NAIVE: "naive full parse",
}


# --- calendar generation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    """A generated calendar folder and the configuration that watches it."""

    folder: Path
    config_path: Path
    series: int
    movable: list[str]
    """File names of single events well inside the horizon, in random order."""


def _dt_prop(name: str, local: datetime, zone: str) -> str:
    """``NAME;TZID=zone:local`` or ``NAME:...Z`` for UTC."""
    if zone == "UTC":
        return f"{name}:{stamp(local)}Z"
    return f"{name};TZID={zone}:{stamp(local)}"


def _attendee_lines(index: int, rng: random.Random) -> list[str]:
    partstats = ("ACCEPTED", "NEEDS-ACTION", "TENTATIVE", "ACCEPTED")
    lines = [
        f"ATTENDEE;CN=Client {index};PARTSTAT={rng.choice(partstats)};RSVP=TRUE:"
        f"mailto:client{index}@example.org"
    ]
    if rng.random() < 0.4:
        lines.append(
            f"ATTENDEE;CN=Assistant {index % 50};PARTSTAT={rng.choice(partstats)}:"
            f"mailto:assistant{index % 50}@example.net"
        )
    return lines


def _vevent(
    uid: str,
    index: int,
    rng: random.Random,
    start: datetime,
    minutes: int,
    zone: str,
    extra: Sequence[str] = (),
    summary: str | None = None,
) -> list[str]:
    """The lines of one VEVENT; ``start`` is wall-clock time in ``zone``."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T080000Z",
        "LAST-MODIFIED:20260101T080000Z",
        "SEQUENCE:0",
        _dt_prop("DTSTART", start, zone),
        _dt_prop("DTEND", start + timedelta(minutes=minutes), zone),
        f"SUMMARY:{summary or f'Session with client {index}'}",
        "STATUS:CONFIRMED",
        "ORGANIZER;CN=Me:mailto:" + OWNER_EMAIL,
        *_attendee_lines(index, rng),
    ]
    if rng.random() < 0.5:
        lines.append(f"LOCATION:Room {rng.randint(1, 40)}\\, Main Street {index % 200}")
    if rng.random() < 0.5:
        lines.append(
            "DESCRIPTION:Agenda: follow-up on the last session\\, open questions\\, "
            "and the plan for the next weeks."
        )
    return [*lines, *extra, "END:VEVENT"]


def _calendar_text(events: Sequence[str]) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//syncd//bench//EN",
        *events,
        "END:VCALENDAR",
    ]
    return "".join(f"{line}\r\n" for line in lines).encode("utf-8")


def _local_today(zone: str) -> date:
    return NOW.astimezone(ZoneInfo(zone)).date()


def _single(uid: str, index: int, rng: random.Random) -> tuple[bytes, bool]:
    """A single event between 29 days ago and 179 days ahead; True if safe to move."""
    zone = ZONES[index % len(ZONES)]
    offset = rng.randint(-29, 179)
    day = _local_today(zone) + timedelta(days=offset)
    start = datetime.combine(day, datetime.min.time()).replace(
        hour=rng.randint(8, 17), minute=rng.choice((0, 15, 30, 45))
    )
    minutes = rng.choice((30, 45, 60, 90))
    movable = -20 <= offset <= 170
    return _calendar_text(_vevent(uid, index, rng, start, minutes, zone)), movable


def _series(uid: str, index: int, number: int, rng: random.Random) -> bytes:
    """A weekly series that started 1-9 weeks ago; some end, some have an EXDATE or override."""
    zone = ZONES[index % len(ZONES)]
    weeks_ago = rng.randint(1, 9)
    day = _local_today(zone) - timedelta(days=7 * weeks_ago + rng.randint(0, 6))
    start = datetime.combine(day, datetime.min.time()).replace(hour=rng.randint(8, 17))
    minutes = rng.choice((45, 60))
    rule = (
        "RRULE:FREQ=WEEKLY",
        "RRULE:FREQ=WEEKLY;COUNT=26",
        f"RRULE:FREQ=WEEKLY;UNTIL={stamp(start + timedelta(weeks=20))}Z",
    )[number % 3]
    # An occurrence two weeks ahead: inside the horizon and before COUNT/UNTIL end the series.
    special = start + timedelta(weeks=weeks_ago + 2)
    extra = [rule]
    if number % 5 == 0:
        extra.append(_dt_prop("EXDATE", special, zone))
    events = _vevent(uid, index, rng, start, minutes, zone, extra, f"Weekly coaching {index}")
    if number % 7 == 0:
        # Override one occurrence (the one after the excluded date, if there is one): +2 hours.
        original = special + timedelta(weeks=1 if number % 5 == 0 else 0)
        events += _vevent(
            uid,
            index,
            rng,
            original + timedelta(hours=2),
            minutes,
            zone,
            [_dt_prop("RECURRENCE-ID", original, zone)],
            f"Weekly coaching {index} (moved)",
        )
    return _calendar_text(events)


def generate(root: Path, size: int, recurring_share: float, seed: int) -> Corpus:
    """Write ``size`` one-object ``.ics`` files (file name = UID) and a configuration."""
    rng = random.Random(seed * 1_000_003 + size)
    folder = root / "calendars" / CALENDAR
    folder.mkdir(parents=True, mode=0o700)
    series_at = set(rng.sample(range(size), round(size * recurring_share)))
    movable: list[str] = []
    number = 0
    for index in range(size):
        uid = f"bench-{index:06d}-{rng.getrandbits(32):08x}@syncd.example"
        href = f"{uid}.ics"
        if index in series_at:
            data = _series(uid, index, number, rng)
            number += 1
        else:
            data, safe = _single(uid, index, rng)
            if safe:
                movable.append(href)
        (folder / href).write_bytes(data)
    rng.shuffle(movable)
    config_path = root / "syncd.toml"
    config_path.write_text(_config_text(root, folder), encoding="utf-8")
    return Corpus(folder=folder, config_path=config_path, series=number, movable=movable)


def _config_text(root: Path, folder: Path) -> str:
    return "\n".join(
        [
            *config_prelude(root),
            "[owner]",
            f'emails = ["{OWNER_EMAIL}"]',
            f'timezone = "{OWNER_ZONE}"',
            "[[calendars]]",
            f'name = "{CALENDAR}"',
            'connector = "local"',
            f"path = {toml_path(folder)}",
            "create = false",
            "",
        ]
    )


def move_by_an_hour(path: Path) -> None:
    """Move a single event one hour later, as a calendar app would (atomic save, new mtime)."""
    moved = 0
    lines = []
    for line in path.read_bytes().decode("utf-8").split("\r\n"):
        name, _, value = line.rpartition(":")
        if name.split(";")[0] in ("DTSTART", "DTEND"):
            utc = value.endswith("Z")
            shifted = datetime.strptime(value.rstrip("Z"), "%Y%m%dT%H%M%S") + timedelta(hours=1)
            line = f"{name}:{stamp(shifted)}{'Z' if utc else ''}"
            moved += 1
        elif line.startswith("SEQUENCE:"):
            line = f"SEQUENCE:{int(line[9:]) + 1}"
        elif line.startswith("LAST-MODIFIED:"):
            line = f"LAST-MODIFIED:{stamp(NOW)}Z"
        lines.append(line)
    if moved != 2:
        raise RuntimeError(f"{path.name}: expected DTSTART and DTEND, rewrote {moved} lines")
    save_as_an_app(path, "\r\n".join(lines).encode("utf-8"))


# --- measuring ----------------------------------------------------------------------------


def naive_sync(folder: Path, horizon: Horizon, owner_tz: ZoneInfo) -> dict[InstanceKey, Instance]:
    """What a naive sync does every cycle: read and parse every file, map every instance."""
    from syncd.normalize import normalize_object

    instances: dict[InstanceKey, Instance] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".ics") and not entry.name.startswith("."):
                with open(entry.path, "rb") as handle:
                    data = handle.read()
                normalized = normalize_object(data, horizon=horizon, owner_tz=owner_tz)
                for instance in normalized.instances:
                    instances[instance.key] = instance
    return instances


class Trace:
    """Per-phase peak of Python allocations above the phase's start (tracemalloc), or None."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._base = 0
        if enabled:
            tracemalloc.start()

    def start(self) -> None:
        """Forget the peak so far and remember what is allocated now."""
        if self.enabled:
            tracemalloc.reset_peak()
            self._base = tracemalloc.get_traced_memory()[0]

    def peak_mb(self) -> float | None:
        """The peak since :meth:`start` minus what was allocated then, in MB."""
        if not self.enabled:
            return None
        return (tracemalloc.get_traced_memory()[1] - self._base) / 1024 / 1024


def _describe(report: CycleReport) -> str:
    kinds: dict[str, int] = {}
    for change in report.changes:
        kinds[change.kind.value] = kinds.get(change.kind.value, 0) + 1
    detail = f" {kinds}" if kinds else ""
    return f"{len(report.changes)} changes{detail}, read {report.read}"


def _cycle_phase(phase: Phase, engine: Engine, trace: Trace) -> CycleReport:
    """One measured cycle, added to ``phase``."""
    trace.start()
    report, wall, cpu = timed_cycle(engine, CALENDAR, phase.name)
    phase.add(wall, cpu, trace)
    phase.read, phase.changes = report.read, len(report.changes)
    phase.instances = report.instance_count
    return report


def run_engine_phases(corpus: Corpus, repeat: int, trace: Trace) -> dict[str, Phase]:
    """The initial, no-change and 10-change cycles with syncd's real code."""
    from syncd.app import open_engine
    from syncd.config import load_config
    from syncd.model import ChangeKind

    phases = {name: Phase(name) for name in ENGINE_PHASES}
    config = load_config(corpus.config_path)
    movable = iter(corpus.movable)
    with open_engine(config, lambda: NOW) as engine:
        report = _cycle_phase(phases[INITIAL], engine, trace)
        check(
            report.baseline and not report.changes,
            f"initial cycle: expected a silent baseline, got {_describe(report)}",
        )
        for _ in range(repeat):
            report = _cycle_phase(phases[NO_CHANGE], engine, trace)
            check(
                not report.changes, f"no-change cycle: expected 0 changes, got {_describe(report)}"
            )
        for _ in range(repeat):
            for _ in range(CHANGED_FILES):
                move_by_an_hour(corpus.folder / next(movable))
            report = _cycle_phase(phases[TEN_CHANGES], engine, trace)
            moved = [c for c in report.changes if c.kind is ChangeKind.MOVED]
            check(
                len(moved) == CHANGED_FILES == len(report.changes),
                f"{CHANGED_FILES}-change cycle: expected exactly {CHANGED_FILES} moved "
                f"changes, got {_describe(report)}",
            )
    return phases


def run_naive_phase(corpus: Corpus, repeat: int, trace: Trace, expected: int) -> Phase:
    """The naive baseline on the same folder, horizon and owner zone."""
    from syncd.config import load_config
    from syncd.normalize import Horizon

    config = load_config(corpus.config_path)
    horizon = Horizon.around(NOW, config.daemon.horizon_past, config.daemon.horizon_future)
    phase = Phase(NAIVE)
    for _ in range(repeat):
        trace.start()
        instances, wall, cpu = timed(
            lambda: naive_sync(corpus.folder, horizon, config.owner.timezone)
        )
        phase.add(wall, cpu, trace)
        phase.read, phase.instances = len(os.listdir(corpus.folder)), len(instances)
        del instances
    check(
        phase.instances == expected,
        f"naive parse found {phase.instances} instances, the engine's snapshot holds {expected}",
    )
    return phase


def run_size(
    size: int, share: float, repeat: int, seed: int, tmpdir: str | None, tracing: bool
) -> SizeResult:
    """Generate one calendar and measure every phase on it (runs in a fresh child process)."""
    start_child("syncd.app", "syncd.normalize", "connectors.local")
    trace = Trace(tracing)
    with tempfile.TemporaryDirectory(prefix="syncd-bench-", dir=tmpdir) as temp:
        progress(f"size {size:,}: generating {size:,} files")
        corpus = generate(Path(temp), size, share, seed)
        disk = sum(e.stat().st_size for e in os.scandir(corpus.folder)) / 1024 / 1024
        gc.collect()
        startup = peak_rss_mb()
        progress(f"size {size:,}: engine cycles ({'tracemalloc' if tracing else 'timed'})")
        phases = run_engine_phases(corpus, repeat, trace)
        instances = phases[TEN_CHANGES].instances
        progress(f"size {size:,}: naive baseline")
        phases[NAIVE] = run_naive_phase(corpus, repeat, trace, instances)
    return SizeResult(
        size=size,
        series=corpus.series,
        instances=instances,
        disk_mb=round(disk, 2),
        startup_rss_mb=startup,
        phases=phases,
    )


# --- parent: one child per size, then the report ------------------------------------------


def measure_size(args: argparse.Namespace, size: int, tracing: bool) -> SizeResult:
    """Measure one size in a fresh interpreter, so its peak RSS is its own."""
    options = ["--child-size", str(size), *forward(args, "recurring_share", "seed")]
    options += ["--repeat", str(1 if tracing else args.repeat)]
    if tracing:
        options.append("--child-trace")
    return SizeResult.from_json(spawn(__file__, options, f"size {size:,}", args.tmpdir))


def print_table(results: Sequence[SizeResult], repeat: int) -> None:
    """The figures of every size, one row per phase."""
    tracing = any(p.trace_peak_mb is not None for r in results for p in r.phases.values())
    columns = [("read", 7), ("changes", 9), ("instances", 11), ("peak RSS MB", 13)]
    table = Table(26, 22, [*columns, ("py alloc +MB", 14)] if tracing else columns)
    for result in results:
        print(
            f"\nsize {result.size:,} files: {result.series:,} recurring series, "
            f"{result.instances:,} instances, {result.disk_mb:.1f} MB on disk; "
            f"RSS after imports and generation {result.startup_rss_mb:.1f} MB"
        )
        table.print_head()
        for key in (*ENGINE_PHASES, NAIVE):
            p = result.phases[key]
            cells = [str(p.read), "-" if key == NAIVE else str(p.changes), f"{p.instances:,}"]
            cells.append(f"{p.peak_rss_mb:.1f}")
            if tracing:
                cells.append(f"{p.trace_peak_mb or 0:.1f}")
            table.print_row(LABELS[key], p.wall_s, p.cpu_s, *cells)
    print(
        f"\n(wall and cpu: median of {repeat} runs except the initial cycle; peak RSS is "
        "ru_maxrss after the phase, i.e. the child's peak so far"
        + (
            "; py alloc +MB: tracemalloc peak above the phase's start, separate untimed run"
            if tracing
            else ""
        )
        + ")"
    )


def print_ratios(results: Sequence[SizeResult]) -> None:
    """Median ratios for every size."""
    print(f"\n{'ratio':<34}" + "".join(f"{r.size:>12,}" for r in results))
    rows = (
        ("naive / no-change (wall)", NAIVE, NO_CHANGE, False),
        ("naive / no-change (cpu)", NAIVE, NO_CHANGE, True),
        (f"{CHANGED_FILES}-change / no-change (wall)", TEN_CHANGES, NO_CHANGE, False),
        (f"{CHANGED_FILES}-change / no-change (cpu)", TEN_CHANGES, NO_CHANGE, True),
        ("initial / naive (wall)", INITIAL, NAIVE, False),
    )
    for label, top, bottom, cpu in rows:
        print(f"{label:<34}" + "".join(f"{r.ratio(top, bottom, cpu):>11.1f}x" for r in results))


def targets(result: SizeResult) -> list[Target]:
    """The three targets, judged on one size."""
    naive = result.ratio(NAIVE, NO_CHANGE)
    change = result.ratio(TEN_CHANGES, NO_CHANGE)
    peak = result.engine_peak_mb
    return [
        Target(
            "naive / no-change cycle (wall)",
            naive,
            "x",
            f">= {TARGET_NAIVE_RATIO:g}x",
            naive >= TARGET_NAIVE_RATIO,
        ),
        Target(
            f"{CHANGED_FILES}-change / no-change cycle (wall)",
            change,
            "x",
            f"<= {TARGET_CHANGE_RATIO:g}x",
            change <= TARGET_CHANGE_RATIO,
        ),
        Target(
            "peak RSS of the engine phases",
            peak,
            " MB",
            f"< {TARGET_PEAK_MB:g} MB",
            peak < TARGET_PEAK_MB,
        ),
    ]


def print_targets(result: SizeResult) -> list[Target]:
    """PASS/MISS per target; informational only, never an exit status."""
    note = "" if result.size == TARGET_SIZE else f" (no {TARGET_SIZE:,} run: largest size)"
    print(f"\ntargets at {result.size:,} files{note}:")
    found = targets(result)
    for target in found:
        target.print_line()
    return found


def _target_result(results: Sequence[SizeResult]) -> SizeResult:
    exact = [r for r in results if r.size == TARGET_SIZE]
    return exact[0] if exact else max(results, key=lambda r: r.size)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the ``--child-*`` ones are internal."""
    options = parser(
        __doc__, repeat=5, repeat_help="runs of the no-change, 10-change and naive phases (median)"
    )
    options.add_argument(
        "--sizes",
        default="1000,10000",
        help="comma-separated numbers of .ics files (default 1000,10000)",
    )
    options.add_argument(
        "--recurring-share",
        type=float,
        default=0.05,
        help="share of files that hold a weekly series (default 0.05)",
    )
    options.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also run each size once, untimed, under tracemalloc",
    )
    options.add_argument("--child-size", type=int, help=argparse.SUPPRESS)
    options.add_argument("--child-trace", action="store_true", help=argparse.SUPPRESS)
    args = parse(options, argv)
    try:
        args.size_list = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        options.error(f"--sizes: {args.sizes!r} is not a comma-separated list of numbers")
    if not args.size_list or min(args.size_list) < 200:
        options.error("--sizes: every size must be at least 200 (10 files move per run)")
    if not 0 <= args.recurring_share <= 0.5:
        options.error("--recurring-share must be between 0 and 0.5")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run every size in its own child process and print the report."""
    args = parse_args(argv)
    if args.child_out is not None:
        return child_main(
            args.child_out,
            f"size {args.child_size:,}",
            lambda: run_size(
                args.child_size,
                args.recurring_share,
                args.repeat,
                args.seed,
                args.tmpdir,
                args.child_trace,
            ),
        )
    print_banner(
        "syncd local connector + engine benchmark",
        f"recurring share {args.recurring_share:g}, {args.repeat} runs per phase",
    )
    results = [measure_size(args, size, tracing=False) for size in args.size_list]
    if args.tracemalloc:
        for result in results:
            traced = measure_size(args, result.size, tracing=True)
            for key, phase in result.phases.items():
                phase.trace_peak_mb = traced.phases[key].trace_peak_mb
    print_table(results, args.repeat)
    print_ratios(results)
    found = print_targets(_target_result(results))
    if args.json:
        print_json(
            "syncd-local",
            repeat=args.repeat,
            recurring_share=args.recurring_share,
            seed=args.seed,
            sizes=[
                {
                    **asdict(r),
                    "engine_peak_rss_mb": r.engine_peak_mb,
                    "medians_s": {k: {"wall": p.wall, "cpu": p.cpu} for k, p in r.phases.items()},
                    "ratios": {
                        "naive_over_no_change": r.ratio(NAIVE, NO_CHANGE),
                        "ten_changes_over_no_change": r.ratio(TEN_CHANGES, NO_CHANGE),
                    },
                }
                for r in results
            ],
            targets={"size": _target_result(results).size, "verdicts": [asdict(t) for t in found]},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
