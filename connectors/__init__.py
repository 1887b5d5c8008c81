"""Connectors: one adapter per calendar provider, found through the ``syncd.connectors``
entry-point group. The core never imports this package directly."""
