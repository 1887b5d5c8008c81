"""``syncd auth google``: Google's installed-app consent flow with a loopback redirect.

The OAuth client is the ``client_secrets_file`` of the calendar (an "installed" client's JSON
as Google's console downloads it). The address to open is written to ``out`` (and a browser
is started unless ``--no-browser``); Google redirects the browser to a one-shot server on
``http://localhost:<free port>/``, whose code is exchanged for tokens. The authorized-user
JSON is written to the calendar's ``token_file`` (0600, atomically, through
:class:`syncd.secrets.TokenStore`); nothing of it is printed. With ``ca_file`` set, the
token exchange trusts that file only, as the API requests do; like them, it goes through the
proxy the environment names for the token endpoint (:mod:`syncd.proxies`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, TextIO

from google_auth_oauthlib.flow import (  # type: ignore[import-untyped]
    InstalledAppFlow,
    WSGITimeoutError,
)
from oauthlib.oauth2.rfc6749.errors import OAuth2Error  # type: ignore[import-untyped]
from requests import RequestException

from connectors.google.options import SCOPES, parse_options
from connectors.proxied import proxy_failure
from syncd.errors import AuthError, ConfigError, ConnectorError
from syncd.proxies import ProxyUnsupported, proxies_for
from syncd.secrets import Secret, SecretError, TokenStore

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = ["authorize"]

PROMPT = (
    "Open this address in a browser and allow syncd to use your calendar "
    "(Google then sends the browser back to this machine):\n{url}\n"
)
SUCCESS = "syncd has your consent: you may close this window."


class _Flushing:
    """A text stream that flushes every write: the address must reach a pipe at once."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def write(self, text: str) -> int:
        written = self.out.write(text)
        self.out.flush()
        return written

    def flush(self) -> None:
        self.out.flush()


def authorize(calendar: CalendarConfig, out: TextIO, *, open_browser: bool) -> str:
    """Run the consent flow for ``calendar`` and store its token; return what was stored."""
    options = parse_options(calendar)
    if options.service_account_file is not None:
        raise ConfigError(
            [
                calendar.problem(
                    "service_account_file",
                    "a service account needs no consent: 'syncd auth google' is for token_file",
                )
            ]
        )
    if options.client_secrets_file is None:
        raise ConfigError(
            [
                calendar.problem(
                    "client_secrets_file",
                    "is required for 'syncd auth google': the OAuth client JSON (type "
                    '"installed") from the Google Cloud console',
                )
            ]
        )
    path = options.token_file
    assert path is not None
    try:
        flow = InstalledAppFlow.from_client_secrets_file(
            str(options.client_secrets_file), scopes=list(SCOPES)
        )
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(
            [
                calendar.problem(
                    "client_secrets_file",
                    f"{options.client_secrets_file} is not an OAuth client JSON "
                    f"({type(error).__name__})",
                )
            ]
        ) from None
    token_uri = str(flow.client_config.get("token_uri", ""))
    if options.ca_file is not None:
        flow.oauth2session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        flow.oauth2session.verify = str(options.ca_file)
    try:  # the session only ever reaches the token endpoint
        flow.oauth2session.proxies.update(proxies_for(token_uri))
    except ProxyUnsupported as error:
        raise ConnectorError(calendar.name, str(error)) from None
    try:  # before the consent: a folder or file open to others is refused, not after it
        store = TokenStore(path.parent)
        store.read(path.name)
    except SecretError as error:
        raise AuthError(calendar.name, f"the token cannot be stored: {error}") from None
    credentials = _consent(calendar.name, flow, out, open_browser, token_uri)
    try:
        store.write(path.name, str(credentials.to_json()).encode("utf-8"))
    except SecretError as error:
        raise AuthError(calendar.name, f"the token could not be stored: {error}") from None
    return f"stored the Google token for calendar {calendar.name!r} in {path} (mode 0600)"


def _consent(name: str, flow: Any, out: TextIO, open_browser: bool, token_uri: str) -> Any:
    try:
        with contextlib.redirect_stdout(_Flushing(out)):
            credentials = flow.run_local_server(
                host="localhost",
                port=0,
                open_browser=open_browser,
                authorization_prompt_message=PROMPT,
                success_message=SUCCESS,
                access_type="offline",
                prompt="consent",
            )
    except OAuth2Error as error:
        raise AuthError(name, f"consent failed: Google answered {error.error!r}") from None
    except RequestException as error:
        found = proxy_failure(error, token_uri, "token exchange")
        why = f"the token endpoint cannot be reached ({type(error).__name__})"
        raise AuthError(name, f"consent failed: {why if found is None else found[1]}") from None
    except (OSError, WSGITimeoutError) as error:
        raise AuthError(
            name, f"consent failed: the local redirect server failed ({type(error).__name__})"
        ) from None
    for value in (credentials.token, credentials.refresh_token, credentials.client_secret):
        if isinstance(value, str) and value:
            Secret(value)
    if not credentials.refresh_token:
        raise AuthError(
            name,
            "Google sent no refresh token; remove syncd's access at "
            "https://myaccount.google.com/permissions and run this again",
        )
    return credentials
