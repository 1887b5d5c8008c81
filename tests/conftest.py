"""Shared test setup: the suite talks only to servers on loopback, whatever the machine's
proxy settings are (syncd honours HTTPS_PROXY and its kin, and CI machines often set them)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")


@pytest.fixture(scope="session", autouse=True)
def no_proxies_from_the_machine() -> Iterator[None]:
    """Unset the machine's proxy variables for the whole run (subprocesses inherit that);
    tests of proxies set their own."""
    names = [n for n in os.environ if n.lower() in _PROXY_VARIABLES]
    saved = {name: os.environ.pop(name) for name in names}
    yield
    os.environ.update(saved)
