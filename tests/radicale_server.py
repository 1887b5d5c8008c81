"""A real Radicale server for the CalDAV tests, started once per test run.

``python -m radicale`` runs on a free loopback port with htpasswd authentication (plain
encryption) and a temporary storage folder; :func:`radicale` starts it on first use and an
``atexit`` hook stops it. Each test makes its own calendar with :meth:`Radicale.new_calendar`.
:class:`HTTPOutside` edits a calendar with plain HTTP (``urllib``), as another client would.
"""

from __future__ import annotations

import atexit
import base64
import shutil
import tempfile
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from connectors.caldav.cursor import Cursor, parse_cursor
from tests.contract import Outside
from tests.radicale_process import RadicaleProcess

__all__ = ["PASSWORD", "USER", "HTTPOutside", "Radicale", "radicale"]

USER = "alice"
PASSWORD = "correct-horse-battery-staple-7f3a"  # noqa: S105 - a test server's test password


@dataclass(frozen=True, slots=True)
class Response:
    """A plain HTTP reply."""

    status: int
    headers: dict[str, str]
    body: bytes


class Radicale(RadicaleProcess):
    """A running Radicale for the test user: its base URL, its storage folder, and a plain
    HTTP client."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, USER, PASSWORD)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def request(
        self,
        method: str,
        url: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        password: str = PASSWORD,
    ) -> Response:
        """One plain HTTP request as the test user (``url`` absolute or a path)."""
        if url.startswith("/"):
            url = self.base + url
        token = base64.b64encode(f"{USER}:{password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - a loopback test server
            url,
            data=body or None,
            method=method,
            headers={"Authorization": f"Basic {token}", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                return Response(reply.status, dict(reply.headers.items()), reply.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers.items()), error.read())

    def new_calendar(self, display_name: str | None = None) -> str:
        """MKCALENDAR a fresh collection under the user; its URL (ending in ``/``)."""
        url = f"{self.base}/{USER}/{uuid.uuid4().hex}/"
        name = display_name or "test"
        body = (
            '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            f"<D:displayname>{name}</D:displayname></D:prop></D:set></C:mkcalendar>"
        ).encode()
        reply = self.request("MKCALENDAR", url, body)
        assert reply.status == 201, reply
        return url

    def folder(self, url: str) -> Path:
        """The storage folder of a collection."""
        path = url.removeprefix(self.base).strip("/")
        return self.storage / "collection-root" / path

    def forget_sync_tokens(self, url: str) -> None:
        """Drop the collection's stored sync tokens (a cleared ``.Radicale.cache``)."""
        shutil.rmtree(self.folder(url) / ".Radicale.cache" / "sync-token", ignore_errors=True)


class HTTPOutside(Outside):
    """Another client of a Radicale calendar: plain HTTP PUT and DELETE."""

    def __init__(self, server: Radicale, url: str) -> None:
        self.server = server
        self.url = url

    def put(self, href: str, data: bytes) -> None:
        reply = self.server.request(
            "PUT", self.url + href, data, {"Content-Type": "text/calendar; charset=utf-8"}
        )
        assert reply.status in (201, 204), reply

    def remove(self, href: str) -> None:
        reply = self.server.request("DELETE", self.url + href)
        assert reply.status in (200, 204), reply

    def get(self, href: str) -> bytes:
        """The object's bytes as the server holds them."""
        reply = self.server.request("GET", self.url + href)
        assert reply.status == 200, reply
        return reply.body

    def hrefs(self) -> list[str]:
        """Names of the objects in the collection (a PROPFIND depth 1)."""
        body = b'<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>'
        reply = self.server.request("PROPFIND", self.url, body, {"Depth": "1"})
        assert reply.status == 207, reply
        path = self.url.removeprefix(self.server.base)
        tree = ElementTree.fromstring(reply.body)  # noqa: S314 - our own test server
        names = [h.text or "" for h in tree.findall("{DAV:}response/{DAV:}href")]
        return sorted(n.removeprefix(path) for n in names if n != path)

    def expire_cursor(self, cursor: str) -> str | None:
        """The same cursor with a well-formed sync token Radicale never issued."""
        parsed = parse_cursor(cursor)
        assert parsed is not None
        bogus = "http://radicale.org/ns/sync/" + "0" * 64
        return Cursor(parsed.mode, parsed.url, bogus).text()


_server: Radicale | None = None


def radicale() -> Radicale:
    """The test run's Radicale, started on first use and stopped when the process exits."""
    global _server
    if _server is None:
        _server = Radicale(Path(tempfile.mkdtemp(prefix="syncd-radicale-")))
        atexit.register(_server.stop)
    return _server
