"""Tests for the ``syncd`` command line, run as the real console script in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

NOW = "2026-11-27T09:00:00Z"
AUDIT_TS = "2026-11-27T09:00:00.000000Z"

GOOD_CONFIG = """\
[state]
path = "var/state.db"
[audit]
path = "var/audit.jsonl"
[owner]
emails = ["me@example.com"]
timezone = "Europe/Berlin"
[[calendars]]
name = "work"
connector = "local"
path = "calendars/work"
"""


def _command() -> list[str]:
    script = Path(sys.executable).with_name("syncd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "syncd.cli"]


def event(uid: str, summary: str, day: str) -> str:
    """One iCalendar object with one one-hour event at 10:00 UTC on ``day`` (YYYYMMDD)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//syncd tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"SUMMARY:{summary}",
        f"DTSTART:{day}T100000Z",
        f"DTEND:{day}T110000Z",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(f"{line}\r\n" for line in lines)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment whose home, XDG folders and default config all lie inside tmp_path."""
    values = {k: v for k, v in os.environ.items() if k not in ("SYNCD_CONFIG", "STATE_DIRECTORY")}
    for name, sub in [
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "xdg/config"),
        ("XDG_STATE_HOME", "xdg/state"),
        ("XDG_DATA_HOME", "xdg/data"),
        ("XDG_CACHE_HOME", "xdg/cache"),
    ]:
        values[name] = str(tmp_path / sub)
    return values


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A local calendar folder holding two appointments."""
    path = tmp_path / "calendars" / "work"
    path.mkdir(parents=True)
    (path / "alice.ics").write_text(event("alice@t", "Session: Alice", "20261201"), newline="")
    (path / "bob.ics").write_text(event("bob@t", "Session: Bob", "20261202"), newline="")
    return path


@pytest.fixture
def config(tmp_path: Path, folder: Path) -> Path:
    """A good configuration watching ``folder``, with state and audit under tmp_path/var."""
    path = tmp_path / "syncd.toml"
    path.write_text(GOOD_CONFIG, encoding="utf-8")
    return path


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    """Where the ``config`` fixture puts the audit log."""
    return tmp_path / "var" / "audit.jsonl"


