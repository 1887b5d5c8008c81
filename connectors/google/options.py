"""The options of one ``connector = "google"`` calendar, parsed once into a frozen object.

Parsing looks at the file system only to check that ``ca_file`` exists (as the CalDAV
connector does); credentials are read when the first request needs them.

Scopes are not configurable. syncd asks for the least set that covers what it does
(each method's accepted scopes are in the discovery document):

- ``calendar.events``: list, read and patch events of the watched calendars, insert notes;
- ``calendar.app.created``: ``calendars.insert`` of the notes calendar (and full access to
  calendars syncd made, nothing else);
- ``calendar.calendarlist.readonly``: ``calendarList.list``, to find the notes calendar by
  its name (``calendar = "..."``).

One token may serve several calendars, so every calendar asks for the same three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from syncd.errors import ConfigError, ConfigProblem
from syncd.option_reader import OptionReader
from syncd.proxies import environment_problem
from syncd.transport import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = [
    "DEFAULT_ENDPOINT",
    "SCOPES",
    "GoogleOptions",
    "option_warnings",
    "parse_options",
    "token_path",
]

SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.app.created",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)
DEFAULT_ENDPOINT = "https://www.googleapis.com/calendar/v3/"
_SERVICE_PATH = "calendar/v3/"
OPTIONS = (
    "account",
    "calendar_id",
    "calendar",
    "create",
    "api_endpoint",
    "ca_file",
    "token_file",
    "client_secrets_file",
    "service_account_file",
    "subject",
    "timeout",
)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._@+-]")


@dataclass(frozen=True, slots=True)
class GoogleOptions:
    """One Google calendar: which one, where the API is and whose credentials reach it."""

    calendar_id: str = "primary"
    """The calendar's id (``primary`` is the account's own calendar)."""
    calendar: str | None = None
    """Instead of an id: the calendar's name (summary) in the account's calendar list."""
    create: bool = False
    """With ``calendar``: make it (``calendars.insert``) when the list has none of that name.
    Defaults to true for the notes calendar only: a watched calendar is never made empty."""
    is_notes: bool = False
    """This is syncd's notes calendar (``[notes] calendar``)."""
    api_endpoint: str = DEFAULT_ENDPOINT
    """Root of the API, always ending in ``/calendar/v3/``."""
    ca_file: Path | None = None
    token_file: Path | None = None
    """An authorized-user JSON file (what ``syncd auth google`` writes)."""
    client_secrets_file: Path | None = None
    """The OAuth client ("installed" app) that ``syncd auth google`` signs in with."""
    service_account_file: Path | None = None
    subject: str | None = None
    """With a service account: the user it acts for (domain-wide delegation)."""
    timeout: float = DEFAULT_TIMEOUT

    @property
    def account(self) -> tuple[str, ...]:
        """Who the requests act as: calendars with the same account share its quota pause,
        its credentials and its refreshed token."""
        if self.service_account_file is not None:
            return ("service", str(self.service_account_file), self.subject or "")
        return ("user", str(self.token_file))


def parse_options(calendar: CalendarConfig) -> GoogleOptions:
    """Validate a ``[[calendars]]`` table; raise ``ConfigError`` naming each bad key.

    ``api_endpoint`` may be given as a bare host (``https://proxy.example``) or any prefix:
    ``calendar/v3/`` is added to a path that does not already end with it, because the
    client library replaces its whole root URL and service path by this value.
    """
    reader = OptionReader(calendar, "google", OPTIONS)
    problems, text, path = reader.problems, reader.text, reader.path
    calendar_id, name = text("calendar_id"), text("calendar")
    if calendar_id is not None and name is not None:
        problems.append(calendar.problem("calendar", "give calendar_id or calendar, not both"))
    create = reader.flag("create", calendar.is_notes)
    endpoint = _endpoint(text("api_endpoint"), calendar, problems)
    ca_file = reader.existing_file("ca_file")
    token_file = path("token_file")
    secrets_file = path("client_secrets_file")
    service_file = path("service_account_file")
    subject = text("subject")
    if service_file is not None and token_file is not None:
        problems.append(
            calendar.problem("service_account_file", "give token_file or service_account_file")
        )
    if subject is not None and service_file is None:
        problems.append(calendar.problem("subject", "needs service_account_file"))
    account = text("account")
    if account is not None and token_file is not None:
        problems.append(calendar.problem("account", "give account or token_file, not both"))
    if service_file is None and token_file is None:
        token_file = token_path(calendar, account)
        if token_file is None:
            problems.append(
                calendar.problem("token_file", "is required (no token folder is known here)")
            )
    timeout = reader.timeout()
    reader.check()
    return GoogleOptions(
        calendar_id=calendar_id or "primary",
        calendar=name,
        create=create,
        is_notes=calendar.is_notes,
        api_endpoint=endpoint,
        ca_file=ca_file,
        token_file=token_file,
        client_secrets_file=secrets_file,
        service_account_file=service_file,
        subject=subject,
        timeout=timeout,
    )


def token_path(calendar: CalendarConfig, account: str | None = None) -> Path | None:
    """The default token file in syncd's token folder: ``google-<account>.json``, where the
    account defaults to the calendar's name (calendars naming one account share its token)."""
    if calendar.tokens_dir is None:
        return None
    return calendar.tokens_dir / f"google-{_UNSAFE_NAME.sub('_', account or calendar.name)}.json"


def _endpoint(value: str | None, calendar: CalendarConfig, problems: list[ConfigProblem]) -> str:
    if value is None:
        return DEFAULT_ENDPOINT
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        problems.append(calendar.problem("api_endpoint", "must be an http:// or https:// URL"))
        return DEFAULT_ENDPOINT
    if parts.username is not None or parts.password is not None:
        problems.append(calendar.problem("api_endpoint", "must not contain credentials"))
        return DEFAULT_ENDPOINT
    if parts.query or parts.fragment:
        problems.append(calendar.problem("api_endpoint", "must not have a query or fragment"))
        return DEFAULT_ENDPOINT
    root = parts.path if parts.path.endswith("/") else parts.path + "/"
    if not root.endswith("/" + _SERVICE_PATH):
        root += _SERVICE_PATH
    return urlunsplit((parts.scheme, parts.netloc, root, "", ""))


def option_warnings(calendar: CalendarConfig) -> list[ConfigProblem]:
    """What ``check-config`` should point out in valid options (may look at files)."""
    try:
        options = parse_options(calendar)
    except ConfigError:
        return []
    warnings: list[ConfigProblem] = []
    if options.service_account_file is not None and options.subject is None:
        warnings.append(
            calendar.problem(
                "subject",
                "not set: the service account acts as itself and sees only its own calendars",
            )
        )
    for key, file in (
        ("token_file", options.token_file),
        ("service_account_file", options.service_account_file),
    ):
        if file is not None and file.is_file() and file.stat().st_mode & 0o077:
            warnings.append(
                calendar.problem(key, f"{file} is open to group or others: chmod 600 it")
            )
    if urlsplit(options.api_endpoint).scheme == "http" and not _loopback(options.api_endpoint):
        warnings.append(
            calendar.problem("api_endpoint", "http:// sends tokens unencrypted; use https://")
        )
    unusable = environment_problem(options.api_endpoint)
    if unusable is not None:
        warnings.append(calendar.problem("api_endpoint", f"{unusable}: every request will fail"))
    return warnings


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")
