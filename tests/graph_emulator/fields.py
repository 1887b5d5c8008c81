"""The ``event`` properties a write may carry: which are writable, their shapes, defaults.

A client write (POST/PATCH) may set the properties Graph documents as updatable; a read-only
property is ``400 ErrorInvalidPropertySet`` and an unknown one ``400 RequestBodyRead``. The test
API writes "as another client" (or as the server itself) and may also set ``isCancelled``,
``organizer``, ``responseStatus``, attendees' ``status`` and ``iCalUId``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.graph_emulator.errors import bad_request, body_read, invalid_property_set
from tests.graph_emulator.times import EPOCH_TIME

__all__ = [
    "KNOWN",
    "READ_ONLY",
    "WRITABLE",
    "check_write",
    "extended_properties",
    "new_event_defaults",
]

SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
IMPORTANCE = ("low", "normal", "high")
SENSITIVITY = ("normal", "personal", "private", "confidential")
RESPONSES = ("none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded")
ATTENDEE_TYPES = ("required", "optional", "resource")
PROVIDERS = ("unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness")
CONTENT_TYPES = ("text", "html")

WRITABLE = frozenset(
    {
        "allowNewTimeProposals",
        "attendees",
        "body",
        "categories",
        "end",
        "hideAttendees",
        "importance",
        "isAllDay",
        "isOnlineMeeting",
        "isReminderOn",
        "location",
        "locations",
        "onlineMeetingProvider",
        "originalEndTimeZone",
        "originalStartTimeZone",
        "recurrence",
        "reminderMinutesBeforeStart",
        "responseRequested",
        "sensitivity",
        "showAs",
        "start",
        "subject",
        "transactionId",
    }
)
# Properties only the server (here: the test API) sets.
PRIVILEGED = frozenset({"iCalUId", "isCancelled", "isDraft", "organizer", "responseStatus"})
READ_ONLY = PRIVILEGED | frozenset(
    {
        "bodyPreview",
        "changeKey",
        "createdDateTime",
        "hasAttachments",
        "id",
        "isOrganizer",
        "lastModifiedDateTime",
        "onlineMeeting",
        "onlineMeetingUrl",
        "originalStart",
        "seriesMasterId",
        "type",
        "webLink",
    }
)
NAVIGATION = frozenset(
    {
        "attachments",
        "calendar",
        "extensions",
        "instances",
        "multiValueExtendedProperties",
        "singleValueExtendedProperties",
    }
)
KNOWN = WRITABLE | READ_ONLY | NAVIGATION


def new_event_defaults() -> dict[str, Any]:
    """What a new event holds for the properties its creator left out.

    The nested values are shared between events: stored event data is never changed in place.
    """
    return dict(_DEFAULTS)


_DEFAULTS: dict[str, Any] = {
    "subject": "",
    "body": {"contentType": "html", "content": ""},
    "categories": [],
    "importance": "normal",
    "sensitivity": "normal",
    "isAllDay": False,
    "isCancelled": False,
    "isDraft": False,
    "hasAttachments": False,
    "responseRequested": True,
    "showAs": "busy",
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "location": {
        "displayName": "",
        "locationType": "default",
        "uniqueIdType": "unknown",
        "address": {},
        "coordinates": {},
    },
    "locations": [],
    "attendees": [],
    "hideAttendees": False,
    "isOnlineMeeting": False,
    "onlineMeetingProvider": "unknown",
    "allowNewTimeProposals": True,
    "transactionId": None,
}


def check_write(
    body: object, *, privileged: bool, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The properties a write sets, validated and normalized (extended properties apart)."""
    if not isinstance(body, dict):
        raise body_read("The request body must be a JSON object (an event).")
    result: dict[str, Any] = {}
    for name, value in body.items():
        if name.startswith("@odata.") or name == "singleValueExtendedProperties":
            continue
        if name not in KNOWN:
            raise body_read(
                f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make "
                "sure to only use property names that are defined by the type."
            )
        if name in NAVIGATION:
            raise bad_request(f"The Graph emulator does not accept '{name}' in an event write.")
        if name not in WRITABLE and not (privileged and name in PRIVILEGED):
            raise invalid_property_set(name)
        result[name] = _VALIDATORS[name](value, name, previous or {})
    if "attendees" in result and not privileged:
        _keep_statuses(result["attendees"], previous or {})
    return result


def _keep_statuses(attendees: list[dict[str, Any]], previous: dict[str, Any]) -> None:
    """A client cannot set attendees' responses: they keep what they had (new ones: none)."""
    known = {
        a["emailAddress"]["address"].lower(): a["status"] for a in previous.get("attendees", [])
    }
    for attendee in attendees:
        address = attendee["emailAddress"]["address"].lower()
        attendee["status"] = known.get(address, {"response": "none", "time": EPOCH_TIME})


def extended_properties(body: object) -> list[tuple[str, str]]:
    """``singleValueExtendedProperties`` of a write: [(id, value)]."""
    if not isinstance(body, dict) or "singleValueExtendedProperties" not in body:
        return []
    props = body["singleValueExtendedProperties"]
    if not isinstance(props, list):
        raise body_read("'singleValueExtendedProperties' must be a list of {id, value}.")
    found: list[tuple[str, str]] = []
    for prop in props:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str):
            raise body_read("Each single-value extended property needs a string 'id'.")
        if not isinstance(prop.get("value"), str):
            raise body_read(f"The extended property '{prop['id']}' needs a string 'value'.")
        if len(prop["id"].split()) < 3:
            raise bad_request(
                f"'{prop['id']}' is not an extended property id "
                "('String {GUID} Name X' or 'String 0xHHHH').",
                "ErrorInvalidProperty",
            )
        found.append((prop["id"], prop["value"]))
    return found


