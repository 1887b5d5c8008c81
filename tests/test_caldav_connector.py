"""The CalDAV connector: the contract suite and CalDAV behaviour against a real Radicale, and
a tiny stub WebDAV server on loopback for what Radicale never does (no sync-collection,
truncated replies, bad replies, rate limits, server errors)."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import pytest
import structlog
from structlog.testing import capture_logs

from connectors.caldav import CalDAVConnector
from connectors.caldav.options import parse_options
from connectors.caldav.transport import CaldavTransport, Reply
from syncd.cli import main
from syncd.config import CalendarConfig
from syncd.connector import available_connectors
from syncd.errors import AuthError, ConfigError, ConnectorError, CursorExpired, TransientError
from syncd.logs import configure_logging
from tests.contract import ConnectorContract, sample, snapshot
from tests.harness import Harness
from tests.radicale_server import PASSWORD, USER, HTTPOutside, Radicale, radicale

ENV = "SYNCD_TEST_CALDAV_PASSWORD"
WRONG = "wrong-password-0000"


# --- fixtures -------------------------------------------------------------------------------


class Counting:
    """A transport wrapper that records every request (method, url, body)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[str, str, bytes]] = []

    def send(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Reply:
        self.sent.append((method, url, body))
        return self.inner.send(method, url, body, headers)

    def close(self) -> None:
        self.inner.close()

    def reports(self, kind: bytes) -> int:
        """How many REPORTs of this kind (``b"calendar-multiget"``) were sent."""
        return sum(1 for m, _u, b in self.sent if m == "REPORT" and kind in b)


def calendar_config(tmp_path: Path, name: str = "work", **options: object) -> CalendarConfig:
    return CalendarConfig(
        name=name, connector="caldav", options=options, source=tmp_path / "syncd.toml", index=0
    )


def connect(
    tmp_path: Path, url: str, *, batch: int = 100, sleeps: list[float] | None = None, **extra: Any
) -> tuple[CalDAVConnector, Counting]:
    """A connector on ``url`` whose requests are counted; sleeps are recorded, not slept."""
    options = {"url": url, "username": USER, "password_env": ENV, **extra}
    parsed = parse_options(calendar_config(tmp_path, **options))
    counting = Counting(CaldavTransport("work", parsed))
    record = sleeps if sleeps is not None else []
    connector = CalDAVConnector(
        "work", parsed, transport=counting, sleep=record.append, jitter=lambda: 0.5, batch=batch
    )
    return connector, counting


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, PASSWORD)


@pytest.fixture
def server() -> Radicale:
    return radicale()


@pytest.fixture
def url(server: Radicale) -> str:
    return server.new_calendar()


@pytest.fixture
def outside(server: Radicale, url: str) -> HTTPOutside:
    return HTTPOutside(server, url)


@pytest.fixture
def counted(tmp_path: Path, url: str) -> Iterator[tuple[CalDAVConnector, Counting]]:
    connector, counting = connect(tmp_path, url)
    yield connector, counting
    connector.close()


@pytest.fixture
def connector(counted: tuple[CalDAVConnector, Counting]) -> CalDAVConnector:
    return counted[0]


class TestCalDAVContract(ConnectorContract):
    """The CalDAV connector passes the shared contract suite against Radicale."""


# --- configuration --------------------------------------------------------------------------


def test_registered_as_an_entry_point() -> None:
    """`connector = "caldav"` resolves through the entry-point group."""
    assert available_connectors()["caldav"] is CalDAVConnector


def test_bad_options_name_each_key(tmp_path: Path) -> None:
    """Every bad option is reported with its key; an inline password's value is never shown."""
    with pytest.raises(ConfigError) as caught:
        CalDAVConnector.from_config(
            calendar_config(
                tmp_path,
                url="ftp://x",
                timeout="soon",
                create="yes",
                password="hunter2-secret",  # noqa: S106
                password_env="X",  # noqa: S106
                urll="typo",
            )
        )
    keys = sorted(p.key for p in caught.value.problems)
    assert keys == [
        "calendars[0].create",
        "calendars[0].password",
        "calendars[0].timeout",
        "calendars[0].url",
        "calendars[0].urll",
    ]
    assert "hunter2-secret" not in str(caught.value)


