"""The owner's policy settings, typed: what ``[policy]``, ``[pricing]``, ``[[clients]]`` and
``[rebooking]`` parse into (see :mod:`syncd.config`). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from syncd.money import FeeSpec, Money

__all__ = [
    "ActorRule",
    "ClientSettings",
    "Escalation",
    "LateMove",
    "OwnerPolicy",
    "PolicySettings",
    "Pricing",
    "RebookingSettings",
    "UnknownActor",
]


class LateMove(StrEnum):
    """What a late move costs."""

    FEE = "fee"
    DEPOSIT_RULE = "deposit_rule"
    FREE = "free"


class UnknownActor(StrEnum):
    """How a change by an unknown actor is read."""

    ASK = "ask"
    CLIENT = "client"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class Escalation:
    """``after`` verdicts of ``kind`` within ``within`` trigger ``action`` for that client."""

    after: int
    kind: str
    within: timedelta
    action: str = "require_deposit"


@dataclass(frozen=True, slots=True)
class ActorRule:
    """Text that, found in an event's summary or description, names who made a change
    (a booking tool's "Cancelled by invitee", say)."""

    contains: str
    actor: str  # "client" or "owner"


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """``[policy]``: one owner's cancellation policy (clients may override single keys)."""

    late_cancel_window: timedelta = timedelta(hours=48)
    late_move_window: timedelta = timedelta(hours=48)
    late_move: LateMove = LateMove.FEE
    # FeeSpec and Money are frozen value objects, so one shared default instance is safe.
    late_cancel_fee: FeeSpec = FeeSpec(percent=Decimal(50))  # noqa: RUF009
    no_show_fee: FeeSpec = FeeSpec(percent=Decimal(100))  # noqa: RUF009
    deposit: FeeSpec = FeeSpec(percent=Decimal(0))  # noqa: RUF009
    rebook_within: timedelta = timedelta(days=3)
    grace_late_cancels: int = 0
    unknown_actor: UnknownActor = UnknownActor.ASK
    no_show_grace: timedelta = timedelta(minutes=30)
    no_show_markers: tuple[str, ...] = ("no-show", "noshow")
    attended_markers: tuple[str, ...] = ("attended",)
    waive_markers: tuple[str, ...] = ("waive", "emergency")
    important_markers: tuple[str, ...] = ("important", "deadline")
    escalations: tuple[Escalation, ...] = ()
    actor_rules: tuple[ActorRule, ...] = ()
    review_every: timedelta = timedelta(days=182)
    reviewed_markers: tuple[str, ...] = ("reviewed",)
    remote_markers: tuple[str, ...] = ("remote", "online", "video")
    readiness_lead: timedelta = timedelta(hours=48)
    meeting_link_hosts: tuple[str, ...] = ()
    """Conferencing hosts whose links count as a meeting link, besides the known ones."""


@dataclass(frozen=True, slots=True)
class Pricing:
    """``[pricing]``: the currency and the price of an appointment without a client rate."""

    currency: str = "EUR"
    # Money is a frozen value object, so one shared default instance is safe.
    default_rate: Money = Money(Decimal(100), "EUR")  # noqa: RUF009


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """One ``[[clients]]`` entry: who they are, their price, their policy (overrides merged)."""

    email: str
    aliases: tuple[str, ...] = ()
    name: str = ""
    rate: Money | None = None
    policy: PolicySettings | None = None


@dataclass(frozen=True, slots=True)
class RebookingSettings:
    """``[rebooking]``: how many free slots to suggest and how to search for them."""

    count: int = 3
    buffer: timedelta = timedelta(minutes=15)
    search_days: int = 7
    holds: bool = False
    granularity: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class OwnerPolicy:
    """Everything the policy engine needs from the configuration."""

    policy: PolicySettings = PolicySettings()
    pricing: Pricing = Pricing()
    clients: tuple[ClientSettings, ...] = ()
    rebooking: RebookingSettings = RebookingSettings()
    _by_email: dict[str, ClientSettings] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for client in self.clients:
            for email in (client.email, *client.aliases):
                self._by_email[email.lower()] = client

    def client(self, email: str) -> ClientSettings | None:
        """The configured client for an address or one of its aliases."""
        return self._by_email.get(email.lower())

    def canonical(self, email: str) -> str:
        """The client's main address (aliases map to it); unknown addresses stay as they are."""
        known = self.client(email)
        return known.email.lower() if known else email.lower()

    def policy_for(self, email: str) -> PolicySettings:
        """The policy that applies to a client: theirs if they have overrides, else the owner's."""
        known = self.client(email)
        return known.policy if known and known.policy else self.policy

    def price_for(self, email: str) -> Money:
        """The price of one appointment with this client."""
        known = self.client(email)
        return known.rate if known and known.rate else self.pricing.default_rate

    def name_for(self, email: str) -> str:
        """A display name: the configured one, else the address."""
        known = self.client(email)
        return known.name if known and known.name else email
