"""Benchmark of the Outlook connector against a naive poller, on the Graph emulator.

Run from the project root::

    .venv/bin/python bench/bench_outlook.py [--mailboxes 50] [--events 2000]
        [--recurring-share 0.05] [--repeat 3] [--clients syncd,naive] [--seed 1]
        [--tmpdir DIR] [--json]

The parent starts the Graph emulator (``tests/graph_emulator``, HTTPS on a loopback port with
the test CA, any bearer token accepted) in its own process and seeds ``--mailboxes``
mailboxes with one calendar of ``--events`` events each (``bulk_load``): single meetings from
30 days back to 180 days ahead with one or two attendees, and ``--recurring-share`` weekly
series of 10 occurrences. Graph lists every occurrence on its own, so a mailbox holds more
items than events.

Each client runs in its own child process (this script re-invoked), so its CPU time
(``process_time``) and peak RSS (``ru_maxrss``) are its own. Requests and bytes received are
counted inside the child around ``requests``: what went over the wire (a ``$batch`` counts
once). Sign-in is not measured: both clients send a fixed bearer token. The clients:

- ``syncd``: one ``OutlookConnector`` per mailbox for the whole run, as the daemon keeps
  them; ``list_changes(None, {}, horizon=...)`` (30 days back, 180 ahead: a
  ``calendarView/delta`` round over the horizon plus 14 days, syncd's extended property read
  from a ``calendarView`` listing or ``$batch``), then ``list_changes(cursor, known)`` per
  poll; every item rendered as iCalendar for the core;
- ``naive``: each poll lists ``calendarView`` over the same 210 days for every mailbox (every
  page of up to 1,000 items, syncd's property expanded, the same ``Prefer`` headers), diffs
  change keys with its previous poll and renders the changed items as iCalendar, as a
  connector without delta would have to.

Phases per client: the initial sync (for the naive poller its first poll), the no-change
poll of all mailboxes and the 10-change poll (before each run, outside the measurement, the
child renames 10 single events per mailbox with its own HTTP session); medians of
``--repeat`` runs. Targets (PASS/MISS, never an exit status): syncd's no-change poll sends
exactly one request per mailbox with under 5 ms client CPU per mailbox; its 10-change poll at
most two requests per mailbox. Exit 1 when syncd gives a wrong answer: an initial listing
that differs from the items the emulator holds, an item failure, a no-change poll that lists
anything, or a 10-change poll that does not list exactly the 10 renamed events per mailbox.
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
CLIENTS = {SYNCD: "syncd connector", NAIVE: "naive calendarView poll"}
INITIAL, NO_CHANGE, CHANGES = "initial", "no_change", "changes"
CHANGED = 10
LABELS = {INITIAL: "initial sync", NO_CHANGE: "no-change poll", CHANGES: f"{CHANGED}-change poll"}
TARGET_NO_CHANGE_REQUESTS = 1.0
TARGET_NO_CHANGE_CPU_MS = 5.0
TARGET_CHANGE_REQUESTS = 2.0
PAST, FUTURE = timedelta(days=30), timedelta(days=180)
NAIVE_PAGE = 1000
OCCURRENCES = 10
PROPERTY = "String {C338908B-E2B7-459E-A581-EF1235020E88} Name syncd"
"""syncd's data property (``connectors.outlook.items.DATA_PROPERTY``), for the naive poller."""


# --- results ------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    """One phase of one client, per run: times, traffic, what was listed."""

    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    listed: list[int] = field(default_factory=list)
    """Items whose data the client turned into objects."""
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


@dataclass(slots=True)
class Setup:
    """What the parent tells a child: where Graph is and what it holds."""

    base: str
    ca_file: str
    mailboxes: list[tuple[str, str]]
    """(user, calendar id) per mailbox."""
    items: list[int]
    """Items (single events and occurrences) each calendar shows over the horizon."""
    editable: list[list[str]]
    """Ids of single events per mailbox the 10-change poll renames."""
    today: str


# --- the mailboxes ------------------------------------------------------------------------


def _time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _people(rng: random.Random) -> list[dict[str, Any]]:
    statuses = ("accepted", "accepted", "none", "tentativelyAccepted")
    return [
        {
            "emailAddress": {"address": f"client{rng.randrange(500)}@example.com"},
            "type": "required",
            "status": {"response": rng.choice(statuses)},
        }
        for _ in range(rng.choice((1, 1, 2)))
    ]


