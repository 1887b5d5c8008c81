"""Crash points for the crash tests: the process kills itself at a named point of a cycle.

Set ``SYNCD_CRASH_AT`` to a point's name to use one; unset (always, outside the tests) a crash
point does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["crash_point"]


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL (no clean-up at all) if ``SYNCD_CRASH_AT`` names ``name``."""
    if os.environ.get("SYNCD_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