def test_credentials_in_the_url_are_refused_without_echoing_them(tmp_path: Path) -> None:
    """A URL with user:password@ is a config error that does not repeat the password."""
    with pytest.raises(ConfigError) as caught:
        CalDAVConnector.from_config(calendar_config(tmp_path, url="https://u:pw-1234@host/cal/"))
    assert "pw-1234" not in str(caught.value)


def test_constructor_does_no_io(tmp_path: Path) -> None:
    """from_config on an unreachable server succeeds: nothing is contacted until a listing."""
    connector = CalDAVConnector.from_config(
        calendar_config(tmp_path, url="https://caldav.invalid/cal/", username="u", password_env=ENV)
    )
    assert connector.options.timeout == 30.0
    assert connector.options.verify_tls is True


def test_inline_password_is_a_check_config_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """check-config accepts an inline password (exit 0) and warns about it, without its value."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        '[[calendars]]\nname = "work"\nconnector = "caldav"\nurl = "https://dav.example/c/"\n'
        'username = "u"\npassword = "inline-pw-5678"\n'
    )
    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "warning" in out
    assert "calendars[0].password" in out
    assert "inline-pw-5678" not in out


# --- Radicale: sync, discovery, creation ------------------------------------------------------


def test_incremental_sync_after_create_modify_delete(
    counted: tuple[CalDAVConnector, Counting], outside: HTTPOutside
) -> None:
    """A sync-collection poll lists the created and modified objects and the deleted one, with
    one sync REPORT and one multiget; a quiet poll is one request."""
    connector, counting = counted
    for name in ("a", "b"):
        outside.put(f"{name}.ics", sample(name))
    first = connector.list_changes(None, {})
    known = snapshot(first, {})
    outside.put("a.ics", sample("a", 15))
    outside.remove("b.ics")
    outside.put("c.ics", sample("c"))
    counting.sent.clear()
    second = connector.list_changes(first.cursor, known)
    assert sorted(o.href for o in second.upserts) == ["a.ics", "c.ics"]
    assert list(second.removed) == ["b.ics"]
    assert not second.full
    assert [m for m, _u, _b in counting.sent] == ["REPORT", "REPORT"]
    counting.sent.clear()
    third = connector.list_changes(second.cursor, snapshot(second, known))
    assert (list(third.upserts), list(third.removed), len(counting.sent)) == ([], [], 1)


def test_deleted_member_on_the_first_sync_is_not_listed(
    connector: CalDAVConnector, outside: HTTPOutside
) -> None:
    """Radicale lists a member deleted earlier as 404 on a tokenless sync: a removal."""
    outside.put("a.ics", sample("a"))
    outside.put("b.ics", sample("b"))
    known = snapshot(connector.list_changes(None, {}), {})
    outside.remove("b.ics")
    full = connector.list_changes(None, known)
    assert full.full
    assert [o.href for o in full.upserts] == ["a.ics"]
    assert list(full.failures) == []
    assert set(snapshot(full, known)) == {"a.ics"}


def test_changed_objects_are_fetched_in_multiget_batches(
    tmp_path: Path, url: str, outside: HTTPOutside
) -> None:
    """Five objects with a batch of two: three calendar-multiget REPORTs and not one GET."""
    for index in range(5):
        outside.put(f"e{index}.ics", sample(f"e{index}", 8 + index))
    connector, counting = connect(tmp_path, url, batch=2)
    delta = connector.list_changes(None, {})
    assert len(delta.upserts) == 5
    assert counting.reports(b"calendar-multiget") == 3
    assert counting.reports(b"sync-collection") == 1
    assert "GET" not in [m for m, _u, _b in counting.sent]


def test_objects_keep_crlf_lines_and_quoted_etags(
    connector: CalDAVConnector, outside: HTTPOutside
) -> None:
    """Data from a multistatus keeps iCalendar's CRLF; etags keep their quotes."""
    outside.put("a.ics", sample("a"))
    [listed] = connector.list_changes(None, {}).upserts
    assert listed.data.startswith(b"BEGIN:VCALENDAR\r\n")
    assert b"\n" not in listed.data.replace(b"\r\n", b"")
    assert listed.etag.startswith('"')
    assert listed.etag.endswith('"')
    assert connector.get("a.ics") == listed


