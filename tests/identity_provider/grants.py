"""The token endpoint's grants: device code, refresh token (rotating), client credentials."""

from __future__ import annotations

import hmac
import time
from typing import Any

import jwt

from tests.identity_provider.certificates import thumbprints
from tests.identity_provider.directory import DEVICE_CODE_GRANT, App, Directory
from tests.identity_provider.errors import OAuthError

__all__ = ["JWT_BEARER", "grant"]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def grant(
    directory: Directory,
    token_endpoint: str,
    form: dict[str, str],
    basic: tuple[str, str] | None,
) -> dict[str, Any]:
    """Answer a token request (``basic``: HTTP Basic client credentials, if sent)."""
    kind = form.get("grant_type", "")
    if kind == DEVICE_CODE_GRANT:
        return _device_code(directory, form)
    if kind == "refresh_token":
        return _refresh(directory, form)
    if kind == "client_credentials":
        return _client_credentials(directory, token_endpoint, form, basic)
    raise OAuthError(
        "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{kind}'."
    )


def _device_code(directory: Directory, form: dict[str, str]) -> dict[str, Any]:
    client_id = form.get("client_id", "")
    directory.app(client_id)
    with directory.changed:
        code = directory.device_codes.get(form.get("device_code", ""))
        if code is None or code.client_id != client_id:
            raise OAuthError("invalid_grant", 70000, "The provided device code is not valid.")
        if code.used:
            raise OAuthError("invalid_grant", 54005, "The device code was already redeemed.")
        if code.expires_at <= time.time():
            raise OAuthError("expired_token", 70020, "The provided device code has expired.")
        if code.denied:
            raise OAuthError(
                "authorization_declined", 70020, "The end user denied the authorization request."
            )
        if code.user is None:
            raise OAuthError(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending.",
            )
        code.used = True
        return directory.user_tokens(client_id, code.user, form.get("scope") or code.scope)


def _refresh(directory: Directory, form: dict[str, str]) -> dict[str, Any]:
    client_id = form.get("client_id", "")
    directory.app(client_id)
    with directory.changed:
        # Rotation: the token used is gone, whatever happens next.
        found = directory.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if found is None or found.client_id != client_id:
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity "
                "or was already used. Send a new interactive authorization request.",
            )
        return directory.user_tokens(client_id, found.user, form.get("scope", ""))


def _client_credentials(
    directory: Directory,
    token_endpoint: str,
    form: dict[str, str],
    basic: tuple[str, str] | None,
) -> dict[str, Any]:
    client_id = form.get("client_id") or (basic[0] if basic else "")
    app = directory.app(client_id)
    secret = form.get("client_secret") or (basic[1] if basic else None)
    if secret is not None:
        if app.secret is None or not hmac.compare_digest(secret, app.secret):
            raise OAuthError(
                "invalid_client", 7000215, "Invalid client secret provided.", status=401
            )
    elif form.get("client_assertion_type") == JWT_BEARER:
        _check_assertion(app, form.get("client_assertion", ""), token_endpoint)
    else:
        raise OAuthError(
            "invalid_client",
            7000218,
            "The request body must contain 'client_assertion' or 'client_secret'.",
            status=401,
        )
    scope = form.get("scope", "")
    if not scope or not all(s.endswith("/.default") for s in scope.split()):
        raise OAuthError(
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier.",
        )
    lifetime = directory.access_token_lifetime
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": directory.issue_access(f"app:{client_id}"),
    }


def _check_assertion(app: App, assertion: str, token_endpoint: str) -> None:
    """The JWT must name a registered certificate, verify with its key, and address us."""
    bad = OAuthError(
        "invalid_client", 700027, "Client assertion failed signature validation.", status=401
    )
    if app.certificate is None:
        raise bad
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise bad from None
    presented = {str(header.get(k, "")).rstrip("=") for k in ("x5t", "x5t#S256")}
    if not presented & thumbprints(app.certificate):
        raise OAuthError(
            "invalid_client",
            700027,
            "The certificate with identifier used to sign the client assertion is not "
            "registered on application.",
            status=401,
        )
    try:
        claims = jwt.decode(
            assertion,
            app.certificate.public_key(),  # type: ignore[arg-type]
            algorithms=["RS256", "PS256"],
            audience=token_endpoint,
            options={"require": ["exp", "aud", "iss", "sub"]},
        )
    except jwt.PyJWTError:
        raise bad from None
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise bad
