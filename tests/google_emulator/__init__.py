"""A faithful, stateful emulator of Google Calendar API v3 and Google's OAuth 2.0 endpoints.

It is the stand-in for Google in syncd's tests and benchmarks. The real
google-api-python-client talks to it::

    with GoogleCalendarEmulator() as emu:
        creds = Credentials.from_authorized_user_info(emu.authorized_user_info())
        creds = creds.with_token_uri(emu.token_uri)
        service = build("calendar", "v3", credentials=creds, static_discovery=True,
                        client_options={"api_endpoint": emu.endpoint})

Behaviour follows the documentation (the events reference in the discovery document bundled
with google-api-python-client; Google's sync, errors, versioning and extended-properties
guides; the project's provider notes, ``providers.md`` section A), not any connector's
expectations.

Test controls besides the API: ``add_calendar``/``add_user``, ``put_event``/``patch_event``/
``delete_event`` (another client's writes), ``bulk_load``, ``event``/``events``,
``expire_sync_tokens``, ``inject``, ``requests``/``clear_requests``, ``writes``, ``consents``,
``authorized_user_info``/``client_secrets``/``service_account_info``,
``expire_access_tokens``/``revoke_refresh_tokens``, ``auth_required``, ``page_size_cap``,
``expansion_limit``, ``clock`` (a callable giving the time; tokens and timestamps use it) and
``internal_errors`` (tracebacks of emulator bugs, answered as 500s).

What is emulated
----------------
- ``calendarList.list``/``get``, ``calendars.insert``/``get``/``delete``; ``primary`` is the
  caller's own calendar (id = the user's address). Each calendar has one owner; a token may
  use only the calendars its user owns (others are 404, as Google hides them). Hidden
  entries (``add_calendar(hidden=True)``) are listed only with ``showHidden=true`` or a
  sync token.
- ``events.insert``/``get``/``update``/``patch``/``delete``/``list``/``instances`` with ids,
  etags, ``If-Match`` (412), ``If-None-Match`` (304), 409 ``duplicate``, 410 ``deleted``,
  ``sendUpdates`` recorded (``emu.writes``), recurring series with instances and exceptions,
  sync tokens, pages, partial responses (``fields``) and the documented 400s.
- ``POST /token`` (refresh token, authorization code with PKCE, service-account JWT with
  ``sub``), ``GET /o/oauth2/auth`` (the consent page, answered with a redirect at once),
  bearer tokens with expiry and scopes (403 ``insufficientPermissions``).
- Faults (``emu.inject``), a record of every request (``emu.requests``), attendee copies.

Choices where the documentation is silent
------------------------------------------
- Errors carry ``status`` (the google.rpc name) besides ``code``/``message``/``errors``; the
  messages are Google's where known. A bad client-chosen id is 400 ``invalid`` "Invalid
  resource id value." (what Google answers). A syncToken with a forbidden parameter, or with
  ``showDeleted=false``, is 400 ``invalid`` naming the parameter.
- Sync tokens are HMAC-signed ``(calendar, change number, epoch, singleEvents, showDeleted)``.
  Tampered or forged, another calendar's, expired (``expire_sync_tokens``), or used with a
  different ``singleEvents`` than the listing that gave it: 410 ``fullSyncRequired`` (a
  different ``showDeleted`` is harmless: incremental listings include deleted items anyway).
  Every ``events.list`` (also with ``timeMin``, ``q``...) ends with a ``nextSyncToken``;
  ``events.instances`` never gives one. Tombstones are kept for ever.
- Pages: the first page snapshots the whole result and the change number; later pages are cut
  from the snapshot and the final ``nextSyncToken`` carries the first page's change number,
  so a change made between pages is returned by the next incremental listing. A page token
  is valid only with the same query (``maxResults`` and ``fields`` may change) and for the 512
  most recent multi-page listings; otherwise 400 ``invalid``. ``maxResults`` above 2500 is
  capped (below 1 is 400); ``emu.page_size_cap`` shortens pages further.
- Cancelled items in a listing are stubs with only what Google guarantees: ``kind``, ``etag``,
  ``id``, ``status`` (plus ``recurringEventId`` and ``originalStartTime`` for instances).
  ``get`` returns the full stored event. With singleEvents=false and showDeleted=false, the
  cancelled exceptions of a live series are listed (the documented matrix); those of a
  deleted series are not. Deleting a master cancels its stored exceptions too.
- Deleted (cancelled) events may be updated or patched (Google can restore them); an update
  without ``status`` makes the event ``confirmed`` again.
- ``singleEvents=true`` and ``instances`` expand at most ``emu.expansion_limit`` (730)
  instances per series and listing, bounded or not. A master's own start is always its first
  instance. ``UNTIL`` without ``Z`` is read in the series zone; a date ``UNTIL`` on a timed
  series ends that day. ``COUNT`` with ``UNTIL``, ``RDATE;VALUE=PERIOD``, a ``recurrence`` on an
  instance, or a line dateutil cannot read: 400 ``invalid`` "Invalid recurrence rule.".
  Master changes do not rewrite stored exceptions. ``instances`` of a non-recurring event is
  an empty list.
- All-day events occupy midnight to midnight of the calendar's zone for ``timeMin``/
  ``timeMax``/``orderBy``. Stored ``dateTime`` values are rendered in the event's
  ``timeZone`` (else the calendar's), whole seconds, ``Z`` for UTC; the ``timeZone``
  parameter re-renders them in listings.
- ``sequence``: a write below the current one is 400 (Google's message); a write that moves
  start/end/recurrence without raising it adds one. ``updated`` stays when only
  ``reminders`` change. Read-only members sent by a client are ignored, unknown ones dropped.
- ``privateExtendedProperty``/``sharedExtendedProperty``: constraints of one kind are OR-ed
  (the extended properties guide), the two kinds AND-ed. More than 300 properties or 32 kB in
  all: 400 ``invalid``.
- An event made on a secondary calendar has that calendar as its organizer (email = the
  calendar id, ``displayName`` = its summary), the caller as its creator, as Google does.
  A deleted calendar is gone (404) with its events; its sync tokens are 410 if it comes back.
- Inserting an ``iCalUID`` already used in the calendar (cancelled events too) is 409.
- The test controls write as another client (the web UI, an invitation) and may set
  ``organizer``/``creator``/``iCalUID``, but store only what Google could hold: ids are
  base32hex, an exception's id is ``<master>_<stamp>``, an iCalUID belongs to one series;
  otherwise they raise :class:`ApiError` as the API would answer.
- A service account acting as itself may not add attendees (403
  ``forbiddenForServiceAccounts``); with ``sub`` (domain-wide delegation, allowed for every
  service account the emulator made) it acts as that user, who must exist.
- The authorization code exchange always returns a refresh token (the clients are
  "installed" apps, as in Google's desktop flow). Redirect URIs must be http on a loopback
  host (any port), as for Google's "installed" clients.
- Attendee copies: an event whose attendee is a calendar of the emulator is copied there with
  the same id; organizer writes are pushed to the copies (each keeps its own private
  properties); an attendee's copy shares only ``extendedProperties.shared`` and its own
  ``responseStatus``. On an attendee's copy, changing ``guestsCanInviteOthers``/
  ``guestsCanModify``/``guestsCanSeeOtherGuests`` (a PUT that drops them too) is 403
  ``forbiddenForNonOrganizer``.
- Faults: matched by method and by a substring of the path *with* its query; without
  ``path_contains`` only Calendar API requests match (``path_contains="/token"`` aims at the
  token endpoint); consumed in injection order; a faulted request changes nothing.
  ``delay`` applies to any fault. On the OAuth endpoints a fault answers in OAuth's shape
  (``{"error", "error_description"}``).
  ``Retry-After`` is whole seconds when the value is whole, else the decimal value.
  ``"410"`` answers ``fullSyncRequired``, as Google does when a sync token dies while its
  pages are read (aim it with ``path_contains="pageToken="``).
- ``Recorded.bytes_out`` counts the whole answer (status line, headers, body). Answers are
  compact JSON without gzip. ``updatedMin`` is never "too long ago"; ``maxAttendees``, ``q``
  on working-location fields, ``import``, ``move``, ``watch`` and colours are not emulated.
"""

from __future__ import annotations

from tests.google_emulator.emulator import GoogleCalendarEmulator
from tests.google_emulator.errors import ApiError
from tests.google_emulator.faults import FAULTS, Recorded
from tests.google_emulator.oauth import SCOPE_CALENDAR, Consent
from tests.google_emulator.store import WriteRecord

__all__ = [
    "FAULTS",
    "SCOPE_CALENDAR",
    "ApiError",
    "Consent",
    "GoogleCalendarEmulator",
    "Recorded",
    "WriteRecord",
]
