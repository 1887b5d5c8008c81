"""HTTP proxies named in the environment, chosen the same way for every connector.

A company network reaches Google and Microsoft only through a proxy set in ``HTTPS_PROXY``
and ``HTTP_PROXY`` (or ``ALL_PROXY``), with ``NO_PROXY`` listing the hosts reached directly;
a lower-case variable, even empty, wins over its upper-case twin. :func:`proxy_for` picks the
proxy of the URL's scheme (``HTTPS_PROXY`` for ``https://``, then ``ALL_PROXY``), none when a
``NO_PROXY`` entry is the host, a domain above it (``corp.example``, ``.corp.example`` or
``*.corp.example``), its IP address, a CIDR block holding it, or ``*``; an entry with a port
exempts that port only. Loopback is not exempt unless ``NO_PROXY`` says so. A proxy is
reached over plain HTTP (``http://host:port``, port 80 when not given); HTTPS goes through it
in a ``CONNECT`` tunnel, so TLS and the configured ``ca_file`` are between syncd and the
server.

The choice is made on every request, so it must be cheap: with no proxy variable set it is a
handful of dictionary look-ups, and otherwise it is remembered per scheme, host and port
together with the values of the variables it read.

The password of a proxy URL (``http://user:pass@proxy:3128``) and the Basic credentials made
from it are registered with :mod:`syncd.secrets` as soon as the environment is read; a
:class:`Proxy` prints as ``host:port`` only, and every message here names nothing more.
:func:`open_tunnel` opens a ``CONNECT`` tunnel for HTTP stacks that cannot. Standard library
only: the HTTP clients' own glue lives with the connectors (``connectors.proxied``).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from syncd.errors import SyncdError
from syncd.secrets import Secret

__all__ = [
    "Proxy",
    "ProxyFailure",
    "ProxyRefused",
    "ProxyUnsupported",
    "authority",
    "bypassed",
    "connect_to",
    "environment_problem",
    "open_tunnel",
    "parse_proxy",
    "proxies_for",
    "proxy_for",
    "proxy_suffix",
    "refusal",
    "tunnel_status",
]

_PROXY_VARIABLES = ("https_proxy", "http_proxy", "all_proxy")
_SCHEMES = {"https": 0, "http": 1}
_MAX_REPLY = 65536
_MEMO_SIZE = 256
_TUNNEL_STATUS = re.compile(r"Tunnel connection failed: (\d{3})([^'\"()\]\n]*)")


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
    """The proxy answered with a client error (407: no or wrong credentials, 403: the target
    is not allowed); trying again will not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ProxyUnsupported(SyncdError):
    """The environment names a proxy syncd cannot use (not ``http://``, no host, a bad
    port); the message names its scheme, host and port, never its credentials."""


# --- choosing -----------------------------------------------------------------------------


def _variable(name: str) -> str | None:
    """The value of ``name`` (lower case) or, when it is unset, of its upper-case twin."""
    raw = getattr(os.environ, "_data", None)
    if os.name == "posix" and isinstance(raw, dict):
        # os.environ.get raises and catches a KeyError per unset name (2 us each, most of a
        # request's proxy choice); its byte dictionary answers at once.
        lower = name.encode("ascii")
        found = raw.get(lower)
        if found is None:
            found = raw.get(lower.upper())
        return os.fsdecode(found) if found else None
    value = os.environ.get(name)
    if value is None:
        value = os.environ.get(name.upper())
    return value or None


_Key = tuple[str, str, int | None, tuple[str | None, ...], str | None]
_chosen: dict[_Key, Proxy | None] = {}
_chosen_lock = threading.Lock()


def proxy_for(url: str) -> Proxy | None:
    """The proxy the environment names for ``url``; None when none is set or ``NO_PROXY``
    exempts the host. Raises :class:`ProxyUnsupported` for a proxy syncd cannot use."""
    values = tuple(_variable(name) for name in _PROXY_VARIABLES)
    if not any(values):
        return None
    scheme, host, port = _origin(url)
    return _chosen_for(scheme, host, port, values)


def proxies_for(url: str) -> dict[str, str]:
    """``proxies`` for an HTTP client's request to ``url``: the proxy for ``url``'s host
    under both schemes (a redirect to the other scheme, a certificate status fetch over
    ``http://``), or nothing. Raises :class:`ProxyUnsupported`."""
    values = tuple(_variable(name) for name in _PROXY_VARIABLES)
    if not any(values):
        return {}
    _scheme, host, port = _origin(url)
    found: dict[str, str] = {}
    for scheme in _SCHEMES:
        proxy = _chosen_for(scheme, host, port, values)
        if proxy is not None:
            found[scheme] = proxy.url
    return found


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").rstrip("."), port


def _chosen_for(
    scheme: str, host: str, port: int | None, values: tuple[str | None, ...]
) -> Proxy | None:
    """The proxy for one origin, remembered with the variables' values it was chosen from."""
    no_proxy = _variable("no_proxy")
    key: _Key = (scheme, host, port, values, no_proxy)
    with _chosen_lock:
        if key in _chosen:
            return _chosen[key]
    for value in values:
        if value:
            _register_credentials(value)
    index = _SCHEMES.get(scheme)
    chosen = (values[index] if index is not None else None) or values[2]
    proxy = None
    if chosen and not bypassed(host, port, no_proxy):
        proxy = parse_proxy(chosen)  # raises before anything is remembered
    with _chosen_lock:
        if len(_chosen) >= _MEMO_SIZE:
            _chosen.clear()
        _chosen[key] = proxy
    return proxy


