"""`syncd run` as a real process: baseline, reacting to file events at once, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import CONFIG, NOW
from tests.ical import calendar, event

T = datetime(2026, 12, 2, 10, tzinfo=UTC)
"""When the events are; the daemon's clock starts at ``NOW`` (five days earlier)."""
CLIENT = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jane@example.com"


def records(root: Path) -> list[dict[str, object]]:
    path = root / "var" / "audit.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    # One hour between polls: anything seen sooner came from the folder watch.
    (tmp_path / "syncd.toml").write_text(
        CONFIG.replace("[daemon]", '[daemon]\npoll_interval = "1h"')
    )
    folder = tmp_path / "cal"
    folder.mkdir()
    for i in range(2):
        start = T + timedelta(hours=i)
        data = calendar(event(f"e{i}", start, start + timedelta(hours=1), CLIENT))
        (folder / f"e{i}.ics").write_bytes(data)
    command = [sys.executable, "-m", "syncd.cli", "run", "--config", str(tmp_path / "syncd.toml")]
    # Logs go to files: a pipe nobody reads while the daemon runs would block it when full.
    with (tmp_path / "stdout.log").open("w") as out, (tmp_path / "stderr.log").open("w") as err:
        process = subprocess.Popen(
            [*command, "--now", NOW.isoformat()],  # the events' dates, whatever today is
            stdout=out,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        yield tmp_path, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def test_run_baselines_then_reacts_to_a_deleted_file_at_once(
    daemon: tuple[Path, subprocess.Popen[str]],
) -> None:
    """A file deleted while the daemon runs is recorded without waiting for the poll."""
    root, _process = daemon
    assert wait_for(lambda: [r["type"] for r in records(root)] == ["baseline"])
    (root / "cal" / "e0.ics").unlink()
    assert wait_for(lambda: any(r.get("change") == "cancelled" for r in records(root)))


def test_run_reacts_to_an_atomic_save(daemon: tuple[Path, subprocess.Popen[str]]) -> None:
    """An editor's save through a temporary file and a rename is seen as a move."""
    root, _process = daemon
    assert wait_for(lambda: len(records(root)) == 1)
    moved = calendar(event("e1", T + timedelta(hours=6), T + timedelta(hours=7), CLIENT))
    temp = root / "cal" / ".e1.ics.swp"
    temp.write_bytes(moved)
    os.replace(temp, root / "cal" / "e1.ics")
    assert wait_for(lambda: any(r.get("change") == "moved" for r in records(root)))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_daemon_cleanly(
    daemon: tuple[Path, subprocess.Popen[str]], sig: signal.Signals
) -> None:
    """SIGTERM and SIGINT end the loop with exit code 0 and no traceback."""
    root, process = daemon
    assert wait_for(lambda: len(records(root)) == 1)
    process.send_signal(sig)
    assert process.wait(10) == 0
    assert "Traceback" not in (root / "stderr.log").read_text()
