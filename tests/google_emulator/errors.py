"""Google's error shapes: the Calendar API's JSON error body and the OAuth endpoint's."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "OAuthError",
    "auth_error",
    "bad_request",
    "condition_not_met",
    "deleted",
    "duplicate",
    "forbidden_for_non_organizer",
    "full_sync_required",
    "insufficient_scopes",
    "invalid",
    "invalid_parameter",
    "login_required",
    "not_found",
    "required",
]

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    410: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


class ApiError(Exception):
    """A Calendar API error answer: HTTP status, ``errors[0].reason`` and message."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body Google sends: ``{"error": {code, message, errors: [...], status}}``."""
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location is not None:
            item["locationType"] = self.location_type or "parameter"
            item["location"] = self.location
        status = _STATUS.get(self.code, "UNKNOWN")
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [item],
                "status": status,
            }
        }


class OAuthError(Exception):
    """An OAuth 2.0 endpoint error: ``{"error": ..., "error_description": ...}`` (RFC 6749 5.2)."""

    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(f"{code} {error}: {description}")
        self.code = code
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        """The JSON body of the answer."""
        return {"error": self.error, "error_description": self.description}


def not_found() -> ApiError:
    """404 ``notFound``: an unknown (or not visible) calendar or event."""
    return ApiError(404, "notFound", "Not Found")


def duplicate() -> ApiError:
    """409 ``duplicate``: a client-chosen id already used in the calendar (cancelled ones too)."""
    return ApiError(409, "duplicate", "The requested identifier already exists.")


def deleted() -> ApiError:
    """410 ``deleted``: deleting an event that is already deleted."""
    return ApiError(410, "deleted", "Resource has been deleted")


def condition_not_met() -> ApiError:
    """412 ``conditionNotMet``: ``If-Match`` does not match the current etag."""
    return ApiError(
        412, "conditionNotMet", "Precondition Failed", location="If-Match", location_type="header"
    )


def full_sync_required() -> ApiError:
    """410 ``fullSyncRequired``: the sync token is tampered, foreign or expired."""
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location="syncToken",
    )


def forbidden_for_non_organizer() -> ApiError:
    """403 ``forbiddenForNonOrganizer``: a shared event property set on an attendee's copy."""
    return ApiError(
        403,
        "forbiddenForNonOrganizer",
        "Shared properties can only be changed by the organizer of the event.",
        domain="calendar",
    )


def invalid(message: str, *, location: str | None = None) -> ApiError:
    """400 ``invalid``: a value in the request body that Google rejects."""
    return ApiError(400, "invalid", message, location=location)


def required(message: str, *, location: str | None = None) -> ApiError:
    """400 ``required``: a missing field."""
    return ApiError(400, "required", message, location=location)


def bad_request(message: str = "Bad Request") -> ApiError:
    """400 ``badRequest``."""
    return ApiError(400, "badRequest", message)


def invalid_parameter(name: str, message: str | None = None) -> ApiError:
    """400 ``invalidParameter`` for a query parameter."""
    return ApiError(
        400, "invalidParameter", message or f"Invalid value for parameter: {name}", location=name
    )


def auth_error() -> ApiError:
    """401 ``authError``: an unknown or expired access token."""
    return ApiError(
        401,
        "authError",
        "Invalid Credentials",
        location="Authorization",
        location_type="header",
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
        },
    )


def login_required() -> ApiError:
    """401 ``required``: no credentials at all."""
    return ApiError(
        401,
        "required",
        "Login Required.",
        location="Authorization",
        location_type="header",
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def insufficient_scopes() -> ApiError:
    """403 ``insufficientPermissions``: the token's scopes do not cover the method."""
    return ApiError(
        403, "insufficientPermissions", "Request had insufficient authentication scopes."
    )
