"""The Calendar v3 discovery document bundled in google-api-python-client, read once."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import googleapiclient  # type: ignore[import-untyped]

__all__ = ["resolve", "schemas"]


@functools.cache
def schemas() -> dict[str, Any]:
    """The ``schemas`` section of ``calendar.v3.json``."""
    root = Path(googleapiclient.__file__).parent
    path = root / "discovery_cache" / "documents" / "calendar.v3.json"
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dict(document["schemas"])


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a ``$ref`` replaced by the schema it names."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        resolved: dict[str, Any] = schemas()[ref]
        return resolved
    return node
