"""Configuration: one TOML file parsed once into frozen, typed objects.

Every problem is reported at once with the file and the key; unknown keys get a "did you
mean". Relative paths resolve against the folder of the configuration file. Nothing below
this module reads configuration by string key, except connectors reading their own options.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syncd.config_reader import Reader, parse_duration, positive_duration
from syncd.config_rules import parse_rules
from syncd.connector import connector_class
from syncd.errors import ConfigError, ConfigProblem
from syncd.rules import (
    OwnerPolicy,
)

__all__ = [
    "WEEKDAYS",
    "CalendarConfig",
    "Config",
    "DaemonConfig",
    "OwnerConfig",
    "default_config_path",
    "load_config",
    "parse_duration",
    "tokens_folder",
]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """``[daemon]``: how often to poll and how far around now to expand series."""

    poll_interval: timedelta = timedelta(minutes=5)
    horizon_past: timedelta = timedelta(days=30)
    horizon_future: timedelta = timedelta(days=180)


@dataclass(frozen=True, slots=True)
class OwnerConfig:
    """``[owner]``: who owns the calendars, their zone and working hours."""

    emails: tuple[str, ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    working_hours: Mapping[str, tuple[time, time]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    """One ``[[calendars]]`` table: the common keys, plus the connector's own ``options``."""

    name: str
    connector: str
    options: Mapping[str, Any]
    source: Path
    index: int
    poll_interval: timedelta | None = None
    tokens_dir: Path | None = None
    """syncd's token store (0700), beside the state file: where ``syncd auth`` writes tokens
    and where a connector looks for them when its options name no file."""
    is_notes: bool = False
    """This is the notes calendar (``[notes] calendar``): the one connectors may create when
    it is missing; a watched calendar that cannot be found is an error, never made empty."""

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in this table resolve against."""
        return self.source.parent

    def problem(self, key: str, message: str) -> ConfigProblem:
        """A problem located at ``calendars[index].key`` of the configuration file."""
        return ConfigProblem(self.source, f"calendars[{self.index}].{key}", message)

    def resolve(self, value: str) -> Path:
        """Resolve a path option against the configuration folder, expanding ``~``."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    path: Path
    state_path: Path
    audit_path: Path
    daemon: DaemonConfig
    owner: OwnerConfig
    calendars: tuple[CalendarConfig, ...]
    notes_calendar: str | None = None
    rules: OwnerPolicy = field(default_factory=OwnerPolicy)

    def calendar(self, name: str) -> CalendarConfig:
        """The calendar called ``name``; KeyError if there is none."""
        for calendar in self.calendars:
            if calendar.name == name:
                return calendar
        raise KeyError(name)


