"""Signing in to Microsoft Graph with MSAL: delegated (device code, a token cache on disk) or
app-only (a client secret or a certificate).

Delegated: the MSAL token cache lives in one file, 0600 in a 0700 folder
(:class:`syncd.secrets.TokenStore`). It is reloaded from disk before every token acquisition
and written atomically whenever MSAL changed it, under an exclusive lock on a sibling lock
file: refresh tokens rotate, so a second process (``syncd once`` beside the daemon) must see
the newest one. Without a usable account the calendar "needs consent" (``syncd auth outlook``).

MSAL's application is built at the first token request (its constructor fetches the
authority's OpenID configuration). Its HTTP client is a ``requests`` session that takes the
proxy from the environment (:mod:`syncd.proxies`) but ignores its CA variables and trusts
``ca_file``. Instance discovery (a call to
login.microsoftonline.com) is skipped for any authority host that is not Microsoft's.

Access tokens, refresh tokens, secrets and private keys are registered with
:mod:`syncd.secrets` so no log line can show them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import msal  # type: ignore[import-untyped]
import structlog
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS  # type: ignore[import-untyped]
from requests.exceptions import RequestException, SSLError

from connectors.outlook.options import OutlookOptions
from connectors.proxied import ProxiedSession, proxy_failure
from syncd.errors import AuthError, ConnectorError, TransientError
from syncd.proxies import ProxyUnsupported, proxy_suffix
from syncd.secrets import Secret, SecretError, TokenStore, read_secret

__all__ = [
    "SCOPES",
    "AppCredentials",
    "DelegatedCredentials",
    "NotACache",
    "credentials_for",
    "device_code_sign_in",
]

SCOPES = ["Calendars.ReadWrite"]
"""Delegated scopes; MSAL adds openid, profile and offline_access itself."""
_GRAPH_HOSTS = frozenset(
    {
        "graph.microsoft.com",
        "graph.microsoft.us",
        "dod-graph.microsoft.us",
        "microsoftgraph.chinacloudapi.cn",
    }
)
_EARLY = 300.0
"""An access token is renewed this many seconds before it expires."""
_PEM_KEY = re.compile(
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----.+?-----END (?:[A-Z]+ )?PRIVATE KEY-----", re.DOTALL
)
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_MAX_PEM = 256 * 1024
_CACHE_FIELDS = (
    "credential_type",
    "secret",
    "home_account_id",
    "environment",
    "client_id",
    "target",
    "realm",
    "username",
    "local_account_id",
    "family_id",
    "expires_on",
    "authority_type",
)
"""Fields MSAL reads or matches on as text."""

log = structlog.get_logger("syncd.outlook")


def _unreachable(name: str, error: RequestException, options: OutlookOptions) -> ConnectorError:
    """A failed exchange with the sign-in service: TLS trouble is the configuration's (the
    certificate is not trusted, or ``ca_file`` is no PEM bundle), anything else may pass.
    A proxy in the way is named (host and port)."""
    ca_file = options.ca_file
    if isinstance(error, SSLError):
        trust = f"ca_file {ca_file}" if ca_file is not None else "the system's CAs (see ca_file)"
        return ConnectorError(
            name,
            "TLS with the sign-in service failed: its certificate is not trusted by "
            f"{trust}, or ca_file is not a PEM bundle of CA certificates",
        )
    found = proxy_failure(error, options.authority, "sign-in")
    if found is not None:  # refused (not retried) or down, by connectors.proxied's table
        rule, detail = found
        return rule.error(name, f"cannot reach the sign-in service: {detail}")
    return TransientError(
        name,
        f"cannot reach the sign-in service ({type(error).__name__})"
        f"{proxy_suffix(options.authority)}",
    )


@contextlib.contextmanager
def _sign_in_service(name: str, options: OutlookOptions) -> Iterator[None]:
    """MSAL's failures while it talks to the sign-in service, as syncd errors: no answer, or
    an answer it cannot read (a proxy's error page), may pass."""
    try:
        yield
    except RequestException as error:
        raise _unreachable(name, error, options) from None
    except ProxyUnsupported as error:
        raise ConnectorError(name, str(error)) from None
    except ValueError as error:  # json.JSONDecodeError and MSAL's own checks of answers
        raise TransientError(
            name, f"the sign-in service sent an unreadable answer ({_first_line(error)})"
        ) from None


class NotACache(AuthError):
    """The token cache file does not hold an MSAL token cache."""


def needs_consent(calendar: str) -> str:
    """The instruction every "needs consent" error carries."""
    return f"needs consent: run 'syncd auth outlook --calendar {calendar}'"


class MsalHttp(ProxiedSession):
    """MSAL's HTTP client: the environment's proxy used, its CA variables ignored,
    ``ca_file`` trusted, a timeout on every request."""

    def __init__(self, verify: bool | str, timeout: float) -> None:
        super().__init__()
        self.verify = verify
        self._timeout = timeout

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        """Send with the configured timeout unless MSAL gives one."""
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class _Base:
    """What both kinds of credentials share: the MSAL app, a memo of the access token."""

    def __init__(self, name: str, options: OutlookOptions) -> None:
        self.name = name
        self.options = options
        self.http = MsalHttp(verify(options), options.timeout)
        self._lock = threading.RLock()
        self._app: Any = None
        self._token: Secret | None = None
        self._expires = 0.0
        self._registered: set[str] = set()

    def token(self) -> str:
        """A valid access token (from memory while it lasts, else from MSAL)."""
        with self._lock:
            if self._token is not None and time.time() < self._expires - _EARLY:
                return self._token.reveal()
            return self._remember(self._acquire(force=False))

    def renew(self) -> str:
        """A new access token: Graph refused the last one."""
        with self._lock:
            self._token, self._expires = None, 0.0
            return self._remember(self._acquire(force=True))

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def _acquire(self, *, force: bool) -> Mapping[str, Any]:
        raise NotImplementedError

    def _remember(self, result: Mapping[str, Any]) -> str:
        token = result.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(self.name, self._refusal(result))
        if self._token is not None:
            self._token.forget()
        self._token = Secret(token)
        expires_in = result.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, int | float | str) else 3600.0
        self._expires = time.time() + lifetime
        return token

    def _refusal(self, result: Mapping[str, Any] | None) -> str:
        raise NotImplementedError

    def _register(self, value: Any) -> None:
        if isinstance(value, str) and value and value not in self._registered:
            Secret(value)  # registered for scrubbing for the life of the process
            self._registered.add(value)

    def _msal(self, build: Any) -> Any:
        """Build the MSAL application, mapping its failures."""
        try:
            return build()
        except RequestException as error:
            raise _unreachable(self.name, error, self.options) from None
        except ProxyUnsupported as error:
            raise ConnectorError(self.name, str(error)) from None
        except ValueError as error:
            raise ConnectorError(
                self.name,
                f"the authority {self.options.authority} is not usable ({_first_line(error)})",
            ) from None

    def _app_options(self) -> dict[str, Any]:
        host = (urlsplit(self.options.authority).hostname or "").lower()
        return {
            "authority": self.options.authority,
            "http_client": self.http,
            "instance_discovery": None if host in WELL_KNOWN_AUTHORITY_HOSTS else False,
        }


