"""Faults on the Calendar API emulator: each injected fault during a policy cycle ends in the
same state as a fault-free run; Retry-After is honoured; quota pauses the whole account;
retries give up cleanly and stop on interrupt."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.google import GoogleConnector
from connectors.google.account import forget_accounts
from syncd.errors import TransientError
from tests.google_emulator import GoogleCalendarEmulator
from tests.test_google_contract import api_calls, google_config, quick, write_token
from tests.test_google_policy_e2e import GoogleHarness, late_decline


@pytest.fixture(scope="module")
def emu() -> Iterator[GoogleCalendarEmulator]:
    with GoogleCalendarEmulator() as emulator:
        yield emulator
        assert emulator.internal_errors == []


@dataclass(frozen=True, slots=True)
class Sent:
    """One request as the client sent it: when, what, and when its answer came."""

    method: str
    uri: str
    sent: float
    answered: float
    status: int


class Timed:
    """An HTTP object that records when each request left and its answer arrived."""

    def __init__(self, inner: Any, log: list[Sent]) -> None:
        self.inner = inner
        self.credentials = getattr(inner, "credentials", None)
        self.log = log

    def request(self, uri: str, method: str = "GET", *args: Any, **kwargs: Any) -> Any:
        sent = time.monotonic()
        response, content = self.inner.request(uri, method, *args, **kwargs)
        self.log.append(Sent(method, uri, sent, time.monotonic(), int(response.status)))
        return response, content


def timed(connector: GoogleConnector) -> list[Sent]:
    log: list[Sent] = []
    plain = connector.session.http_factory
    connector.session.http_factory = lambda credentials: Timed(plain(credentials), log)
    return log


# --- every fault ends in the fault-free state -----------------------------------------------


def final_state(h: GoogleHarness) -> dict[str, Any]:
    """What a cycle leaves behind, without ids and times that differ between runs."""
    event = h.stored("a.ics")
    return {
        "records": [r["type"] for r in h.audit()],
        "writes": [(r["action"], r["status"]) for r in h.records_of("write")],
        "verdicts": [(v["verdict"], v["fee"]) for v in h.records_of("verdict")],
        "notes": sorted((n["summary"], n.get("description")) for n in h.notes()),
        "private": event["extendedProperties"]["private"],
        "event": {k: event[k] for k in ("summary", "description", "attendees", "start")},
    }


def run(root: Path, emu: GoogleCalendarEmulator, fault: str | None) -> dict[str, Any]:
    """The late decline on fresh calendars, with ``fault`` on the decisive cycle's first
    list, insert and patch."""
    h = GoogleHarness(root, emu)
    try:
        if fault is not None:
            real = h.cycle_all

            def faulted() -> None:
                if h.records_of("baseline"):  # the decisive cycle
                    for method in ("GET", "POST", "PATCH"):
                        emu.inject(
                            fault,
                            method=method,
                            retry_after=0.2 if fault == "429" else None,
                            delay=0.2 if fault == "slow" else 0.0,
                        )
                real()

            h.cycle_all = faulted  # type: ignore[method-assign]
        late_decline(h)
        return final_state(h)
    finally:
        h.close()
        forget_accounts()


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory, emu: GoogleCalendarEmulator) -> Any:
    return run(tmp_path_factory.mktemp("fault-free"), emu, None)


@pytest.mark.parametrize(
    "fault", ["429", "403-rate", "403-user-rate", "500", "503", "slow", "reset", "401"]
)
def test_a_fault_during_a_cycle_ends_in_the_fault_free_state(
    tmp_path: Path, emu: GoogleCalendarEmulator, fault_free: Any, fault: str
) -> None:
    emu.clear_requests()
    state = run(tmp_path, emu, fault)
    assert state == fault_free
    assert fault_free["verdicts"] == [("late_cancellation", {"amount": "60.00", "currency": "EUR"})]
    if fault != "slow":
        assert any(r.status != 200 for r in emu.requests), "the fault was never served"


# --- single connector -----------------------------------------------------------------------


@pytest.fixture
def connector(emu: GoogleCalendarEmulator, tmp_path: Path) -> Iterator[GoogleConnector]:
    write_token(emu, tmp_path / "tokens")
    calendar = emu.add_calendar("faults")
    emu.put_event(
        calendar,
        {
            "id": "event00001",
            "summary": "x",
            "start": {"dateTime": "2026-12-01T10:00:00Z"},
            "end": {"dateTime": "2026-12-01T11:00:00Z"},
        },
    )
    made = quick(GoogleConnector.from_config(google_config(tmp_path, emu, calendar_id=calendar)))
    yield made
    forget_accounts()


def test_retry_after_is_honoured(emu: GoogleCalendarEmulator, connector: GoogleConnector) -> None:
    """The retry leaves no sooner than Retry-After (0.3 s) after the 429 arrived, far later
    than the backoff alone (10 ms) would send it."""
    log = timed(connector)
    connector.get("event00001")  # the token is fetched: only API requests below
    log.clear()
    emu.inject("429", retry_after=0.3)
    connector.get("event00001")
    assert [s.status for s in log] == [429, 200]
    assert log[1].sent - log[0].answered >= 0.3


def test_a_long_retry_after_holds_the_account_until_it_ends(
    emu: GoogleCalendarEmulator,
    connector: GoogleConnector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Retry-After of 120 s is not waited for; until it ends, neither the next cycle nor
    another calendar of the account sends a request; afterwards both do."""
    sibling = GoogleConnector.from_config(
        google_config(
            tmp_path,
            emu,
            "other",
            calendar_id=connector.options.calendar_id,
            token_file=str(connector.options.token_file),
        )
    )
    emu.inject("429", retry_after=120)
    emu.clear_requests()
    with pytest.raises(TransientError, match="asks to wait 120s"):
        connector.get("event00001")
    assert len(api_calls(emu)) == 1
    emu.clear_requests()
    for calendar in (connector, sibling):
        with pytest.raises(TransientError, match=r"asked to wait 120s.*not sent"):
            calendar.get("event00001")
    assert api_calls(emu) == []
    later = time.monotonic() + 121
    monkeypatch.setattr("connectors.google.account.time.monotonic", lambda: later)
    assert sibling.get("event00001").href == "event00001"


