"""The systemd units in systemd/: they load without a single warning, the system unit scores
2.0 or better in ``systemd-analyze security``, and they keep the settings syncd relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_UNIT = ROOT / "systemd" / "syncd.service"
USER_UNIT = ROOT / "systemd" / "syncd-user.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
MAX_EXPOSURE = 2.0

needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)",
)


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze without pager or colours; stdout and stderr together."""
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, "--no-pager", *args],
        env={**os.environ, "SYSTEMD_COLORS": "0", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )


def verifiable_copy(unit: Path, folder: Path) -> Path:
    """The unit with its ExecStart binary swapped for one that exists here.

    ``systemd-analyze verify`` fails when the binary is missing, and /usr/bin/syncd or
    %h/.local/bin/syncd need not be installed where the tests run; everything else is kept.
    """
    text, count = re.subn(
        r"^ExecStart=\S+", f"ExecStart={sys.executable}", unit.read_text(), flags=re.MULTILINE
    )
    assert count == 1, f"{unit.name}: expected exactly one ExecStart= line"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / unit.name
    copy.write_text(text)
    return copy


def verify(unit: Path, tmp_path: Path, *, user: bool = False) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on a verifiable copy, in the user manager's scope if asked."""
    copy = verifiable_copy(unit, tmp_path / "units")
    if not user:
        return analyze("verify", str(copy))
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    return analyze("--user", "verify", str(copy), env={"XDG_RUNTIME_DIR": str(runtime)})


def unit_settings(unit: Path) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values, in file order (comments and blank lines skipped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@needs_systemd_analyze
@pytest.mark.parametrize(
    ("unit", "user"), [(SYSTEM_UNIT, False), (USER_UNIT, True)], ids=["system", "user"]
)
def test_unit_verifies_without_any_warning(unit: Path, user: bool, tmp_path: Path) -> None:
    """verify exits 0 and prints nothing: an unknown key is only a warning, so output fails."""
    done = verify(unit, tmp_path, user=user)
    assert (done.returncode, done.stdout) == (0, "")


@needs_systemd_analyze
def test_verify_output_does_reveal_a_bad_key(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key is only a warning (exit 0), but it is printed."""
    broken = tmp_path / "broken" / "syncd.service"
    broken.parent.mkdir()
    broken.write_text(SYSTEM_UNIT.read_text().replace("ProtectClock=", "ProtectClocks="))
    done = verify(broken, tmp_path)
    assert "Unknown key 'ProtectClocks'" in done.stdout


@needs_systemd_analyze
def test_system_unit_exposure_is_at_most_2() -> None:
    """``security --offline=true --threshold=20`` passes and the overall exposure is <= 2.0."""
    done = analyze("security", "--offline=true", "--threshold=20", str(SYSTEM_UNIT))
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found is not None, done.stdout
    assert done.returncode == 0
    assert float(found.group(1)) <= MAX_EXPOSURE


def test_system_unit_keeps_the_settings_syncd_relies_on() -> None:
    """Notify protocol, watchdog, restart policy, directories and umask as the daemon expects."""
    settings = unit_settings(SYSTEM_UNIT)
    unit, service = settings["Unit"], settings["Service"]
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "ExecStart": ["/usr/bin/syncd run"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "WatchdogSec": ["120"],
        "Restart": ["on-failure"],
        "RestartSec": ["10"],
        "TimeoutStopSec": ["60"],
        "StateDirectory": ["syncd"],
        "ConfigurationDirectory": ["syncd"],
        "LogsDirectory": ["syncd"],
        "UMask": ["0077"],
        "DynamicUser": ["yes"],
        "MemoryDenyWriteExecute": ["yes"],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
    }
    assert {key: service.get(key) for key in expected} == expected
    assert {"StartLimitIntervalSec", "StartLimitBurst"} <= unit.keys()
    assert "IPAddressDeny" not in service


def test_user_unit_keeps_the_settings_syncd_relies_on() -> None:
    """The user unit speaks the same protocol and leaves state to XDG (see its comments)."""
    service = unit_settings(USER_UNIT)["Service"]
    assert service["Type"] == ["notify"]
    assert service["WatchdogSec"] == ["120"]
    assert service["ExecStart"] == ["%h/.local/bin/syncd run"]
    assert service["ConfigurationDirectory"] == ["syncd"]
    assert "StateDirectory" not in service
    assert "LogsDirectory" not in service
