"""HTTP proxies named in the environment, chosen the same way for every connector.

A company network reaches Google and Microsoft only through a proxy set in ``HTTPS_PROXY``
and ``HTTP_PROXY`` (or ``ALL_PROXY``), with ``NO_PROXY`` listing the hosts reached directly;
lower-case names win over upper-case ones. :func:`proxy_for` applies requests' rules to one
URL: the proxy of the URL's scheme (``HTTPS_PROXY`` for ``https://``), none when a
``NO_PROXY`` entry is the host, a suffix of it, its IP address or a CIDR block holding it,
or ``*``. Loopback is not exempt unless ``NO_PROXY`` says so. A proxy is reached over plain
HTTP (``http://host:port``, port 80 when not given); HTTPS goes through it in a ``CONNECT``
tunnel, so TLS and the configured ``ca_file`` are between syncd and the server.

The password of a proxy URL (``http://user:pass@proxy:3128``) and the Basic credentials made
from it are registered with :mod:`syncd.secrets` as soon as the environment is read; a
:class:`Proxy` prints as ``host:port`` only, and every message here names nothing more.

:class:`ProxiedSession` is a ``requests`` session that takes only the proxy from the
environment: ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` cannot replace its ``verify`` (a
calendar's ``ca_file``) and ``~/.netrc`` cannot replace its ``Authorization`` header.
:func:`open_tunnel` opens a ``CONNECT`` tunnel for HTTP stacks that cannot.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from requests.utils import get_environ_proxies, select_proxy

from syncd.errors import SyncdError
from syncd.secrets import Secret

__all__ = [
    "ProxiedSession",
    "Proxy",
    "ProxyFailure",
    "ProxyRefused",
    "ProxyUnsupported",
    "authority",
    "connect_to",
    "open_tunnel",
    "parse_proxy",
    "proxy_for",
    "proxy_suffix",
    "requests_proxies",
]

_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")
_MAX_REPLY_LINE = 8192
_MAX_REPLY_LINES = 100


@dataclass(frozen=True, slots=True)
class Proxy:
    """One HTTP proxy: prints as ``host:port``; ``url`` and ``authorization`` carry the
    credentials for the wire only."""

    host: str
    port: int
    url: str = field(repr=False)
    """The proxy URL with its credentials, as ``requests`` takes it."""
    authorization: str | None = field(default=None, repr=False)
    """The ``Proxy-Authorization`` header value (Basic), when the URL has credentials."""

    def __str__(self) -> str:
        return authority(self.host, self.port)


class ProxyFailure(ConnectionError):
    """The proxy cannot be reached or failed to open a tunnel; the message names the proxy
    by host and port, never its credentials."""


class ProxyRefused(ProxyFailure):
    """The proxy answered ``CONNECT`` with a client error (407: no or wrong credentials,
    403: the target is not allowed); trying again will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ProxyUnsupported(SyncdError):
    """The environment names a proxy syncd cannot use (not ``http://``, no host, a bad
    port); the message names its scheme, host and port, never its credentials."""


def proxy_for(url: str) -> Proxy | None:
    """The proxy the environment names for ``url``; None when none is set or ``NO_PROXY``
    exempts the host. Raises :class:`ProxyUnsupported` for a proxy syncd cannot use."""
    _register_environment()
    chosen = select_proxy(url, get_environ_proxies(url))
    return parse_proxy(chosen) if chosen else None


def proxy_suffix(url: str) -> str:
    """``"; proxy host:port"`` when requests for ``url`` go through a proxy, else ``""``:
    the tail of a failure's message."""
    try:
        proxy = proxy_for(url)
    except ProxyUnsupported:
        return ""
    return "" if proxy is None else f"; proxy {proxy}"


def parse_proxy(text: str) -> Proxy:
    """A proxy URL (``http://user:pass@host:port``, or ``host:port``) as a :class:`Proxy`
    whose ``url`` always names the scheme and the port."""
    parts = urlsplit(_with_scheme(text))
    host = parts.hostname
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    scheme = parts.scheme.lower()
    if scheme != "http" or not host or not 0 < port < 65536:
        shown = f"{scheme}://{host or '?'}" + (f":{port}" if port else "")
        raise ProxyUnsupported(
            f"the proxy {shown} named in the environment (HTTPS_PROXY, HTTP_PROXY or "
            "ALL_PROXY) cannot be used: syncd reaches proxies as http://host:port"
        )
    userinfo, at, _ = parts.netloc.rpartition("@")
    authorization = None
    if at:
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    url = f"http://{userinfo}{at}{authority(host, port)}"
    return Proxy(host, port, url, authorization)


