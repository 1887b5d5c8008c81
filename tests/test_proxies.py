"""Proxies from the environment, through the real connectors: the Google emulator, the Graph
emulator with the fake identity platform (both over HTTPS with the test CA) and Radicale for
CalDAV (plain HTTP, and HTTPS), each reached through :class:`tests.connect_proxy.ConnectProxy`.

A listing goes through the proxy (it saw the tunnel or the forwarded request), ``NO_PROXY``
bypasses it, ``ca_file`` decides trust whatever ``REQUESTS_CA_BUNDLE`` says, a proxy that
refuses or is down is a ``TransientError`` naming the calendar and the proxy, and the proxy's
credentials reach no log line (syncd's or a library's, at debug level) and no message.

The servers listen on 127.0.0.1, which no HTTP stack here exempts from the proxy unless
``NO_PROXY`` names it: the tests that want the proxy set ``NO_PROXY`` to another host.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import queue
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import structlog
import trustme

from connectors.caldav import CalDAVConnector
from connectors.google import GoogleConnector
from connectors.google.account import forget_accounts
from connectors.google.auth import authorize
from connectors.outlook import OutlookConnector
from syncd import proxies
from syncd.config import CalendarConfig
from syncd.doctor import diagnose
from syncd.errors import ConnectorError, TransientError
from syncd.logs import configure_logging
from syncd.proxies import ProxyFailure, ProxyUnsupported, open_tunnel, parse_proxy, proxy_for
from syncd.secrets import scrub
from tests.connect_proxy import ConnectProxy
from tests.contract import START, listed, sample
from tests.google_emulator import GoogleCalendarEmulator
from tests.graph_emulator import GraphEmulator
from tests.harness import CONFIG
from tests.identity_provider import IdentityProvider
from tests.radicale_process import RadicaleProcess, free_port
from tests.radicale_server import PASSWORD, USER, HTTPOutside, radicale
from tests.test_google_contract import google_config, quick, write_token
from tests.test_outlook_contract import meeting
from tests.tls import ca_file, server_context, test_ca

PROXY_USER = "proxy-user-5d2e"
PROXY_PASSWORD = "s3cret@proxy:9f1c/7a"  # noqa: S105 - the test proxy's test password
"""Characters a URL must percent-encode: the decoded value must reach the proxy."""
SECRETS = [
    PROXY_PASSWORD,
    quote(PROXY_PASSWORD, safe=""),
    base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode(),
]
"""What scrubbing hides (a user name, like CalDAV's, is not registered as a secret)."""
HIDDEN = [PROXY_USER, *SECRETS]
"""What syncd never prints: it names a proxy by host and port only."""
REFUSED_407 = (
    "HTTP 407 Proxy Authentication Required (check the user and password in the proxy URL)"
)
"""How every connector words a proxy's 407."""
ELSEWHERE = "proxy-exempt.example"
"""A NO_PROXY that exempts none of the test servers."""
VARIABLES = [
    variable
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    for variable in (name, name.upper())
] + ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"]
CALDAV_ENV = "SYNCD_TEST_CALDAV_PASSWORD"
GOOGLE_EVENT = {
    "id": "event00001",
    "summary": "Coaching",
    "start": {"dateTime": "2026-12-01T10:00:00Z"},
    "end": {"dateTime": "2026-12-01T11:00:00Z"},
}
CLIENT = "syncd-proxies"
SECRET = "proxies-secret-0123456789"  # noqa: S105 - the fake IdP's test app secret


# --- environment, logs ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or CA variable from the machine running the tests."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(CALDAV_ENV, PASSWORD)


def route(monkeypatch: pytest.MonkeyPatch, proxy_url: str, no_proxy: str = ELSEWHERE) -> None:
    """HTTPS_PROXY and HTTP_PROXY at ``proxy_url``, NO_PROXY as given."""
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", no_proxy)


def with_credentials(proxy: ConnectProxy, password: str = PROXY_PASSWORD) -> str:
    """The proxy's URL with the test user and ``password``, percent-encoded."""
    return proxy.url(quote(PROXY_USER, safe=""), quote(password, safe=""))


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as running:
        yield running


@pytest.fixture
def wrong_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE name a bundle of another CA."""
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(other))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """Everything logged, through syncd's pipeline and raw from the libraries, at debug."""
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    configure_logging("debug", stream=stream, json=True)
    yield lambda: stream.getvalue() + caplog.text
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_RedactingHandler":
            root.removeHandler(handler)


def assert_hidden(*texts: str, hidden: list[str] = HIDDEN) -> None:
    """No part of the proxy's credentials in any of ``texts``."""
    for text in texts:
        for secret in hidden:
            assert secret not in text


def naming(error: pytest.ExceptionInfo[Exception], proxy: ConnectProxy) -> str:
    """The failure's message, which names the calendar and the proxy."""
    message = str(error.value)
    assert message.startswith("calendar 'work': ")
    assert proxy.address in message
    return message


# --- syncd.proxies ---------------------------------------------------------------------------


def test_the_scheme_picks_the_variable_and_lower_case_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """https:// takes HTTPS_PROXY, http:// HTTP_PROXY; https_proxy beats HTTPS_PROXY; a proxy
    without scheme or port is http:// on port 80."""
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.example:3128")
    monkeypatch.setenv("https_proxy", "http://lower.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "plain.example")
    secure = proxy_for("https://www.googleapis.com/calendar/v3/")
    plain = proxy_for("http://127.0.0.1:8080/")
    assert (str(secure), str(plain)) == ("lower.example:3128", "plain.example:80")


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("127.0.0.1", "https://127.0.0.1:8443/", True),
        ("10.0.0.0/8,example.org", "https://10.1.2.3/", True),
        (".corp.example", "https://dav.corp.example/", True),
        ("corp.example", "https://dav.corp.example/", True),
        ("*", "https://graph.microsoft.com/", True),
        ("localhost", "https://127.0.0.1:8443/", False),
        ("", "https://127.0.0.1:8443/", False),
        ("corp.example", "https://graph.microsoft.com/", False),
    ],
)
def test_no_proxy_exempts_what_it_names_and_loopback_only_if_named(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, bypassed: bool
) -> None:
    """Host names and their suffixes, IP addresses, CIDR blocks and ``*``; 127.0.0.1 is not
    exempt by default."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (proxy_for(url) is None) is bypassed


def test_proxy_credentials_are_scrubbed_and_never_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the environment registers the password (as written and decoded) and the Basic
    credentials for scrubbing; a Proxy prints as host:port."""
    url = f"http://{quote(PROXY_USER)}:{quote(PROXY_PASSWORD, safe='')}@proxy.example:3128"
    monkeypatch.setenv("HTTPS_PROXY", url)
    found = proxy_for("https://graph.microsoft.com/v1.0/")
    assert found is not None
    assert (str(found), repr(found)) == (
        "proxy.example:3128",
        "Proxy(host='proxy.example', port=3128)",
    )
    assert_hidden(scrub(f"seen: {PROXY_PASSWORD} {found.authorization} {url}"), hidden=SECRETS)


