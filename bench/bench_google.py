"""Benchmark of the Google connector against a naive poller, on the Calendar API emulator.

Run from the project root::

    .venv/bin/python bench/bench_google.py [--calendars 50] [--events 2000]
        [--recurring-share 0.05] [--repeat 3] [--clients syncd,naive] [--seed 1]
        [--tmpdir DIR] [--json]

The parent starts the emulator (``tests/google_emulator``, plain HTTP on a loopback port,
bearer tokens required) and seeds ``--calendars`` calendars of ``--events`` events each with
``bulk_load``: single events from 30 days back to 180 days ahead in three zones with one or
two attendees, and ``--recurring-share`` weekly series (Europe/Berlin, 8 to 30 instances),
every third of them with a moved and a cancelled exception. One authorized-user token with
syncd's scopes serves every client, as one account with many calendars would.

Each client runs in its own child process (this script re-invoked), so its CPU time
(``process_time``) and peak RSS (``ru_maxrss``) are its own. Requests and bytes received are
counted inside the child, on the ``httplib2.Http`` under the authorized transport: every
HTTP exchange, token refreshes included (for syncd, a subclass of the production
``ProxiedHttp``, so the proxy choice per connection is measured too). The clients:

- ``syncd``: one ``GoogleConnector.from_config(CalendarConfig(...))`` per calendar for the
  whole run, as the daemon keeps them; ``list_changes(None, {}, horizon=...)`` (the horizon
  is 30 days back, 180 ahead, but the full listing is not bounded by it: every object of the
  calendar), then ``list_changes(cursor, known)`` per poll;
- ``naive``: google-api-python-client as the quick-start shows it, each poll listing each
  calendar's next 180 days expanded (``singleEvents=True, timeMin, timeMax,
  orderBy=startTime, maxResults=2500``, every page, full resources) and diffing ids and
  etags with its previous poll.

Phases per client: the initial sync (for the naive poller, its first poll) and the
no-change poll of all calendars (median of ``--repeat``). Targets (PASS/MISS, never an exit
status): syncd's no-change poll sends exactly one request per calendar; its client CPU per
calendar per no-change poll is under 5 ms. Exit 1 when syncd gives a wrong answer: an initial
listing without exactly ``--events`` objects per calendar, any item failure, or a no-change
poll that lists anything.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    Table,
    Target,
    add_client_options,
    check,
    child_main,
    chosen_clients,
    forward,
    median,
    parse,
    parser,
    peak_rss_mb,
    print_banner,
    print_json,
    progress,
    serve_until_stdin_closes,
    spawn,
    start_child,
    start_server_process,
    stop_server_process,
    timed,
)

SYNCD, NAIVE = "syncd", "naive"
CLIENTS = {SYNCD: "syncd connector", NAIVE: "naive 180-day poll"}
INITIAL, NO_CHANGE = "initial", "no_change"
LABELS = {INITIAL: "initial sync", NO_CHANGE: "no-change poll"}
TARGET_REQUESTS_PER_CALENDAR = 1.0
TARGET_CPU_MS_PER_CALENDAR = 5.0
PAST, FUTURE = timedelta(days=30), timedelta(days=180)
ZONES = ("Europe/Berlin", "America/New_York", "UTC")
SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.app.created",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)


# --- results ------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    """One phase of one client, per run: times, traffic, what was listed."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    listed: list[int] = field(default_factory=list)
    """Objects (syncd) or instances (naive) returned."""
    changed: list[int] = field(default_factory=list)
    peak_rss_mb: float = 0.0


@dataclass(slots=True)
class ClientResult:
    """Everything measured for one client."""

    client: str
    startup_rss_mb: float
    phases: dict[str, Phase]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientResult:
        """Inverse of :func:`dataclasses.asdict`."""
        phases = {k: Phase(**v) for k, v in data.pop("phases").items()}
        return cls(phases=phases, **data)


# --- the calendars ------------------------------------------------------------------------


def _stamp(moment: datetime, zone: str) -> dict[str, str]:
    from zoneinfo import ZoneInfo

    return {"dateTime": moment.astimezone(ZoneInfo(zone)).isoformat(), "timeZone": zone}


