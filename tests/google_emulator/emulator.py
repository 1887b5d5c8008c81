"""The public face: :class:`GoogleCalendarEmulator`, its server and its test controls."""

from __future__ import annotations

import copy
import ssl
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from tests.google_emulator import writes
from tests.google_emulator.errors import ApiError
from tests.google_emulator.events import Found, find
from tests.google_emulator.faults import FAULTS, Fault, Recorded
from tests.google_emulator.oauth import SCOPE_CALENDAR, Consent
from tests.google_emulator.server import Server
from tests.google_emulator.service import Service
from tests.google_emulator.store import Actor, WriteRecord
from tests.google_emulator.times import format_stamp

__all__ = ["GoogleCalendarEmulator"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GoogleCalendarEmulator:
    """A stateful Google Calendar API v3 (and OAuth token endpoint) on 127.0.0.1.

    The listening socket is bound at construction, so :attr:`endpoint` and friends are known
    at once; :meth:`start` (or ``with``) begins serving.
    """

    def __init__(
        self, *, ssl_context: ssl.SSLContext | None = None, user: str = "me@example.com"
    ) -> None:
        self.clock: Callable[[], datetime] = _utc_now
        self._server = Server(None, ssl_context)
        scheme = "https" if ssl_context is not None else "http"
        self.base = f"{scheme}://127.0.0.1:{self._server.port}"
        self.endpoint = self.base + "/calendar/v3/"
        self.token_uri = self.base + "/token"
        self.auth_uri = self.base + "/o/oauth2/auth"
        self.user = user
        self._service = Service(
            user=user, token_uri=self.token_uri, auth_uri=self.auth_uri, clock=lambda: self.clock()
        )
        self._server.app = self._service

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Begin serving (in a daemon thread)."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close every connection."""
        self._server.stop()

    def __enter__(self) -> GoogleCalendarEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ knobs and records

    @property
    def auth_required(self) -> bool:
        """Whether API calls need a valid bearer token (``False``: any request is the user)."""
        return self._service.auth_required

    @auth_required.setter
    def auth_required(self, value: bool) -> None:
        with self._service.lock:
            self._service.auth_required = value

    @property
    def page_size_cap(self) -> int | None:
        """Pages hold at most this many items, whatever ``maxResults`` says (``None``: no cap)."""
        return self._service.pager.page_size_cap

    @page_size_cap.setter
    def page_size_cap(self, value: int | None) -> None:
        with self._service.lock:
            self._service.pager.page_size_cap = value

    @property
    def expansion_limit(self) -> int:
        """At most this many instances of one series per listing (singleEvents, instances)."""
        return self._service.store.expansion_limit

    @expansion_limit.setter
    def expansion_limit(self, value: int) -> None:
        with self._service.lock:
            self._service.store.expansion_limit = value

    @property
    def requests(self) -> list[Recorded]:
        """Every request so far, in arrival order."""
        return self._service.requests

    def clear_requests(self) -> None:
        """Forget the recorded requests (and event writes)."""
        with self._service.lock:
            self._service.requests.clear()
            self._service.store.writes.clear()

    @property
    def writes(self) -> list[WriteRecord]:
        """Event writes made through the API, each with its ``sendUpdates``."""
        return self._service.store.writes

    @property
    def consents(self) -> list[Consent]:
        """Visits of the consent page, with the scopes asked for."""
        return self._service.oauth.consents

    @property
    def internal_errors(self) -> list[str]:
        """Tracebacks of emulator bugs (answered as 500s); a test can assert this stays empty."""
        return self._service.internal_errors

    def inject(
        self,
        fault: str,
        *,
        times: int = 1,
        method: str | None = None,
        path_contains: str | None = None,
        retry_after: float | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` matching requests with ``fault`` (see :data:`FAULTS`)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._service.lock:
            self._service.faults.append(
                Fault(fault, times, method, path_contains, retry_after, delay)
            )

    # ------------------------------------------------------------------ auth helpers

    def authorized_user_info(
        self, client_id: str = "syncd-test", *, scopes: Iterable[str] = (SCOPE_CALENDAR,)
    ) -> dict[str, Any]:
        """An authorized-user JSON (as google-auth writes it) whose refresh token works here."""
        with self._service.lock:
            return self._service.oauth.authorized_user_info(client_id, self.user, tuple(scopes))

    def client_secrets(self, client_id: str = "syncd-test") -> dict[str, Any]:
        """An "installed" client secrets JSON with auth_uri/token_uri at the emulator."""
        with self._service.lock:
            return self._service.oauth.client_secrets(client_id)

    def service_account_info(
        self, email: str = "syncd@syncd-test.iam.gserviceaccount.com"
    ) -> dict[str, Any]:
        """A service account key JSON (new RSA key) the token endpoint will accept."""
        with self._service.lock:
            return self._service.oauth.service_account_info(email)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far now answers 401."""
        with self._service.lock:
            self._service.oauth.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far now answers ``invalid_grant``."""
        with self._service.lock:
            self._service.oauth.revoke_refresh_tokens()

    # ------------------------------------------------------------------ calendars

    def add_user(self, email: str, *, time_zone: str = "UTC") -> str:
        """Another user, with a primary calendar whose id is ``email``."""
        with self._service.lock:
            return self._service.store.add_user(email, time_zone).id

    def add_calendar(
        self,
        summary: str,
        *,
        calendar_id: str | None = None,
        time_zone: str = "UTC",
        owner: str | None = None,
        hidden: bool = False,
    ) -> str:
        """A new calendar (owned by the default user unless ``owner``; ``hidden`` from the
        owner's calendar list, as the web UI's "Hide from list" does); returns its id."""
        with self._service.lock:
            store = self._service.store
            owner = owner or self.user
            store.users.add(owner)
            calendar = store.add_calendar(
                summary, owner=owner, calendar_id=calendar_id, time_zone=time_zone
            )
            calendar.hidden = hidden
            return calendar.id

    def expire_sync_tokens(self, calendar_id: str | None = None) -> None:
        """Sync tokens of ``calendar_id`` (all calendars when ``None``) now answer 410."""
        with self._service.lock:
            store = self._service.store
            targets = (
                [store.calendar(calendar_id)] if calendar_id else list(store.calendars.values())
            )
            for calendar in targets:
                calendar.epoch += 1

    # ------------------------------------------------------------------ events as another client

    def put_event(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace ``body["id"]`` (generated if absent) as another client.

        Returns the stored resource."""
        with self._service.lock:
            calendar = self._service.store.calendar(calendar_id)
            return copy.deepcopy(writes.put_event(self._service.store, calendar, body))

    def bulk_load(self, calendar_id: str, bodies: Iterable[dict[str, Any]]) -> list[str]:
        """Store many events at once (fast seeding); returns their ids."""
        with self._service.lock:
            store = self._service.store
            calendar = store.calendar(calendar_id)
            stamp = format_stamp(store.now())
            return [writes.put_event(store, calendar, body, stamp)["id"] for body in bodies]

    def patch_event(self, calendar_id: str, event_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Patch an event (or an instance, making an exception) as another client."""
        with self._service.lock:
            store = self._service.store
            calendar = store.calendar(calendar_id)
            actor = Actor(calendar.owner)
            resource = writes.patch_event(
                store,
                calendar,
                event_id,
                patch,
                actor,
                if_match=None,
                send_updates=None,
                control=True,
            )
            return copy.deepcopy(resource)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event (or an instance) as another client; 410 ``ApiError`` if deleted."""
        with self._service.lock:
            store = self._service.store
            calendar = store.calendar(calendar_id)
            writes.delete_event(
                store, calendar, event_id, if_match=None, send_updates=None, control=True
            )

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        """What ``events.get`` would return (a generated instance too), or ``None``."""
        with self._service.lock:
            store = self._service.store
            try:
                found: Found = find(store, store.calendar(calendar_id), event_id)
            except ApiError:
                return None
            return copy.deepcopy(found.resource)

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Every stored event of the calendar, cancelled ones included, in creation order."""
        with self._service.lock:
            calendar = self._service.store.calendar(calendar_id)
            return [copy.deepcopy(entry.resource) for entry in calendar.entries.values()]
