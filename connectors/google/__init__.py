"""The ``google`` connector (Google Calendar API v3); see :mod:`.connector`."""

from connectors.google.connector import GoogleConnector

__all__ = ["GoogleConnector"]