def syncd(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the syncd console script with ``args`` and capture its output."""
    return subprocess.run(
        [*_command(), *map(str, args)],
        env=env,
        cwd=Path(env["HOME"]).parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def once(env: dict[str, str], config: Path) -> subprocess.CompletedProcess[str]:
    """Run ``syncd once`` on ``config`` with the clock fixed at NOW."""
    return syncd(env, "once", "--config", config, "--now", NOW)


def audit_records(path: Path) -> list[dict[str, object]]:
    """The records of the audit log at ``path``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- the command surface --------------------------------------------------------------------


def test_help_lists_every_subcommand(env: dict[str, str]) -> None:
    """--help lists run, once, status, check-config and audit."""
    result = syncd(env, "--help")
    listed = set(re.findall(r"^\s{4}(\S+)", result.stdout, re.MULTILINE))
    assert (result.returncode, {"run", "once", "status", "check-config", "audit"} <= listed) == (
        0,
        True,
    ), result.stdout


def test_unknown_subcommand_exits_2(env: dict[str, str]) -> None:
    """An unknown subcommand is a usage error: exit 2, no traceback."""
    result = syncd(env, "frobnicate")
    assert (result.returncode, "invalid choice" in result.stderr, "Traceback" in result.stderr) == (
        2,
        True,
        False,
    )


# --- check-config ---------------------------------------------------------------------------


def test_check_config_accepts_a_good_config(env: dict[str, str], config: Path) -> None:
    """check-config exits 0 and says OK on a valid configuration."""
    result = syncd(env, "check-config", "--config", config)
    assert (result.returncode, f"{config}: OK (1 calendars)" in result.stdout) == (0, True)


def test_check_config_reports_every_problem_with_file_and_key(
    env: dict[str, str], tmp_path: Path
) -> None:
    """check-config exits 2 and prints each problem as 'file: key: ...', without a traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[daemon]\npol_interval = "5m"\nhorizon_past = "-3d"\n'
        '[owner]\ntimezone = "Mars/Base"\n'
        '[[calendars]]\nname = "work"\nconnector = "locl"\npath = "x"\n'
    )
    result = syncd(env, "check-config", "--config", bad)
    keys = [
        "daemon.pol_interval",
        "daemon.horizon_past",
        "owner.timezone",
        "calendars[0].connector",
    ]
    assert (
        result.returncode,
        [f"{bad}: {key}:" in result.stderr for key in keys],
        "Traceback" in result.stderr,
    ) == (2, [True] * 4, False), result.stderr


def test_missing_config_file_exits_2_with_a_clear_message(
    env: dict[str, str], tmp_path: Path
) -> None:
    """check-config on a missing file exits 2 and says which file was not found."""
    missing = tmp_path / "nowhere.toml"
    result = syncd(env, "check-config", "--config", missing)
    assert (
        result.returncode,
        f"{missing}: file not found" in result.stderr,
        "Traceback" in result.stderr,
    ) == (2, True, False)


def test_once_with_explicit_missing_config_does_not_create_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An explicit --config that does not exist is an error (exit 2), not a default to write."""
    missing = tmp_path / "nowhere.toml"
    result = syncd(env, "once", "--config", missing)
    assert (result.returncode, missing.exists()) == (2, False)


# --- once -----------------------------------------------------------------------------------


def test_once_first_prints_a_baseline(env: dict[str, str], config: Path) -> None:
    """The first cycle prints a baseline of the instances found and exits 0."""
    result = once(env, config)
    assert (result.returncode, result.stdout) == (0, "work: baseline of 2 instances\n")


def test_once_reports_a_deleted_file_as_cancelled(
    env: dict[str, str], config: Path, folder: Path
) -> None:
    """After a baseline, deleting an appointment's file prints a 'cancelled' line."""
    once(env, config)
    (folder / "bob.ics").unlink()
    result = once(env, config)
    lines = result.stdout.splitlines()
    assert (result.returncode, lines[0], lines[1].split()[:3]) == (
        0,
        "work: 1 changes, 1 instances",
        ["cancelled", "Session:", "Bob"],
    ), result.stdout


def test_now_fixes_the_clock_of_audit_records(
    env: dict[str, str], config: Path, audit_path: Path
) -> None:
    """With --now, every audit record's ts is that time."""
    once(env, config)
    assert {r["ts"] for r in audit_records(audit_path)} == {AUDIT_TS}


@pytest.mark.parametrize("value", ["garbage", "2026-11-27T09:00:00"])
def test_now_that_is_not_an_aware_iso_time_exits_2(
    env: dict[str, str], config: Path, value: str
) -> None:
    """--now with garbage or a time without zone is a usage error: exit 2, no traceback."""
    result = syncd(env, "once", "--config", config, "--now", value)
    assert (result.returncode, "--now" in result.stderr, "Traceback" in result.stderr) == (
        2,
        True,
        False,
    )


def test_once_reports_a_malformed_file_and_counts_the_good_ones(
    env: dict[str, str], config: Path, folder: Path
) -> None:
    """A malformed .ics is skipped by name; the good ones still make the baseline; exit 0."""
    (folder / "broken.ics").write_text("BEGIN:VCALENDAR\r\nthis is not ical\r\n")
    result = once(env, config)
    lines = result.stdout.splitlines()
    assert (result.returncode, lines[0], lines[1].startswith("  skipped broken.ics:")) == (
        0,
        "work: baseline of 2 instances",
        True,
    ), result.stdout


def test_malformed_file_is_recorded_in_the_audit_log(
    env: dict[str, str], config: Path, folder: Path, audit_path: Path
) -> None:
    """A malformed .ics gives an item_error audit record naming its href."""
    (folder / "broken.ics").write_text("not ical at all\n")
    once(env, config)
    errors = [r for r in audit_records(audit_path) if r["type"] == "item_error"]
    assert [(r["calendar"], r["href"]) for r in errors] == [("work", "broken.ics")]


def test_unwritable_state_folder_fails_cleanly(
    env: dict[str, str], tmp_path: Path, folder: Path
) -> None:
    """A state path whose folder cannot be made exits 1 with a message, not a traceback."""
    (tmp_path / "blocker").write_text("a file where a folder should be")
    config = tmp_path / "blocked.toml"
    config.write_text(GOOD_CONFIG.replace('"var/state.db"', '"blocker/state.db"'))
    result = once(env, config)
    assert (result.returncode, "blocker" in result.stderr, "Traceback" in result.stderr) == (
        1,
        True,
        False,
    ), result.stderr


# --- the embedded default -------------------------------------------------------------------


def test_once_creates_the_embedded_default_where_syncd_config_points(
    env: dict[str, str], tmp_path: Path
) -> None:
    """With SYNCD_CONFIG naming a missing file, once writes the default config there."""
    target = tmp_path / "conf" / "syncd.toml"
    env["SYNCD_CONFIG"] = str(target)
    result = syncd(env, "once", "--now", NOW)
    assert (result.returncode, target.is_file()) == (0, True), result.stderr


def test_embedded_default_seeds_a_calendar_under_xdg_state_home(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The default's calendar is seeded with .ics files under $XDG_STATE_HOME/syncd."""
    env["SYNCD_CONFIG"] = str(tmp_path / "conf" / "syncd.toml")
    syncd(env, "once", "--now", NOW)
    seeded = Path(env["XDG_STATE_HOME"]) / "syncd" / "calendars" / "work"
    assert len(list(seeded.glob("*.ics"))) > 0


def test_embedded_default_prints_a_baseline_with_instances(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The first once on the default prints a baseline of more than zero instances."""
    env["SYNCD_CONFIG"] = str(tmp_path / "conf" / "syncd.toml")
    result = syncd(env, "once", "--now", NOW)
    match = re.search(r"^work: baseline of (\d+) instances$", result.stdout, re.MULTILINE)
    assert match is not None, result.stdout
    assert int(match[1]) > 0


def test_without_syncd_config_the_default_goes_under_xdg_config_home(
    env: dict[str, str],
) -> None:
    """Without --config and SYNCD_CONFIG, the default is $XDG_CONFIG_HOME/syncd/syncd.toml."""
    syncd(env, "once", "--now", NOW)
    assert (Path(env["XDG_CONFIG_HOME"]) / "syncd" / "syncd.toml").is_file()


# --- status ---------------------------------------------------------------------------------


def test_status_shows_calendar_and_instance_count(env: dict[str, str], config: Path) -> None:
    """After a cycle, status names the calendar and its instance count."""
    once(env, config)
    result = syncd(env, "status", "--config", config)
    assert (result.returncode, result.stdout.splitlines()[0]) == (
        0,
        f"work (local): last cycle {NOW.replace('Z', '+00:00')}, "
        f"last success {NOW.replace('Z', '+00:00')}, 2 instances, last error: none",
    )


def test_status_json_has_calendar_and_instances(env: dict[str, str], config: Path) -> None:
    """status --json prints JSON with each calendar's name and instance count."""
    once(env, config)
    rows = json.loads(syncd(env, "status", "--config", config, "--json").stdout)
    assert [(r["calendar"], r["instances"], r["items_in_error"]) for r in rows] == [("work", 2, [])]


def test_status_json_lists_items_in_error(env: dict[str, str], config: Path, folder: Path) -> None:
    """status --json lists the files that could not be read."""
    (folder / "broken.ics").write_text("nope\n")
    once(env, config)
    rows = json.loads(syncd(env, "status", "--config", config, "--json").stdout)
    assert rows[0]["items_in_error"] == ["broken.ics"]


def test_status_before_any_cycle_creates_no_state(
    env: dict[str, str], config: Path, tmp_path: Path
) -> None:
    """status before the first cycle reports 'never' and leaves no state store behind."""
    result = syncd(env, "status", "--config", config)
    assert (
        result.returncode,
        "last cycle never" in result.stdout,
        (tmp_path / "var").exists(),
    ) == (0, True, False)


# --- audit verify ---------------------------------------------------------------------------


def test_audit_verify_passes_an_intact_log(env: dict[str, str], config: Path, folder: Path) -> None:
    """audit verify exits 0 on a log only syncd wrote."""
    once(env, config)
    (folder / "bob.ics").unlink()
    once(env, config)
    result = syncd(env, "audit", "verify", "--config", config)
    assert (result.returncode, "intact, 2 records" in result.stdout) == (0, True), result.stdout


def test_audit_verify_names_the_first_edited_record(
    env: dict[str, str], config: Path, folder: Path, audit_path: Path
) -> None:
    """audit verify exits 1 and names seq 2 after the second line was edited."""
    once(env, config)
    (folder / "bob.ics").unlink()
    once(env, config)
    lines = audit_path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].replace('"cancelled"', '"moved"')
    audit_path.write_text("".join(lines), encoding="utf-8")
    result = syncd(env, "audit", "verify", "--config", config)
    assert (result.returncode, "first bad seq 2" in result.stdout) == (1, True), result.stdout


def test_audit_verify_catches_a_truncated_log_through_the_stored_anchor(
    env: dict[str, str], config: Path, folder: Path, audit_path: Path
) -> None:
    """Cutting the last record off leaves a valid chain; only the store's anchor shows it."""
    once(env, config)
    (folder / "bob.ics").unlink()
    once(env, config)
    lines = audit_path.read_text(encoding="utf-8").splitlines(keepends=True)
    audit_path.write_text("".join(lines[:-1]), encoding="utf-8")
    result = syncd(env, "audit", "verify", "--config", config)
    assert result.returncode == 1, result.stdout
    assert f"first bad seq {len(lines)}" in result.stdout
