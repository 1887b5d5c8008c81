"""The HTTP side: authentication, per-mailbox concurrency, injected faults, recording.

:class:`Dispatcher` serves one request (from the socket or from inside a ``$batch``):
record it → authenticate the bearer token → count it against its mailbox (more than the
limit in flight → 429) → apply an injected fault, if one matches → route it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tests.graph_emulator.batch import Inner, run_batch
from tests.graph_emulator.errors import GraphError, bad_request, unauthenticated
from tests.graph_emulator.odata import normalize_query, parse_prefer
from tests.graph_emulator.routes import Call, Reply, target_user

if TYPE_CHECKING:
    from tests.graph_emulator.emulator import GraphEmulator

__all__ = ["FAULTS", "Dispatcher", "Fault", "Raw", "Recorded", "Reset"]

FAULTS = ("429", "503", "500", "504", "slow", "reset", "401", "404", "400")
SLOW_DEFAULT = 1.0
_JSON = (
    "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; "
    "charset=utf-8"
)


class Reset(Exception):
    """Close the connection without an answer."""


@dataclass
class Recorded:
    """One request as the emulator saw it.

    ``path`` is the request path as sent (``/v1.0/...``, percent-decoded); ``query`` the
    decoded query parameters; ``headers`` with lower-case names; ``body`` the parsed JSON (or
    None); ``status`` the answer (None: the connection was reset); ``user`` the mailbox the
    request addressed; ``batch`` marks the inner requests of a ``$batch``.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None
    status: int | None = None
    user: str | None = None
    batch: bool = False


@dataclass
class Raw:
    """A request before authentication: ``path`` follows ``/v1.0``."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    prefer: list[str]
    body: Any = None
    body_error: bool = False


@dataclass
class Fault:
    """An injected fault waiting for matching requests."""

    kind: str
    times: int
    method: str | None = None
    path_contains: str | None = None
    retry_after: int | None = None
    delay: float = 0.0

    def matches(self, method: str, target: str) -> bool:
        """Whether a request (``target``: path and query) triggers it."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in target