def test_discovery_by_display_name(tmp_path: Path, server: Radicale) -> None:
    """The server URL plus `calendar = "name"` finds the collection with that display name."""
    name = f"Work {uuid.uuid4().hex[:8]}"
    url = server.new_calendar(name)
    HTTPOutside(server, url).put("a.ics", sample("a"))
    connector, _ = connect(tmp_path, server.base + "/", calendar=name)
    delta = connector.list_changes(None, {})
    assert [o.href for o in delta.upserts] == ["a.ics"]
    assert connector.finder.url(may_create=False) == url


def test_missing_notes_calendar_is_made_with_mkcalendar(tmp_path: Path, server: Radicale) -> None:
    """With create = true (the default) a missing calendar found by name is created; a note
    written before any listing makes it too."""
    name = f"syncd notes {uuid.uuid4().hex[:8]}"
    connector, counting = connect(tmp_path, f"{server.base}/{USER}/", calendar=name)
    connector.create("syncd-note-1.ics", sample("note-1"))
    assert [m for m, _u, _b in counting.sent].count("MKCALENDAR") == 1
    url = connector.finder.url(may_create=False)
    assert HTTPOutside(server, url).hrefs() == ["syncd-note-1.ics"]
    props = server.request("PROPFIND", url, b"", {"Depth": "0"}).body
    assert name.encode() in props


def test_missing_collection_url_is_made_on_the_first_listing(
    tmp_path: Path, server: Radicale
) -> None:
    """A collection URL that does not exist yet is created for a calendar syncd does not know."""
    url = f"{server.base}/{USER}/{uuid.uuid4().hex}/"
    connector, _ = connect(tmp_path, url)
    assert list(connector.list_changes(None, {}).upserts) == []
    assert server.request("PROPFIND", url, b"", {"Depth": "0"}).status == 207


def test_missing_collection_is_an_error_when_create_is_off(
    tmp_path: Path, server: Radicale
) -> None:
    """create = false: a missing collection is an error and nothing is made."""
    url = f"{server.base}/{USER}/{uuid.uuid4().hex}/"
    connector, counting = connect(tmp_path, url, create=False)
    with pytest.raises(ConnectorError, match="missing"):
        connector.list_changes(None, {})
    assert "MKCALENDAR" not in [m for m, _u, _b in counting.sent]


def test_vanished_known_calendar_is_not_recreated(tmp_path: Path, server: Radicale) -> None:
    """A calendar syncd knows that disappears is an error, never an empty new calendar."""
    url = f"{server.base}/{USER}/{uuid.uuid4().hex}/"
    connector, _ = connect(tmp_path, url)
    with pytest.raises(ConnectorError, match="missing"):
        connector.list_changes(None, {"a.ics": '"1"'})


