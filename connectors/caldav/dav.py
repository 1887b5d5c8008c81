"""WebDAV and CalDAV wire format: request bodies and the reading of multistatus replies.

Pure functions over parsed XML elements (the ElementTree API, which lxml's elements share).
A reply that is not the expected document raises :class:`MalformedReply`; the caller turns
it into a ``TransientError`` for the whole cycle. What one member lacks is that member's
problem only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape

__all__ = [
    "CALDAV",
    "CS",
    "DAV",
    "Element",
    "MalformedReply",
    "Member",
    "calendar_data",
    "members",
    "mkcalendar_body",
    "multiget_body",
    "preconditions",
    "propfind_body",
    "sync_body",
    "sync_token",
]

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
CS = "{http://calendarserver.org/ns/}"
_NAMESPACES = {
    "D": "DAV:",
    "C": "urn:ietf:params:xml:ns:caldav",
    "CS": "http://calendarserver.org/ns/",
}
_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'


class Element(Protocol):
    """The part of an XML element this module reads (ElementTree and lxml alike)."""

    @property
    def tag(self) -> object: ...

    @property
    def text(self) -> str | None: ...

    def find(self, path: str) -> Element | None: ...

    def findall(self, path: str) -> list[Element]: ...

    def __iter__(self) -> Iterator[Element]: ...


class MalformedReply(Exception):
    """A reply that is not the document the request asks for."""


@dataclass(frozen=True, slots=True)
class Member:
    """One ``DAV:response`` of a multistatus: an href, its status and its found properties."""

    href: str
    status: int
    props: dict[str, Element] = field(default_factory=dict)

    def text(self, tag: str) -> str | None:
        """The text of a found property, or None."""
        element = self.props.get(tag)
        if element is None:
            return None
        return element.text if element.text is not None else ""

    def has(self, tag: str, child: str) -> bool:
        """Whether property ``tag`` holds an element ``child`` (e.g. resourcetype/calendar)."""
        element = self.props.get(tag)
        return element is not None and element.find(child) is not None

    def names(self, tag: str) -> set[str]:
        """Every element tag found anywhere inside property ``tag``."""
        element = self.props.get(tag)
        return set() if element is None else {str(e.tag) for e in _descendants(element)}


# --- request bodies ---------------------------------------------------------------------


def _xmlns() -> str:
    return " ".join(f'xmlns:{p}="{uri}"' for p, uri in _NAMESPACES.items())


def propfind_body(props: Iterable[str]) -> bytes:
    """``PROPFIND`` asking for ``props``, each written as ``D:name``, ``C:name`` or ``CS:name``."""
    inner = "".join(f"<{p}/>" for p in props)
    return f"{_DECLARATION}<D:propfind {_xmlns()}><D:prop>{inner}</D:prop></D:propfind>".encode()


def sync_body(token: str) -> bytes:
    """RFC 6578 ``sync-collection`` (level 1, etags only) from ``token`` ("" lists everything)."""
    return (
        f"{_DECLARATION}<D:sync-collection {_xmlns()}>"
        f"<D:sync-token>{escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>"
        "<D:prop><D:getetag/></D:prop></D:sync-collection>"
    ).encode()


def multiget_body(paths: Iterable[str]) -> bytes:
    """RFC 4791 ``calendar-multiget`` of the given absolute paths (etag and calendar data)."""
    hrefs = "".join(f"<D:href>{escape(p)}</D:href>" for p in paths)
    return (
        f"{_DECLARATION}<C:calendar-multiget {_xmlns()}>"
        f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{hrefs}</C:calendar-multiget>"
    ).encode()


def mkcalendar_body(display_name: str) -> bytes:
    """RFC 4791 ``MKCALENDAR`` of an event calendar called ``display_name``."""
    return (
        f"{_DECLARATION}<C:mkcalendar {_xmlns()}><D:set><D:prop>"
        f"<D:displayname>{escape(display_name)}</D:displayname>"
        '<C:supported-calendar-component-set><C:comp name="VEVENT"/>'
        "</C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"
    ).encode()


# --- replies ----------------------------------------------------------------------------


def members(tree: Element | None) -> list[Member]:
    """Every ``DAV:response`` of a multistatus reply; ``MalformedReply`` if it is none."""
    if tree is None or tree.tag != f"{DAV}multistatus":
        raise MalformedReply("the reply is not a WebDAV multistatus document")
    found = []
    for response in tree.findall(f"{DAV}response"):
        href = response.find(f"{DAV}href")
        if href is None or not (href.text or "").strip():
            raise MalformedReply("a response in the multistatus has no href")
        found.append(_member((href.text or "").strip(), response))
    return found


def _member(href: str, response: Element) -> Member:
    top = response.find(f"{DAV}status")
    props: dict[str, Element] = {}
    statuses = []
    for propstat in response.findall(f"{DAV}propstat"):
        code = _status(propstat.find(f"{DAV}status"))
        statuses.append(code)
        prop = propstat.find(f"{DAV}prop")
        if code == 200 and prop is not None:
            props.update((str(child.tag), child) for child in prop)
    if top is not None:
        status = _status(top)
    elif 200 in statuses or not statuses:
        status = 200
    else:
        status = statuses[0]
    return Member(href=href, status=status, props=props)


def _status(element: Element | None) -> int:
    """The code of ``HTTP/1.1 404 Not Found``; a missing status counts as 200."""
    if element is None or not element.text:
        return 200
    parts = element.text.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise MalformedReply(f"unreadable status {element.text.strip()!r}")
    return int(parts[1])


def sync_token(tree: Element | None) -> str | None:
    """The new ``DAV:sync-token`` of a sync-collection reply."""
    if tree is None:
        return None
    element = tree.find(f"{DAV}sync-token")
    if element is None or not (element.text or "").strip():
        return None
    return (element.text or "").strip()


def calendar_data(text: str) -> bytes:
    """iCalendar bytes from ``calendar-data`` text.

    XML parsers turn CRLF into LF (XML 1.0 section 2.11); iCalendar lines end in CRLF
    (RFC 5545 section 3.1), so text without any CR gets its CRLF back.
    """
    if "\r" not in text:
        text = text.replace("\n", "\r\n")
    return text.encode("utf-8")


def preconditions(tree: Element | None) -> frozenset[str]:
    """The precondition names (e.g. ``valid-sync-token``) of a ``DAV:error`` body."""
    if tree is None or tree.tag != f"{DAV}error":
        return frozenset()
    return frozenset(_local(str(child.tag)) for child in tree)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _descendants(element: Element) -> Iterator[Element]:
    for child in element:
        if isinstance(child.tag, str):
            yield child
            yield from _descendants(child)
