"""A client's record and insight flags, from their verdicts and kept appointments. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from syncd.money import Money
from syncd.policy import day_start
from syncd.rules import PolicySettings
from syncd.verdict import ClientRecord, Flag, Verdict, VerdictKind

__all__ = ["client_record", "reliability"]

_WINDOW = timedelta(days=365)
_HALF_LIFE_DAYS = 90.0
_LATE = (VerdictKind.LATE_CANCELLATION, VerdictKind.LATE_MOVE)
_FEES = (VerdictKind.LATE_CANCELLATION, VerdictKind.LATE_MOVE, VerdictKind.NO_SHOW)
_BANDS = ((0, 12, "mornings"), (12, 17, "afternoons"), (17, 24, "evenings"))
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _weight(at: datetime, now: datetime) -> float:
    return float(0.5 ** ((now - at).total_seconds() / 86400 / _HALF_LIFE_DAYS))


def reliability(
    kept: Sequence[datetime], missed: Sequence[datetime], now: datetime
) -> float | None:
    """The share of appointments kept over the last 365 days, recent ones weighing more
    (half-life 90 days); None when there is nothing in the window."""
    kept_w = sum(_weight(t, now) for t in kept if now - t <= _WINDOW)
    missed_w = sum(_weight(t, now) for t in missed if now - t <= _WINDOW)
    total = kept_w + missed_w
    return None if total == 0 else round(kept_w / total, 3)


def client_record(
    client: str,
    name: str,
    verdicts: Sequence[Verdict],
    kept: Sequence[datetime],
    *,
    policy: PolicySettings,
    now: datetime,
    zone: ZoneInfo,
    currency: str,
) -> ClientRecord:
    """Counts, fees due, reliability, flags and escalations for one client."""
    active = [v for v in verdicts if v.actor.value == "client"]
    count = Counter(v.kind for v in active)
    missed = [
        day_start(v.start, zone)
        for v in active
        if v.kind in (VerdictKind.LATE_CANCELLATION, VerdictKind.NO_SHOW)
    ]
    fees = [v.fee for v in active if v.fee is not None and not v.waived and v.kind in _FEES]
    due = sum(fees[1:], fees[0]) if fees else None
    require_deposit, escalation_flags = _escalations(active, policy, now)
    flags = (*_flags(active, kept, now, zone), *escalation_flags)
    return ClientRecord(
        client=client,
        name=name,
        kept=len(kept),
        cancellations=count[VerdictKind.CANCELLATION],
        late_cancellations=count[VerdictKind.LATE_CANCELLATION],
        moves=count[VerdictKind.MOVE],
        late_moves=count[VerdictKind.LATE_MOVE],
        no_shows=count[VerdictKind.NO_SHOW],
        waivers=sum(1 for v in active if v.waived),
        fees_due=due if due is not None else Money(Decimal(0), currency),
        reliability=reliability(kept, missed, now),
        flags=flags,
        require_deposit=require_deposit,
    )


def _recent(
    verdicts: Sequence[Verdict], kinds: Sequence[VerdictKind], now: datetime, days: int
) -> list[Verdict]:
    return [v for v in verdicts if v.kind in kinds and now - v.decided_at <= timedelta(days=days)]


def _escalations(
    verdicts: Sequence[Verdict],
    policy: PolicySettings,
    now: datetime,
) -> tuple[bool, list[Flag]]:
    flags = []
    for rule in policy.escalations:
        hits = [
            v for v in verdicts if v.kind.value == rule.kind and now - v.decided_at <= rule.within
        ]
        if len(hits) >= rule.after:
            flags.append(
                Flag(
                    "require_deposit",
                    f"{len(hits)} {rule.kind.replace('_', ' ')}s within {rule.within.days} d",
                    "from now on, ask for a deposit before confirming a booking",
                )
            )
    return bool(flags), flags


def _flags(
    verdicts: Sequence[Verdict], kept: Sequence[datetime], now: datetime, zone: ZoneInfo
) -> list[Flag]:
    found: list[Flag] = []
    late = _recent(verdicts, (VerdictKind.LATE_CANCELLATION,), now, 90)
    if len(late) >= 2:
        found.append(
            Flag(
                "repeat_late_canceller",
                f"{len(late)} late cancellations in 90 days",
                "restate the cancellation policy kindly; consider a deposit",
            )
        )
    band = _cluster(verdicts, zone)
    if band:
        found.append(
            Flag(
                "availability",
                f"their changes cluster on {band}: that time may not suit them",
                "offer the times they usually keep instead",
            )
        )
    changes = [v for v in verdicts if v.kind in (VerdictKind.CANCELLATION, *_LATE)]
    in_person = [v for v in changes if not v.remote]
    if len(in_person) >= 2 and not any(v.remote for v in changes):
        found.append(
            Flag(
                "comfort", "in-person appointments get cancelled or moved", "offer a remote session"
            )
        )
    month = now - timedelta(days=30)
    if (
        sum(1 for t in kept if t < month) >= 5
        and len(_recent(verdicts, _LATE, now, 30)) >= 2
        and sum(1 for v in verdicts if v.kind in _LATE and v.decided_at < month) <= 1
    ):
        found.append(
            Flag(
                "expectations",
                "a long-reliable client suddenly changes late",
                "check in on how the sessions are going for them",
            )
        )
    unpaid = [v for v in _recent(verdicts, _FEES, now, 180) if v.fee and not v.waived]
    if len(unpaid) >= 2:
        found.append(
            Flag(
                "cost",
                f"{len(unpaid)} late changes with fees in 180 days",
                "review payment terms with them",
            )
        )
    no_shows = _recent(verdicts, (VerdictKind.NO_SHOW,), now, 180)
    last = max((v.decided_at for v in no_shows), default=None)
    if last is not None and len(no_shows) >= 2 and not any(t > last for t in kept):
        found.append(
            Flag(
                "ghosting",
                f"{len(no_shows)} no-shows without rebooking",
                "consider ending the engagement politely",
            )
        )
    return found


def _cluster(verdicts: Sequence[Verdict], zone: ZoneInfo) -> str | None:
    """A weekday and time band holding at least 60 % of at least 3 changes."""
    changes = [v for v in verdicts if v.kind in (VerdictKind.CANCELLATION, *_LATE)]
    if len(changes) < 3:
        return None
    bands: Counter[str] = Counter()
    for verdict in changes:
        local = day_start(verdict.start, zone).astimezone(zone)
        label = next(name for low, high, name in _BANDS if low <= local.hour < high)
        bands[f"{_DAYS[local.weekday()]} {label}"] += 1
    band, hits = bands.most_common(1)[0]
    return band if hits / len(changes) >= 0.6 else None
