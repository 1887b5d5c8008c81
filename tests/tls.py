"""One test certificate authority and an HTTPS server base for the test servers.

The CA is made once per process (``trustme`` keeps its key in memory). Servers present a
certificate for ``127.0.0.1`` and ``localhost`` signed by it; clients trust it through the PEM
file :func:`ca_file` writes (a connector's ``ca_file`` option, MSAL's ``verify=``, requests'
``verify=``).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

__all__ = ["HTTPSServer", "HTTPSService", "ca_file", "server_context", "test_ca"]


_lock = threading.Lock()
_ca: list[trustme.CA] = []


def test_ca() -> trustme.CA:
    """The process-wide test CA."""
    with _lock:  # two threads starting servers at once must still share one CA
        if not _ca:
            _ca.append(trustme.CA())
        return _ca[0]


# Imported into a test module, the name would otherwise be collected as a test.
test_ca.__test__ = False  # type: ignore[attr-defined]


@functools.cache
def _leaf(host: str) -> trustme.LeafCert:
    names = list(dict.fromkeys([host, "127.0.0.1", "localhost"]))
    return test_ca().issue_cert(*names)


def server_context(host: str = "127.0.0.1") -> ssl.SSLContext:
    """A server-side TLS context with a certificate for ``host``, 127.0.0.1 and localhost."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _leaf(host).configure_cert(context)
    return context


def ca_file(folder: Path) -> Path:
    """Write the CA certificate as PEM into ``folder`` and return the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "test-ca.pem"
    path.write_bytes(test_ca().cert_pem.bytes())
    return path


class HTTPSServer(ThreadingHTTPServer):
    """A threaded HTTPS server on 127.0.0.1; handlers reach their emulator as ``server.owner``.

    The TLS handshake happens in each connection's own thread, so one stalled client cannot
    hold up the others. Open connections are tracked so that stopping can drop them.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext,
        *,
        owner: Any = None,
        port: int = 0,
    ) -> None:
        self.context = context
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), handler)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server_address[1])

    def get_request(self) -> tuple[Any, Any]:
        """Accept a connection and wrap it for TLS without handshaking yet."""
        sock, address = super().get_request()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add about 40 ms to every answer.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake in the connection's thread, then serve it."""
        with self._connections_lock:
            self._connections.add(request)
        try:
            request.settimeout(10)
            request.do_handshake()
            super().finish_request(request, client_address)
        except (OSError, ssl.SSLError):
            return
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print a handler's traceback, but not for connections the client dropped."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)

    def drop_connections(self) -> None:
        """Cut every open connection (kept-alive ones too)."""
        with self._connections_lock:
            open_now = list(self._connections)
        for sock in open_now:
            with contextlib.suppress(OSError):
                # The plain socket's shutdown: the TLS object stays for the thread reading it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class HTTPSService:
    """An :class:`HTTPSServer` served from a daemon thread; it can stop and start again.

    ``stop()`` closes the listening socket and cuts open connections (a client's kept-alive
    connection does not outlive the server); ``start()`` after it serves again on the same port,
    which is how a test plays an outage.
    """

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext | None, owner: Any
    ) -> None:
        self._handler = handler
        self._context = context or server_context()
        self._owner = owner
        self._server: HTTPSServer | None = HTTPSServer(handler, self._context, owner=owner)
        self.port = self._server.port
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Serve (again) from a daemon thread."""
        if self._thread is not None:
            return
        if self._server is None:
            self._server = HTTPSServer(
                self._handler, self._context, owner=self._owner, port=self.port
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the port and cut open connections."""
        server, self._server = self._server, None
        if server is None:
            return
        if self._thread is not None:
            server.shutdown()
            self._thread.join()
            self._thread = None
        server.drop_connections()
        server.server_close()
