"""The etag the core stores for an Outlook object: the item's change key and, for an
occurrence or exception, the series it belongs to.

``{changeKey}`` for a single event, ``{changeKey}|{seriesMasterId}`` for an occurrence or
exception (change keys and ids are base64 text: neither holds ``|``). The core keeps etags
opaque and hands them back (``known``, ``update``, ``delete``), so the connector knows without
a request which objects the core holds of each series (a series is reconciled as a set, see
:mod:`.series`). Writes and the "already held" test use the change key alone. An etag without
the series part (stored by an older version, or of a single event) means "no series known".

An item the connector could not read is reported (an item failure) at the etag the core holds
marked :func:`unread`: the core keeps that etag until the item is listed again, so a later
round knows to read the item again (its change key never matches an entry's, and a series
member so marked is read when its series is reconciled, even if its listing has it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.outlook.items import INSTANCE_TYPES, change_key

__all__ = ["etag_of", "is_unread", "key_of", "series_in", "series_of", "unread"]

_SEPARATOR = "|"
_UNREAD = "!"


def series_of(item: Mapping[str, Any]) -> str | None:
    """The ``seriesMasterId`` of an occurrence or exception; None for anything else (or a
    partial delta entry, which does not carry it)."""
    if item.get("type") not in INSTANCE_TYPES:
        return None
    master = item.get("seriesMasterId")
    return master if isinstance(master, str) and master else None


def etag_of(item: Mapping[str, Any]) -> str:
    """The etag of an item for the core. Raises MalformedItem without a change key."""
    key = change_key(item)
    series = series_of(item)
    return key if series is None else f"{key}{_SEPARATOR}{series}"


def key_of(etag: str) -> str:
    """The change key inside an etag (what ``If-Match`` sends)."""
    return etag.partition(_SEPARATOR)[0]


def series_in(etag: str) -> str | None:
    """The series an etag names, if any."""
    _key, separator, series = etag.partition(_SEPARATOR)
    return series if separator and series else None


def unread(etag: str) -> str:
    """``etag`` marked as the etag of an item that could not be read ("" stays "")."""
    return etag if not etag or etag.startswith(_UNREAD) else _UNREAD + etag


def is_unread(etag: str) -> bool:
    """Whether ``etag`` is marked :func:`unread`."""
    return etag.startswith(_UNREAD)
