"""The identity platform's error answer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

__all__ = ["OAuthError"]


class OAuthError(Exception):
    """An error answer of the token or device-code endpoint."""

    def __init__(self, error: str, code: int, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.code = code
        self.description = description
        self.status = status

    def body(self) -> dict[str, Any]:
        """The JSON error body as the identity platform writes it."""
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description}",
            "error_codes": [self.code],
            "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
