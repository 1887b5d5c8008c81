"""Partial responses: the standard ``fields`` parameter (``a,b/c,items(x,y(z))``).

A selection is parsed once, checked against the response's schema from the discovery
document (an unknown name is a 400 ``invalidParameter`` "Invalid field selection NAME", as
Google answers) and then applied: what was not asked for is dropped.
"""

from __future__ import annotations

from typing import Any

from tests.google_emulator.errors import ApiError
from tests.google_emulator.schema import resolve, schemas

__all__ = ["Mask", "apply_mask", "parse_fields"]

Mask = dict[str, "Mask | None"]  # None: the whole value


def _bad(name: str) -> ApiError:
    return ApiError(400, "invalidParameter", f"Invalid field selection {name}", location="fields")


def parse_fields(text: str, schema_name: str) -> Mask:
    """The selection ``text`` as a nested mask, checked against schema ``schema_name``."""
    parser = _Parser(text)
    mask = parser.selection()
    if parser.pos != len(text):
        raise _bad(text[parser.pos :] or text)
    _check(mask, schemas()[schema_name])
    return mask


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def selection(self) -> Mask:
        mask: Mask = {}
        while True:
            path = self._path()
            sub: Mask | None = None
            if self._peek() == "(":
                self.pos += 1
                sub = self.selection()
                if self._peek() != ")":
                    raise _bad(self.text)
                self.pos += 1
            _merge_path(mask, path, sub)
            if self._peek() != ",":
                return mask
            self.pos += 1

    def _path(self) -> list[str]:
        names = [self._name()]
        while self._peek() == "/":
            self.pos += 1
            names.append(self._name())
        return names

    def _name(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",()/":
            self.pos += 1
        name = self.text[start : self.pos].strip()
        if not name:
            raise _bad(self.text)
        return name

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""


def _merge_path(mask: Mask, path: list[str], sub: Mask | None) -> None:
    head, rest = path[0], path[1:]
    child: Mask | None = sub
    for name in reversed(rest):
        child = {name: child}
    if head in mask:
        mask[head] = _union(mask[head], child)
    else:
        mask[head] = child


def _union(a: Mask | None, b: Mask | None) -> Mask | None:
    if a is None or b is None:
        return None
    out: Mask = dict(a)
    for key, value in b.items():
        out[key] = _union(out[key], value) if key in out else value
    return out


def _check(mask: Mask, node: dict[str, Any]) -> None:
    node = _element(resolve(node))
    props = node.get("properties")
    extra = node.get("additionalProperties")
    for name, sub in mask.items():
        if name == "*":
            child: dict[str, Any] | None = extra if isinstance(extra, dict) else {}
        elif isinstance(props, dict) and name in props:
            child = props[name]
        elif isinstance(extra, dict):
            child = extra
        else:
            raise _bad(name)
        if sub is not None:
            assert child is not None
            target = _element(resolve(child))
            if "properties" not in target and "additionalProperties" not in target and child:
                raise _bad(name)
            _check(sub, child)


def _element(node: dict[str, Any]) -> dict[str, Any]:
    """The element schema of an array (nested arrays too), else ``node``."""
    while node.get("type") == "array" and isinstance(node.get("items"), dict):
        node = resolve(node["items"])
    return node


def apply_mask(value: Any, mask: Mask | None) -> Any:
    """``value`` with only the selected members (lists are selected element by element)."""
    if mask is None:
        return value
    if isinstance(value, list):
        return [apply_mask(item, mask) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in mask:
            out[key] = apply_mask(item, mask[key])
        elif "*" in mask:
            out[key] = apply_mask(item, mask["*"])
    return out
