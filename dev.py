#!/usr/bin/env python3
"""Set-up and everyday commands for a checkout; needs only python3.

    python3 dev.py run    # create .venv if needed, then run the daemon on the embedded default
    python3 dev.py test   # create .venv if needed, then run the whole test suite

Everything the embedded default creates (configuration, sample calendar, state, audit log)
lives under ./var/demo, so a checkout stays self-contained. Extra arguments are passed on
(to ``syncd run`` or to ``pytest``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".syncd-installed"


def ensure_venv() -> None:
    """Create .venv and install syncd with its test extra, again when pyproject.toml changes."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing syncd and its test dependencies into .venv", flush=True)
    pip("install", "--upgrade", "pip")
    pip("install", "-e", f"{ROOT}[test]")
    STAMP.write_text(wanted)


def pip(*args: str) -> None:
    """Run pip in .venv quietly; show its whole output only when it fails."""
    command = [str(BIN / "python"), "-m", "pip", *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"dev.py: pip {' '.join(args)} failed (exit {done.returncode})")


def run(args: list[str]) -> NoReturn:
    """Run the daemon on the embedded default kept under ./var/demo."""
    demo = ROOT / "var" / "demo"
    config = demo / "syncd.toml"
    env = dict(os.environ, SYNCD_CONFIG=str(config), XDG_STATE_HOME=str(demo / "state"))
    print(
        f"dev.py: running syncd on {demo} (Ctrl-C stops it). Try, in another terminal:\n"
        f"  rm {demo}/state/syncd/calendars/work/consult-omar.ics   # a client cancels\n"
        f"and watch the change appear; syncd's note lands in\n"
        f"  {demo}/state/syncd/calendars/notes/\n"
        f"then:\n"
        f"  {BIN}/syncd status --config {config}\n"
        f"  {BIN}/syncd audit verify --config {config}",
        flush=True,
    )
    # exec: Ctrl-C and SIGTERM reach syncd itself, which stops cleanly.
    os.execve(BIN / "syncd", [str(BIN / "syncd"), "run", *args], env)


def test(args: list[str]) -> NoReturn:
    """Run the whole test suite."""
    os.chdir(ROOT)
    os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *args])


def main() -> int:
    """Dispatch ``run`` or ``test`` (each replaces this process)."""
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test"):
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "run":
        run(rest)
    test(rest)  # never returns


if __name__ == "__main__":
    sys.exit(main())
