"""What the connectors share about proxies: a ``requests`` session that takes only the proxy
from the environment, and one table for the failures a proxy causes.

:mod:`syncd.proxies` chooses the proxy (standard library only); this module holds the glue
to the HTTP clients. :func:`proxy_failure` and :func:`proxy_reply` turn a proxy's trouble
into one rule and one message for every connector: a proxy that refuses (a 4xx answer to
``CONNECT`` or to a forwarded request, 407 for wrong credentials) is a ``TransientError``
that is not retried (another try meets the same answer and, on corporate proxies, counts
towards locking the account); a proxy that is down is retried; a proxy syncd cannot use
(``socks5://``, ``https://``) stops the calendar with a ``ConnectorError``. Messages name the
proxy by host and port, never its credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import niquests
import requests
from niquests.exceptions import ProxyError as NiquestsProxyError
from requests.exceptions import ProxyError as RequestsProxyError

from syncd.errors import ConnectorError, TransientError
from syncd.proxies import (
    ProxyFailure,
    ProxyRefused,
    ProxyUnsupported,
    authority,
    proxies_for,
    proxy_suffix,
    refusal,
    tunnel_status,
)
from syncd.transport import ErrorRule, exception_rule

__all__ = [
    "PROXY_DOWN",
    "PROXY_REFUSED",
    "PROXY_UNUSABLE",
    "ProxiedNiquestsSession",
    "ProxiedSession",
    "proxy_failure",
    "proxy_reply",
    "raised_rule",
]

PROXY_REFUSED = ErrorRule(TransientError, "the proxy refused")
PROXY_DOWN = ErrorRule(
    TransientError, "the proxy cannot be reached or refused to connect", retry=True
)
PROXY_UNUSABLE = ErrorRule(ConnectorError, "the proxy cannot be used")

_DOWN = (ProxyFailure, RequestsProxyError, NiquestsProxyError)


def proxy_failure(error: BaseException, url: str, what: str) -> tuple[ErrorRule, str] | None:
    """The rule and message for ``error`` raised while sending to ``url`` when a proxy is to
    blame, else None. ``what`` names the request in the message."""
    if isinstance(error, ProxyUnsupported):
        return PROXY_UNUSABLE, f"{error} ({what})"
    if isinstance(error, ProxyRefused):
        return PROXY_REFUSED, f"{error} ({what})"
    if not isinstance(error, _DOWN):
        return None
    found = tunnel_status(error)
    if found is not None and 400 <= found[0] < 500:
        status, reason = found
        target = _target(url)
        message = refusal(_proxy_name(url), target, status, reason, tunnel=True)
        return PROXY_REFUSED, f"{message} ({what})"
    if isinstance(error, ProxyFailure):
        return PROXY_DOWN, f"{error} ({what})"
    detail = f"{PROXY_DOWN.message} ({what}: {type(error).__name__}){proxy_suffix(url)}"
    return PROXY_DOWN, detail


def raised_rule(
    error: BaseException,
    url: str,
    what: str,
    table: Sequence[tuple[type[BaseException], ErrorRule]],
) -> tuple[ErrorRule, str]:
    """The rule and message for ``error`` raised while sending to ``url``: the proxy's when a
    proxy is to blame, else the connector's ``table`` entry (see
    :func:`syncd.transport.exception_rule`); the message names the proxy used, if any."""
    found = proxy_failure(error, url, what)
    if found is not None:
        return found
    rule = exception_rule(error, table)
    return rule, f"{rule.message} ({what}: {type(error).__name__}){proxy_suffix(url)}"


def proxy_reply(status: int, reason: str, url: str, what: str) -> tuple[ErrorRule, str] | None:
    """The rule and message for a 407 answered to a request for ``url`` that went through a
    proxy (plain HTTP is forwarded, so the proxy's refusal comes back as a reply), else
    None."""
    if status != 407:
        return None
    name = _proxy_name(url)
    message = refusal(name, _target(url), status, reason, tunnel=False)
    return PROXY_REFUSED, f"{message} ({what})"


def _proxy_name(url: str) -> str:
    return proxy_suffix(url).removeprefix("; proxy ") or "in the environment"


def _target(url: str) -> str:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        port = default
    return authority(parts.hostname or "?", port)


class ProxiedSession(requests.Session):
    """A ``requests`` session that takes the proxy from the environment for each request
    (``NO_PROXY`` included) and nothing else: the CA variables and ``~/.netrc`` are ignored."""

    def __init__(self) -> None:
        super().__init__()
        self.trust_env = False

    def merge_environment_settings(
        self,
        url: str,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: Any,
        cert: Any,
    ) -> dict[str, Any]:
        """requests' merge, with the environment's proxy for ``url`` added."""
        chosen = {**proxies_for(url), **(proxies or {})}
        return super().merge_environment_settings(url, chosen, stream, verify, cert)


class ProxiedNiquestsSession(niquests.Session):
    """:class:`ProxiedSession` for ``niquests`` (the caldav library's client)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trust_env = False

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        """niquests' merge, with the environment's proxy for ``url`` added."""
        chosen = {**proxies_for(url), **(proxies or {})}
        return super().merge_environment_settings(url, chosen, stream, verify, cert)
