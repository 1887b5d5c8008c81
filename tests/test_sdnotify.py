"""The sd_notify protocol on real AF_UNIX datagram sockets, in this process and across processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.sdnotify import STATUS_MAX, Notifier

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket bound in tmp_path and named in $NOTIFY_SOCKET, as systemd does."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def received(sock: socket.socket, count: int) -> list[str]:
    """The next ``count`` datagrams, decoded."""
    return [sock.recv(4096).decode("utf-8") for _ in range(count)]


def assert_nothing_waiting(sock: socket.socket) -> None:
    sock.settimeout(0.05)
    with pytest.raises(TimeoutError):
        sock.recv(4096)


def test_messages_arrive_in_order(receiver: socket.socket) -> None:
    """READY, STATUS, WATCHDOG, RELOADING with MONOTONIC_USEC, STOPPING: exactly, in order."""
    notifier = Notifier()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    notifier.ready()
    notifier.status("3 calendars, all well")
    notifier.watchdog()
    notifier.reloading()
    notifier.stopping()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    ready, status, watchdog, reloading, stopping = received(receiver, 5)

    assert [ready, status, watchdog, stopping] == [
        "READY=1",
        "STATUS=3 calendars, all well",
        "WATCHDOG=1",
        "STOPPING=1",
    ]
    first, second = reloading.split("\n")
    key, _, usec = second.partition("=")
    assert (first, key) == ("RELOADING=1", "MONOTONIC_USEC")
    assert before <= int(usec) <= after
    assert_nothing_waiting(receiver)


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``@name`` in $NOTIFY_SOCKET is an abstract socket."""
    name = f"syncd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        notifier = Notifier()
        notifier.ready()
        notifier.stopping()
        assert received(sock, 2) == ["READY=1", "STOPPING=1"]


def test_without_notify_socket_every_call_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    """No $NOTIFY_SOCKET: nothing is sent, nothing raises, no watchdog is expected."""
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    notifier = Notifier()
    with capture_logs() as logs:
        notifier.ready()
        notifier.status("x")
        notifier.watchdog()
        notifier.reloading()
        notifier.stopping()
    assert (notifier.enabled, notifier.watchdog_interval(), logs) == (False, None, [])


def test_relative_socket_path_is_ignored_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only absolute paths and ``@`` names are sockets; anything else is a no-op, said once."""
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/notify.sock")
    with capture_logs() as logs:
        notifier = Notifier()
        notifier.ready()
    assert not notifier.enabled
    assert [entry["event"] for entry in logs] == ["sdnotify.unsupported_socket"]


def test_status_with_newlines_and_control_characters_is_one_line(
    receiver: socket.socket,
) -> None:
    """Newlines, tabs, escapes and line separators become single spaces."""
    Notifier().status("  2 calendars\nfailing: work\r\n\tnotes\x1b[0m\u2028done\x00 ")
    assert received(receiver, 1) == ["STATUS=2 calendars failing: work notes [0m done"]


def test_status_is_bounded(receiver: socket.socket) -> None:
    """A long status is cut to STATUS_MAX characters, ending in an ellipsis."""
    Notifier().status("calendar " * 100)
    (message,) = received(receiver, 1)
    text = message.removeprefix("STATUS=")
    assert len(text) <= STATUS_MAX
    assert text.endswith("…")
    assert text.startswith("calendar calendar")


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("30000000", None, 30.0),
        ("1500000", "self", 1.5),
        ("30000000", "other", None),
        ("30000000", "not-a-pid", None),
        ("0", None, None),
        ("-5", None, None),
        ("soon", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_watchdog_interval(
    receiver: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
    usec: str | None,
    pid: str | None,
    expected: float | None,
) -> None:
    """$WATCHDOG_USEC in seconds, but only for this process when $WATCHDOG_PID is set."""
    if usec is not None:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        value = {"self": str(os.getpid()), "other": str(os.getppid())}.get(pid, pid)
        monkeypatch.setenv("WATCHDOG_PID", value)
    assert Notifier().watchdog_interval() == expected


def test_send_to_a_vanished_socket_does_not_raise_and_logs_once(
    receiver: socket.socket, tmp_path: Path
) -> None:
    """The listener goes away: sends fail quietly, with one warning for the whole outage."""
    notifier = Notifier()
    notifier.ready()
    assert received(receiver, 1) == ["READY=1"]
    receiver.close()
    (tmp_path / "notify.sock").unlink()
    with capture_logs() as logs:
        notifier.status("still running")
        notifier.watchdog()
        notifier.stopping()
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [
        ("sdnotify.send_failed", "warning")
    ]


def test_sends_resume_when_the_socket_comes_back(receiver: socket.socket, tmp_path: Path) -> None:
    """After a failed send, a socket bound again at the same path gets the next message."""
    path = tmp_path / "notify.sock"
    notifier = Notifier()
    receiver.close()
    path.unlink()
    notifier.watchdog()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as again:
        again.bind(str(path))
        again.settimeout(5)
        notifier.watchdog()
        assert received(again, 1) == ["WATCHDOG=1"]


CHILD = textwrap.dedent(
    """
    from syncd.sdnotify import Notifier

    notifier = Notifier()
    notifier.ready()
    notifier.status("child running")
    notifier.watchdog()
    notifier.stopping()
    print(notifier.watchdog_interval())
    """
)


def test_a_child_process_notifies_the_parents_socket(receiver: socket.socket) -> None:
    """A separate Python process given $NOTIFY_SOCKET reaches this process's socket, in order;
    the $WATCHDOG_PID of another process (here the parent's) gives it no watchdog."""
    env = dict(os.environ, WATCHDOG_USEC="10000000", WATCHDOG_PID=str(os.getpid()))
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.strip() == "None"
    assert received(receiver, 4) == [
        "READY=1",
        "STATUS=child running",
        "WATCHDOG=1",
        "STOPPING=1",
    ]
