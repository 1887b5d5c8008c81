"""The tenant's directory: registered apps, device codes, issued tokens; minting tokens."""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from tests.identity_provider.certificates import b64url
from tests.identity_provider.errors import OAuthError

__all__ = ["DEVICE_CODE_GRANT", "GENERIC_TENANTS", "App", "DeviceCode", "Directory"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
GENERIC_TENANTS = ("common", "organizations")


@dataclass
class App:
    """A registered application; no credential: a public client."""

    client_id: str
    secret: str | None
    certificate: x509.Certificate | None


@dataclass
class DeviceCode:
    """A device-code sign-in: pending until a user approves (or denies) it."""

    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    user: str | None = None
    denied: bool = False
    used: bool = False


@dataclass(frozen=True)
class Grant:
    """What a refresh token stands for."""

    client_id: str
    user: str


@dataclass
class Access:
    """An access token's subject (a user, or ``app:<client_id>``) and expiry."""

    subject: str
    expires_at: float
    revoked: bool = False


@dataclass
class Directory:
    """All state of the fake tenant, guarded by ``changed`` (a condition over an RLock)."""

    tenant: str
    base: Callable[[], str]
    access_token_lifetime: int
    apps: dict[str, App] = field(default_factory=dict)
    device_codes: dict[str, DeviceCode] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, Access] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def tenant_id(self) -> str:
        """The tenant's id (a UUID derived from its name)."""
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.tenant}.tenant.example"))

    def check_tenant(self, tenant: str) -> None:
        """400 ``invalid_tenant`` unless ``tenant`` is this one, its id, common or organizations."""
        if tenant not in (self.tenant, self.tenant_id, *GENERIC_TENANTS):
            raise OAuthError(
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )

    def app(self, client_id: str) -> App:
        """A registered app; 400 ``unauthorized_client`` for an unknown client id."""
        found = self.apps.get(client_id)
        if found is None:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant}'.",
            )
        return found

    def issue_access(self, subject: str) -> str:
        """A new access token for ``subject``."""
        token = secrets.token_urlsafe(40)
        with self.changed:
            self.access_tokens[token] = Access(subject, time.time() + self.access_token_lifetime)
        return token

    def user_tokens(self, client_id: str, user: str, scope: str) -> dict[str, Any]:
        """The token answer of a user sign-in (a refresh token when offline_access is asked)."""
        now = int(time.time())
        oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{user.lower()}"))
        lifetime = self.access_token_lifetime
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.issue_access(user),
            "id_token": self._id_token(client_id, user, oid, now),
            "client_info": b64url(json.dumps({"uid": oid, "utid": self.tenant_id}).encode()),
        }
        if "offline_access" in scope.split():
            refresh = secrets.token_urlsafe(48)
            with self.changed:
                self.refresh_tokens[refresh] = Grant(client_id, user)
            answer["refresh_token"] = refresh
        return answer

    def _id_token(self, client_id: str, user: str, oid: str, now: int) -> str:
        header = {"typ": "JWT", "alg": "none"}
        claims = {
            "aud": client_id,
            "iss": f"{self.base()}/{self.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "name": user.split("@")[0],
            "oid": oid,
            "preferred_username": user,
            "sub": b64url(uuid.uuid5(uuid.NAMESPACE_URL, f"sub:{client_id}:{oid}").bytes),
            "tid": self.tenant_id,
            "ver": "2.0",
        }
        parts = (json.dumps(header).encode(), json.dumps(claims).encode())
        return ".".join(b64url(p) for p in parts) + "."
