"""Google credentials against the emulator's OAuth endpoints, over HTTPS with a private CA
(``ca_file``): refresh through the file's token_uri with the file rewritten 0600 atomically,
a 401 refreshed once, a revoked refresh token, a service account acting for a user, and
``syncd auth google`` as a real process followed by ``syncd once``."""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from structlog.testing import capture_logs

from connectors.google import GoogleConnector
from connectors.google.account import forget_accounts
from connectors.google.options import SCOPES
from syncd.errors import AuthError
from tests.google_emulator import GoogleCalendarEmulator
from tests.harness import syncd_once
from tests.test_google_contract import api_calls, google_config, quick, write_token

EVENT = {
    "id": "event00001",
    "summary": "Coaching",
    "start": {"dateTime": "2026-12-01T10:00:00Z"},
    "end": {"dateTime": "2026-12-01T11:00:00Z"},
}


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return authority, pem


@pytest.fixture(scope="module")
def emu(ca: tuple[trustme.CA, Path]) -> Iterator[GoogleCalendarEmulator]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca[0].issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with GoogleCalendarEmulator(ssl_context=context) as emulator:
        yield emulator
        assert emulator.internal_errors == []


@pytest.fixture
def calendar_id(emu: GoogleCalendarEmulator) -> str:
    calendar = emu.add_calendar("auth")
    emu.put_event(calendar, dict(EVENT))
    return calendar


@pytest.fixture
def connect(
    emu: GoogleCalendarEmulator, ca: tuple[trustme.CA, Path], calendar_id: str, tmp_path: Path
) -> Iterator[Any]:
    def make(**options: object) -> GoogleConnector:
        config = google_config(
            tmp_path, emu, calendar_id=calendar_id, ca_file=str(ca[1]), **options
        )
        return quick(GoogleConnector.from_config(config))

    yield make
    forget_accounts()


def token_requests(emu: GoogleCalendarEmulator) -> list[Any]:
    return [r for r in emu.requests if r.path == "/token"]


def test_a_refresh_goes_to_the_files_token_uri_and_rewrites_it_atomically(
    emu: GoogleCalendarEmulator, connect: Any, tmp_path: Path
) -> None:
    """No access token yet: the first call refreshes at the emulator (not Google), and the
    file is replaced (a new inode) with mode 0600, holding the token the API then saw."""
    path = write_token(emu, tmp_path / "tokens")
    inode, refresh_token = path.stat().st_ino, json.loads(path.read_text())["refresh_token"]
    connector = connect()
    emu.clear_requests()
    assert connector.get("event00001").href == "event00001"
    [refresh] = token_requests(emu)
    assert refresh.body["grant_type"] == "refresh_token"
    saved = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode
    assert saved["refresh_token"] == refresh_token
    [call] = api_calls(emu)
    assert call.headers["authorization"] == f"Bearer {saved['token']}"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over


def test_a_401_is_refreshed_once_and_retried(
    emu: GoogleCalendarEmulator, connect: Any, tmp_path: Path
) -> None:
    path = write_token(emu, tmp_path / "tokens")
    connector = connect()
    connector.get("event00001")
    first = json.loads(path.read_text())["token"]
    emu.expire_access_tokens()
    emu.clear_requests()
    connector.get("event00001")
    assert [(r.path.rsplit("/", 1)[-1], r.status) for r in emu.requests] == [
        ("event00001", 401),
        ("token", 200),
        ("event00001", 200),
    ]
    assert json.loads(path.read_text())["token"] != first


def test_a_revoked_refresh_token_needs_consent_logged_once(
    emu: GoogleCalendarEmulator, connect: Any, tmp_path: Path
) -> None:
    path = write_token(emu, tmp_path / "tokens")
    connector = connect()
    connector.get("event00001")
    emu.expire_access_tokens()
    emu.revoke_refresh_tokens()
    secret = json.loads(path.read_text())["refresh_token"]
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(
                AuthError, match="run 'syncd auth google --calendar work'"
            ) as raised:
                connector.get("event00001")
            assert secret not in str(raised.value)
    assert [e["event"] for e in logs].count("google.needs_consent") == 1


def test_a_service_account_acts_for_its_subject(
    emu: GoogleCalendarEmulator, connect: Any, tmp_path: Path
) -> None:
    """A service account key (0600) with subject = the calendar's owner: a JWT grant at the
    emulator's token endpoint, then the owner's calendar is readable."""
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o700)
    key = folder / "sa.json"
    key.write_text(json.dumps(emu.service_account_info()))
    key.chmod(0o600)
    connector = connect(service_account_file=str(key), subject=emu.user)
    emu.clear_requests()
    assert connector.get("event00001").href == "event00001"
    [grant] = token_requests(emu)
    assert grant.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"


# --- syncd auth google, as a process --------------------------------------------------------


