"""The provider-neutral HTTP helpers connectors share: the timeout option, Retry-After and
the error-table lookups."""

from __future__ import annotations

import time
from email.utils import formatdate
from pathlib import Path

import pytest

from syncd.config import CalendarConfig
from syncd.errors import (
    AuthError,
    ConfigProblem,
    ConnectorError,
    CursorExpired,
    NotFound,
    TransientError,
)
from syncd.transport import (
    DEFAULT_TIMEOUT,
    ErrorRule,
    exception_rule,
    retry_after,
    status_rule,
    timeout_option,
)


def calendar(**options: object) -> CalendarConfig:
    return CalendarConfig("work", "google", options, Path("/etc/syncd/syncd.toml"), 2)


@pytest.mark.parametrize(
    ("raw", "seconds"), [(None, DEFAULT_TIMEOUT), (5, 5.0), ("45s", 45.0), ("10m", 600.0)]
)
def test_timeout_accepts_numbers_and_durations(raw: object, seconds: float) -> None:
    problems: list[ConfigProblem] = []
    options = {} if raw is None else {"timeout": raw}
    assert timeout_option(calendar(**options), problems) == seconds
    assert problems == []


@pytest.mark.parametrize("raw", [0, 0.5, "11m", True, "soon", [5]])
def test_a_bad_timeout_is_named_with_its_key(raw: object) -> None:
    problems: list[ConfigProblem] = []
    assert timeout_option(calendar(timeout=raw), problems) == DEFAULT_TIMEOUT
    assert [p.key for p in problems] == ["calendars[2].timeout"]


def test_retry_after_reads_seconds_fractions_and_dates() -> None:
    assert retry_after("120") == 120.0
    assert retry_after(" 0.25 ") == 0.25
    assert retry_after("-3") == 0.0
    later = retry_after(formatdate(time.time() + 60, usegmt=True))
    assert later is not None
    assert 55 < later <= 60
    assert retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", 5, b"5"])
def test_retry_after_absent_or_unreadable_is_none(value: object) -> None:
    assert retry_after(value) is None


_TABLE = {
    ("*", 403, None): ErrorRule(AuthError, "forbidden"),
    ("*", 403, "rate"): ErrorRule(TransientError, "rate limited", retry=True),
    ("get", 403, None): ErrorRule(NotFound, "get's own"),
    ("sync", 410, "expired"): ErrorRule(CursorExpired, "expired"),
}


@pytest.mark.parametrize(
    ("operation", "status", "markers", "message"),
    [
        ("get", 403, (), "get's own"),  # the operation's entry before "*"
        ("get", 403, ("rate",), "get's own"),  # ... even against a marker under "*"
        ("put", 403, ("rate",), "rate limited"),  # a marker before None
        ("put", 403, ("other",), "forbidden"),
        ("sync", 410, ("noise", "expired"), "expired"),  # any of several markers
    ],
)
def test_status_rule_prefers_the_operation_then_the_marker(
    operation: str, status: int, markers: tuple[str, ...], message: str
) -> None:
    rule = status_rule(_TABLE, operation, status, markers)
    assert rule is not None
    assert rule.message == message


def test_status_rule_without_an_entry_is_none() -> None:
    assert status_rule(_TABLE, "sync", 410, ()) is None
    assert status_rule(_TABLE, "get", 500) is None


def test_exception_rule_takes_the_first_matching_type() -> None:
    table = (
        (TimeoutError, ErrorRule(TransientError, "timeout", retry=True)),
        (OSError, ErrorRule(ConnectorError, "local")),
    )
    assert exception_rule(TimeoutError(), table).message == "timeout"  # a subclass of OSError
    assert exception_rule(FileNotFoundError(), table).message == "local"
