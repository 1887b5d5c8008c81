"""A fake Microsoft identity platform (Entra ID v2.0 endpoints) over HTTPS, for real MSAL.

MSAL runs unchanged against :class:`IdentityProvider`: with
``authority=idp.authority, instance_discovery=False, verify=str(ca_file)`` it fetches the
tenant's OpenID configuration, asks for device codes and calls the token endpoint with the
grants below. Served paths, for a tenant segment ``T`` (the configured tenant name, its tenant
id, ``common`` or ``organizations``):

* ``GET /T/v2.0/.well-known/openid-configuration``
* ``POST /T/oauth2/v2.0/devicecode`` (``client_id``, ``scope``)
* ``POST /T/oauth2/v2.0/token`` with ``grant_type``
  ``urn:ietf:params:oauth:grant-type:device_code``, ``refresh_token`` or ``client_credentials``
  (a ``client_secret`` in the body or HTTP Basic, or a ``client_assertion`` JWT signed with the
  registered certificate's key, as MSAL makes it: RS256 with ``x5t`` or PS256 with
  ``x5t#S256``; ``aud`` the token endpoint, ``iss`` = ``sub`` = the client id).

Test API: :meth:`~IdentityProvider.register_app`, :meth:`~IdentityProvider.approve` /
:meth:`~IdentityProvider.deny` a device code (from another thread while MSAL polls),
:meth:`~IdentityProvider.validate` an access token (what the Graph emulator calls),
:meth:`~IdentityProvider.expire_access_tokens`, :meth:`~IdentityProvider.revoke_refresh_tokens`;
``device_message = False`` leaves the optional ``message`` out of device-code answers;
``token_requests`` and ``requests`` record the calls. :func:`make_certificate` /
:func:`write_certificate_file` make a certificate for app-only sign-in.

MSAL's HTTP session trusts the environment: where ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``
is set it wins over ``verify=``, so unset them (or pass MSAL an ``http_client`` session with
``trust_env = False``) when trusting the test CA.

Errors have the platform's shape: ``{"error", "error_description": "AADSTS…: …",
"error_codes", "timestamp", "trace_id", "correlation_id"}``, status 400 (401 for a bad client
credential).

Choices where the documentation is silent
-----------------------------------------
* Every client id must be registered (:meth:`IdentityProvider.register_app`); an unknown one is
  ``400 unauthorized_client`` (AADSTS700016), as for an app missing from the tenant.
* Refresh tokens rotate strictly: each use issues a new one and invalidates the one used, so a
  second use is ``400 invalid_grant`` (Entra itself tolerates some reuse; the strict rule is what
  a client sharing a token cache between processes must survive). A refresh token is issued
  only when the request's scope holds ``offline_access`` (MSAL always adds it).
* The device-code poll interval is 1 second (Entra says 5) so tests stay short; codes live 15
  minutes. The ``verification_uri`` points at this server (``/devicelogin``), never a Microsoft
  host.
* The ``scope`` of a user token answer echoes the requested scopes; app-only answers carry no
  ``scope``. App-only scopes must end in ``/.default`` (``400 invalid_scope``, AADSTS1002012).
* Access tokens are opaque random strings (MSAL never reads them); ``id_token`` is an unsigned
  JWT (``alg: none``) with ``oid``, ``tid``, ``preferred_username``, ``name``, ``sub``, ``iss``,
  ``aud``, ``exp``, ``iat``, ``nbf``, ``ver``; ``client_info`` is base64url of
  ``{"uid": oid, "utid": tid}``. Object and tenant ids are UUIDv5 of the user / tenant name.
"""

from __future__ import annotations

from tests.identity_provider.certificates import make_certificate, write_certificate_file
from tests.identity_provider.directory import DEVICE_CODE_GRANT
from tests.identity_provider.errors import OAuthError
from tests.identity_provider.provider import IdentityProvider

__all__ = [
    "DEVICE_CODE_GRANT",
    "IdentityProvider",
    "OAuthError",
    "make_certificate",
    "write_certificate_file",
]
