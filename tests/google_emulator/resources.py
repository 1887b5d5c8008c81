"""Event bodies as Google reads them: schema-checked, read-only fields dropped, limits applied.

Unknown members are dropped silently (as Calendar v3 does); a member of the wrong JSON type
is a 400 ``invalid`` naming it. ``extendedProperties`` keys longer than 44 characters are
dropped and values longer than 1024 characters truncated, silently, as the extended
properties guide says; more than 300 properties or 32 kB in all is a 400.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from typing import Any

from tests.google_emulator.errors import invalid, required
from tests.google_emulator.schema import schemas

__all__ = [
    "API_READ_ONLY",
    "EVENT_ID",
    "KEY_LIMIT",
    "VALUE_LIMIT",
    "check_event",
    "merge_patch",
]

EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
KEY_LIMIT = 44
VALUE_LIMIT = 1024
_MAX_PROPERTIES = 300
_MAX_PROPERTY_BYTES = 32 * 1024

# Members a client cannot set through insert/update/patch (the server owns them).
API_READ_ONLY = frozenset(
    {
        "kind",
        "etag",
        "id",
        "htmlLink",
        "created",
        "updated",
        "creator",
        "organizer",
        "hangoutLink",
        "privateCopy",
        "locked",
        "recurringEventId",
        "originalStartTime",
    }
)
_ENUMS = {
    "status": {"confirmed", "tentative", "cancelled"},
    "transparency": {"opaque", "transparent"},
    "visibility": {"default", "public", "private", "confidential"},
    "eventType": {
        "default",
        "birthday",
        "focusTime",
        "fromGmail",
        "outOfOffice",
        "workingLocation",
    },
}
_RESPONSES = {"needsAction", "declined", "tentative", "accepted"}


def check_event(body: object) -> dict[str, Any]:
    """A deep copy of ``body`` checked against the ``Event`` schema (``None`` members dropped)."""
    if not isinstance(body, dict):
        raise invalid("Invalid value for: event")
    checked = _checker("Event")(body, "")
    assert isinstance(checked, dict)
    for name, allowed in _ENUMS.items():
        if name in checked and checked[name] not in allowed:
            raise invalid(f"Invalid value for: {name}")
    if "attendees" in checked:
        checked["attendees"] = [_attendee(item) for item in checked["attendees"]]
    if "extendedProperties" in checked:
        checked["extendedProperties"] = _limit_properties(checked["extendedProperties"])
    return checked


Checker = Callable[[Any, str], Any]


@functools.cache
def _checker(name: str) -> Checker:
    """The compiled check of schema ``name`` (built once: bulk loads check many bodies)."""
    return _compile(schemas()[name])


def _compile(node: dict[str, Any]) -> Checker:
    ref = node.get("$ref")
    if isinstance(ref, str):
        return lambda value, path: _checker(ref)(value, path)
    kind = node.get("type")
    if kind == "object" or "properties" in node or "additionalProperties" in node:
        return _compile_object(node)
    if kind == "array":
        item = _compile(node.get("items", {}))

        def check_array(value: Any, path: str) -> list[Any]:
            if not isinstance(value, list):
                raise invalid(f"Invalid value for: {path}")
            return [item(element, path) for element in value]

        return check_array
    scalar = {"string": (str,), "integer": (int,), "boolean": (bool,)}.get(str(kind))
    if scalar is None:
        return lambda value, path: copy.deepcopy(value)
    types = scalar

    def check_scalar(value: Any, path: str) -> Any:
        if not isinstance(value, types) or (kind == "integer" and isinstance(value, bool)):
            raise invalid(f"Invalid value for: {path}")
        return value

    return check_scalar


def _compile_object(node: dict[str, Any]) -> Checker:
    props = {key: _compile(child) for key, child in node.get("properties", {}).items()}
    raw_extra = node.get("additionalProperties")
    extra = _compile(raw_extra) if isinstance(raw_extra, dict) else None

    def check_object(value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(f"Invalid value for: {path}")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if item is None:
                continue
            child = props.get(key, extra)
            if child is not None:
                out[key] = child(item, f"{path}.{key}" if path else key)
        return out

    return check_object


def _attendee(item: dict[str, Any]) -> dict[str, Any]:
    email = item.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise required("Missing attendee email.")
    out = dict(item)
    out.pop("self", None)
    out.pop("organizer", None)
    status = out.setdefault("responseStatus", "needsAction")
    if status not in _RESPONSES:
        raise invalid("Invalid value for: attendees.responseStatus")
    return out


def _limit_properties(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    count = size = 0
    for scope in ("private", "shared"):
        if scope not in value:
            continue
        kept = {k: v[:VALUE_LIMIT] for k, v in value[scope].items() if len(k) <= KEY_LIMIT}
        count += len(kept)
        size += sum(len(k.encode()) + len(v.encode()) for k, v in kept.items())
        out[scope] = kept
    if count > _MAX_PROPERTIES or size > _MAX_PROPERTY_BYTES:
        raise invalid("The event exceeds the extended properties limits.")
    return out


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``patch`` applied: objects merged recursively, ``null`` removes a member,
    everything else (lists included) replaced."""
    out = copy.deepcopy(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
