"""Requests to the Calendar API with retries, and the one place where vendor errors become
syncd errors.

Each thread has its own ``AuthorizedHttp`` over its own ``httplib2.Http`` (neither is
thread-safe); the discovery-based service object is built once per endpoint and only makes
request objects, which are executed on the calling thread's HTTP object.

Two tables decide: :data:`STATUSES` for what Google answers (per operation, status and the
first ``errors[].reason``) and :data:`EXCEPTIONS` for what the HTTP stack raises. 429, 403
``rateLimitExceeded``/``userRateLimitExceeded`` and 5xx are retried with capped exponential
backoff and full jitter, honouring ``Retry-After``; a reset connection, a broken pipe or a
timeout rebuilds this thread's HTTP object and retries; ``403 quotaExceeded`` (and
``dailyLimitExceeded``, ``variableTermLimitExceeded``) pauses the whole
account for :attr:`Session.quota_pause` seconds, and a ``Retry-After`` longer than
:attr:`Session.max_wait` pauses it that long (every request of it fails at once meanwhile,
also in the next cycle);
a 401 is refreshed and retried once by ``AuthorizedHttp``, then the account needs consent.
Requests and token refreshes go through the proxy the environment names (:class:`ProxiedHttp`);
a proxy that is down is retried like a broken connection, one that refuses the tunnel (407:
wrong credentials) is not, and both messages name the proxy by host and port.
Anything else raised inside a request or a token refresh (a client library bug, a token
file google-auth chokes on) fails that calendar with a ``ConnectorError``; its traceback is
logged at debug level only. Waits end at once on :meth:`Session.interrupt`. Messages name
the calendar and the method, never a token (request URIs are not quoted: they hold sync and
page tokens).
"""

from __future__ import annotations

import http.client
import json
import random
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
import structlog
from google.auth.exceptions import GoogleAuthError, RefreshError, TransportError
from googleapiclient.discovery import build  # type: ignore[import-untyped]
from googleapiclient.errors import Error as ClientError  # type: ignore[import-untyped]
from googleapiclient.errors import HttpError

from connectors.google.account import Account, consent_hint
from connectors.google.options import GoogleOptions
from connectors.proxied import proxy_failure
from syncd.errors import (
    AlreadyExists,
    AuthError,
    Conflict,
    ConnectorError,
    CursorExpired,
    NotFound,
    TransientError,
)
from syncd.proxies import (
    ProxyFailure,
    ProxyRefused,
    ProxyUnsupported,
    authority,
    connect_to,
    open_tunnel,
    proxy_for,
    refusal,
)
from syncd.transport import ErrorRule, exception_rule, retry_after, status_rule

__all__ = [
    "EXCEPTIONS",
    "STATUSES",
    "CalendarGone",
    "ProxiedHttp",
    "Session",
    "resource_for",
    "service_for",
]

log = structlog.get_logger("syncd.google")


class CalendarGone(ConnectorError):
    """Google answered 404 for the calendar itself (deleted, or no longer shared)."""


@dataclass(frozen=True, slots=True)
class _Rule(ErrorRule):
    """An :class:`~syncd.transport.ErrorRule` with what Google's failures add."""

    rebuild: bool = False
    """Drop this thread's HTTP object before retrying (the connection is broken)."""
    pause: bool = False
    """Pause the whole account (Google's usage limits)."""


_RETRY_RATE = _Rule(TransientError, "rate limited by Google", retry=True)
_GONE = _Rule(NotFound, "does not exist")
_CHANGED = _Rule(Conflict, "changed since it was read")
_QUOTA = _Rule(TransientError, "Google's usage limits are exceeded for this account", pause=True)

