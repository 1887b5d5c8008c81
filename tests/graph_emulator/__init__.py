"""A stateful emulator of Microsoft Graph's calendar API (v1.0) over HTTPS, for tests and benches.

It follows the documented Graph behaviour (events, calendars, calendarView and its delta,
single-value extended properties, JSON batching, throttling), not any client's expectations.
``GraphEmulator(idp=IdentityProvider(...))`` checks bearer tokens against the fake identity
platform in :mod:`tests.identity_provider`; the server certificate comes from :mod:`tests.tls`.

Served (``/me`` for delegated tokens, ``/users/{id}`` for app-only or one's own mailbox):

* ``GET/POST /calendars``, ``GET /calendar``, ``GET /calendars/{id}``
* ``GET/POST /events`` (the default calendar), ``/calendar[s/{id}]/events``;
  ``GET/PATCH/DELETE .../events/{id}`` (PATCH and DELETE honour ``If-Match``: a stale change
  key is ``412 ErrorIrresolvableConflict``); ``POST .../events/{id}/cancel`` (organizer only);
  ``GET .../events/{id}/instances?startDateTime&endDateTime``
* ``GET .../calendarView?startDateTime&endDateTime`` and ``GET .../calendarView/delta``
* ``POST /$batch`` (up to 20 requests, ``dependsOn``)

Lists page with ``@odata.nextLink`` (``$top``, ``$skip``, ``Prefer: odata.maxpagesize``),
take ``$select``, ``$expand=singleValueExtendedProperties($filter=id eq '…')`` and
``$filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')``.
``Prefer: outlook.timezone``, ``outlook.body-content-type`` and ``IdType="ImmutableId"`` are
honoured and echoed in ``Preference-Applied``.

Choices where the documentation is silent
-----------------------------------------
* **Ids** are always immutable (as with ``Prefer: IdType="ImmutableId"``): an event keeps its
  id for life. They are URL-safe base64 and case-sensitive; an occurrence's id encodes its
  master and original start, and an exception keeps its occurrence's id.
* **transactionId**: a POST repeating a ``transactionId`` already used in the mailbox creates
  nothing and answers ``201 Created`` with the existing event (as the first POST did), so a
  retried create cannot be told from the first. Deleting the event frees its
  ``transactionId``. A PATCH may not change it (400).
* **Writes** accept the properties Graph documents as updatable; a read-only one
  (``isCancelled``, ``organizer``, ``responseStatus``, ``id``, ``changeKey`` …) is
  ``400 ErrorInvalidPropertySet``, an unknown one ``400 RequestBodyRead``; ``@odata.*``
  annotations are ignored. Attendees' ``status`` written by a client is ignored (kept per
  address). The test API (``put_event`` …) may set all of them.
* **Change keys**: every change of an item makes a new one; an occurrence shows its master's
  change key and modification time; changing an exception or deleting an occurrence does not
  change the master's change key. ``If-Match`` accepts ``W/"k"``, ``"k"``, ``k`` and ``*``.
* **Series**: patterns daily, weekly, absolute/relative monthly and yearly; "day 31" falls on
  the last day of shorter months. A PATCH of a master's ``start``, ``end``, ``isAllDay`` or
  ``recurrence`` drops its exceptions and deleted occurrences (as Outlook warns); other
  changes keep them. Occurrences always follow the master's pattern and time of day: after
  a move of its start (or a new pattern) each occurrence's ``originalStart`` is its start in
  the new series, and its id, which encodes the original start, is new (the old ids are
  gone: 404, ``@removed`` in delta). A PATCH that moves the master's start to another day
  without a ``recurrence`` moves the range's ``startDate`` by as many days (Graph: it "must
  be the same value as the start property"); the pattern's days of the week stay.
  ``instances`` of a non-master is an empty list. An exception may not move onto or past a
  neighbouring occurrence's day (``400 ErrorOccurrenceCrossingBoundary``).
* **Times**: without ``Prefer: outlook.timezone`` start/end are in UTC. All-day events are
  floating days: their dates stay as created whatever zone a reader asks for, and for windows
  they span midnight to midnight of their own zone. Zones are IANA names or common Windows
  names. Windows (``startDateTime``/``endDateTime``): an offset wins, none means UTC; missing
  ones are ``400 ErrorInvalidParameter``; an event is in a window when it overlaps it (an
  event of no length when it starts inside it).
* **Lists**: default page size 10, at most 1000 (and ``page_size_cap``); ``$top`` sets the
  page size and paging goes on with ``$skip``; calendarView and instances are ordered by start
  then id, ``/events`` by creation. ``/events`` and ``/calendarView`` without a calendar
  segment mean the default calendar. Filters other than the extended-property one, and
  expansions other than ``singleValueExtendedProperties``, answer ``501 NotImplemented``
  (valid Graph the emulator does not model), never a silent no-op.
* **Delta**: a round's content is fixed when it starts; changes made while a client pages
  arrive in the next round. An incremental call returns full events for instances created or
  changed inside the window and ``{"id", "@removed": {"reason": "deleted"}}`` for instances
  that left it (deleted, cancelled by the organizer, moved out) and, as Graph does, for
  anything changed wholly outside it (for a series with nothing in the window: the master's
  id). A changed series master reports all its instances in the window. Updated items are
  whole unless ``partial_updates()`` is on: then an incremental round serves an instance an
  earlier round listed with only ``id``, ``changeKey``, ``@odata.etag``, ``type``, ``start``,
  ``end`` and ``lastModifiedDateTime`` (Graph documents that updated items may carry only
  changed properties). Tokens are self-contained;
  ``expire_delta_tokens()`` (and an unreadable token) gives ``410 SyncStateNotFound``; a token
  used on another calendar or mailbox is ``400 ErrorInvalidSyncStateData``. Default page 10.
  ``$select``/``$expand``/``$filter``/``$orderby``/``$search`` are 400. A series may be split
  across pages. With ``silent_occurrence_deletes()`` on, an occurrence deleted or cancelled
  on its own is never reported, as Graph may do ("deleted single occurrences may produce no
  explicit signal"). ``replay_next_page()`` makes the next page's link lead back to that same
  page; ``empty_next_page()`` serves an empty page with a nextLink first.
* **Extended properties** are matched by id case-insensitively and returned with the id as
  first written; an item with none of the expanded ids has no
  ``singleValueExtendedProperties`` key. An occurrence shows its master's; an exception
  starts with a copy of them. They never appear in delta.
* **Batches** run their requests one after another in the given order and answer in that
  order; a request whose ``dependsOn`` failed gets 424. Each inner request is recorded,
  authorized (with the outer token), throttled and faulted like a direct one.
* **Throttling**: more than ``concurrency_limit`` (4) requests in flight for one mailbox →
  ``429 ApplicationThrottled`` with ``Retry-After: 1``; ``peak_in_flight[user]`` counts every
  request that arrived, refused or not, so a client that sends too many shows a peak above 4.
* **Faults**: an injected fault is taken by the first matching admitted request; it changes
  no state, except "slow", which is served normally after its delay (as on a slow server:
  the change happens even if the client gave up). A fault without filters may be taken by
  a ``$batch`` request itself.
* **Auth**: ``401 InvalidAuthenticationToken`` without a valid bearer token; ``/me`` with an
  app-only token is 400; a user token on ``/users/{someone else}`` is ``403``; an unknown
  mailbox is ``404 ErrorInvalidUser``. Without an identity provider any bearer token passes: a
  token that is a mailbox address acts as that user, any other as an app.
* **Outages**: ``stop()`` closes the port and cuts kept-alive connections; ``start()`` serves
  the same state again on the same port.

Test API (:class:`GraphEmulator`): ``add_mailbox``, ``add_calendar``, ``put_event`` /
``patch_event`` / ``delete_event`` / ``cancel_for_attendee`` (as another client or the
server), ``event``, ``events``, ``extended_property``, ``bulk_load``; knobs
``expire_delta_tokens``, ``replay_next_page``, ``empty_next_page``, ``partial_updates``,
``silent_occurrence_deletes``, ``inject``,
``page_size_cap``, ``concurrency_limit``, ``throttle_retry_after``, ``clock``; records
``requests`` (:class:`Recorded`), ``peak_in_flight``, ``clear_requests``.
"""

from __future__ import annotations

from tests.graph_emulator.emulator import GraphEmulator
from tests.graph_emulator.errors import GraphError
from tests.graph_emulator.server import FAULTS, Recorded

__all__ = ["FAULTS", "GraphEmulator", "GraphError", "Recorded"]
