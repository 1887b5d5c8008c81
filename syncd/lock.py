"""A single-instance lock on the state directory: two daemons must never share one store."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from syncd.errors import SyncdError

__all__ = ["instance_lock"]


@contextmanager
def instance_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir/syncd.lock`` exclusively; raise ``SyncdError`` naming the holder's pid
    when another syncd holds it. The lock dies with the process, so a crash never leaves it."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = state_dir / "syncd.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise SyncdError(f"cannot open the lock file {path}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise SyncdError(
                f"another syncd (pid {holder}) is running with the state in {state_dir}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
