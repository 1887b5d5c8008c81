"""The options of one ``connector = "outlook"`` calendar, parsed once into a frozen object.

Parsing does no I/O beyond checking that named files exist: a client secret or certificate is
read when the first token is needed, the token cache before each token acquisition.
:func:`option_warnings` may look at the file system (it serves ``check-config``).
"""

from __future__ import annotations

import re
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from syncd.errors import ConfigError, ConfigProblem
from syncd.option_reader import OptionReader
from syncd.proxies import environment_problem
from syncd.transport import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = [
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_GRAPH_URL",
    "OPTIONS",
    "OutlookOptions",
    "default_token_cache",
    "option_warnings",
    "parse_options",
]

OPTIONS = (
    "account",
    "calendar",
    "create",
    "tenant",
    "client_id",
    "authority",
    "graph_url",
    "ca_file",
    "token_cache",
    "client_secret_file",
    "certificate_file",
    "certificate_thumbprint",
    "user",
    "timeout",
    "categories",
)
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_TENANT = "organizations"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$")
_MULTI_TENANT = frozenset({"organizations", "common", "consumers"})
_THUMBPRINT = re.compile(r"^[0-9A-Fa-f]{40}$")
# What syncd.secrets.TokenStore accepts as a file name.
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]")


@dataclass(frozen=True, slots=True)
class OutlookOptions:
    """One Outlook calendar: which mailbox and calendar, and how to sign in."""

    client_id: str
    """The application (client) id registered in Microsoft Entra ID."""
    authority: str
    """The sign-in authority URL, ``https://login.microsoftonline.com/{tenant}`` by default."""
    graph_url: str
    """The Graph service root without a trailing slash (national clouds, proxies)."""
    calendar: str | None = None
    """A calendar name or id; None is the mailbox's default calendar."""
    create: bool = False
    """Create the named calendar when it does not exist (on the first listing or write);
    by default only the notes calendar is made."""
    tenant: str = DEFAULT_TENANT
    ca_file: Path | None = None
    token_cache: Path | None = None
    """MSAL's token cache for delegated sign-in (0600 in a 0700 folder)."""
    client_secret_file: Path | None = None
    certificate_file: Path | None = None
    """A PEM file holding the certificate and its private key, for app-only sign-in."""
    certificate_thumbprint: str | None = None
    user: str | None = None
    """The mailbox (required for app-only sign-in): URLs are then ``/users/{user}/...``."""
    timeout: float = DEFAULT_TIMEOUT
    categories: bool = False
    """Also show a verdict as an Outlook category ("syncd: late cancellation")."""

    @property
    def app_only(self) -> bool:
        """True when the application signs in as itself (a client secret or certificate)."""
        return self.client_secret_file is not None or self.certificate_file is not None

    @property
    def mailbox_path(self) -> str:
        """The URL segment of the mailbox: ``me`` or ``users/{user}``."""
        return "me" if self.user is None else f"users/{quote(self.user, safe='@')}"


def default_token_cache(calendar: CalendarConfig, account: str | None = None) -> Path | None:
    """``tokens_dir/outlook-{account}.json``, the account defaulting to the calendar's name
    (unsafe characters as ``_``): calendars naming one account share its sign-in."""
    if calendar.tokens_dir is None:
        return None
    return calendar.tokens_dir / f"outlook-{_UNSAFE_NAME.sub('_', account or calendar.name)}.json"


