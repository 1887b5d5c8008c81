"""The policy: turn one change of one client appointment into a verdict. Pure.

Inputs are the change, the client, the owner's policy and the client's history; the output is
a :class:`~syncd.verdict.Verdict` or ``None`` (nothing to judge). Nothing here reads a clock,
a file or the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from syncd.model import Change, ChangeKind, Instance, When, format_when
from syncd.money import Money
from syncd.remote import has_marker, is_remote, markers
from syncd.rules import LateMove, OwnerPolicy, PolicySettings, UnknownActor
from syncd.verdict import Actor, Deposit, Verdict, VerdictKind

__all__ = [
    "RULE_VERSION",
    "Appointment",
    "PastVerdict",
    "appointment_clients",
    "attendance_verdict",
    "change_verdict",
    "client_status",
    "has_marker",
    "markers",
    "resolve_deposit",
    "verdict_key",
    "waive",
    "with_actor",
]

RULE_VERSION = "1"
"""Part of every idempotency key: a new rule version may judge an old change again."""

_YEAR = timedelta(days=365)
_CHANGE_KINDS = (
    VerdictKind.CANCELLATION,
    VerdictKind.LATE_CANCELLATION,
    VerdictKind.MOVE,
    VerdictKind.LATE_MOVE,
)


@dataclass(frozen=True, slots=True)
class PastVerdict:
    """What the policy needs to know of a client's earlier verdicts."""

    kind: VerdictKind
    decided_at: datetime
    waived: bool
    waive_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    """The judged appointment: where it is and who it is with."""

    calendar: str
    client: str
    client_name: str
    instance: Instance


def appointment_clients(instance: Instance, owner: frozenset[str], rules: OwnerPolicy) -> list[str]:
    """Canonical emails of the clients on an appointment: attendees (and an organizer) who
    are not the owner. Empty for the owner's own events."""
    people = [email for email, _ in instance.attendees]
    if instance.organizer:
        people.append(instance.organizer)
    found = {rules.canonical(p) for p in people if p and p.lower() not in owner}
    return sorted(found)


def verdict_key(calendar: str, uid: str, instance: str | None, family: str, detail: str) -> str:
    """The idempotency key of a verdict: the same appointment and change give the same key."""
    text = "|".join((RULE_VERSION, calendar, uid, instance or "", family, detail))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _instant(value: When, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, datetime.min.time(), tzinfo=zone).astimezone(UTC)


def _notice_hours(start: When, changed_at: datetime, zone: ZoneInfo) -> float:
    # Not rounded: the window comparison must see one second less than the window as late.
    return (_instant(start, zone) - changed_at).total_seconds() / 3600


def _hours_text(hours: float | None) -> str:
    return f"{round(hours or 0, 2):g}"


def client_status(instance: Instance | None, client: str, rules: OwnerPolicy) -> str | None:
    """The client's PARTSTAT on an instance (aliases count as the client)."""
    if instance is None:
        return None
    for email, status in instance.attendees:
        if rules.canonical(email) == client:
            return status
    return None


def _attribute(
    change: Change,
    client: str,
    rules: OwnerPolicy,
    policy: PolicySettings,
) -> tuple[Actor, str]:
    """Who made a change, and the evidence."""
    if (
        client_status(change.after, client, rules) == "DECLINED"
        and client_status(change.before, client, rules) != "DECLINED"
    ):
        return Actor.CLIENT, "the client declined"
    subject = change.after or change.before
    assert subject is not None
    if subject.organizer and rules.canonical(subject.organizer) == client:
        return Actor.CLIENT, "the client is the organizer"
    for rule in policy.actor_rules:
        for instance in (change.after, change.before):
            if instance and rule.contains.lower() in (
                f"{instance.summary}\n{instance.description}".lower()
            ):
                return Actor(rule.actor), f"the event says {rule.contains!r}"
    if policy.unknown_actor is UnknownActor.CLIENT:
        return Actor.CLIENT, "unknown actor, counted as the client's by policy"
    if policy.unknown_actor is UnknownActor.OWNER:
        return Actor.OWNER, "unknown actor, counted as the owner's by policy"
    return Actor.UNKNOWN, "nothing shows who made the change; the owner is asked"


