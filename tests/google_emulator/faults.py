"""Recorded requests and injected faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.google_emulator.errors import ApiError, auth_error

__all__ = ["FAULTS", "Fault", "Recorded", "fault_error"]

FAULTS = frozenset(
    {"429", "403-rate", "403-user-rate", "403-quota", "500", "503", "slow", "reset", "401", "410"}
)


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the emulator saw it, and the size of its answer (status line, headers
    and body; 0 and status 0 for a reset)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, a dict for a form, text otherwise, None when empty
    status: int
    bytes_out: int


@dataclass(slots=True)
class Fault:
    """An injected fault waiting for ``remaining`` matching requests."""

    kind: str
    remaining: int
    method: str | None
    path_contains: str | None
    retry_after: float | None
    delay: float

    def matches(self, method: str, target: str) -> bool:
        """Whether a request (method, path with query) is one this fault is for: without
        ``path_contains`` only Calendar API requests match (not the OAuth endpoints)."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_contains is None:
            return target.startswith("/calendar/v3/")
        return self.path_contains in target


def fault_error(fault: Fault) -> ApiError:
    """The error a fault answers with (``Retry-After`` when the fault has one)."""
    kinds = {
        "429": (429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
        "403-rate": (403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
        "403-user-rate": (403, "userRateLimitExceeded", "User Rate Limit Exceeded", "usageLimits"),
        "403-quota": (403, "quotaExceeded", "Calendar usage limits exceeded.", "usageLimits"),
        "500": (500, "backendError", "Backend Error", "global"),
        "503": (503, "backendError", "The service is currently unavailable.", "global"),
        # Google's answer when a sync token dies while its pages are being read.
        "410": (
            410,
            "fullSyncRequired",
            "Sync token is no longer valid, a full sync is required.",
            "global",
        ),
    }
    if fault.kind == "401":
        error = auth_error()
    else:
        code, reason, message, domain = kinds[fault.kind]
        error = ApiError(code, reason, message, domain=domain)
    if fault.retry_after is not None:
        value = fault.retry_after
        error.headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
    return error