def parse_options(calendar: CalendarConfig) -> OutlookOptions:
    """Validate a ``[[calendars]]`` table; raise ``ConfigError`` naming each bad key."""
    reader = _Reader(calendar, "outlook", OPTIONS)
    client_id = reader.text("client_id")
    if client_id is None and "client_id" not in calendar.options:
        reader.add("client_id", "is required: the application (client) id of your app")
    tenant = reader.text("tenant") or DEFAULT_TENANT
    if not _TENANT.match(tenant):
        reader.add("tenant", "must be a tenant id, a domain, 'organizations' or 'common'")
    authority = reader.url("authority", require_path=True)
    graph_url = reader.url("graph_url", require_path=False) or DEFAULT_GRAPH_URL
    secret_file, certificate = reader.path("client_secret_file"), reader.path("certificate_file")
    if secret_file is not None and certificate is not None:
        reader.add("certificate_file", "give only one of client_secret_file, certificate_file")
    thumbprint = reader.text("certificate_thumbprint")
    if thumbprint is not None and not _THUMBPRINT.match(thumbprint):
        reader.add("certificate_thumbprint", "must be the certificate's SHA-1 thumbprint (hex)")
    if thumbprint is not None and certificate is None:
        reader.add("certificate_thumbprint", "is only used with certificate_file")
    user = reader.text("user")
    if user is not None and ("/" in user or "?" in user or "#" in user):
        reader.add("user", "must be a mailbox address or user id")
    app_only = secret_file is not None or certificate is not None
    if app_only and user is None and "user" not in calendar.options:
        reader.add("user", "is required with app-only sign-in: the mailbox to use")
    if app_only and authority is None and tenant in _MULTI_TENANT:
        reader.add("tenant", "app-only sign-in needs your tenant's id or domain")
    options = OutlookOptions(
        client_id=client_id or "",
        authority=authority or f"{DEFAULT_AUTHORITY_HOST}/{tenant}",
        graph_url=graph_url,
        calendar=reader.text("calendar"),
        create=reader.flag("create", calendar.is_notes),
        tenant=tenant,
        ca_file=reader.existing_file("ca_file"),
        token_cache=None if app_only else reader.token_cache(),
        client_secret_file=secret_file,
        certificate_file=certificate,
        certificate_thumbprint=None if thumbprint is None else thumbprint.upper(),
        user=user,
        timeout=reader.timeout(),
        categories=reader.flag("categories", False),
    )
    reader.check()
    return options


class _Reader(OptionReader):
    """Typed reads of one calendar's options, with Outlook's URLs and token cache."""

    def url(self, key: str, *, require_path: bool) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            host = parts.hostname
        except ValueError:
            self.add(key, "is not a valid URL")
            return None
        if parts.scheme != "https" or not host:
            self.add(key, "must be an https:// URL")
            return None
        if parts.username is not None or parts.password is not None or parts.query:
            self.add(key, "must not contain credentials or a query")
            return None
        if require_path and not parts.path.strip("/"):
            self.add(key, "must name the tenant in its path (https://host/TENANT)")
            return None
        return value.rstrip("/")

    def token_cache(self) -> Path | None:
        path, account = self.path("token_cache"), self.text("account")
        if path is not None and account is not None:
            self.add("account", "give account or token_cache, not both")
        if path is None:
            path = default_token_cache(self.calendar, account)
            if path is None:
                self.add("token_cache", "is required: syncd knows no token folder here")
                return None
        if not _TOKEN_NAME.match(path.name):
            self.add("token_cache", "the file name may hold only letters, digits and . _ @ + -")
        return path


def option_warnings(calendar: CalendarConfig) -> list[ConfigProblem]:
    """What ``check-config`` should point out in valid options (may look at files)."""
    try:
        options = parse_options(calendar)
    except ConfigError:
        return []  # the problems themselves are reported as errors
    warnings: list[ConfigProblem] = []
    for key, path in (
        ("client_secret_file", options.client_secret_file),
        ("certificate_file", options.certificate_file),
    ):
        if path is not None:
            warnings.extend(_file_warnings(calendar, key, path))
    if options.ca_file is not None:
        warnings.extend(_ca_file_warnings(calendar, options.ca_file))
    for key, url in (("graph_url", options.graph_url), ("authority", options.authority)):
        unusable = environment_problem(url)
        if unusable is not None:
            warnings.append(calendar.problem(key, f"{unusable}: every request will fail"))
    cache = options.token_cache
    if cache is not None and not cache.exists():
        warnings.append(
            calendar.problem(
                "token_cache",
                f"{cache} does not exist yet: run 'syncd auth outlook --calendar {calendar.name}'",
            )
        )
    return warnings


def _ca_file_warnings(calendar: CalendarConfig, path: Path) -> list[ConfigProblem]:
    """A ``ca_file`` TLS cannot load (not PEM, no certificate in it) fails every request."""
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as error:
        reason = error.reason or type(error).__name__
        message = f"{path} is not a PEM bundle of CA certificates ({reason}): TLS will fail"
        return [calendar.problem("ca_file", message)]
    except OSError as error:
        return [calendar.problem("ca_file", f"cannot read {path}: {error.strerror or error}")]
    return []


def _file_warnings(calendar: CalendarConfig, key: str, path: Path) -> list[ConfigProblem]:
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return [calendar.problem(key, f"cannot read {path}: {error.strerror}")]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        message = f"{path} is open to group or others and will be refused: chmod 600 it"
        return [calendar.problem(key, message)]
    return []