def _is_client_cancellation(change: Change, client: str, rules: OwnerPolicy) -> bool:
    if change.kind is ChangeKind.CANCELLED:
        return True
    return change.kind is ChangeKind.RESPONSE_CHANGED and (
        client_status(change.after, client, rules) == "DECLINED"
    )


def change_verdict(
    change: Change,
    appointment: Appointment,
    *,
    rules: OwnerPolicy,
    zone: ZoneInfo,
    changed_at: datetime,
    now: datetime,
    history: Sequence[PastVerdict],
) -> Verdict | None:
    """The verdict on a cancellation or move of a client appointment; None for other changes."""
    client = appointment.client
    policy = rules.policy_for(client)
    if _is_client_cancellation(change, client, rules):
        family = "cancel"
    elif change.kind is ChangeKind.MOVED:
        family = "move"
    else:
        return None
    before = change.before or appointment.instance
    actor, evidence = _attribute(change, client, rules, policy)
    if change.kind is ChangeKind.RESPONSE_CHANGED:
        actor, evidence = Actor.CLIENT, "the client declined"
    detail = format_when(before.start) + (
        f"->{format_when(change.after.start)}" if family == "move" and change.after else ""
    )
    base = Verdict(
        key=verdict_key(appointment.calendar, change.uid, _rid(change), family, detail),
        kind=VerdictKind.CANCELLATION if family == "cancel" else VerdictKind.MOVE,
        calendar=appointment.calendar,
        uid=change.uid,
        instance=_rid(change),
        client=client,
        client_name=appointment.client_name,
        start=before.start,
        end=before.end,
        summary=before.summary,
        decided_at=now,
        rule="",
        actor=actor,
        actor_evidence=evidence,
        notice_hours=_notice_hours(before.start, changed_at, zone),
        new_start=change.after.start if family == "move" and change.after else None,
        important=has_marker(before, policy.important_markers) is not None
        or has_marker(change.after, policy.important_markers) is not None,
        remote=is_remote(before, policy),
    )
    judged = _judge(base, rules, policy, zone, history)
    marker = has_marker(change.after, policy.waive_markers) or has_marker(
        change.before, policy.waive_markers
    )
    # The owner's marker is the reason kept, even where the grace would have forgiven the fee
    # (a waived emergency must not use up the client's grace); a forfeited deposit is waivable
    # as well, as with a marker added later.
    waivable = judged.fee is not None or judged.deposit is Deposit.FORFEITED
    if marker and waivable and (not judged.waived or _is_grace(judged.waive_reason)):
        judged = waive(judged, f"marked '{marker}' on the event")
    return judged


def _rid(change: Change) -> str | None:
    return None if change.recurrence_id is None else format_when(change.recurrence_id)


def _judge(
    base: Verdict,
    rules: OwnerPolicy,
    policy: PolicySettings,
    zone: ZoneInfo,
    history: Sequence[PastVerdict],
) -> Verdict:
    """Apply the policy to a verdict whose facts (actor, notice, times) are set."""
    if base.actor is Actor.OWNER:
        return replace(base, rule="changed by the owner: no fee")
    price = rules.price_for(base.client)
    deposit = None if policy.deposit.is_zero else policy.deposit.of(price)
    notice = timedelta(hours=base.notice_hours or 0)
    if base.kind is VerdictKind.CANCELLATION:
        if notice < policy.late_cancel_window:
            return _late_cancellation(base, policy, price, deposit, history)
        return _timely_change(base, policy, deposit, zone, "cancellation")
    if notice < policy.late_move_window:
        return _late_move(base, policy, price, deposit, zone)
    return _timely_change(base, policy, deposit, zone, "move")


def _window(policy: PolicySettings, attr: str) -> str:
    hours = getattr(policy, attr).total_seconds() / 3600
    return f"{hours:g} h"


