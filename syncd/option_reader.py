"""Typed reads of one ``[[calendars]]`` table's connector options, collecting every problem
(each named by its key) so that a connector's ``parse_options`` reports them all at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from syncd.errors import ConfigError, ConfigProblem
from syncd.transport import timeout_option

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = ["OptionReader"]


class OptionReader:
    """Reads options of ``calendar`` for the connector ``kind``, whose keys are ``known``.

    Unknown keys are problems from the start; each read adds a problem for a value of the
    wrong type and returns None (or the default) for it."""

    def __init__(self, calendar: CalendarConfig, kind: str, known: Sequence[str]) -> None:
        self.calendar = calendar
        self.options = calendar.options
        self.problems: list[ConfigProblem] = []
        for key in self.options:
            if key not in known:
                self.add(key, f"unknown key for the {kind} connector (known: {', '.join(known)})")

    def add(self, key: str, message: str) -> None:
        """Note a problem with ``key``."""
        self.problems.append(self.calendar.problem(key, message))

    def text(self, key: str) -> str | None:
        """A non-empty string, stripped; None when absent or not one."""
        value = self.options.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(key, "must be a non-empty string")
            return None
        return value.strip()

    def flag(self, key: str, default: bool) -> bool:
        """A boolean; ``default`` when absent or not one."""
        value = self.options.get(key, default)
        if not isinstance(value, bool):
            self.add(key, f"must be true or false, got {value!r}")
            return default
        return value

    def path(self, key: str) -> Path | None:
        """A path, resolved against the configuration file's folder."""
        value = self.text(key)
        return None if value is None else self.calendar.resolve(value)

    def existing_file(self, key: str) -> Path | None:
        """A path that must name an existing file."""
        path = self.path(key)
        if path is not None and not path.is_file():
            self.add(key, f"{path} is not a file")
        return path

    def timeout(self) -> float:
        """The ``timeout`` option (see :func:`syncd.transport.timeout_option`)."""
        return timeout_option(self.calendar, self.problems)

    def check(self) -> None:
        """Raise ``ConfigError`` with every problem noted, if any."""
        if self.problems:
            raise ConfigError(self.problems)