def test_a_proxy_syncd_cannot_use_is_named_without_its_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A SOCKS proxy is refused by scheme, host and port."""
    password = quote(PROXY_PASSWORD, safe="")
    monkeypatch.setenv("HTTPS_PROXY", f"socks5://{PROXY_USER}:{password}@proxy.example:1080")
    with pytest.raises(ProxyUnsupported) as caught:
        proxy_for("https://graph.microsoft.com/")
    assert "socks5://proxy.example:1080" in str(caught.value)
    assert_hidden(str(caught.value))


# --- Google ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google() -> Iterator[GoogleCalendarEmulator]:
    with GoogleCalendarEmulator(ssl_context=server_context()) as emulator:
        yield emulator
        assert emulator.internal_errors == []


@pytest.fixture(scope="module")
def google_http() -> Iterator[GoogleCalendarEmulator]:
    with GoogleCalendarEmulator() as emulator:
        yield emulator


@pytest.fixture
def google_connector(tmp_path: Path) -> Iterator[Callable[[GoogleCalendarEmulator], Any]]:
    """A Google connector on a fresh emulator calendar with one event; the token file holds
    no access token, so the first request refreshes it."""
    made: list[GoogleConnector] = []

    def make(emu: GoogleCalendarEmulator, **extra: Any) -> GoogleConnector:
        calendar = emu.add_calendar(f"work {uuid.uuid4().hex[:8]}")
        emu.put_event(calendar, dict(GOOGLE_EVENT))
        write_token(emu, tmp_path / "tokens")
        options: dict[str, Any] = {"calendar_id": calendar}
        if emu.base.startswith("https:"):
            options["ca_file"] = str(ca_file(tmp_path / "ca"))
        options.update(extra)
        made.append(quick(GoogleConnector.from_config(google_config(tmp_path, emu, **options))))
        return made[-1]

    yield make
    for connector in made:
        connector.close()
    forget_accounts()


def authority_of(url: str) -> str:
    return urlsplit(url).netloc


def test_google_refreshes_and_lists_through_a_connect_tunnel(
    google: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    wrong_bundle: None,
    logs: Callable[[], str],
) -> None:
    """The token refresh and the listing reach the emulator only through CONNECT, with the
    proxy's credentials; ca_file is trusted although REQUESTS_CA_BUNDLE names another CA."""
    connector = google_connector(google)
    route(monkeypatch, with_credentials(proxy))
    google.clear_requests()
    delta = connector.list_changes(None, {})
    assert list(listed(delta)) == ["event00001"]
    assert set(proxy.tunnels) == {authority_of(google.base)}
    assert [r.path for r in google.requests if r.path == "/token"] == ["/token"]
    assert proxy.refused == []
    assert_hidden(logs())