@dataclass
class _Flight:
    lock: threading.Lock = field(default_factory=threading.Lock)
    current: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    """Serves requests for a :class:`GraphEmulator`."""

    def __init__(self, emulator: GraphEmulator) -> None:
        self.emulator = emulator
        self._flight = _Flight()
        self._faults: list[Fault] = []
        self._faults_lock = threading.Lock()
        self._record_lock = threading.Lock()

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault."""
        with self._faults_lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, target: str) -> Fault | None:
        with self._faults_lock:
            for fault in self._faults:
                if fault.matches(method, target):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def run(self, raw: Raw, *, principal: str | None = None, batch: bool = False) -> Reply:
        """Serve one request; raises :class:`Reset` for a connection reset."""
        record = Recorded(
            raw.method,
            "/v1.0" + urllib.parse.unquote(raw.path),
            dict(raw.query),
            dict(raw.headers),
            batch=batch,
        )
        with self._record_lock:
            self.emulator.requests.append(record)
        try:
            if raw.body_error:
                raise bad_request("Unable to read JSON request payload.", "BadRequest")
            record.body = raw.body
            who = principal or self._authenticate(raw.headers)
            record.user = self._mailbox_user(who, raw.path)
            call = Call(
                raw.method,
                raw.path,
                normalize_query(raw.query),
                raw.headers,
                parse_prefer(raw.prefer),
                raw.body,
                who,
            )
            reply = self._serve(call, record.user, batch)
        except GraphError as error:
            reply = Reply(error.status, error.body(), dict(error.headers))
        except Reset:
            raise
        except Exception as error:  # the emulator's own bug: say so, never hang the client
            traceback.print_exc()
            reply = Reply(500, GraphError(500, "EmulatorBug", repr(error)).body())
        record.status = reply.status
        return reply

    def _authenticate(self, headers: dict[str, str]) -> str:
        header = headers.get("authorization", "")
        if not header:
            raise unauthenticated("Access token is empty.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("Access token validation failure. Invalid audience.")
        token = token.strip()
        idp = self.emulator.idp
        if idp is None:
            # Benches run without an identity provider: a mailbox address is that user.
            return token if token.lower() in self.emulator.store.mailboxes else "app:anonymous"
        subject = idp.validate(token)
        if subject is None:
            raise unauthenticated("Lifetime validation failed, the token is expired.")
        return subject

    def _mailbox_user(self, principal: str, path: str) -> str | None:
        user = target_user(principal, path)
        if user is None:
            return None
        mailbox = self.emulator.store.mailboxes.get(user)
        return mailbox.user if mailbox else user

    def _serve(self, call: Call, user: str | None, batch: bool) -> Reply:
        with self._admitted(user) as admitted:
            if not admitted:
                raise GraphError(
                    429,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                    headers={"Retry-After": str(self.emulator.throttle_retry_after)},
                )
            target = (
                "/v1.0"
                + call.path
                + ("?" + urllib.parse.urlencode(call.query) if call.query else "")
            )
            fault = self._take_fault(call.method, urllib.parse.unquote(target))
            if fault is not None:
                _apply(fault)
            if call.path.rstrip("/") == "/$batch":
                return self._batch(call, batch)
            return self.emulator.api.handle(call)

    @contextlib.contextmanager
    def _admitted(self, user: str | None) -> Iterator[bool]:
        if user is None:
            yield True
            return
        flight = self._flight
        with flight.lock:
            count = flight.current.get(user, 0) + 1
            flight.current[user] = count
            peaks = self.emulator.peak_in_flight
            peaks[user] = max(peaks.get(user, 0), count)
        try:
            yield count <= self.emulator.concurrency_limit
        finally:
            with flight.lock:
                flight.current[user] -= 1

    def _batch(self, call: Call, nested: bool) -> Reply:
        if nested:
            raise bad_request("A batch request cannot contain another batch.", "BadRequest")
        if call.method != "POST":
            raise GraphError(405, "BadRequest", "A batch is sent with POST.")

        def serve(inner: Inner) -> Reply:
            raw = Raw(
                inner.method,
                inner.path,
                inner.query,
                inner.headers,
                [inner.headers["prefer"]] if "prefer" in inner.headers else [],
                inner.body,
            )
            return self.run(raw, principal=call.principal, batch=True)

        return run_batch(call.body, serve)


def _apply(fault: Fault) -> None:
    """Act out a fault: wait, then raise its answer (``slow`` then goes on normally)."""
    if fault.delay or fault.kind == "slow":
        time.sleep(fault.delay or SLOW_DEFAULT)
    if fault.kind == "slow":
        return
    if fault.kind == "reset":
        raise Reset
    retry = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
    answers = {
        "429": (429, "TooManyRequests", "Too many requests.", {"Retry-After": "1", **retry}),
        "503": (503, "ServiceNotAvailable", "The service is temporarily unavailable.", retry),
        "500": (500, "generalException", "General exception while processing.", {}),
        "504": (504, "GatewayTimeout", "The gateway timed out.", retry),
        "401": (
            401,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
            {},
        ),
        "404": (404, "ErrorItemNotFound", "The specified object was not found in the store.", {}),
        "400": (400, "ErrorInvalidRequest", "The request is invalid.", {}),
    }
    status, code, message, headers = answers[fault.kind]
    raise GraphError(status, code, message, headers=headers)


class Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into :class:`Raw` requests for the dispatcher."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    server_version = "FakeGraph/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``GraphEmulator.requests`` instead."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        raw_body = self._read_body()
        if not (split.path == "/v1.0" or split.path.startswith("/v1.0/")):
            self._send(Reply(404, GraphError(404, "BadRequest", "Only /v1.0 is served.").body()))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = Raw(
            self.command,
            split.path[len("/v1.0") :],
            urllib.parse.parse_qsl(split.query, keep_blank_values=True),
            headers,
            self.headers.get_all("Prefer") or [],
        )
        if raw_body:
            try:
                raw.body = json.loads(raw_body)
            except ValueError:
                raw.body_error = True
        emulator: GraphEmulator = self.server.owner  # type: ignore[attr-defined]
        try:
            reply = emulator.dispatcher.run(raw)
        except Reset:
            self._reset()
            return
        self._send(reply)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if reply.body is not None:
            self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "private")
        self.send_header("request-id", str(uuid.uuid4()))
        self.send_header(
            "client-request-id", self.headers.get("client-request-id") or str(uuid.uuid4())
        )
        self.send_header("OData-Version", "4.0")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        """Abort the connection (RST) without a byte of answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
