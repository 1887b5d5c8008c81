"""Requests with retries, and the one place where vendor errors and HTTP statuses become
syncd errors.

Two tables decide: :data:`EXCEPTIONS` for what the HTTP stack raises, :data:`STATUSES` for
what the server answers (per operation, status and ``DAV:error`` precondition). Connection
errors, timeouts, 5xx and 429 are retried with capped exponential backoff and jitter,
honouring ``Retry-After``; then ``TransientError``. Messages name the calendar and the path,
never a credential; when a proxy is in the way (:mod:`syncd.proxies`), they name it by host
and port.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import structlog
from caldav.lib.error import DAVError
from niquests.exceptions import ConnectionError as HTTPConnectionError
from niquests.exceptions import RequestException, SSLError, Timeout

from connectors.caldav.dav import MalformedReply
from connectors.caldav.transport import Reply, Transport
from connectors.proxied import proxy_reply, raised_rule
from syncd.errors import (
    AlreadyExists,
    AuthError,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
    TransientError,
)
from syncd.proxies import ProxyUnsupported
from syncd.transport import ErrorRule, retry_after, status_rule

__all__ = ["EXCEPTIONS", "STATUSES", "Session", "SyncUnsupported"]

T = TypeVar("T")
log = structlog.get_logger("syncd.caldav")


class SyncUnsupported(ConnectorError):
    """The server does not implement sync-collection; the connector lists etags instead."""


# What the HTTP stack raises. First match wins: SSLError is a ConnectionError.
EXCEPTIONS: tuple[tuple[type[BaseException], ErrorRule], ...] = (
    (SSLError, ErrorRule(ConnectorError, "TLS failed: certificate not trusted (see ca_file)")),
    (Timeout, ErrorRule(TransientError, "no answer within the timeout", retry=True)),
    (HTTPConnectionError, ErrorRule(TransientError, "cannot connect to the server", retry=True)),
    (RequestException, ErrorRule(TransientError, "the HTTP exchange failed", retry=True)),
    (SyntaxError, ErrorRule(TransientError, "malformed XML in the reply")),  # lxml's XMLSyntaxError
    (MalformedReply, ErrorRule(TransientError, "unexpected reply")),
    (
        NotImplementedError,
        ErrorRule(AuthError, "needs credentials: the server offers no supported authentication"),
    ),
    (DAVError, ErrorRule(ConnectorError, "the WebDAV exchange failed")),
    # Local trouble under the HTTP stack: a CA bundle that cannot be read, no file handles.
    (OSError, ErrorRule(ConnectorError, "the client could not set up the connection")),
)
_RAISED: tuple[type[BaseException], ...] = (
    *(kind for kind, _rule in EXCEPTIONS),
    ProxyUnsupported,  # read from connectors.proxied's table
)

_EXPIRED = ErrorRule(CursorExpired, "the server no longer accepts the sync token")
_UNSUPPORTED = ErrorRule(SyncUnsupported, "the server does not support sync-collection")
_GONE = ErrorRule(NotFound, "does not exist")
_CHANGED = ErrorRule(Conflict, "changed since it was read")

# What the server answers: (operation, status, precondition) -> rule; "*" is any operation.
STATUSES: Mapping[tuple[str, int, str | None], ErrorRule] = {
    ("*", 401, None): ErrorRule(AuthError, "needs credentials: the server refused them"),
    ("*", 403, None): ErrorRule(AuthError, "needs credentials: access is forbidden"),
    ("sync", 403, "valid-sync-token"): _EXPIRED,
    ("sync", 409, "valid-sync-token"): _EXPIRED,
    ("sync", 412, "valid-sync-token"): _EXPIRED,
    ("sync", 403, "supported-report"): _UNSUPPORTED,
    ("sync", 405, None): _UNSUPPORTED,
    ("sync", 501, None): _UNSUPPORTED,
    ("get", 404, None): _GONE,
    ("update", 404, None): _GONE,
    ("delete", 404, None): _GONE,
    ("update", 412, None): _CHANGED,
    ("delete", 412, None): _CHANGED,
    ("create", 412, None): ErrorRule(AlreadyExists, "already exists"),
    ("*", 429, None): ErrorRule(TransientError, "rate limited by the server", retry=True),
}
_SERVER_ERROR = ErrorRule(TransientError, "server error", retry=True)


def _status_rule(operation: str, reply: Reply) -> ErrorRule:
    rule = status_rule(STATUSES, operation, reply.status, sorted(reply.preconditions))
    if rule is not None:
        return rule
    if reply.status >= 500:
        return _SERVER_ERROR
    return ErrorRule(ConnectorError, "unexpected reply")


class Session:
    """Sends requests for one calendar: retries, maps errors, logs a credential problem once."""

    def _interruptible_sleep(self, seconds: float) -> None:
        self.interrupted.wait(seconds)

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_wait: float = 60.0,
    ) -> None:
        self.name = name
        self.transport = transport
        self.interrupted = threading.Event()
        """Set when syncd stops: waits end at once and no further retry is made."""
        self.sleep: Callable[[float], None] = (
            sleep if sleep is not time.sleep else self._interruptible_sleep
        )
        self.jitter = jitter
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self._auth_logged = False

    def request(
        self,
        operation: str,
        method: str,
        url: str,
        read: Callable[[Reply], T],
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = (200, 201, 204, 207),
    ) -> T:
        """Send until a reply in ``ok`` can be ``read``; raise the mapped syncd error."""
        path = urlsplit(url).path or url
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                reply = self.transport.send(method, url, body, headers)
                if reply.status in ok:
                    result = read(reply)
                    self._auth_logged = False
                    return result
                rule, detail = self._status(operation, method, url, reply)
                wait = retry_after(reply.headers.get("retry-after"))
            except _RAISED as error:
                rule, detail = raised_rule(error, url, f"{method} {path}", EXCEPTIONS)
            except AuthError as error:
                self._log_auth(str(error))
                raise
            left = attempt < self.attempts
            if rule.retry and left and self._pause(attempt, wait, detail):
                continue
            raise self._failure(rule, detail, wait, retries_left=left)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _pause(self, attempt: int, wait: float | None, detail: str) -> bool:
        """Wait before the next attempt; False when the wait is too long or syncd stops."""
        if self.interrupted.is_set():
            return False
        delay = self._delay(attempt) if wait is None else wait
        if delay > self.max_wait:
            return False
        log.warning("caldav.retry", calendar=self.name, reason=detail, wait=delay)
        self.sleep(delay)
        return not self.interrupted.is_set()

    def _failure(
        self, rule: ErrorRule, detail: str, wait: float | None, *, retries_left: bool
    ) -> ConnectorError:
        """The error for a failed request; a retryable one says why it was not retried:
        syncd is stopping (the interrupt may come before or during a wait), or the server
        asked for a wait longer than ``max_wait``."""
        if rule.retry and retries_left:
            if self.interrupted.is_set():
                detail += "; not retried, syncd is stopping"
            elif wait is not None and wait > self.max_wait:
                detail += f"; the server asks to wait {wait:.0f}s, the next cycle retries"
        failure = rule.error(self.name, detail)
        if isinstance(failure, AuthError):
            self._log_auth(detail)
        return failure

    @staticmethod
    def _status(operation: str, method: str, url: str, reply: Reply) -> tuple[ErrorRule, str]:
        path = urlsplit(url).path or url
        found = proxy_reply(reply.status, "", url, f"{method} {path}")
        if found is not None:
            return found
        rule = _status_rule(operation, reply)
        return rule, f"{rule.message} (HTTP {reply.status} for {method} {path})"

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with jitter: half the step plus a random half."""
        step = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return step * (0.5 + self.jitter() / 2)

    def _log_auth(self, detail: str) -> None:
        if not self._auth_logged:
            log.error("caldav.needs_credentials", calendar=self.name, reason=detail)
            self._auth_logged = True