def generate(
    mailbox: int, events: int, share: float, seed: int, today: datetime
) -> list[dict[str, Any]]:
    """Graph JSON bodies for one calendar: ``events`` events, ``share`` of them weekly series
    of :data:`OCCURRENCES` occurrences starting in the next 60 days."""
    rng = random.Random(seed * 1_000_003 + mailbox)
    series_at = set(rng.sample(range(events), round(events * share)))
    bodies: list[dict[str, Any]] = []
    for index in range(events):
        hour = rng.randrange(8, 18)
        body: dict[str, Any] = {
            "subject": f"Session {index} with a client",
            "body": {"contentType": "text", "content": "Agenda: progress review, next steps."},
            "organizer": {"emailAddress": {"address": "me@example.com", "name": "Me"}},
            "attendees": _people(rng),
        }
        if index in series_at:
            start = today + timedelta(days=rng.randrange(0, 60), hours=hour)
            body["recurrence"] = {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "daysOfWeek": [start.strftime("%A").lower()],
                },
                "range": {
                    "type": "numbered",
                    "numberOfOccurrences": OCCURRENCES,
                    "startDate": start.strftime("%Y-%m-%d"),
                },
            }
            body["subject"] = "Weekly coaching"
        else:
            start = today + timedelta(days=rng.randrange(-29, 179), hours=hour)
        length = timedelta(minutes=rng.choice((30, 45, 60, 90)))
        body.update(start=_time(start), end=_time(start + length))
        if rng.random() < 0.3:
            body["location"] = {"displayName": f"Room {rng.randrange(1, 9)}"}
        bodies.append(body)
    return bodies


# --- children -----------------------------------------------------------------------------


class Counter:
    """Requests and bytes received by one client process."""

    def __init__(self) -> None:
        self.requests = 0
        self.received = 0

    def wrap(self, session: Any) -> None:
        """Count every request ``session`` (a ``requests.Session``) sends."""
        real = session.request

        def counted(*args: Any, **kwargs: Any) -> Any:
            response = real(*args, **kwargs)
            self.requests += 1
            self.received += len(response.content)
            return response

        session.request = counted


class FixedToken:
    """Credentials with one bearer token (the emulator here accepts any)."""

    def __init__(self, user: str) -> None:
        self.user = user

    def token(self) -> str:
        return "bench-token"

    def renew(self) -> str:
        return "bench-token"

    def mailbox(self) -> str:
        return self.user

    def close(self) -> None:
        pass


def run_client(client: str, setup: Setup, repeat: int) -> ClientResult:
    """Measure one client: the initial sync, ``repeat`` no-change and 10-change polls."""
    start_child("connectors.outlook", "requests", "syncd.normalize")
    counter = Counter()
    startup = peak_rss_mb()
    poll = (_syncd_poller if client == SYNCD else _naive_poller)(setup, counter)
    edit = _editor(setup, client)
    phases = {INITIAL: Phase(), NO_CHANGE: Phase(), CHANGES: Phase()}
    for phase, runs in ((INITIAL, 1), (NO_CHANGE, repeat), (CHANGES, repeat)):
        for run in range(runs):
            if phase == CHANGES:
                edit(run)
            before = (counter.requests, counter.received)
            listed, wall, cpu = timed(lambda p=phase: poll(p))
            record = phases[phase]
            record.wall_s.append(wall)
            record.cpu_s.append(cpu)
            record.requests.append(counter.requests - before[0])
            record.received.append(counter.received - before[1])
            record.listed.append(listed)
            record.peak_rss_mb = peak_rss_mb()
    return ClientResult(client=client, startup_rss_mb=startup, phases=phases)


def _options(setup: Setup, user: str, calendar: str) -> Any:
    from connectors.outlook.options import OutlookOptions

    return OutlookOptions(
        client_id="bench",
        authority="https://login.invalid/contoso",
        graph_url=setup.base,
        calendar=calendar,
        ca_file=Path(setup.ca_file),
        user=user,
        client_secret_file=Path("unused"),
    )


