"""Operational logging with structlog: JSON lines off a terminal, readable on one.

The audit log is separate (:mod:`syncd.audit`). Every line, from structlog or from a library
logging through the standard ``logging`` module, passes the same redaction:

- by key: a field named like a credential (``password``, ``token``, ``client_secret``,
  ``authorization``, ``cookie``, ...; nested dicts and lists too) becomes ``***``;
- by value: every value wrapped in a :class:`syncd.secrets.Secret`, bearer tokens, URL
  passwords and ``access_token=``-style pairs become ``***`` inside any string, exception
  messages and rendered tracebacks included, and once more in the rendered line;
- tracebacks are rendered without local variables.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO, cast

import structlog

from syncd.secrets import Secret, scrub

__all__ = ["REDACTED", "configure_logging", "is_sensitive_key", "redact"]

REDACTED = "***"
_WORDS = (
    "password|passwd|passphrase|secret|token|access_token|refresh_token|id_token|"
    "client_secret|authorization|api_key|apikey|cookie|credential|private_key"
)
_SENSITIVE = re.compile(rf"(?:^|_)(?:{_WORDS})s?$")
# Cursors, not credentials: a sync token names a point in a calendar's history.
_NOT_SENSITIVE = frozenset(
    {"sync_token", "next_sync_token", "page_token", "next_page_token", "delta_token"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MAX_DEPTH = 12


def is_sensitive_key(key: str) -> bool:
    """Whether a field called ``key`` holds a credential (``refreshToken``, ``X-Api-Key``...)."""
    name = _CAMEL.sub("_", key).lower().replace("-", "_").replace(" ", "_")
    return name not in _NOT_SENSITIVE and _SENSITIVE.search(name) is not None


def redact(value: Any, _depth: int = 0) -> Any:
    """``value`` with credential-named fields and secret values replaced by ``***``.

    Dicts, lists and tuples are walked; strings are scrubbed; numbers, booleans and None pass;
    any other object is replaced by the scrubbed text of its ``repr`` (what the renderers
    would print anyway).
    """
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Secret):
        return REDACTED
    if _depth >= _MAX_DEPTH:
        return scrub(repr(value))
    if isinstance(value, Mapping):
        return {
            (scrub(k) if isinstance(k, str) else k): (
                REDACTED if isinstance(k, str) and is_sensitive_key(k) else redact(v, _depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth + 1) for v in value]
    return scrub(repr(value))


def _redact_event(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return cast(structlog.typing.EventDict, redact(event_dict))


class _Scrubbed:
    """The renderer, then a last scrub of the finished line (catches escaped forms)."""

    def __init__(self, renderer: structlog.typing.Processor) -> None:
        self.renderer = renderer

    def __call__(
        self, logger: Any, method_name: str, event_dict: structlog.typing.EventDict
    ) -> str:
        line = self.renderer(logger, method_name, event_dict)
        return scrub(line if isinstance(line, str) else str(line))


def configure_logging(
    level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Set up structlog once for the process; ``json`` defaults to "not a terminal".

    The standard ``logging`` root gets one handler writing through the same processors, so
    libraries' lines are redacted too; calling this again replaces it.
    """
    out: TextIO = stream or cast(TextIO, _CurrentStderr())
    as_json = not out.isatty() if json is None else json
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.typing.Processor
    exceptions: structlog.typing.Processor
    if as_json:
        exceptions = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        # A plain traceback.format_exception text: no locals; the console prints it as is.
        exceptions = structlog.processors.ExceptionRenderer()
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    head: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[structlog.typing.Processor] = [exceptions, _redact_event, _Scrubbed(renderer)]
    structlog.configure(
        processors=[*head, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, numeric, head, tail)


class _RedactingHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler :func:`configure_logging` installs (found again to be replaced)."""


def _route_stdlib(
    out: TextIO,
    level: int,
    head: list[structlog.typing.Processor],
    tail: list[structlog.typing.Processor],
) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _RedactingHandler):
            root.removeHandler(handler)
    handler = _RedactingHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*head[:2], structlog.stdlib.add_logger_name, *head[2:]],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)


class _CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written (tests and embedders swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()
