"""Start-up and shut-down order in one place: config -> store -> audit -> connectors -> engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from syncd.audit import AuditLog
from syncd.config import Config
from syncd.connector import Connector, connector_class
from syncd.engine import Engine
from syncd.store import SQLiteStore

__all__ = ["cycled_calendars", "open_engine", "watched_calendars"]


def watched_calendars(config: Config) -> list[str]:
    """Calendars whose changes syncd reports: every calendar except the notes calendar."""
    return [c.name for c in config.calendars if c.name != config.notes_calendar]


def cycled_calendars(config: Config) -> list[str]:
    """Every calendar a cycle visits: the watched ones, then the notes calendar (read for the
    owner's markers on notes, never for changes)."""
    notes = [config.notes_calendar] if config.notes_calendar else []
    return watched_calendars(config) + notes


def build_connectors(config: Config) -> dict[str, Connector]:
    """One connector per configured calendar (config was validated, so this cannot fail)."""
    return {c.name: connector_class(c.connector, c).from_config(c) for c in config.calendars}


@contextmanager
def open_engine(config: Config, clock: Callable[[], datetime]) -> Iterator[Engine]:
    """Open the store, the audit log and the connectors; recover; close all on exit."""
    store = SQLiteStore(config.state_path)
    connectors: dict[str, Connector] = {}
    try:
        connectors = build_connectors(config)
        engine = Engine(config, store, AuditLog(config.audit_path), connectors, clock)
        engine.recover()
        yield engine
    finally:
        for connector in connectors.values():
            connector.close()
        store.close()
