"""Requests to Microsoft Graph with retries, and the one place where HTTP statuses and the
HTTP stack's exceptions become syncd errors.

Two tables decide: :data:`EXCEPTIONS` for what ``requests`` raises and :data:`STATUSES` for
what Graph answers (per operation, status and error code). 429, 503, 500, 502, 504 and
connection errors are retried, honouring ``Retry-After``, else after a capped exponential
backoff with full jitter; then ``TransientError``. A 401 renews the access token once. At
most :data:`MAX_IN_FLIGHT` requests per mailbox are in flight across every connector of the
process (Outlook's documented limit). Waits end at once on :meth:`GraphSession.interrupt`.
Messages name the calendar, the operation and the path, never a token. Requests go through
the proxy the environment names (:mod:`syncd.proxies`); a failure there names the proxy by
host and port.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import structlog
from requests.exceptions import ConnectionError as HTTPConnectionError
from requests.exceptions import RequestException, SSLError, Timeout

from connectors.proxied import ProxiedSession, proxy_reply, raised_rule
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

__all__ = [
    "BATCH_SIZE",
    "EXCEPTIONS",
    "MAX_IN_FLIGHT",
    "STATUSES",
    "Call",
    "Credentials",
    "DeltaExpired",
    "GraphSession",
    "Reply",
    "Slots",
    "error_code",
    "mailbox_slots",
]

MAX_IN_FLIGHT = 4
"""Outlook serves at most four concurrent requests per app and mailbox."""
BATCH_SIZE = 20
"""Requests per JSON ``$batch`` (Graph's limit)."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
PREFER = 'IdType="ImmutableId", outlook.timezone="UTC", outlook.body-content-type="text"'
"""Sent on every request: stable ids, times in UTC, bodies as text."""

log = structlog.get_logger("syncd.outlook")


class Credentials(Protocol):
    """Where access tokens come from (:mod:`connectors.outlook.auth`)."""

    def token(self) -> str:
        """A valid access token."""
        ...

    def renew(self) -> str:
        """A new access token, after Graph refused the last one."""
        ...

    def mailbox(self) -> str:
        """Which mailbox the requests reach (an address), without contacting anything."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: status, headers (lower-case names) and the JSON body (None if empty)."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True, slots=True)
class Call:
    """One request inside a JSON batch; ``url`` is relative to the service root."""

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


# What requests raises. First match wins: SSLError is a ConnectionError.
EXCEPTIONS: tuple[tuple[type[BaseException], ErrorRule], ...] = (
    (SSLError, ErrorRule(ConnectorError, "TLS failed: certificate not trusted (see ca_file)")),
    (Timeout, ErrorRule(TransientError, "no answer within the timeout", retry=True)),
    (HTTPConnectionError, ErrorRule(TransientError, "cannot connect to Graph", retry=True)),
    (RequestException, ErrorRule(TransientError, "the HTTP exchange failed", retry=True)),
    # Local trouble under the HTTP stack: a CA file that cannot be read, no file handles.
    (OSError, ErrorRule(ConnectorError, "the client could not set up the connection")),
)
# A proxy's trouble is read first, from connectors.proxied's table.
_RAISED: tuple[type[BaseException], ...] = (
    *(kind for kind, _rule in EXCEPTIONS),
    ProxyUnsupported,
)


class DeltaExpired(CursorExpired):
    """Graph forgot the state of a delta round (410, SyncStateNotFound, ResyncRequired)."""


_EXPIRED = ErrorRule(DeltaExpired, "Graph no longer accepts the delta link")
_GONE = ErrorRule(NotFound, "does not exist")
_CHANGED = ErrorRule(Conflict, "changed since it was read")
_RETRY = ErrorRule(TransientError, "Graph is busy or failing", retry=True)

# What Graph answers: (operation, status, error-code marker) -> rule; "*" is any operation.
# A marker matches when the lower-cased error code contains it.
STATUSES: Mapping[tuple[str, int, str | None], ErrorRule] = {
    ("*", 401, None): ErrorRule(AuthError, "needs consent: Graph refused the access token"),
    ("*", 403, None): ErrorRule(
        AuthError, "access denied: the app lacks Calendars.ReadWrite for this mailbox"
    ),
    ("delta", 410, None): _EXPIRED,
    ("delta", 400, "syncstate"): _EXPIRED,
    ("delta", 400, "resyncrequired"): _EXPIRED,
    ("delta", 404, "syncstate"): _EXPIRED,
    ("delta", 404, "resyncrequired"): _EXPIRED,
    # The calendar was deleted (perhaps re-made under the same name): a new round finds it.
    ("delta", 404, "itemnotfound"): ErrorRule(CursorExpired, "the calendar is gone"),
    ("delta", 404, None): ErrorRule(ConnectorError, "the calendar is gone"),
    ("calendar", 404, None): ErrorRule(ConnectorError, "the calendar does not exist"),
    ("get", 404, None): _GONE,
    ("update", 404, None): _GONE,
    ("delete", 404, None): _GONE,
    ("update", 412, None): _CHANGED,
    ("delete", 412, None): _CHANGED,
    ("create", 409, None): ErrorRule(AlreadyExists, "already exists"),
    ("create", 404, None): ErrorRule(NotFound, "the calendar does not exist"),
    ("find", 404, None): ErrorRule(NotFound, "the calendar does not exist"),
    ("*", 429, None): ErrorRule(TransientError, "throttled by Graph", retry=True),
}
_MARKERS = ("syncstate", "resyncrequired", "itemnotfound")


def error_code(reply: Reply) -> str:
    """The ``error.code`` of a Graph error body, or ""."""
    body = reply.body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        code = body["error"].get("code")
        return code if isinstance(code, str) else ""
    return ""


def _status_rule(operation: str, reply: Reply) -> ErrorRule:
    code = error_code(reply).lower()
    markers = [marker for marker in _MARKERS if marker in code]
    rule = status_rule(STATUSES, operation, reply.status, markers)
    if rule is not None:
        return rule
    if reply.status in RETRY_STATUSES:
        return _RETRY
    return ErrorRule(ConnectorError, "unexpected answer")


class Slots:
    """The in-flight requests one mailbox may still take; a request takes one slot, a
    ``$batch`` one per inner request up to all of them (taken at once: no deadlock)."""

    def __init__(self, limit: int = MAX_IN_FLIGHT) -> None:
        self.limit = limit
        self.free = limit
        self._changed = threading.Condition()

    def acquire(self, count: int, timeout: float) -> bool:
        """Take ``count`` slots together; False when they are not free within ``timeout``."""
        count = min(count, self.limit)
        with self._changed:
            if not self._changed.wait_for(lambda: self.free >= count, timeout):
                return False
            self.free -= count
            return True

    def release(self, count: int) -> None:
        """Give back ``count`` slots."""
        with self._changed:
            self.free = min(self.limit, self.free + min(count, self.limit))
            self._changed.notify_all()


class _Slots:
    """Per-mailbox slots shared by every connector in the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str], Slots] = {}

    def get(self, graph_url: str, mailbox: str) -> Slots:
        key = (graph_url.rstrip("/").lower(), mailbox.lower())
        with self._lock:
            found = self._slots.get(key)
            if found is None:
                found = self._slots[key] = Slots()
            return found


