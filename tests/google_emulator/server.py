"""HTTP plumbing: a threading HTTP/1.1 server (keep-alive, optional TLS) on 127.0.0.1:0.

The server knows nothing of Google: each request goes to an :class:`App`, which answers with
the exact bytes to send, or ``None`` to reset the connection without an answer.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

__all__ = ["App", "Server"]


class App(Protocol):
    """What the server calls for each request."""

    def respond(
        self, method: str, target: str, headers: dict[str, str], read_body: Callable[[], bytes]
    ) -> bytes | None:
        """The whole answer (status line, headers, body), or ``None`` for a connection reset."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``emu.requests`` instead."""

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _answer(self) -> None:
        headers = {key.lower(): value for key, value in self.headers.items()}
        assert self.server.app is not None, "the server has no app"
        data = self.server.app.respond(self.command, self.path, headers, self._read_body)
        if data is None:
            self._reset()
            return
        if headers.get("connection", "").lower() == "close":
            self.close_connection = True
        self.wfile.write(data)

    def _reset(self) -> None:
        # Linger 0 turns the close into a TCP RST: the client sees a reset, not a clean EOF.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class Server(ThreadingHTTPServer):
    """The listening server; ``start()`` serves in a daemon thread, ``stop()`` closes everything."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, app: App | None, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def port(self) -> int:
        """The port the server is bound to."""
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Wrap the connection in TLS (in the connection's own thread) and serve it."""
        conn = request
        if self.ssl_context is not None:
            try:
                conn = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        with self._open_lock:
            self._open.add(conn)
        try:
            _Handler(conn, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            with self._open_lock:
                self._open.discard(conn)
            if conn is not request:
                conn.close()

    def start(self) -> None:
        """Serve in a daemon thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket and every open connection."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
