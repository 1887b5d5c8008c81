"""syncd's private ``X-SYNCD-*`` properties on the original event, written at the text level.

Nothing else of the event changes by a single byte: no scheduling server sees a significant
change and no attendee gets an update. A client never sees their record this way either:
only the verdict kind and the UID of the owner's note are stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo

from icalendar import Calendar

from syncd.folding import fold
from syncd.model import When, format_when

__all__ = ["annotate_event", "private_properties"]

_PRIVATE_PREFIX = "X-SYNCD-"


@dataclass(slots=True)
class _Line:
    """One logical (unfolded) content line and the physical lines it spans."""

    physical: list[str]
    """Physical lines, each with its own line ending."""
    content: str
    """The unfolded line without its line ending."""

    @property
    def eol(self) -> str:
        """The line ending of the last physical line ("" at end of file without one)."""
        last = self.physical[-1]
        if last.endswith("\r\n"):
            return "\r\n"
        return "\n" if last.endswith("\n") else ""


@dataclass(slots=True)
class _Block:
    """One component: where it begins and ends, and its own (not nested) property lines."""

    name: str
    begin: int
    end: int = -1
    props: list[int] = field(default_factory=list)


def annotate_event(
    data: bytes,
    *,
    uid: str,
    instance: str | None,
    properties: Mapping[str, str],
    zone: tzinfo | None = None,
) -> bytes:
    """Add or replace syncd's private ``X-SYNCD-*`` properties on one VEVENT of ``data``.

    The target is the VEVENT with ``uid`` whose RECURRENCE-ID (as UTC text
    ``YYYY-MM-DDTHH:MM:SSZ`` or date ``YYYY-MM-DD``) equals ``instance``, if such an override
    exists, else the series master, else the object's only VEVENT with ``uid`` (an
    occurrence delivered on its own, whose key moved with its series). A floating
    RECURRENCE-ID is read in the master's zone, else ``zone``, else UTC. Only the inserted or
    replaced lines differ from ``data``; new lines go just before that VEVENT's
    ``END:VEVENT`` with its line ending. Raises ValueError for a name outside ``X-SYNCD-``,
    a value with control characters other than tab and newline, or when no VEVENT matches.
    """
    wanted = _validated(properties)
    lines = _logical_lines(_decode(data))
    blocks = _blocks(lines)
    target = _target(lines, blocks, uid, instance, zone)
    edits: dict[int, str] = {}
    inserted: list[str] = []
    for name, value in wanted.items():
        existing = [i for i in target.props if _name(lines[i].content) == name]
        if not existing:
            inserted.append(_content_line(name, value, lines[target.end].eol or _eol(lines)))
            continue
        if len(existing) == 1 and _same_value(lines[existing[0]].content, value):
            continue
        first = lines[existing[0]]
        edits[existing[0]] = _content_line(name, value, first.eol or _eol(lines))
        edits.update(dict.fromkeys(existing[1:], ""))
    out: list[str] = []
    for index, line in enumerate(lines):
        if index == target.end:
            out.extend(inserted)
        out.append(edits[index] if index in edits else "".join(line.physical))
    return "".join(out).encode("utf-8", "surrogateescape")


def private_properties(data: bytes) -> dict[str, str]:
    """The ``X-SYNCD-*`` properties of all VEVENTs (names upper-cased, values unescaped); a
    later VEVENT's value wins on equal names."""
    lines = _logical_lines(_decode(data))
    found: dict[str, str] = {}
    for block in _blocks(lines):
        for index in block.props:
            name = _name(lines[index].content)
            if name.startswith(_PRIVATE_PREFIX):
                found[name] = _unescape(_split(lines[index].content)[1])
    return found


