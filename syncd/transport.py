"""Provider-neutral pieces every HTTP connector needs: the ``timeout`` option, the
``Retry-After`` header, and the shape of a connector's one error table (:class:`ErrorRule`,
looked up by :func:`exception_rule` and :func:`status_rule`). Connectors import this; it
imports no connector and no HTTP library."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from syncd.config_reader import parse_duration
from syncd.errors import ConfigProblem, ConnectorError

if TYPE_CHECKING:
    from syncd.config import CalendarConfig

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "ErrorRule",
    "exception_rule",
    "retry_after",
    "status_rule",
    "timeout_option",
]

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 600.0


def timeout_option(calendar: CalendarConfig, problems: list[ConfigProblem]) -> float:
    """The calendar's ``timeout`` in seconds: a number or a duration from 1s to 10m (default
    30 s). A bad value is added to ``problems`` and the default returned."""
    raw: Any = calendar.options.get("timeout")
    if raw is None:
        return DEFAULT_TIMEOUT
    seconds: float | None = None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    elif isinstance(raw, str):
        try:
            seconds = parse_duration(raw).total_seconds()
        except ValueError as error:
            problems.append(calendar.problem("timeout", str(error)))
            return DEFAULT_TIMEOUT
    if seconds is None or not 1 <= seconds <= MAX_TIMEOUT:
        problems.append(
            calendar.problem("timeout", f"must be a duration from 1s to 10m, got {raw!r}")
        )
        return DEFAULT_TIMEOUT
    return seconds


def retry_after(value: object) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds (fractions accepted) or an
    HTTP date; None when absent or unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """What one failure means: the syncd error to raise, its message (never a secret), and
    whether the request may be sent again."""

    error: type[ConnectorError]
    message: str
    retry: bool = False


R = TypeVar("R", bound=ErrorRule)


def exception_rule(error: BaseException, table: Sequence[tuple[type[BaseException], R]]) -> R:
    """The rule of the first exception type in ``table`` that ``error`` is an instance of
    (a table ends with a catch-all such as ``OSError`` or ``Exception``)."""
    return next(rule for kind, rule in table if isinstance(error, kind))


def status_rule(
    table: Mapping[tuple[str, int, str | None], R],
    operation: str,
    status: int,
    markers: Iterable[str] = (),
) -> R | None:
    """The rule for an answer: keys are ``(operation, status, marker)``, where ``"*"`` is any
    operation and a marker (a precondition, an error reason or code) is None for any. The
    operation's own entries come before ``"*"``; within each, a marker's before None."""
    wanted = [*markers, None]
    for op in (operation, "*"):
        for marker in wanted:
            rule = table.get((op, status, marker))
            if rule is not None:
                return rule
    return None