mailbox_slots = _Slots()
"""The process-wide semaphores keyed by (service root, mailbox)."""


class GraphSession:
    """Sends requests for one calendar: auth, retries, the in-flight limit, error mapping."""

    def __init__(
        self,
        name: str,
        graph_url: str,
        credentials: Credentials,
        *,
        verify: bool | str = True,
        timeout: float = 30.0,
        sleep: Callable[[float], object] | None = None,
        jitter: Callable[[], float] = random.random,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_wait: float = 120.0,
    ) -> None:
        self.name = name
        self.graph_url = graph_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.interrupted = threading.Event()
        """Set when syncd stops: waits end at once and no further retry is made."""
        self.sleep: Callable[[float], object] = sleep or self.interrupted.wait
        self.jitter = jitter
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        # Only the proxy comes from the environment: REQUESTS_CA_BUNDLE and friends would
        # silently replace a configured ca_file.
        self.http = ProxiedSession()
        self.http.verify = verify
        self.requests_sent = 0
        """Requests put on the wire (a batch counts once), for tests and benchmarks."""
        self._slots: Slots | None = None
        self._auth_logged = False

    def interrupt(self) -> None:
        """End waits now and make no further retries."""
        self.interrupted.set()

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (relative to the service root)."""
        return f"{self.graph_url}/{path.lstrip('/')}"

    def request(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: Collection[int] = (200, 201, 202, 204),
        weight: int = 1,
    ) -> Reply:
        """Send until a reply in ``ok`` comes; raise the mapped syncd error otherwise.
        ``weight``: the mailbox slots the request takes (a batch's inner requests)."""
        path = urlsplit(url).path or url
        renewed = False
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                reply = self._send(method, url, body, headers, weight)
            except _RAISED as error:
                what = f"{operation}: {method} {path}"
                rule, detail = raised_rule(error, url, what, EXCEPTIONS)
            else:
                if reply.status in ok:
                    self._auth_logged = False
                    return reply
                if reply.status == 401 and not renewed:
                    renewed = True
                    self.credentials.renew()
                    continue
                rule = _status_rule(operation, reply)
                wait = retry_after(reply.headers.get("retry-after"))
                code = error_code(reply)
                shown = f", {code}" if code else ""
                detail = f"{rule.message} (HTTP {reply.status}{shown} for {method} {path})"
                refused = proxy_reply(reply.status, "", url, f"{operation}: {method} {path}")
                if refused is not None:
                    rule, detail = refused
            if rule.retry and attempt < self.attempts and self._pause(attempt, wait, detail):
                continue
            raise self._failure(rule, detail, wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def batch(self, operation: str, calls: Sequence[Call]) -> dict[str, Reply]:
        """Send ``calls`` as JSON batches of :data:`BATCH_SIZE`; the replies by call id.
        Calls answered with a retryable status are sent again (after ``Retry-After``); the
        others are the caller's to read (see :meth:`check`)."""
        results: dict[str, Reply] = {}
        pending = list(calls)
        for attempt in range(1, self.attempts + 1):
            retry: list[Call] = []
            waits: list[float] = []
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                for call, reply in zip(chunk, self._send_batch(chunk), strict=True):
                    if reply.status in RETRY_STATUSES:
                        retry.append(call)
                        waits.append(retry_after(reply.headers.get("retry-after")) or 0.0)
                    else:
                        results[call.id] = reply
            if not retry:
                return results
            detail = f"HTTP {len(retry)} of {len(pending)} batched {operation} requests failed"
            wait = max(waits) or None
            if attempt < self.attempts and self._pause(attempt, wait, detail):
                pending = retry
                continue
            raise self._failure(_RETRY, detail, wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def check(self, operation: str, reply: Reply, what: str) -> None:
        """Raise the mapped error for a batched reply that is not a success."""
        if 200 <= reply.status < 300:
            return
        rule = _status_rule(operation, reply)
        code = error_code(reply)
        shown = f", {code}" if code else ""
        raise rule.error(self.name, f"{what}: {rule.message} (HTTP {reply.status}{shown})")

    # --- internals -------------------------------------------------------------------------

    def _send_batch(self, chunk: Sequence[Call]) -> list[Reply]:
        requests_ = []
        for index, call in enumerate(chunk):
            entry: dict[str, Any] = {
                "id": str(index),
                "method": call.method,
                "url": "/" + call.url.lstrip("/"),
                "headers": {"Prefer": PREFER, **call.headers},
            }
            if call.body is not None:
                entry["body"] = call.body
                entry["headers"]["Content-Type"] = "application/json"
            requests_.append(entry)
        reply = self.request(
            "batch",
            "POST",
            self.url("$batch"),
            body={"requests": requests_},
            weight=min(MAX_IN_FLIGHT, len(chunk)),
        )
        found: dict[str, Reply] = {}
        answers = reply.body.get("responses") if isinstance(reply.body, Mapping) else None
        for answer in answers if isinstance(answers, list) else []:
            if isinstance(answer, Mapping) and isinstance(answer.get("id"), str):
                found[answer["id"]] = _inner_reply(answer)
        # A call the batch did not answer is retried like a throttled one.
        return [found.get(str(i), Reply(503)) for i in range(len(chunk))]

    def _send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: Mapping[str, str] | None,
        weight: int = 1,
    ) -> Reply:
        sent = {
            "Authorization": f"Bearer {self.credentials.token()}",
            "Prefer": PREFER,
            "Accept": "application/json",
            **(headers or {}),
        }
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            sent["Content-Type"] = "application/json"
        slots = self._mailbox_slots()
        while not slots.acquire(weight, timeout=0.5):
            if self.interrupted.is_set():
                raise TransientError(self.name, "not sent: syncd is stopping")
        try:
            self.requests_sent += 1
            response = self.http.request(
                method, url, data=data, headers=sent, timeout=self.timeout, allow_redirects=False
            )
            return Reply(
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                body=_json(response.content),
            )
        finally:
            slots.release(weight)

    def _mailbox_slots(self) -> Slots:
        if self._slots is None:
            self._slots = mailbox_slots.get(self.graph_url, self.credentials.mailbox())
        return self._slots

    def _pause(self, attempt: int, wait: float | None, detail: str) -> bool:
        """Wait before the next attempt; False when the wait is too long or syncd stops."""
        if self.interrupted.is_set():
            return False
        delay = self._delay(attempt) if wait is None else wait
        if delay > self.max_wait:
            return False
        log.warning("outlook.retry", calendar=self.name, reason=detail, wait=round(delay, 2))
        self.sleep(delay)
        return not self.interrupted.is_set()

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter."""
        return min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1)) * self.jitter()

    def _failure(self, rule: ErrorRule, detail: str, wait: float | None) -> ConnectorError:
        if rule.retry:
            if self.interrupted.is_set():
                detail += "; not retried, syncd is stopping"
            elif wait is not None and wait > self.max_wait:
                detail += f"; Graph asks to wait {wait:.0f}s, the next cycle retries"
        failure = rule.error(self.name, detail)
        if isinstance(failure, AuthError) and not self._auth_logged:
            log.error("outlook.needs_credentials", calendar=self.name, reason=detail)
            self._auth_logged = True
        return failure


def _inner_reply(answer: Mapping[str, Any]) -> Reply:
    status = answer.get("status")
    headers = answer.get("headers")
    body = answer.get("body")
    if isinstance(body, str):
        body = _json(body.encode("utf-8"))
    return Reply(
        status=status if isinstance(status, int) else 502,
        headers=(
            {str(k).lower(): str(v) for k, v in headers.items()}
            if isinstance(headers, Mapping)
            else {}
        ),
        body=body,
    )


def _json(content: bytes) -> Any:
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None
