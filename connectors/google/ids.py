"""hrefs and Google event ids: one codec, both directions.

Google lets a client choose an event id made of base32hex characters (``0-9a-v``), 5 to 1024
of them. An href that is already such an id (what Google generated for events made by other
clients) is used as it is. Any other href (``syncd-note-<hex>.ics`` for syncd's notes, ``a.ics``
in the contract suite) becomes ``"s0ncd" + base32hex(href as UTF-8)``, lower case, without
padding. Listing maps an id back: one with that prefix that decodes to UTF-8 (and that the
encoder would produce for what it decodes to) is the href it came from; any other id is its
own href. Both directions are total and inverse to each other.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["PREFIX", "event_id", "href_of"]

PREFIX = "s0ncd"
_ID = re.compile(r"[0-9a-v]{5,1024}")
MAX_ID = 1024


def _encode(href: str) -> str:
    text = base64.b32hexencode(href.encode("utf-8")).decode("ascii")
    return PREFIX + text.rstrip("=").lower()


def _decode(event: str) -> str | None:
    """The href an encoded id came from, or None when ``event`` is not one of ours."""
    if not event.startswith(PREFIX) or not _ID.fullmatch(event):
        return None
    body = event[len(PREFIX) :].upper()
    try:
        raw = base64.b32hexdecode(body + "=" * (-len(body) % 8))
        href = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not href or _encode(href) != event or _plain(href):
        return None
    return href


def _plain(href: str) -> bool:
    """An href that is a Google id standing for itself."""
    return _ID.fullmatch(href) is not None and _decode(href) is None


def event_id(href: str) -> str:
    """The Google event id for ``href``; ValueError when the href is too long to encode."""
    if _plain(href):
        return href
    encoded = _encode(href)
    if len(encoded) > MAX_ID:
        raise ValueError(f"the name {href[:40]!r}... is too long for a Google event id")
    return encoded


def href_of(event: str) -> str:
    """The href the core uses for a Google event id."""
    decoded = _decode(event)
    return event if decoded is None else decoded