def test_wrong_password_is_an_auth_error_logged_once(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """401: AuthError saying the calendar needs credentials, logged once over two cycles."""
    monkeypatch.setenv(ENV, WRONG)
    connector, _ = connect(tmp_path, url)
    with capture_logs() as logs:
        for _ in range(2):
            with pytest.raises(AuthError, match="needs credentials"):
                connector.list_changes(None, {})
    assert [e["event"] for e in logs].count("caldav.needs_credentials") == 1


def test_another_users_calendar_is_forbidden(tmp_path: Path, server: Radicale) -> None:
    """403 without valid-sync-token is an AuthError, not an expired cursor."""
    connector, _ = connect(tmp_path, f"{server.base}/bob/{uuid.uuid4().hex}/", create=False)
    with pytest.raises(AuthError, match="needs credentials"):
        connector.list_changes(None, {})


def test_missing_password_variable_needs_credentials(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset password_env is an AuthError naming the variable, raised at the first request."""
    connector, _ = connect(tmp_path, url)
    monkeypatch.delenv(ENV)
    with pytest.raises(AuthError, match=ENV):
        connector.list_changes(None, {})


def test_secret_never_reaches_errors_logs_or_audit(
    tmp_path: Path,
    server: Radicale,
    url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Passwords from password_env (plain or in their Basic form) are in no exception, log
    line (syncd's or a library's, at debug level) or audit record, on success or refusal."""
    secrets = [PASSWORD, WRONG]
    secrets += [base64.b64encode(f"{USER}:{s}".encode()).decode() for s in secrets]
    HTTPOutside(server, url).put("a.ics", sample("a"))
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    configure_logging("debug", stream=stream, json=True)
    harness = Harness(tmp_path, caldav_config(url))
    try:
        harness.cycle()
        HTTPOutside(server, url).put("b.ics", sample("b"))
        monkeypatch.setenv(ENV, WRONG)
        harness.reopen()
        with pytest.raises(AuthError) as caught:
            harness.cycle()
    finally:
        harness.close()
        structlog.reset_defaults()
    texts = [str(caught.value), repr(caught.value), stream.getvalue(), caplog.text]
    texts.append(harness.config.audit_path.read_text())
    assert "needs credentials" in stream.getvalue()
    for text in texts:
        for secret in secrets:
            assert secret not in text


def caldav_config(url: str, extra: str = "") -> str:
    return (
        '[state]\npath = "var/state.db"\n[audit]\npath = "var/audit.jsonl"\n'
        '[owner]\nemails = ["me@example.com"]\ntimezone = "Europe/Berlin"\n'
        f'[[calendars]]\nname = "work"\nconnector = "caldav"\nurl = "{url}"\n'
        f'username = "{USER}"\npassword_env = "{ENV}"\n{extra}'
    )


def test_status_shows_the_sync_mode(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a cycle, `syncd status` names the change-tracking mode of the calendar."""
    harness = Harness(tmp_path, caldav_config(url))
    try:
        harness.cycle()
    finally:
        harness.close()
    assert main(["status", "--config", str(tmp_path / "syncd.toml")]) == 0
    assert "sync-collection" in capsys.readouterr().out
    assert main(["status", "--json", "--config", str(tmp_path / "syncd.toml")]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["sync_mode"].startswith("sync-collection")


# --- a stub WebDAV server -------------------------------------------------------------------


@dataclass
class Canned:
    """A reply the stub sends instead of its own, for one request of ``method``."""

    method: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StubCalendar:
    """An in-memory calendar at /cal/ without sync-collection (unless pages are scripted)."""

    objects: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    ctag: int = 1
    canned: list[Canned] = field(default_factory=list)
    sync_pages: list[bytes] | None = None
    no_etag: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def put(self, name: str, data: bytes) -> None:
        self.ctag += 1
        self.objects[name] = (f'"{name}-{self.ctag}"', data)

    def remove(self, name: str) -> None:
        self.ctag += 1
        del self.objects[name]


def _multistatus(*responses: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/">'
        f"{''.join(responses)}{extra}</D:multistatus>"
    ).encode()


def _ok(href: str, props: str) -> str:
    return (
        f"<D:response><D:href>{href}</D:href><D:propstat><D:prop>{props}</D:prop>"
        "<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
    )


class _Handler(BaseHTTPRequestHandler):
    stub: StubCalendar

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        headers = headers or {}
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if body and "Content-Type" not in headers:
            self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        stub = self.stub
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        stub.requests.append(self.command)
        for canned in stub.canned:
            if canned.method == self.command:
                stub.canned.remove(canned)
                self._reply(canned.status, canned.body, canned.headers)
                return
        if self.command == "PROPFIND" and self.path != "/cal/":
            name = self.path.rsplit("/", 1)[-1]
            found = stub.objects.get(name)
            self._reply(207, _multistatus(_member(name, found[0]))) if found else self._reply(404)
        elif self.command == "PROPFIND":
            self._reply(207, self._propfind(self.headers.get("Depth", "0")))
        elif self.command == "REPORT" and b"sync-collection" in body:
            if stub.sync_pages:
                self._reply(207, stub.sync_pages.pop(0))
            else:
                self._reply(501)
        elif self.command == "REPORT":
            self._reply(207, self._multiget(body))
        elif self.command == "PUT":
            stub.put(self.path.rsplit("/", 1)[-1], body)
            self._reply(201, headers={"ETag": stub.objects[self.path.rsplit("/", 1)[-1]][0]})
        else:
            self._reply(405)

    do_PROPFIND = do_REPORT = do_PUT = do_GET = do_DELETE = _handle

    def _propfind(self, depth: str) -> bytes:
        stub = self.stub
        names = ["C:calendar-multiget"] + (["D:sync-collection"] if stub.sync_pages else [])
        reports = "".join(
            f"<D:supported-report><D:report><{n}/></D:report></D:supported-report>" for n in names
        )
        own = _ok(
            "/cal/",
            "<D:resourcetype><D:collection/><C:calendar/></D:resourcetype>"
            f"<CS:getctag>ctag-{stub.ctag}</CS:getctag>"
            f"<D:supported-report-set>{reports}</D:supported-report-set>",
        )
        members = [] if depth == "0" else [_member(n, e) for n, (e, _d) in stub.objects.items()]
        return _multistatus(own, *members)

    def _multiget(self, body: bytes) -> bytes:
        tree = ElementTree.fromstring(body)  # noqa: S314 - the test's own request
        responses = []
        for href in tree.findall("{DAV:}href"):
            name = (href.text or "").rsplit("/", 1)[-1]
            if name not in self.stub.objects:
                responses.append(
                    f"<D:response><D:href>{href.text}</D:href>"
                    "<D:status>HTTP/1.1 404 Not Found</D:status></D:response>"
                )
                continue
            etag, data = self.stub.objects[name]
            tag = "" if name in self.stub.no_etag else f"<D:getetag>{escape(etag)}</D:getetag>"
            cdata = escape(data.decode())
            responses.append(
                _ok(f"/cal/{name}", f"{tag}<C:calendar-data>{cdata}</C:calendar-data>")
            )
        return _multistatus(*responses)


def _member(name: str, etag: str) -> str:
    return _ok(f"/cal/{name}", f"<D:getetag>{escape(etag)}</D:getetag><D:resourcetype/>")


@pytest.fixture
def stub() -> Iterator[tuple[StubCalendar, str]]:
    calendar = StubCalendar()
    handler = type("Handler", (_Handler,), {"stub": calendar})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield calendar, f"http://127.0.0.1:{httpd.server_address[1]}/cal/"
    finally:
        httpd.shutdown()
        httpd.server_close()


Stub = tuple[StubCalendar, str]


def test_without_sync_collection_ctag_and_etags_are_used(tmp_path: Path, stub: Stub) -> None:
    """No sync-collection: an unchanged ctag is one PROPFIND; a change lists etags, fetches
    the changed object and reports the deleted one; status names the mode."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    calendar.put("b.ics", sample("b"))
    connector, counting = connect(tmp_path, url)
    first = connector.list_changes(None, {})
    assert first.full
    assert sorted(o.href for o in first.upserts) == ["a.ics", "b.ics"]
    assert "ctag" in (CalDAVConnector.cursor_mode(first.cursor) or "")
    known = snapshot(first, {})
    counting.sent.clear()
    quiet = connector.list_changes(first.cursor, known)
    assert (list(quiet.upserts), [m for m, _u, _b in counting.sent]) == ([], ["PROPFIND"])
    calendar.put("a.ics", sample("a", 15))
    calendar.remove("b.ics")
    second = connector.list_changes(quiet.cursor, known)
    assert [o.href for o in second.upserts] == ["a.ics"]
    assert list(second.removed) == ["b.ics"]
    assert "sync-collection" not in " ".join(calendar.requests)


def test_truncated_sync_reply_is_continued(tmp_path: Path, stub: Stub) -> None:
    """A 507 for the collection in a sync reply: the REPORT is repeated with the new token."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    calendar.put("b.ics", sample("b"))
    truncated = (
        "<D:response><D:href>/cal/</D:href>"
        "<D:status>HTTP/1.1 507 Insufficient Storage</D:status></D:response>"
    )
    a_etag, b_etag = calendar.objects["a.ics"][0], calendar.objects["b.ics"][0]
    calendar.sync_pages = [
        _multistatus(_member("a.ics", a_etag), truncated, extra="<D:sync-token>t1</D:sync-token>"),
        _multistatus(_member("b.ics", b_etag), extra="<D:sync-token>t2</D:sync-token>"),
    ]
    connector, counting = connect(tmp_path, url)
    delta = connector.list_changes(None, {})
    assert sorted(o.href for o in delta.upserts) == ["a.ics", "b.ics"]
    assert counting.reports(b"sync-collection") == 2
    assert b"<D:sync-token>t1</D:sync-token>" in counting.sent[-2][2]
    assert json.loads(delta.cursor or "")["token"] == "t2"  # noqa: S105 - a sync token


def test_malformed_xml_reply_is_a_transient_error(tmp_path: Path, stub: Stub) -> None:
    """A multistatus that is not XML fails the cycle with TransientError (nothing committed)."""
    calendar, url = stub
    calendar.canned.append(Canned("PROPFIND", 207, b"<D:multistatus xmlns:D='DAV:'><D:resp"))
    connector, _ = connect(tmp_path, url)
    with pytest.raises(TransientError, match="malformed XML"):
        connector.list_changes(None, {})


def test_reply_that_is_not_a_multistatus_is_a_transient_error(tmp_path: Path, stub: Stub) -> None:
    """A 207 carrying HTML instead of a multistatus is a TransientError too."""
    calendar, url = stub
    html = Canned("PROPFIND", 207, b"<html>oops</html>", {"Content-Type": "text/html"})
    calendar.canned.append(html)
    connector, _ = connect(tmp_path, url)
    with pytest.raises(TransientError):
        connector.list_changes(None, {})


def test_member_without_etag_is_an_item_failure(tmp_path: Path, stub: Stub) -> None:
    """An object whose multiget entry has no etag is a failure naming its href; the rest list."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    calendar.put("b.ics", sample("b"))
    calendar.no_etag.add("b.ics")
    connector, _ = connect(tmp_path, url)
    delta = connector.list_changes(None, {})
    assert [o.href for o in delta.upserts] == ["a.ics"]
    assert [(f.href, f.reason) for f in delta.failures] == [
        ("b.ics", "b.ics: came back without an etag")
    ]


def test_member_missing_from_the_multiget_reply_is_an_item_failure(
    tmp_path: Path, stub: Stub
) -> None:
    """A listed member the multiget reply leaves out is an ItemFailure, not a crash."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    etag = calendar.objects["a.ics"][0]
    calendar.canned.append(Canned("REPORT", 207, _multistatus()))
    connector, _ = connect(tmp_path, url)
    delta = connector.list_changes(None, {})
    assert [(f.href, f.etag) for f in delta.failures] == [("a.ics", etag)]
    assert "nothing" in delta.failures[0].reason


def test_garbage_calendar_data_reaches_the_engine_as_an_item_error(
    tmp_path: Path, stub: Stub
) -> None:
    """Calendar data that does not parse is that object's item_error; the others are read."""
    calendar, url = stub
    calendar.put("good.ics", sample("good"))
    calendar.put("bad.ics", b"BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n")
    harness = Harness(tmp_path, caldav_config(url))
    try:
        report = harness.cycle()
    finally:
        harness.close()
    assert [e.href for e in report.new_errors] == ["bad.ics"]
    assert report.instance_count == 1
    errors = [r for r in harness.audit() if r["type"] == "item_error"]
    assert [r["href"] for r in errors] == ["bad.ics"]


def test_rate_limit_is_retried_after_the_servers_delay(tmp_path: Path, stub: Stub) -> None:
    """429 with Retry-After: 7, then success: one retry after exactly 7 s (injected sleep)."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    calendar.canned.append(Canned("PROPFIND", 429, headers={"Retry-After": "7"}))
    sleeps: list[float] = []
    connector, _ = connect(tmp_path, url, sleeps=sleeps)
    assert [o.href for o in connector.list_changes(None, {}).upserts] == ["a.ics"]
    assert sleeps == [7.0]


def test_server_errors_are_retried_with_backoff_then_transient(tmp_path: Path, stub: Stub) -> None:
    """503s: three retries with growing waits, then TransientError naming the status."""
    calendar, url = stub
    calendar.canned.extend(Canned("PROPFIND", 503) for _ in range(4))
    sleeps: list[float] = []
    connector, _ = connect(tmp_path, url, sleeps=sleeps)
    with pytest.raises(TransientError, match="HTTP 503"):
        connector.list_changes(None, {})
    assert sleeps == [0.75, 1.5, 3.0]  # 1, 2, 4 s steps with the jitter fixed at 3/4


def test_a_stop_before_the_wait_is_named(tmp_path: Path, stub: Stub) -> None:
    """syncd stops before a retry's wait begins: no wait, no retry, and the message says
    syncd is stopping."""
    calendar, url = stub
    calendar.canned.extend(Canned("PROPFIND", 503) for _ in range(4))
    sleeps: list[float] = []
    connector, counting = connect(tmp_path, url, sleeps=sleeps)
    connector.interrupt()
    with pytest.raises(TransientError, match="HTTP 503") as caught:
        connector.list_changes(None, {})
    assert str(caught.value).endswith("; not retried, syncd is stopping")
    assert (sleeps, len(counting.sent)) == ([], 1)


def test_a_stop_during_the_wait_ends_it_without_a_retry(tmp_path: Path, stub: Stub) -> None:
    """syncd stops during a Retry-After wait: no retry; the message names the stop only (the
    server's wait was not too long, it was cut short)."""
    calendar, url = stub
    calendar.canned.append(Canned("PROPFIND", 429, headers={"Retry-After": "7"}))
    connector, counting = connect(tmp_path, url)
    waits: list[float] = []

    def stopped_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        connector.interrupt()

    connector.session.sleep = stopped_while_waiting
    with pytest.raises(TransientError, match="HTTP 429") as caught:
        connector.list_changes(None, {})
    assert str(caught.value).endswith("; not retried, syncd is stopping")
    assert "asks to wait" not in str(caught.value)
    assert (waits, len(counting.sent)) == ([7.0], 1)


def test_a_wait_longer_than_max_wait_is_left_to_the_next_cycle(tmp_path: Path, stub: Stub) -> None:
    """Retry-After above max_wait (60 s): no wait, no retry; the message says so."""
    calendar, url = stub
    calendar.canned.append(Canned("PROPFIND", 429, headers={"Retry-After": "120"}))
    sleeps: list[float] = []
    connector, counting = connect(tmp_path, url, sleeps=sleeps)
    with pytest.raises(TransientError, match="HTTP 429") as caught:
        connector.list_changes(None, {})
    assert str(caught.value).endswith("; the server asks to wait 120s, the next cycle retries")
    assert (sleeps, len(counting.sent)) == ([], 1)


def test_the_last_attempt_does_not_blame_the_stop(tmp_path: Path, stub: Stub) -> None:
    """Attempts used up while syncd stops: no retry was left to skip, so the stop is not
    named."""
    calendar, url = stub
    calendar.canned.append(Canned("PROPFIND", 503))
    connector, _ = connect(tmp_path, url)
    connector.session.attempts = 1
    connector.interrupt()
    with pytest.raises(TransientError, match="HTTP 503") as caught:
        connector.list_changes(None, {})
    assert "syncd is stopping" not in str(caught.value)


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    """Nobody listening: retried, then TransientError (the next cycle tries again)."""
    sleeps: list[float] = []
    connector, _ = connect(tmp_path, "http://127.0.0.1:9/cal/", sleeps=sleeps)
    with pytest.raises(TransientError, match="cannot connect"):
        connector.list_changes(None, {})
    assert len(sleeps) == 3


def test_a_changed_etag_after_a_write_is_read_back(tmp_path: Path, stub: Stub) -> None:
    """A PUT answered without an ETag: the new etag is asked for with a PROPFIND."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    calendar.canned.append(Canned("PUT", 204))
    connector, counting = connect(tmp_path, url)
    etag = connector.update("a.ics", sample("a", 9), calendar.objects["a.ics"][0])
    assert etag == calendar.objects["a.ics"][0]
    assert [m for m, _u, _b in counting.sent][-2:] == ["PUT", "PROPFIND"]


def test_password_file_open_to_others_is_a_check_config_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group-readable password file is pointed out by check-config (it would be refused)."""
    secret = tmp_path / "secret"
    secret.write_text("file-pw-9012\n")
    secret.chmod(0o640)
    config = tmp_path / "syncd.toml"
    config.write_text(
        '[[calendars]]\nname = "work"\nconnector = "caldav"\nurl = "https://dav.example/c/"\n'
        'username = "u"\npassword_file = "secret"\n'
    )
    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "calendars[0].password_file" in out
    assert "chmod 600" in out
    assert "file-pw-9012" not in out


@pytest.mark.parametrize("status", [409, 412])
def test_rejected_sync_token_with_409_or_412_is_an_expired_cursor(
    tmp_path: Path, stub: Stub, status: int
) -> None:
    """Servers differ (Xandikos answers 412): any of 403/409/412 with valid-sync-token."""
    calendar, url = stub
    calendar.put("a.ics", sample("a"))
    page = _multistatus(
        _member("a.ics", calendar.objects["a.ics"][0]), extra="<D:sync-token>t1</D:sync-token>"
    )
    calendar.sync_pages = [page, page]
    connector, _ = connect(tmp_path, url)
    first = connector.list_changes(None, {})
    refusal = b'<?xml version="1.0"?><D:error xmlns:D="DAV:"><D:valid-sync-token/></D:error>'
    calendar.canned.append(Canned("REPORT", status, refusal))
    with pytest.raises(CursorExpired):
        connector.list_changes(first.cursor, snapshot(first, {}))


def test_doctor_check_probes_without_creating(tmp_path: Path, server: Radicale, url: str) -> None:
    """check() names the collection and its mode; a missing one is reported, never made."""
    connector, _ = connect(tmp_path, url)
    assert "changes by sync-collection" in connector.check()
    missing = f"{server.base}/{USER}/{uuid.uuid4().hex}/"
    creating, counting = connect(tmp_path, missing)
    assert "first cycle makes it" in creating.check()
    assert "MKCALENDAR" not in [m for m, _u, _b in counting.sent]
    strict, _ = connect(tmp_path, missing, create=False)
    with pytest.raises(ConnectorError, match="missing"):
        strict.check()
    named, _ = connect(tmp_path, server.base + "/", calendar=f"none {uuid.uuid4().hex}")
    assert "first cycle makes it" in named.check()


@pytest.mark.parametrize(
    ("options", "key", "text"),
    [
        ({"url": "http://[::1/x/"}, "url", "not a valid URL"),
        (
            {"url": "https://dav.example.com/c/", "ca_file": "missing.pem"},
            "ca_file",
            "is not a file",
        ),
    ],
    ids=["broken-url", "missing-ca-file"],
)
def test_options_that_cannot_work_are_config_errors(
    tmp_path: Path, options: dict[str, object], key: str, text: str
) -> None:
    """A URL that does not parse, or a CA file that is not there, is a problem at its key."""
    from syncd.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        CalDAVConnector.from_config(calendar_config(tmp_path, username="u", **options))
    assert any(p.key.endswith(key) and text in p.message for p in caught.value.problems)


def test_interrupt_cuts_retries_short(tmp_path: Path) -> None:
    """A server that never answers, and syncd stops while the first request waits for it:
    that request's timeout ends the cycle, with no retry and no backoff."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections are accepted, never answered
    silent.settimeout(0.05)
    port = silent.getsockname()[1]
    connector = CalDAVConnector.from_config(
        calendar_config(
            tmp_path,
            url=f"http://127.0.0.1:{port}/dav/cal/",
            username="u",
            password="p",  # noqa: S106 - a made-up password for a silent server
            timeout="1s",
        )
    )
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                continue
            connector.interrupt()  # syncd stops while the request waits for its answer

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    try:
        with pytest.raises(TransientError, match="no answer") as caught:
            connector.list_changes(None, {})
    finally:
        done.set()
        acceptor.join(10)
        for connection in [*accepted, silent]:
            connection.close()
    assert str(caught.value).endswith("; not retried, syncd is stopping")
    assert len(accepted) == 1  # 4 attempts and their backoff without the interrupt
