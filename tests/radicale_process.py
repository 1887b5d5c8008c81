"""Start and stop a real Radicale on a free loopback port: htpasswd (plain) auth for one
user, storage and log under a folder. Standard library only, so the benchmarks use it too
without importing pytest or the test helpers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["RadicaleProcess", "free_port"]

_CONFIG = """\
[server]
hosts = 127.0.0.1:{port}
delay_on_error = 0
[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {storage}
[logging]
level = warning
mask_passwords = True
{extra}"""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RadicaleProcess:
    """A running ``python -m radicale`` serving ``user`` (``extra_config`` is appended to its
    configuration file); its files live under ``root``."""

    def __init__(self, root: Path, user: str, password: str, extra_config: str = "") -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.storage = root / "storage"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        users = root / "users"
        users.write_text(f"{user}:{password}\n", encoding="utf-8")
        config = root / "radicale.conf"
        config.write_text(
            _CONFIG.format(port=self.port, users=users, storage=self.storage, extra=extra_config),
            encoding="utf-8",
        )
        self.log_path = root / "radicale.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"radicale exited: {self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("radicale did not start within 30 s")

    def stop(self) -> None:
        """Stop the server (its files stay under ``root``)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        """The end of Radicale's log, for a crash report."""
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(["Radicale's log ends with:", *text[-lines:]])
