"""Google accounts: credentials, the token file, and what calendars of one account share.

Calendars that use the same token file (or the same service account and subject) are one
*account*: they share one credentials object, the token file rewritten after a refresh, the
pause after ``403 quotaExceeded`` or a ``Retry-After`` too long to wait for (no request of the
account is sent before it ends, in this cycle or the next) and the "needs consent" log line,
which is written once per account until a request succeeds again.

An authorized-user token file is read through :class:`syncd.secrets.TokenStore` (0600 in a
0700 folder, refused when wider) and rewritten the same way, atomically, whenever the access
token changed. Its ``token_uri`` is honoured (google-auth would use Google's otherwise). The
refresh token, the client secret and every access token are registered for scrubbing. A file
changed by someone else (``syncd auth google`` while the daemon runs) is read again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog
from google.auth.credentials import Credentials as BaseCredentials
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials as UserCredentials

from connectors.google.options import SCOPES, GoogleOptions
from syncd.errors import AuthError
from syncd.secrets import Secret, SecretError, TokenStore

__all__ = ["Account", "account_for", "consent_hint", "forget_accounts"]

log = structlog.get_logger("syncd.google")
_ACCOUNTS: dict[tuple[str, ...], Account] = {}
_REGISTRY_LOCK = threading.Lock()


def consent_hint(calendar: str) -> str:
    """What the user must do when the account needs consent."""
    return f"needs consent: run 'syncd auth google --calendar {calendar}'"


class Account:
    """One Google identity, shared by every calendar that uses it."""

    def __init__(self, options: GoogleOptions) -> None:
        self.options = options
        self._lock = threading.RLock()
        self._credentials: BaseCredentials | None = None
        self._signature: tuple[int, int, int] | None = None
        self._secrets: list[Secret] = []
        self._token: Secret | None = None
        self._paused_until = 0.0
        self._pause_reason = ""
        self._auth_logged = False

    # --- credentials ----------------------------------------------------------------------

    def credentials(self, calendar: str) -> BaseCredentials:
        """The credentials, loaded on first use and again when the file changed on disk.
        Raises ``AuthError`` naming the file (never its content)."""
        with self._lock:
            if self._credentials is None or self._changed_on_disk():
                self._credentials = self._load(calendar)
                self._note_token()
            return self._credentials

    def _changed_on_disk(self) -> bool:
        path = self.options.token_file
        if path is None or self.options.service_account_file is not None:
            return False
        return _signature(path) != self._signature

    def _load(self, calendar: str) -> BaseCredentials:
        if self.options.service_account_file is not None:
            return self._load_service_account(calendar, self.options.service_account_file)
        assert self.options.token_file is not None
        return self._load_user(calendar, self.options.token_file)

    def _load_user(self, calendar: str, path: Path) -> BaseCredentials:
        info = _read_json(calendar, path, "token file")
        _check_token_fields(calendar, path, info)
        self._keep_secrets(info.get(key) for key in ("refresh_token", "client_secret", "token"))
        try:
            credentials: UserCredentials = UserCredentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
            token_uri = info.get("token_uri")
            if isinstance(token_uri, str) and token_uri:
                credentials = credentials.with_token_uri(token_uri)
        except (ValueError, TypeError) as error:
            raise AuthError(
                calendar,
                f"the token file {path} is not an authorized-user token ({error}); "
                + consent_hint(calendar),
            ) from None
        self._signature = _signature(path)
        return credentials

    def _load_service_account(self, calendar: str, path: Path) -> BaseCredentials:
        info = _read_json(calendar, path, "service account file")
        self._keep_secrets([info.get("private_key")])
        try:
            made: BaseCredentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(SCOPES), subject=self.options.subject
            )
            return made
        except (ValueError, TypeError, KeyError) as error:
            raise AuthError(
                calendar,
                f"the service account file {path} is not a service account key "
                f"({type(error).__name__})",
            ) from None

    def refresh(self, request: Any) -> None:
        """Refresh an expired or missing access token through ``request`` (a google-auth
        transport), once for the account: the account's lock is held, so the other threads
        find it fresh instead of each refreshing on its own."""
        with self._lock:
            credentials = self._credentials
            if credentials is None or credentials.valid:
                return
            credentials.refresh(request)  # type: ignore[no-untyped-call]

    def _keep_secrets(self, values: Iterable[object]) -> None:
        """Register the secrets of a file just read for scrubbing, and forget those of the
        version read before (a reload replaces them; the list does not grow)."""
        fresh = [Secret(value) for value in values if isinstance(value, str) and value]
        for old in self._secrets:
            old.forget()
        self._secrets = fresh

    def _note_refresh_token(self) -> None:
        """A refresh may hand out a new refresh token: register it for scrubbing too."""
        value = getattr(self._credentials, "refresh_token", None)
        if isinstance(value, str) and value and all(s.reveal() != value for s in self._secrets):
            self._secrets.append(Secret(value))

    # --- after a request ------------------------------------------------------------------

    def after_request(self, calendar: str) -> None:
        """Register a new access token for scrubbing and write a refreshed token file."""
        with self._lock:
            if self._credentials is None or not self._note_token():
                return
            self._note_refresh_token()
            if self.options.service_account_file is not None:
                return
            path = self.options.token_file
            assert path is not None
            to_json = getattr(self._credentials, "to_json", None)
            if to_json is None:
                return
            try:
                TokenStore(path.parent).write(path.name, str(to_json()).encode("utf-8"))
            except SecretError as error:
                log.error("google.token_not_saved", calendar=calendar, error=str(error))
                return
            self._signature = _signature(path)

    def _note_token(self) -> bool:
        """Whether the access token changed since last seen (then it is registered)."""
        token = getattr(self._credentials, "token", None)
        if not isinstance(token, str) or not token:
            return False
        if self._token is not None and self._token.reveal() == token:
            return False
        previous = self._token
        self._token = Secret(token)
        if previous is not None:
            previous.forget()
        return True

    # --- shared state ---------------------------------------------------------------------

    def pause(self, seconds: float, reason: str) -> None:
        """Stop every calendar of this account from sending requests for ``seconds``;
        ``reason`` says why in the messages of the requests not sent."""
        with self._lock:
            until = time.monotonic() + seconds
            if until > self._paused_until:
                self._paused_until, self._pause_reason = until, reason

    def paused(self) -> tuple[float, str]:
        """Seconds left of a pause (0 when none) and its reason."""
        with self._lock:
            return max(0.0, self._paused_until - time.monotonic()), self._pause_reason

    def log_needs_consent(self, calendar: str, reason: str) -> None:
        """Log that the account needs consent, once until a request succeeds again."""
        with self._lock:
            if self._auth_logged:
                return
            self._auth_logged = True
        log.error("google.needs_consent", calendar=calendar, reason=reason)

    def succeeded(self) -> None:
        """A request went through: a later consent problem is logged again."""
        self._auth_logged = False


def _read_json(calendar: str, path: Path, what: str) -> dict[str, Any]:
    try:
        raw = TokenStore(path.parent).read(path.name)
    except SecretError as error:
        raise AuthError(calendar, f"cannot use the {what}: {error}") from None
    if raw is None:
        hint = consent_hint(calendar) if what == "token file" else "check service_account_file"
        raise AuthError(calendar, f"{hint} (there is no {what} {path})")
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AuthError(calendar, f"the {what} {path} is not JSON") from None
    if not isinstance(info, dict):
        raise AuthError(calendar, f"the {what} {path} is not a JSON object")
    return info


_TEXT_FIELDS = (
    "refresh_token",
    "client_id",
    "client_secret",
    "token",
    "token_uri",
    "expiry",
    "universe_domain",
    "account",
    "rapt_token",
)
_REQUIRED_FIELDS = ("refresh_token", "client_id", "client_secret")


def _check_token_fields(calendar: str, path: Path, info: dict[str, Any]) -> None:
    """Refuse a field of the wrong type before google-auth meets it (a wrong ``scopes``
    surfaces only at the first refresh, deep inside the library)."""

    def refuse(key: str, what: str) -> AuthError:
        return AuthError(
            calendar, f"the token file {path}: {key} {what}; " + consent_hint(calendar)
        )

    for key in _REQUIRED_FIELDS:
        if not info.get(key):
            raise refuse(key, "is missing")
    for key in _TEXT_FIELDS:
        value = info.get(key)
        if value is not None and not isinstance(value, str):
            raise refuse(key, "is not a string")
    scopes = info.get("scopes")
    listed = isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)
    if scopes is not None and not isinstance(scopes, str) and not listed:  # str: google-auth splits
        raise refuse("scopes", "is not a list of strings")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def account_for(options: GoogleOptions) -> Account:
    """The account these options act as, shared with other calendars that use it."""
    with _REGISTRY_LOCK:
        account = _ACCOUNTS.get(options.account)
        if account is None:
            account = _ACCOUNTS[options.account] = Account(options)
        return account


def forget_accounts() -> None:
    """Drop every shared account (tests start each scenario afresh)."""
    with _REGISTRY_LOCK:
        _ACCOUNTS.clear()
