"""The daemon loop: poll each calendar on its interval, react at once to pushed changes.

A failing calendar is logged and recorded in its status; the others keep their schedule.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

import structlog

from syncd.connector import Watch
from syncd.engine import CycleReport, Engine
from syncd.errors import ConnectorError, SyncdError

__all__ = ["CalendarOutcome", "Daemon", "run_cycles"]

log = structlog.get_logger("syncd.daemon")


@dataclass(frozen=True, slots=True)
class CalendarOutcome:
    """The result of one cycle: a report, or the error that stopped it."""

    calendar: str
    report: CycleReport | None
    error: str | None


def run_cycles(engine: Engine, calendars: Iterable[str]) -> list[CalendarOutcome]:
    """Run one cycle per calendar; a failure is recorded and does not stop the others."""
    return [_run_one(engine, name) for name in calendars]


def _run_one(engine: Engine, name: str) -> CalendarOutcome:
    try:
        report = engine.cycle(name)
    except ConnectorError as error:
        return _failed(engine, name, str(error))
    except SyncdError as error:
        _failed(engine, name, str(error))
        raise
    log.info(
        "cycle",
        calendar=name,
        baseline=report.baseline,
        changes=len(report.changes),
        read=report.read,
        removed=report.removed,
        errors=len(report.new_errors),
        instances=report.instance_count,
    )
    return CalendarOutcome(name, report, None)


def _failed(engine: Engine, name: str, message: str) -> CalendarOutcome:
    log.error("cycle.failed", calendar=name, error=message)
    engine.store.record_failure(name, engine.clock(), message)
    return CalendarOutcome(name, None, message)


class Daemon:
    """Schedules cycles for the watched calendars until :meth:`stop` is called."""

    def __init__(
        self, engine: Engine, calendars: list[str], intervals: dict[str, timedelta]
    ) -> None:
        self.engine = engine
        self.calendars = calendars
        self.intervals = intervals
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._unwatchable: set[str] = set()

    def stop(self) -> None:
        """Ask the loop to finish the cycle in flight and return."""
        self._stopping.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop after the cycle in flight."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def mark_dirty(self, name: str) -> Callable[[], None]:
        """A callback for a connector's watch: run ``name`` at once."""

        def changed() -> None:
            with self._dirty_lock:
                self._dirty.add(name)
            self._wake.set()

        return changed

    def run(self) -> None:
        """Loop until stopped: due or dirty calendars get a cycle, then wait for the next."""
        watches: dict[str, Watch] = {}
        due = dict.fromkeys(self.calendars, 0.0)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                for name in self._take_due(due):
                    _run_one(self.engine, name)
                    due[name] = time.monotonic() + self.intervals[name].total_seconds()
                    self._ensure_watch(name, watches)
                    if self._stopping.is_set():
                        break
                timeout = max(0.0, min(due.values(), default=60.0) - time.monotonic())
                self._wake.wait(timeout)
        finally:
            for watch in watches.values():
                watch.stop()
        log.info("daemon.stopped")

    def _take_due(self, due: dict[str, float]) -> list[str]:
        now = time.monotonic()
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        return [name for name in self.calendars if name in dirty or due[name] <= now]

    def _ensure_watch(self, name: str, watches: dict[str, Watch]) -> None:
        """Start a calendar's push watch once it can be (after its first cycle)."""
        if name in watches or name in self._unwatchable:
            return
        try:
            watch = self.engine.connectors[name].watch(self.mark_dirty(name))
        except ConnectorError as error:
            log.warning("watch.unavailable", calendar=name, error=str(error))
            return
        if watch is None:
            self._unwatchable.add(name)
        else:
            watches[name] = watch
