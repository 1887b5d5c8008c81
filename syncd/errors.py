"""The error families of syncd. Engine and connectors raise these; ``syncd.cli`` turns them
into messages and exit codes in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AlreadyExists",
    "AuditError",
    "AuthError",
    "ConfigError",
    "ConfigProblem",
    "Conflict",
    "ConnectorError",
    "CursorExpired",
    "NotFound",
    "StoreError",
    "SyncdError",
    "TransientError",
]


class SyncdError(Exception):
    """Base of every error syncd raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration file: where it is and what is wrong."""

    file: Path
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else str(self.file)
        return f"{where}: {self.message}"


class ConfigError(SyncdError):
    """The configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreError(SyncdError):
    """The state store cannot be opened, migrated or written."""


class AuditError(SyncdError):
    """The audit log cannot be written or read; the cycle that needed it fails."""


class ConnectorError(SyncdError):
    """A connector failed for one calendar; the other calendars keep working."""

    def __init__(self, calendar: str, message: str) -> None:
        self.calendar = calendar
        super().__init__(f"calendar {calendar!r}: {message}")


class CursorExpired(ConnectorError):
    """The stored cursor is no longer valid; the engine asks for a full listing and merges."""


class Conflict(ConnectorError):
    """A conditional write failed: the object changed since its etag was read."""


class AlreadyExists(ConnectorError):
    """A create found an object already at that place (an earlier try succeeded)."""


class NotFound(ConnectorError):
    """The object does not exist."""


class AuthError(ConnectorError):
    """Credentials are missing, wrong or expired for this calendar."""


class TransientError(ConnectorError):
    """A failure that may pass: the next cycle retries."""
