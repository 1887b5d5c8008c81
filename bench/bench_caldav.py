"""Benchmark of the CalDAV connector against python-caldav used the usual ways, on Radicale.

Run from the project root::

    .venv/bin/python bench/bench_caldav.py [--events 10000] [--recurring-share 0.05]
        [--repeat 3] [--clients syncd,fetch,synctoken] [--seed 1] [--tmpdir DIR] [--json]

The parent starts Radicale (``python -m radicale``, built-in server, htpasswd with plain
encryption, a temporary storage folder) on a free loopback port. It generates one calendar of
``--events`` one-object ``.ics`` files (the local benchmark's generator: 5% weekly series, some
with an EXDATE or an overridden occurrence) and writes an identical copy of it for every
client straight into Radicale's storage folder (one file per UID plus ``.Radicale.props``, see
``shared/docs/providers.md`` section E), then lets Radicale build its item cache and sync state
once (a PROPFIND and a sync-collection REPORT per calendar, untimed). Every client thus starts
from the same 10,000 objects on a warm server.

Each client runs in its own child process (this script re-invoked with hidden flags), so its
CPU time (``process_time``) and peak RSS (``ru_maxrss``) are its own, and talks to Radicale
through its own counting TCP relay on loopback, run by the parent: requests (counted from the
HTTP/1.x framing of the client's byte stream), TCP connections and bytes each way are what the
client really sent and received, headers and authentication round trips included. The clients:

- ``syncd``: ``CalDAVConnector.from_config(CalendarConfig(...))``, ``list_changes(None, {})``
  then ``list_changes(cursor, known)`` (sync-collection from the stored token, changed objects
  by calendar-multiget), one connector for the whole run as the daemon keeps it;
- ``fetch``: python-caldav's full fetch each poll, ``calendar.search(event=True)`` (a
  calendar-query with the calendar data), then a diff of the objects' data with the previous
  poll's to find the changes;
- ``synctoken``: python-caldav's ``calendar.get_objects_by_sync_token(sync_token=...,
  load_objects=True)``, which loads every listed object with its own GET.

Phases per client: the initial sync, the no-change poll (median of ``--repeat`` runs) and the
15-change poll (median of ``--repeat`` runs; before each, the parent modifies 10 single events
and deletes 5 others with plain HTTP PUT and DELETE straight to Radicale, as another client,
outside the measurement and outside the relay; every client's calendar gets the same edits).

Targets (PASS/MISS, never an exit status): syncd's no-change poll is 1 request with client CPU
under 20 ms; its 15-change poll is at most 2 requests; its initial sync uses less client CPU
and less peak memory than the full fetch. Exit 1 when syncd gives a wrong answer: the initial
sync does not list exactly ``--events`` objects, the no-change poll lists anything, a 15-change
poll does not list exactly the 10 modified objects as upserts and the 5 deleted as removed (or
any listing reports an item failure). A crash exits non-zero.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

from _common import (
    EXIT_CRASH,
    EXIT_WRONG,
    RadicaleProcess,
    Table,
    Target,
    check,
    median,
    parse,
    parser,
    peak_rss_mb,
    print_banner,
    print_json,
    progress,
    timed,
)
from bench_local import _series, _single

USER = "bench"
PASSWORD_ENV = "SYNCD_BENCH_CALDAV_PASSWORD"  # noqa: S105 - a variable name, no secret
CHANGED, DELETED = 10, 5
TARGET_NO_CHANGE_REQUESTS = 1
TARGET_NO_CHANGE_CPU_MS = 20.0
TARGET_CHANGE_REQUESTS = 2

SYNCD, FETCH, SYNCTOKEN = "syncd", "fetch", "synctoken"
CLIENTS = {
    SYNCD: "syncd connector",
    FETCH: "caldav search()",
    SYNCTOKEN: "caldav sync token",
}
"""Client keys in report order, with their table labels."""
CLIENT_NOTES = {
    SYNCD: "CalDAVConnector.list_changes: sync-collection + calendar-multiget",
    FETCH: "python-caldav calendar.search(event=True) each poll, diffed with the last poll",
    SYNCTOKEN: "python-caldav get_objects_by_sync_token(load_objects=True): one GET per object",
}
INITIAL, NO_CHANGE, CHANGES = "initial", "no_change", "changes"
PHASES = (INITIAL, NO_CHANGE, CHANGES)
LABELS = {
    INITIAL: "initial sync",
    NO_CHANGE: "no-change poll",
    CHANGES: f"{CHANGED + DELETED}-change poll",
}

MAX_OCCURRENCE = 1_000_000
"""Radicale's anti-DoS limit of VEVENTs per REPORT reply, raised from its default (10,000),
which refuses (400) a calendar-query of every object of a 10,000-event calendar: the full
fetch baseline could not run. syncd's multiget batches of 100 are far below either."""
_PROPS = {
    "C:supported-calendar-component-set": "VEVENT",
    "D:displayname": "bench",
    "tag": "VCALENDAR",
}


