"""What the benchmarks in this folder share: the fixed clock, one child process per measured
run, timing, medians, aligned tables, PASS/MISS lines, the JSON line and common options.

A benchmark re-invokes itself with ``--child-out FILE`` for every run (:func:`spawn`), so that
the run's peak RSS is its own. The child (:func:`child_main`) writes its result to ``FILE`` as
JSON and exits 0; when the engine gave a wrong answer it prints ``ERROR: ...`` and exits
:data:`EXIT_WRONG`, on any other exception :data:`EXIT_CRASH`. The parent exits with the
same status, so the benchmark exits 0 unless the engine is wrong (1) or something crashed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the parent process stays lean: syncd is imported in the child only
    from _typeshed import DataclassInstance

    from syncd.engine import CycleReport, Engine

# The project root, for the test servers the benchmarks share with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Re-exported for the CalDAV benchmarks.
from tests.radicale_process import RadicaleProcess as RadicaleProcess

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
"""The fixed clock of every cycle (a Wednesday, before the European DST switch)."""

EXIT_WRONG = 1
"""Exit status when the engine gave a wrong answer."""
EXIT_CRASH = 2
"""Exit status of a child that crashed (an exception other than :class:`WrongAnswer`)."""

T = TypeVar("T")


class WrongAnswer(Exception):
    """The engine reported something a correct engine would not: a bug, not a timing."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`WrongAnswer` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise WrongAnswer(message)


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


def timed_cycle(engine: Engine, calendar: str, label: str) -> tuple[CycleReport, float, float]:
    """One timed ``engine.cycle(calendar)``; objects that fail to parse are a wrong answer."""
    report, wall, cpu = timed(lambda: engine.cycle(calendar))
    check(
        not report.new_errors,
        f"{label}: {len(report.new_errors)} objects failed to parse, first: "
        f"{report.new_errors[0] if report.new_errors else None}",
    )
    return report, wall, cpu


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def progress(message: str) -> None:
    """A progress line on stderr (stdout holds the report)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# --- generated calendars ------------------------------------------------------------------


def stamp(value: datetime) -> str:
    """``value`` as an iCalendar local date-time (``YYYYMMDDTHHMMSS``)."""
    return value.strftime("%Y%m%dT%H%M%S")


def toml_path(path: Path) -> str:
    """``path`` as a TOML basic string (a JSON string is one)."""
    return json.dumps(str(path))


def config_prelude(root: Path) -> list[str]:
    """The ``[state]``, ``[audit]`` and ``[daemon]`` lines of a configuration under ``root``:
    a horizon from 30 days back to 180 days ahead."""
    return [
        "[state]",
        f"path = {toml_path(root / 'var' / 'state.db')}",
        "[audit]",
        f"path = {toml_path(root / 'var' / 'audit.jsonl')}",
        "[daemon]",
        'horizon_past = "30d"',
        'horizon_future = "180d"',
    ]


def save_as_an_app(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` as a calendar app would (atomic save, new mtime); the
    etag (mtime, size, inode) changes even on a file system with coarse timestamps."""
    before = path.stat()
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(data)
    os.replace(temp, path)
    after = path.stat()
    mtime = max(after.st_mtime_ns, before.st_mtime_ns + 1_000_000_000)
    os.utime(path, ns=(after.st_atime_ns, mtime))


# --- child processes ----------------------------------------------------------------------


def parser(doc: str | None, *, repeat: int, repeat_help: str) -> argparse.ArgumentParser:
    """A parser with the options every benchmark has: ``--repeat``, ``--seed``, ``--tmpdir``,
    ``--json`` and the internal ``--child-out``."""
    found = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    found.add_argument("--repeat", type=int, default=repeat, help=repeat_help)
    found.add_argument("--seed", type=int, default=1, help="seed of the generated calendars")
    found.add_argument(
        "--tmpdir", default=None, help="where to put the temporary calendars (default: system temp)"
    )
    found.add_argument(
        "--json", action="store_true", help="also print the results as one JSON line at the end"
    )
    found.add_argument("--child-out", help=argparse.SUPPRESS)
    return found