def _with_scheme(text: str) -> str:
    text = text.strip()
    return text if "://" in text else f"http://{text}"


# --- credentials --------------------------------------------------------------------------

_registered: set[str] = set()
_registered_lock = threading.Lock()


def _register_environment() -> None:
    """Register the credentials of every proxy URL in the environment for scrubbing (once
    per value)."""
    for name in _VARIABLES:
        for variable in (name, name.upper()):
            value = os.environ.get(variable)
            if value:
                _register_credentials(value)


def _register_credentials(value: str) -> None:
    with _registered_lock:
        if value in _registered:
            return
        _registered.add(value)
    parts = urlsplit(_with_scheme(value))
    password = parts.password
    if password is None:
        return
    user = unquote(parts.username or "")
    pair = f"{user}:{unquote(password)}".encode()
    for secret in {password, unquote(password), base64.b64encode(pair).decode("ascii")}:
        if secret:
            Secret(secret)  # registered for the life of the process


# --- requests -----------------------------------------------------------------------------


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
        chosen = dict(proxies or {})
        proxy = proxy_for(url)
        if proxy is not None:
            chosen.setdefault(urlsplit(url).scheme, proxy.url)
        return super().merge_environment_settings(url, chosen, stream, verify, cert)


def requests_proxies(url: str) -> Mapping[str, str]:
    """``requests``' ``proxies`` for a session that only ever reaches ``url``'s host."""
    proxy = proxy_for(url)
    return {} if proxy is None else {urlsplit(url).scheme: proxy.url}


# --- tunnels ------------------------------------------------------------------------------


def connect_to(proxy: Proxy, timeout: float | None) -> socket.socket:
    """A TCP connection to the proxy; :class:`ProxyFailure` when it cannot be made."""
    try:
        sock = socket.create_connection((proxy.host, proxy.port), timeout)
    except OSError as error:
        why = error.strerror or type(error).__name__
        raise ProxyFailure(f"cannot connect to the proxy {proxy} ({why})") from None
    # Headers and body go out in separate writes: Nagle's algorithm would hold the body.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def open_tunnel(proxy: Proxy, host: str, port: int, timeout: float | None) -> socket.socket:
    """A connection to ``host:port`` through the proxy's ``CONNECT`` tunnel, ready for TLS.
    :class:`ProxyRefused` when the proxy answers 4xx, :class:`ProxyFailure` otherwise."""
    sock = connect_to(proxy, timeout)
    target = authority(host, port)
    try:
        wire = authority(host.encode("idna").decode("ascii"), port)
        lines = [f"CONNECT {wire} HTTP/1.1", f"Host: {wire}"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        status, reason = _read_reply(sock)
    except (OSError, ValueError) as error:
        sock.close()
        why = getattr(error, "strerror", None) or type(error).__name__
        message = f"the proxy {proxy} failed to open a tunnel to {target} ({why})"
        raise ProxyFailure(message) from None
    if status == 200:
        return sock
    sock.close()
    message = f"the proxy {proxy} refused a tunnel to {target}: HTTP {status} {reason}".rstrip()
    if status == 407:
        message += " (check the user and password in the proxy URL)"
    if 400 <= status < 500:
        raise ProxyRefused(message, status)
    raise ProxyFailure(message)


def _read_reply(sock: socket.socket) -> tuple[int, str]:
    """The status of the proxy's answer to CONNECT, its headers read and dropped. Read byte
    by byte: whatever follows the headers belongs to the tunnel."""
    with sock.makefile("rb", buffering=0) as reply:
        status_line = reply.readline(_MAX_REPLY_LINE).decode("latin-1").strip()
        for _ in range(_MAX_REPLY_LINES):
            line = reply.readline(_MAX_REPLY_LINE)
            if line in (b"\r\n", b"\n", b""):
                break
        else:
            raise ValueError("too many header lines")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError("not an HTTP answer")
    return int(code), reason.strip()[:100]


def authority(host: str, port: int) -> str:
    """``host:port``, the host in brackets when it is an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
