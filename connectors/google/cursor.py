"""The Google cursor: a compact JSON text ``{"v": 1, "q": <fingerprint>, "t": <syncToken>}``.

Google wants every parameter of an incremental ``events.list`` equal to the full listing's
that issued the token. The fingerprint covers the calendar id, those fixed parameters, the
fields asked for and this connector's code version: a cursor with another fingerprint (the
configuration points at another calendar, a new release lists differently) or one that does
not read is expired, and the engine asks for a full listing and merges.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from syncd.connector import cursor_fields

__all__ = ["CODE_VERSION", "fingerprint", "make_cursor", "read_cursor"]

CODE_VERSION = 2
"""Raise when the listing or the mapping to iCalendar changes: stored cursors then expire."""


def fingerprint(calendar_id: str, params: Mapping[str, object]) -> str:
    """A short digest of what a token's listing depends on."""
    text = json.dumps(
        {"calendar": calendar_id, "params": dict(params), "code": CODE_VERSION},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def make_cursor(query: str, token: str) -> str:
    """The text the engine stores."""
    return json.dumps({"v": 1, "q": query, "t": token}, separators=(",", ":"))


def read_cursor(text: str) -> tuple[str, str] | None:
    """``(fingerprint, sync token)`` of a cursor, or None if it is not a Google cursor."""
    data = cursor_fields(text)
    if data is None:
        return None
    query, token = data.get("q"), data.get("t")
    if not isinstance(query, str) or not isinstance(token, str) or not token:
        return None
    return query, token
