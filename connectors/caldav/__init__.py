"""The ``caldav`` connector (RFC 4791 calendars, RFC 6578 sync); see :mod:`.connector`."""

from connectors.caldav.connector import CalDAVConnector

__all__ = ["CalDAVConnector"]
