"""The :class:`IdentityProvider`: an HTTPS server plus the test API that drives it."""

from __future__ import annotations

import secrets
import ssl
import time
from typing import Any

from cryptography import x509

from tests.identity_provider.directory import GENERIC_TENANTS, App, DeviceCode, Directory
from tests.identity_provider.errors import OAuthError
from tests.identity_provider.grants import grant
from tests.identity_provider.handler import Handler
from tests.tls import HTTPSService

__all__ = ["IdentityProvider"]

_DEVICE_CODE_LIFETIME = 900
"""Seconds a device code lives, as Microsoft's (tests that sign in pass a shorter one)."""
_APPROVE_WAIT = 60.0
"""How long ``approve``/``deny`` wait for a device code to appear (a bound, not a delay)."""
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"


class IdentityProvider:
    """The fake identity platform: start it, register apps, approve device codes.

    ``authority`` is what MSAL takes; ``token_requests`` records each token call's
    ``grant_type``, ``client_id``, ``scope`` and ``result`` (``"ok"`` or the error code), never
    a secret or token; ``requests`` records ``(method, path)`` of every call.
    ``device_message`` (a knob, True by default): False leaves the optional ``message`` out of
    device-code answers, as RFC 8628 allows. ``device_code_lifetime``: seconds until a device
    code expires (900 as Microsoft's; a test passes less, so a sign-in nobody approves fails
    soon instead of MSAL polling for 15 minutes).
    """

    def __init__(
        self,
        *,
        tenant: str = "contoso",
        ssl_context: ssl.SSLContext | None = None,
        access_token_lifetime: int = 3600,
        device_interval: int = 1,
        device_code_lifetime: int = _DEVICE_CODE_LIFETIME,
    ) -> None:
        self.tenant = tenant
        self.device_interval = device_interval
        self.device_code_lifetime = device_code_lifetime
        """Seconds a device code lives: a sign-in nobody approves fails after that long."""
        self.device_message = True
        """Knob: False leaves ``message`` out of device-code answers (it is optional)."""
        self.token_requests: list[dict[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self._directory = Directory(tenant, lambda: self.base, access_token_lifetime)
        self._server = HTTPSService(Handler, ssl_context, self)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base(self) -> str:
        """``https://127.0.0.1:PORT``."""
        return f"https://127.0.0.1:{self._server.port}"

    @property
    def authority(self) -> str:
        """The authority URL for MSAL: ``https://127.0.0.1:PORT/<tenant>``."""
        return f"{self.base}/{self.tenant}"

    @property
    def tenant_id(self) -> str:
        """The tenant's id (``tid`` in tokens)."""
        return self._directory.tenant_id

    def start(self) -> IdentityProvider:
        """Serve from a background thread."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def __enter__(self) -> IdentityProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test control ------------------------------------------------------------------

    def register_app(
        self, client_id: str, *, secret: str | None = None, certificate_pem: bytes | None = None
    ) -> None:
        """Register an app: public (no credential), or confidential with a secret and/or cert."""
        certificate = x509.load_pem_x509_certificate(certificate_pem) if certificate_pem else None
        with self._directory.changed:
            self._directory.apps[client_id] = App(client_id, secret, certificate)

    def approve(
        self,
        user_code: str | None = None,
        *,
        user: str = "me@contoso.example",
        timeout: float = _APPROVE_WAIT,
    ) -> None:
        """Sign ``user`` in for a device code (None: the latest pending one, waiting for one)."""
        with self._directory.changed:
            self._wait_for_code(user_code, timeout).user = user

    def deny(self, user_code: str | None = None, *, timeout: float = _APPROVE_WAIT) -> None:
        """The user declines a device-code sign-in (None: the latest pending one)."""
        with self._directory.changed:
            self._wait_for_code(user_code, timeout).denied = True

    def validate(self, access_token: str) -> str | None:
        """The mailbox the token acts for, ``"app:<client_id>"`` for app-only, None if invalid."""
        with self._directory.changed:
            access = self._directory.access_tokens.get(access_token)
            if access is None or access.revoked or access.expires_at <= time.time():
                return None
            return access.subject

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops being valid (refresh tokens still work)."""
        with self._directory.changed:
            for access in self._directory.access_tokens.values():
                access.revoked = True

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far stops working (as after a password reset)."""
        with self._directory.changed:
            self._directory.refresh_tokens.clear()

    def _wait_for_code(self, user_code: str | None, timeout: float) -> DeviceCode:
        deadline = time.monotonic() + timeout
        while True:
            pending = [
                c
                for c in self._directory.device_codes.values()
                if c.user is None
                and not c.denied
                and not c.used
                and user_code in (None, c.user_code)
            ]
            if pending:
                return pending[-1]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LookupError(f"no pending device code {user_code or ''}".strip())
            self._directory.changed.wait(remaining)

    # -- endpoints (called by the handler) ---------------------------------------------

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        """The tenant's OpenID Connect discovery document."""
        self._directory.check_tenant(tenant)
        root = f"{self.base}/{tenant}"
        issuer = "{tenantid}" if tenant in GENERIC_TENANTS else self.tenant_id
        return {
            "issuer": f"{self.base}/{issuer}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    def device_code(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        """Start a device-code sign-in."""
        self._directory.check_tenant(tenant)
        client_id = form.get("client_id", "")
        self._directory.app(client_id)
        scope = form.get("scope", "").strip()
        if not scope:
            raise OAuthError("invalid_request", 900144, "The request body must contain 'scope'.")
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        code = DeviceCode(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            client_id=client_id,
            scope=scope,
            expires_at=time.time() + self.device_code_lifetime,
        )
        with self._directory.changed:
            self._directory.device_codes[code.device_code] = code
            self._directory.changed.notify_all()
        uri = f"{self.base}/devicelogin"
        answer: dict[str, Any] = {
            "user_code": user_code,
            "device_code": code.device_code,
            "verification_uri": uri,
            "expires_in": self.device_code_lifetime,
            "interval": self.device_interval,
        }
        if self.device_message:
            answer["message"] = (
                f"To sign in, use a web browser to open the page {uri} and enter the code "
                f"{user_code} to authenticate."
            )
        return answer

    def token(
        self, tenant: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        """Answer a token request, recording it (without secrets)."""
        record = {
            "grant_type": form.get("grant_type", ""),
            "client_id": form.get("client_id") or (basic[0] if basic else ""),
            "scope": form.get("scope", ""),
        }
        try:
            self._directory.check_tenant(tenant)
            answer = grant(self._directory, f"{self.base}/{tenant}/oauth2/v2.0/token", form, basic)
        except OAuthError as error:
            record["result"] = error.error
            self.token_requests.append(record)
            raise
        record["result"] = "ok"
        self.token_requests.append(record)
        return answer