# --- results ------------------------------------------------------------------------------


@dataclass(slots=True)
class Phase:
    """One phase of one client: per run, its times, traffic and what it listed."""

    name: str
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    connections: list[int] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)
    """Objects whose data the client received in the phase."""
    upserts: list[int] = field(default_factory=list)
    """Objects the client found new or changed (for the full fetch: after its own diff)."""
    removed: list[int] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    """``ru_maxrss`` of the client's process right after the phase: the peak so far."""

    def value(self, name: str) -> float:
        """The median of the per-run list ``name``."""
        values: list[float] = getattr(self, name)
        return median(values)

    @property
    def traffic(self) -> float:
        """Median bytes sent plus received."""
        return median([s + r for s, r in zip(self.sent, self.received, strict=True)])


@dataclass(slots=True)
class ClientResult:
    """Everything measured for one client."""

    client: str
    startup_rss_mb: float
    phases: dict[str, Phase]
    note: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientResult:
        """Inverse of :func:`dataclasses.asdict`."""
        phases = {k: Phase(**v) for k, v in data.pop("phases").items()}
        return cls(phases=phases, **data)


# --- the calendar -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Corpus:
    """The generated calendar: file name -> bytes, and the single events safe to edit."""

    files: dict[str, bytes]
    series: int
    editable: list[str]


def generate(size: int, recurring_share: float, seed: int) -> Corpus:
    """``size`` one-object calendars (file name = UID + ``.ics``), as ``bench_local`` makes."""
    rng = random.Random(seed * 1_000_003 + size)
    series_at = set(rng.sample(range(size), round(size * recurring_share)))
    files: dict[str, bytes] = {}
    editable: list[str] = []
    number = 0
    for index in range(size):
        uid = f"bench-{index:06d}-{rng.getrandbits(32):08x}@syncd.example"
        href = f"{uid}.ics"
        if index in series_at:
            files[href] = _series(uid, index, number, rng)
            number += 1
        else:
            files[href], safe = _single(uid, index, rng)
            if safe:
                editable.append(href)
    rng.shuffle(editable)
    return Corpus(files=files, series=number, editable=editable)


def edited(data: bytes, round_: int) -> bytes:
    """The event as another client saves it: new summary, next SEQUENCE, new LAST-MODIFIED."""
    lines = []
    for line in data.decode("utf-8").split("\r\n"):
        if line.startswith("SUMMARY:"):
            line = f"{line} (edited {round_ + 1})"
        elif line.startswith("SEQUENCE:"):
            line = f"SEQUENCE:{int(line[9:]) + 1}"
        elif line.startswith("LAST-MODIFIED:"):
            line = "LAST-MODIFIED:20260304T090000Z"
        lines.append(line)
    return "\r\n".join(lines).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Edits:
    """What one round changes: the files modified and the files deleted."""

    modified: list[str]
    deleted: list[str]


def plan_edits(corpus: Corpus, rounds: int) -> list[Edits]:
    """``rounds`` rounds of 10 modified and 5 deleted single events, all distinct."""
    per_round = CHANGED + DELETED
    if len(corpus.editable) < rounds * per_round:
        raise SystemExit(f"only {len(corpus.editable)} editable events for {rounds} rounds")
    plans = []
    for number in range(rounds):
        chosen = corpus.editable[number * per_round : (number + 1) * per_round]
        plans.append(Edits(modified=chosen[:CHANGED], deleted=chosen[CHANGED:]))
    return plans


# --- Radicale -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A plain HTTP reply."""

    status: int
    body: bytes