# What Google answers: (operation, status, reason) -> rule; "*" is any operation, None any
# reason. Operations: sync (events.list with a syncToken), list, get, create, update, delete,
# calendar (calendarList / calendars).
STATUSES: Mapping[tuple[str, int, str | None], _Rule] = {
    ("*", 401, None): _Rule(AuthError, "Google refused the credentials"),
    ("*", 403, "rateLimitExceeded"): _RETRY_RATE,
    ("*", 403, "userRateLimitExceeded"): _RETRY_RATE,
    ("*", 403, "quotaExceeded"): _QUOTA,
    ("*", 403, "dailyLimitExceeded"): _QUOTA,
    ("*", 403, "variableTermLimitExceeded"): _QUOTA,
    ("*", 403, "insufficientPermissions"): _Rule(AuthError, "the token lacks a scope syncd needs"),
    ("*", 403, "forbiddenForNonOrganizer"): _Rule(
        ConnectorError, "only the organizer may change this"
    ),
    ("*", 403, None): _Rule(ConnectorError, "access is forbidden"),
    ("*", 404, None): _Rule(CalendarGone, "the calendar does not exist or is not shared"),
    ("*", 429, None): _RETRY_RATE,
    ("sync", 410, None): _Rule(CursorExpired, "Google no longer accepts the sync token"),
    ("get", 404, None): _GONE,
    ("get", 410, None): _GONE,
    ("update", 404, None): _GONE,
    ("update", 410, None): _GONE,
    ("update", 412, None): _CHANGED,
    ("delete", 404, None): _GONE,
    ("delete", 410, None): _GONE,
    ("delete", 412, None): _CHANGED,
    ("create", 409, None): _Rule(AlreadyExists, "already exists"),
    ("*", 400, None): _Rule(ConnectorError, "Google refused the request"),
}
_SERVER_ERROR = _Rule(TransientError, "server error", retry=True)
_UNEXPECTED = _Rule(ConnectorError, "unexpected reply")
_UNEXPECTED_RAISE = _Rule(
    ConnectorError, "the client library failed unexpectedly (details at --log-level debug)"
)

# What the HTTP stack raises. First match wins: a certificate error is an SSLError, which is
# an OSError; a reset connection is an OSError too.
EXCEPTIONS: tuple[tuple[type[BaseException], _Rule], ...] = (
    (
        ssl.SSLCertVerificationError,
        _Rule(ConnectorError, "TLS failed: certificate not trusted (see ca_file)"),
    ),
    (TimeoutError, _Rule(TransientError, "no answer within the timeout", retry=True, rebuild=True)),
    (ConnectionError, _Rule(TransientError, "the connection broke", retry=True, rebuild=True)),
    (
        http.client.HTTPException,
        _Rule(TransientError, "the HTTP exchange failed", retry=True, rebuild=True),
    ),
    (ssl.SSLError, _Rule(TransientError, "the TLS connection broke", retry=True, rebuild=True)),
    (
        httplib2.ServerNotFoundError,
        _Rule(TransientError, "cannot resolve the API host", retry=True),
    ),
    (
        httplib2.HttpLib2Error,
        _Rule(TransientError, "the HTTP exchange failed", retry=True, rebuild=True),
    ),
    (
        TransportError,
        _Rule(TransientError, "the token endpoint cannot be reached", retry=True, rebuild=True),
    ),
    (ValueError, _Rule(TransientError, "the reply is not JSON")),  # json decoding in the client
    (ClientError, _Rule(TransientError, "the client library could not read the reply")),
    # Local trouble under the HTTP stack: a CA bundle that cannot be read, no file handles.
    (OSError, _Rule(ConnectorError, "the client could not set up the connection")),
)
_RAISED = tuple(kind for kind, _rule in EXCEPTIONS)


