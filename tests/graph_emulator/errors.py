"""Microsoft Graph's error answers: ``{"error": {"code", "message", "innerError"}}``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

__all__ = [
    "GraphError",
    "access_denied",
    "bad_request",
    "body_read",
    "conflict",
    "invalid_property_set",
    "not_found",
    "not_implemented",
    "precondition_failed",
    "sync_state_not_found",
    "unauthenticated",
]


class GraphError(Exception):
    """An error answer: HTTP status, Graph error ``code`` and message, extra headers."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body Graph sends with this error."""
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": str(uuid.uuid4()),
                },
            }
        }


def bad_request(message: str, code: str = "ErrorInvalidRequest") -> GraphError:
    """400 with ``code`` (a validation failure by default)."""
    return GraphError(400, code, message)


def body_read(message: str) -> GraphError:
    """400 ``RequestBodyRead``: the payload does not fit the ``event`` type."""
    return GraphError(400, "RequestBodyRead", message)


def invalid_property_set(name: str) -> GraphError:
    """400 ``ErrorInvalidPropertySet``: a read-only property in a write."""
    return GraphError(
        400, "ErrorInvalidPropertySet", f"Set action is invalid for property '{name}'."
    )


def not_found(what: str = "object") -> GraphError:
    """404 ``ErrorItemNotFound``."""
    return GraphError(404, "ErrorItemNotFound", f"The specified {what} was not found in the store.")


def unauthenticated(message: str) -> GraphError:
    """401 ``InvalidAuthenticationToken`` with the bearer challenge."""
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        headers={"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def access_denied(
    message: str = "Access is denied. Check credentials and try again.",
) -> GraphError:
    """403 ``ErrorAccessDenied``."""
    return GraphError(403, "ErrorAccessDenied", message)


def conflict(message: str, code: str = "ErrorFolderExists") -> GraphError:
    """409."""
    return GraphError(409, code, message)


def precondition_failed() -> GraphError:
    """412 ``ErrorIrresolvableConflict``: a stale change key in ``If-Match``."""
    return GraphError(
        412,
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in "
        "the request does not match the current change key for the item.",
    )


def sync_state_not_found() -> GraphError:
    """410 ``SyncStateNotFound``: a delta or skip token the server no longer knows."""
    return GraphError(410, "SyncStateNotFound", "The sync state generation is not found.")


def not_implemented(what: str) -> GraphError:
    """501: valid Graph the emulator does not model (said plainly, never a silent no-op)."""
    return GraphError(501, "NotImplemented", f"The Graph emulator does not model {what}.")
