"""One HTTP exchange with the server, through the caldav library's ``DAVClient``.

``DAVClient`` brings the HTTP session (niquests: pooled connections, TLS verification with a
``ca_file`` that the environment's CA variables cannot replace), authentication negotiated
from the server's challenge (Basic, Digest, Bearer) and the parsing of XML replies with
entities and network access off. Its session is swapped for one that takes the proxy from
the environment for each request's own host (:mod:`syncd.proxies`: a CONNECT tunnel for
https://, absolute URIs for http://) and nothing else. Without ``username``, the server's
entry in ``~/.netrc`` (or ``$NETRC``) gives the credentials, as niquests itself would; with
``username``, netrc is never read. syncd sends its own request bodies and reads
the parsed replies itself; two library habits are worked around here: bodies go out as
``WireBytes`` (sent byte for byte, not re-terminated), and the 401, 403 and 429 replies that
``DAVClient`` raises as exceptions are turned back into replies, so that one table
(:mod:`connectors.caldav.session`) maps every status.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from caldav.davclient import DAVClient
from caldav.lib.error import AuthorizationError, RateLimitError
from caldav.lib.python_utilities import WireBytes
from niquests.utils import get_netrc_auth

from connectors.caldav.dav import Element, preconditions
from connectors.caldav.options import CalDAVOptions
from connectors.proxied import ProxiedNiquestsSession
from syncd.secrets import Secret

__all__ = ["CaldavTransport", "Reply", "Transport"]


@dataclass(frozen=True, slots=True)
class Reply:
    """A server reply: status, headers (lower-case names), the parsed XML body if any, and
    the precondition names of a ``DAV:error`` body (e.g. ``valid-sync-token``)."""

    status: int
    headers: Mapping[str, str]
    tree: Element | None = None
    preconditions: frozenset[str] = frozenset()


class Transport(Protocol):
    """Sends one request and returns the server's reply; raises the HTTP stack's errors."""

    def send(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Reply:
        """One request, no retries."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


class CaldavTransport:
    """A :class:`Transport` over ``caldav.DAVClient``, created at the first request."""

    def __init__(self, name: str, options: CalDAVOptions) -> None:
        self.name = name
        self.options = options
        self._dav: DAVClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> DAVClient:
        with self._lock:
            if self._dav is None:
                self._dav = self._connect()
            return self._dav

    def _connect(self) -> DAVClient:
        options = self.options
        username = options.username
        password = None if options.secret is None else options.secret.reveal(self.name)
        if username is None:
            username, password = _netrc(options.url)
        verify: bool | str = options.verify_tls
        if options.ca_file is not None:
            verify = str(options.ca_file)
        elif verify is True:  # the bundle niquests itself would take from the environment
            verify = (
                os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            )
        _quiet_caldav_replies()
        client = DAVClient(
            url=options.url,
            username=username,
            password=password,
            timeout=options.timeout,  # type: ignore[arg-type]  # niquests takes floats
            ssl_verify_cert=verify,
            enable_rfc6764=False,
        )
        # The proxy is syncd's choice, per request: niquests reads the environment's proxies
        # once per process and keeps them, and would send ~/.netrc credentials for any user.
        plain = client.session
        client.session = ProxiedNiquestsSession(**_session_options(plain))
        plain.close()
        return client

    def send(
        self, method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> Reply:
        """One request; 401, 403 and 429 come back as replies like any other status."""
        client = self._client()
        payload = cast(str, WireBytes(body)) if body else ""
        try:
            response = client.request(url, method, payload, dict(headers or {}))
        except AuthorizationError as refused:
            names = frozenset(p.rsplit("}", 1)[-1] for p in refused.preconditions or ())
            return Reply(status=refused.status or 401, headers={}, preconditions=names)
        except RateLimitError as limited:
            after = {"retry-after": limited.retry_after} if limited.retry_after else {}
            return Reply(status=limited.status or 429, headers=after)
        tree = cast(Element | None, response.tree)
        return Reply(
            status=int(response.status),
            headers={str(k).lower(): str(v) for k, v in response.headers.items()},
            tree=tree,
            preconditions=preconditions(tree),
        )

    def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        with self._lock:
            if self._dav is not None:
                self._dav.close()
                self._dav = None


def _session_options(session: Any) -> dict[str, Any]:
    """What ``DAVClient`` chose for the session it made (HTTP/2 multiplexing)."""
    multiplexed = getattr(session, "multiplexed", None)
    return {} if multiplexed is None else {"multiplexed": bool(multiplexed)}


def _netrc(url: str) -> tuple[str | None, str | None]:
    """The user and password ``~/.netrc`` (``$NETRC``) holds for ``url``'s host, the
    password registered for scrubbing; (None, None) when it has none."""
    found = get_netrc_auth(url)
    if not found:
        return None, None
    user, password = found
    if password:
        Secret(password)
    return user, password


def _quiet_caldav_replies() -> None:
    # caldav pretty-prints every parsed reply for its debug log whenever this logger's own
    # level is unset, whether or not anything is logged: real CPU on large listings.
    replies = logging.getLogger("caldav.response")
    if replies.level == logging.NOTSET:
        replies.setLevel(logging.INFO)
    # caldav logs whole replies (an HTML page, parser tracebacks) when a URL is no CalDAV
    # server; syncd reports that itself, in one line.
    library = logging.getLogger("caldav")
    if library.level == logging.NOTSET:
        library.setLevel(logging.CRITICAL)
