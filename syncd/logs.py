"""Operational logging with structlog: JSON lines off a terminal, readable on one.

The audit log is separate (:mod:`syncd.audit`). Tracebacks are rendered without local
variables, so a secret held in a local never reaches a log.
"""

from __future__ import annotations

import io
import logging
import sys
from typing import TextIO, cast

import structlog

__all__ = ["configure_logging"]


def configure_logging(
    level: str = "info", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Set up structlog once for the process; ``json`` defaults to "not a terminal"."""
    out: TextIO = stream or cast(TextIO, _CurrentStderr())
    as_json = not out.isatty() if json is None else json
    renderer: structlog.typing.Processor
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        processors.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = structlog.processors.JSONRenderer(sort_keys=True)
    else:
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )


class _CurrentStderr(io.TextIOBase):
    """Whatever ``sys.stderr`` is when a line is written (tests and embedders swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()
