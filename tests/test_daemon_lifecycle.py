"""The daemon as a real process: reload, a broken config, the instance lock, SIGTERM
mid-cycle; and, in process, a hanging calendar that must not delay another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from syncd.audit import verify
from syncd.config import load_config
from syncd.connector import Delta
from syncd.daemon import Daemon
from syncd.store import SQLiteStore
from tests.harness import CONFIG, NOW
from tests.ical import calendar, event

HOUR = timedelta(hours=1)
CLIENT = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jane@example.com"


def records(root: Path) -> list[dict[str, object]]:
    path = root / "var" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def write_event(folder: Path, uid: str, hours: int = 0) -> None:
    start = NOW + timedelta(days=3, hours=hours)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{uid}.ics").write_bytes(calendar(event(uid, start, start + HOUR, CLIENT)))


def config_with(*calendars: str, poll: str = "1h") -> str:
    text = CONFIG.replace("[daemon]", f'[daemon]\npoll_interval = "{poll}"')
    for name in calendars:
        text += f'[[calendars]]\nname = "{name}"\nconnector = "local"\npath = "{name}"\n'
    return text


def run_command(root: Path) -> list[str]:
    """``syncd run`` on ``root``'s configuration, its clock starting at the harness's ``NOW``
    (the events are dated from it, whatever day the tests run)."""
    config = str(root / "syncd.toml")
    return [sys.executable, "-m", "syncd.cli", "run", "--config", config, "--now", NOW.isoformat()]


def start(root: Path) -> subprocess.Popen[str]:
    """The daemon as a process; its output goes to ``stdout.log`` and ``stderr.log`` (a pipe
    nobody reads while it runs would block it once full)."""
    with (root / "stdout.log").open("w") as out, (root / "stderr.log").open("w") as err:
        return subprocess.Popen(
            run_command(root),
            stdout=out,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stderr(root: Path) -> str:
    """What the daemon started by :func:`start` has logged so far."""
    return (root / "stderr.log").read_text()


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "syncd.toml").write_text(config_with())
    write_event(tmp_path / "cal", "a")
    return tmp_path


@pytest.fixture
def daemon(root: Path) -> Iterator[subprocess.Popen[str]]:
    process = start(root)
    try:
        assert wait_for(lambda: any(r["type"] == "baseline" for r in records(root)))
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def baselines(root: Path) -> list[object]:
    return [r["calendar"] for r in records(root) if r["type"] == "baseline"]


def test_sighup_reloads_a_new_calendar(root: Path, daemon: subprocess.Popen[str]) -> None:
    """After SIGHUP a calendar added to the file is served without a restart."""
    write_event(root / "extra", "x")
    (root / "syncd.toml").write_text(config_with("extra"))
    daemon.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "extra" in baselines(root)), stderr(root)
    assert daemon.poll() is None


def test_an_edited_config_file_reloads_by_itself(root: Path, daemon: subprocess.Popen[str]) -> None:
    """Saving the configuration file is enough: the watch reloads it."""
    write_event(root / "extra", "x")
    temp = root / ".syncd.toml.tmp"
    temp.write_text(config_with("extra"))
    os.replace(temp, root / "syncd.toml")  # an editor's atomic save
    assert wait_for(lambda: "extra" in baselines(root))


def test_a_broken_config_keeps_the_old_one_running(
    root: Path, daemon: subprocess.Popen[str]
) -> None:
    """An invalid file is logged with its problems; the running calendars keep working."""
    (root / "syncd.toml").write_text(config_with().replace('"1h"', '"soon"') + "bogus = 1\n")
    daemon.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "config.invalid" in stderr(root))  # the reload was tried
    (root / "cal" / "a.ics").unlink()
    assert wait_for(lambda: any(r.get("change") == "cancelled" for r in records(root)))
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(20) == 0
    logged = stderr(root)
    assert "daemon.poll_interval" in logged
    assert "bogus" in logged


def test_a_second_daemon_on_the_same_state_is_refused(
    root: Path, daemon: subprocess.Popen[str]
) -> None:
    """The state directory is locked: another syncd exits 1 naming the running one."""
    second = subprocess.run(
        [sys.executable, "-m", "syncd.cli", "once", "--config", str(root / "syncd.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert second.returncode == 1
    assert f"another syncd (pid {daemon.pid})" in second.stderr


def test_sigterm_mid_cycle_finishes_and_loses_nothing(tmp_path: Path) -> None:
    """SIGTERM during a long first cycle: it completes and commits, then the daemon exits 0."""
    (tmp_path / "syncd.toml").write_text(config_with())
    for i in range(1500):
        write_event(tmp_path / "cal", f"e{i}", hours=i % 200)
    reading = Opened()
    observer = Observer()
    observer.schedule(reading, str(tmp_path / "cal"))
    observer.start()
    try:
        process = start(tmp_path)
        try:
            # Only a cycle opens the calendar's files: once one is read, the cycle is under way.
            assert wait_for(lambda: reading.seen.is_set() or process.poll() is not None, 60)
            assert reading.seen.is_set(), stderr(tmp_path)
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        observer.stop()
        observer.join(10)
    assert [r.get("instances") for r in records(tmp_path) if r["type"] == "baseline"] == [1500]
    store = SQLiteStore(tmp_path / "var" / "state.db")
    try:
        assert verify(tmp_path / "var" / "audit.jsonl", store.audit_anchor()).ok
        assert store.calendar_state("work").instance_count == 1500
    finally:
        store.close()


class Opened(FileSystemEventHandler):
    """Sets ``seen`` once a calendar file in the watched folder is opened."""

    def __init__(self) -> None:
        self.seen = threading.Event()

    def on_opened(self, event: FileSystemEvent) -> None:
        if not event.is_directory and os.fsdecode(event.src_path).endswith(".ics"):
            self.seen.set()


class Hanging:
    """Wraps a connector; every listing blocks until released."""

    def __init__(self, inner: object, release: threading.Event) -> None:
        self.inner = inner
        self.release = release

    def list_changes(
        self, cursor: str | None, known: Mapping[str, str], *, horizon: object = None
    ) -> Delta:
        self.release.wait(30)
        return self.inner.list_changes(cursor, known)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_hanging_calendar_does_not_delay_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one calendar's listing hangs, the other keeps polling on its interval."""
    (tmp_path / "syncd.toml").write_text(
        config_with("slow", poll="1s").replace('path = "cal"', 'path = "cal"\npoll_interval = "1s"')
    )
    write_event(tmp_path / "cal", "a")
    write_event(tmp_path / "slow", "s")
    release = threading.Event()
    import syncd.daemon as daemon_module

    real_open = daemon_module.open_engine

    def open_with_hang(config, clock):  # type: ignore[no-untyped-def]
        context = real_open(config, clock)
        engine = context.__enter__()
        engine.connectors = {
            **engine.connectors,
            "slow": Hanging(engine.connectors["slow"], release),
        }

        class Wrapped:
            def __enter__(self) -> object:
                return engine

            def __exit__(self, *exc: object) -> None:
                context.__exit__(*exc)

        return Wrapped()

    monkeypatch.setattr(daemon_module, "open_engine", open_with_hang)
    daemon = Daemon(load_config(tmp_path / "syncd.toml"), lambda: NOW)
    runner = threading.Thread(target=daemon.run)
    runner.start()
    try:
        assert wait_for(lambda: "work" in baselines(tmp_path), 10)
        (tmp_path / "cal" / "a.ics").unlink()
        assert wait_for(lambda: any(r.get("change") == "cancelled" for r in records(tmp_path)), 10)
        assert "slow" not in baselines(tmp_path)  # still hanging all along
    finally:
        release.set()
        daemon.stop()
        runner.join(30)


