"""The emulator's request handling: faults, authentication, dispatch, encoding, recording."""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from tests.google_emulator import api
from tests.google_emulator.errors import ApiError, OAuthError, auth_error, login_required, not_found
from tests.google_emulator.faults import Fault, Recorded, fault_error
from tests.google_emulator.fields import apply_mask, parse_fields
from tests.google_emulator.listing import Pager
from tests.google_emulator.oauth import OAuth
from tests.google_emulator.query import single
from tests.google_emulator.store import Actor, Store
from tests.google_emulator.tokens import TokenCodec

__all__ = ["Service"]

_API = "/calendar/v3/"
_CONSENT = ("/o/oauth2/auth", "/o/oauth2/v2/auth")
_OAUTH_FAULTS = {401: "invalid_client", 500: "internal_failure", 503: "temporarily_unavailable"}


class _BadJson:
    """A request body that is not JSON (kept as text for the record)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"<not JSON: {self.text[:60]!r}>"


class Service:
    """Everything behind the HTTP server; one lock guards all state."""

    def __init__(
        self, *, user: str, token_uri: str, auth_uri: str, clock: Callable[[], datetime]
    ) -> None:
        self.lock = threading.RLock()
        self.user = user
        self.store = Store(clock)
        self.store.add_user(user)
        self.pager = Pager(TokenCodec())
        self.oauth = OAuth(token_uri, auth_uri, clock, lambda email: email in self.store.users)
        self.auth_required = True
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.internal_errors: list[str] = []

    # ----------------------------------------------------------------- one request

    def respond(
        self, method: str, target: str, headers: dict[str, str], read_body: Callable[[], bytes]
    ) -> bytes | None:
        """The whole answer to one request, or ``None`` to reset the connection."""
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        fault = self._take_fault(method, target)
        if fault is not None and fault.kind == "reset":
            self._record(Recorded(method, path, query, headers, None, 0, 0))
            return None
        body = _parse_body(read_body(), headers.get("content-type", ""))
        if fault is not None and fault.delay > 0:
            time.sleep(fault.delay)
        if fault is not None and fault.kind != "slow":
            status, payload, extra = self._fault_answer(fault, path)
        else:
            status, payload, extra = self._dispatch(method, path, query, headers, body)
        data = _encode(status, payload, extra)
        self._record(Recorded(method, path, query, headers, _recordable(body), status, len(data)))
        return data

    def _take_fault(self, method: str, target: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, target):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _record(self, recorded: Recorded) -> None:
        with self.lock:
            self.requests.append(recorded)

    def _fault_answer(self, fault: Fault, path: str) -> tuple[int, Any, dict[str, str]]:
        error = fault_error(fault)
        if path.startswith(_API):
            return error.code, error.body(), error.headers
        oauth = {
            "error": _OAUTH_FAULTS.get(error.code, "rate_limit_exceeded"),
            "error_description": error.message,
        }
        return error.code, oauth, error.headers

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            if path == "/token" and method == "POST":
                return self._token(headers, body)
            if path in _CONSENT and method == "GET":
                return self._consent(query)
            if path.startswith(_API):
                return self._api(method, path, query, headers, body)
            raise not_found()
        except ApiError as error:
            return error.code, error.body(), error.headers
        except OAuthError as error:
            return error.code, error.body(), {"Cache-Control": "no-store"}
        except Exception:
            # An emulator bug: answered as a 500 and kept in internal_errors for the tests.
            text = traceback.format_exc()
            with self.lock:
                self.internal_errors.append(text)
            bug = ApiError(500, "backendError", "Emulator bug: " + text.strip().splitlines()[-1])
            return 500, bug.body(), {}

    # ----------------------------------------------------------------- OAuth endpoints

    def _token(self, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        form = body if isinstance(body, dict) else {}
        with self.lock:
            answer = self.oauth.token(form, _basic_auth(headers.get("authorization", "")))
        return 200, answer, {"Cache-Control": "no-store", "Pragma": "no-cache"}

    def _consent(self, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        flat = {key: values[0] for key, values in query.items()}
        with self.lock:
            location = self.oauth.consent(flat, self.user)
        return 302, None, {"Location": location}

    # ----------------------------------------------------------------- Calendar API

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        actor, scopes = self._authenticate(headers, query)
        if isinstance(body, _BadJson):
            raise ApiError(400, "parseError", "Parse Error")
        alt = single(query, "alt")
        if alt not in (None, "json"):
            raise ApiError(
                400, "invalidParameter", f"Invalid value for: alt: {alt}", location="alt"
            )
        segments = [unquote(part) for part in path[len(_API) :].split("/") if part]
        request = api.ApiRequest(method, segments, query, headers, body, actor, scopes)
        raw_fields = single(query, "fields")
        schema = api.schema_for(method, segments)
        mask = parse_fields(raw_fields, schema) if raw_fields and schema else None
        with self.lock:
            answer = api.handle(api.Context(self.store, self.pager), request)
        payload = (
            answer.body if mask is None or answer.body is None else apply_mask(answer.body, mask)
        )
        return answer.status, payload, answer.headers

    def _authenticate(
        self, headers: dict[str, str], query: dict[str, list[str]]
    ) -> tuple[Actor, frozenset[str] | None]:
        header = headers.get("authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else None
        token = token or single(query, "access_token") or single(query, "oauth_token")
        with self.lock:
            grant = self.oauth.authenticate(token) if token else None
            required = self.auth_required
        if grant is not None:
            return Actor(grant.user, grant.service_account), frozenset(grant.scopes)
        if not required:
            return Actor(self.user), None
        raise auth_error() if token else login_required()


def _basic_auth(header: str) -> tuple[str, str] | None:
    if header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, secret = decoded.partition(":")
    return (unquote(user), unquote(secret)) if sep else None


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    if kind == "application/json" or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return _BadJson(text)
    return text


def _recordable(body: Any) -> Any:
    return body.text if isinstance(body, _BadJson) else body


def _encode(status: int, payload: Any, extra: dict[str, str]) -> bytes:
    """Status line, headers and body; compact JSON, ``Content-Length`` always right."""
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    if body:
        lines.append("Content-Type: application/json; charset=UTF-8")
    lines.append(f"Content-Length: {len(body)}")
    lines.append("Vary: Origin, X-Origin, Referer")
    lines.extend(f"{name}: {value}" for name, value in extra.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
