"""Event bodies as Google reads them: schema-checked, read-only fields dropped, limits applied.

Unknown members are dropped silently (as Calendar v3 does); a member of the wrong JSON type
is a 400 ``invalid`` naming it. ``extendedProperties`` keys longer than 44 characters are
dropped and values longer than 1024 characters truncated, silently, as the extended
properties guide says; more than 300 properties or 32 kB in all is a 400.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.google_emulator.errors import invalid, required
from tests.google_emulator.schema import resolve, schemas

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
    checked = _check(body, schemas()["Event"], "")
    assert isinstance(checked, dict)
    for name, allowed in _ENUMS.items():
        if name in checked and checked[name] not in allowed:
            raise invalid(f"Invalid value for: {name}")
    if "attendees" in checked:
        checked["attendees"] = [_attendee(item) for item in checked["attendees"]]
    if "extendedProperties" in checked:
        checked["extendedProperties"] = _limit_properties(checked["extendedProperties"])
    return checked


def _check(value: Any, node: dict[str, Any], path: str) -> Any:
    node = resolve(node)
    kind = node.get("type")
    if kind == "object" or "properties" in node or "additionalProperties" in node:
        return _check_object(value, node, path)
    if kind == "array":
        if not isinstance(value, list):
            raise invalid(f"Invalid value for: {path}")
        return [_check(item, node.get("items", {}), path) for item in value]
    if kind == "string" and not isinstance(value, str):
        raise invalid(f"Invalid value for: {path}")
    if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
        raise invalid(f"Invalid value for: {path}")
    if kind == "boolean" and not isinstance(value, bool):
        raise invalid(f"Invalid value for: {path}")
    return value if kind in ("string", "integer", "boolean") else copy.deepcopy(value)


def _check_object(value: Any, node: dict[str, Any], path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Invalid value for: {path}")
    props: dict[str, Any] = node.get("properties", {})
    extra = node.get("additionalProperties")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        child = props.get(key, extra)
        if isinstance(child, dict):
            out[key] = _check(item, child, f"{path}.{key}" if path else key)
    return out


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
