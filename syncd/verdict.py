"""Verdicts: the policy's reading of one change of one client appointment. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from syncd.model import When
from syncd.money import Money

__all__ = ["Actor", "ClientRecord", "Deposit", "Flag", "Verdict", "VerdictKind"]


class Actor(StrEnum):
    """Who made a change."""

    CLIENT = "client"
    OWNER = "owner"
    UNKNOWN = "unknown"


class VerdictKind(StrEnum):
    """The kinds of verdict."""

    LATE_CANCELLATION = "late_cancellation"
    CANCELLATION = "cancellation"
    LATE_MOVE = "late_move"
    MOVE = "move"
    NO_SHOW = "no_show"
    POSSIBLE_NO_SHOW = "possible_no_show"
    ATTENDED = "attended"


class Deposit(StrEnum):
    """What happens to a prepaid deposit."""

    KEPT_AS_CREDIT = "kept_as_credit"
    FORFEITED = "forfeited"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Flag:
    """An insight about a client: the pattern, its likely cause and a suggested action."""

    code: str
    cause: str
    action: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verdict. ``key`` is its idempotency key: the same appointment and change always
    give the same key, so a verdict is never issued twice."""

    key: str
    kind: VerdictKind
    calendar: str
    uid: str
    instance: str | None
    """The original start of an occurrence of a series (UTC text), else None."""
    client: str
    """The client's canonical email."""
    client_name: str
    start: When
    end: When
    summary: str
    decided_at: datetime
    rule: str
    actor: Actor
    actor_evidence: str
    notice_hours: float | None = None
    new_start: When | None = None
    fee: Money | None = None
    deposit: Deposit | None = None
    deposit_amount: Money | None = None
    deposit_deadline: datetime | None = None
    waived: bool = False
    waive_reason: str | None = None
    important: bool = False
    remote: bool = False
    flags: tuple[Flag, ...] = field(default_factory=tuple)

    @property
    def awaits_owner(self) -> bool:
        """True when the owner must say who made the change before a fee applies."""
        return self.actor is Actor.UNKNOWN


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A client's record as notes and reports show it."""

    client: str
    name: str
    kept: int = 0
    cancellations: int = 0
    late_cancellations: int = 0
    moves: int = 0
    late_moves: int = 0
    no_shows: int = 0
    waivers: int = 0
    fees_due: Money | None = None
    reliability: float | None = None
    """Share of appointments kept over the rolling window, recent ones weighing more; None
    before the first appointment."""
    flags: tuple[Flag, ...] = ()
    require_deposit: bool = False
