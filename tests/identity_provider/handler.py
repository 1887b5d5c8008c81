"""The HTTP side of the fake identity platform: routes, forms, JSON answers."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from tests.identity_provider.errors import OAuthError

if TYPE_CHECKING:
    from tests.identity_provider.provider import IdentityProvider

__all__ = ["Handler"]


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client id, secret) from an HTTP Basic header (form-encoded as RFC 6749 2.3.1 says)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)


class Handler(BaseHTTPRequestHandler):
    """Serves the discovery document, the device-code and the token endpoints."""

    protocol_version = "HTTP/1.1"
    timeout = 30
    server_version = "FakeEntra/1.0"

    @property
    def idp(self) -> IdentityProvider:
        """The provider this server belongs to."""
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``IdentityProvider.requests`` instead."""

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve("POST")

    def _serve(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        self.idp.requests.append((method, path))
        form = self._read_form() if method == "POST" else {}
        try:
            status, answer = self._route(method, path, form)
        except OAuthError as error:
            status, answer = error.status, error.body()
        self._send(status, answer)

    def _route(self, method: str, path: str, form: dict[str, str]) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if method == "GET" and parts == ["devicelogin"]:
            return 200, {"message": "Enter the code shown by the app (tests use approve())."}
        if len(parts) >= 2:
            tenant, rest = parts[0], "/".join(parts[1:])
            if method == "GET" and rest == "v2.0/.well-known/openid-configuration":
                return 200, self.idp.openid_configuration(tenant)
            if method == "POST" and rest == "oauth2/v2.0/devicecode":
                return 200, self.idp.device_code(tenant, form)
            if method == "POST" and rest == "oauth2/v2.0/token":
                basic = _basic_credentials(self.headers.get("Authorization"))
                return 200, self.idp.token(tenant, form, basic)
        raise OAuthError("invalid_request", 900561, f"The endpoint {method} {path} is not served.")

    def _read_form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))

    def _send(self, status: int, answer: Any) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
