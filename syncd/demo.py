"""The embedded default: a configuration and a local calendar seeded with sample appointments.

``syncd run`` and ``syncd once`` create it when no configuration exists yet, so a fresh
install shows syncd working before anything is connected.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

__all__ = ["DEMO_ZONE", "default_state_dir", "write_default"]

DEMO_ZONE = "Europe/Berlin"

_CONFIG = """\
# syncd configuration: the embedded default, written on first start.
# Edit it freely; `syncd check-config` reports every problem with its key.
[state]
path = "{state}/state.db"

[audit]
path = "{state}/audit.jsonl"

[daemon]
poll_interval = "5m"      # how often remote calendars are polled; local folders react at once
horizon_past = "30d"      # recurring series are expanded this far back ...
horizon_future = "180d"   # ... and this far ahead

[owner]
emails = ["me@example.com"]
timezone = "{zone}"
working_hours = {{ mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", \
thu = "09:00-17:00", fri = "09:00-13:00" }}

[policy]
late_cancel_window = "48h"   # less notice than this is a late cancellation
late_cancel_fee = "50%"      # of the appointment's price
no_show_fee = "100%"
unknown_actor = "ask"        # when nothing shows who cancelled, the note asks you

[pricing]
currency = "EUR"
default_rate = "100"

[[clients]]
email = "jane@example.com"
name = "Jane Doe"
rate = "120"

[[clients]]
email = "omar@example.com"
name = "Omar Haddad"

[[clients]]
email = "li@example.com"
name = "Li Wei"

[[clients]]
email = "ana@example.com"
name = "Ana Costa"

[[calendars]]
name = "work"
connector = "local"
path = "{calendars}/work"

[[calendars]]
name = "notes"               # syncd writes its private notes here
connector = "local"
path = "{calendars}/notes"

[notes]
calendar = "notes"
"""

_EVENT = """\
BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//syncd//demo//EN\r
{body}END:VCALENDAR\r
"""


def default_state_dir() -> Path:
    """``$STATE_DIRECTORY`` under systemd, else ``$XDG_STATE_HOME/syncd``."""
    systemd = os.environ.get("STATE_DIRECTORY")
    if systemd:
        return Path(systemd.split(":")[0])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "syncd"


def write_default(config_path: Path, state_dir: Path, now: datetime) -> None:
    """Write the default configuration and seed its calendar folder with sample appointments."""
    calendars = state_dir / "calendars"
    folder = calendars / "work"
    for path in (config_path.parent, state_dir, calendars, folder):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    config_path.write_text(
        _CONFIG.format(state=state_dir.resolve(), calendars=calendars.resolve(), zone=DEMO_ZONE),
        encoding="utf-8",
    )
    for name, body in _samples(now.astimezone(ZoneInfo(DEMO_ZONE)).date()).items():
        (folder / name).write_text(_EVENT.format(body=body), encoding="utf-8", newline="")


def _stamp(day: date, at: time) -> str:
    return datetime.combine(day, at).strftime("%Y%m%dT%H%M%S")


def _event(uid: str, summary: str, start: str, end: str, *extra: str) -> str:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"SUMMARY:{summary}",
        f"DTSTART;TZID={DEMO_ZONE}:{start}",
        f"DTEND;TZID={DEMO_ZONE}:{end}",
        "ORGANIZER:mailto:me@example.com",
        *extra,
        "END:VEVENT",
    ]
    return "".join(f"{line}\r\n" for line in lines)


def _attendee(email: str, partstat: str = "ACCEPTED") -> str:
    return f"ATTENDEE;PARTSTAT={partstat}:mailto:{email}"


def _samples(today: date) -> dict[str, str]:
    monday = today + timedelta(days=7 - today.weekday())
    ten, eleven = time(10), time(11)
    series_uid = "demo-coaching-jane@syncd"
    second = monday + timedelta(days=7)
    return {
        "coaching-jane.ics": _event(
            series_uid,
            "Coaching: Jane Doe",
            _stamp(monday, ten),
            _stamp(monday, eleven),
            _attendee("jane@example.com"),
            "RRULE:FREQ=WEEKLY;COUNT=8",
            f"EXDATE;TZID={DEMO_ZONE}:{_stamp(monday + timedelta(days=21), ten)}",
        )
        + _event(
            series_uid,
            "Coaching: Jane Doe (moved)",
            _stamp(second, time(14)),
            _stamp(second, time(15)),
            _attendee("jane@example.com"),
            f"RECURRENCE-ID;TZID={DEMO_ZONE}:{_stamp(second, ten)}",
        ),
        "consult-omar.ics": _event(
            "demo-consult-omar@syncd",
            "Consultation: Omar Haddad",
            _stamp(today + timedelta(days=1), time(15)),
            _stamp(today + timedelta(days=1), time(16)),
            _attendee("omar@example.com"),
            "CATEGORIES:important",
        ),
        "tutoring-li.ics": _event(
            "demo-tutoring-li@syncd",
            "Tutoring: Li Wei",
            _stamp(today + timedelta(days=3), time(9)),
            _stamp(today + timedelta(days=3), time(10)),
            _attendee("li@example.com", "NEEDS-ACTION"),
            "LOCATION:https://meet.example.com/li",
        ),
        "dentist.ics": _event(
            "demo-dentist@syncd",
            "Dentist",
            _stamp(today + timedelta(days=5), time(8)),
            _stamp(today + timedelta(days=5), time(9)),
        ),
        "session-ana.ics": _event(
            "demo-session-ana@syncd",
            "Session: Ana Costa",
            _stamp(today - timedelta(days=1), time(16)),
            _stamp(today - timedelta(days=1), time(17)),
            _attendee("ana@example.com"),
        ),
    }
