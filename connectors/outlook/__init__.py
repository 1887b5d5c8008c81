"""The ``outlook`` connector (Microsoft 365 / Outlook calendars over Microsoft Graph); see
:mod:`.connector`."""

from connectors.outlook.connector import OutlookConnector

__all__ = ["OutlookConnector"]
