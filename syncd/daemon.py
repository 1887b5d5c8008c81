"""The daemon: a scheduler and a bounded worker pool running cycles, reloading its
configuration on SIGHUP or when the file changes, stopping cleanly on SIGTERM and SIGINT.

Each calendar polls on its own interval with jitter (so calendars do not poll in step), backs
off after failures, reacts at once to pushed changes (local folders), and runs early when one
of its timers (an attendance check, a deposit deadline, a hold) falls due. A slow or failing
calendar never delays another: cycles run on a pool of workers, one at a time per calendar.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from syncd.app import cycled_calendars, open_engine
from syncd.config import Config, load_config
from syncd.connector import Watch
from syncd.engine import CycleReport, Engine
from syncd.errors import ConfigError, ConnectorError, SyncdError
from syncd.sdnotify import Notifier
from syncd.signals import SignalRelay

__all__ = ["BACKOFF_CAP", "JITTER", "CalendarOutcome", "Daemon", "Schedule", "run_cycles"]

JITTER = 0.2
"""Poll intervals vary by this share either way, so calendars drift apart."""
BACKOFF_CAP = timedelta(hours=1)
"""The longest wait after failures (unless the poll interval itself is longer)."""

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


class Schedule:
    """When each calendar runs next (monotonic seconds): jittered polls, backoff, pokes."""

    def __init__(self, intervals: dict[str, timedelta], rng: random.Random | None = None) -> None:
        self.intervals = intervals
        self.failures = dict.fromkeys(intervals, 0)
        self.due = dict.fromkeys(intervals, 0.0)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        # Calendars poked since their running cycle began: that cycle may have read the
        # calendar before the change, so another runs as soon as it ends.
        self._poked_while_running: set[str] = set()
        self._running: set[str] = set()

    def carry_over(self, previous: Schedule) -> None:
        """Keep, across a reload, the backoff and next run of calendars that stay."""
        for name in self.intervals.keys() & previous.intervals.keys():
            self.failures[name] = previous.failures[name]
            if previous.failures[name]:
                self.due[name] = previous.due[name]

    def jittered(self, seconds: float) -> float:
        """``seconds`` varied by up to ``JITTER`` either way."""
        return seconds * self._rng.uniform(1 - JITTER, 1 + JITTER)

    def begin(self, name: str) -> None:
        """A cycle of ``name`` starts now: it sees every change pushed so far."""
        self._running.add(name)
        self._poked_while_running.discard(name)

    def done(self, name: str, ok: bool, now: float, timer_in: float | None = None) -> float:
        """Schedule the next cycle after one finished; returns the delay chosen (zero when a
        change was pushed while it ran, so that change is not left to the next poll)."""
        self._running.discard(name)
        interval = self.intervals[name].total_seconds()
        self.failures[name] = 0 if ok else self.failures[name] + 1
        if self.failures[name]:
            cap = max(BACKOFF_CAP.total_seconds(), interval)
            doublings = min(self.failures[name] - 1, 30)  # 2**30 intervals is past any cap
            delay = self.jittered(min(interval * 2**doublings, cap))
        else:
            delay = self.jittered(interval)
            if timer_in is not None:
                delay = min(delay, max(0.0, timer_in))
            if name in self._poked_while_running:
                delay = 0.0
        self._poked_while_running.discard(name)
        self.due[name] = now + delay
        return delay

    def poke(self, name: str, now: float) -> None:
        """Run ``name`` as soon as possible (a pushed change), unless it is backing off."""
        if not self.failures.get(name):
            self.due[name] = min(self.due.get(name, now), now)
            if name in self._running:
                self._poked_while_running.add(name)

    def ready(self, now: float) -> list[str]:
        """Calendars due at ``now``."""
        return [name for name, at in self.due.items() if at <= now]

    def wait(self, now: float, busy: Iterable[str]) -> float:
        """Seconds until the next calendar not already running is due."""
        running = set(busy)
        waiting = [at for name, at in self.due.items() if name not in running]
        return max(0.0, min(waiting, default=now + 60.0) - now)


class Daemon:
    """Runs cycles for every calendar until :meth:`stop`; reloads on :meth:`reload`."""

    def __init__(
        self,
        config: Config,
        clock: Callable[[], datetime],
        *,
        workers: int = 4,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.workers = workers
        self.notifier = notifier
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._reload = threading.Event()
        self._lock = threading.Lock()
        self._pushed: set[str] = set()
        self._engine: Engine | None = None
        self._schedule: Schedule | None = None
        self._unwatchable: set[str] = set()
        self._warned: set[str] = set()
        self._finished: list[tuple[str, bool]] = []

    # --- control, from signal handlers and other threads ----------------------------------

    def stop(self) -> None:
        """Finish the cycles in flight and return from :meth:`run`; connectors cut short
        their retry waits so the stop fits systemd's stop timeout."""
        self._stopping.set()
        self._wake.set()
        engine = self._engine
        if engine is not None:
            for connector in list(engine.connectors.values()):
                connector.interrupt()

    def reload(self) -> None:
        """Read the configuration file again; a valid one replaces the running one."""
        self._reload.set()
        self._wake.set()

    def install_signal_handlers(self) -> SignalRelay:
        """SIGTERM and SIGINT stop after the cycles in flight; SIGHUP reloads. The reactions
        run on a relay thread, never inside a handler (see :mod:`syncd.signals`)."""

        def stop(signum: int) -> None:
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
            self.stop()

        def reload(_signum: int) -> None:
            log.info("daemon.reload_requested", signal="SIGHUP")
            self.reload()

        return SignalRelay({signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: reload})

    def pushed(self, name: str) -> Callable[[], None]:
        """A callback for a connector's watch: run ``name`` at once."""

        def changed() -> None:
            with self._lock:
                self._pushed.add(name)
            self._wake.set()

        return changed

    # --- the loops -------------------------------------------------------------------------

    def run(self) -> None:
        """Serve the configuration until stopped, opening it anew after each reload."""
        config_watch = _FileWatch(self.config.path, self.reload)
        try:
            while True:
                with open_engine(self.config, self.clock) as engine:
                    self._engine = engine
                    self._notify("ready")
                    self._serve(engine)
                    self._engine = None
                if self._stopping.is_set():
                    break
                self._notify("status", "reloaded the configuration")
        finally:
            config_watch.stop()
            self._notify("stopping")
        log.info("daemon.stopped")

    def _serve(self, engine: Engine) -> None:
        """Run cycles until a stop or a valid reload; in-flight cycles always finish."""
        calendars = cycled_calendars(self.config)
        intervals = {
            c.name: c.poll_interval or self.config.daemon.poll_interval
            for c in self.config.calendars
        }
        schedule = Schedule({name: intervals[name] for name in calendars})
        if self._schedule is not None:
            schedule.carry_over(self._schedule)
        self._schedule = schedule
        watches: dict[str, Watch] = {}
        running: dict[str, Future[Any]] = {}
        with self._lock:
            self._finished = []  # results of cycles from before a reload belong to that config
        with ThreadPoolExecutor(self.workers, thread_name_prefix="syncd-cycle") as pool:
            try:
                while not self._stopping.is_set():
                    self._wake.clear()
                    now = time.monotonic()
                    finished = self._settle(engine, schedule, watches, now)
                    for name in schedule.ready(now):
                        if name not in running:
                            schedule.begin(name)
                            running[name] = pool.submit(self._cycle, engine, name)
                    running = {n: f for n, f in running.items() if not f.done()}
                    if finished or self._unblocked(schedule, running, now):
                        self._notify("watchdog")
                    if self._reload.is_set() and self._reloaded():
                        break
                    self._wake.wait(min(schedule.wait(now, running), self._heartbeat()))
            finally:
                # Queued cycles are dropped; the ones running finish and commit.
                pool.shutdown(wait=True, cancel_futures=True)
                for watch in watches.values():
                    watch.stop()

    def _unblocked(
        self, schedule: Schedule, running: Mapping[str, Future[Any]], now: float
    ) -> bool:
        """No calendar has waited long for a free worker. The watchdog is fed only after real
        progress (a finished cycle) or while nothing is stuck, so a daemon whose workers all
        hang is restarted."""
        late = now - 2 * self._heartbeat()
        return not any(
            at < late and (name not in running or not running[name].running())
            for name, at in schedule.due.items()
        )

    def _cycle(self, engine: Engine, name: str) -> None:
        ok = False
        try:
            ok = _run_one(engine, name).error is None
        except Exception:
            log.exception("cycle.crashed", calendar=name)
        finally:
            with self._lock:
                self._finished.append((name, ok))
            self._wake.set()

    def _settle(
        self, engine: Engine, schedule: Schedule, watches: dict[str, Watch], now: float
    ) -> int:
        """Reschedule the calendars that finished or were pushed since the last turn; returns
        how many cycles finished."""
        with self._lock:
            finished, self._finished = self._finished, []
            pushed, self._pushed = self._pushed, set()
        for name, ok in finished:
            if name not in schedule.intervals:
                continue  # removed by a reload while its cycle ran
            delay = schedule.done(name, ok, now, self._timer_in(engine, name))
            if ok:
                if self._ensure_watch(engine, name, watches):
                    schedule.poke(name, now)  # catch what changed before the watch began
                continue
            until = engine.clock() + timedelta(seconds=delay)
            engine.store.set_backoff(name, until)
            log.warning(
                "calendar.backoff",
                calendar=name,
                failures=schedule.failures[name],
                until=until.isoformat(),
            )
        for name in pushed:
            schedule.poke(name, now)
        if finished:
            self._notify("status", _summary(engine, schedule))
        return len(finished)

    @staticmethod
    def _timer_in(engine: Engine, name: str) -> float | None:
        due = engine.store.next_due(name)
        return None if due is None else (due - engine.clock()).total_seconds()

    def _ensure_watch(self, engine: Engine, name: str, watches: dict[str, Watch]) -> bool:
        """Start a calendar's push watch once it can be (after its first good cycle); True
        when one was started now."""
        if name in watches or name in self._unwatchable:
            return False
        try:
            watch = engine.connectors[name].watch(self.pushed(name))
        except ConnectorError as error:
            if name not in self._warned:  # tried again after each cycle; said once
                self._warned.add(name)
                log.warning("watch.unavailable", calendar=name, error=str(error))
            return False
        except Exception:
            log.exception("watch.failed", calendar=name)
            self._unwatchable.add(name)
            return False
        if watch is None:
            return False
        watches[name] = watch
        return True

    def _reloaded(self) -> bool:
        """Validate the file; a valid configuration ends this serve loop to be reopened."""
        self._reload.clear()
        self._notify("reloading")
        try:
            config = load_config(self.config.path)
        except ConfigError as error:
            for problem in error.problems:
                log.error("config.invalid", problem=str(problem))
            log.error("config.kept", reason="the new configuration is invalid")
            self._notify("status", "configuration invalid; running the previous one")
            self._notify("ready")  # the reload is over: systemd 253+ waits for READY=1
            return False
        self.config = config
        log.info("config.reloaded", calendars=[c.name for c in config.calendars])
        return True

    def _heartbeat(self) -> float:
        interval = self.notifier.watchdog_interval() if self.notifier else None
        return 60.0 if not interval else max(1.0, interval / 2)

    def _notify(self, what: str, *args: str) -> None:
        if self.notifier is not None:
            getattr(self.notifier, what)(*args)