def test_server_errors_give_up_after_the_attempts(
    emu: GoogleCalendarEmulator, connector: GoogleConnector
) -> None:
    emu.inject("500", times=5)
    emu.clear_requests()
    with pytest.raises(TransientError, match="server error"):
        connector.get("event00001")
    assert len(api_calls(emu)) == 5
    assert connector.get("event00001").href == "event00001"


def test_the_last_attempt_does_not_blame_the_stop(
    emu: GoogleCalendarEmulator, connector: GoogleConnector
) -> None:
    """Attempts used up while syncd stops: the message says the attempts ran out, not that
    the stop ended the retries (there were none left)."""
    connector.session.attempts = 1
    connector.interrupt()
    emu.inject("500")
    with pytest.raises(TransientError, match="server error") as caught:
        connector.get("event00001")
    assert "syncd is stopping" not in str(caught.value)


def test_quota_exceeded_pauses_every_calendar_of_the_account(
    emu: GoogleCalendarEmulator,
    connector: GoogleConnector,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After 403 quotaExceeded, another calendar on the same token sends nothing for the pause;
    a calendar of another account goes on; after the pause all work again."""
    sibling = GoogleConnector.from_config(
        google_config(
            tmp_path,
            emu,
            "other",
            calendar_id=connector.options.calendar_id,
            token_file=str(connector.options.token_file),
        )
    )
    write_token(emu, tmp_path / "elsewhere", "google-work.json")
    stranger = GoogleConnector.from_config(
        google_config(
            tmp_path,
            emu,
            "stranger",
            calendar_id=connector.options.calendar_id,
            token_file=str(tmp_path / "elsewhere" / "google-work.json"),
        )
    )
    emu.inject("403-quota")
    with pytest.raises(TransientError, match="usage limits"):
        connector.get("event00001")
    emu.clear_requests()
    with pytest.raises(TransientError, match="usage limits"):
        sibling.get("event00001")
    assert api_calls(emu) == []
    assert stranger.get("event00001").href == "event00001"
    later = time.monotonic() + connector.session.quota_pause + 1
    monkeypatch.setattr("connectors.google.account.time.monotonic", lambda: later)
    assert sibling.get("event00001").href == "event00001"


def wait_until_waiting(
    waiting: threading.Event, worker: threading.Thread, failures: list[BaseException]
) -> None:
    """Return once ``waiting`` is set; fail if the worker ends first or nothing happens for
    20 s (a bound on a hang, not a measurement)."""
    deadline = time.monotonic() + 20
    while not waiting.wait(0.01):
        assert worker.is_alive(), f"the call ended before its retry wait: {failures}"
        assert time.monotonic() < deadline, "the call never began its retry wait"


def test_interrupt_ends_a_retry_wait(
    emu: GoogleCalendarEmulator, connector: GoogleConnector
) -> None:
    """A wait for Retry-After (30 s) ends when syncd stops; no retry is sent."""
    emu.inject("429", retry_after=30)
    failures: list[BaseException] = []
    waits: list[float] = []
    waiting = threading.Event()
    session_sleep = connector.session.sleep  # the real, interruptible wait

    def sleep(seconds: float) -> object:
        waits.append(seconds)
        waiting.set()
        return session_sleep(seconds)

    connector.session.sleep = sleep

    def call() -> None:
        try:
            connector.get("event00001")
        except TransientError as error:
            failures.append(error)

    worker = threading.Thread(target=call)
    emu.clear_requests()
    worker.start()
    # The interrupt comes once the worker waits, not merely once the 429 is sent.
    wait_until_waiting(waiting, worker, failures)
    connector.interrupt()
    worker.join(timeout=20)
    assert not worker.is_alive(), "the wait did not end when syncd stopped"
    assert waits == [30.0]
    assert "syncd is stopping" in str(failures[0])
    assert len(api_calls(emu)) == 1