class Radicale(RadicaleProcess):
    """Radicale for this benchmark: its answer limit raised (see ``MAX_OCCURRENCE``)."""

    def __init__(self, root: Path, password: str) -> None:
        super().__init__(
            root,
            USER,
            password,
            extra_config=f"[reporting]\nmax_expand_occurrence = {MAX_OCCURRENCE}\n",
        )
        self.password = password

    def folder(self, calendar: str) -> Path:
        """The storage folder of the user's collection ``calendar``."""
        return self.storage / "collection-root" / USER / calendar

    def path(self, calendar: str) -> str:
        """The URL path of the collection ``calendar`` (ending in ``/``)."""
        return f"/{USER}/{calendar}/"

    def seed(self, calendar: str, corpus: Corpus) -> None:
        """Write the collection straight into the storage folder: its props, one file per UID."""
        folder = self.folder(calendar)
        folder.mkdir(parents=True)
        (folder / ".Radicale.props").write_text(json.dumps(_PROPS), encoding="utf-8")
        for name, data in corpus.files.items():
            (folder / name).write_bytes(data)

    def warm(self, calendar: str, expected: int) -> None:
        """Let Radicale build its item cache and sync state for ``calendar`` once."""
        body = b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'
        reply = self.request("PROPFIND", self.path(calendar), body, {"Depth": "1"})
        if reply.status != 207:
            raise RuntimeError(f"warm-up PROPFIND of {calendar}: HTTP {reply.status}")
        tree = ElementTree.fromstring(reply.body)  # noqa: S314 - the server we started
        hrefs = [(e.text or "").strip() for e in tree.iter("{DAV:}href")]
        listed = sum(1 for href in hrefs if href.endswith(".ics"))
        sync = (
            b'<sync-collection xmlns="DAV:"><sync-token/><sync-level>1</sync-level>'
            b"<prop><getetag/></prop></sync-collection>"
        )
        reply = self.request("REPORT", self.path(calendar), sync, {"Depth": "0"})
        if reply.status != 207:
            raise RuntimeError(f"warm-up sync-collection of {calendar}: HTTP {reply.status}")
        if listed != expected:
            raise RuntimeError(f"Radicale lists {listed} of the {expected} seeded objects")

    def copy(self, prepared: str, calendar: str, expected: int) -> None:
        """A copy of the prepared (warmed) collection, its cache included, as ``calendar``."""
        shutil.copytree(
            self.folder(prepared),
            self.folder(calendar),
            ignore=shutil.ignore_patterns(".Radicale.lock"),
        )
        self.warm(calendar, expected)

    def apply(self, calendar: str, corpus: Corpus, edits: Edits, round_: int) -> None:
        """Another client edits the calendar: PUT the modified events, DELETE the others."""
        base = self.path(calendar)
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        for name in edits.modified:
            reply = self.request("PUT", base + name, edited(corpus.files[name], round_), headers)
            if reply.status not in (201, 204):
                raise RuntimeError(f"PUT {name}: HTTP {reply.status}")
        for name in edits.deleted:
            reply = self.request("DELETE", base + name)
            if reply.status not in (200, 204):
                raise RuntimeError(f"DELETE {name}: HTTP {reply.status}")

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Reply:
        """One plain HTTP request straight to Radicale (not through a relay)."""
        token = base64.b64encode(f"{USER}:{self.password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - a loopback server we started
            self.base + path,
            data=body or None,
            method=method,
            headers={"Authorization": f"Basic {token}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as reply:  # noqa: S310
                return Reply(reply.status, reply.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, error.read())


def radicale_version() -> str:
    """The installed Radicale's version, without importing it here."""
    from importlib.metadata import version

    return version("Radicale")


# --- the counting relay -------------------------------------------------------------------


class RequestCounter:
    """Counts HTTP/1.x requests in a client's byte stream (Content-Length or chunked bodies)."""

    def __init__(self) -> None:
        self._buffer = b""
        self._body = 0
        self._state = "head"

    def feed(self, data: bytes) -> int:
        """The number of request heads completed by ``data``."""
        self._buffer += data
        found = 0
        while True:
            if self._body:
                take = min(self._body, len(self._buffer))
                self._buffer = self._buffer[take:]
                self._body -= take
                if self._body:
                    return found
                continue
            if self._state == "chunk":
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return found
                size = int(self._buffer[:end].split(b";")[0].strip() or b"0", 16)
                self._buffer = self._buffer[end + 2 :]
                if size:
                    self._body = size + 2
                else:
                    self._state = "trailer"
                continue
            if self._state == "trailer":
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return found
                line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
                if not line:
                    self._state = "head"
                continue
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return found
            head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
            found += 1
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    self._body = int(value.strip())
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    self._state = "chunk"


class CountingRelay:
    """A TCP relay on loopback in front of Radicale that counts what one client sends and
    receives: connections, requests and bytes each way (a byte is counted before it is
    passed on, so a reply the client has read is counted)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self.connections = self.requests = self.sent = self.received = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def snapshot(self) -> dict[str, int]:
        """The counters so far."""
        with self._lock:
            return {
                "connections": self.connections,
                "requests": self.requests,
                "sent": self.sent,
                "received": self.received,
            }

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
            pair = _Pair(client, upstream)
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _pump(self, pair: _Pair, upward: bool) -> None:
        source, target = (pair.client, pair.upstream) if upward else (pair.upstream, pair.client)
        counter = RequestCounter() if upward else None
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                with self._lock:
                    if counter is not None:
                        self.sent += len(data)
                        self.requests += counter.feed(data)
                    else:
                        self.received += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
            pair.done()


class _Pair:
    """The two sockets of one relayed connection, closed when both directions are done."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self._open = 2
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._open -= 1
            last = self._open == 0
        if last:
            self.client.close()
            self.upstream.close()


# --- the child: one client ----------------------------------------------------------------


class Control:
    """The child's line to the parent: JSON requests on a pipe, JSON answers on stdin."""

    def __init__(self, fd: int) -> None:
        self._out: IO[str] = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def ask(self, command: str) -> dict[str, Any]:
        """Send ``command`` and wait for the parent's answer."""
        self._out.write(json.dumps({"cmd": command}) + "\n")
        self._out.flush()
        line = sys.stdin.readline()
        if not line:
            raise RuntimeError("the parent went away")
        answer: dict[str, Any] = json.loads(line)
        return answer


@dataclass(frozen=True, slots=True)
class Listing:
    """What one client call gave: objects with data received, upserts, removed names."""

    fetched: int
    upserts: set[str]
    removed: set[str]


def name_of(url: str) -> str:
    """The member name of an object URL or path, decoded."""
    return unquote(urlsplit(str(url)).path.rstrip("/").rpartition("/")[2])


class SyncdClient:
    """syncd's CalDAV connector, kept for the whole run as the daemon keeps it."""

    def __init__(self, url: str, root: Path) -> None:
        from connectors.caldav import CalDAVConnector
        from syncd.config import CalendarConfig

        config = CalendarConfig(
            name="bench",
            connector="caldav",
            options={"url": url, "username": USER, "password_env": PASSWORD_ENV},
            source=root / "syncd.toml",
            index=0,
        )
        self.connector = CalDAVConnector.from_config(config)
        self.cursor: str | None = None
        self.known: dict[str, str] = {}

    def poll(self) -> Listing:
        delta = self.connector.list_changes(self.cursor, self.known)
        check(
            not delta.failures,
            f"{len(delta.failures)} item failures, first: {delta.failures[0].reason}"
            if delta.failures
            else "",
        )
        if delta.full:
            self.known = {}
        for name in delta.removed:
            self.known.pop(name, None)
        for found in delta.upserts:
            self.known[found.href] = found.etag
        self.cursor = delta.cursor
        upserts = {name_of(o.href) for o in delta.upserts}
        return Listing(len(delta.upserts), upserts, {name_of(h) for h in delta.removed})


class FetchClient:
    """python-caldav, the usual way #1: a full ``search(event=True)`` every poll, then a diff
    of the objects' data with the previous poll's."""

    def __init__(self, url: str) -> None:
        import caldav

        self.client = caldav.DAVClient(url=url, username=USER, password=os.environ[PASSWORD_ENV])
        self.calendar = self.client.calendar(url=url)
        self.state: dict[str, str] = {}

    def poll(self) -> Listing:
        objects = self.calendar.search(event=True)
        state = {name_of(o.url): o.data for o in objects}
        upserts = {name for name, data in state.items() if self.state.get(name) != data}
        removed = set(self.state) - set(state)
        self.state = state
        return Listing(len(objects), upserts, removed)


class SyncTokenClient:
    """python-caldav, the usual way #2: ``get_objects_by_sync_token(load_objects=True)``."""

    def __init__(self, url: str) -> None:
        import caldav

        self.client = caldav.DAVClient(url=url, username=USER, password=os.environ[PASSWORD_ENV])
        self.calendar = self.client.calendar(url=url)
        self.token: Any = None
        self.state: dict[str, str] = {}

    def poll(self) -> Listing:
        found = self.calendar.get_objects_by_sync_token(sync_token=self.token, load_objects=True)
        self.token = found.sync_token
        deleted = {name_of(u) for u in found.deleted_urls}
        loaded = [o for o in found.objects if name_of(o.url) not in deleted]
        for obj in loaded:
            self.state[name_of(obj.url)] = obj.data
        for name in deleted:
            self.state.pop(name, None)
        return Listing(len(loaded), {name_of(o.url) for o in loaded}, deleted)


def run_client(client: str, url: str, events: int, repeat: int, control: Control) -> ClientResult:
    """Measure one client's phases (runs in a fresh child process)."""
    import gc
    import logging

    if client == SYNCD:
        from _common import start_child

        start_child("connectors.caldav", "syncd.connector")
    else:
        # What an application does (warnings only), and what syncd's transport does too:
        # caldav pretty-prints every parsed reply for its debug log whenever this logger's
        # own level is unset, logged or not; without this the baselines pay for it.
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        logging.getLogger("caldav.response").setLevel(logging.INFO)
        import caldav  # noqa: F401 - imported up front so the start-up RSS includes it

    with tempfile.TemporaryDirectory(prefix="syncd-bench-caldav-") as temp:
        poller: SyncdClient | FetchClient | SyncTokenClient
        if client == SYNCD:
            poller = SyncdClient(url, Path(temp))
        elif client == FETCH:
            poller = FetchClient(url)
        else:
            poller = SyncTokenClient(url)
        gc.collect()
        startup = peak_rss_mb()
        phases = {name: Phase(name) for name in PHASES}
        note = ""

        def measured(phase: Phase) -> Listing:
            before = control.ask("snap")
            listing, wall, cpu = timed(poller.poll)
            after = control.ask("snap")
            phase.wall_s.append(wall)
            phase.cpu_s.append(cpu)
            phase.requests.append(after["requests"] - before["requests"])
            phase.connections.append(after["connections"] - before["connections"])
            phase.sent.append(after["sent"] - before["sent"])
            phase.received.append(after["received"] - before["received"])
            phase.fetched.append(listing.fetched)
            phase.upserts.append(len(listing.upserts))
            phase.removed.append(len(listing.removed))
            phase.peak_rss_mb = peak_rss_mb()
            return listing

        listing = measured(phases[INITIAL])
        if client == SYNCD:
            check(
                listing.fetched == len(listing.upserts) == events and not listing.removed,
                f"initial sync: expected {events:,} objects, listed {listing.fetched:,} "
                f"({len(listing.upserts):,} distinct), {len(listing.removed)} removed",
            )
        elif listing.fetched != events:
            note = f"initial sync listed {listing.fetched:,} of {events:,} objects"
        for _ in range(repeat):
            listing = measured(phases[NO_CHANGE])
            if client == SYNCD:
                check(
                    not listing.fetched and not listing.upserts and not listing.removed,
                    f"no-change poll: listed {listing.fetched} objects, "
                    f"{len(listing.removed)} removed",
                )
        for _ in range(repeat):
            edits = control.ask("edit")
            modified, deleted = set(edits["modified"]), set(edits["deleted"])
            listing = measured(phases[CHANGES])
            wrong = listing.upserts != modified or listing.removed != deleted
            if client == SYNCD:
                check(
                    not wrong and listing.fetched == CHANGED,
                    f"{CHANGED + DELETED}-change poll: expected the {CHANGED} modified as "
                    f"upserts and the {DELETED} deleted as removed; got {listing.fetched} "
                    f"objects, upserts {sorted(listing.upserts ^ modified)} differ, removed "
                    f"{sorted(listing.removed ^ deleted)} differ",
                )
            elif wrong and not note:
                note = (
                    f"a {CHANGED + DELETED}-change poll found {len(listing.upserts)} upserts "
                    f"and {len(listing.removed)} removed"
                )
        if client == SYNCD:
            poller.connector.close()  # type: ignore[union-attr]
        else:
            poller.client.close()  # type: ignore[union-attr]
    return ClientResult(client=client, startup_rss_mb=startup, phases=phases, note=note)


def child(args: argparse.Namespace) -> int:
    """The child's entry point: measure, write the result, exit like ``_common.child_main``."""
    import traceback

    from _common import WrongAnswer

    control = Control(args.child_control)
    try:
        result = run_client(args.child_client, args.child_url, args.events, args.repeat, control)
    except WrongAnswer as wrong:
        print(f"ERROR: {CLIENTS[args.child_client]}: {wrong}", flush=True)
        return EXIT_WRONG
    except Exception:
        traceback.print_exc()
        return EXIT_CRASH
    Path(args.child_out).write_text(json.dumps(asdict(result)), encoding="utf-8")
    return 0


# --- the parent ---------------------------------------------------------------------------


def measure_client(
    args: argparse.Namespace,
    client: str,
    server: Radicale,
    corpus: Corpus,
    plans: Sequence[Edits],
) -> ClientResult:
    """Run one client in a fresh interpreter behind its own counting relay; serve its
    requests for counter snapshots and edit rounds. Exit like the child on a wrong answer or
    a crash."""
    relay = CountingRelay(server.port)
    url = f"http://127.0.0.1:{relay.port}{server.path(client)}"
    read_end, write_end = os.pipe()
    rounds = iter(enumerate(plans))
    with tempfile.NamedTemporaryFile(prefix="syncd-bench-", suffix=".json") as out:
        argv = [
            sys.executable,
            str(Path(__file__).resolve()),
            *("--events", str(args.events), "--repeat", str(args.repeat)),
            *("--child-client", client, "--child-url", url),
            *("--child-control", str(write_end), "--child-out", out.name),
        ]
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, pass_fds=(write_end,), text=True, env=dict(os.environ)
        )
        os.close(write_end)
        assert process.stdin is not None
        with os.fdopen(read_end, "r", encoding="utf-8") as requests:
            for line in requests:
                command = json.loads(line)["cmd"]
                if command == "snap":
                    answer: dict[str, Any] = relay.snapshot()
                elif command == "edit":
                    number, edits = next(rounds)
                    server.apply(client, corpus, edits, number)
                    answer = {"modified": edits.modified, "deleted": edits.deleted}
                else:
                    raise RuntimeError(f"unknown request from the child: {command!r}")
                process.stdin.write(json.dumps(answer) + "\n")
                process.stdin.flush()
        process.stdin.close()
        code = process.wait()
        relay.close()
        if code == EXIT_WRONG:
            print(f"ERROR: {CLIENTS[client]}: syncd gave a wrong answer (see above)")
            sys.exit(EXIT_WRONG)
        if code != 0:
            print(f"ERROR: {CLIENTS[client]}: the benchmark child crashed (exit {code})")
            print(server.log_tail(), file=sys.stderr)
            sys.exit(code if code > 0 else EXIT_CRASH)
        return ClientResult.from_json(json.loads(Path(out.name).read_text(encoding="utf-8")))


def kb(count: float) -> str:
    """Bytes as KiB with thousands separators."""
    return f"{count / 1024:,.1f}"


def print_table(results: dict[str, ClientResult], repeat: int) -> None:
    """One row per phase and client, the clients of a phase side by side."""
    columns = [
        ("requests", 10),
        ("conns", 7),
        ("sent KB", 10),
        ("recv KB", 11),
        ("fetched", 9),
        ("upserts", 9),
        ("removed", 9),
        ("peak RSS MB", 13),
    ]
    table = Table(36, 22, columns)
    print()
    table.print_head()
    for key in PHASES:
        for client, result in results.items():
            p = result.phases[key]
            cells = [
                f"{p.value('requests'):,.0f}",
                f"{p.value('connections'):,.0f}",
                kb(p.value("sent")),
                kb(p.value("received")),
                f"{p.value('fetched'):,.0f}",
                f"{p.value('upserts'):,.0f}",
                f"{p.value('removed'):,.0f}",
                f"{p.peak_rss_mb:.1f}",
            ]
            label = f"{LABELS[key] if client == next(iter(results)) else '':<16}{CLIENTS[client]}"
            table.print_row(label, p.wall_s, p.cpu_s, *cells)
    print(
        f"\n(polls: median of {repeat} runs, the initial sync runs once; requests, connections "
        "and bytes counted by the relay in front of Radicale; cpu is the client's "
        "process_time; peak RSS is the client process's ru_maxrss after the phase, i.e. its "
        "peak so far; start-up RSS after imports: "
        + ", ".join(f"{CLIENTS[c]} {r.startup_rss_mb:.1f} MB" for c, r in results.items())
        + ")"
    )
    for client, result in results.items():
        print(f"  {CLIENTS[client]:<18} {CLIENT_NOTES[client]}")
        if result.note:
            print(f"  NOTE {CLIENTS[client]}: {result.note}")


def ratio(top: float, bottom: float) -> str:
    """``top / bottom`` as ``12.3x`` or ``0.02x`` (``-`` when the bottom is zero)."""
    if not bottom:
        return "-"
    value = top / bottom
    return f"{value:.2f}x" if value < 1 else f"{value:,.1f}x"


def print_ratios(results: dict[str, ClientResult]) -> None:
    """Each baseline over syncd, same run: requests, bytes, wall, cpu, peak RSS."""
    if SYNCD not in results or len(results) < 2:
        return
    base = results[SYNCD]
    print(
        f"\n{'baseline / syncd (same run)':<44}{'requests':>10}{'bytes':>10}{'wall':>10}"
        f"{'cpu':>10}{'peak RSS':>10}"
    )
    for key in PHASES:
        mine = base.phases[key]
        for client, result in results.items():
            if client == SYNCD:
                continue
            p = result.phases[key]
            print(
                f"{LABELS[key] + ': ' + CLIENTS[client]:<44}"
                f"{ratio(p.value('requests'), mine.value('requests')):>10}"
                f"{ratio(p.traffic, mine.traffic):>10}"
                f"{ratio(p.value('wall_s'), mine.value('wall_s')):>10}"
                f"{ratio(p.value('cpu_s'), mine.value('cpu_s')):>10}"
                f"{ratio(p.peak_rss_mb, mine.peak_rss_mb):>10}"
            )


def targets(results: dict[str, ClientResult]) -> list[Target]:
    """The targets: syncd's polls in requests and CPU, its initial sync against the fetch."""
    mine = results[SYNCD].phases
    quiet_requests = mine[NO_CHANGE].value("requests")
    quiet_cpu = mine[NO_CHANGE].value("cpu_s") * 1000
    change_requests = mine[CHANGES].value("requests")
    found = [
        Target(
            "no-change poll: requests",
            quiet_requests,
            "",
            f"= {TARGET_NO_CHANGE_REQUESTS}",
            quiet_requests == TARGET_NO_CHANGE_REQUESTS,
        ),
        Target(
            "no-change poll: client CPU",
            quiet_cpu,
            " ms",
            f"< {TARGET_NO_CHANGE_CPU_MS:g} ms",
            quiet_cpu < TARGET_NO_CHANGE_CPU_MS,
        ),
        Target(
            f"{CHANGED + DELETED}-change poll: requests",
            change_requests,
            "",
            f"<= {TARGET_CHANGE_REQUESTS}",
            change_requests <= TARGET_CHANGE_REQUESTS,
        ),
    ]
    if FETCH in results:
        theirs = results[FETCH].phases[INITIAL]
        cpu = mine[INITIAL].value("cpu_s") / theirs.value("cpu_s")
        rss = mine[INITIAL].peak_rss_mb / theirs.peak_rss_mb
        found += [
            Target("initial CPU: syncd / full fetch", cpu, "x", "< 1x", cpu < 1),
            Target("initial peak RSS: syncd / full fetch", rss, "x", "< 1x", rss < 1),
        ]
    return found


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; the ``--child-*`` ones are internal."""
    options = parser(
        __doc__, repeat=3, repeat_help="runs of the no-change and 15-change polls (median)"
    )
    options.add_argument(
        "--events", type=int, default=10_000, help="objects in the calendar (default 10000)"
    )
    options.add_argument(
        "--recurring-share",
        type=float,
        default=0.05,
        help="share of objects that hold a weekly series (default 0.05)",
    )
    options.add_argument(
        "--clients",
        default=",".join(CLIENTS),
        help=f"comma-separated clients to run, syncd first (default {','.join(CLIENTS)})",
    )
    options.add_argument("--child-client", choices=list(CLIENTS), help=argparse.SUPPRESS)
    options.add_argument("--child-url", help=argparse.SUPPRESS)
    options.add_argument("--child-control", type=int, help=argparse.SUPPRESS)
    args = parse(options, argv)
    args.client_list = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = sorted(set(args.client_list) - set(CLIENTS))
    if unknown:
        options.error(f"--clients: unknown {', '.join(unknown)} (known: {', '.join(CLIENTS)})")
    if SYNCD not in args.client_list:
        options.error("--clients must include syncd")
    args.client_list = [c for c in CLIENTS if c in args.client_list]
    if args.events < 200:
        options.error("--events must be at least 200")
    if not 0 <= args.recurring_share <= 0.5:
        options.error("--recurring-share must be between 0 and 0.5")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Start Radicale, seed a calendar per client, run every client, print the report."""
    args = parse_args(argv)
    if args.child_out is not None:
        return child(args)
    # A SIGTERM stops Radicale and removes the temporary folder like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    print_banner(
        "syncd CalDAV connector benchmark",
        f"{args.events:,} events, recurring share {args.recurring_share:g}, "
        f"{args.repeat} runs per poll, Radicale {radicale_version()}",
    )
    password = secrets.token_urlsafe(18)
    os.environ[PASSWORD_ENV] = password  # the children read it from there, like syncd does
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-caldav-", dir=args.tmpdir))
    server: Radicale | None = None
    try:
        progress(f"generating {args.events:,} events")
        corpus = generate(args.events, args.recurring_share, args.seed)
        plans = plan_edits(corpus, args.repeat)
        server = Radicale(root, password)
        first, *others = args.client_list
        progress(f"writing {args.events:,} files into Radicale's storage folder")
        _none, seeding, _cpu = timed(lambda: server.seed(first, corpus))  # type: ignore[func-returns-value]
        progress("letting Radicale build its cache")
        _none, warming, _cpu = timed(lambda: server.warm(first, args.events))  # type: ignore[func-returns-value]
        copying = 0.0
        for client in others:
            progress(f"copying the prepared calendar for {client}")
            _none, seconds, _cpu = timed(lambda c=client: server.copy(first, c, args.events))  # type: ignore[misc]
            copying = max(copying, seconds)
        disk = sum(len(d) for d in corpus.files.values()) / 1024 / 1024
        results: dict[str, ClientResult] = {}
        for client in args.client_list:
            progress(f"measuring {CLIENTS[client]}")
            results[client] = measure_client(args, client, server, corpus, plans)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"\ncalendar: {args.events:,} objects ({corpus.series:,} weekly series), {disk:.1f} MB "
        f"of iCalendar written into Radicale's storage folder in {seeding:.1f} s, its cache "
        f"built in {warming:.1f} s, then the prepared folder copied for each other client "
        f"(copy and check {copying:.1f} s); all untimed. Radicale's built-in server closes "
        "the connection after each request; its [reporting] max_expand_occurrence is raised "
        f"from 10,000 to {MAX_OCCURRENCE:,} (the default refuses the full fetch's REPORT of "
        "every object with a 400)"
    )
    print_table(results, args.repeat)
    print_ratios(results)
    print("\ntargets (syncd):")
    found = targets(results)
    for target in found:
        target.print_line()
    if args.json:
        print_json(
            "syncd-caldav",
            events=args.events,
            recurring_share=args.recurring_share,
            repeat=args.repeat,
            seed=args.seed,
            clients={
                c: {
                    **asdict(r),
                    "medians": {
                        k: {
                            "wall_s": p.value("wall_s"),
                            "cpu_s": p.value("cpu_s"),
                            "requests": p.value("requests"),
                            "bytes": p.traffic,
                        }
                        for k, p in r.phases.items()
                    },
                }
                for c, r in results.items()
            },
            targets=[asdict(t) for t in found],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
