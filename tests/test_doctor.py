"""`syncd doctor`: each check and its verdict."""

from __future__ import annotations

from pathlib import Path

from syncd.doctor import diagnose
from tests.harness import CONFIG, Harness

NOTES = (
    '[[calendars]]\nname = "notes"\nconnector = "local"\npath = "notes"\n'
    '[notes]\ncalendar = "notes"\n'
)


def by_name(path: Path) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in diagnose(path)}


def test_a_healthy_setup_passes_every_check(tmp_path: Path) -> None:
    """After a first cycle, configuration, permissions and both calendars are fine."""
    harness = Harness(tmp_path, CONFIG + NOTES)
    (tmp_path / "notes").mkdir()
    harness.cycle()
    harness.close()
    checks = by_name(tmp_path / "syncd.toml")
    assert all(ok for ok, _ in checks.values()), checks
    assert {
        "configuration",
        "state folder",
        "state store",
        "audit log",
        "calendar work",
        "notes calendar notes",
    } <= set(checks)


def test_an_invalid_configuration_is_reported_with_its_key(tmp_path: Path) -> None:
    """A bad key fails the configuration check, naming the key; nothing else is tried."""
    (tmp_path / "syncd.toml").write_text(
        CONFIG.replace('horizon_past = "30d"', 'horizon_past = "x"')
    )
    checks = diagnose(tmp_path / "syncd.toml")
    assert [c.ok for c in checks] == [False]
    assert "daemon.horizon_past" in checks[0].detail


def test_a_missing_calendar_folder_fails_its_check(tmp_path: Path) -> None:
    """A calendar whose folder is gone fails with the folder named."""
    (tmp_path / "syncd.toml").write_text(CONFIG)
    ok, detail = by_name(tmp_path / "syncd.toml")["calendar work"]
    assert not ok
    assert str(tmp_path / "cal") in detail


def test_a_state_store_readable_by_others_fails_with_the_fix(tmp_path: Path) -> None:
    """A store left 0644 fails, and the detail says how to fix it."""
    harness = Harness(tmp_path, CONFIG)
    harness.cycle()
    harness.close()
    (tmp_path / "var" / "state.db").chmod(0o644)
    ok, detail = by_name(tmp_path / "syncd.toml")["state store"]
    assert not ok
    assert "chmod 600" in detail


def test_without_a_notes_calendar_doctor_says_so(tmp_path: Path) -> None:
    """No notes calendar is allowed, but doctor explains what is then missing."""
    (tmp_path / "cal").mkdir()
    (tmp_path / "syncd.toml").write_text(CONFIG)
    ok, detail = by_name(tmp_path / "syncd.toml")["notes calendar"]
    assert ok
    assert "no notes are written" in detail
