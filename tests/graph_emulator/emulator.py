"""The :class:`GraphEmulator`: an HTTPS server plus the test API that drives it."""

from __future__ import annotations

import copy
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.graph_emulator.delta import DeltaState
from tests.graph_emulator.errors import GraphError
from tests.graph_emulator.model import Instance
from tests.graph_emulator.render import View, render
from tests.graph_emulator.routes import Api
from tests.graph_emulator.server import FAULTS, Dispatcher, Fault, Handler, Recorded
from tests.graph_emulator.store import Mailbox, Store
from tests.tls import HTTPSService

if TYPE_CHECKING:
    from tests.identity_provider import IdentityProvider

__all__ = ["GraphEmulator"]

_ALL_TIME = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
_UTC = View()


def _shown(instance: Instance, user: str) -> dict[str, Any]:
    """The event as GET shows it in UTC, as a copy the caller may change."""
    return copy.deepcopy(render(instance, user, _UTC))


class GraphEmulator:
    """Microsoft Graph's calendar API on ``https://127.0.0.1:PORT/v1.0``, with a test API.

    ``idp`` validates bearer tokens (None: any token passes; a token that is a mailbox
    address acts as that user, any other is app-only). Knobs: ``page_size_cap`` (the most
    items any page holds), ``concurrency_limit`` (4), ``throttle_retry_after`` (seconds),
    ``clock`` (created/modified times). Records: ``requests``, ``peak_in_flight`` (per mailbox,
    the most requests in flight at once, counting those refused with 429).
    """

    def __init__(
        self, *, idp: IdentityProvider | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.idp = idp
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.store = Store(lambda: self.clock())
        self.deltas = DeltaState()
        self.requests: list[Recorded] = []
        self.peak_in_flight: dict[str, int] = {}
        self.page_size_cap: int | None = None
        self.concurrency_limit = 4
        self.throttle_retry_after = 1
        self.api = Api(self.store, self.deltas, lambda: self.base, lambda: self.page_size_cap)
        self.dispatcher = Dispatcher(self)
        self._server = HTTPSService(Handler, ssl_context, self)
        self._bulk_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def base(self) -> str:
        """``https://127.0.0.1:PORT/v1.0``."""
        return f"https://127.0.0.1:{self._server.port}/v1.0"

    def start(self) -> GraphEmulator:
        """Serve from a background thread (again, on the same port, after :meth:`stop`)."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving: the port closes and open connections are cut (state is kept)."""
        self._server.stop()

    def __enter__(self) -> GraphEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- mailboxes and calendars ---------------------------------------------------------

    def add_mailbox(self, user: str) -> str:
        """Create ``user``'s mailbox; the id of its default calendar ("Calendar")."""
        return self.store.add_mailbox(user)

    def add_calendar(self, user: str, name: str) -> str:
        """Create a calendar named ``name``; its id."""
        return self.store.add_calendar(self._mailbox(user), name).id

    def _mailbox(self, user: str) -> Mailbox:
        return self.store.mailbox(user)

    # -- events as another client ----------------------------------------------------------

    def put_event(self, user: str, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create an event (no ``"id"``) or merge into one (with ``"id"``), as another client.

        May set what clients cannot: ``organizer``, ``isCancelled``, ``responseStatus``,
        attendees' ``status``, ``iCalUId``. Returns the event as GET shows it (UTC).
        """
        mailbox = self._mailbox(user)
        if "id" in body:
            patch = {k: v for k, v in body.items() if k != "id"}
            return self.patch_event(user, str(body["id"]), patch)
        calendar = self.store.calendar(mailbox, calendar_id)
        instance, _ = self.store.create(mailbox, calendar, body, privileged=True)
        return _shown(instance, mailbox.user)

    def patch_event(self, user: str, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge ``patch`` into an event or occurrence (which becomes an exception)."""
        mailbox = self._mailbox(user)
        instance = self._known(
            lambda: self.store.update(mailbox, event_id, patch, privileged=True), event_id
        )
        return _shown(instance, mailbox.user)

    def delete_event(self, user: str, event_id: str) -> None:
        """Delete an event, a series (its master's id) or one occurrence."""
        mailbox = self._mailbox(user)
        self._known(lambda: self.store.delete(mailbox, event_id), event_id)

    def cancel_for_attendee(self, user: str, event_id: str) -> dict[str, Any]:
        """The organizer cancelled: ``isCancelled`` and a "Canceled: " subject on this copy."""
        mailbox = self._mailbox(user)
        instance = self._known(lambda: self.store.cancel_for_attendee(mailbox, event_id), event_id)
        return _shown(instance, mailbox.user)

    @staticmethod
    def _known(action: Callable[[], Any], event_id: str) -> Any:
        try:
            return action()
        except GraphError as error:
            if error.status == 404:
                raise KeyError(f"no event {event_id}") from None
            raise

    # -- reading -------------------------------------------------------------------------

    def event(self, user: str, event_id: str) -> dict[str, Any] | None:
        """The event, occurrence or exception as GET shows it (UTC); None when there is none."""
        mailbox = self._mailbox(user)
        try:
            with self.store.lock:
                instance = self.store.instance(mailbox, event_id)
        except GraphError:
            return None
        return _shown(instance, mailbox.user)

    def events(
        self,
        user: str,
        calendar_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """What calendarView shows for the window (default 1970-2100), in UTC."""
        mailbox = self._mailbox(user)
        with self.store.lock:
            calendar = self.store.calendar(mailbox, calendar_id)
            found = self.store.view(mailbox, calendar, start or _ALL_TIME[0], end or _ALL_TIME[1])
        return [_shown(i, mailbox.user) for i in found]

    def extended_property(self, user: str, event_id: str, prop_id: str) -> str | None:
        """The value of a single-value extended property on an item (None: not set)."""
        mailbox = self._mailbox(user)
        try:
            with self.store.lock:
                instance = self.store.instance(mailbox, event_id)
        except GraphError:
            return None
        found = instance.source.ext.get(prop_id.lower())
        return found[1] if found else None

    # -- knobs ---------------------------------------------------------------------------

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token issued so far answers 410 ``SyncStateNotFound``."""
        self.deltas.expire()

    def replay_next_page(self, times: int = 1) -> None:
        """The next delta page served comes again: its link leads back to the same page."""
        self.deltas.add_replays(times)

    def partial_updates(self, on: bool = True) -> None:
        """Incremental delta rounds serve updated items (listed by an earlier round) with only
        ``id``, ``changeKey``, ``@odata.etag``, ``type``, ``start``, ``end`` and
        ``lastModifiedDateTime``, as Graph may ("only changed properties"); new items stay
        whole."""
        self.deltas.partial = on

    def silent_occurrence_deletes(self, on: bool = True) -> None:
        """Deleting or cancelling one occurrence (``DELETE`` or ``POST .../cancel`` of an
        occurrence id, :meth:`delete_event`) leaves no trace in delta, not even when its
        series changes again before the next round: Graph's quirk that deleted single
        occurrences may produce no signal. The occurrence is gone from calendarView,
        ``instances`` and GET (404) as usual."""
        self.store.silent_occurrence_deletes = on

    def empty_next_page(self, times: int = 1) -> None:
        """The next delta page served is empty, with a nextLink to the real one."""
        self.deltas.add_empty_pages(times)

    def inject(
        self,
        fault: str,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching requests with ``fault``, changing nothing.

        Faults: "429" (``TooManyRequests``, ``Retry-After`` default 1), "503", "500", "504",
        "401", "404" (``ErrorItemNotFound``, though the resource exists), "400"
        (``ErrorInvalidRequest``), "reset" (the connection closes without an answer), "slow"
        (waits ``delay``, default 1 s, then serves the request normally). ``path_contains``
        matches the path and query (``/v1.0/me/...``); ``delay`` also delays the other faults.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        self.dispatcher.add_fault(Fault(fault, times, method, path_contains, retry_after, delay))

    def clear_requests(self) -> None:
        """Forget the recorded requests (and the concurrency peaks)."""
        self.requests.clear()
        self.peak_in_flight.clear()

    # -- seeding ---------------------------------------------------------------------------

    def bulk_load(self, user: str, calendar_id: str, bodies: list[dict[str, Any]]) -> None:
        """Seed many events at once (as :meth:`put_event` would, without rendering them)."""
        mailbox = self._mailbox(user)
        store = self.store
        with store.lock:
            calendar = store.calendar(mailbox, calendar_id)
            for body in bodies:
                store.create(mailbox, calendar, body, privileged=True)
