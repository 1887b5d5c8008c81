"""Folding of iCalendar content lines (RFC 5545 section 3.1), shared by everything that writes
iCalendar text by hand: syncd's annotations and the connectors that render provider JSON."""

from __future__ import annotations

__all__ = ["fold"]


def fold(line: str, eol: str = "\r\n", limit: int = 75) -> str:
    """One content line folded so that no physical line is longer than ``limit`` octets and
    no character is split; continuation lines begin with one space; each ends with ``eol``."""
    if line.isascii():  # the common case, one slice per physical line
        if len(line) <= limit:
            return line + eol
        rest = [line[i : i + limit - 1] for i in range(limit, len(line), limit - 1)]
        return (eol + " ").join([line[:limit], *rest]) + eol
    pieces: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append(current)
            current, size = " ", 1
        current += char
        size += width
    pieces.append(current)
    return "".join(piece + eol for piece in pieces)
