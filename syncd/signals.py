"""Signal reactions on a thread of their own.

A Python signal handler runs in the main thread between any two bytecodes, including while
that thread holds a lock the reaction needs: a ``threading.Event``'s (the daemon's main loop
waits on one) or a log stream's. Setting the event or logging from the handler can then wait
forever on a lock its own thread holds. So the handlers here do nothing themselves: the
interpreter writes each signal's number to a socket (``signal.set_wakeup_fd``) before it runs
them, and a relay thread reads the numbers and runs the reactions, where taking those locks
only ever waits for the main thread to let go.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from types import FrameType

__all__ = ["SignalRelay"]


def _noted(_signum: int, _frame: FrameType | None) -> None:
    """The Python-level handler: the signal number already went to the wakeup socket."""


class SignalRelay:
    """Runs ``reactions[signum](signum)`` on a relay thread for each signal received.

    Must be made in the main thread (as any ``signal.signal`` call); :meth:`close` puts the
    previous handlers and wakeup descriptor back."""

    def __init__(self, reactions: Mapping[signal.Signals, Callable[[int], None]]) -> None:
        self._reactions = {int(signum): react for signum, react in reactions.items()}
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)  # the interpreter must never block writing to it
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous = {signum: signal.signal(signum, _noted) for signum in self._reactions}
        self._thread = threading.Thread(target=self._relay, name="syncd-signals", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while True:
            try:
                received = self._reader.recv(64)
            except OSError:
                return  # closed
            if not received:
                return
            for signum in received:
                react = self._reactions.get(signum)
                if react is not None:
                    react(signum)

    def close(self) -> None:
        """Restore the previous handlers and wakeup descriptor, and end the relay thread."""
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        signal.set_wakeup_fd(self._previous_fd)
        self._writer.close()
        with contextlib.suppress(OSError):
            self._reader.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._reader.close()