def test_google_goes_direct_to_a_host_no_proxy_names(
    google: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """NO_PROXY naming 127.0.0.1: no tunnel, and the listing works."""
    connector = google_connector(google)
    route(monkeypatch, with_credentials(proxy), no_proxy="localhost,127.0.0.1")
    assert list(listed(connector.list_changes(None, {}))) == ["event00001"]
    assert proxy.tunnels == []


def test_google_forwards_plain_http_with_absolute_uris(
    google_http: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An http:// endpoint (an emulator) is reached as a plain proxy request, credentials
    included, not through a tunnel."""
    connector = google_connector(google_http)
    route(monkeypatch, with_credentials(proxy))
    assert list(listed(connector.list_changes(None, {}))) == ["event00001"]
    assert proxy.tunnels == []
    assert proxy.forwarded
    assert all(uri.startswith(google_http.base + "/") for uri in proxy.forwarded)
    assert any(uri == google_http.token_uri for uri in proxy.forwarded)


def test_google_with_wrong_proxy_credentials_is_transient_and_names_the_proxy(
    google: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    """A 407 to CONNECT: one try (another would meet the same answer), a TransientError
    naming the proxy and the status, never the credentials."""
    connector = google_connector(google)
    route(monkeypatch, with_credentials(proxy, password="wrong-" + PROXY_PASSWORD))
    with pytest.raises(TransientError) as caught:
        connector.list_changes(None, {})
    assert "407" in naming(caught, proxy)
    assert len(proxy.refused) == 1
    assert_hidden(str(caught.value), repr(caught.value), logs())


def test_google_with_the_proxy_down_is_transient_and_names_the_proxy(
    google: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connection refused by the proxy's address: retried, then a TransientError."""
    connector = google_connector(google)
    route(monkeypatch, with_credentials(proxy))
    proxy.stop()
    with pytest.raises(TransientError) as caught:
        connector.list_changes(None, {})
    assert "cannot connect to the proxy" in naming(caught, proxy)
    assert_hidden(str(caught.value))


class _Lines(io.TextIOBase):
    """A text stream whose lines another thread reads from a queue."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self.lines.put(line)
        return len(text)


def _direct(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    """A browser's request, never through a proxy: (status, Location)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context), NoRedirect
    )
    try:
        with opener.open(url, timeout=30) as reply:
            return reply.status, ""
    except urllib.error.HTTPError as answer:
        return answer.code, str(answer.headers.get("Location", ""))


def test_google_consent_exchanges_its_code_through_the_proxy(
    google: GoogleCalendarEmulator,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    wrong_bundle: None,
) -> None:
    """``syncd auth google``: the browser's visits are its own, the code-for-token exchange
    goes through the proxy and trusts ca_file."""
    secrets = tmp_path / "client.json"
    secrets.write_text(json.dumps(google.client_secrets()))
    ca = ca_file(tmp_path / "ca")
    calendar = google_config(
        tmp_path, google, calendar_id="primary", ca_file=str(ca), client_secrets_file=str(secrets)
    )
    route(monkeypatch, with_credentials(proxy))
    out = _Lines()
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(_run(authorize, calendar, out)), daemon=True
    )
    worker.start()
    line = out.lines.get(timeout=30)
    while not line.startswith(google.auth_uri):
        line = out.lines.get(timeout=30)
    status, redirect = _direct(line, ssl.create_default_context(cafile=str(ca)))
    assert status == 302
    assert urlsplit(redirect).hostname == "localhost"
    assert _direct(redirect)[0] == 200
    worker.join(timeout=30)
    [stored] = result
    assert isinstance(stored, str), stored
    assert stored.startswith("stored the Google token")
    assert proxy.tunnels == [authority_of(google.base)]


def _run(function: Callable[..., object], calendar: CalendarConfig, out: io.TextIOBase) -> object:
    try:
        return function(calendar, out, open_browser=False)
    except Exception as error:  # reported by the test's assertion
        return error


# --- Outlook ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[IdentityProvider, GraphEmulator, Path]]:
    root = tmp_path_factory.mktemp("graph")
    secret = root / "secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    with IdentityProvider() as idp, GraphEmulator(idp=idp) as emu:
        idp.register_app(CLIENT, secret=SECRET)
        yield idp, emu, root