def bypassed(host: str, port: int | None, no_proxy: str | None) -> bool:
    """Whether ``NO_PROXY`` (``no_proxy``, comma or space separated) exempts ``host``."""
    if not no_proxy:
        return False
    host = host.lower().strip("[]").rstrip(".")
    address = _address(host)
    for entry in re.split(r"[,\s]+", no_proxy.lower()):
        if entry == "*":
            return True
        if entry and _matches(entry, host, port, address):
            return True
    return False


def _matches(
    entry: str,
    host: str,
    port: int | None,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
) -> bool:
    if "/" in entry:
        try:
            return address is not None and address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
    name, wanted = _split_port(entry)
    if wanted is not None and wanted != port:
        return False
    if address is not None or _address(name) is not None:
        return address == _address(name)
    name = name.removeprefix("*.").lstrip(".").rstrip(".")
    return bool(name) and (host == name or host.endswith("." + name))


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port`` (``[v6]:port``) apart; a bare IPv6 address has no port."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        return name, int(rest[1:]) if rest[1:].isdigit() else None
    name, colon, port = entry.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        return name, int(port)
    return entry, None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def proxy_suffix(url: str) -> str:
    """``"; proxy host:port"`` when requests for ``url`` go through a proxy, else ``""``:
    the tail of a failure's message."""
    try:
        proxy = proxy_for(url)
    except ProxyUnsupported:
        return ""
    return "" if proxy is None else f"; proxy {proxy}"


def environment_problem(url: str) -> str | None:
    """Why the proxy the environment names for ``url`` cannot be used, or None: what
    ``check-config`` and ``doctor`` point out before a cycle fails on it."""
    try:
        proxy_for(url)
    except ProxyUnsupported as error:
        return str(error)
    return None


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


def _register_credentials(value: str) -> None:
    """Register the credentials of a proxy URL for scrubbing (once per value)."""
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


# --- refusals -----------------------------------------------------------------------------


def refusal(proxy: object, target: str, status: int, reason: str, *, tunnel: bool) -> str:
    """The message for a proxy's refusal of a tunnel (or of a forwarded request) to
    ``target``; a 407 adds where the credentials are."""
    what = f"a tunnel to {target}" if tunnel else f"the request to {target}"
    message = f"the proxy {proxy} refused {what}: HTTP {status} {reason}".rstrip()
    if status == 407:
        message += " (check the user and password in the proxy URL)"
    return message


def tunnel_status(error: BaseException) -> tuple[int, str] | None:
    """The status a proxy answered ``CONNECT`` with, found anywhere in ``error``'s chain
    (``http.client`` raises ``OSError("Tunnel connection failed: 407 ...")``, which HTTP
    clients wrap in their own errors), or None."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ProxyRefused):
            return current.status, ""
        found = _TUNNEL_STATUS.search(str(current))
        if found is not None:
            return int(found.group(1)), found.group(2).strip()[:100]
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return None


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
    ``timeout`` bounds the whole exchange (connection and answer), not each read.
    :class:`ProxyRefused` when the proxy answers 4xx, :class:`ProxyFailure` otherwise."""
    deadline = None if timeout is None else time.monotonic() + timeout
    sock = connect_to(proxy, timeout)
    target = authority(host, port)
    try:
        wire = authority(host.encode("idna").decode("ascii"), port)
        lines = [f"CONNECT {wire} HTTP/1.1", f"Host: {wire}"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        _settimeout(sock, deadline)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        status, reason = _read_reply(sock, deadline)
        sock.settimeout(timeout)
    except (OSError, ValueError, UnicodeError) as error:
        sock.close()
        why = getattr(error, "strerror", None) or type(error).__name__
        message = f"the proxy {proxy} failed to open a tunnel to {target} ({why})"
        raise ProxyFailure(message) from None
    if status == 200:
        return sock
    sock.close()
    message = refusal(proxy, target, status, reason, tunnel=True)
    if 400 <= status < 500:
        raise ProxyRefused(message, status)
    raise ProxyFailure(message)


def _settimeout(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        sock.settimeout(None)
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the proxy did not answer in time")
    sock.settimeout(left)


def _read_reply(sock: socket.socket, deadline: float | None) -> tuple[int, str]:
    """The status of the proxy's answer to CONNECT, its headers read and dropped before
    ``deadline``. Bytes after the headers belong to the tunnel: they are peeked at, and only
    the headers are taken off the socket."""
    head = b""
    while True:
        _settimeout(sock, deadline)
        peeked = sock.recv(_MAX_REPLY, socket.MSG_PEEK)
        if not peeked:
            raise ValueError("the proxy closed the connection")
        end = (head[-3:] + peeked).find(b"\r\n\r\n")
        take = len(peeked) if end < 0 else end + 4 - len(head[-3:])
        head += sock.recv(take)
        if end >= 0:
            break
        if len(head) > _MAX_REPLY:
            raise ValueError("the proxy's answer is too long")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1").strip()
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise ValueError("not an HTTP answer")
    return int(code), reason.strip()[:100]


def authority(host: str, port: int) -> str:
    """``host:port``, the host in brackets when it is an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