# -- validators ----------------------------------------------------------------------------

Validator = Callable[[Any, str, dict[str, Any]], Any]


def _string(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        raise body_read(f"Cannot convert the value of '{name}' to Edm.String.")
    return value


def _optional_string(value: Any, name: str, previous: dict[str, Any]) -> Any:
    return None if value is None else _string(value, name, previous)


def _boolean(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, bool):
        raise body_read(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.Boolean' ({name})."
        )
    return value


def _integer(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        raise body_read(
            f"Cannot convert the literal '{value}' to the expected type 'Edm.Int32' ({name})."
        )
    return value


def _enum(choices: tuple[str, ...]) -> Validator:
    def check(value: Any, name: str, _: dict[str, Any]) -> Any:
        if value not in choices:
            raise body_read(
                f"'{value}' is not a valid value for '{name}' (one of {', '.join(choices)})."
            )
        return value

    return check


def _body(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        raise body_read("'body' must be an object with 'contentType' and 'content'.")
    kind = str(value.get("contentType", "text")).lower()
    if kind not in CONTENT_TYPES or not isinstance(value.get("content", ""), str):
        raise body_read("'body' needs contentType 'text' or 'html' and a string 'content'.")
    return {"contentType": kind, "content": value.get("content", "")}


def _strings(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise body_read(f"'{name}' must be a list of strings.")
    return list(value)


def _time(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, dict) or "dateTime" not in value or "timeZone" not in value:
        raise body_read(f"'{name}' must be an object with 'dateTime' and 'timeZone'.")
    return {"dateTime": value["dateTime"], "timeZone": value["timeZone"]}


def _location(value: Any, name: str = "location", _: dict[str, Any] | None = None) -> Any:
    if not isinstance(value, dict):
        raise body_read(f"'{name}' must be an object.")
    shown = value.get("displayName", "")
    if not isinstance(shown, str):
        raise body_read(f"'{name}.displayName' must be a string.")
    result: dict[str, Any] = {
        "displayName": shown,
        "locationType": "default",
        "uniqueIdType": "unknown" if not shown else "private",
        "address": {},
        "coordinates": {},
    }
    result.update(copy.deepcopy({k: v for k, v in value.items() if k != "displayName"}))
    return result


def _locations(value: Any, name: str, previous: dict[str, Any]) -> Any:
    if not isinstance(value, list):
        raise body_read("'locations' must be a list of locations.")
    return [_location(v, "locations[]") for v in value]


def _email(value: Any, name: str) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("address"), str)
        or not value["address"]
    ):
        raise body_read(f"'{name}' needs an 'emailAddress' with an 'address'.")
    shown = value.get("name") or value["address"]
    if not isinstance(shown, str):
        raise body_read(f"'{name}.emailAddress.name' must be a string.")
    return {"name": shown, "address": value["address"]}


def _status(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or value.get("response") not in RESPONSES:
        raise body_read(f"'{name}' needs a 'response' (one of {', '.join(RESPONSES)}).")
    when = value.get("time", EPOCH_TIME)
    if not isinstance(when, str):
        raise body_read(f"'{name}.time' must be a string.")
    return {"response": value["response"], "time": when}


def _attendees(value: Any, name: str, previous: dict[str, Any]) -> Any:
    if not isinstance(value, list):
        raise body_read("'attendees' must be a list.")
    known = {
        a["emailAddress"]["address"].lower(): a["status"] for a in previous.get("attendees", [])
    }
    result = []
    for attendee in value:
        if not isinstance(attendee, dict):
            raise body_read("Each attendee must be an object.")
        email = _email(attendee.get("emailAddress"), "attendees[]")
        kind = attendee.get("type", "required")
        if kind not in ATTENDEE_TYPES:
            raise body_read(
                f"'{kind}' is not an attendee type (one of {', '.join(ATTENDEE_TYPES)})."
            )
        status = known.get(email["address"].lower(), {"response": "none", "time": EPOCH_TIME})
        if "status" in attendee and attendee["status"] is not None:
            status = _status(attendee["status"], "attendees[].status")
        result.append({"type": kind, "status": status, "emailAddress": email})
    return result


def _organizer(value: Any, name: str, _: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        raise body_read("'organizer' must be an object with 'emailAddress'.")
    return {"emailAddress": _email(value.get("emailAddress"), "organizer")}


def _response_status(value: Any, name: str, _: dict[str, Any]) -> Any:
    return _status(value, name)


def _recurrence(value: Any, name: str, _: dict[str, Any]) -> Any:
    if value is not None and not isinstance(value, dict):
        raise body_read("'recurrence' must be an object or null.")
    return copy.deepcopy(value)


_VALIDATORS: dict[str, Validator] = {
    "allowNewTimeProposals": _boolean,
    "attendees": _attendees,
    "body": _body,
    "categories": _strings,
    "end": _time,
    "hideAttendees": _boolean,
    "iCalUId": _string,
    "importance": _enum(IMPORTANCE),
    "isAllDay": _boolean,
    "isCancelled": _boolean,
    "isDraft": _boolean,
    "isOnlineMeeting": _boolean,
    "isReminderOn": _boolean,
    "location": _location,
    "locations": _locations,
    "onlineMeetingProvider": _enum(PROVIDERS),
    "organizer": _organizer,
    "originalEndTimeZone": _string,
    "originalStartTimeZone": _string,
    "recurrence": _recurrence,
    "reminderMinutesBeforeStart": _integer,
    "responseRequested": _boolean,
    "responseStatus": _response_status,
    "sensitivity": _enum(SENSITIVITY),
    "showAs": _enum(SHOW_AS),
    "start": _time,
    "subject": _string,
    "transactionId": _optional_string,
}
