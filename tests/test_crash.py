"""Crash safety: kill the real process between fetch and commit, restart, and count records."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.audit import verify
from syncd.store import SQLiteStore
from tests.harness import CONFIG, syncd_once
from tests.ical import calendar, event

T = datetime(2026, 12, 2, 10, tzinfo=UTC)
CLIENT = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jane@example.com"


def change_records(root: Path) -> list[tuple[str, str]]:
    lines = (root / "var" / "audit.jsonl").read_text().splitlines()
    return [(r["change"], r["uid"]) for r in map(json.loads, lines) if r["type"] == "change"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "syncd.toml").write_text(CONFIG)
    folder = tmp_path / "cal"
    folder.mkdir()
    for i in range(3):
        start = T + timedelta(hours=i)
        (folder / f"e{i}.ics").write_bytes(
            calendar(event(f"e{i}", start, start + timedelta(hours=1), CLIENT))
        )
    assert syncd_once(tmp_path).returncode == 0
    (folder / "e0.ics").unlink()
    (folder / "e1.ics").write_bytes(
        calendar(event("e1", T + timedelta(hours=5), T + timedelta(hours=6), CLIENT))
    )
    return tmp_path


@pytest.mark.parametrize("point", ["after-fetch", "after-audit-append"])
def test_kill_between_fetch_and_commit_loses_and_duplicates_nothing(root: Path, point: str) -> None:
    """SIGKILL mid-cycle, then a restart: each change is recorded exactly once, log intact."""
    crashed = syncd_once(root, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL
    if point == "after-audit-append":  # the uncommitted records did reach the file
        assert len(change_records(root)) == 2
    assert syncd_once(root).returncode == 0
    assert sorted(change_records(root)) == [("cancelled", "e0"), ("moved", "e1")]
    store = SQLiteStore(root / "var" / "state.db")
    try:
        result = verify(root / "var" / "audit.jsonl", store.audit_anchor())
    finally:
        store.close()
    assert result.ok, result.reason
    assert syncd_once(root).returncode == 0
    assert len(change_records(root)) == 2  # a quiet rerun adds nothing


def test_recovery_is_itself_audited(root: Path) -> None:
    """Dropping an uncommitted tail leaves a `recovery` record naming the dropped seqs."""
    syncd_once(root, crash_at="after-audit-append")
    syncd_once(root)
    records = [json.loads(line) for line in (root / "var" / "audit.jsonl").read_text().splitlines()]
    recovery = [r for r in records if r["type"] == "recovery"]
    [dropped] = [r["dropped_seqs"] for r in recovery]
    assert dropped[:2] == [2, 3]  # the two change records of the killed cycle, at least
    assert dropped == list(range(2, 2 + len(dropped)))