@pytest.fixture
def outlook(
    graph: tuple[IdentityProvider, GraphEmulator, Path], tmp_path: Path
) -> Iterator[Callable[..., OutlookConnector]]:
    """An app-only Outlook connector on a fresh mailbox with one meeting; retries not slept."""
    idp, emu, root = graph
    made: list[OutlookConnector] = []

    def make(ca: Path | None = None) -> OutlookConnector:
        user = f"user-{uuid.uuid4().hex[:8]}@contoso.example"
        emu.add_mailbox(user)
        calendar_id = emu.add_calendar(user, "Work")
        emu.put_event(user, calendar_id, meeting("Coaching", START))
        options = {
            "client_id": CLIENT,
            "authority": idp.authority,
            "graph_url": emu.base,
            "ca_file": str(ca or ca_file(root)),
            "user": user,
            "calendar": calendar_id,
            "client_secret_file": str(root / "secret"),
            "timeout": 10,
        }
        calendar = CalendarConfig(
            name="work",
            connector="outlook",
            options=options,
            source=tmp_path / "syncd.toml",
            index=0,
            tokens_dir=tmp_path / "tokens",
        )
        connector = OutlookConnector.from_config(calendar)
        connector.session.sleep = lambda _seconds: None
        connector.clock = lambda: START  # the meeting's day, whatever today is
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.close()


def test_outlook_signs_in_and_lists_through_connect_tunnels(
    graph: tuple[IdentityProvider, GraphEmulator, Path],
    outlook: Callable[..., OutlookConnector],
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    wrong_bundle: None,
    logs: Callable[[], str],
) -> None:
    """MSAL's authority and token calls and Graph's listing each go through CONNECT;
    ca_file is trusted although REQUESTS_CA_BUNDLE names another CA."""
    idp, emu, _root = graph
    connector = outlook()
    route(monkeypatch, with_credentials(proxy))
    delta = connector.list_changes(None, {})
    assert len(listed(delta)) == 1
    assert set(proxy.tunnels) == {authority_of(idp.base), authority_of(emu.base)}
    assert proxy.refused == []
    assert_hidden(logs())


def test_outlook_goes_direct_to_hosts_no_proxy_names(
    outlook: Callable[..., OutlookConnector],
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CIDR block in NO_PROXY covers the sign-in service and Graph."""
    connector = outlook()
    route(monkeypatch, with_credentials(proxy), no_proxy="127.0.0.0/8")
    assert len(listed(connector.list_changes(None, {}))) == 1
    assert proxy.tunnels == []


def test_outlook_trusts_ca_file_even_when_the_environment_names_the_right_ca(
    outlook: Callable[..., OutlookConnector],
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Through the proxy, a ca_file of another CA fails TLS although REQUESTS_CA_BUNDLE would
    have trusted the server: the environment does not decide trust."""
    other = tmp_path / "other" / "ca.pem"
    other.parent.mkdir()
    trustme.CA().cert_pem.write_to_path(str(other))
    connector = outlook(ca=other)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file(tmp_path / "right")))
    route(monkeypatch, with_credentials(proxy))
    with pytest.raises(ConnectorError, match="TLS with the sign-in service failed"):
        connector.list_changes(None, {})
    assert proxy.tunnels


def test_outlook_with_wrong_proxy_credentials_is_transient_and_names_the_proxy(
    outlook: Callable[..., OutlookConnector],
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    logs: Callable[[], str],
) -> None:
    """A 407 to MSAL's CONNECT: one try, a TransientError naming the proxy, the status and
    where the credentials are, none of them shown."""
    connector = outlook()
    route(monkeypatch, with_credentials(proxy, password="wrong-" + PROXY_PASSWORD))
    with pytest.raises(TransientError) as caught:
        connector.list_changes(None, {})
    assert REFUSED_407 in naming(caught, proxy)
    assert len(proxy.refused) == 1
    assert_hidden(str(caught.value), repr(caught.value), logs())


def test_outlook_graph_is_not_retried_when_the_proxy_refuses_the_tunnel(
    outlook: Callable[..., OutlookConnector],
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Signed in, then the proxy password is wrong: Graph's CONNECT is refused once (retries
    would lock the account on a corporate proxy), with the proxy's wording."""
    connector = outlook()
    route(monkeypatch, with_credentials(proxy))
    connector.list_changes(None, {})
    route(monkeypatch, with_credentials(proxy, password="wrong-" + PROXY_PASSWORD))
    connector.session.http.close()  # the next request needs a new tunnel
    proxy.clear()
    with pytest.raises(TransientError) as caught:
        connector.list_changes(None, {})
    assert REFUSED_407 in naming(caught, proxy)
    assert len(proxy.refused) == 1