def auth_config(
    root: Path, emu: GoogleCalendarEmulator, ca_pem: Path, calendar_id: str
) -> tuple[Path, Path]:
    """A configuration with one Google calendar and its OAuth client; the token file path."""
    secrets = root / "client.json"
    secrets.write_text(json.dumps(emu.client_secrets()))
    config = root / "syncd.toml"
    config.write_text(
        '[state]\npath = "var/state.db"\n[audit]\npath = "var/audit.jsonl"\n'
        '[owner]\nemails = ["me@example.com"]\ntimezone = "Europe/Berlin"\n'
        '[[calendars]]\nname = "work"\nconnector = "google"\n'
        f'calendar_id = "{calendar_id}"\napi_endpoint = "{emu.endpoint}"\n'
        f'ca_file = "{ca_pem}"\nclient_secrets_file = "{secrets}"\n'
    )
    return config, root / "var" / "tokens" / "google-work.json"


def test_syncd_auth_google_end_to_end(
    emu: GoogleCalendarEmulator, ca: tuple[trustme.CA, Path], calendar_id: str, tmp_path: Path
) -> None:
    """The printed address is the consent page; following its redirect to the flow's local
    server stores the token (0600); ``syncd once`` then works with it; no token is printed."""
    config, token_file = auth_config(tmp_path, emu, ca[1], calendar_id)
    command = [
        sys.executable,
        "-m",
        "syncd.cli",
        "auth",
        "google",
        "--calendar",
        "work",
        "--no-browser",
        "--config",
        str(config),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert process.stdout is not None
        printed: list[str] = []
        while not any(line.startswith(emu.auth_uri) for line in printed):
            line = process.stdout.readline()
            assert line, f"no address printed: {printed}"
            printed.append(line.strip())
        url = next(line for line in printed if line.startswith(emu.auth_uri))
        redirect = consent(url, ca[1])
        assert urlsplit(redirect).hostname == "localhost"
        with urllib.request.urlopen(redirect, timeout=30) as reply:  # noqa: S310 - loopback
            assert reply.status == 200
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert f"in {token_file}" in stdout
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    saved = json.loads(token_file.read_text())
    for secret in (saved["token"], saved["refresh_token"], saved["client_secret"]):
        assert secret not in stdout + stderr + "\n".join(printed)
    [asked] = emu.consents[-1:]
    assert set(SCOPES) <= set(asked.scopes)
    once = syncd_once(tmp_path)
    assert once.returncode == 0, once.stderr
    assert saved["refresh_token"] not in once.stdout + once.stderr


def consent(url: str, ca_pem: Path) -> str:
    """Visit the consent page as a browser would; return where it redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    context = ssl.create_default_context(cafile=str(ca_pem))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(url, timeout=30)
    assert answer.value.code == 302
    location = str(answer.value.headers["Location"])
    assert re.search(r"[?&]code=", location)
    return location


def test_a_malformed_token_file_fails_its_calendar_only(
    emu: GoogleCalendarEmulator, ca: tuple[trustme.CA, Path], tmp_path: Path
) -> None:
    """``"scopes": 5`` in one calendar's token file: ``syncd once`` exits 1 with a message
    naming the file and the key, no traceback, and the other calendar is synced."""
    good, bad = emu.add_calendar("good"), emu.add_calendar("bad")
    tokens = tmp_path / "var" / "tokens"
    write_token(emu, tokens, "google-good.json")
    broken = write_token(emu, tokens, "google-bad.json")
    broken.write_text(json.dumps({**json.loads(broken.read_text()), "scopes": 5}))
    tables = "".join(
        f'[[calendars]]\nname = "{name}"\nconnector = "google"\ncalendar_id = "{calendar}"\n'
        f'api_endpoint = "{emu.endpoint}"\nca_file = "{ca[1]}"\n'
        for name, calendar in (("bad", bad), ("good", good))
    )
    (tmp_path / "syncd.toml").write_text(
        '[state]\npath = "var/state.db"\n[audit]\npath = "var/audit.jsonl"\n'
        '[owner]\nemails = ["me@example.com"]\ntimezone = "Europe/Berlin"\n' + tables
    )
    emu.clear_requests()
    once = syncd_once(tmp_path)
    assert once.returncode == 1, once.stderr
    assert f"the token file {broken}: scopes is not a list of strings" in once.stderr
    assert "Traceback" not in once.stdout + once.stderr
    listed = {r.path for r in api_calls(emu)}
    assert any(good.replace("@", "%40") in path for path in listed)
    assert not any(bad.replace("@", "%40") in path for path in listed)


def test_eight_threads_refresh_the_token_once(
    emu: GoogleCalendarEmulator, connect: Any, tmp_path: Path
) -> None:
    """The token endpoint answers slowly while eight threads find no access token: one
    refresh serves them all (it happens under the account's lock)."""
    write_token(emu, tmp_path / "tokens")
    connector = connect()
    emu.inject("slow", times=8, path_contains="/token", delay=0.2)
    emu.clear_requests()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            connector.get("event00001")
        except Exception as error:  # reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert len(token_requests(emu)) == 1
