"""Google's OAuth 2.0 endpoints as the client libraries use them.

- ``POST /token``: ``refresh_token``, ``authorization_code`` (PKCE checked when the
  consent asked for it) and ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (a service
  account's RS256 assertion, verified with the key the emulator made; ``sub`` acts for that
  user, as domain-wide delegation does). Client authentication in the form or by HTTP Basic.
- ``GET /o/oauth2/auth``: the consent page, answered as if the user agreed at once.
- Access tokens live 3599 s on the emulator's clock; a service account's self-signed JWT is
  accepted as a bearer token too.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.google_emulator.errors import OAuthError

__all__ = ["SCOPE_CALENDAR", "Consent", "Grant", "OAuth"]

SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_LIFETIME = 3599
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
# google-auth signs service-account assertions for Google's token endpoint whatever the
# key file's token_uri says; Google accepts its historical token URLs too.
_GOOGLE_AUDIENCES = (
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
    "https://www.googleapis.com/oauth2/v4/token",
)


@dataclass(frozen=True, slots=True)
class Grant:
    """What an access token stands for: a user, through a client, with scopes."""

    user: str
    client_id: str
    scopes: tuple[str, ...]
    service_account: bool = False  # a service account acting as itself (no subject)


@dataclass(slots=True)
class _Token:
    grant: Grant
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class _Code:
    grant: Grant
    redirect_uri: str
    challenge: str | None
    method: str


@dataclass(frozen=True, slots=True)
class Consent:
    """One visit of the consent page: who asked for what."""

    client_id: str
    scopes: tuple[str, ...]
    redirect_uri: str
    state: str | None
    access_type: str | None
    code_challenge: str | None


@dataclass(frozen=True, slots=True)
class _ServiceAccount:
    email: str
    client_id: str
    key_id: str
    public_key: rsa.RSAPublicKey


@dataclass(slots=True)
class OAuth:
    """Clients, grants and tokens of one emulator."""

    token_uri: str
    auth_uri: str
    clock: Callable[[], datetime]
    is_user: Callable[[str], bool]
    clients: dict[str, str] = field(default_factory=dict)  # client id -> secret
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, _Token] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    accounts: dict[str, _ServiceAccount] = field(default_factory=dict)  # key id -> account
    consents: list[Consent] = field(default_factory=list)

    # ------------------------------------------------------------------ test helpers

    def client(self, client_id: str) -> str:
        """The secret of ``client_id``, registering the client on first use."""
        return self.clients.setdefault(client_id, "GOCSPX-" + secrets.token_urlsafe(21))

    def authorized_user_info(
        self, client_id: str, user: str, scopes: tuple[str, ...]
    ) -> dict[str, Any]:
        """An authorized-user JSON with a fresh, registered refresh token."""
        secret = self.client(client_id)
        refresh = "1//" + secrets.token_urlsafe(64)
        self.refresh_tokens[refresh] = Grant(user, client_id, scopes)
        return {
            "type": "authorized_user",
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": refresh,
            "token_uri": self.token_uri,
            "scopes": list(scopes),
            "universe_domain": "googleapis.com",
        }

    def client_secrets(self, client_id: str) -> dict[str, Any]:
        """An "installed" client secrets JSON pointing at the emulator."""
        return {
            "installed": {
                "client_id": client_id,
                "project_id": "syncd-emulator",
                "auth_uri": self.auth_uri,
                "token_uri": self.token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_secret": self.client(client_id),
                "redirect_uris": ["http://localhost"],
            }
        }

    def service_account_info(self, email: str) -> dict[str, Any]:
        """A service account key JSON with a new RSA key the emulator will trust."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        key_id = secrets.token_hex(20)
        client_id = str(100000000000000000000 + secrets.randbelow(10**20))
        self.accounts[key_id] = _ServiceAccount(email, client_id, key_id, key.public_key())
        return {
            "type": "service_account",
            "project_id": "syncd-emulator",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": email,
            "client_id": client_id,
            "auth_uri": self.auth_uri,
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
            "universe_domain": "googleapis.com",
        }

    def expire_access_tokens(self) -> None:
        """Every access token given out so far is expired from now on."""
        past = self.clock() - timedelta(seconds=1)
        for token in self.access_tokens.values():
            token.expires_at = past

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token given out so far is revoked (``invalid_grant`` from now on)."""
        self.refresh_tokens.clear()

    # ------------------------------------------------------------------ API side

    def authenticate(self, token: str) -> Grant | None:
        """The grant behind a bearer token, or ``None`` if unknown or expired."""
        found = self.access_tokens.get(token)
        if found is not None:
            return found.grant if self.clock() < found.expires_at else None
        if token.count(".") == 2:
            return self._self_signed(token)
        return None

    def _self_signed(self, token: str) -> Grant | None:
        try:
            claims = self._verify(token, audience=None)
        except OAuthError:
            return None
        account = self._account(token)
        assert account is not None
        scope = claims.get("scope")
        scopes = tuple(scope.split()) if isinstance(scope, str) else (SCOPE_CALENDAR,)
        return Grant(account.email, account.client_id, scopes, service_account=True)

    # ------------------------------------------------------------------ /token

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """The token endpoint's answer to one form; :class:`OAuthError` for Google's errors."""
        grant_type = form.get("grant_type")
        if grant_type == "refresh_token":
            return self._refresh(form, basic)
        if grant_type == "authorization_code":
            return self._exchange(form, basic)
        if grant_type == _JWT_GRANT:
            return self._jwt_grant(form)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")

    def _client_auth(self, form: dict[str, str], basic: tuple[str, str] | None) -> str:
        client_id, secret = (
            basic if basic is not None else (form.get("client_id"), form.get("client_secret"))
        )
        if not client_id or client_id not in self.clients:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        if not secret or not secrets.compare_digest(secret, self.clients[client_id]):
            raise OAuthError(401, "invalid_client", "Unauthorized")
        return client_id

    def _issue(self, grant: Grant) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(96)
        self.access_tokens[access] = _Token(grant, self.clock() + timedelta(seconds=_LIFETIME))
        return {"access_token": access, "expires_in": _LIFETIME, "token_type": "Bearer"}

    def _refresh(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id = self._client_auth(form, basic)
        grant = self.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        if grant.client_id != client_id:
            raise OAuthError(400, "unauthorized_client", "Unauthorized")
        scopes = grant.scopes
        if form.get("scope"):
            asked = tuple(form["scope"].split())
            if not set(asked) <= set(grant.scopes):
                raise OAuthError(400, "invalid_scope", "Bad Request")
            scopes = asked
        answer = self._issue(Grant(grant.user, client_id, scopes))
        answer["scope"] = " ".join(scopes)
        return answer

    def _exchange(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client_id = self._client_auth(form, basic)
        code = self.codes.pop(form.get("code", ""), None)
        if code is None or code.grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if code.challenge is not None:
            _check_verifier(form.get("code_verifier"), code.challenge, code.method)
        answer = self._issue(code.grant)
        answer["scope"] = " ".join(code.grant.scopes)
        refresh = "1//" + secrets.token_urlsafe(64)
        self.refresh_tokens[refresh] = code.grant
        answer["refresh_token"] = refresh
        return answer

    def _jwt_grant(self, form: dict[str, str]) -> dict[str, Any]:
        assertion = form.get("assertion", "")
        claims = self._verify(assertion, audience=[self.token_uri, *_GOOGLE_AUDIENCES])
        account = self._account(assertion)
        assert account is not None
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.split():
            raise OAuthError(
                400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        subject = claims.get("sub")
        if subject is not None and subject != account.email:
            if not isinstance(subject, str) or not self.is_user(subject):
                raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
            return self._issue(Grant(subject, account.client_id, tuple(scope.split())))
        grant = Grant(account.email, account.client_id, tuple(scope.split()), service_account=True)
        return self._issue(grant)

    def _account(self, assertion: str) -> _ServiceAccount | None:
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return None
        return self.accounts.get(str(header.get("kid", "")))

    def _verify(self, assertion: str, audience: list[str] | None) -> dict[str, Any]:
        account = self._account(assertion)
        if account is None:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=audience,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_aud": audience is not None,
                },
            )
        except jwt.InvalidAudienceError:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Audience mismatch.") from None
        except jwt.PyJWTError:
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("iss") != account.email:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: issuer mismatch.")
        self._check_lifetime(claims)
        return claims

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        now = self.clock().timestamp()
        iat, exp = claims.get("iat"), claims.get("exp")
        fine = (
            isinstance(iat, int | float)
            and isinstance(exp, int | float)
            and iat <= now + 300
            and exp > now
            and exp - iat <= 3600
        )
        if not fine:
            raise OAuthError(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            )

    # ------------------------------------------------------------------ consent page

    def consent(self, query: dict[str, str], user: str) -> str:
        """The ``Location`` the consent page sends the browser to after the user agrees."""
        client_id = query.get("client_id", "")
        if client_id not in self.clients:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        redirect = query.get("redirect_uri", "")
        parts = urlsplit(redirect)
        if parts.scheme != "http" or parts.hostname not in _LOOPBACK:
            raise OAuthError(
                400, "redirect_uri_mismatch", "redirect_uri is not a loopback address."
            )
        if query.get("response_type") != "code":
            raise OAuthError(
                400, "unsupported_response_type", "Only response_type=code is supported."
            )
        scopes = tuple(query.get("scope", "").split())
        if not scopes:
            raise OAuthError(400, "invalid_request", "Missing required parameter: scope")
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method", "plain")
        if challenge is not None and method not in ("S256", "plain"):
            raise OAuthError(400, "invalid_request", "Invalid code_challenge_method.")
        state = query.get("state")
        self.consents.append(
            Consent(client_id, scopes, redirect, state, query.get("access_type"), challenge)
        )
        code = "4/0" + secrets.token_urlsafe(48)
        self.codes[code] = _Code(Grant(user, client_id, scopes), redirect, challenge, method)
        params = {"code": code, "scope": " ".join(scopes)}
        if state is not None:
            params = {"state": state, **params}
        separator = "&" if "?" in redirect else "?"
        return redirect + separator + urlencode(params)


def _check_verifier(verifier: str | None, challenge: str, method: str) -> None:
    if not verifier:
        raise OAuthError(400, "invalid_grant", "Missing code verifier.")
    if method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    else:
        computed = verifier
    if not secrets.compare_digest(computed, challenge):
        raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
