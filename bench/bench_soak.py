"""Soak benchmark: ``syncd run`` as a real process under a steady stream of late cancellations.

Run from the project root::

    .venv/bin/python bench/bench_soak.py [--minutes 3] [--calendars 200] [--interval 0.5]
        [--poll-interval 30] [--caldav-poll-interval 15] [--no-caldav] [--seed 1] [--json]

The script generates, in a temporary folder, ``--calendars`` local calendars (vdir folders of
``--events`` appointments each, every appointment with one client attendee from a pool of 200,
all inside the owner's working hours and inside the 48 h late-cancellation window of the fixed
clock), an empty local notes calendar and a configuration with ``[owner]`` working hours,
``[policy]``, ``[pricing]``, ``[rebooking]`` and ``[[clients]]`` (the policy benchmark's
settings). When ``connectors.caldav`` is importable, registered as a connector and Radicale is
installed, it also starts Radicale on a free loopback port with one calendar of appointments
(polled every ``--caldav-poll-interval`` seconds, CalDAV has no push); otherwise it says so and
runs without it.

It then starts ``python -m syncd.cli run --config ... --now <fixed clock>`` as a subprocess
(the clock advances in real time from the fixed start), waits for every calendar's baseline
cycle, and for ``--minutes`` applies one change every ``--interval`` seconds, round-robin over
the calendars (every ``--caldav-every``-th change goes to the CalDAV calendar through plain
HTTP, the rest are atomic saves of a local file): a client declines (PARTSTAT=DECLINED) or
moves the appointment by 1-3 hours through the booking page. Every change is a late
cancellation or a late move, so every change must produce exactly one verdict and one note.

From outside the process, every ``--sample-every`` seconds: RSS (``VmRSS`` of
``/proc/PID/status``), threads, open file descriptors (entries of ``/proc/PID/fd``), CPU time
(``utime + stime`` of ``/proc/PID/stat``) and the number of cycles (the JSON ``cycle`` lines
the daemon logs on stderr). A watcher polls the notes folder every 20 ms; a note's arrival
time is its file's modification time, and the note is matched to its change through its
``X-SYNCD-KEY`` and the audit log's verdict record with that key (calendar and UID).

After the last change it waits for the missing notes (at most ``--settle`` seconds), sends
SIGTERM, checks the daemon exits 0 within 60 s, runs ``syncd audit verify`` and prints the
report. Exit 1 with ``ERROR`` when a change has no note or several, a note belongs to no change,
a change does not get exactly one verdict, the daemon dies or does not stop cleanly, or the
audit log does not verify. Figures are informational: no target fails the run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any

from _common import (
    EXIT_WRONG,
    NOW,
    RadicaleProcess,
    config_prelude,
    parse,
    parser,
    print_banner,
    print_json,
    progress,
    save_as_an_app,
    toml_path,
)
from bench_policy import (
    NOTES,
    OWNER_ZONE,
    WINDOW,
    WORKING_HOURS,
    Spec,
    client_email,
    owner_lines,
    policy_lines,
    render,
)

ROOT = Path(__file__).resolve().parent.parent
REMOTE = "remote"
CLIENTS = 200
"""Size of the client pool; every fifth client is configured under ``[[clients]]``."""
STOP_TIMEOUT = 60.0
"""Seconds the daemon has to exit after SIGTERM."""
NOTE_POLL = 0.02
"""Seconds between two looks at the notes folder."""
CALDAV_USER = "soak"
CALDAV_PASSWORD = "soak-bench-password-4b1d"  # noqa: S105 - a loopback test server's password
EARLIEST = NOW + timedelta(hours=3)
"""No appointment starts earlier (the clock advances by at most an hour and a bit)."""


class Failed(Exception):
    """The daemon did something a correct daemon would not: print ERROR, exit 1."""


# --- the generated calendars ----------------------------------------------------------------


@dataclass(slots=True)
class Appointment:
    """One generated single appointment in one calendar."""

    calendar: str
    spec: Spec


@dataclass(slots=True)
class Change:
    """One applied change: which appointment, how, and when its write completed."""

    number: int
    calendar: str
    uid: str
    kind: str
    """``"decline"`` or ``"move"``."""
    remote: bool
    written_ns: int = 0
    """``time.time_ns()`` right after the file was replaced (or the PUT answered)."""


@dataclass(slots=True)
class Plan:
    """The calendars, their appointments and the changes to apply, in order."""

    root: Path
    config_path: Path
    notes_folder: Path
    folders: dict[str, Path]
    appointments: dict[str, list[Appointment]]
    changes: list[tuple[Appointment, str, datetime | None]]
    events_per_calendar: int


def _slot_days() -> list[tuple[datetime, int, int]]:
    """The local days (naive midnight, opening hour, closing hour) holding appointments: those
    whose working hours start less than the late-cancellation window after the clock."""
    today = NOW.astimezone(OWNER_ZONE).replace(tzinfo=None, hour=0, minute=0, second=0)
    found = []
    for offset in range(3):
        day = today + timedelta(days=offset)
        hours = WORKING_HOURS.get(day.weekday())
        if hours is not None:
            found.append((day, *hours))
    return found


def _utc(local: datetime) -> datetime:
    return local.replace(tzinfo=OWNER_ZONE).astimezone(NOW.tzinfo)


def _start(rng: random.Random, minutes: int) -> datetime:
    """A local start on the 15-minute grid inside working hours, at least ``EARLIEST`` and with
    the whole appointment less than the window after the clock (so every change is late)."""
    days = _slot_days()
    while True:
        day, opens, closes = rng.choice(days)
        start = day + timedelta(hours=opens, minutes=15 * rng.randrange((closes - opens) * 4))
        if start + timedelta(minutes=minutes) > day + timedelta(hours=closes):
            continue
        if _utc(start) >= EARLIEST and _utc(start) + timedelta(minutes=minutes) < NOW + WINDOW:
            return start


def _moved(rng: random.Random, spec: Spec) -> datetime:
    """The appointment 1-3 hours earlier or later, same day, inside working hours, after
    ``EARLIEST``; a 15-minute shift when nothing else fits."""
    opens, closes = WORKING_HOURS[spec.start.weekday()]
    day = spec.start.replace(hour=0, minute=0)
    for hours in [*rng.sample((-3, -2, -1, 1, 2, 3), 6), 0.25, -0.25]:
        start = spec.start + timedelta(hours=hours)
        if (
            start >= day + timedelta(hours=opens)
            and start + timedelta(minutes=spec.minutes) <= day + timedelta(hours=closes)
            and _utc(start) >= EARLIEST
        ):
            return start
    raise AssertionError(f"no move fits {spec.uid}")  # the grid always leaves a 15-minute one


def generate(root: Path, args: argparse.Namespace, remote: bool) -> Plan:
    """Write the local calendars and the notes folder, plan the changes (the CalDAV calendar's
    appointments are planned here and uploaded by :func:`upload_remote`)."""
    rng = random.Random(args.seed)
    total = int(args.minutes * 60 / args.interval)
    remote_count = total // args.caldav_every if remote else 0
    local_count = total - remote_count
    per_calendar = max(args.events, math.ceil(local_count / args.calendars) + 1)
    names = [f"cal-{n:03d}" for n in range(args.calendars)]
    folders = {name: root / "calendars" / name for name in names}
    notes = root / "calendars" / NOTES
    notes.mkdir(parents=True, mode=0o700)
    appointments: dict[str, list[Appointment]] = {}
    index = 0
    for name in [*names, *([REMOTE] if remote else [])]:
        count = per_calendar if name != REMOTE else max(args.events, remote_count + 2)
        found = []
        for _ in range(count):
            minutes = rng.choice((45, 60))
            uid = f"soak-{index:06d}-{rng.getrandbits(32):08x}@syncd.example"
            client = rng.randrange(CLIENTS)
            found.append(Appointment(name, Spec(uid, index, client, _start(rng, minutes), minutes)))
            index += 1
        appointments[name] = found
        if name != REMOTE:
            folders[name].mkdir(parents=True, mode=0o700)
            for appointment in found:
                spec = appointment.spec
                (folders[name] / spec.href).write_bytes(render(spec, with_clients=True))
    changes: list[tuple[Appointment, str, datetime | None]] = []
    order = names[:]
    rng.shuffle(order)
    taken = dict.fromkeys(appointments, 0)
    turn = 0
    for number in range(total):
        if remote and number % args.caldav_every == args.caldav_every - 1:
            name = REMOTE
        else:
            name, turn = order[turn % len(order)], turn + 1
        appointment = appointments[name][taken[name]]
        taken[name] += 1
        kind = rng.choice(("decline", "move"))
        new_start = _moved(rng, appointment.spec) if kind == "move" else None
        changes.append((appointment, kind, new_start))
    return Plan(
        root=root,
        config_path=root / "syncd.toml",
        notes_folder=notes,
        folders=folders,
        appointments=appointments,
        changes=changes,
        events_per_calendar=per_calendar,
    )


def config_text(plan: Plan, args: argparse.Namespace, caldav: CalDAVServer | None) -> str:
    """The daemon's configuration: the calendars, the notes calendar and the policy benchmark's
    owner, policy, pricing, rebooking and clients."""
    lines = [
        *config_prelude(plan.root),  # ends inside [daemon]
        f'poll_interval = "{args.poll_interval}s"',
        *owner_lines(),
    ]
    for name, folder in plan.folders.items():
        lines += [
            "[[calendars]]",
            f'name = "{name}"',
            'connector = "local"',
            f"path = {toml_path(folder)}",
            "create = false",
        ]
    if caldav is not None:
        lines += [
            "[[calendars]]",
            f'name = "{REMOTE}"',
            'connector = "caldav"',
            f'url = "{caldav.calendar_url}"',
            f'username = "{CALDAV_USER}"',
            f"password_file = {toml_path(caldav.password_file)}",
            "create = false",
            f'poll_interval = "{args.caldav_poll_interval}s"',
        ]
    lines += policy_lines(plan.notes_folder)
    for number in range(0, CLIENTS, 5):
        lines += [
            "[[clients]]",
            f'email = "{client_email(number)}"',
            f'name = "Client {number} Example"',
            f'rate = "{60 + 10 * (number % 10)}"',
        ]
    return "\n".join([*lines, ""])


# --- the CalDAV server ----------------------------------------------------------------------


def caldav_available() -> tuple[bool, str]:
    """Whether the CalDAV connector can run here: importable, registered, Radicale installed."""
    for module in ("connectors.caldav", "radicale"):
        probe = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if probe.returncode != 0:
            last = (probe.stderr.strip().splitlines() or ["?"])[-1]
            return False, f"`import {module}` fails ({last})"
    if not any(e.name == "caldav" for e in entry_points(group="syncd.connectors")):
        return False, "no `caldav` entry point in the syncd.connectors group (reinstall syncd)"
    return True, ""


class CalDAVServer(RadicaleProcess):
    """Radicale with one calendar for the soak, and a plain HTTP client as another app."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, CALDAV_USER, CALDAV_PASSWORD)
        self.password_file = root / "password"
        self.password_file.write_text(CALDAV_PASSWORD + "\n")
        self.password_file.chmod(0o600)
        self.calendar_url = f"{self.base}/{CALDAV_USER}/{uuid.uuid4().hex}/"
        body = (
            b'<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
            b'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            b"<D:displayname>Soak</D:displayname></D:prop></D:set></C:mkcalendar>"
        )
        status = self.request("MKCALENDAR", self.calendar_url, body)
        if status != 201:
            raise RuntimeError(f"MKCALENDAR answered {status}")

    def request(self, method: str, url: str, body: bytes = b"") -> int:
        """One request as the user; the HTTP status."""
        token = base64.b64encode(f"{CALDAV_USER}:{CALDAV_PASSWORD}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
        if method == "PUT":
            headers["Content-Type"] = "text/calendar; charset=utf-8"
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            url, data=body or None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                reply.read()
                return int(reply.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def put(self, href: str, data: bytes) -> None:
        """Create or replace one object, as another CalDAV client would."""
        status = self.request("PUT", self.calendar_url + href, data)
        if status not in (201, 204):
            raise RuntimeError(f"PUT {href} answered {status}")


# --- watching the daemon from outside -------------------------------------------------------


class DaemonLog:
    """Reads the daemon's stderr (JSON lines) into a file, counting cycles and problems."""

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self._stream = stream
        self._out = path.open("wb")
        self._lock = threading.Lock()
        self.cycles = 0
        self.failed_cycles = 0
        self.baselined: set[str] = set()
        self.cycles_by_calendar: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        """``level event`` of every warning, error or critical line."""
        self.examples: dict[str, str] = {}
        self.unparsed = 0
        self._thread = threading.Thread(target=self._read, name="daemon-log", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in self._stream:
            self._out.write(raw)
            try:
                line = json.loads(raw)
            except ValueError:
                with self._lock:
                    self.unparsed += 1
                continue
            if not isinstance(line, dict):
                continue
            event, level = str(line.get("event")), str(line.get("level", ""))
            with self._lock:
                if event in ("cycle", "cycle.failed"):
                    self.cycles += 1
                    self.cycles_by_calendar[str(line.get("calendar"))] += 1
                    if event == "cycle.failed":
                        self.failed_cycles += 1
                    elif line.get("baseline"):
                        self.baselined.add(str(line.get("calendar")))
                if level in ("warning", "error", "critical", "exception"):
                    key = f"{level} {event}"
                    self.problems[key] += 1
                    self.examples.setdefault(key, raw.decode("utf-8", "replace").strip()[:300])
        self._out.close()

    def counts(self) -> tuple[int, int]:
        """Cycles so far (finished and failed), and how many failed."""
        with self._lock:
            return self.cycles, self.failed_cycles

    def join(self) -> None:
        """Wait for the end of the stream (the daemon exited)."""
        self._thread.join(timeout=10)


@dataclass(slots=True)
class Sample:
    """One look at the daemon from outside."""

    t: float
    """Seconds since the first change (negative before)."""
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float
    cycles: int
    changes: int
    notes: int


_TICK = os.sysconf("SC_CLK_TCK")


def read_proc(pid: int) -> tuple[float, int, int, float]:
    """RSS (MB), open file descriptors, threads and CPU seconds of process ``pid``."""
    rss_kb = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; state is fields[0]
    cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime: fields 14, 15 of stat
    return rss_kb / 1024, fds, threads, cpu


@dataclass(slots=True)
class Note:
    """A note file as the watcher first saw it."""

    name: str
    key: str
    mtime_ns: int
    """The file's modification time when first seen: when the daemon wrote it."""
    seen_ns: int
    rewrites: int = 0
    last_mtime_ns: int = 0


class NotesWatcher:
    """Polls the notes folder; records each note's key and arrival time, and rewrites."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.notes: dict[str, Note] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notes-watch", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling after one last look."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.look()

    def count(self) -> int:
        """Notes seen so far."""
        with self._lock:
            return len(self.notes)

    def _run(self) -> None:
        while not self._stop.wait(NOTE_POLL):
            self.look()

    def look(self) -> None:
        """One pass over the folder."""
        now = time.time_ns()
        with os.scandir(self.folder) as entries:
            found = [(e.name, e.stat().st_mtime_ns) for e in entries if _is_note(e.name)]
        with self._lock:
            for name, mtime in found:
                known = self.notes.get(name)
                if known is None:
                    key = _note_key(self.folder / name)
                    self.notes[name] = Note(name, key, mtime, now, 0, mtime)
                elif mtime != known.last_mtime_ns:
                    known.rewrites += 1
                    known.last_mtime_ns = mtime


def _is_note(name: str) -> bool:
    return name.endswith(".ics") and not name.startswith(".")


def _note_key(path: Path) -> str:
    """The note's ``X-SYNCD-KEY`` (unfolded), or ``""``."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    for line in unfolded.splitlines():
        if line.upper().startswith("X-SYNCD-KEY"):
            return line.split(":", 1)[1].strip()
    return ""


class Sampler:
    """Samples the daemon every ``every`` seconds on a thread."""

    def __init__(self, pid: int, every: float, log: DaemonLog, notes: NotesWatcher) -> None:
        self.pid, self.every, self.log, self.notes = pid, every, log, notes
        self.samples: list[Sample] = []
        self.origin = time.monotonic()
        self.changes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def take(self) -> Sample:
        """One sample now (also from the main thread)."""
        rss, fds, threads, cpu = read_proc(self.pid)
        cycles, _ = self.log.counts()
        sample = Sample(
            time.monotonic() - self.origin,
            rss,
            fds,
            threads,
            cpu,
            cycles,
            self.changes,
            self.notes.count(),
        )
        self.samples.append(sample)
        return sample

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(OSError, ValueError):
                self.take()


# --- the run --------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    """Everything the report prints."""

    calendars: int
    events_per_calendar: int
    caldav: bool
    caldav_skip_reason: str
    minutes: float
    interval: float
    poll_interval: float
    caldav_poll_interval: float
    baseline_s: float
    soak_s: float
    samples: list[Sample] = field(default_factory=list)
    soak_end: float = 0.0
    changes: int = 0
    remote_changes: int = 0
    notes: int = 0
    verdicts: int = 0
    note_rewrites: int = 0
    delays_ms: dict[str, list[float]] = field(default_factory=dict)
    seen_delays_ms: list[float] = field(default_factory=list)
    cycles_total: int = 0
    cycles_failed: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    stop_s: float | None = None
    exit_code: int | None = None
    errors: list[str] = field(default_factory=list)
    lag_s: float = 0.0
    """How far the change loop fell behind its schedule at worst (bench-side)."""


def run(args: argparse.Namespace) -> Result:
    """Generate, start, soak, stop; the figures and any errors."""
    remote, reason = (False, "--no-caldav given") if args.no_caldav else caldav_available()
    if not remote:
        print(f"NOTE: no CalDAV calendar in this run: {reason}", flush=True)
    with contextlib.ExitStack() as stack:
        if args.keep:
            root = Path(tempfile.mkdtemp(prefix="syncd-soak-", dir=args.tmpdir))
            print(f"NOTE: keeping the run's files in {root}", flush=True)
        else:
            root = Path(
                stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="syncd-soak-", dir=args.tmpdir)
                )
            )
        caldav: CalDAVServer | None = None
        try:
            progress(f"generating {args.calendars} calendars")
            plan = generate(root, args, remote)
            if remote:
                progress("starting Radicale and uploading the CalDAV calendar")
                caldav = CalDAVServer(root / "radicale")
                for appointment in plan.appointments[REMOTE]:
                    caldav.put(appointment.spec.href, render(appointment.spec, with_clients=True))
            plan.config_path.write_text(config_text(plan, args, caldav), encoding="utf-8")
            return soak(plan, args, caldav, reason)
        finally:
            if caldav is not None:
                caldav.stop()


def soak(plan: Plan, args: argparse.Namespace, caldav: CalDAVServer | None, reason: str) -> Result:
    """Start the daemon, wait for its baselines, apply the changes, stop it, check."""
    result = Result(
        calendars=args.calendars,
        events_per_calendar=plan.events_per_calendar,
        caldav=caldav is not None,
        caldav_skip_reason=reason,
        minutes=args.minutes,
        interval=args.interval,
        poll_interval=args.poll_interval,
        caldav_poll_interval=args.caldav_poll_interval,
        baseline_s=0.0,
        soak_s=0.0,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    argv = [sys.executable, "-m", "syncd.cli", "run", "--config", str(plan.config_path)]
    argv += ["--now", NOW.isoformat(), "--log-level", "info"]
    progress(f"starting: {' '.join(argv[1:])}")
    started = time.monotonic()
    stdout = (plan.root / "daemon.stdout").open("wb")
    daemon = subprocess.Popen(
        argv, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    assert daemon.stderr is not None
    log = DaemonLog(daemon.stderr, plan.root / "daemon.log")
    try:
        _soak(plan, args, caldav, daemon, log, result, started)
    except Failed as failed:
        result.errors.append(str(failed))
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        log.join()
        stdout.close()
    result.cycles_total, result.cycles_failed = log.counts()
    result.problems = dict(log.problems.most_common())
    result.examples = log.examples
    if result.errors:
        tail = (plan.root / "daemon.log").read_text(encoding="utf-8", errors="replace")
        print("--- last lines of the daemon's log ---")
        print("\n".join(tail.splitlines()[-15:]))
        print("--------------------------------------")
    return result


def _alive(daemon: subprocess.Popen[bytes], what: str) -> None:
    code = daemon.poll()
    if code is not None:
        raise Failed(f"the daemon exited with {code} {what}")


def _soak(
    plan: Plan,
    args: argparse.Namespace,
    caldav: CalDAVServer | None,
    daemon: subprocess.Popen[bytes],
    log: DaemonLog,
    result: Result,
    started: float,
) -> None:
    expected = set(plan.folders) | {NOTES} | ({REMOTE} if caldav else set())
    progress(f"waiting for the baseline cycles of {len(expected)} calendars")
    deadline = started + args.settle + 5 * len(expected)
    while log.baselined < expected:
        _alive(daemon, "before its baselines")
        if time.monotonic() > deadline:
            missing = sorted(expected - log.baselined)
            raise Failed(f"no baseline cycle for {len(missing)} calendars: {missing[:5]}")
        time.sleep(0.1)
    result.baseline_s = time.monotonic() - started
    time.sleep(2.0)  # the watches start after each calendar's first good cycle
    notes = NotesWatcher(plan.notes_folder)
    notes.look()
    if notes.notes:
        raise Failed(f"{len(notes.notes)} notes written before any change")
    sampler = Sampler(daemon.pid, args.sample_every, log, notes)
    sampler.take()
    notes.start()
    sampler.start()
    applied: list[Change] = []
    try:
        progress(
            f"baselines done in {result.baseline_s:.1f} s; {len(plan.changes)} changes, one "
            f"every {args.interval:g} s for {args.minutes:g} min"
        )
        origin = time.monotonic()
        for s in sampler.samples:
            s.t -= origin - sampler.origin  # the first sample: just before the first change
        sampler.origin = origin
        for number, (appointment, kind, new_start) in enumerate(plan.changes):
            due = origin + number * args.interval
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            result.lag_s = max(result.lag_s, -wait)
            _alive(daemon, "during the soak")
            applied.append(apply_change(number, appointment, kind, new_start, plan, caldav))
            sampler.changes = len(applied)
            if number and number % 60 == 0:
                progress(f"{number} changes, {notes.count()} notes")
        result.soak_end = time.monotonic() - origin
        progress(f"all {len(applied)} changes applied; waiting for the last notes")
        deadline = time.monotonic() + args.settle
        while notes.count() < len(applied) and time.monotonic() < deadline:
            _alive(daemon, "while the last notes were written")
            time.sleep(0.1)
        time.sleep(1.0)  # a duplicate or a rewrite would show now
        sampler.stop()
        sampler.take()
    finally:
        sampler.stop()
        notes.stop()
        result.samples = sampler.samples
    result.soak_s = result.soak_end
    _stop(daemon, result)
    _verify_audit(plan, result)
    _match(plan, applied, notes, result)


def apply_change(
    number: int,
    appointment: Appointment,
    kind: str,
    new_start: datetime | None,
    plan: Plan,
    caldav: CalDAVServer | None,
) -> Change:
    """Write one change as a calendar app (local) or another CalDAV client would."""
    spec = appointment.spec
    if kind == "decline":
        data = render(spec, with_clients=True, partstat="DECLINED", changed=True)
    else:
        data = render(spec, with_clients=True, start=new_start, changed=True)
    remote = appointment.calendar == REMOTE
    if remote:
        assert caldav is not None
        caldav.put(spec.href, data)
    else:
        save_as_an_app(plan.folders[appointment.calendar] / spec.href, data)
    return Change(number, appointment.calendar, spec.uid, kind, remote, time.time_ns())


def _stop(daemon: subprocess.Popen[bytes], result: Result) -> None:
    progress("SIGTERM")
    _alive(daemon, "before SIGTERM")
    sent = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    try:
        result.exit_code = daemon.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failed(f"the daemon did not exit within {STOP_TIMEOUT:g} s of SIGTERM") from None
    result.stop_s = time.monotonic() - sent
    if result.exit_code != 0:
        raise Failed(f"the daemon exited with {result.exit_code} after SIGTERM, expected 0")


def _verify_audit(plan: Plan, result: Result) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "audit", "verify", "--config", str(plan.config_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        result.errors.append(
            f"syncd audit verify exited {done.returncode}: {(done.stdout + done.stderr).strip()}"
        )


def _match(plan: Plan, applied: Sequence[Change], watcher: NotesWatcher, result: Result) -> None:
    """Every change has exactly one verdict and one note; every note belongs to a change."""
    verdicts: dict[str, tuple[str, str]] = {}
    per_change: Counter[tuple[str, str]] = Counter()
    audit = plan.root / "var" / "audit.jsonl"
    for line in audit.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("type") == "verdict":
            target = (str(record.get("calendar")), str(record.get("uid")))
            verdicts[str(record.get("key"))] = target
            per_change[target] += 1
    notes_of: dict[tuple[str, str], list[Note]] = {}
    stray = []
    for note in watcher.notes.values():
        owner = verdicts.get(note.key) if note.key else None
        if owner is None:
            stray.append(note.name)
        else:
            notes_of.setdefault(owner, []).append(note)
    result.changes = len(applied)
    result.remote_changes = sum(1 for c in applied if c.remote)
    result.notes = len(watcher.notes)
    result.verdicts = sum(per_change.values())
    result.note_rewrites = sum(n.rewrites for n in watcher.notes.values())
    wanted = {(c.calendar, c.uid) for c in applied}
    without, several, wrong_verdicts = [], [], []
    result.delays_ms = {"local": [], "caldav": []}
    for change in applied:
        target = (change.calendar, change.uid)
        if per_change[target] != 1:
            wrong_verdicts.append(f"{change.calendar}/{change.uid}: {per_change[target]}")
        found = notes_of.get(target, [])
        if not found:
            without.append(f"{change.calendar}/{change.uid} ({change.kind})")
            continue
        if len(found) > 1:
            several.append(f"{change.calendar}/{change.uid}: {len(found)} notes")
        note = min(found, key=lambda n: n.mtime_ns)
        delay = (note.mtime_ns - change.written_ns) / 1e6
        result.delays_ms["caldav" if change.remote else "local"].append(delay)
        result.seen_delays_ms.append((note.seen_ns - change.written_ns) / 1e6)
    stray += [
        f"{n.name} (verdict for an unchanged {t[0]}/{t[1]})"
        for t, ns in notes_of.items()
        if t not in wanted
        for n in ns
    ]
    for label, bad in (
        ("changes without a note", without),
        ("changes with several notes", several),
        ("notes that belong to no change", stray),
        ("changes without exactly one verdict", wrong_verdicts),
    ):
        if bad:
            result.errors.append(f"{len(bad)} {label}, first: {bad[:3]}")


# --- the report -----------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..100); NaN without values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour; NaN for fewer than two."""
    if len(points) < 2:
        return float("nan")
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return float("nan")
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread * 3600


def figures(result: Result) -> dict[str, Any]:
    """The headline figures from the samples and the delays."""
    samples = result.samples
    soak = [s for s in samples if s.t <= result.soak_end + 0.5]  # the first is just before
    if len(soak) < 2:
        soak = samples
    first, last = samples[0], samples[-1]
    during_first, during_last = soak[0], soak[-1]
    cycles = during_last.cycles - during_first.cycles
    cpu = during_last.cpu_s - during_first.cpu_s
    wall = during_last.t - during_first.t
    half = min(soak, key=lambda s: abs(s.t - result.soak_end / 2))

    def per_cycle(a: Sample, b: Sample) -> float:
        return (b.cpu_s - a.cpu_s) * 1000 / (b.cycles - a.cycles) if b.cycles > a.cycles else 0.0

    local, remote = result.delays_ms.get("local", []), result.delays_ms.get("caldav", [])
    return {
        "rss_start_mb": first.rss_mb,
        "rss_end_mb": last.rss_mb,
        "rss_max_mb": max(s.rss_mb for s in samples),
        "rss_growth_mb_per_h_fit": slope_per_hour([(s.t, s.rss_mb) for s in soak]),
        "rss_growth_mb_per_h_ends": (during_last.rss_mb - during_first.rss_mb)
        / max(during_last.t - during_first.t, 1e-9)
        * 3600,
        "fds_min": min(s.fds for s in samples),
        "fds_max": max(s.fds for s in samples),
        "threads_min": min(s.threads for s in samples),
        "threads_max": max(s.threads for s in samples),
        "cpu_per_cycle_ms": cpu * 1000 / cycles if cycles else float("nan"),
        "cpu_per_cycle_ms_first_half": per_cycle(during_first, half),
        "cpu_per_cycle_ms_second_half": per_cycle(half, during_last),
        "cycles_per_minute": cycles / wall * 60 if wall else float("nan"),
        "cpu_share_of_a_core": cpu / wall if wall else float("nan"),
        "cpu_per_change_ms": cpu * 1000 / result.changes if result.changes else float("nan"),
        "delay_local_ms": _delays(local),
        "delay_local_p50_by_third_ms": [
            percentile(local[i * len(local) // 3 : (i + 1) * len(local) // 3], 50) for i in range(3)
        ],
        "delay_caldav_ms": _delays(remote),
        "delay_all_ms": _delays(local + remote),
        "delay_seen_ms": _delays(result.seen_delays_ms),
    }


def _delays(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "max": max(values, default=float("nan")),
    }


def print_report(result: Result, found: dict[str, Any]) -> None:
    """The samples over time, then the headline table."""
    print("\nsamples (t = seconds since the first change):")
    head = (
        f"{'t s':>8}{'RSS MB':>9}{'fds':>6}{'threads':>9}{'cpu s':>9}{'cycles':>9}"
        f"{'changes':>9}{'notes':>7}"
    )
    print(head)
    print("-" * len(head))
    rows = result.samples
    step = max(1, math.ceil(len(rows) / 24))
    shown = [*rows[:-1:step], rows[-1]]
    for s in shown:
        print(
            f"{s.t:>8.1f}{s.rss_mb:>9.1f}{s.fds:>6}{s.threads:>9}{s.cpu_s:>9.1f}{s.cycles:>9,}"
            f"{s.changes:>9,}{s.notes:>7,}"
        )
    print()
    table = [
        ("RSS at start / end", f"{found['rss_start_mb']:.1f} / {found['rss_end_mb']:.1f} MB"),
        ("RSS max", f"{found['rss_max_mb']:.1f} MB"),
        (
            "RSS growth, extrapolated",
            f"{found['rss_growth_mb_per_h_fit']:+.1f} MB/h (fit), "
            f"{found['rss_growth_mb_per_h_ends']:+.1f} MB/h (ends)",
        ),
        ("open fds min / max", f"{found['fds_min']} / {found['fds_max']}"),
        ("threads min / max", f"{found['threads_min']} / {found['threads_max']}"),
        (
            "CPU per cycle",
            f"{found['cpu_per_cycle_ms']:.1f} ms (first half "
            f"{found['cpu_per_cycle_ms_first_half']:.1f}, second half "
            f"{found['cpu_per_cycle_ms_second_half']:.1f})",
        ),
        ("cycles per minute", f"{found['cycles_per_minute']:,.0f}"),
        ("CPU use", f"{found['cpu_share_of_a_core'] * 100:.1f} % of one core"),
        ("CPU per change", f"{found['cpu_per_change_ms']:.1f} ms"),
    ]
    for label, key in (
        ("change->note delay, local", "delay_local_ms"),
        ("change->note delay, CalDAV", "delay_caldav_ms"),
        ("change->note delay, all", "delay_all_ms"),
    ):
        d = found[key]
        text = (
            f"p50 {d['p50']:,.0f} ms, p99 {d['p99']:,.0f} ms, max {d['max']:,.0f} ms "
            f"({d['n']} changes)"
            if d["n"]
            else "-"
        )
        table.append((label, text))
        if key == "delay_local_ms" and d["n"] >= 3:
            thirds = ", ".join(f"{v:,.0f}" for v in found["delay_local_p50_by_third_ms"])
            table.append(("  local p50 by third of the run", f"{thirds} ms (should not grow)"))
    table += [
        (
            "changes / notes / verdicts",
            f"{result.changes:,} ({result.remote_changes} CalDAV) / {result.notes:,} / "
            f"{result.verdicts:,}; {result.note_rewrites} note rewrites",
        ),
        (
            "cycles",
            f"{result.cycles_total:,} in all (baselines included), {result.cycles_failed} failed",
        ),
        ("baseline of every calendar", f"{result.baseline_s:.1f} s after the start"),
        (
            "SIGTERM -> exit",
            f"{result.stop_s:.2f} s, exit {result.exit_code}" if result.stop_s is not None else "-",
        ),
        ("change loop lag (bench side), max", f"{result.lag_s * 1000:.0f} ms"),
    ]
    width = max(len(label) for label, _ in table) + 2
    print(f"{'figure':<{width}}value")
    print("-" * (width + 60))
    for label, value in table:
        print(f"{label:<{width}}{value}")
    if result.problems:
        print("\ndaemon warnings and errors (level event: count):")
        for key, count in result.problems.items():
            print(f"  {key}: {count}   e.g. {result.examples.get(key, '')[:160]}")
    print(
        "\n(delays: note file mtime - time the change's write completed; notes folder polled "
        f"every {NOTE_POLL * 1000:.0f} ms, poll-based p50 {found['delay_seen_ms']['p50']:,.0f} ms; "
        "RSS growth from a short run is a rough extrapolation)"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    options = parser(__doc__, repeat=1, repeat_help="must be 1: a soak is one long run")
    options.add_argument("--minutes", type=float, default=3.0, help="length of the change stream")
    options.add_argument("--calendars", type=int, default=200, help="local calendars")
    options.add_argument(
        "--events", type=int, default=4, help="appointments per calendar (raised to fit)"
    )
    options.add_argument("--interval", type=float, default=0.5, help="seconds between changes")
    options.add_argument(
        "--poll-interval", type=int, default=30, help="poll interval of the local calendars (s)"
    )
    options.add_argument(
        "--caldav-poll-interval", type=int, default=15, help="poll interval of the CalDAV one (s)"
    )
    options.add_argument(
        "--caldav-every", type=int, default=10, help="every n-th change goes to CalDAV"
    )
    options.add_argument("--no-caldav", action="store_true", help="run without the CalDAV server")
    options.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    options.add_argument(
        "--settle", type=float, default=90.0, help="seconds to wait for the last notes"
    )
    options.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parse(options, argv)
    if args.repeat != 1:
        options.error("--repeat must be 1 (a soak is one long run)")
    if not 0 < args.minutes <= 60:
        options.error("--minutes must be more than 0 and at most 60")
    if not 0.05 <= args.interval <= 60:
        options.error("--interval must be between 0.05 and 60 seconds")
    if args.calendars < 1 or args.events < 1 or args.caldav_every < 2:
        options.error("--calendars and --events must be at least 1, --caldav-every at least 2")
    if args.poll_interval < 1 or args.caldav_poll_interval < 1 or args.sample_every <= 0:
        options.error("poll intervals must be at least 1 s, --sample-every more than 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak and print the report; 1 with ERROR lines when the daemon was wrong."""
    args = parse_args(argv)
    print_banner(
        "syncd soak benchmark",
        f"{args.calendars} local calendars, a change every {args.interval:g} s for "
        f"{args.minutes:g} min, local poll {args.poll_interval} s, CalDAV poll "
        f"{args.caldav_poll_interval} s",
    )
    result = run(args)
    if len(result.samples) >= 2:
        found = figures(result)
        print_report(result, found)
    else:
        found = {}
    for error in result.errors:
        print(f"ERROR: {error}")
    if args.json:
        print_json(
            "syncd-soak",
            settings={k: v for k, v in vars(args).items() if k not in ("child_out", "json")},
            figures=found,
            result={k: v for k, v in asdict(result).items() if k not in ("delays_ms",)},
        )
    return EXIT_WRONG if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
