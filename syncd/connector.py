"""The connector contract: how the core talks to one calendar of one provider.

Glossary (see also :mod:`syncd.model`):

- *href*: the connector's stable name of one object inside its calendar (a file name, a CalDAV
  href, a provider event id). The core stores it and hands it back unchanged.
- *etag*: an opaque version of one object; it changes whenever the object changes. Writes are
  conditional on it.
- *cursor*: an opaque text that lets the connector list only what changed since it was issued
  (a sync token, a delta link). ``None`` asks for a full listing.
- *own write*: a change syncd made itself (its ``X-SYNCD-*`` properties, its notes). The core
  recognises those by content; connectors only store them faithfully.

Connectors never leak vendor types or vendor exceptions: each maps them, in one place, onto
:mod:`syncd.errors` (``CursorExpired``, ``Conflict``, ``AlreadyExists``, ``NotFound``,
``AuthError``, ``TransientError``, ``ConnectorError``).
"""

from __future__ import annotations

import difflib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from syncd.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "Connector",
    "Delta",
    "ItemFailure",
    "RemoteObject",
    "Watch",
    "available_connectors",
    "connector_class",
    "cursor_fields",
]

ENTRY_POINT_GROUP = "syncd.connectors"

CURSOR_VERSION = 1
"""The ``v`` member of a connector's JSON cursor (see :func:`cursor_fields`)."""


def cursor_fields(text: str) -> dict[str, Any] | None:
    """The members of a connector's JSON cursor (an object with ``"v": 1``), or None when
    ``text`` is not one: another connector's cursor, or not JSON at all."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        return None
    return data


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One calendar object as the provider holds it: iCalendar bytes and their version."""

    href: str
    etag: str
    data: bytes


@dataclass(frozen=True, slots=True)
class ItemFailure:
    """An object the connector could not read; the engine reports it and keeps the old state."""

    href: str
    etag: str
    reason: str
    lasting: bool = False
    """The object's own content cannot be read at this etag (malformed provider data), as
    opposed to a failed fetch. A change feed reports the object again when its etag changes,
    so a lasting failure does not hold the cursor back; a failed fetch does."""


@dataclass(frozen=True, slots=True)
class Delta:
    """What changed since a cursor.

    With ``full`` set, ``upserts`` lists every object and ``removed`` is empty: the engine then
    merges the listing with its snapshot (objects it knows but the listing lacks are removed).
    """

    upserts: Sequence[RemoteObject]
    removed: Sequence[str]
    cursor: str | None
    full: bool
    failures: Sequence[ItemFailure] = field(default_factory=tuple)


class Watch(ABC):
    """A running subscription to push notifications; stopped by :meth:`stop`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop watching and release its resources."""


class Connector(ABC):
    """One calendar of one provider.

    Constructors do no I/O; :meth:`from_config` validates options and raises ``ConfigError``
    naming each bad key. Every other method may raise :class:`syncd.errors.ConnectorError`
    or one of its subclasses, as documented per method.
    """

    kind: ClassVar[str]
    """The name used as ``connector = "..."`` in the configuration."""

    @classmethod
    @abstractmethod
    def from_config(cls, calendar: CalendarConfig) -> Connector:
        """Build a connector from one ``[[calendars]]`` table. Raises ``ConfigError``."""

    @classmethod
    def config_warnings(cls, calendar: CalendarConfig) -> list[ConfigProblem]:
        """Problems in valid options that ``check-config`` points out (an inline password).

        May look at files; never contacts the provider."""
        return []

    @classmethod
    def cursor_mode(cls, cursor: str | None) -> str | None:
        """How a stored cursor tracks changes, for ``syncd status``; None when there is only
        one way (no I/O)."""
        return None

    @classmethod
    def authorize(cls, calendar: CalendarConfig, out: TextIO, *, open_browser: bool) -> str:
        """``syncd auth``: obtain and store this calendar's credentials interactively (a
        consent page, a device code), writing progress and instructions to ``out``; return
        one line saying what was stored where. Raises ``ConfigError`` or ``AuthError``."""
        raise ConfigError(
            [calendar.problem("connector", f"the {cls.kind} connector has no 'syncd auth' flow")]
        )

    @abstractmethod
    def list_changes(
        self,
        cursor: str | None,
        known: Mapping[str, str],
        *,
        horizon: tuple[datetime, datetime] | None = None,
    ) -> Delta:
        """List what changed since ``cursor`` (everything when ``None``).

        ``known`` maps each href in the engine's snapshot to its etag; connectors without a
        provider-side change feed compare against it. ``horizon`` is the span (aware UTC) the
        core expands and diffs in; a provider whose change feed covers a fixed window (Graph)
        lists at least that span, the others may ignore it. Raises ``CursorExpired`` when the
        cursor is no longer valid, ``AuthError``, ``TransientError`` or ``ConnectorError``.
        """

    @abstractmethod
    def get(self, href: str) -> RemoteObject:
        """Read one object. Raises ``NotFound``."""

    @abstractmethod
    def update(self, href: str, data: bytes, etag: str) -> str:
        """Replace an object only if it is still at ``etag``; return the new etag.

        Raises ``Conflict`` when the object changed, ``NotFound`` when it is gone.
        """

    @abstractmethod
    def create(self, href: str, data: bytes) -> str:
        """Create an object that must not exist yet; return its etag.

        Raises ``AlreadyExists`` when something is already at ``href``: a retried create of
        the same deterministic href counts as done.
        """

    @abstractmethod
    def delete(self, href: str, etag: str) -> None:
        """Delete an object only if it is still at ``etag``. Raises ``Conflict``, ``NotFound``."""

    def check(self) -> str:
        """Contact the calendar cheaply and say what was found (``syncd doctor``); raise
        ``ConnectorError`` (or a subclass) when it cannot be used. The default lists it."""
        delta = self.list_changes(None, {})
        return f"reachable, {len(delta.upserts)} objects"

    def watch(self, on_change: Callable[[], None]) -> Watch | None:
        """Call ``on_change`` from any thread when the calendar may have changed.

        Returns ``None`` when the provider has no push channel (the daemon polls instead).
        """
        return None

    def interrupt(self) -> None:  # noqa: B027 - optional hook, most connectors never wait
        """syncd is stopping: cut short any wait or retry in progress (from another thread);
        the cycle then fails fast and its work is redone on the next start."""

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing
        """Release connections and files."""


def available_connectors() -> dict[str, type[Connector]]:
    """The connectors installed under the ``syncd.connectors`` entry-point group."""
    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry.load()
    return found


def connector_names() -> list[str]:
    """Names of installed connectors, without importing them."""
    return sorted(entry.name for entry in entry_points(group=ENTRY_POINT_GROUP))


def connector_class(kind: str, calendar: CalendarConfig) -> type[Connector]:
    """Find the connector class for ``kind``; raise ``ConfigError`` with a suggestion if unknown."""
    matches = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == kind]
    if not matches:
        names = connector_names()
        close = difflib.get_close_matches(kind, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            [
                calendar.problem(
                    "connector",
                    f"unknown connector {kind!r} (installed: {', '.join(names) or 'none'}){hint}",
                )
            ]
        )
    try:
        loaded = matches[0].load()
    except Exception as error:
        raise ConfigError(
            [
                calendar.problem(
                    "connector",
                    f"connector {kind!r} failed to load: {type(error).__name__}: {error}",
                )
            ]
        ) from None
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise ConfigError([calendar.problem("connector", f"{kind!r} is not a syncd connector")])
    return loaded
