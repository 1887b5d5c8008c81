"""The SQLite store's queries for the two reminders: standing readiness notes, due and open
payment-terms reviews, a client's next appointments (the appointments index) and the one-time
check of a calendar's stored appointments. Mixed into :class:`syncd.store.SQLiteStore`."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd.reminder_rows import (
    READINESS_COLUMNS,
    REVIEW_COLUMNS,
    NoteStatus,
    ReadinessNote,
    Review,
    readiness_from_row,
    review_from_row,
)

__all__ = ["ReminderQueries"]

_CHUNK = 500


class ReminderQueries:
    """Reminder reads over the store's connection (see :class:`syncd.store_api.Store`).

    Queries are built from column lists and ``?`` placeholders only (ruff S608 is off here)."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    def readiness_notes(self, calendar: str) -> list[ReadinessNote]:
        """See :meth:`Store.readiness_notes`."""
        rows = self._query(
            f"SELECT {READINESS_COLUMNS} FROM readiness WHERE calendar = ? AND status = ?",
            (calendar, NoteStatus.NOTED.value),
        )
        return [readiness_from_row(r) for r in rows]

    def due_reviews(self, basis_until: datetime) -> list[Review]:
        """See :meth:`Store.due_reviews`."""
        rows = self._query(
            f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE reminder_key IS NULL"
            " AND COALESCE(reviewed_at, since) <= ? ORDER BY client",
            (basis_until.astimezone(UTC).isoformat(),),
        )
        return [review_from_row(r) for r in rows]

    def review_by_key(self, key: str) -> Review | None:
        """See :meth:`Store.review_by_key`."""
        sql = f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE reminder_key = ?"
        rows = self._query(sql, (key,))
        return review_from_row(rows[0]) if rows else None

    def reviews_of(self, clients: Collection[str]) -> dict[str, Review]:
        """See :meth:`Store.reviews_of`."""
        wanted, found = list(clients), dict[str, Review]()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE client IN ({marks})",
                chunk,
            )
            found.update((r[0], review_from_row(r)) for r in rows)
        return found

    def reviews_over(self, calendar: str, uids: Collection[str]) -> list[Review]:
        """See :meth:`Store.reviews_over`."""
        wanted, found = list(uids), list[Review]()
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE reminder_calendar = ?"
                f" AND reminder_uid IN ({marks})",
                (calendar, *chunk),
            )
            found.extend(review_from_row(r) for r in rows)
        return found

    def claimed_reviews(self, clients: Collection[str]) -> set[str]:
        """See :meth:`Store.claimed_reviews`."""
        return {c for c, r in self.reviews_of(clients).items() if r.reminder_key is not None}

    def next_appointments(
        self,
        emails: Collection[str],
        after: datetime,
        calendars: Collection[str],
        skip: Mapping[str, Collection[str]],
        limit: int = 20,
    ) -> list[tuple[str, str, str, str]]:
        """See :meth:`Store.next_appointments`."""
        if not emails or not calendars:
            return []
        # A day early: an all-day date sorts before that day's times; the caller checks.
        since = (after - timedelta(days=1)).astimezone(UTC).date().isoformat()
        people = ",".join("?" * len(emails))
        names = ",".join("?" * len(calendars))
        rows = self._query(
            "SELECT calendar, href, uid, instance FROM appointments"
            f" WHERE email IN ({people}) AND calendar IN ({names}) AND start >= ?"
            " ORDER BY start LIMIT ?",
            (*emails, *calendars, since, limit),
        )
        return [(c, h, u, i) for c, h, u, i in rows if h not in skip.get(c, ())]

    def rearm_pending(self, calendar: str) -> bool:
        """See :meth:`Store.rearm_pending`."""
        return bool(self._query("SELECT 1 FROM meta WHERE key = ?", (f"rearm|{calendar}",)))