def _summary(engine: Engine, schedule: Schedule) -> str:
    states = engine.store.calendar_states()
    failing = [s.name for s in states if s.last_error]
    text = f"{len(schedule.intervals)} calendars"
    return text + (f", failing: {', '.join(failing)}" if failing else ", all well")


class _FileWatch:
    """Calls back when the configuration file is written, replaced or moved into place, once
    the writes have settled (an editor writing in place passes through empty or half-written
    states that must not be loaded)."""

    SETTLE = 0.5

    def __init__(self, path: Path, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._observer: Any = Observer()
        self._observer.schedule(_ConfigHandler(path, self._changed), str(path.parent))
        self._observer.daemon = True
        self._observer.start()

    def _changed(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.SETTLE, self._on_change)
            self._timer.daemon = True
            self._timer.start()

    def stop(self) -> None:
        """Stop watching; a pending callback is dropped."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
        self._observer.stop()
        self._observer.join(timeout=5)


class _ConfigHandler(FileSystemEventHandler):
    def __init__(self, path: Path, on_change: Callable[[], None]) -> None:
        self._name = path.name
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "modified", "moved"):
            return
        paths = (event.src_path, getattr(event, "dest_path", "") or "")
        if any(Path(str(p)).name == self._name for p in paths if p):
            self._on_change()
