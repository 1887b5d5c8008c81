"""Injected Graph faults during a policy cycle end in the same state as a fault-free run; the
connector keeps to four requests in flight per mailbox; retry waits end on interrupt.

Each fault hits the request of the cycle where it hurts: the delta link, the ``$batch`` that
completes changed items, the annotation's PATCH, the note's POST. 429 and 503 carry
``Retry-After``, which the connector honours (its waits are recorded, not slept).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.outlook import OutlookConnector
from syncd.errors import TransientError
from tests.graph_emulator import GraphEmulator
from tests.identity_provider import IdentityProvider
from tests.test_outlook_contract import CLIENT as CONTRACT_CLIENT
from tests.test_outlook_contract import SECRET as CONTRACT_SECRET
from tests.test_outlook_contract import Servers, meeting
from tests.test_outlook_policy_e2e import (
    CLIENT,
    SECRET,
    USER,
    GraphHarness,
    appointment,
    jane,
)
from tests.test_policy_e2e import SOON

FAULTS: dict[str, dict[str, Any]] = {
    "429 on the delta link": {"fault": "429", "path_contains": "/delta", "retry_after": 3},
    "503 on the batch": {"fault": "503", "path_contains": "$batch", "retry_after": 2},
    "500 on the annotation": {"fault": "500", "method": "PATCH"},
    "504 on the delta link": {"fault": "504", "path_contains": "/delta"},
    "slow note": {"fault": "slow", "method": "POST", "path_contains": "/events", "delay": 0.2},
    "reset on the note": {"fault": "reset", "method": "POST", "path_contains": "/events"},
    "401 on the delta link": {"fault": "401", "path_contains": "/delta"},
    "503 five times": {"fault": "503", "path_contains": "/delta", "times": 5},
}


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        provider.register_app(CLIENT, secret=SECRET)
        yield provider


@pytest.fixture
def make_harness(tmp_path: Path, idp: IdentityProvider) -> Iterator[Any]:
    opened: list[tuple[GraphHarness, GraphEmulator]] = []

    def make(name: str) -> GraphHarness:
        emu = GraphEmulator(idp=idp).start()
        (tmp_path / name).mkdir()
        harness = GraphHarness(tmp_path / name, idp, emu)
        opened.append((harness, emu))
        return harness

    yield make
    for harness, emu in opened:
        harness.close()
        emu.stop()


def late_decline(h: GraphHarness, fault: dict[str, Any] | None) -> None:
    """Jane declines 22 h ahead; ``fault`` is injected for the cycle that sees it. A cycle
    that fails is run again, as the daemon would."""
    made = h.add(appointment(SOON))
    h.cycle_all()
    h.patch(made["id"], {"attendees": [jane("declined")]})
    if fault is not None:
        h.emu.inject(**fault)
    for _attempt in range(2):
        try:
            h.cycle_all()
            break
        except TransientError:
            continue
    h.cycle_all()


def state(h: GraphHarness) -> dict[str, Any]:
    """What the run left behind: audited decisions, notes, the event and its annotation."""
    [event] = h.emu.events(USER, h.work_id)
    data = h.data(event["id"])
    return {
        "changes": [(r["change"], r["instance"]) for r in h.records_of("change")],
        "verdicts": [(r["verdict"], r["fee"], r["notice_hours"]) for r in h.records_of("verdict")],
        "applied": sorted(w["action"] for w in h.records_of("write") if w["status"] == "applied"),
        "notes": sorted(n["subject"] for n in h.notes()),
        "event": (event["subject"], event["attendees"][0]["status"]["response"]),
        "annotation": sorted(data),
        "note_link": data.get("X-SYNCD-NOTE", "").startswith("syncd-note-"),
    }


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_ends_in_the_fault_free_state(name: str, make_harness: Any) -> None:
    """The same decline with and without the fault leaves the same state behind."""
    clean = make_harness("clean")
    late_decline(clean, None)
    faulty = make_harness("faulty")
    late_decline(faulty, dict(FAULTS[name]))
    assert state(faulty) == state(clean)
    assert state(clean)["verdicts"] == [
        ("late_cancellation", {"amount": "60.00", "currency": "EUR"}, 22.0)
    ]
    fault = FAULTS[name]["fault"]
    if fault != "slow":  # a slow answer is a normal one, only late
        expected = None if fault == "reset" else int(fault)
        assert expected in [r.status for r in faulty.emu.requests]
    retry_after = FAULTS[name].get("retry_after")
    if retry_after is not None:
        assert float(retry_after) in faulty.sleeps


def test_retries_give_up_and_the_next_cycle_finishes(make_harness: Any) -> None:
    """Graph failing past the last attempt fails that cycle (TransientError, nothing
    committed); the next cycle does the work."""
    h = make_harness("giving-up")
    made = h.add(appointment(SOON))
    h.cycle_all()
    h.patch(made["id"], {"attendees": [jane("declined")]})
    h.emu.inject("503", path_contains="/delta", times=5)
    with pytest.raises(TransientError, match="HTTP 503"):
        h.engine.cycle("work")
    assert h.records_of("change") == []
    h.cycle_all()
    assert [r["change"] for r in h.records_of("change")] == ["response_changed"]


def test_at_most_four_requests_in_flight_per_mailbox(tmp_path: Path) -> None:
    """Eight calendars of one mailbox listed at once on eight threads against a slow Graph:
    never more than four requests in flight for the mailbox, so Graph never throttles."""
    secret = tmp_path / "secret"
    secret.write_text(CONTRACT_SECRET + "\n")
    secret.chmod(0o600)
    with IdentityProvider() as idp, GraphEmulator(idp=idp) as emu:
        idp.register_app(CONTRACT_CLIENT, secret=CONTRACT_SECRET)
        servers = Servers(idp, emu, tmp_path)
        user = f"busy-{uuid.uuid4().hex[:6]}@contoso.example"
        emu.add_mailbox(user)
        connectors: list[OutlookConnector] = []
        for n in range(8):
            calendar = emu.add_calendar(user, f"Room {n}")
            for day in range(3):
                emu.put_event(user, calendar, meeting(f"m{day}", _soon(day)))
            connectors.append(servers.connector(tmp_path / f"c{n}", calendar=calendar, user=user))
        for connector in connectors:
            connector.credentials.token()  # sign in before the load: only Graph is measured
        emu.clear_requests()
        emu.inject("slow", times=40, delay=0.05)
        errors: list[BaseException] = []

        def listing(connector: OutlookConnector) -> None:
            try:
                connector.list_changes(None, {})
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=listing, args=(c,)) for c in connectors]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert 1 < emu.peak_in_flight[user] <= 4
        assert 429 not in [r.status for r in emu.requests]


def test_interrupt_ends_a_retry_after_wait(make_harness: Any) -> None:
    """syncd stops during a long Retry-After wait: the wait ends at once, no retry is made."""
    h = make_harness("interrupted")
    h.add(appointment(SOON))
    h.cycle_all()
    work = h.connector("work")
    waits: list[float] = []
    waiting = threading.Event()

    def sleep(seconds: float) -> object:
        waits.append(seconds)
        waiting.set()
        return work.session.interrupted.wait(seconds)  # a real, interruptible wait

    work.session.sleep = sleep
    h.emu.inject("429", path_contains="/delta", retry_after=60)
    failures: list[BaseException] = []

    def cycle() -> None:
        try:
            h.engine.cycle("work")
        except TransientError as error:
            failures.append(error)

    runner = threading.Thread(target=cycle)
    runner.start()
    # The interrupt comes once the cycle waits, not merely once the 429 is sent.
    deadline = time.monotonic() + 30  # a bound on a hang, not a measurement
    while not waiting.wait(0.01):
        assert runner.is_alive(), f"the cycle ended before its retry wait: {failures}"
        assert time.monotonic() < deadline, "the cycle never began its retry wait"
    work.interrupt()
    runner.join(30)
    assert not runner.is_alive(), "the wait did not end when syncd stopped"
    assert waits == [60.0]
    [failure] = failures
    assert "stopping" in str(failure)
    assert [r.status for r in h.emu.requests if r.path.endswith("/delta")][-1] == 429


def _soon(days: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=days + 1)
