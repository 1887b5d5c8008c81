"""Reading typed values out of parsed TOML, collecting every problem with its file and key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from syncd.errors import ConfigProblem

__all__ = ["MAX_DURATION", "Reader", "parse_duration", "positive_duration"]

_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
# Longer spans overflow datetime arithmetic (now + horizon) and timer waits further down.
MAX_DURATION = timedelta(days=36525)
T = TypeVar("T")


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"48h"``, ``"3d"``, ``"2w"`` or combinations (``"1h30m"``)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or _DURATION.sub("", compact).strip():
        raise ValueError(f"{text!r} is not a duration (use e.g. 90s, 5m, 48h, 3d, 2w, 1h30m)")
    try:
        return sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def positive_duration(text: str) -> timedelta:
    """A duration longer than zero and at most a century."""
    value = parse_duration(text)
    if value <= timedelta():
        raise ValueError(f"{text!r} must be longer than zero")
    if value > MAX_DURATION:
        raise ValueError(f"{text!r} is too long (at most {MAX_DURATION.days}d)")
    return value


class Reader:
    """Collects problems while reading typed values out of parsed TOML tables."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.problems: list[ConfigProblem] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.source, key, message))

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if isinstance(value, Mapping):
            return value
        self.problem(key, f"must be a table, got {type(value).__name__}")
        return {}

    def known(self, data: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.problem(f"{prefix}{key}", f"unknown key{hint}")

    def typed(self, data: Mapping[str, Any], key: str, where: str, kind: type[T], default: T) -> T:
        value = data.get(key, default)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.problem(where, f"must be {kind.__name__}, got {value!r}")
        return default

    def converted(
        self, data: Mapping[str, Any], key: str, where: str, convert: Callable[[str], T], default: T
    ) -> T:
        if key not in data:
            return default
        raw = data[key]
        if not isinstance(raw, str):
            self.problem(where, f"must be a string, got {raw!r}")
            return default
        try:
            return convert(raw)
        except (ValueError, KeyError) as error:
            self.problem(where, str(error))
            return default

    def subtable(self, data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if isinstance(value, Mapping):
            return value
        self.problem(where, f"must be a table, got {type(value).__name__}")
        return {}

    def tables(
        self, data: Mapping[str, Any], key: str, where: str
    ) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Each table of an array of tables with its location; a problem for anything else."""
        raw = data.get(key, [])
        if not isinstance(raw, list):
            self.problem(where, f"must be an array of tables ([[{where}]])")
            return
        for index, item in enumerate(raw):
            if isinstance(item, Mapping):
                yield f"{where}[{index}]", item
            else:
                self.problem(f"{where}[{index}]", "must be a table")

    def bounded(
        self, data: Mapping[str, Any], key: str, where: str, low: int, high: int | None = None
    ) -> int | None:
        """An integer within ``low..high``; None when absent or invalid (a problem is kept)."""
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, int) or isinstance(value, bool):
            self.problem(where, f"must be an integer, got {value!r}")
            return None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.problem(where, f"must be {span}, got {value}")
            return None
        return value

    def words(self, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        """A list of non-empty strings, lower-cased; None when absent or invalid."""
        if key not in data:
            return None
        value = data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(where, f"must be a list of non-empty strings, got {value!r}")
            return None
        return tuple(v.strip().lower() for v in value)

    def path(self, data: Mapping[str, Any], key: str, where: str, default: str) -> Path:
        text = self.typed(data, key, where, str, default)
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.source.parent / path
