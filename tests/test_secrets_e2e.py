"""A secret given to syncd never shows up in its logs, its audit log or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.harness import CONFIG, NOW
from tests.radicale_server import PASSWORD, USER, radicale

WRONG = "wrong-horse-9c1e-Zq7"  # a password Radicale refuses


def run(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd.cli", *args, "--config", str(root / "syncd.toml")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def everything_written(root: Path, *outputs: subprocess.CompletedProcess[str]) -> str:
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix != ".toml"]
    text = "".join(p.read_bytes().decode("utf-8", "replace") for p in files)
    return text + "".join(o.stdout + o.stderr for o in outputs)


def test_a_refused_password_leaves_no_trace(tmp_path: Path) -> None:
    """A wrong password from the environment: the calendar fails with an auth error whose
    message, the logs, the audit log and the state carry no trace of the password."""
    server = radicale()
    url = server.new_calendar("Secrets")
    (tmp_path / "syncd.toml").write_text(
        CONFIG + f'[[calendars]]\nname = "remote"\nconnector = "caldav"\nurl = "{url}"\n'
        f'username = "{USER}"\npassword_env = "SYNCD_TEST_PW"\n'
    )
    (tmp_path / "cal").mkdir()
    once = run(tmp_path, "once", "--now", NOW.isoformat(), env={"SYNCD_TEST_PW": WRONG})
    status = run(tmp_path, "status", "--json", env={})
    doctor = run(tmp_path, "doctor", env={"SYNCD_TEST_PW": WRONG})
    assert once.returncode == 1, once.stdout + once.stderr
    assert "remote" in once.stdout
    assert "credentials" in once.stdout + once.stderr
    assert doctor.returncode == 1
    written = everything_written(tmp_path, once, status, doctor)
    assert WRONG not in written
    assert "Traceback" not in once.stderr


def test_an_inline_password_is_warned_about_but_never_printed(tmp_path: Path) -> None:
    """check-config points at an inline password without showing it; a working one syncs and
    appears nowhere either."""
    server = radicale()
    url = server.new_calendar("Inline")
    (tmp_path / "syncd.toml").write_text(
        CONFIG + f'[[calendars]]\nname = "remote"\nconnector = "caldav"\nurl = "{url}"\n'
        f'username = "{USER}"\npassword = "{PASSWORD}"\n'
    )
    (tmp_path / "cal").mkdir()
    check = run(tmp_path, "check-config", env={})
    once = run(tmp_path, "once", "--now", NOW.isoformat(), "--log-level", "debug", env={})
    assert check.returncode == 0
    assert "password" in check.stdout + check.stderr
    assert once.returncode == 0, once.stdout + once.stderr
    assert PASSWORD not in everything_written(tmp_path, check, once)


def test_a_systemd_credential_supplies_the_password(tmp_path: Path) -> None:
    """password_credential reads $CREDENTIALS_DIRECTORY/<name>, as under LoadCredential=."""
    server = radicale()
    url = server.new_calendar("Credential")
    credentials = tmp_path.parent / f"{tmp_path.name}-credentials"  # outside what is scanned
    credentials.mkdir(mode=0o700)
    (credentials / "caldav-remote").write_text(PASSWORD + "\n")
    (credentials / "caldav-remote").chmod(0o400)
    (tmp_path / "syncd.toml").write_text(
        CONFIG + f'[[calendars]]\nname = "remote"\nconnector = "caldav"\nurl = "{url}"\n'
        f'username = "{USER}"\npassword_credential = "caldav-remote"\n'
    )
    (tmp_path / "cal").mkdir()
    once = run(
        tmp_path, "once", "--now", NOW.isoformat(), env={"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert once.returncode == 0, once.stdout + once.stderr
    assert "remote: baseline" in once.stdout
    assert PASSWORD not in everything_written(tmp_path, once)