def _syncd_poller(setup: Setup, counter: Counter) -> Callable[[str], int]:
    from connectors.outlook import OutlookConnector

    today = datetime.fromisoformat(setup.today)
    horizon = (today - PAST, today + FUTURE)
    connectors = []
    for number, (user, calendar) in enumerate(setup.mailboxes):
        connector = OutlookConnector(
            f"mailbox{number}", _options(setup, user, calendar), credentials=FixedToken(user)
        )
        counter.wrap(connector.session.http)
        connectors.append(connector)
    cursors: list[str | None] = [None] * len(connectors)
    known: list[dict[str, str]] = [{} for _ in connectors]

    def poll(phase: str) -> int:
        listed = 0
        for index, connector in enumerate(connectors):
            delta = connector.list_changes(cursors[index], known[index], horizon=horizon)
            check(not delta.failures, f"item failures: {list(delta.failures)[:1]}")
            if phase == INITIAL:
                check(
                    len(delta.upserts) == setup.items[index],
                    f"{connector.name}: {len(delta.upserts)} objects, not {setup.items[index]}",
                )
            elif phase == NO_CHANGE:
                check(not delta.upserts and not delta.removed, "a no-change poll listed objects")
            else:
                check(
                    len(delta.upserts) == CHANGED and not delta.removed,
                    f"{connector.name}: {len(delta.upserts)} objects listed, not {CHANGED}",
                )
            for href in delta.removed:
                known[index].pop(href, None)
            known[index].update({o.href: o.etag for o in delta.upserts})
            cursors[index] = delta.cursor
            listed += len(delta.upserts)
        return listed

    return poll


def _naive_poller(setup: Setup, counter: Counter) -> Callable[[str], int]:
    import requests

    from connectors.outlook.render import render

    http = requests.Session()
    http.trust_env = False
    http.verify = setup.ca_file
    counter.wrap(http)
    today = datetime.fromisoformat(setup.today)
    window = {
        "startDateTime": (today - PAST).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (today + FUTURE).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "$expand": f"singleValueExtendedProperties($filter=id eq '{PROPERTY}')",
    }
    headers = {
        "Authorization": "Bearer bench-token",
        "Prefer": f'IdType="ImmutableId", outlook.timezone="UTC", '
        f'outlook.body-content-type="text", odata.maxpagesize={NAIVE_PAGE}',
    }
    previous: list[dict[str, str]] = [{} for _ in setup.mailboxes]

    def poll(_phase: str) -> int:
        listed = 0
        for index, (user, calendar) in enumerate(setup.mailboxes):
            seen: dict[str, str] = {}
            url: str | None = f"{setup.base}/users/{user}/calendars/{calendar}/calendarView"
            params: dict[str, str] | None = window
            while url is not None:
                response = http.get(url, params=params, headers=headers, timeout=60)
                response.raise_for_status()
                page = response.json()
                for item in page.get("value", []):
                    seen[item["id"]] = item["changeKey"]
                    if previous[index].get(item["id"]) != item["changeKey"]:
                        render(item)
                        listed += 1
                url, params = page.get("@odata.nextLink"), None
            previous[index] = seen
        return listed

    return poll


def _editor(setup: Setup, client: str) -> Callable[[int], None]:
    """Renames the editable events of every mailbox, as another client (not counted)."""
    import requests

    http = requests.Session()
    http.trust_env = False
    http.verify = setup.ca_file
    headers = {"Authorization": "Bearer bench-token"}

    def edit(run: int) -> None:
        for (user, _calendar), ids in zip(setup.mailboxes, setup.editable, strict=True):
            for event in ids[:CHANGED]:
                url = f"{setup.base}/users/{user}/events/{event}"
                body = {"subject": f"Renamed by the {client} run, round {run}"}
                http.patch(url, json=body, headers=headers, timeout=60).raise_for_status()

    return edit


def child(args: argparse.Namespace) -> int:
    """The child's entry point."""
    data = json.loads(Path(args.setup).read_text(encoding="utf-8"))
    setup = Setup(**data)
    setup.mailboxes = [(str(u), str(c)) for u, c in setup.mailboxes]
    return child_main(
        args.child_out, CLIENTS[args.client], lambda: run_client(args.client, setup, args.repeat)
    )