def default_config_path() -> Path:
    """``$SYNCD_CONFIG``, else ``$CONFIGURATION_DIRECTORY/syncd.toml`` under systemd, else
    ``$XDG_CONFIG_HOME/syncd/syncd.toml`` (``~/.config`` by default)."""
    explicit = os.environ.get("SYNCD_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    systemd = _systemd_dir("CONFIGURATION_DIRECTORY")
    if systemd is not None:
        return systemd / "syncd.toml"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "syncd" / "syncd.toml"


def _systemd_dir(variable: str) -> Path | None:
    """The first folder systemd passes in ``variable`` (it may list several, ':'-separated)."""
    value = os.environ.get(variable)
    return Path(value.split(":")[0]) if value else None


def _state_default(name: str) -> str:
    """Under systemd the state lives in ``$STATE_DIRECTORY`` (the configuration folder is
    read-only there); elsewhere in ``var/`` beside the configuration file."""
    systemd = _systemd_dir("STATE_DIRECTORY")
    return str(systemd / name) if systemd is not None else f"var/{name}"


def load_config(path: Path) -> Config:
    """Read and validate the configuration file; raise ``ConfigError`` listing every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(path, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem(path, "", f"cannot read: {error}")]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([ConfigProblem(path, "", f"invalid TOML: {error}")]) from None
    return _build(data, Reader(path.resolve()))


_TOP_LEVEL = (
    "state",
    "audit",
    "daemon",
    "owner",
    "calendars",
    "notes",
    "policy",
    "pricing",
    "clients",
    "rebooking",
)


def _build(data: Mapping[str, Any], reader: Reader) -> Config:
    reader.known(data, _TOP_LEVEL, "")
    state = reader.table(data, "state")
    reader.known(state, ("path",), "state.")
    audit = reader.table(data, "audit")
    reader.known(audit, ("path",), "audit.")
    daemon = _daemon(reader.table(data, "daemon"), reader)
    owner = _owner(reader.table(data, "owner"), reader)
    state_path = reader.path(state, "path", "state.path", _state_default("state.db"))
    listed = tuple(_calendars(data.get("calendars", []), reader))
    notes = _notes(reader.table(data, "notes"), listed, reader)
    tokens = tokens_folder(state_path)
    calendars = tuple(replace(c, tokens_dir=tokens, is_notes=c.name == notes) for c in listed)
    rules = parse_rules(data, owner.emails, reader)
    config = Config(
        path=reader.source,
        state_path=state_path,
        audit_path=reader.path(audit, "path", "audit.path", _state_default("audit.jsonl")),
        daemon=daemon,
        owner=owner,
        calendars=calendars,
        notes_calendar=notes,
        rules=rules,
    )
    _check_connectors(config, reader)
    if reader.problems:
        raise ConfigError(reader.problems)
    return config


def tokens_folder(state_path: Path) -> Path:
    """The token store's folder for a state file: ``tokens/`` beside it."""
    return state_path.parent / "tokens"


def _daemon(table: Mapping[str, Any], reader: Reader) -> DaemonConfig:
    keys = ("poll_interval", "horizon_past", "horizon_future")
    reader.known(table, keys, "daemon.")
    default = DaemonConfig()
    values = {
        key: reader.converted(table, key, f"daemon.{key}", positive_duration, getattr(default, key))
        for key in keys
    }
    return DaemonConfig(**values)


def _owner(table: Mapping[str, Any], reader: Reader) -> OwnerConfig:
    reader.known(table, ("emails", "timezone", "working_hours"), "owner.")
    emails = reader.typed(table, "emails", "owner.emails", list, [])
    if not all(isinstance(e, str) and "@" in e for e in emails):
        reader.problem("owner.emails", "must be a list of email addresses")
        emails = []
    zone = reader.converted(table, "timezone", "owner.timezone", _zone, ZoneInfo("UTC"))
    hours = reader.typed(table, "working_hours", "owner.working_hours", dict, {})
    return OwnerConfig(
        emails=tuple(e.strip().lower() for e in emails),
        timezone=zone,
        working_hours=dict(_working_hours(hours, reader)),
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder such as "Europe"
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')"
        ) from None


def _working_hours(
    table: Mapping[str, Any], reader: Reader
) -> Iterator[tuple[str, tuple[time, time]]]:
    reader.known(table, WEEKDAYS, "owner.working_hours.")
    for day in WEEKDAYS:
        if day in table:
            span = reader.converted(table, day, f"owner.working_hours.{day}", _hours, None)
            if span is not None:
                yield day, span


def _hours(text: str) -> tuple[time, time]:
    match = _HOURS.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a span of hours such as '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r} has an hour or minute out of range")
    start, end = time(h1, m1), time(23, 59, 59) if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


_CALENDAR_KEYS = ("name", "connector", "poll_interval")


def _calendars(raw: Any, reader: Reader) -> Iterator[CalendarConfig]:
    if not isinstance(raw, list):
        reader.problem("calendars", "must be an array of tables ([[calendars]])")
        return
    seen: set[str] = set()
    for index, table in enumerate(raw):
        where = f"calendars[{index}]"
        if not isinstance(table, Mapping):
            reader.problem(where, "must be a table")
            continue
        name = reader.typed(table, "name", f"{where}.name", str, "")
        connector = reader.typed(table, "connector", f"{where}.connector", str, "")
        if not name:
            reader.problem(f"{where}.name", "is required")
        elif name in seen:
            reader.problem(f"{where}.name", f"calendar {name!r} is configured twice")
        seen.add(name)
        if not connector:
            reader.problem(f"{where}.connector", "is required")
        interval = reader.converted(
            table, "poll_interval", f"{where}.poll_interval", positive_duration, None
        )
        options = {k: v for k, v in table.items() if k not in _CALENDAR_KEYS}
        yield CalendarConfig(
            name=name,
            connector=connector,
            options=options,
            source=reader.source,
            index=index,
            poll_interval=interval,
        )


def _notes(
    table: Mapping[str, Any], calendars: tuple[CalendarConfig, ...], reader: Reader
) -> str | None:
    reader.known(table, ("calendar",), "notes.")
    name = table.get("calendar")
    if name is None:
        return None
    if not isinstance(name, str) or name not in {c.name for c in calendars}:
        reader.problem("notes.calendar", f"{name!r} is not the name of a configured calendar")
        return None
    return name


def _check_connectors(config: Config, reader: Reader) -> None:
    """Let each calendar's connector validate its own options (no I/O)."""
    for calendar in config.calendars:
        if not calendar.connector:
            continue
        try:
            connector_class(calendar.connector, calendar).from_config(calendar)
        except ConfigError as error:
            reader.problems.extend(error.problems)