def test_outlook_with_the_proxy_down_is_transient_and_names_the_proxy(
    outlook: Callable[..., OutlookConnector],
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy's port is closed: a TransientError naming it."""
    connector = outlook()
    route(monkeypatch, with_credentials(proxy))
    proxy.stop()
    with pytest.raises(TransientError) as caught:
        connector.list_changes(None, {})
    naming(caught, proxy)
    assert_hidden(str(caught.value))


# --- CalDAV ----------------------------------------------------------------------------------


def caldav(tmp_path: Path, url: str, **extra: Any) -> CalDAVConnector:
    options = {"url": url, "username": USER, "password_env": CALDAV_ENV, **extra}
    calendar = CalendarConfig(
        name="work", connector="caldav", options=options, source=tmp_path / "syncd.toml", index=0
    )
    connector = CalDAVConnector.from_config(calendar)
    connector.session.sleep = lambda _seconds: None
    return connector


@pytest.fixture
def dav_calendar() -> str:
    """A fresh Radicale calendar (plain HTTP) with one event, made before any proxy is set."""
    server = radicale()
    url = server.new_calendar()
    HTTPOutside(server, url).put("a.ics", sample("a"))
    return url


def test_caldav_forwards_plain_http_through_the_proxy(
    dav_calendar: str,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    logs: Callable[[], str],
) -> None:
    """http:// is reached with absolute URIs through the proxy, its credentials included."""
    route(monkeypatch, with_credentials(proxy))
    connector = caldav(tmp_path, dav_calendar)
    try:
        assert list(listed(connector.list_changes(None, {}))) == ["a.ics"]
    finally:
        connector.close()
    assert proxy.forwarded
    assert all(uri.startswith(dav_calendar) for uri in proxy.forwarded)
    assert_hidden(logs())


def test_caldav_goes_direct_to_a_host_no_proxy_names(
    dav_calendar: str, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """NO_PROXY naming the server's address: nothing reaches the proxy."""
    route(monkeypatch, with_credentials(proxy), no_proxy="127.0.0.1")
    connector = caldav(tmp_path, dav_calendar)
    try:
        assert list(listed(connector.list_changes(None, {}))) == ["a.ics"]
    finally:
        connector.close()
    assert proxy.forwarded == proxy.tunnels == []


def test_caldav_with_wrong_proxy_credentials_is_transient_and_names_the_proxy(
    dav_calendar: str,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    logs: Callable[[], str],
) -> None:
    """The proxy answers 407 to a forwarded request: a TransientError naming it."""
    route(monkeypatch, with_credentials(proxy, password="wrong-" + PROXY_PASSWORD))
    connector = caldav(tmp_path, dav_calendar)
    try:
        with pytest.raises(TransientError) as caught:
            connector.list_changes(None, {})
    finally:
        connector.close()
    assert "HTTP 407" in naming(caught, proxy)
    assert_hidden(str(caught.value), repr(caught.value), logs())


def test_caldav_with_the_proxy_down_is_transient_and_names_the_proxy(
    dav_calendar: str, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The proxy's port is closed: retried, then a TransientError naming it."""
    route(monkeypatch, with_credentials(proxy))
    proxy.stop()
    connector = caldav(tmp_path, dav_calendar)
    try:
        with pytest.raises(TransientError) as caught:
            connector.list_changes(None, {})
    finally:
        connector.close()
    assert "the proxy cannot be reached or refused to connect" in naming(caught, proxy)


def test_caldav_refuses_a_proxy_it_cannot_use_by_name(
    dav_calendar: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A SOCKS proxy in HTTP_PROXY: a ConnectorError naming it, not its password."""
    monkeypatch.setenv(
        "HTTP_PROXY", f"socks5://{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}@127.0.0.1:1"
    )
    connector = caldav(tmp_path, dav_calendar)
    try:
        with pytest.raises(ConnectorError) as caught:
            connector.list_changes(None, {})
    finally:
        connector.close()
    assert "socks5://127.0.0.1:1" in str(caught.value)
    assert not isinstance(caught.value, TransientError)
    assert_hidden(str(caught.value))


class TLSRadicale(RadicaleProcess):
    """Radicale over HTTPS with a certificate of the test CA (htpasswd for the test user)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        leaf = test_ca().issue_cert("127.0.0.1", "localhost")
        self.certificate, self.key = root / "cert.pem", root / "key.pem"
        leaf.cert_chain_pems[0].write_to_path(str(self.certificate))
        leaf.private_key_pem.write_to_path(str(self.key))
        self.root = root
        self.storage = root / "storage"
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        users = root / "users"
        users.write_text(f"{USER}:{PASSWORD}\n", encoding="utf-8")
        config = root / "radicale.conf"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\nssl = True\n"
            f"certificate = {self.certificate}\nkey = {self.key}\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\n"
            "htpasswd_encryption = plain\ndelay = 0\n"
            f"[storage]\nfilesystem_folder = {self.storage}\n[logging]\nlevel = warning\n",
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

    def new_calendar(self) -> str:
        """MKCALENDAR a collection with one event, directly (no proxy); its URL."""
        url = f"{self.base}/{USER}/{uuid.uuid4().hex}/"
        self._send("MKCALENDAR", url)
        self._send("PUT", url + "a.ics", sample("a"), {"Content-Type": "text/calendar"})
        return url

    def _send(
        self, method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - a loopback test server
            url,
            data=body or None,
            method=method,
            headers={"Authorization": f"Basic {token}", **(headers or {})},
        )
        context = ssl.create_default_context()
        test_ca().configure_trust(context)
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        with opener.open(request, timeout=10) as reply:
            assert reply.status in (200, 201, 204)


@pytest.fixture(scope="module")
def tls_radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSRadicale]:
    server = TLSRadicale(tmp_path_factory.mktemp("radicale-tls"))
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def test_caldav_over_https_tunnels_and_trusts_ca_file(
    tls_radicale: TLSRadicale,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    wrong_bundle: None,
    logs: Callable[[], str],
) -> None:
    """https:// goes through CONNECT; ca_file is trusted although REQUESTS_CA_BUNDLE names
    another CA."""
    url = tls_radicale.new_calendar()
    route(monkeypatch, with_credentials(proxy))
    connector = caldav(tmp_path, url, ca_file=str(ca_file(tmp_path / "ca")))
    try:
        assert list(listed(connector.list_changes(None, {}))) == ["a.ics"]
    finally:
        connector.close()
    assert set(proxy.tunnels) == {authority_of(tls_radicale.base)}
    assert proxy.forwarded == []
    assert_hidden(logs())


def test_caldav_over_https_distrusts_the_environments_ca_when_ca_file_differs(
    tls_radicale: TLSRadicale, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through the tunnel, a ca_file of another CA fails TLS although REQUESTS_CA_BUNDLE
    would have trusted the server."""
    url = tls_radicale.new_calendar()
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file(tmp_path / "right")))
    route(monkeypatch, with_credentials(proxy))
    connector = caldav(tmp_path, url, ca_file=str(other))
    try:
        with pytest.raises(ConnectorError, match="certificate not trusted"):
            connector.list_changes(None, {})
    finally:
        connector.close()
    assert proxy.tunnels


# --- review fixes: reading the environment --------------------------------------------------


class _NoWalk(dict[str, str]):
    """An environment that may be asked for a name but not walked."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the whole environment was read")

    def items(self) -> Any:
        raise AssertionError("the whole environment was read")


def test_the_environment_is_asked_for_proxy_variables_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request asks for a proxy: never by walking the environment (35 variables made
    each merge 17 times slower), with or without a proxy set."""
    fake = _NoWalk({f"SOME_VARIABLE_{n}": "x" for n in range(35)})
    monkeypatch.setattr(proxies, "os", type("Os", (), {"environ": fake, "name": "posix"}))
    assert proxy_for("https://graph.microsoft.com/v1.0/me") is None
    fake["HTTPS_PROXY"] = "http://proxy.example:3128"
    assert str(proxy_for("https://graph.microsoft.com/v1.0/me")) == "proxy.example:3128"


def test_a_remembered_choice_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Choices are remembered with the values they were made from: a changed proxy or
    NO_PROXY is seen at once."""
    url = "https://graph.microsoft.com/v1.0/me"
    monkeypatch.setenv("HTTPS_PROXY", "http://one.example:3128")
    assert str(proxy_for(url)) == "one.example:3128"
    monkeypatch.setenv("https_proxy", "http://two.example:3128")
    assert str(proxy_for(url)) == "two.example:3128"
    monkeypatch.setenv("no_proxy", "microsoft.com")
    assert proxy_for(url) is None
    monkeypatch.setenv("https_proxy", "")  # an empty lower-case variable wins: no proxy
    monkeypatch.delenv("no_proxy")
    assert proxy_for(url) is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("*.corp.example", "https://dav.corp.example/", True),
        ("*.corp.example", "https://corp.example/", True),
        ("*.corp.example", "https://notcorp.example/", False),
        ("corp.example:8443", "https://dav.corp.example:8443/", True),
        ("corp.example:8443", "https://dav.corp.example/", False),
        ("[::1]:8443", "https://[::1]:8443/", True),
        ("::1", "https://[::1]:8443/", True),
        ("10.0.0.1 , 127.0.0.1", "https://127.0.0.1:8443/", True),
    ],
)
def test_no_proxy_takes_windows_wildcards_ports_and_ipv6(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, bypassed: bool
) -> None:
    """``*.domain`` as written on Windows, an entry's port, IPv6 addresses, spaces."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (proxy_for(url) is None) is bypassed


def test_a_tunnel_that_dribbles_its_answer_ends_at_the_timeout() -> None:
    """The timeout bounds the whole CONNECT exchange: a proxy sending one header line at a
    time, each within the timeout, does not hold the connection for ever."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def dribble() -> None:
        client, _ = listener.accept()
        with client:
            while b"\r\n\r\n" not in client.recv(4096):
                pass
            client.sendall(b"HTTP/1.1 200 Connection established\r\n")
            while not stop.wait(0.02):
                try:
                    client.sendall(b"X-Wait: 1\r\n")
                except OSError:
                    return

    threading.Thread(target=dribble, daemon=True).start()
    proxy = parse_proxy(f"http://127.0.0.1:{listener.getsockname()[1]}")
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            open_tunnel(proxy, "calendar.example", 443, timeout=0.3).close()
        except ProxyFailure as failure:
            outcome.append(failure)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(15)  # a bound on a hang, not a measurement: 0.3 s is expected
    stop.set()
    listener.close()
    assert not worker.is_alive(), "the tunnel's answer was waited for past its timeout"
    [failure] = outcome
    assert "failed to open a tunnel to calendar.example:443" in str(failure)


# --- review fixes: Google --------------------------------------------------------------------


def test_google_over_plain_http_with_wrong_proxy_credentials_is_the_proxys_refusal(
    google_http: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 407 to the forwarded token refresh is the proxy's, not a refused grant: no
    'needs consent', one try."""
    connector = google_connector(google_http)
    route(monkeypatch, with_credentials(proxy, password="wrong-" + PROXY_PASSWORD))
    with pytest.raises(TransientError) as caught:
        connector.list_changes(None, {})
    message = naming(caught, proxy)
    assert REFUSED_407 in message
    assert "consent" not in message
    assert len(proxy.refused) == 1


def test_google_through_a_tunnel_trusts_only_ca_file(
    google: GoogleCalendarEmulator,
    google_connector: Any,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A ca_file of another CA fails TLS inside the tunnel although REQUESTS_CA_BUNDLE
    names the right one."""
    other = tmp_path / "other" / "ca.pem"
    other.parent.mkdir()
    trustme.CA().cert_pem.write_to_path(str(other))
    connector = google_connector(google, ca_file=str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file(tmp_path / "right")))
    route(monkeypatch, with_credentials(proxy))
    with pytest.raises(ConnectorError, match="certificate not trusted") as caught:
        connector.list_changes(None, {})
    assert not isinstance(caught.value, TransientError)
    assert proxy.tunnels


def test_google_through_a_tunnel_checks_the_server_name(
    google: GoogleCalendarEmulator,
    google_connector: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy that sends the tunnel for another name to the emulator: the certificate (for
    127.0.0.1) does not name that host, so TLS fails."""
    port = urlsplit(google.base).port
    assert port is not None
    with ConnectProxy(relay_to=("127.0.0.1", port)) as relaying:
        connector = google_connector(
            google, api_endpoint=f"https://api.example:{port}/calendar/v3/"
        )
        route(monkeypatch, relaying.url())
        with pytest.raises(ConnectorError, match="certificate not trusted"):
            connector.list_changes(None, {})
        assert f"api.example:{port}" in relaying.tunnels


# --- review fixes: CalDAV --------------------------------------------------------------------


def test_caldav_over_https_is_not_retried_when_the_proxy_refuses_the_tunnel(
    tls_radicale: TLSRadicale,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    logs: Callable[[], str],
) -> None:
    """A 407 to CONNECT: one try and Google's wording, never the credentials."""
    url = tls_radicale.new_calendar()
    route(monkeypatch, with_credentials(proxy, password="wrong-" + PROXY_PASSWORD))
    connector = caldav(tmp_path, url, ca_file=str(ca_file(tmp_path / "ca")))
    try:
        with pytest.raises(TransientError) as caught:
            connector.list_changes(None, {})
    finally:
        connector.close()
    assert REFUSED_407 in naming(caught, proxy)
    assert len(proxy.refused) == 1
    assert_hidden(str(caught.value), logs())


def test_caldav_chooses_the_proxy_for_each_requests_host(
    dav_calendar: str, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """NO_PROXY exempts the configured host, not another one a request reaches."""
    route(monkeypatch, with_credentials(proxy), no_proxy="127.0.0.1")
    connector = caldav(tmp_path, dav_calendar)
    elsewhere = dav_calendar.replace("127.0.0.1", "localhost")
    try:
        connector.transport.send("PROPFIND", elsewhere, b"", {"Depth": "0"})
    finally:
        connector.close()
    assert proxy.forwarded
    assert all(uri.startswith(elsewhere) for uri in proxy.forwarded)


def test_caldav_takes_the_https_proxy_for_https_under_an_http_url(
    dav_calendar: str,
    tls_radicale: TLSRadicale,
    proxy: ConnectProxy,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A calendar configured with http:// whose request goes to https:// (a redirect) goes
    through HTTPS_PROXY, not direct."""
    route(monkeypatch, with_credentials(proxy))
    connector = caldav(tmp_path, dav_calendar)
    try:
        with contextlib.suppress(Exception):  # TLS fails: no ca_file for the test CA
            connector.transport.send("PROPFIND", tls_radicale.base + "/", b"", {"Depth": "0"})
    finally:
        connector.close()
    assert proxy.tunnels == [authority_of(tls_radicale.base)]


def test_caldav_without_username_takes_credentials_from_netrc(
    dav_calendar: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, logs: Callable[[], str]
) -> None:
    """As before proxies: no username configured, the server's ~/.netrc entry is used, and
    its password is never logged."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    calendar = CalendarConfig(
        name="work",
        connector="caldav",
        options={"url": dav_calendar},
        source=tmp_path / "syncd.toml",
        index=0,
    )
    connector = CalDAVConnector.from_config(calendar)
    try:
        assert list(listed(connector.list_changes(None, {}))) == ["a.ics"]
    finally:
        connector.close()
    assert_hidden(logs(), hidden=[PASSWORD])


def test_caldav_with_a_username_ignores_netrc(
    dav_calendar: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A configured username and password are sent, not a netrc entry for the host."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {USER} password wrong-{PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    connector = caldav(tmp_path, dav_calendar)
    try:
        assert list(listed(connector.list_changes(None, {}))) == ["a.ics"]
    finally:
        connector.close()


def test_caldav_without_ca_file_trusts_requests_ca_bundle(
    tls_radicale: TLSRadicale, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No ca_file: REQUESTS_CA_BUNDLE decides, as niquests itself would let it."""
    url = tls_radicale.new_calendar()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file(tmp_path / "ca")))
    connector = caldav(tmp_path, url)
    try:
        assert list(listed(connector.list_changes(None, {}))) == ["a.ics"]
    finally:
        connector.close()


def test_check_config_points_out_a_proxy_syncd_cannot_use(
    google: GoogleCalendarEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``ALL_PROXY=socks5://...`` stops every request: check-config says so for Google,
    CalDAV and Outlook (Graph and the sign-in service), naming the proxy and not its
    password."""
    password = quote(PROXY_PASSWORD, safe="")
    monkeypatch.setenv("ALL_PROXY", f"socks5://{PROXY_USER}:{password}@proxy.example:1080")
    dav = CalendarConfig(
        name="work",
        connector="caldav",
        options={"url": "https://dav.example/cal/"},
        source=tmp_path / "syncd.toml",
        index=1,
    )
    mail = CalendarConfig(
        name="mail",
        connector="outlook",
        options={"client_id": "app", "token_cache": str(tmp_path / "cache.json")},
        source=tmp_path / "syncd.toml",
        index=2,
    )
    found = [
        *GoogleConnector.config_warnings(google_config(tmp_path, google)),
        *CalDAVConnector.config_warnings(dav),
        *[w for w in OutlookConnector.config_warnings(mail) if "proxy" in w.message],
    ]
    assert [problem.key for problem in found] == [
        "calendars[0].api_endpoint",
        "calendars[1].url",
        "calendars[2].graph_url",
        "calendars[2].authority",
    ]
    for problem in found:
        assert "socks5://proxy.example:1080" in problem.message
        assert_hidden(str(problem))


def test_doctor_fails_a_calendar_behind_a_proxy_syncd_cannot_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``syncd doctor``: the calendar's connection check fails naming the proxy, and nothing
    is sent."""
    (tmp_path / "cal").mkdir()
    (tmp_path / "syncd.toml").write_text(
        CONFIG + '[[calendars]]\nname = "dav"\nconnector = "caldav"\n'
        'url = "https://127.0.0.1:1/cal/"\n'
    )
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.example:3128")
    checks = {check.name: check for check in diagnose(tmp_path / "syncd.toml")}
    assert not checks["calendar dav"].ok
    assert "https://proxy.example:3128" in checks["calendar dav"].detail
    assert checks["calendar work"].ok
