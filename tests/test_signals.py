"""Signal reactions run on a relay thread, never inside the handler: a signal that lands while
the main thread holds the lock a reaction needs (the daemon's wake event, a log stream) must
not deadlock it. Each case runs in a subprocess with a timeout, so a deadlock fails the test
instead of hanging the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The main thread holds the event's lock when the signal lands: a reaction run inside the
# handler would wait for that lock in the thread that holds it.
RELAY = """
import os, signal, threading, time
from syncd.signals import SignalRelay

event = threading.Event()
seen = []
relay = SignalRelay({signal.SIGHUP: lambda signum: (seen.append(signum), event.set())})
with event._cond:
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(0.3)  # the handler runs in this thread, between two bytecodes
assert event.wait(10), "the reaction never ran"
relay.close()
assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
print("reacted", seen)
"""

DAEMON = """
import os, signal, time
from datetime import UTC, datetime
from pathlib import Path
from syncd.config import load_config
from syncd.daemon import Daemon

root = Path({root!r})
calendar = '[[calendars]]\\nname = "work"\\nconnector = "local"\\npath = "cal"\\n'
(root / "syncd.toml").write_text(calendar)
daemon = Daemon(load_config(root / "syncd.toml"), lambda: datetime.now(UTC))
relay = daemon.install_signal_handlers()
with daemon._wake._cond:
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.3)
assert daemon._wake.wait(10)
deadline = time.monotonic() + 10
while not (daemon._reload.is_set() and daemon._stopping.is_set()):
    assert time.monotonic() < deadline, "a reaction never ran"
    time.sleep(0.01)
relay.close()
print("reload and stop")
"""


def run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_reaction_waits_for_the_lock_the_main_thread_holds() -> None:
    """The reaction runs on the relay thread once the main thread lets go of the lock."""
    assert run(RELAY).strip() == "reacted [1]"


def test_the_daemon_reloads_and_stops_when_signalled_while_its_loop_holds_the_wake_lock(
    tmp_path: Path,
) -> None:
    """SIGHUP and SIGTERM arriving while the main loop holds its wake event's lock still
    reload and stop the daemon (they used to set the event inside the handler)."""
    output = run(DAEMON.format(root=str(tmp_path)))
    assert output.splitlines()[-1] == "reload and stop"
    assert "daemon.reload_requested" in output
    assert "daemon.stopping" in output


@pytest.mark.parametrize("script", [RELAY])
def test_without_the_relay_the_same_signal_deadlocks(script: str) -> None:
    """The check above can fail: with the reaction inside the handler, the process hangs."""
    naive = script.replace(
        "relay = SignalRelay({signal.SIGHUP: lambda signum: (seen.append(signum), event.set())})",
        "signal.signal(signal.SIGHUP, lambda signum, frame: (seen.append(signum), event.set()))",
    ).replace("relay.close()", "")
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(naive)],
            cwd=ROOT,
            capture_output=True,
            timeout=5,
            check=False,
        )