def parse(found: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``--repeat`` must be at least 1."""
    args = found.parse_args(argv)
    if args.repeat < 1:
        found.error("--repeat must be at least 1")
    return args


def forward(args: argparse.Namespace, *names: str) -> list[str]:
    """The options ``names`` (attribute names) with their values, for a child's argv."""
    return [
        part for name in names for part in (f"--{name.replace('_', '-')}", str(getattr(args, name)))
    ]


def start_child(*modules: str) -> None:
    """Set up a child: warnings only, on stderr; ``modules`` imported up front so that the
    start-up RSS includes them."""
    import importlib

    from syncd.logs import configure_logging

    configure_logging(level="warning", stream=sys.stderr, json=False)
    for module in modules:
        importlib.import_module(module)


def child_main(out: str, label: str, measure: Callable[[], DataclassInstance]) -> int:
    """Run ``measure`` and write its result to ``out`` as JSON; the exit status."""
    try:
        result = measure()
    except WrongAnswer as wrong:
        print(f"ERROR: {label}: {wrong}", flush=True)
        return EXIT_WRONG
    except Exception:
        traceback.print_exc()
        return EXIT_CRASH
    Path(out).write_text(json.dumps(asdict(result)), encoding="utf-8")
    return 0


def spawn(script: str, options: Sequence[str], label: str, tmpdir: str | None) -> dict[str, Any]:
    """Run ``script`` with ``options`` in a fresh interpreter, so its peak RSS is its own, and
    return what it wrote. Exit like the child if the engine was wrong or the child crashed."""
    with tempfile.NamedTemporaryFile(prefix="syncd-bench-", suffix=".json") as out:
        argv = [sys.executable, str(Path(script).resolve()), *options, "--child-out", out.name]
        if tmpdir:
            argv += ["--tmpdir", tmpdir]
        code = subprocess.run(argv, check=False).returncode
        if code == EXIT_WRONG:
            print(f"ERROR: {label}: the engine gave a wrong answer (see above)")
            sys.exit(EXIT_WRONG)
        if code != 0:
            print(f"ERROR: {label}: the benchmark child crashed (exit {code})", file=sys.stderr)
            sys.exit(code if code > 0 else EXIT_CRASH)
        data: dict[str, Any] = json.loads(Path(out.name).read_text(encoding="utf-8"))
        return data


# --- the report ---------------------------------------------------------------------------


def ms(seconds: float) -> str:
    """Seconds as milliseconds with one decimal and thousands separators."""
    return f"{seconds * 1000:,.1f}"


def print_banner(title: str, details: str) -> None:
    """The report's first line: the benchmark, Python version, clock and settings."""
    print(
        f"{title}: python {platform.python_version()}, clock {NOW.isoformat()}, {details}",
        flush=True,
    )


@dataclass(frozen=True, slots=True)
class Table:
    """An aligned table: phase, runs, median wall ms, (min-max), median CPU ms, then the
    benchmark's own right-aligned ``columns`` (heading, width) and a free-text ``tail``."""

    label_width: int
    spread_width: int
    columns: Sequence[tuple[str, int]] = ()
    tail: str = ""

    def print_head(self) -> None:
        """The heading and a rule under it."""
        head = (
            f"{'phase':<{self.label_width}}{'runs':>5}{'wall ms':>12}"
            f"{'(min-max)':>{self.spread_width}}{'cpu ms':>12}"
            + "".join(f"{name:>{width}}" for name, width in self.columns)
            + self.tail
        )
        print(head)
        print("-" * len(head))

    def print_row(
        self,
        label: str,
        wall: Sequence[float],
        cpu: Sequence[float] | None,
        *cells: str,
        tail: str = "",
    ) -> None:
        """One row: medians of ``wall`` and ``cpu`` (``-`` without CPU times), the spread of
        ``wall`` when there are several runs, then ``cells`` in the table's columns."""
        spread = f"({ms(min(wall))}-{ms(max(wall))})" if len(wall) > 1 else ""
        cpu_ms = ms(median(cpu)) if cpu else "-"
        widths = [width for _, width in self.columns]
        print(
            f"{label:<{self.label_width}}{len(wall):>5}{ms(median(wall)):>12}"
            f"{spread:>{self.spread_width}}{cpu_ms:>12}"
            + "".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
            + tail
        )


@dataclass(frozen=True, slots=True)
class Target:
    """One target and whether the run met it."""

    name: str
    value: float
    unit: str
    target: str
    passed: bool

    def print_line(self) -> None:
        """The PASS/MISS line; informational only, never an exit status."""
        print(
            f"  {'PASS' if self.passed else 'MISS'}  {self.name:<40}{self.value:>9.1f}"
            f"{self.unit:<4}target {self.target}"
        )


def print_json(benchmark: str, **fields: Any) -> None:
    """The results as one JSON line (the last line of stdout)."""
    document = {
        "benchmark": benchmark,
        "python": platform.python_version(),
        "clock": NOW.isoformat(),
        **fields,
    }
    print(json.dumps(document, separators=(",", ":")))


# --- an emulator in its own process ---------------------------------------------------------


def serve_until_stdin_closes(target: Path, setup: dict[str, Any], stop: Callable[[], None]) -> int:
    """The emulator process's part: write ``setup`` as JSON to ``target``, say ``ready``, serve
    until the parent closes stdin, then ``stop``. (In the parent, the emulator's memory would
    count in every child's ``ru_maxrss``: Linux keeps the peak across fork and exec.)"""
    target.write_text(json.dumps(setup), encoding="utf-8")
    print("ready", flush=True)
    sys.stdin.read()
    stop()
    return 0


def start_server_process(
    script: str, options: Sequence[str], setup_file: Path
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Run ``script`` with ``--serve setup_file`` and wait until it serves; its setup JSON."""
    server = subprocess.Popen(
        [sys.executable, str(Path(script).resolve()), *options, "--serve", str(setup_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    if server.stdout.readline().strip() != "ready":
        server.kill()
        raise SystemExit("the emulator process did not start")
    setup: dict[str, Any] = json.loads(setup_file.read_text(encoding="utf-8"))
    return server, setup


def stop_server_process(server: subprocess.Popen[str]) -> None:
    """Let the emulator's process end (it serves until its stdin closes)."""
    assert server.stdin is not None
    server.stdin.close()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def add_client_options(options: argparse.ArgumentParser, clients: Sequence[str]) -> None:
    """``--clients`` (all by default) and the hidden options of a child or server process."""
    options.add_argument("--clients", default=",".join(clients))
    options.add_argument("--client", choices=sorted(clients), help=argparse.SUPPRESS)
    options.add_argument("--setup", help=argparse.SUPPRESS)
    options.add_argument("--serve", help=argparse.SUPPRESS)


def chosen_clients(
    options: argparse.ArgumentParser, args: argparse.Namespace, clients: Sequence[str]
) -> list[str]:
    """The ``--clients`` list, refused when empty or naming an unknown client."""
    chosen = [c.strip() for c in args.clients.split(",") if c.strip()]
    if set(chosen) - set(clients) or not chosen:
        options.error(f"--clients takes a list of {', '.join(clients)}")
    return chosen
