"""The sd_notify protocol, spoken directly: how the daemon tells systemd how it is doing.

systemd passes a datagram socket in ``$NOTIFY_SOCKET`` (a filesystem path, or an abstract
socket written with a leading ``@``); each message is one datagram of newline-separated
``KEY=VALUE`` assignments. ``$WATCHDOG_USEC`` (with ``$WATCHDOG_PID``, when set, naming the
process meant) says how often systemd expects ``WATCHDOG=1``.

Outside systemd there is no ``$NOTIFY_SOCKET`` and every call is a no-op. Telling systemd is
never worth stopping the daemon for: a failed send is logged (once until a send succeeds
again) and swallowed.
"""

from __future__ import annotations

import os
import socket
import time
import unicodedata
from collections.abc import Mapping

import structlog

__all__ = ["STATUS_MAX", "Notifier"]

STATUS_MAX = 200
"""The longest ``STATUS=`` text sent, in characters; longer text is cut and ends in "…"."""

log = structlog.get_logger("syncd.sdnotify")


class Notifier:
    """Sends sd_notify messages to the socket named by ``$NOTIFY_SOCKET``, if any.

    ``environ`` defaults to the process environment; it is read for the socket when the
    notifier is made and for the watchdog settings on each :meth:`watchdog_interval`.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._name = self._environ.get("NOTIFY_SOCKET", "")
        self._address = _address(self._name)
        self._socket: socket.socket | None = None
        self._failing = False
        if self._name and self._address is None:
            log.warning("sdnotify.unsupported_socket", socket=self._name)

    @property
    def enabled(self) -> bool:
        """Whether there is a socket to notify (``$NOTIFY_SOCKET`` set and usable)."""
        return self._address is not None

    def ready(self) -> None:
        """Start-up (or a reload) is complete: ``READY=1``."""
        self._send("READY=1")

    def status(self, text: str) -> None:
        """A one-line summary for ``systemctl status``: control characters become spaces,
        runs of whitespace one space, and the text is cut at :data:`STATUS_MAX` characters."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Keep-alive for ``WatchdogSec=``: ``WATCHDOG=1``. Send it only after real progress."""
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        """Shut-down has begun: ``STOPPING=1``."""
        self._send("STOPPING=1")

    def reloading(self) -> None:
        """A reload has begun: ``RELOADING=1`` with the ``CLOCK_MONOTONIC`` time in µs.

        systemd 253 and later expect ``MONOTONIC_USEC=`` with it (older versions ignore it)
        and keep the unit reloading until the next :meth:`ready`, so call that afterwards
        whether or not the reload succeeded.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects ``WATCHDOG=1``, or None when it expects none.

        None as well when there is no socket, when ``$WATCHDOG_USEC`` is not a positive
        integer, or when ``$WATCHDOG_PID`` names another process (a child that inherited the
        environment must not answer for its parent).
        """
        if self._address is None:
            return None
        usec = _positive_int(self._environ.get("WATCHDOG_USEC"))
        if usec is None:
            return None
        pid = self._environ.get("WATCHDOG_PID")
        if pid is not None and _positive_int(pid) != os.getpid():
            return None
        return usec / 1_000_000

    def close(self) -> None:
        """Close the socket (a later message opens it again)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message.encode("utf-8", "replace"), self._address)
        except OSError as error:
            if not self._failing:
                log.warning("sdnotify.send_failed", socket=self._name, error=str(error))
            self._failing = True
            return
        if self._failing:
            log.info("sdnotify.send_recovered", socket=self._name)
        self._failing = False


def _address(name: str) -> bytes | None:
    """The ``sendto`` address for ``$NOTIFY_SOCKET``: a path, or an abstract name after ``@``."""
    if name.startswith("@") and len(name) > 1:
        return b"\0" + os.fsencode(name[1:])
    if name.startswith("/"):
        return os.fsencode(name)
    return None


def _one_line(text: str) -> str:
    cleaned = "".join(
        " " if unicodedata.category(char)[0] == "C" or char in "\u2028\u2029" else char
        for char in text
    )
    line = " ".join(cleaned.split())
    if len(line) > STATUS_MAX:
        line = line[: STATUS_MAX - 1].rstrip() + "…"
    return line


def _positive_int(value: str | None) -> int | None:
    digits = (value or "").strip()
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(digits)
    return number if number > 0 else None