# --- the emulator's process -------------------------------------------------------------------


def seed_emulator(args: argparse.Namespace, root: Path) -> tuple[Any, Setup]:
    """Start the emulator and load the mailboxes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.graph_emulator import GraphEmulator
    from tests.tls import ca_file

    emu = GraphEmulator().start()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    mailboxes, items, editable = [], [], []
    for number in range(args.mailboxes):
        user = f"owner{number:03d}@contoso.example"
        emu.add_mailbox(user)
        calendar = emu.add_calendar(user, "Clients")
        emu.bulk_load(
            user, calendar, generate(number, args.events, args.recurring_share, args.seed, today)
        )
        shown = emu.events(user, calendar, start=today - PAST, end=today + FUTURE)
        mailboxes.append((user, calendar))
        items.append(len(shown))
        editable.append([e["id"] for e in shown if e["type"] == "singleInstance"][:CHANGED])
    setup = Setup(emu.base, str(ca_file(root)), mailboxes, items, editable, today.isoformat())
    return emu, setup


def serve(args: argparse.Namespace) -> int:
    """The emulator's own process: seed it and serve (see ``serve_until_stdin_closes``)."""
    target = Path(args.serve)
    emu, setup = seed_emulator(args, target.parent)
    return serve_until_stdin_closes(target, asdict(setup), emu.stop)


def start_server(args: argparse.Namespace, root: Path) -> tuple[subprocess.Popen[str], Setup]:
    """Start and seed the emulator's process; wait until it serves."""
    options = forward(args, "mailboxes", "events", "recurring_share", "seed")
    server, data = start_server_process(__file__, options, root / "setup.json")
    return server, Setup(**data)


# --- the report -----------------------------------------------------------------------------


def measure(args: argparse.Namespace, client: str, setup: Setup, root: Path) -> ClientResult:
    """One child per client."""
    setup_file = root / f"client-{client}.json"
    setup_file.write_text(json.dumps(asdict(setup)), encoding="utf-8")
    options = ["--client", client, "--setup", str(setup_file), *forward(args, "repeat")]
    return ClientResult.from_json(spawn(__file__, options, CLIENTS[client], args.tmpdir))


def print_table(results: dict[str, ClientResult], mailboxes: int) -> None:
    """One row per client and phase."""
    table = Table(
        label_width=40,
        spread_width=22,
        columns=(("req", 8), ("req/mbx", 9), ("cpu ms/mbx", 12), ("MB in", 9), ("listed", 9)),
        tail="  peak RSS",
    )
    table.print_head()
    for client, result in results.items():
        for phase, record in result.phases.items():
            table.print_row(
                f"{CLIENTS[client]}: {LABELS[phase]}",
                record.wall_s,
                record.cpu_s,
                f"{median(record.requests):,.0f}",
                f"{median(record.requests) / mailboxes:.2f}",
                f"{median(record.cpu_s) * 1000 / mailboxes:.2f}",
                f"{median(record.received) / 1e6:.2f}",
                f"{median(record.listed):,.0f}",
                tail=f"  {record.peak_rss_mb:.0f} MB",
            )


def ratios(results: dict[str, ClientResult]) -> dict[str, float]:
    """Naive / syncd for the polls, syncd / naive for the initial sync."""
    syncd, naive = results[SYNCD].phases, results[NAIVE].phases

    def over(phase: str, name: str) -> float:
        return float(median(getattr(naive[phase], name)) / median(getattr(syncd[phase], name)))

    found = {
        f"{phase}_{name}": over(phase, name)
        for phase in (NO_CHANGE, CHANGES)
        for name in ("cpu_s", "wall_s", "requests", "received")
    }
    found["initial_cpu"] = median(syncd[INITIAL].cpu_s) / median(naive[INITIAL].cpu_s)
    found["initial_wall"] = median(syncd[INITIAL].wall_s) / median(naive[INITIAL].wall_s)
    found["initial_requests"] = median(syncd[INITIAL].requests) / median(naive[INITIAL].requests)
    found["peak_rss"] = syncd[CHANGES].peak_rss_mb / naive[CHANGES].peak_rss_mb
    print("\nratios (same run):")
    for phase in (NO_CHANGE, CHANGES):
        print(
            f"  {LABELS[phase]}, naive / syncd: CPU {found[f'{phase}_cpu_s']:.0f}x, wall "
            f"{found[f'{phase}_wall_s']:.0f}x, requests {found[f'{phase}_requests']:.1f}x, "
            f"bytes in {found[f'{phase}_received']:.0f}x"
        )
    print(
        f"  initial sync, syncd / naive first poll: CPU {found['initial_cpu']:.2f}x, wall "
        f"{found['initial_wall']:.2f}x, requests {found['initial_requests']:.2f}x; "
        f"peak RSS {found['peak_rss']:.2f}x"
    )
    return found