_NAME = re.compile(r"[A-Za-z0-9-]+")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _validated(properties: Mapping[str, str]) -> dict[str, str]:
    """Upper-cased names mapped to their values, after checking both."""
    wanted: dict[str, str] = {}
    for raw, value in properties.items():
        name = raw.upper()
        if not name.startswith(_PRIVATE_PREFIX) or not _NAME.fullmatch(name):
            raise ValueError(f"{raw!r} is not a syncd private property (X-SYNCD-...)")
        if name in wanted:
            raise ValueError(f"{raw!r} is given twice")
        if _FORBIDDEN.search(value.replace("\n", "")):
            raise ValueError(f"the value of {name} holds control characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"the value of {name} is not valid Unicode text") from None
        wanted[name] = value
    return wanted


def _decode(data: bytes) -> str:
    """Text that encodes back to exactly ``data``, whatever bytes it holds."""
    return data.decode("utf-8", "surrogateescape")


def _eol(lines: Sequence[_Line]) -> str:
    """The file's line ending: CRLF if any line uses it, else LF."""
    return "\r\n" if any(line.eol == "\r\n" for line in lines) else "\n"


def _logical_lines(text: str) -> list[_Line]:
    """Split on LF only (values may hold other Unicode line breaks) and unfold."""
    parts = text.split("\n")
    physical = [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    lines: list[_Line] = []
    for raw in physical:
        content = raw.removesuffix("\n").removesuffix("\r")
        if lines and lines[-1].content and raw[:1] in (" ", "\t"):
            lines[-1].physical.append(raw)
            lines[-1].content += content[1:]
        else:
            lines.append(_Line([raw], content))
    return lines


def _blocks(lines: Sequence[_Line]) -> list[_Block]:
    """The VEVENT and VTIMEZONE components, in order; properties of nested components (a
    VALARM) do not count as the VEVENT's own."""
    stack: list[_Block] = []
    found: list[_Block] = []
    for index, line in enumerate(lines):
        name = _name(line.content)
        value = _split(line.content)[1].strip().upper()
        if name == "BEGIN":
            stack.append(_Block(value, index))
        elif name == "END" and stack:
            block = stack.pop()
            block.end = index
            if block.name in ("VEVENT", "VTIMEZONE"):
                found.append(block)
        elif stack and name:
            stack[-1].props.append(index)
    found.sort(key=lambda block: block.begin)
    return found


def _name(content: str) -> str:
    match = _NAME.match(content)
    return match.group(0).upper() if match else ""


def _split(content: str) -> tuple[str, str]:
    """``(name and parameters, raw value)``: the value starts after the first colon that is
    not inside a quoted parameter value."""
    quoted = False
    for index, char in enumerate(content):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return content[:index], content[index + 1 :]
    return content, ""


def _target(
    lines: Sequence[_Line],
    blocks: Sequence[_Block],
    uid: str,
    instance: str | None,
    zone: tzinfo | None,
) -> _Block:
    events = [b for b in blocks if b.name == "VEVENT" and _uid_of(lines, b) == uid.strip()]
    masters = [b for b in events if _prop(lines, b, "RECURRENCE-ID") is None]
    if instance is not None:
        zones = _vtimezones(lines, blocks)
        floating = _master_zone(lines, masters, zones) or zone or UTC
        for block in events:
            rid = _prop(lines, block, "RECURRENCE-ID")
            if rid is not None and _rid_text(rid, zones, floating) == instance:
                return block
    if masters:
        return masters[0]
    if len(events) == 1:
        # An occurrence listed on its own (Graph) whose series moved as a whole: its key is
        # now the shifted one, but the object holds just this appointment.
        return events[0]
    shown = uid if instance is None else f"{uid} ({instance})"
    raise ValueError(f"no VEVENT with UID {shown!r} in this object")


def _prop(lines: Sequence[_Line], block: _Block, name: str) -> str | None:
    for index in block.props:
        if _name(lines[index].content) == name:
            return lines[index].content
    return None


def _uid_of(lines: Sequence[_Line], block: _Block) -> str:
    content = _prop(lines, block, "UID")
    return "" if content is None else _unescape(_split(content)[1]).strip()


def _vtimezones(lines: Sequence[_Line], blocks: Sequence[_Block]) -> str:
    """The VTIMEZONE components as text, so a TZID property can be parsed alone."""
    parts: list[str] = []
    for block in blocks:
        if block.name == "VTIMEZONE":
            parts.extend(line.content + "\r\n" for line in lines[block.begin : block.end + 1])
    return "".join(parts)


def _master_zone(lines: Sequence[_Line], masters: Sequence[_Block], zones: str) -> tzinfo | None:
    for block in masters:
        content = _prop(lines, block, "DTSTART")
        value = None if content is None else _parse_when(content, zones)
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.tzinfo
    return None


def _rid_text(content: str, zones: str, floating: tzinfo) -> str | None:
    """The RECURRENCE-ID as syncd keys instances (UTC text or date); None if unreadable."""
    value = _parse_when(content, zones)
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=_utc_alias(content) or floating)
    return format_when(value)


_UTC_NAMES = frozenset({"utc", "gmt", "z", "zulu", "universal", "utc0000", "gmt0000"})
_TZID = re.compile(r';TZID="?([^";:]*)', re.IGNORECASE)


def _utc_alias(content: str) -> tzinfo | None:
    """UTC for TZIDs such as ``tzone://Microsoft/Utc`` that icalendar leaves naive."""
    match = _TZID.search(_split(content)[0])
    if not match:
        return None
    last = re.sub(r"[^a-z0-9]", "", match.group(1).rsplit("/", 1)[-1].lower())
    return UTC if last in _UTC_NAMES else None


def _parse_when(content: str, zones: str) -> When | None:
    """Parse one date or date-time property line with icalendar, with the object's
    VTIMEZONEs at hand; None when it does not parse."""
    mini = f"BEGIN:VCALENDAR\r\n{zones}BEGIN:VEVENT\r\n{content}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    try:
        calendar = Calendar.from_ical(mini)
        event = calendar.walk("VEVENT")[0]
        value = event.get(_name(content)).dt
    except Exception:  # an unreadable value matches nothing
        return None
    return value if isinstance(value, date) else None


def _content_line(name: str, value: str, eol: str) -> str:
    """``NAME:escaped value``, folded at 75 octets, each physical line ending in ``eol``."""
    return fold(f"{name}:{_escape(value)}", eol)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPES = {"n": "\n", "N": "\n", "\\": "\\", ";": ";", ",": ","}


def _unescape(value: str) -> str:
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(0)), value)


def _same_value(content: str, value: str) -> bool:
    head, raw = _split(content)
    return ";" not in head and _unescape(raw) == value