def _people(rng: random.Random) -> list[dict[str, str]]:
    count = rng.choice((1, 1, 2))
    statuses = ("accepted", "accepted", "needsAction", "tentative")
    return [
        {"email": f"client{rng.randrange(500)}@example.com", "responseStatus": rng.choice(statuses)}
        for _ in range(count)
    ]


def generate(
    calendar: int, events: int, share: float, seed: int, today: datetime
) -> list[dict[str, Any]]:
    """Google JSON bodies for one calendar: ``events`` events, ``share`` of them weekly
    series (every third with a moved and a cancelled exception)."""
    rng = random.Random(seed * 1_000_003 + calendar)
    series_at = set(rng.sample(range(events), round(events * share)))
    bodies: list[dict[str, Any]] = []
    for index in range(events):
        event = f"c{calendar:03d}e{index:05d}"
        zone = rng.choice(ZONES)
        hour = rng.randrange(8, 18)
        if index in series_at:
            start = today + timedelta(days=rng.randrange(-30, 60), hours=hour)
            bodies += _series(event, start, rng)
            continue
        start = today + timedelta(days=rng.randrange(-30, 180), hours=hour)
        length = timedelta(minutes=rng.choice((30, 45, 60, 90)))
        body: dict[str, Any] = {
            "id": event,
            "iCalUID": f"{event}@bench.example",
            "summary": f"Session {index} with client",
            "description": "Agenda: progress review, next steps.",
            "start": _stamp(start, zone),
            "end": _stamp(start + length, zone),
            "organizer": {"email": "me@example.com"},
            "attendees": _people(rng),
        }
        if rng.random() < 0.3:
            body["location"] = f"Room {rng.randrange(1, 9)}"
        bodies.append(body)
    return bodies


def _series(event: str, start: datetime, rng: random.Random) -> list[dict[str, Any]]:
    zone = "Europe/Berlin"
    master = {
        "id": event,
        "iCalUID": f"{event}@bench.example",
        "summary": "Weekly coaching",
        "start": _stamp(start, zone),
        "end": _stamp(start + timedelta(hours=1), zone),
        "recurrence": [f"RRULE:FREQ=WEEKLY;COUNT={rng.randrange(8, 31)}"],
        "organizer": {"email": "me@example.com"},
        "attendees": _people(rng),
    }
    if int(event[-5:]) % 3:
        return [master]
    from zoneinfo import ZoneInfo

    local = start.astimezone(ZoneInfo(zone))
    exceptions = []
    for week, cancelled in ((2, False), (4, True)):
        original = (local + timedelta(weeks=week)).astimezone(UTC)
        instance = f"{event}_{original.strftime('%Y%m%dT%H%M%SZ')}"
        body: dict[str, Any] = {
            "id": instance,
            "iCalUID": master["iCalUID"],
            "recurringEventId": event,
            "originalStartTime": _stamp(original, zone),
        }
        if cancelled:
            body.update(status="cancelled", start=_stamp(original, zone))
            body["end"] = _stamp(original + timedelta(hours=1), zone)
        else:
            moved = original + timedelta(hours=2)
            body.update(
                summary="Weekly coaching (moved)",
                start=_stamp(moved, zone),
                end=_stamp(moved + timedelta(hours=1), zone),
                organizer=master["organizer"],
                attendees=master["attendees"],
            )
        exceptions.append(body)
    return [master, *exceptions]


# --- children -----------------------------------------------------------------------------


class Counter:
    """Requests and bytes received by one client process."""

    def __init__(self) -> None:
        self.requests = 0
        self.received = 0


def counting_http(counter: Counter, timeout: float, base: type[Any] | None = None) -> Any:
    """An HTTP object of class ``base`` (``httplib2.Http`` by default) that counts every
    exchange (API calls and token refreshes)."""
    import httplib2

    class Counting(base or httplib2.Http):  # type: ignore[misc]
        def request(self, *args: Any, **kwargs: Any) -> Any:
            response, content = super().request(*args, **kwargs)
            counter.requests += 1
            counter.received += len(content or b"")
            return response, content

    return Counting(timeout=timeout)


@dataclass(slots=True)
class Setup:
    """What the parent tells a child: where the emulator is and what it holds."""

    endpoint: str
    calendars: list[str]
    token_file: str
    events: int
    today: str


