"""The options of one ``connector = "caldav"`` calendar, parsed once into a frozen object.

Parsing does no I/O: a password file or variable is read when the first request needs it, so
a rotated secret is picked up by a restart and ``check-config`` works where the secret is not
present. :func:`option_warnings` may look at the file system (it serves ``check-config``).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from syncd.errors import AuthError, ConfigError, ConfigProblem
from syncd.option_reader import OptionReader
from syncd.proxies import environment_problem
from syncd.secrets import Secret, SecretError, read_secret
from syncd.transport import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = ["CalDAVOptions", "PasswordSource", "option_warnings", "parse_options"]

OPTIONS = (
    "url",
    "calendar",
    "username",
    "password_file",
    "password_env",
    "password_credential",
    "password",
    "ca_file",
    "verify_tls",
    "timeout",
    "create",
)
_PASSWORD_KEYS = ("password_file", "password_env", "password_credential", "password")


class PasswordSource:
    """Where a password comes from; read through :mod:`syncd.secrets` at the first request, so
    the value is registered for scrubbing from every log line and never shows in a repr."""

    def __init__(
        self,
        where: str,
        *,
        file: Path | None = None,
        env: str | None = None,
        credential: str | None = None,
        inline: Secret | None = None,
    ) -> None:
        self.where = where
        """The config key that holds it, e.g. ``calendars[0].password_file``."""
        self.file = file
        self.env = env
        self.credential = credential
        """A systemd credential's name (``LoadCredential=``), read from $CREDENTIALS_DIRECTORY."""
        self._inline = inline

    def __repr__(self) -> str:
        return f"PasswordSource({self.where})"

    def reveal(self, calendar: str) -> str:
        """The password; ``AuthError`` ("needs credentials") when its source fails."""
        if self._inline is not None:
            return self._inline.reveal()
        try:
            secret = read_secret(
                file=self.file, env=self.env, credential=self.credential, where=self.where
            )
        except SecretError as error:
            raise AuthError(calendar, f"needs credentials: {error}") from None
        return secret.reveal()


@dataclass(frozen=True, slots=True)
class CalDAVOptions:
    """One CalDAV calendar: where it is and how to reach it."""

    url: str
    """The calendar collection, or (with ``calendar``) the server or principal to search."""
    calendar: str | None = None
    """Display name of the calendar to discover under the principal's calendar home."""
    username: str | None = None
    secret: PasswordSource | None = field(default=None, compare=False)
    ca_file: Path | None = None
    verify_tls: bool = True
    timeout: float = DEFAULT_TIMEOUT
    create: bool = True
    """MKCALENDAR the collection when it does not exist (on the first listing or write)."""


def parse_options(calendar: CalendarConfig) -> CalDAVOptions:
    """Validate a ``[[calendars]]`` table; raise ``ConfigError`` naming each bad key."""
    reader = OptionReader(calendar, "caldav", OPTIONS)
    problems, text, flag = reader.problems, reader.text, reader.flag
    url = _url(text("url"), calendar, problems)
    username = text("username")
    secret = _secret(calendar, problems, username)
    ca_file = text("ca_file")
    verify_tls = flag("verify_tls", True)
    if ca_file is not None and not verify_tls:
        problems.append(calendar.problem("ca_file", "cannot be used with verify_tls = false"))
    if ca_file is not None and not calendar.resolve(ca_file).is_file():
        problems.append(calendar.problem("ca_file", f"{calendar.resolve(ca_file)} is not a file"))
    timeout = reader.timeout()
    display = text("calendar")
    create = flag("create", True)
    reader.check()
    assert url is not None
    return CalDAVOptions(
        url=url,
        calendar=display,
        username=username,
        secret=secret,
        ca_file=None if ca_file is None else calendar.resolve(ca_file),
        verify_tls=verify_tls,
        timeout=timeout,
        create=create,
    )


def _url(value: str | None, calendar: CalendarConfig, problems: list[ConfigProblem]) -> str | None:
    if value is None:
        problems.append(
            calendar.problem("url", "is required: the calendar collection URL (https://...)")
        )
        return None
    try:
        parts = urlsplit(value)
        hostname = parts.hostname  # parses the netloc: "[::1" raises here
    except ValueError:
        problems.append(calendar.problem("url", "is not a valid URL"))
        return None
    if parts.scheme not in ("http", "https") or not hostname:
        problems.append(calendar.problem("url", "must be an http:// or https:// URL"))
        return None
    if parts.username is not None or parts.password is not None:
        # Never echo the value: it may hold a password.
        problems.append(
            calendar.problem(
                "url",
                "must not contain credentials; use username and password_file or password_env",
            )
        )
        return None
    return value


def _secret(
    calendar: CalendarConfig, problems: list[ConfigProblem], username: str | None
) -> PasswordSource | None:
    given = [key for key in _PASSWORD_KEYS if key in calendar.options]
    if len(given) > 1:
        problems.append(calendar.problem(given[1], f"give only one of {', '.join(_PASSWORD_KEYS)}"))
        return None
    if not given:
        return None
    key = given[0]
    value = calendar.options[key]
    if not isinstance(value, str) or not value:
        # Never echo the value of a password key.
        problems.append(calendar.problem(key, "must be a non-empty string"))
        return None
    if username is None:
        problems.append(calendar.problem("username", f"is required when {key} is given"))
    where = calendar.problem(key, "").key
    if key == "password_file":
        return PasswordSource(where, file=calendar.resolve(value))
    if key == "password_env":
        return PasswordSource(where, env=value)
    if key == "password_credential":
        return PasswordSource(where, credential=value)
    return PasswordSource(where, inline=Secret(value))


def option_warnings(calendar: CalendarConfig) -> list[ConfigProblem]:
    """What ``check-config`` should point out in valid options (may look at files)."""
    try:
        options = parse_options(calendar)
    except ConfigError:
        return []  # the problems themselves are reported as errors
    warnings: list[ConfigProblem] = []
    if "password" in calendar.options:
        warnings.append(
            calendar.problem(
                "password",
                "a password written in the configuration file; prefer password_file (0600) "
                "or password_env",
            )
        )
    secret = options.secret
    if secret is not None and secret.file is not None:
        warnings.extend(_file_warnings(calendar, secret.file))
    if secret is not None and secret.env is not None and not os.environ.get(secret.env):
        warnings.append(
            calendar.problem("password_env", f"${secret.env} is not set in this environment")
        )
    if not options.verify_tls:
        warnings.append(
            calendar.problem("verify_tls", "TLS certificates are not verified for this calendar")
        )
    if options.ca_file is not None and not options.ca_file.is_file():
        warnings.append(calendar.problem("ca_file", f"{options.ca_file} is not a file"))
    if secret is not None and _cleartext(options.url):
        warnings.append(
            calendar.problem("url", "http:// sends the password unencrypted; use https://")
        )
    unusable = environment_problem(options.url)
    if unusable is not None:
        warnings.append(calendar.problem("url", f"{unusable}: every request will fail"))
    return warnings


def _file_warnings(calendar: CalendarConfig, path: Path) -> list[ConfigProblem]:
    try:
        mode = path.stat().st_mode
    except OSError as error:
        return [calendar.problem("password_file", f"cannot read {path}: {error.strerror}")]
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        message = f"{path} is open to group or others and will be refused: chmod 600 it"
        return [calendar.problem("password_file", message)]
    return []


def _cleartext(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True