class DelegatedCredentials(_Base):
    """A user's tokens from MSAL's cache file (written by ``syncd auth outlook``)."""

    def __init__(self, name: str, options: OutlookOptions) -> None:
        super().__init__(name, options)
        assert options.token_cache is not None
        self.path = options.token_cache
        self.cache = msal.SerializableTokenCache()
        self._store: TokenStore | None = None
        self._consent_logged = False
        self._mailbox: str | None = None

    def mailbox(self) -> str:
        """The ``user`` option, else the signed-in account's address from the cache file."""
        if self.options.user is not None:
            return self.options.user
        with self._lock:
            if self._mailbox is None:
                self._load()
                for account in self.cache.search(msal.TokenCache.CredentialType.ACCOUNT):
                    username = account.get("username")
                    if isinstance(username, str) and username:
                        self._mailbox = username.lower()
                        break
            if self._mailbox is None:
                raise self._consent_error()
            return self._mailbox

    def app(self) -> Any:
        """The MSAL public client application (built on first use)."""
        if self._app is None:
            self._app = self._msal(
                lambda: msal.PublicClientApplication(
                    self.options.client_id, token_cache=self.cache, **self._app_options()
                )
            )
        return self._app

    @contextlib.contextmanager
    def locked_cache(self) -> Iterator[None]:
        """The cache reloaded from disk under an exclusive lock, and written back (atomically,
        0600) when MSAL changed it."""
        store = self._token_store()
        with self._file_lock():
            self._load(store)
            yield
            if self.cache.has_state_changed:
                self._save(store)

    def store(self) -> None:
        """Write the cache as it is in memory (after a new sign-in), under the lock."""
        store = self._token_store()
        with self._file_lock():
            self._save(store)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        lock = self.path.parent / f".{self.path.name}.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise AuthError(self.name, f"cannot lock {lock}: {error.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _acquire(self, *, force: bool) -> Mapping[str, Any]:
        with self.locked_cache():
            app = self.app()
            accounts = app.get_accounts()
            if not accounts:
                raise self._consent_error()
            with _sign_in_service(self.name, self.options):
                result = app.acquire_token_silent_with_error(
                    SCOPES, account=accounts[0], force_refresh=force
                )
        if not result or "access_token" not in result:
            raise self._consent_error(result)
        self._consent_logged = False
        return dict(result)

    def _refusal(self, result: Mapping[str, Any] | None) -> str:
        error = result.get("error") if result else None
        said = f" (the sign-in service said {error})" if isinstance(error, str) else ""
        return needs_consent(self.name) + said

    def _consent_error(self, result: Mapping[str, Any] | None = None) -> AuthError:
        message = self._refusal(result)
        if not self._consent_logged:
            log.error("outlook.needs_consent", calendar=self.name, reason=message)
            self._consent_logged = True
        return AuthError(self.name, message)

    def _token_store(self) -> TokenStore:
        if self._store is None:
            try:
                self._store = TokenStore(self.path.parent)
            except SecretError as error:
                raise AuthError(self.name, str(error)) from None
        return self._store

    def _load(self, store: TokenStore | None = None) -> None:
        try:
            data = (store or self._token_store()).read(self.path.name)
        except SecretError as error:
            raise AuthError(self.name, str(error)) from None
        try:
            text = data.decode("utf-8") if data else None
            if text is not None:
                _check_cache_shape(json.loads(text))
            self.cache.deserialize(text)
            self._register_cached()
        except (ValueError, TypeError, AttributeError, KeyError):
            # MSAL trusts the file's shape and fails deep inside its searches otherwise.
            self.cache = msal.SerializableTokenCache()
            self._app = None
            raise NotACache(
                self.name,
                f"{self.path} is not an MSAL token cache; "
                f"run 'syncd auth outlook --calendar {self.name}'",
            ) from None

    def start_empty(self) -> None:
        """Forget whatever the cache file held (a sign-in that replaces an unreadable one)."""
        self.cache = msal.SerializableTokenCache()
        self._app = None

    def _save(self, store: TokenStore) -> None:
        self._register_cached()
        try:
            store.write(self.path.name, self.cache.serialize().encode("utf-8"))
        except SecretError as error:
            raise AuthError(self.name, str(error)) from None

    def _register_cached(self) -> None:
        for kind in ("REFRESH_TOKEN", "ACCESS_TOKEN"):
            for entry in self.cache.search(getattr(msal.TokenCache.CredentialType, kind)):
                self._register(entry.get("secret"))


class AppCredentials(_Base):
    """The application's own tokens (client credentials), kept in memory."""

    def __init__(self, name: str, options: OutlookOptions) -> None:
        super().__init__(name, options)
        self._failure_logged = False

    def mailbox(self) -> str:
        """The ``user`` option (required with app-only sign-in)."""
        assert self.options.user is not None
        return self.options.user

    def _acquire(self, *, force: bool) -> Mapping[str, Any]:
        if self._app is None:
            credential = self._credential()
            self._app = self._msal(
                lambda: msal.ConfidentialClientApplication(
                    self.options.client_id, client_credential=credential, **self._app_options()
                )
            )
        if force:
            self._app.remove_tokens_for_client()
        with _sign_in_service(self.name, self.options):
            result = self._app.acquire_token_for_client(scopes=[app_scope(self.options)])
        if result and "access_token" in result:
            self._failure_logged = False
        return dict(result or {})

    def _refusal(self, result: Mapping[str, Any] | None) -> str:
        error = result.get("error") if result else None
        said = f": the sign-in service said {error}" if isinstance(error, str) else ""
        message = f"app-only sign-in failed{said}"
        if not self._failure_logged:
            log.error("outlook.app_sign_in_failed", calendar=self.name, reason=message)
            self._failure_logged = True
        return message

    def _credential(self) -> str | dict[str, str]:
        options = self.options
        if options.client_secret_file is not None:
            where = f"calendar {self.name!r} client_secret_file"
            try:
                secret = read_secret(
                    file=options.client_secret_file, env=None, credential=None, where=where
                )
            except SecretError as error:
                raise AuthError(self.name, f"needs credentials: {error}") from None
            return secret.reveal()
        assert options.certificate_file is not None
        pem = _read_private_file(self.name, options.certificate_file)
        key = _PEM_KEY.search(pem)
        cert = _PEM_CERT.search(pem)
        if key is None:
            raise AuthError(self.name, f"{options.certificate_file} holds no PEM private key")
        self._register(key.group(0))
        _check_private_key(self.name, key.group(0))
        thumbprint = options.certificate_thumbprint
        if thumbprint is None:
            if cert is None:
                raise AuthError(
                    self.name,
                    f"{options.certificate_file} holds no certificate: give certificate_thumbprint",
                )
            thumbprint = _thumbprint(self.name, cert.group(0))
        return {"private_key": key.group(0), "thumbprint": thumbprint}


def verify(options: OutlookOptions) -> bool | str:
    """What ``requests`` verifies TLS with: the ``ca_file`` or the system's CAs."""
    return str(options.ca_file) if options.ca_file is not None else True


def app_scope(options: OutlookOptions) -> str:
    """The ``.default`` scope of the Graph service ``graph_url`` names (a national cloud), or
    of the public one behind a proxy or emulator."""
    parts = urlsplit(options.graph_url)
    host = (parts.hostname or "").lower()
    if host in _GRAPH_HOSTS:
        return f"https://{host}/.default"
    return "https://graph.microsoft.com/.default"


def credentials_for(name: str, options: OutlookOptions) -> DelegatedCredentials | AppCredentials:
    """The credentials the options call for."""
    if options.app_only:
        return AppCredentials(name, options)
    return DelegatedCredentials(name, options)


def device_code_sign_in(name: str, options: OutlookOptions, out: TextIO) -> str:
    """``syncd auth outlook``: a device-code sign-in; the code and address go to ``out``.
    Returns the line naming the token cache written."""
    if options.app_only:
        AppCredentials(name, options).token()
        return f"calendar {name!r} signs in as the application: nothing to store (checked)"
    credentials = DelegatedCredentials(name, options)
    try:
        with credentials.locked_cache():
            app = credentials.app()
    except NotACache:
        # An unreadable cache file is replaced by this sign-in.
        credentials.start_empty()
        app = credentials.app()
    with _sign_in_service(name, options):
        flow = app.initiate_device_flow(scopes=SCOPES)
        if "user_code" not in flow:
            said = flow.get("error", "no device code")
            raise AuthError(name, f"the sign-in service refused a device code ({said})")
        out.write(_instructions(flow) + "\n")
        out.flush()
        # Polls until the user signs in; the cache file stays unlocked meanwhile.
        result = app.acquire_token_by_device_flow(flow)
    if "access_token" not in result:
        said = result.get("error", "no token")
        raise AuthError(name, f"sign-in did not complete ({said})")
    credentials.store()
    claims = result.get("id_token_claims") or {}
    who = claims.get("preferred_username") if isinstance(claims, Mapping) else None
    shown = f" as {who}" if isinstance(who, str) and who else ""
    return f"signed in{shown}; MSAL's token cache for {name!r} is in {credentials.path}"


def _instructions(flow: Mapping[str, Any]) -> str:
    """What the user is told to do: the service's own message, else one made from the
    address and the code (the message is optional in RFC 8628)."""
    message = flow.get("message")
    if isinstance(message, str) and message.strip():
        return message
    uri = flow.get("verification_uri") or flow.get("verification_url")
    where = uri if isinstance(uri, str) and uri else "the sign-in page"
    return f"To sign in, open {where} and enter the code {flow['user_code']}"


def _check_cache_shape(data: Any) -> None:
    """Raise ValueError unless ``data`` is shaped like MSAL's cache: kinds, then keys, then
    entries whose fields MSAL matches on are text."""
    if not isinstance(data, dict):
        raise ValueError("not an object")
    for entries in data.values():
        if not isinstance(entries, dict):
            raise ValueError("a kind of entry is not an object")
        for entry in entries.values():
            if not isinstance(entry, dict):
                raise ValueError("an entry is not an object")
            if any(not isinstance(entry.get(f, ""), str) for f in _CACHE_FIELDS):
                raise ValueError("an entry field is not text")


def _read_private_file(name: str, path: Path) -> str:
    """A PEM file that only its owner may read (it holds a private key)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as error:
        raise AuthError(name, f"cannot open {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077:
            raise AuthError(
                name,
                f"{path} is open to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}",
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(_MAX_PEM + 1)
    except OSError as error:
        raise AuthError(name, f"cannot read {path}: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_PEM:
        raise AuthError(name, f"{path} is larger than {_MAX_PEM} bytes")
    return data.decode("ascii", "replace")


def _check_private_key(name: str, pem: str) -> None:
    """Refuse a private key that cannot sign (encrypted, damaged) before MSAL tries to."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError):
        raise AuthError(
            name, "the private key in certificate_file cannot be read (encrypted or damaged)"
        ) from None


def _thumbprint(name: str, certificate: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        loaded = x509.load_pem_x509_certificate(certificate.encode("ascii"))
    except ValueError:
        raise AuthError(name, "the certificate in certificate_file cannot be read") from None
    return loaded.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's thumbprint


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
