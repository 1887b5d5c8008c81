"""The CalDAV cursor: an opaque JSON text naming the change-tracking mode and its state.

``sync``: an RFC 6578 sync token. ``ctag``: the collection's ``CS:getctag`` (the server has no
sync-collection; a changed ctag leads to an etag listing). ``etag``: neither exists, so each
poll lists every member's etag. The collection URL is part of it: a cursor issued for another
collection is expired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from syncd.connector import cursor_fields

__all__ = ["MODES", "Cursor", "Mode", "describe", "parse_cursor"]

Mode = Literal["sync", "ctag", "etag"]
MODES: dict[str, str] = {
    "sync": "sync-collection (RFC 6578 sync token)",
    "ctag": "ctag + etag listing (the server has no sync-collection)",
    "etag": "etag listing on every poll (the server has neither sync-collection nor ctag)",
}


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where change tracking of one collection stands."""

    mode: Mode
    url: str
    token: str | None = None
    """The sync token (``sync``) or the ctag (``ctag``)."""

    def text(self) -> str:
        """The opaque text the engine stores."""
        return json.dumps(
            {"v": 1, "mode": self.mode, "url": self.url, "token": self.token},
            sort_keys=True,
            separators=(",", ":"),
        )


def parse_cursor(text: str) -> Cursor | None:
    """The cursor in ``text``, or None if it is not one of ours (another connector's)."""
    data = cursor_fields(text)
    if data is None:
        return None
    mode, url, token = data.get("mode"), data.get("url"), data.get("token")
    if mode not in MODES or not isinstance(url, str):
        return None
    if token is not None and not isinstance(token, str):
        return None
    if mode == "sync" and not token:
        return None
    return Cursor(mode=mode, url=url, token=token)


def describe(text: str | None) -> str | None:
    """A line for ``syncd status``: how this cursor tracks changes."""
    cursor = None if text is None else parse_cursor(text)
    return None if cursor is None else MODES[cursor.mode]