def targets(results: dict[str, ClientResult], mailboxes: int) -> list[Target]:
    """syncd's targets."""
    phases = results[SYNCD].phases
    quiet = median(phases[NO_CHANGE].requests) / mailboxes
    cpu = median(phases[NO_CHANGE].cpu_s) * 1000 / mailboxes
    changed = max(phases[CHANGES].requests) / mailboxes
    return [
        Target("no-change requests per mailbox", quiet, "", "= 1", quiet == 1.0),
        Target(
            "no-change client CPU per mailbox",
            cpu,
            " ms",
            f"< {TARGET_NO_CHANGE_CPU_MS:g} ms",
            cpu < TARGET_NO_CHANGE_CPU_MS,
        ),
        Target(
            f"{CHANGED}-change requests per mailbox (max)",
            changed,
            "",
            f"<= {TARGET_CHANGE_REQUESTS:g}",
            changed <= TARGET_CHANGE_REQUESTS,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator, seed the mailboxes, run each client, print the report."""
    args = parse_args(argv)
    if args.child_out is not None:
        return child(args)
    if args.serve is not None:
        return serve(args)
    print_banner(
        "syncd Outlook connector benchmark",
        f"{args.mailboxes} mailboxes x {args.events:,} events, recurring share "
        f"{args.recurring_share:g}, {args.repeat} runs per poll, emulator in its own process",
    )
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-outlook-", dir=args.tmpdir))
    server = None
    try:
        progress(f"seeding {args.mailboxes} mailboxes of {args.events:,} events")
        (server, setup), seeding, _cpu = timed(lambda: start_server(args, root))
        results: dict[str, ClientResult] = {}
        for client in args.client_list:
            progress(f"measuring {CLIENTS[client]}")
            results[client] = measure(args, client, setup, root)
    finally:
        if server is not None:
            stop_server_process(server)
        shutil.rmtree(root, ignore_errors=True)
    items = sum(setup.items)
    print(
        f"\nmailboxes: {args.mailboxes} x {args.events:,} events = {items:,} items over the "
        f"horizon (occurrences listed one by one), seeded in {seeding:.1f} s (untimed); "
        "requests and bytes counted in each client process"
    )
    print_table(results, args.mailboxes)
    found: dict[str, float] = {}
    outcome: list[Target] = []
    if SYNCD in results:
        initial = median(results[SYNCD].phases[INITIAL].wall_s)
        print(
            f"\nsyncd initial sync: {items / initial:,.0f} items/s ({items:,} in {initial:.1f} s)"
        )
        outcome = targets(results, args.mailboxes)
    if len(results) == 2:
        found = ratios(results)
    if outcome:
        print("\ntargets (syncd):")
        for target in outcome:
            target.print_line()
    if args.json:
        print_json(
            "syncd-outlook",
            mailboxes=args.mailboxes,
            events=args.events,
            items=items,
            recurring_share=args.recurring_share,
            repeat=args.repeat,
            results={k: asdict(v) for k, v in results.items()},
            ratios=found,
            targets=[asdict(t) for t in outcome],
        )
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The benchmark's options (and the hidden ones of its children)."""
    found = parser(__doc__, repeat=3, repeat_help="runs of each poll per client (median)")
    found.add_argument("--mailboxes", type=int, default=50)
    found.add_argument("--events", type=int, default=2000, help="events per mailbox")
    found.add_argument("--recurring-share", type=float, default=0.05)
    add_client_options(found, list(CLIENTS))
    args = parse(found, argv)
    args.client_list = chosen_clients(found, args, list(CLIENTS))
    return args


if __name__ == "__main__":
    sys.exit(main())