def run_client(client: str, setup: Setup, repeat: int) -> ClientResult:
    """Measure one client: the initial sync, then ``repeat`` no-change polls."""
    start_child("connectors.google", "googleapiclient.discovery", "syncd.normalize")
    counter = Counter()
    startup = peak_rss_mb()
    poll = (_syncd_poller if client == SYNCD else _naive_poller)(setup, counter)
    phases = {INITIAL: Phase(), NO_CHANGE: Phase()}
    for phase, runs in ((INITIAL, 1), (NO_CHANGE, repeat)):
        for _ in range(runs):
            before = (counter.requests, counter.received)
            (listed, changed), wall, cpu = timed(poll)
            record = phases[phase]
            record.wall_s.append(wall)
            record.cpu_s.append(cpu)
            record.requests.append(counter.requests - before[0])
            record.received.append(counter.received - before[1])
            record.listed.append(listed)
            record.changed.append(changed)
            record.peak_rss_mb = peak_rss_mb()
        if client == SYNCD and phase == NO_CHANGE:
            check(max(phases[phase].listed) == 0, "a no-change poll listed objects")
    return ClientResult(client=client, startup_rss_mb=startup, phases=phases)


def _syncd_poller(setup: Setup, counter: Counter) -> Callable[[], tuple[int, int]]:
    import google_auth_httplib2

    from connectors.google import GoogleConnector
    from connectors.google.session import ProxiedHttp
    from syncd.config import CalendarConfig

    today = datetime.fromisoformat(setup.today)
    horizon = (today - PAST, today + FUTURE)
    connectors = []
    for number, calendar in enumerate(setup.calendars):
        config = CalendarConfig(
            name=f"cal{number}",
            connector="google",
            options={
                "calendar_id": calendar,
                "api_endpoint": setup.endpoint,
                "token_file": setup.token_file,
            },
            source=Path(setup.token_file).parent / "syncd.toml",
            index=number,
        )
        connector = GoogleConnector.from_config(config)
        timeout = connector.options.timeout
        connector.session.http_factory = lambda creds, t=timeout: (
            google_auth_httplib2.AuthorizedHttp(
                creds, http=counting_http(counter, t, ProxiedHttp), max_refresh_attempts=1
            )
        )
        connectors.append(connector)
    cursors: list[str | None] = [None] * len(connectors)
    known: list[dict[str, str]] = [{} for _ in connectors]

    def poll() -> tuple[int, int]:
        listed = changed = 0
        for index, connector in enumerate(connectors):
            delta = connector.list_changes(cursors[index], known[index], horizon=horizon)
            check(not delta.failures, f"item failures: {delta.failures[:1]}")
            if delta.full:
                check(
                    len(delta.upserts) == setup.events,
                    f"{connector.name}: {len(delta.upserts)} objects, not {setup.events}",
                )
                known[index] = {}
            for href in delta.removed:
                known[index].pop(href, None)
            known[index].update({o.href: o.etag for o in delta.upserts})
            cursors[index] = delta.cursor
            listed += len(delta.upserts)
            changed += len(delta.upserts) + len(delta.removed)
        return listed, changed

    return poll


