"""``syncd doctor``: check what a running syncd depends on, one line per check.

Configuration, the permissions of the state folder, store and audit log, each calendar's
connection (through its connector's cheap ``check``), and the notes calendar.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syncd.app import build_connectors
from syncd.config import Config, load_config
from syncd.errors import ConfigError, ConnectorError

__all__ = ["Check", "diagnose"]


@dataclass(frozen=True, slots=True)
class Check:
    """One check: what was checked, whether it passed, and what to do if not."""

    name: str
    ok: bool
    detail: str


def diagnose(path: Path) -> list[Check]:
    """Run every check on the configuration at ``path``; never raises for a user mistake."""
    try:
        config = load_config(path)
    except ConfigError as error:
        return [Check("configuration", False, str(p)) for p in error.problems]
    checks = [Check("configuration", True, f"{path}: {len(config.calendars)} calendars")]
    checks.extend(_permissions(config))
    checks.extend(_connections(config))
    return checks


def _permissions(config: Config) -> Iterator[Check]:
    folder = config.state_path.parent
    yield _mode_check("state folder", folder, 0o700)
    for name, path in (("state store", config.state_path), ("audit log", config.audit_path)):
        if path.exists():
            yield _mode_check(name, path, 0o600)
        else:
            yield Check(name, True, f"{path} does not exist yet (made on the first cycle)")


def _mode_check(name: str, path: Path, most: int) -> Check:
    if not path.exists():
        return Check(name, True, f"{path} does not exist yet (made on the first cycle)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~most:
        return Check(name, False, f"{path} is {mode:o}, readable by others: chmod {most:o} {path}")
    return Check(name, True, f"{path} is {mode:o}")


def _connections(config: Config) -> Iterator[Check]:
    connectors = build_connectors(config)
    try:
        for calendar in config.calendars:
            role = "notes calendar" if calendar.name == config.notes_calendar else "calendar"
            try:
                detail = connectors[calendar.name].check()
            except ConnectorError as error:
                yield Check(f"{role} {calendar.name}", False, str(error))
            else:
                yield Check(f"{role} {calendar.name}", True, detail)
        if config.notes_calendar is None:
            yield Check(
                "notes calendar",
                True,
                "none configured: verdicts are recorded, but no notes are written "
                "(set [notes] calendar)",
            )
    finally:
        for connector in connectors.values():
            connector.close()