def _late_cancellation(
    base: Verdict,
    policy: PolicySettings,
    price: Money,
    deposit: Money | None,
    history: Sequence[PastVerdict],
) -> Verdict:
    rule = (
        f"cancelled with {_hours_text(base.notice_hours)} h notice, less than the "
        f"{_window(policy, 'late_cancel_window')} window: late cancellation fee "
        f"{_fee_text(policy.late_cancel_fee.percent)}"
    )
    verdict = replace(
        base,
        kind=VerdictKind.LATE_CANCELLATION,
        rule=rule,
        fee=None if base.awaits_owner else policy.late_cancel_fee.of(price),
        deposit=Deposit.FORFEITED if deposit and not base.awaits_owner else None,
        deposit_amount=deposit,
    )
    if base.awaits_owner:
        return replace(verdict, rule=rule + "; no fee until the owner says who cancelled")
    forgiven = _grace_used(base.decided_at, history)
    if forgiven < policy.grace_late_cancels:
        return waive(
            verdict,
            f"grace: {forgiven + 1} of {policy.grace_late_cancels} late "
            "cancellations forgiven per 365 days",
        )
    return verdict


def _fee_text(percent: object) -> str:
    return f"({percent:g}% of the price)" if percent is not None else "(flat)"


def _grace_used(now: datetime, history: Sequence[PastVerdict]) -> int:
    return sum(
        1
        for past in history
        if past.kind is VerdictKind.LATE_CANCELLATION
        and now - past.decided_at < _YEAR
        and _is_grace(past.waive_reason)
    )


def _is_grace(reason: str | None) -> bool:
    return reason is not None and reason.startswith("grace")


def _late_move(
    base: Verdict, policy: PolicySettings, price: Money, deposit: Money | None, zone: ZoneInfo
) -> Verdict:
    lead = (
        f"moved with {_hours_text(base.notice_hours)} h notice, less than the "
        f"{_window(policy, 'late_move_window')} window"
    )
    verdict = replace(base, kind=VerdictKind.LATE_MOVE)
    if base.awaits_owner:
        return replace(verdict, rule=lead + "; no fee until the owner says who moved it")
    if policy.late_move is LateMove.FEE:
        return replace(
            verdict,
            rule=lead + ": late move fee, as for a late cancellation",
            fee=policy.late_cancel_fee.of(price),
        )
    if policy.late_move is LateMove.DEPOSIT_RULE and deposit is not None:
        return _deposit_by_new_start(replace(verdict, rule=lead), policy, deposit, zone)
    return replace(verdict, rule=lead + ": late moves are free under this policy")


def _timely_change(
    base: Verdict, policy: PolicySettings, deposit: Money | None, zone: ZoneInfo, what: str
) -> Verdict:
    rule = (
        f"{what} with {_hours_text(base.notice_hours)} h notice, at least the "
        f"{_window(policy, 'late_cancel_window' if what == 'cancellation' else 'late_move_window')}"
        " window: no fee"
    )
    verdict = replace(base, rule=rule)
    if deposit is None or base.awaits_owner:
        return verdict
    if what == "move":
        return _deposit_by_new_start(verdict, policy, deposit, zone)
    deadline = _instant(base.start, zone) + policy.rebook_within
    return replace(
        verdict,
        deposit=Deposit.PENDING,
        deposit_amount=deposit,
        deposit_deadline=deadline,
        rule=rule + f"; the deposit is kept as credit if a new appointment starting within "
        f"{policy.rebook_within.days} d of the original is booked",
    )


def _deposit_by_new_start(
    verdict: Verdict, policy: PolicySettings, deposit: Money, zone: ZoneInfo
) -> Verdict:
    assert verdict.new_start is not None
    gap = abs(_instant(verdict.new_start, zone) - _instant(verdict.start, zone))
    within = gap <= policy.rebook_within
    outcome = Deposit.KEPT_AS_CREDIT if within else Deposit.FORFEITED
    because = "within" if within else "more than"
    return replace(
        verdict,
        deposit=outcome,
        deposit_amount=deposit,
        rule=verdict.rule + f"; the new time is {because} {policy.rebook_within.days} d of the "
        f"original: deposit {outcome.value.replace('_', ' ')}",
    )


def resolve_deposit(
    verdict: Verdict, *, rebooked_start: When | None, now: datetime, zone: ZoneInfo
) -> Verdict | None:
    """Resolve a pending deposit: kept as credit when the client's new appointment starts
    within the window of the original start, forfeited once the deadline has passed."""
    if verdict.deposit is not Deposit.PENDING or verdict.deposit_deadline is None:
        return None
    window = verdict.deposit_deadline - _instant(verdict.start, zone)
    if rebooked_start is not None:
        if abs(_instant(rebooked_start, zone) - _instant(verdict.start, zone)) <= window:
            return replace(
                verdict,
                deposit=Deposit.KEPT_AS_CREDIT,
                rule=verdict.rule
                + f"; rebooked for {format_when(rebooked_start)}: deposit kept as credit",
            )
        return None
    if now >= verdict.deposit_deadline:
        return replace(
            verdict,
            deposit=Deposit.FORFEITED,
            rule=verdict.rule + "; no new appointment in time: deposit forfeited",
        )
    return None


