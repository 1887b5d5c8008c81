"""syncd: watches appointment calendars, applies the owner's cancellation policy, writes notes back."""

__all__ = ["__version__"]

__version__ = "0.1.0"
