"""The hrefs of events syncd created, and their Graph ids.

An event syncd created is known to the core by the href it was created at (``transactionId``
``syncd:{href}``, and an extended property holding the href); every other item by its id.
This map is filled from listings and writes; after a restart an unknown href is found with a
``$filter`` on the href property.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from connectors.outlook.items import href_of, item_id

__all__ = ["Names", "could_be_id"]

_ID = re.compile(r"^[A-Za-z0-9+/=_-]+$")


def could_be_id(href: str) -> bool:
    """Whether ``href`` may be a Graph id (they are base64 text; syncd's hrefs hold a dot)."""
    return _ID.match(href) is not None


class Names:
    """href <-> id of the events syncd created in one calendar."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._hrefs: dict[str, str] = {}
        self.resolved = False
        """True once every created href the core knows was looked up (see the connector)."""

    def note(self, item: Mapping[str, Any]) -> str:
        """The href of a listed or fetched item, remembering it when syncd created it."""
        href = href_of(item)
        identifier = item_id(item)
        if href != identifier:
            self.remember(href, identifier)
        return href

    def remember(self, href: str, identifier: str) -> None:
        """Record that the event syncd created at ``href`` has id ``identifier``."""
        old = self._ids.get(href)
        if old is not None and old != identifier:
            self._hrefs.pop(old, None)
        self._ids[href] = identifier
        self._hrefs[identifier] = href

    def forget(self, href: str) -> None:
        """The event at ``href`` is gone."""
        identifier = self._ids.pop(href, None)
        if identifier is not None:
            self._hrefs.pop(identifier, None)

    def id_of(self, href: str) -> str | None:
        """The id of a created event, when known."""
        return self._ids.get(href)

    def href_of_id(self, identifier: str) -> str:
        """The href the core knows an id by: a created event's href, else the id."""
        return self._hrefs.get(identifier, identifier)

    def knows_id(self, identifier: str) -> bool:
        """Whether ``identifier`` belongs to an event syncd created (as far as seen)."""
        return identifier in self._hrefs
