"""Connectors are found through the ``syncd.connectors`` entry-point group."""

from __future__ import annotations

from pathlib import Path

from connectors.local import LocalConnector
from syncd.config import CalendarConfig
from syncd.connector import ENTRY_POINT_GROUP, available_connectors, connector_class


def test_local_connector_is_registered_as_an_entry_point() -> None:
    """The installed package registers `local` in the entry-point group."""
    assert ENTRY_POINT_GROUP == "syncd.connectors"
    assert available_connectors()["local"] is LocalConnector


def test_connector_class_resolves_by_name(tmp_path: Path) -> None:
    """A configured connector name resolves to its class."""
    calendar = CalendarConfig(
        name="w", connector="local", options={}, source=tmp_path / "c.toml", index=0
    )
    assert connector_class("local", calendar) is LocalConnector