def attendance_verdict(
    appointment: Appointment,
    *,
    rules: OwnerPolicy,
    now: datetime,
    zone: ZoneInfo,
    inferred: bool,
) -> Verdict | None:
    """After an appointment ended: the owner's no-show or attended marker decides; without a
    marker, ``inferred`` asks for a possible no-show (the client never accepted or declined).
    None when there is nothing to say (the appointment was simply kept)."""
    instance, client = appointment.instance, appointment.client
    policy = rules.policy_for(client)
    if _instant(instance.end, zone) > now:
        return None
    no_show = has_marker(instance, policy.no_show_markers)
    attended = has_marker(instance, policy.attended_markers)
    rid = None if instance.recurrence_id is None else format_when(instance.recurrence_id)
    base = Verdict(
        key=verdict_key(
            appointment.calendar, instance.uid, rid, "attendance", format_when(instance.start)
        ),
        kind=VerdictKind.ATTENDED,
        calendar=appointment.calendar,
        uid=instance.uid,
        instance=rid,
        client=client,
        client_name=appointment.client_name,
        start=instance.start,
        end=instance.end,
        summary=instance.summary,
        decided_at=now,
        rule="",
        actor=Actor.OWNER,
        actor_evidence="",
    )
    if no_show:
        price = rules.price_for(client)
        deposit = None if policy.deposit.is_zero else policy.deposit.of(price)
        verdict = replace(
            base,
            kind=VerdictKind.NO_SHOW,
            actor=Actor.CLIENT,
            actor_evidence=f"the owner marked '{no_show}'",
            rule=f"no-show fee {_fee_text(policy.no_show_fee.percent)}",
            fee=policy.no_show_fee.of(price),
            deposit=Deposit.FORFEITED if deposit else None,
            deposit_amount=deposit,
        )
        waiver = has_marker(instance, policy.waive_markers)
        return waive(verdict, f"marked '{waiver}' on the event") if waiver else verdict
    if attended:
        return replace(
            base, actor_evidence=f"the owner marked '{attended}'", rule="attended: no fee"
        )
    if inferred:
        return replace(
            base,
            kind=VerdictKind.POSSIBLE_NO_SHOW,
            actor=Actor.UNKNOWN,
            actor_evidence="the client never accepted or declined the appointment",
            rule="possible no-show: please confirm with a 'no-show' or 'attended' marker; "
            "no fee until then",
        )
    return None


def waive(verdict: Verdict, reason: str) -> Verdict:
    """The same verdict with its fee waived for ``reason`` (an owner decision or the grace)."""
    return replace(verdict, waived=True, waive_reason=reason)


def with_actor(
    verdict: Verdict,
    actor: Actor,
    evidence: str,
    *,
    rules: OwnerPolicy,
    zone: ZoneInfo,
    history: Sequence[PastVerdict],
) -> Verdict:
    """Judge a verdict again once the owner said who made the change. Only cancellations and
    moves are judged by who made them; other verdicts come back unchanged."""
    if verdict.kind not in _CHANGE_KINDS:
        return verdict
    policy = rules.policy_for(verdict.client)
    base = replace(
        verdict,
        actor=actor,
        actor_evidence=evidence,
        fee=None,
        deposit=None,
        deposit_amount=None,
        deposit_deadline=None,
        waived=False,
        waive_reason=None,
        kind=VerdictKind.CANCELLATION
        if verdict.kind in (VerdictKind.CANCELLATION, VerdictKind.LATE_CANCELLATION)
        else VerdictKind.MOVE,
    )
    return _judge(base, rules, policy, zone, history)


def day_start(value: When, zone: ZoneInfo) -> datetime:
    """The instant a date or datetime stands for (a date: midnight in ``zone``)."""
    return _instant(value, zone)