class _HTTPSConnection(httplib2.HTTPSConnectionWithTimeout):  # type: ignore[misc]
    """httplib2's HTTPS connection, through the environment's proxy in a CONNECT tunnel;
    TLS (and ``ca_file``) stays between syncd and Google."""

    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.proxy = proxy_for(f"https://{authority(self.host, self.port)}/")

    def connect(self) -> None:
        """Connect directly, or open a tunnel through the proxy; then TLS."""
        if self.proxy is None:
            super().connect()
            return
        sock = open_tunnel(self.proxy, self.host, self.port, self.timeout)
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class _HTTPConnection(httplib2.HTTPConnectionWithTimeout):  # type: ignore[misc]
    """httplib2's plain HTTP connection, through the environment's proxy with absolute URIs
    (an emulator or a local endpoint; Google itself is HTTPS)."""

    def __init__(self, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.proxy = proxy_for(f"http://{authority(self.host, self.port)}/")

    def connect(self) -> None:
        """Connect to the server, or to the proxy."""
        if self.proxy is None:
            super().connect()
            return
        self.sock = connect_to(self.proxy, self.timeout)

    def putrequest(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        """Start the request; through a proxy with the absolute URI and the proxy's
        credentials."""
        if self.proxy is not None and url.startswith("/"):
            url = f"http://{authority(self.host, self.port)}{url}"
        super().putrequest(method, url, *args, **kwargs)
        if self.proxy is not None and self.proxy.authorization is not None:
            self.putheader("Proxy-Authorization", self.proxy.authorization)


_CONNECTIONS = {"https": _HTTPSConnection, "http": _HTTPConnection}


class ProxiedHttp(httplib2.Http):  # type: ignore[misc]
    """``httplib2.Http`` that reaches servers through the proxy the environment names
    (:mod:`syncd.proxies`, ``NO_PROXY`` included). httplib2's own proxy support needs PySocks,
    which syncd does not install: without it httplib2 ignores ``HTTPS_PROXY`` and connects
    directly."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(proxy_info=None, **kwargs)

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
        connection_type: Any = None,
    ) -> Any:
        """httplib2's request, on syncd's connections."""
        scheme = urlsplit(uri).scheme.lower()
        if connection_type is None:
            connection_type = _CONNECTIONS.get(scheme)
        response, content = super().request(
            uri, method, body, headers, redirections, connection_type
        )
        if response.status == 407 and scheme == "http":
            _refused_forward(uri, str(response.reason or ""))
        return response, content


def _refused_forward(uri: str, reason: str) -> None:
    """A 407 to a forwarded request is the proxy's refusal, not the server's answer: raised
    as :class:`ProxyRefused`, like a refused tunnel (a token refresh would otherwise read it
    as a refused grant)."""
    proxy = proxy_for(uri)
    if proxy is not None:
        parts = urlsplit(uri)
        target = authority(parts.hostname or "?", parts.port or 80)
        raise ProxyRefused(refusal(proxy, target, 407, reason, tunnel=False), 407)


class _Unused:
    """The HTTP object the shared service is built with: never used, every request gets the
    calling thread's own."""

    def request(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("requests are executed with a per-thread HTTP object")


_SERVICES: dict[str, Any] = {}
_RESOURCES: dict[tuple[str, str], Any] = {}
_SERVICES_LOCK = threading.Lock()


def service_for(endpoint: str) -> Any:
    """The Calendar v3 service object for ``endpoint`` (static discovery; built once)."""
    with _SERVICES_LOCK:
        service = _SERVICES.get(endpoint)
        if service is None:
            service = build(
                "calendar",
                "v3",
                http=_Unused(),
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": endpoint},
            )
            _SERVICES[endpoint] = service
        return service


def resource_for(endpoint: str, name: str) -> Any:
    """One collection of the service (``events``, ``calendars``, ``calendarList``), built
    once: making it builds every method from the discovery document, milliseconds each time,
    while its request objects are independent of each other."""
    key = (endpoint, name)
    with _SERVICES_LOCK:
        found = _RESOURCES.get(key)
    if found is None:
        found = getattr(service_for(endpoint), name)()
        with _SERVICES_LOCK:
            found = _RESOURCES.setdefault(key, found)
    return found


def _reason(error: HttpError) -> str | None:
    """The first ``errors[].reason`` of Google's error body (or ``error`` of a token reply)."""
    try:
        data = json.loads(error.content.decode("utf-8"))
        detail = data["error"]
        if isinstance(detail, str):
            return detail
        return str(detail["errors"][0]["reason"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _status_rule(operation: str, status: int, reason: str | None) -> _Rule:
    rule = status_rule(STATUSES, operation, status, () if reason is None else (reason,))
    if rule is not None:
        return rule
    if status >= 500:
        return _SERVER_ERROR
    return _UNEXPECTED


def _span(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Session:
    """Sends one calendar's requests: per-thread HTTP, retries, one error table."""

    def __init__(
        self,
        name: str,
        options: GoogleOptions,
        account: Account,
        *,
        sleep: Callable[[float], None] | None = None,
        jitter: Callable[[], float] = random.random,
        http_factory: Callable[[Any], Any] | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self.account = account
        self.interrupted = threading.Event()
        """Set when syncd stops: waits end at once and no further retry is made."""
        self.sleep: Callable[[float], object] = sleep or self.interrupted.wait
        self.jitter = jitter
        self.attempts = 5
        self.backoff = 1.0
        """Base of the exponential backoff in seconds (tests make it small)."""
        self.max_backoff = 32.0
        self.max_wait = 60.0
        """A longer ``Retry-After`` is not waited for: the next cycle retries."""
        self.quota_pause = 300.0
        self.http_factory: Callable[[Any], Any] = http_factory or self._authorized_http
        """Makes a thread's HTTP object from the credentials (tests pass a fake transport)."""
        self._local = threading.local()

    @property
    def events(self) -> Any:
        """The ``events`` collection, which makes request objects."""
        return resource_for(self.options.api_endpoint, "events")

    def resource(self, name: str) -> Any:
        """Another collection of the service (``calendars``, ``calendarList``)."""
        return resource_for(self.options.api_endpoint, name)

    def _authorized_http(self, credentials: Any) -> Any:
        plain = ProxiedHttp(
            timeout=self.options.timeout,
            ca_certs=None if self.options.ca_file is None else str(self.options.ca_file),
        )
        return google_auth_httplib2.AuthorizedHttp(credentials, http=plain, max_refresh_attempts=1)

    def _http(self) -> Any:
        credentials = self.account.credentials(self.name)
        held = getattr(self._local, "http", None)
        if held is None or getattr(self._local, "credentials", None) is not credentials:
            held = self.http_factory(credentials)
            self._local.http, self._local.credentials = held, credentials
        return held

    def _fresh(self, http: Any) -> None:
        """A token refresh under the account's lock (``AuthorizedHttp`` would refresh on
        every thread that finds the token expired)."""
        plain = getattr(http, "http", None)
        if isinstance(http, google_auth_httplib2.AuthorizedHttp) and plain is not None:
            self.account.refresh(google_auth_httplib2.Request(plain))

    def _drop_http(self) -> None:
        held = getattr(self._local, "http", None)
        self._local.http = None
        inner = getattr(held, "http", held)
        for connection in list(getattr(inner, "connections", {}).values()):
            connection.close()

    def execute(self, operation: str, request: Any, what: str) -> Any:
        """Execute ``request`` until it succeeds; raise the mapped syncd error.

        ``what`` names the call in messages (``events.patch <id>``)."""
        for attempt in range(1, self.attempts + 1):
            self._check_pause(what)
            wait: float | None = None
            http = self._http()
            try:
                self._fresh(http)
                result = request.execute(http=http)
                self.account.after_request(self.name)
                self.account.succeeded()
                return result
            except HttpError as error:
                self.account.after_request(self.name)
                status, reason = int(error.resp.status), _reason(error)
                rule = _status_rule(operation, status, reason)
                wait = retry_after(error.resp.get("retry-after"))
                detail = f"{rule.message} (HTTP {status}{f' {reason}' if reason else ''}, {what})"
                if rule.error is ConnectorError and status == 400:
                    detail += f": {str(error.reason)[:200]}"
            except (ProxyFailure, ProxyUnsupported) as error:  # before _RAISED: OSError
                rule, detail = self._proxy_rule(error, what)
            except RefreshError as error:
                rule, detail = self._refresh_rule(error, what)
            except _RAISED as error:
                rule = exception_rule(error, EXCEPTIONS)
                detail = f"{rule.message} ({what}: {type(error).__name__})"
                if rule.rebuild:
                    self._drop_http()
            except GoogleAuthError as error:
                rule = _Rule(AuthError, "the credentials cannot be used")
                detail = f"{rule.message} ({type(error).__name__}); {consent_hint(self.name)}"
            except Exception as error:  # the vendor boundary: no vendor exception leaves it
                log.debug("google.unexpected", calendar=self.name, what=what, exc_info=True)
                rule = _UNEXPECTED_RAISE
                detail = f"{rule.message} ({what}: {type(error).__name__})"
            if rule.pause:
                self.account.pause(self.quota_pause, "Google's usage limits were exceeded")
                detail += f"; paused for {self.quota_pause / 60:.0f} min"
            elif rule.retry and attempt < self.attempts and not self.interrupted.is_set():
                delay = self._delay(attempt) if wait is None else wait
                if delay <= self.max_wait:
                    log.warning("google.retry", calendar=self.name, reason=detail, wait=delay)
                    self.sleep(delay)
                    if not self.interrupted.is_set():
                        continue
                    detail += "; not retried, syncd is stopping"
                else:
                    self.account.pause(delay, f"Google asked to wait {delay:.0f}s")
                    detail += f"; Google asks to wait {delay:.0f}s, the account waits that long"
            elif rule.retry and attempt < self.attempts and self.interrupted.is_set():
                # stopped before the wait began
                detail += "; not retried, syncd is stopping"
            raise self._failure(rule, detail)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _proxy_rule(self, error: ProxyFailure | ProxyUnsupported, what: str) -> tuple[_Rule, str]:
        """The shared proxy table's verdict (connectors.proxied); a proxy that failed leaves
        this thread's connections unusable."""
        found = proxy_failure(error, self.options.api_endpoint, what)
        assert found is not None  # proxy_failure knows every proxy exception
        shared, detail = found
        if shared.retry:
            self._drop_http()
        return _Rule(shared.error, shared.message, retry=shared.retry), detail

    def _failure(self, rule: _Rule, detail: str) -> ConnectorError:
        if rule.error is AuthError:
            if "needs consent" not in detail:
                detail = f"{detail}; {consent_hint(self.name)}"
            self.account.log_needs_consent(self.name, detail)
        return rule.error(self.name, detail)

    def _refresh_rule(self, error: RefreshError, what: str) -> tuple[_Rule, str]:
        if error.retryable:
            rule = _Rule(TransientError, "the token endpoint failed", retry=True)
            return rule, f"{rule.message} ({what})"
        rule = _Rule(AuthError, "the token could not be refreshed")
        grant = "invalid_grant" in str(error.args[0] if error.args else "")
        why = "the refresh token was revoked or expired" if grant else "the token endpoint refused"
        return rule, f"{rule.message}: {why} ({what}); {consent_hint(self.name)}"

    def _check_pause(self, what: str) -> None:
        left, reason = self.account.paused()
        if left > 0:
            raise TransientError(
                self.name,
                f"{reason} for this account; requests wait {_span(left)} more ({what} not sent)",
            )

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter."""
        step = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return step * self.jitter()

    def interrupt(self) -> None:
        """syncd is stopping: end retry waits now and make no further retries."""
        self.interrupted.set()

    def close(self) -> None:
        """Close this thread's connections (others close with their threads)."""
        self._drop_http()
