"""An instance as Graph writes it in JSON, for one reader's preferences."""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tests.graph_emulator.model import Instance
from tests.graph_emulator.times import EPOCH_TIME, format_local, format_stamp, format_utc, zone

__all__ = ["View", "render"]

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class View:
    """How a reader wants events: zone for start/end, body type, $select, expanded properties."""

    zone_name: str = "UTC"
    body_type: str | None = None
    select: tuple[str, ...] | None = None
    ext_ids: tuple[str, ...] = ()


def render(instance: Instance, user: str, view: View) -> dict[str, Any]:
    """The event JSON of ``instance`` in ``user``'s mailbox.

    Nested values are the stored ones, not copies (serializing thousands of events a second is
    what the benches need): callers serialize the result or copy it, never change it.
    """
    full = _full(instance, user, view)
    if view.ext_ids:
        found = _extended(instance, view.ext_ids)
        if found:
            full["singleValueExtendedProperties"] = found
    if view.select is None:
        return full
    keep = {"@odata.etag", "id", "singleValueExtendedProperties", *view.select}
    return {k: v for k, v in full.items() if k in keep}


def _full(instance: Instance, user: str, view: View) -> dict[str, Any]:
    source, master = instance.source, instance.item
    data = source.data
    occurrence = instance.kind == "occurrence"
    key = master.change_key if occurrence else source.change_key
    organizer = data.get("organizer") or {"emailAddress": {"name": user, "address": user}}
    is_organizer = organizer["emailAddress"]["address"].lower() == user.lower()
    body = _body(data["body"], view.body_type)
    event: dict[str, Any] = {
        "@odata.etag": f'W/"{key}"',
        "id": instance.id,
        "createdDateTime": format_stamp(source.created),
        "lastModifiedDateTime": format_stamp(master.modified if occurrence else source.modified),
        "changeKey": key,
        "categories": list(data["categories"]),
        "transactionId": master.data.get("transactionId"),
        "originalStartTimeZone": data.get("originalStartTimeZone") or data["start"]["timeZone"],
        "originalEndTimeZone": data.get("originalEndTimeZone") or data["end"]["timeZone"],
        "iCalUId": (
            master.ical_uid
            if instance.original_start is None
            else master.occurrence_uid(instance.original_start)
        ),
        "reminderMinutesBeforeStart": data["reminderMinutesBeforeStart"],
        "isReminderOn": data["isReminderOn"],
        "hasAttachments": data["hasAttachments"],
        "subject": data["subject"],
        "bodyPreview": _text(data["body"])[:255],
        "importance": data["importance"],
        "sensitivity": data["sensitivity"],
        "isAllDay": data["isAllDay"],
        "isCancelled": data["isCancelled"],
        "isOrganizer": is_organizer,
        "responseRequested": data["responseRequested"],
        "seriesMasterId": master.id if instance.original_start is not None else None,
        "showAs": data["showAs"],
        "type": instance.kind,
        "webLink": "https://outlook.office365.com/owa/?itemid="
        + urllib.parse.quote(instance.id, safe="")
        + "&exvsurl=1&path=/calendar/item",
        "onlineMeetingUrl": None,
        "isOnlineMeeting": data["isOnlineMeeting"],
        "onlineMeetingProvider": data["onlineMeetingProvider"],
        "allowNewTimeProposals": data["allowNewTimeProposals"],
        "isDraft": data["isDraft"],
        "hideAttendees": data["hideAttendees"],
    }
    if instance.original_start is not None:
        event["originalStart"] = format_utc(instance.original_start)
    event["responseStatus"] = data.get("responseStatus") or {
        "response": "organizer" if is_organizer else "notResponded",
        "time": EPOCH_TIME,
    }
    event["body"] = body
    event["start"], event["end"] = _times(instance, view.zone_name)
    event["location"] = data["location"]
    event["locations"] = data["locations"]
    is_master = instance.kind == "seriesMaster"
    event["recurrence"] = master.recurrence.render() if is_master and master.recurrence else None
    event["attendees"] = data["attendees"]
    event["organizer"] = organizer
    event["onlineMeeting"] = _online_meeting(data, master.id)
    return event


_MEETING_PROVIDERS = frozenset({"teamsForBusiness", "skypeForBusiness", "skypeForConsumer"})


def _online_meeting(data: dict[str, Any], master_id: str) -> dict[str, str] | None:
    """Graph makes the meeting when ``isOnlineMeeting`` is set with a provider; its join link
    is the same for every occurrence of a series (choice: derived from the master's id)."""
    if not data["isOnlineMeeting"] or data["onlineMeetingProvider"] not in _MEETING_PROVIDERS:
        return None
    meeting = urllib.parse.quote(master_id, safe="")
    return {"joinUrl": f"https://teams.microsoft.com/l/meetup-join/{meeting}"}


def _times(instance: Instance, zone_name: str) -> tuple[dict[str, str], dict[str, str]]:
    source = instance.source
    if source.all_day:
        # All-day events are floating days: the dates stay, whatever zone the reader asks for.
        own = zone(instance.item.zone_name)
        start, end = instance.start.astimezone(own), instance.end.astimezone(own)
    else:
        shown = zone(zone_name)
        start, end = instance.start.astimezone(shown), instance.end.astimezone(shown)
    return (
        {"dateTime": format_local(start), "timeZone": zone_name},
        {"dateTime": format_local(end), "timeZone": zone_name},
    )


def _extended(instance: Instance, wanted: tuple[str, ...]) -> list[dict[str, str]]:
    source = instance.source
    return [
        {"id": prop_id, "value": value}
        for lower, (prop_id, value) in source.ext.items()
        if lower in wanted
    ]


def _text(body: dict[str, str]) -> str:
    content = body.get("content", "")
    if body.get("contentType") == "html":
        content = html.unescape(_TAG.sub(" ", content))
    return _SPACE.sub(" ", content).strip()


def _body(body: dict[str, str], wanted: str | None) -> dict[str, str]:
    kind = body.get("contentType", "html")
    if wanted is None or wanted == kind:
        return dict(body)
    if wanted == "text":
        return {"contentType": "text", "content": _text(body)}
    escaped = html.escape(body.get("content", "")).replace("\n", "<br>")
    return {"contentType": "html", "content": f"<html><body>{escaped}</body></html>"}
