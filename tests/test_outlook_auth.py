"""Signing in to Microsoft Graph offline: real MSAL against the fake identity platform
(:mod:`tests.identity_provider`) over HTTPS with the test CA, and the Graph emulator where a
token is used.

Device code (approved from another thread, and through ``syncd auth outlook`` as a real
process), the token cache 0600 in a 0700 folder, refresh-token rotation persisted and reused by
a second process, app-only with a client secret and with a certificate, a custom authority with
no instance discovery, and no token or secret in any output.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from structlog.testing import capture_logs

from connectors.outlook import OutlookConnector
from connectors.outlook.auth import AppCredentials, DelegatedCredentials, MsalHttp
from connectors.outlook.options import parse_options
from syncd.config import CalendarConfig
from syncd.errors import AuthError, ConnectorError, TransientError
from syncd.secrets import scrub
from tests.graph_emulator import GraphEmulator
from tests.identity_provider import IdentityProvider, write_certificate_file
from tests.test_outlook_contract import meeting
from tests.tls import ca_file

CLIENT = "syncd-test-client"
USER = "me@contoso.example"
GRAPH = "https://127.0.0.1:9/v1.0"  # never contacted by these sign-in tests


def calendar_config(root: Path, idp: IdentityProvider, **options: Any) -> CalendarConfig:
    values = {
        "client_id": CLIENT,
        "authority": idp.authority,
        "graph_url": GRAPH,
        "ca_file": str(ca_file(root)),
        **options,
    }
    return CalendarConfig(
        name="work",
        connector="outlook",
        options=values,
        source=root / "syncd.toml",
        index=0,
        tokens_dir=root / "var" / "tokens",
    )


CODE_LIFETIME = 30
"""Seconds a device code lives here: a sign-in that is never approved fails after that long
(MSAL polls until the code expires; Microsoft's 900 s would hang the test 15 minutes)."""


class Approving(io.StringIO):
    """``authorize``'s output: the user approves the code as soon as it is printed."""

    def __init__(self, idp: IdentityProvider, user: str) -> None:
        super().__init__()
        self.idp = idp
        self.user = user
        self.approved: list[str] = []

    def write(self, text: str) -> int:
        written = super().write(text)
        code = printed_code(self.getvalue())
        if code and not self.approved:
            self.approved.append(code)
            self.idp.approve(code, user=self.user)
        return written


def printed_code(text: str) -> str | None:
    """The device code the sign-in told the user to enter, if it has been printed."""
    found = re.search(r"enter the code ([A-Z0-9]+)", text)
    return found[1] if found else None


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider(device_code_lifetime=CODE_LIFETIME) as provider:
        provider.register_app(CLIENT)
        yield provider


def sign_in(calendar: CalendarConfig, idp: IdentityProvider, user: str = USER) -> str:
    """``OutlookConnector.authorize`` with the printed code approved at once."""
    out = Approving(idp, user)
    line = OutlookConnector.authorize(calendar, out, open_browser=False)
    assert len(out.approved) == 1, "no device code was printed"
    return out.getvalue() + line


def cached_secrets(path: Path) -> list[str]:
    """Every token value in an MSAL cache file."""
    data = json.loads(path.read_text())
    return [
        entry["secret"]
        for kind in ("AccessToken", "RefreshToken", "IdToken")
        for entry in data.get(kind, {}).values()
    ]


def refresh_token(path: Path) -> str:
    [entry] = json.loads(path.read_text())["RefreshToken"].values()
    return str(entry["secret"])


def test_device_code_sign_in_stores_the_cache_privately(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """The code and the address are printed; the cache is 0600 in a 0700 folder; no token
    is printed."""
    calendar = calendar_config(tmp_path, idp)
    output = sign_in(calendar, idp)
    cache = tmp_path / "var" / "tokens" / "outlook-work.json"
    assert f"{idp.base}/devicelogin" in output
    assert "enter the code" in output
    assert f"signed in as {USER}" in output
    assert str(cache) in output
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    assert all(secret not in output for secret in cached_secrets(cache))


def test_a_device_code_answer_without_a_message_is_explained(
    tmp_path: Path, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sign-in service leaves out the optional "message": syncd says where to go and
    which code to enter itself."""
    monkeypatch.setattr(idp, "device_message", False)
    output = sign_in(calendar_config(tmp_path, idp), idp)
    assert f"To sign in, open {idp.base}/devicelogin and enter the code " in output
    assert f"signed in as {USER}" in output


def test_tokens_come_from_the_cache_without_a_request(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """After sign-in, a new process's credentials read the cached access token: no token
    request; the mailbox is the signed-in account."""
    calendar = calendar_config(tmp_path, idp)
    sign_in(calendar, idp)
    before = len(idp.token_requests)
    credentials = DelegatedCredentials("work", parse_options(calendar))
    assert idp.validate(credentials.token()) == USER
    assert credentials.mailbox() == USER
    assert len(idp.token_requests) == before


def test_a_rotated_refresh_token_is_saved_and_reused_by_a_second_process(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """Process A refreshes (the refresh token rotates, the old one dies) and saves at once;
    process B, started afterwards, refreshes with the rotated token; A then reloads B's."""
    calendar = calendar_config(tmp_path, idp)
    sign_in(calendar, idp)
    cache = tmp_path / "var" / "tokens" / "outlook-work.json"
    first = refresh_token(cache)
    a = DelegatedCredentials("work", parse_options(calendar))
    a.token()
    a.renew()
    rotated = refresh_token(cache)
    assert rotated != first
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from syncd.config import CalendarConfig\n"
        "from connectors.outlook import OutlookConnector\n"
        "options = dict(__import__('json').loads(sys.argv[1]))\n"
        "calendar = CalendarConfig(name='work', connector='outlook', options=options,\n"
        "    source=Path(sys.argv[2]), index=0, tokens_dir=Path(sys.argv[3]))\n"
        "connector = OutlookConnector.from_config(calendar)\n"
        "print('valid' if connector.credentials.renew() else 'none')\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            json.dumps(dict(calendar.options)),
            str(calendar.source),
            str(calendar.tokens_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "valid"
    assert refresh_token(cache) != rotated
    assert all(secret not in done.stdout + done.stderr for secret in cached_secrets(cache))
    results = [r["result"] for r in idp.token_requests if r["grant_type"] == "refresh_token"]
    assert results[-2:] == ["ok", "ok"]
    assert idp.validate(a.renew()) == USER  # A reloads the file: B's rotated token works


def test_without_a_cache_the_calendar_needs_consent(tmp_path: Path, idp: IdentityProvider) -> None:
    """No cache file: AuthError telling what to run, logged once."""
    credentials = DelegatedCredentials("work", parse_options(calendar_config(tmp_path, idp)))
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(AuthError, match="syncd auth outlook --calendar work"):
                credentials.token()
    assert [e["event"] for e in logs].count("outlook.needs_consent") == 1


def test_a_revoked_refresh_token_needs_consent(tmp_path: Path, idp: IdentityProvider) -> None:
    """invalid_grant on refresh is "needs consent", never a traceback."""
    calendar = calendar_config(tmp_path, idp)
    sign_in(calendar, idp)
    idp.revoke_refresh_tokens()
    credentials = DelegatedCredentials("work", parse_options(calendar))
    with pytest.raises(AuthError, match=r"needs consent.*invalid_grant"):
        credentials.renew()


def test_app_only_with_a_client_secret(tmp_path: Path, idp: IdentityProvider) -> None:
    """A client secret from a 0600 file; the token acts for the app; the secret never shows
    in the IdP's records."""
    secret = "app-secret-" + os.urandom(8).hex()
    idp.register_app("app-secret-client", secret=secret)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    options = {
        "client_id": "app-secret-client",
        "client_secret_file": str(secret_file),
        "user": USER,
    }
    calendar = calendar_config(tmp_path, idp, **options)
    credentials = AppCredentials("work", parse_options(calendar))
    assert idp.validate(credentials.token()) == "app:app-secret-client"
    assert idp.token_requests[-1]["grant_type"] == "client_credentials"
    assert secret not in json.dumps(idp.token_requests)
    assert scrub(f"leaked {secret}") == "leaked ***"
    line = OutlookConnector.authorize(calendar, io.StringIO(), open_browser=False)
    assert "nothing to store" in line


def test_app_only_with_a_certificate(tmp_path: Path, idp: IdentityProvider) -> None:
    """A PEM file with key and certificate: the thumbprint is derived, the assertion signed."""
    path, cert_pem, _thumbprint = write_certificate_file(tmp_path)
    idp.register_app("app-cert-client", certificate_pem=cert_pem)
    calendar = calendar_config(
        tmp_path, idp, client_id="app-cert-client", certificate_file=str(path), user=USER
    )
    credentials = AppCredentials("work", parse_options(calendar))
    assert idp.validate(credentials.token()) == "app:app-cert-client"
    assert idp.validate(credentials.renew()) == "app:app-cert-client"


def test_a_certificate_file_others_can_read_is_refused(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """A private key open to group or others is an AuthError that says how to fix it."""
    path, _cert_pem, _thumbprint = write_certificate_file(tmp_path)
    path.chmod(0o644)
    calendar = calendar_config(
        tmp_path, idp, client_id="app-cert-client", certificate_file=str(path), user=USER
    )
    with pytest.raises(AuthError, match="chmod 600"):
        AppCredentials("work", parse_options(calendar)).token()


def test_a_custom_authority_skips_instance_discovery(
    tmp_path: Path, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing goes to login.microsoftonline.com and the IdP sees no discovery call."""
    hosts: list[str] = []
    original = MsalHttp.request

    def recording(self: MsalHttp, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        hosts.append(str(url).split("/")[2])
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(MsalHttp, "request", recording)
    idp.requests.clear()
    calendar = calendar_config(tmp_path, idp)
    sign_in(calendar, idp)
    assert set(hosts) == {idp.base.removeprefix("https://")}
    assert not [path for _method, path in idp.requests if "discovery" in path]


def test_ca_variables_in_the_environment_do_not_replace_ca_file(
    tmp_path: Path, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE pointing elsewhere changes nothing: ca_file is trusted."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "nowhere.pem"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "nowhere.pem"))
    assert "signed in" in sign_in(calendar_config(tmp_path, idp), idp)


def test_syncd_auth_outlook_as_a_process(tmp_path: Path, idp: IdentityProvider) -> None:
    """``syncd auth outlook --calendar work`` prints the code and the address, waits for the
    sign-in, stores the cache and names it; no token in its output."""
    ca = ca_file(tmp_path)
    (tmp_path / "syncd.toml").write_text(
        '[state]\npath = "var/state.db"\n[audit]\npath = "var/audit.jsonl"\n'
        '[owner]\nemails = ["me@contoso.example"]\n'
        f'[[calendars]]\nname = "work"\nconnector = "outlook"\nclient_id = "{CLIENT}"\n'
        f'authority = "{idp.authority}"\ngraph_url = "{GRAPH}"\nca_file = "{ca}"\n'
    )
    command = [
        sys.executable,
        "-m",
        "syncd.cli",
        "auth",
        "outlook",
        "--calendar",
        "work",
        "--config",
        str(tmp_path / "syncd.toml"),
        "--no-browser",
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"{idp.base}/devicelogin" in first
        code = printed_code(first)
        assert code, first
        idp.approve(code, user=USER)
        rest, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    cache = tmp_path / "var" / "tokens" / "outlook-work.json"
    assert str(cache) in rest
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert all(secret not in first + rest + errors for secret in cached_secrets(cache))


def test_syncd_once_refreshes_with_the_token_another_process_rotated(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """Delegated sign-in against the Graph emulator: this process meets a 401, renews once
    (the refresh token rotates and is saved); then ``syncd once`` as a second process meets
    a 401 too and renews with the rotated token from the file. No token in its output."""
    with GraphEmulator(idp=idp) as emu:
        default = emu.add_mailbox(USER)
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        emu.put_event(USER, default, meeting("m", start))
        calendar = calendar_config(tmp_path, idp, graph_url=emu.base)
        (tmp_path / "syncd.toml").write_text(
            '[state]\npath = "var/state.db"\n[audit]\npath = "var/audit.jsonl"\n'
            f'[owner]\nemails = ["{USER}"]\n[[calendars]]\nname = "work"\n'
            'connector = "outlook"\n'
            + "".join(f"{key} = {json.dumps(value)}\n" for key, value in calendar.options.items())
        )
        sign_in(calendar, idp)
        cache = tmp_path / "var" / "tokens" / "outlook-work.json"
        first = OutlookConnector.from_config(calendar)
        assert len(first.list_changes(None, {}).upserts) == 1
        idp.expire_access_tokens()
        signed_in = refresh_token(cache)
        assert len(first.list_changes(None, {}).upserts) == 1  # a 401, renewed once
        rotated = refresh_token(cache)
        assert rotated != signed_in
        idp.expire_access_tokens()
        done = subprocess.run(
            [sys.executable, "-m", "syncd.cli", "once", "--config", str(tmp_path / "syncd.toml")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "work: baseline of 1 instances" in done.stdout
        assert refresh_token(cache) not in (rotated, signed_in)
        refreshes = [r["result"] for r in idp.token_requests if r["grant_type"] == "refresh_token"]
        assert refreshes[-2:] == ["ok", "ok"]
        assert [r.status for r in emu.requests].count(401) == 2
        assert all(secret not in done.stdout + done.stderr for secret in cached_secrets(cache))
        first.close()


def test_a_wrong_client_secret_is_an_auth_error_logged_once(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """The sign-in service refuses the secret: AuthError naming its error, logged once; the
    secret is not in the message."""
    idp.register_app("app-wrong-secret", secret="the-right-secret-000")  # noqa: S106 - a test app
    secret_file = tmp_path / "secret"
    secret_file.write_text("a-wrong-secret-0000\n")
    secret_file.chmod(0o600)
    calendar = calendar_config(
        tmp_path,
        idp,
        client_id="app-wrong-secret",
        user=USER,
        **{"client_secret_file": str(secret_file)},
    )
    credentials = AppCredentials("work", parse_options(calendar))
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(AuthError, match="app-only sign-in failed") as error:
                credentials.token()
            assert "a-wrong-secret-0000" not in str(error.value)
    assert [e["event"] for e in logs].count("outlook.app_sign_in_failed") == 1


def test_a_damaged_private_key_is_named(tmp_path: Path, idp: IdentityProvider) -> None:
    """A certificate file whose key cannot be read is an AuthError before any request."""
    path, _cert_pem, thumbprint = write_certificate_file(tmp_path)
    text = path.read_text()
    start = text.index("\n", text.index("PRIVATE KEY-----")) + 1
    path.write_text(text[:start] + "AAAA" + text[start + 4 :])
    calendar = calendar_config(
        tmp_path, idp, client_id="app-cert-client", certificate_file=str(path), user=USER
    )
    before = len(idp.token_requests)
    with pytest.raises(AuthError, match="private key in certificate_file cannot be read"):
        AppCredentials("work", parse_options(calendar)).token()
    assert len(idp.token_requests) == before
    assert thumbprint


def test_an_unreachable_sign_in_service_is_transient(tmp_path: Path) -> None:
    """Nothing listening at the authority: TransientError, the next cycle tries again."""
    calendar = CalendarConfig(
        name="work",
        connector="outlook",
        options={
            "client_id": CLIENT,
            "authority": "https://127.0.0.1:9/contoso",
            "graph_url": GRAPH,
            "ca_file": str(ca_file(tmp_path)),
            "timeout": 5,
        },
        source=tmp_path / "syncd.toml",
        index=0,
        tokens_dir=tmp_path / "tokens",
    )
    with pytest.raises(TransientError, match="cannot reach the sign-in service"):
        OutlookConnector.authorize(calendar, io.StringIO(), open_browser=False)


@pytest.mark.parametrize("content", [b"not a certificate\n", b""])
def test_a_ca_file_that_is_not_pem_is_a_tls_error_naming_it(
    tmp_path: Path, idp: IdentityProvider, content: bytes
) -> None:
    """TLS cannot use ca_file: a configuration error naming ca_file, not "cannot reach"."""
    bad = tmp_path / "ca.txt"
    bad.write_bytes(content)
    calendar = calendar_config(tmp_path, idp, ca_file=str(bad))
    with pytest.raises(ConnectorError, match=f"TLS .* ca_file {bad}") as raised:
        OutlookConnector.authorize(calendar, io.StringIO(), open_browser=False)
    assert type(raised.value) is ConnectorError
    assert "cannot reach" not in str(raised.value)


def test_a_ca_file_of_another_ca_is_a_tls_error_naming_it(
    tmp_path: Path, idp: IdentityProvider
) -> None:
    """The sign-in service's certificate is not signed by ca_file's CA: a TLS error."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    calendar = calendar_config(tmp_path, idp, ca_file=str(other))
    with pytest.raises(ConnectorError, match="certificate is not trusted by ca_file"):
        OutlookConnector.authorize(calendar, io.StringIO(), open_browser=False)