def test_status_shows_the_backoff_of_a_failing_calendar(tmp_path: Path) -> None:
    """A calendar whose folder vanished fails, backs off, and `status --json` shows it."""
    (tmp_path / "syncd.toml").write_text(config_with("gone", poll="1s"))
    write_event(tmp_path / "cal", "a")
    write_event(tmp_path / "gone", "g")
    process = start(tmp_path)
    try:
        assert wait_for(lambda: "gone" in baselines(tmp_path))
        (tmp_path / "gone" / "g.ics").unlink()
        (tmp_path / "gone").rmdir()

        def backing_off() -> bool:
            shown = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "syncd.cli",
                    "status",
                    "--json",
                    "--config",
                    str(tmp_path / "syncd.toml"),
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            rows = {r["calendar"]: r for r in json.loads(shown.stdout)}
            healthy = rows["work"]["cursor_age_seconds"] is not None
            row = rows["gone"]
            return healthy and row["failures_in_a_row"] >= 1 and row["backoff_until"] is not None

        assert wait_for(backing_off, 20)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def test_sd_notify_messages_arrive_in_order(root: Path) -> None:
    """Under systemd: READY, then STATUS and WATCHDOG, RELOADING on SIGHUP, STOPPING last."""
    import socket

    path = root / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    with (root / "stderr.log").open("w") as err:
        process = subprocess.Popen(
            run_command(root),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "4000000"},
        )
    messages: list[str] = []

    def receive_until(prefix: str) -> None:
        while not any(m.startswith(prefix) for m in messages):
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                state = f"exit code {process.poll()}; received {messages}; log:\n{stderr(root)}"
                raise AssertionError(f"no {prefix} within 20 s: {state}") from None

    try:
        receive_until("READY=1")
        receive_until("STATUS=")
        receive_until("WATCHDOG=1")
        process.send_signal(signal.SIGHUP)
        receive_until("RELOADING=1")
        process.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1")
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        sock.close()
    firsts = [
        next(i for i, m in enumerate(messages) if m.startswith(p))
        for p in ("READY=1", "RELOADING=1", "STOPPING=1")
    ]
    assert firsts == sorted(firsts)
    assert messages[-1].startswith("STOPPING=1")
