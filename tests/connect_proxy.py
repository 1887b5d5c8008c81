"""A small HTTP proxy on loopback for the proxy tests, standard library only.

It tunnels ``CONNECT host:port`` (the way clients reach HTTPS servers through a proxy) and
forwards plain requests whose target is an absolute URI (``GET http://host:port/path``, the
way clients reach plain-HTTP servers through a proxy). Each tunnel target and each forwarded
URI is recorded. With ``credentials`` set it answers 407 unless the request carries
``Proxy-Authorization: Basic`` with exactly those. With ``relay_to`` set, every tunnel goes
to that address whatever host it names (a proxy that a client must not trust blindly: TLS
still has to check the name). :meth:`ConnectProxy.stop` closes the port and cuts open
tunnels, so a client then meets a proxy that is down.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ConnectProxy"]

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read :attr:`ConnectProxy.tunnels` instead."""

    def setup(self) -> None:
        """Track the client's connection, so that stopping the proxy cuts it."""
        super().setup()
        self.server.owner.track(self.connection)

    def finish(self) -> None:
        """Forget the client's connection."""
        self.server.owner.untrack(self.connection)
        super().finish()

    def do_CONNECT(self) -> None:
        """Open a tunnel to ``host:port`` and relay bytes both ways until one side closes."""
        proxy = self.server.owner
        if not self._authorized():
            proxy.record("refused", self.path)
            self._refuse()
            self.close_connection = True
            return
        host, _, port = self.path.rpartition(":")
        try:
            address = proxy.relay_to or (host.strip("[]"), int(port))
            upstream = socket.create_connection(address, timeout=10)
        except (OSError, ValueError):
            self.send_error(502, "cannot reach the target")
            self.close_connection = True
            return
        proxy.record("tunnels", self.path)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with upstream:
            proxy.track(upstream)
            try:
                _relay(self.connection, upstream)
            finally:
                proxy.untrack(upstream)

    def _forward(self) -> None:
        """Send a request with an absolute URI on to its server and its answer back."""
        proxy = self.server.owner
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self.send_error(400, "the request target must be an absolute http:// URI")
            return
        if not self._authorized():
            proxy.record("refused", self.path)
            self._refuse()
            return
        proxy.record("forwarded", self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            content = answer.read()
        except OSError:
            self.send_error(502, "cannot reach the target")
            return
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward
    do_OPTIONS = do_PROPFIND = do_REPORT = do_MKCALENDAR = _forward

    def _authorized(self) -> bool:
        expected = self.server.owner.expected_authorization
        return expected is None or self.headers.get("Proxy-Authorization") == expected

    def _refuse(self) -> None:
        self.send_response(407, "Proxy Authentication Required")
        self.send_header("Proxy-Authenticate", 'Basic realm="test proxy"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes between the two sockets until either side closes."""
    client.settimeout(None)
    upstream.settimeout(None)
    peers = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            for key, _events in selector.select():
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = source.recv(65536)
                    if data:
                        peers[source].sendall(data)
                except OSError:
                    data = b""
                if not data:
                    return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: ConnectProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by a client or by :meth:`ConnectProxy.stop` are no errors."""


class ConnectProxy:
    """A threaded HTTP proxy on 127.0.0.1 (a free port); use as a context manager.

    ``tunnels`` lists the ``host:port`` of every CONNECT let through, ``forwarded`` every
    absolute URI forwarded, ``refused`` what was answered 407.
    """

    def __init__(
        self,
        credentials: tuple[str, str] | None = None,
        relay_to: tuple[str, int] | None = None,
    ) -> None:
        self.relay_to = relay_to
        self.expected_authorization: str | None = None
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")
            self.expected_authorization = f"Basic {token}"
        self.tunnels: list[str] = []
        self.forwarded: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"

    def url(self, user: str | None = None, password: str | None = None) -> str:
        """The proxy's URL as it goes into HTTPS_PROXY, with credentials if given."""
        auth = f"{user}:{password}@" if user is not None and password is not None else ""
        return f"http://{auth}{self.address}"

    def record(self, kind: str, target: str) -> None:
        """Note one tunnel, forwarded URI or refusal."""
        with self._lock:
            getattr(self, kind).append(target)

    def clear(self) -> None:
        """Forget what was recorded."""
        with self._lock:
            self.tunnels.clear()
            self.forwarded.clear()
            self.refused.clear()

    def track(self, sock: socket.socket) -> None:
        """Remember an open socket so that :meth:`stop` can cut it."""
        with self._lock:
            self._open.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        """Forget a socket that closed."""
        with self._lock:
            self._open.discard(sock)

    def start(self) -> ConnectProxy:
        """Serve from a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and cut open tunnels."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