def _naive_poller(setup: Setup, counter: Counter) -> Callable[[], tuple[int, int]]:
    import google_auth_httplib2
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    info = json.loads(Path(setup.token_file).read_text(encoding="utf-8"))
    credentials = Credentials.from_authorized_user_info(info).with_token_uri(info["token_uri"])
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=counting_http(counter, 60))
    service = build(
        "calendar",
        "v3",
        http=http,
        static_discovery=True,
        client_options={"api_endpoint": setup.endpoint},
    )
    previous: list[dict[str, str]] = [{} for _ in setup.calendars]

    def poll() -> tuple[int, int]:
        now = datetime.now(UTC)
        window = {
            "timeMin": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "timeMax": (now + FUTURE).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        listed = changed = 0
        for index, calendar in enumerate(setup.calendars):
            seen: dict[str, str] = {}
            request = service.events().list(
                calendarId=calendar,
                singleEvents=True,
                orderBy="startTime",
                maxResults=2500,
                **window,
            )
            while request is not None:
                page = request.execute()
                seen.update({item["id"]: item["etag"] for item in page.get("items", [])})
                request = service.events().list_next(request, page)
            old = previous[index]
            changed += sum(1 for k, v in seen.items() if old.get(k) != v) + len(
                set(old) - set(seen)
            )
            previous[index] = seen
            listed += len(seen)
        return listed, changed

    return poll


def child(args: argparse.Namespace) -> int:
    """The child's entry point."""
    data = json.loads(Path(args.setup).read_text(encoding="utf-8"))
    setup = Setup(**data)
    return child_main(
        args.child_out, CLIENTS[args.client], lambda: run_client(args.client, setup, args.repeat)
    )


# --- the parent ---------------------------------------------------------------------------


def seed_emulator(args: argparse.Namespace, root: Path) -> tuple[Any, Setup, int]:
    """Start the emulator and load the calendars; the emulator, the setup, series count."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.google_emulator import GoogleCalendarEmulator

    emu = GoogleCalendarEmulator()
    emu.start()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    calendars = []
    series = 0
    for number in range(args.calendars):
        calendar = emu.add_calendar(f"bench {number}", time_zone="Europe/Berlin")
        bodies = generate(number, args.events, args.recurring_share, args.seed, today)
        series += sum(1 for b in bodies if "recurrence" in b)
        emu.bulk_load(calendar, bodies)
        calendars.append(calendar)
    folder = root / "tokens"
    folder.mkdir(mode=0o700)
    token = folder / "google-bench.json"
    token.write_text(json.dumps(emu.authorized_user_info(scopes=SCOPES)), encoding="utf-8")
    token.chmod(0o600)
    setup = Setup(emu.endpoint, calendars, str(token), args.events, today.isoformat())
    return emu, setup, series


def serve(args: argparse.Namespace) -> int:
    """The emulator's own process: seed it and serve (see ``serve_until_stdin_closes``)."""
    target = Path(args.serve)
    emu, setup, series = seed_emulator(args, target.parent)
    return serve_until_stdin_closes(target, {"setup": asdict(setup), "series": series}, emu.stop)


def start_server(args: argparse.Namespace, root: Path) -> tuple[subprocess.Popen[str], Setup, int]:
    """Start and seed the emulator's process; wait until it serves."""
    options = forward(args, "calendars", "events", "recurring_share", "seed")
    server, data = start_server_process(__file__, options, root / "setup.json")
    return server, Setup(**data["setup"]), int(data["series"])


def measure(args: argparse.Namespace, client: str, setup: Setup, root: Path) -> ClientResult:
    """One child per client, from the same token file."""
    token = Path(setup.token_file)
    original = token.read_bytes()
    setup_file = root / f"client-{client}.json"
    setup_file.write_text(json.dumps(asdict(setup)), encoding="utf-8")
    options = ["--client", client, "--setup", str(setup_file), *forward(args, "repeat")]
    data = spawn(__file__, options, CLIENTS[client], args.tmpdir)
    token.write_bytes(original)  # the next client starts without the first one's access token
    return ClientResult.from_json(data)


def print_table(results: dict[str, ClientResult], calendars: int) -> None:
    table = Table(
        label_width=36,
        spread_width=20,
        columns=(("req", 8), ("req/cal", 9), ("cpu ms/cal", 12), ("MB in", 9), ("listed", 10)),
        tail="  peak RSS",
    )
    table.print_head()
    for client, result in results.items():
        for phase, record in result.phases.items():
            cpu = median(record.cpu_s)
            table.print_row(
                f"{CLIENTS[client]}: {LABELS[phase]}",
                record.wall_s,
                record.cpu_s,
                f"{median(record.requests):,.0f}",
                f"{median(record.requests) / calendars:.2f}",
                f"{cpu * 1000 / calendars:.2f}",
                f"{median(record.received) / 1e6:.2f}",
                f"{median(record.listed):,.0f}",
                tail=f"  {record.peak_rss_mb:.0f} MB",
            )


def ratios(results: dict[str, ClientResult], calendars: int, events: int) -> dict[str, float]:
    """Naive / syncd for the no-change poll, and the initial throughput and memory."""
    syncd, naive = results[SYNCD].phases, results[NAIVE].phases
    found = {
        "no_change_cpu": median(naive[NO_CHANGE].cpu_s) / median(syncd[NO_CHANGE].cpu_s),
        "no_change_wall": median(naive[NO_CHANGE].wall_s) / median(syncd[NO_CHANGE].wall_s),
        "no_change_requests": median(naive[NO_CHANGE].requests) / median(syncd[NO_CHANGE].requests),
        "no_change_bytes": median(naive[NO_CHANGE].received) / median(syncd[NO_CHANGE].received),
        "initial_cpu": median(syncd[INITIAL].cpu_s) / median(naive[INITIAL].cpu_s),
        "peak_rss": syncd[INITIAL].peak_rss_mb / naive[INITIAL].peak_rss_mb,
    }
    print("\nratios (same run):")
    print(
        f"  no-change poll, naive / syncd: CPU {found['no_change_cpu']:.0f}x, wall "
        f"{found['no_change_wall']:.0f}x, requests {found['no_change_requests']:.1f}x, "
        f"bytes in {found['no_change_bytes']:.0f}x"
    )
    print(
        f"  initial sync, syncd / naive first poll: CPU {found['initial_cpu']:.2f}x, "
        f"peak RSS {found['peak_rss']:.2f}x"
    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator, seed the calendars, run each client, print the report."""
    args = parse_args(argv)
    if args.child_out is not None:
        return child(args)
    if args.serve is not None:
        return serve(args)
    print_banner(
        "syncd Google connector benchmark",
        f"{args.calendars} calendars x {args.events:,} events, recurring share "
        f"{args.recurring_share:g}, {args.repeat} no-change polls, emulator in its own process",
    )
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-google-", dir=args.tmpdir))
    server = None
    try:
        progress(f"seeding {args.calendars} calendars of {args.events:,} events")
        (server, setup, series), seeding, _cpu = timed(lambda: start_server(args, root))
        results: dict[str, ClientResult] = {}
        for client in args.client_list:
            progress(f"measuring {CLIENTS[client]}")
            results[client] = measure(args, client, setup, root)
    finally:
        if server is not None:
            stop_server_process(server)
        shutil.rmtree(root, ignore_errors=True)
    total = args.calendars * args.events
    print(
        f"\ncalendars: {args.calendars} x {args.events:,} events ({series:,} weekly series in "
        f"all, every third with a moved and a cancelled exception), seeded in {seeding:.1f} s "
        "(untimed); requests and bytes counted in each client process, token refresh included"
    )
    print_table(results, args.calendars)
    syncd = results[SYNCD].phases if SYNCD in results else None
    if syncd is not None:
        initial = median(syncd[INITIAL].wall_s)
        print(
            f"\nsyncd initial sync: {total / initial:,.0f} events/s "
            f"({total:,} objects in {initial:.1f} s wall)"
        )
    found = ratios(results, args.calendars, args.events) if len(results) == 2 else {}
    outcome: list[Target] = []
    if syncd is not None:
        per_calendar = median(syncd[NO_CHANGE].requests) / args.calendars
        cpu = median(syncd[NO_CHANGE].cpu_s) * 1000 / args.calendars
        outcome = [
            Target(
                "no-change requests per calendar",
                per_calendar,
                "",
                "= 1",
                per_calendar == TARGET_REQUESTS_PER_CALENDAR,
            ),
            Target(
                "no-change client CPU per calendar",
                cpu,
                " ms",
                f"< {TARGET_CPU_MS_PER_CALENDAR:g} ms",
                cpu < TARGET_CPU_MS_PER_CALENDAR,
            ),
        ]
        print("\ntargets (syncd):")
        for target in outcome:
            target.print_line()
    if args.json:
        print_json(
            "syncd-google",
            calendars=args.calendars,
            events=args.events,
            recurring_share=args.recurring_share,
            repeat=args.repeat,
            results={k: asdict(v) for k, v in results.items()},
            ratios=found,
            targets=[asdict(t) for t in outcome],
        )
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    found = parser(__doc__, repeat=3, repeat_help="no-change polls per client (median)")
    found.add_argument("--calendars", type=int, default=50)
    found.add_argument("--events", type=int, default=2000, help="events per calendar")
    found.add_argument("--recurring-share", type=float, default=0.05)
    add_client_options(found, list(CLIENTS))
    args = parse(found, argv)
    args.client_list = chosen_clients(found, args, list(CLIENTS))
    return args


if __name__ == "__main__":
    sys.exit(main())
