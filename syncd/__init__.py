"""syncd: watches appointment calendars and applies the owner's cancellation policy."""

__all__ = ["__version__"]

__version__ = "0.1.0"
