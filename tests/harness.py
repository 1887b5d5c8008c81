"""An engine on a temporary local calendar folder, with a clock the test moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from syncd.app import open_engine
from syncd.config import Config, load_config
from syncd.engine import CycleReport, Engine

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

CONFIG = """\
[state]
path = "var/state.db"
[audit]
path = "var/audit.jsonl"
[daemon]
horizon_past = "30d"
horizon_future = "180d"
[owner]
emails = ["me@example.com"]
timezone = "Europe/Berlin"
[[calendars]]
name = "work"
connector = "local"
path = "cal"
"""


class Harness:
    """A calendar folder, its configuration and an engine; ``now`` is the engine's clock."""

    def __init__(self, root: Path, config_text: str = CONFIG) -> None:
        self.root = root
        self.folder = root / "cal"
        self.folder.mkdir(parents=True, exist_ok=True)
        (root / "syncd.toml").write_text(config_text)
        self.now = NOW
        self._stack = ExitStack()
        self.engine: Engine = self._open()

    @property
    def config(self) -> Config:
        """The loaded configuration."""
        return self.engine.config

    def _open(self) -> Engine:
        config = load_config(self.root / "syncd.toml")
        return self._stack.enter_context(open_engine(config, lambda: self.now))

    def reopen(self) -> None:
        """Close and open again, as a restart would."""
        self._stack.close()
        self.engine = self._open()

    def close(self) -> None:
        """Close the engine."""
        self._stack.close()

    def put(self, name: str, data: bytes) -> None:
        """Write a file, making sure its mtime moves even within one clock tick."""
        path = self.folder / name
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.write_bytes(data)
        after = path.stat().st_mtime_ns
        if after <= before:
            os.utime(path, ns=(after, before + 1000))

    def remove(self, name: str) -> None:
        """Delete a file."""
        (self.folder / name).unlink()

    def cycle(self) -> CycleReport:
        """One cycle of the ``work`` calendar."""
        return self.engine.cycle("work")

    def advance(self, delta: timedelta) -> None:
        """Move the clock."""
        self.now += delta

    def audit(self) -> list[dict[str, Any]]:
        """Every record of the audit log."""
        path = self.config.audit_path
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def changes(self) -> Iterator[tuple[str, str, str | None]]:
        """``(change, uid, instance)`` of every change record in the audit log."""
        for record in self.audit():
            if record["type"] == "change":
                yield record["change"], record["uid"], record["instance"]


def syncd_once(root: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """``syncd once`` on ``root/syncd.toml`` as a real process at ``NOW``; ``crash_at`` names
    a crash point (:mod:`syncd.faults`) where it kills itself."""
    env = {k: v for k, v in os.environ.items() if k != "SYNCD_CRASH_AT"}
    if crash_at:
        env["SYNCD_CRASH_AT"] = crash_at
    command = [
        sys.executable,
        "-m",
        "syncd.cli",
        "once",
        "--config",
        str(root / "syncd.toml"),
        "--now",
        NOW.isoformat(),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
