"""Unit tests for ``syncd.policy``: the pure policy pinned against docs/domain.md."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from syncd.model import Change, ChangeKind, Instance, Status, When
from syncd.money import FeeSpec, Money
from syncd.policy import (
    Appointment,
    PastVerdict,
    appointment_clients,
    attendance_verdict,
    change_verdict,
    has_marker,
    markers,
    resolve_deposit,
    verdict_key,
    with_actor,
)
from syncd.rules import (
    ActorRule,
    ClientSettings,
    LateMove,
    OwnerPolicy,
    PolicySettings,
    Pricing,
    UnknownActor,
)
from syncd.verdict import Actor, Deposit, Verdict, VerdictKind

BERLIN = ZoneInfo("Europe/Berlin")
ME = "me@example.com"
OWNER = frozenset({ME})
JANE = "jane@example.com"
JANE_ALIAS = "jane.doe@work.example"
BOB = "bob@example.com"  # not configured: default rate, owner's policy
START = datetime(2026, 3, 12, 14, 0, tzinfo=UTC)  # Thursday 15:00 in Berlin
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
JANE_SETTINGS = ClientSettings(
    email=JANE, aliases=(JANE_ALIAS,), name="Jane Doe", rate=Money(Decimal(120), "EUR")
)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def rules(
    *, clients: tuple[ClientSettings, ...] = (JANE_SETTINGS,), **policy: object
) -> OwnerPolicy:
    return OwnerPolicy(policy=PolicySettings(**policy), clients=clients)  # type: ignore[arg-type]


def appt(
    start: When = START,
    *,
    end: When | None = None,
    client: str = JANE,
    partstat: str = "ACCEPTED",
    organizer: str | None = None,
    summary: str = "Coaching",
    categories: tuple[str, ...] = (),
    description: str = "",
    location: str = "",
    recurrence_id: When | None = None,
    status: Status = Status.CONFIRMED,
) -> Instance:
    """A client appointment; by default the client organized it, so the client is the actor."""
    if end is None:
        end = start + HOUR if isinstance(start, datetime) else start + DAY
    return Instance(
        uid="u1",
        recurrence_id=recurrence_id,
        start=start,
        end=end,
        status=status,
        summary=summary,
        location=location,
        description=description,
        organizer=client if organizer is None else organizer,
        attendees=tuple(sorted({(client, partstat), (ME, "ACCEPTED")})),
        categories=categories,
    )


def cancel(before: Instance, after: Instance | None = None) -> Change:
    return Change(ChangeKind.CANCELLED, before.uid, before.recurrence_id, before, after)


def move(before: Instance, new_start: When) -> Change:
    after = replace(before, start=new_start, end=new_start + (before.end - before.start))  # type: ignore[operator]
    return Change(ChangeKind.MOVED, before.uid, before.recurrence_id, before, after)


def decline(before: Instance, client: str = JANE) -> Change:
    attendees = tuple(
        (email, "DECLINED" if email == client else status) for email, status in before.attendees
    )
    after = replace(before, attendees=attendees)
    return Change(ChangeKind.RESPONSE_CHANGED, before.uid, before.recurrence_id, before, after)


def judge(
    change: Change,
    *,
    notice: timedelta = 24 * HOUR,
    policy: OwnerPolicy | None = None,
    client: str = JANE,
    history: tuple[PastVerdict, ...] = (),
    zone: ZoneInfo = BERLIN,
    changed_at: datetime | None = None,
    now: datetime | None = None,
) -> Verdict:
    verdict = judge_or_none(
        change,
        notice=notice,
        policy=policy,
        client=client,
        history=history,
        zone=zone,
        changed_at=changed_at,
        now=now,
    )
    assert verdict is not None
    return verdict


def judge_or_none(
    change: Change,
    *,
    notice: timedelta = 24 * HOUR,
    policy: OwnerPolicy | None = None,
    client: str = JANE,
    history: tuple[PastVerdict, ...] = (),
    zone: ZoneInfo = BERLIN,
    changed_at: datetime | None = None,
    now: datetime | None = None,
) -> Verdict | None:
    subject = change.before or change.after
    assert subject is not None
    if changed_at is None:
        assert isinstance(subject.start, datetime)
        changed_at = subject.start - notice
    return change_verdict(
        change,
        Appointment("work", client, "Jane Doe", subject),
        rules=policy or rules(),
        zone=zone,
        changed_at=changed_at,
        now=now or changed_at,
        history=history,
    )


def attend(
    instance: Instance, *, now: datetime, policy: OwnerPolicy | None = None, inferred: bool = False
) -> Verdict | None:
    return attendance_verdict(
        Appointment("work", JANE, "Jane Doe", instance),
        rules=policy or rules(),
        now=now,
        zone=BERLIN,
        inferred=inferred,
    )


def grace_used(days_ago: float) -> PastVerdict:
    return PastVerdict(
        VerdictKind.LATE_CANCELLATION,
        START - 24 * HOUR - timedelta(days=days_ago),
        True,
        "grace: 1 of 1 late cancellations forgiven per 365 days",
    )


# --- windows and their boundaries -------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "notice", "kind"),
    [
        pytest.param(48 * HOUR, 48 * HOUR, VerdictKind.CANCELLATION, id="exactly-48h-not-late"),
        pytest.param(
            48 * HOUR, 48 * HOUR - SECOND, VerdictKind.LATE_CANCELLATION, id="48h-minus-1s-late"
        ),
        pytest.param(48 * HOUR, 72 * HOUR, VerdictKind.CANCELLATION, id="72h-timely"),
        pytest.param(48 * HOUR, timedelta(0), VerdictKind.LATE_CANCELLATION, id="at-start-late"),
        pytest.param(48 * HOUR, -HOUR, VerdictKind.LATE_CANCELLATION, id="after-start-late"),
        pytest.param(24 * HOUR, 30 * HOUR, VerdictKind.CANCELLATION, id="24h-window-30h-timely"),
        pytest.param(24 * HOUR, 24 * HOUR, VerdictKind.CANCELLATION, id="exactly-24h-not-late"),
        pytest.param(
            24 * HOUR, 24 * HOUR - SECOND, VerdictKind.LATE_CANCELLATION, id="24h-minus-1s-late"
        ),
        pytest.param(
            timedelta(minutes=10),
            timedelta(minutes=10),
            VerdictKind.CANCELLATION,
            id="exactly-10min-not-late",
        ),
    ],
)
def test_late_cancel_window(window: timedelta, notice: timedelta, kind: VerdictKind) -> None:
    """A client cancellation with less notice than late_cancel_window is late; equal is not."""
    policy = rules(late_cancel_window=window, late_move_window=window)
    assert judge(cancel(appt()), notice=notice, policy=policy).kind is kind


@pytest.mark.parametrize(
    ("notice", "kind"),
    [
        pytest.param(24 * HOUR, VerdictKind.MOVE, id="exactly-24h-not-late"),
        pytest.param(24 * HOUR - SECOND, VerdictKind.LATE_MOVE, id="24h-minus-1s-late"),
        pytest.param(30 * HOUR, VerdictKind.MOVE, id="30h-timely-though-cancel-window-48h"),
        pytest.param(-HOUR, VerdictKind.LATE_MOVE, id="after-start-late"),
    ],
)
def test_late_move_window(notice: timedelta, kind: VerdictKind) -> None:
    """A move is judged against late_move_window, not the cancellation window."""
    policy = rules(late_cancel_window=48 * HOUR, late_move_window=24 * HOUR)
    assert judge(move(appt(), START + DAY), notice=notice, policy=policy).kind is kind


def test_cancel_window_is_independent_of_move_window() -> None:
    """With a 24 h move window, a cancellation with 30 h notice is still late under 48 h."""
    policy = rules(late_cancel_window=48 * HOUR, late_move_window=24 * HOUR)
    verdict = judge(cancel(appt()), notice=30 * HOUR, policy=policy)
    assert verdict.kind is VerdictKind.LATE_CANCELLATION


@pytest.mark.parametrize(
    ("notice", "hours"),
    [
        pytest.param(22 * HOUR, 22.0, id="whole-hours"),
        pytest.param(-2 * HOUR, -2.0, id="negative-after-start"),
        pytest.param(90 * timedelta(minutes=1), 1.5, id="ninety-minutes"),
    ],
)
def test_notice_hours(notice: timedelta, hours: float) -> None:
    """notice_hours is the start minus the time of the change, in hours."""
    assert judge(cancel(appt()), notice=notice).notice_hours == pytest.approx(hours)


@pytest.mark.parametrize(
    ("zone", "changed_at", "hours"),
    [
        # Berlin midnight of 10 March is 23:00Z on 9 March.
        pytest.param(BERLIN, datetime(2026, 3, 8, 23, 0, tzinfo=UTC), 24.0, id="berlin-midnight"),
        pytest.param(
            ZoneInfo("UTC"), datetime(2026, 3, 8, 23, 0, tzinfo=UTC), 25.0, id="utc-midnight"
        ),
        pytest.param(
            ZoneInfo("America/New_York"),
            datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
            24.0,
            id="new-york-midnight",
        ),
    ],
)
def test_all_day_notice_from_local_midnight(
    zone: ZoneInfo, changed_at: datetime, hours: float
) -> None:
    """An all-day appointment starts at local midnight in the owner's zone."""
    verdict = judge(cancel(appt(date(2026, 3, 10))), zone=zone, changed_at=changed_at)
    assert verdict.notice_hours == pytest.approx(hours)


@pytest.mark.parametrize(
    ("hours_before_midnight", "kind"),
    [
        pytest.param(48, VerdictKind.CANCELLATION, id="48h-before-local-midnight"),
        pytest.param(47, VerdictKind.LATE_CANCELLATION, id="47h-before-local-midnight"),
    ],
)
def test_all_day_window(hours_before_midnight: int, kind: VerdictKind) -> None:
    """An all-day appointment's window counts back from local midnight, not UTC midnight."""
    berlin_midnight = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
    changed_at = berlin_midnight - hours_before_midnight * HOUR
    assert judge(cancel(appt(date(2026, 3, 10))), changed_at=changed_at).kind is kind


# --- late moves --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("late_move", "deposit", "new_start", "fee", "outcome"),
    [
        pytest.param(LateMove.FEE, "0", START + DAY, eur("60.00"), None, id="fee"),
        pytest.param(
            LateMove.DEPOSIT_RULE,
            "20",
            START + 3 * DAY,
            None,
            Deposit.KEPT_AS_CREDIT,
            id="deposit-rule-within-3d",
        ),
        pytest.param(
            LateMove.DEPOSIT_RULE,
            "20",
            START + 3 * DAY + SECOND,
            None,
            Deposit.FORFEITED,
            id="deposit-rule-beyond-3d",
        ),
        pytest.param(
            LateMove.DEPOSIT_RULE, "0", START + DAY, None, None, id="deposit-rule-no-deposit"
        ),
        pytest.param(LateMove.FREE, "20", START + DAY, None, None, id="free"),
    ],
)
def test_late_move_setting(
    late_move: LateMove,
    deposit: str,
    new_start: datetime,
    fee: Money | None,
    outcome: Deposit | None,
) -> None:
    """late_move = fee charges the late cancel fee, deposit_rule applies the rebooking rule,
    free costs nothing."""
    policy = rules(late_move=late_move, deposit=FeeSpec(percent=Decimal(deposit)))
    verdict = judge(move(appt(), new_start), notice=HOUR, policy=policy)
    assert (verdict.kind, verdict.fee, verdict.deposit) == (VerdictKind.LATE_MOVE, fee, outcome)


# --- fees ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "fee_spec", "pricing", "expected"),
    [
        pytest.param(
            JANE, FeeSpec(percent=Decimal(50)), Pricing(), eur("60.00"), id="50pct-of-client-rate"
        ),
        pytest.param(
            BOB, FeeSpec(percent=Decimal(50)), Pricing(), eur("50.00"), id="50pct-of-default-rate"
        ),
        pytest.param(JANE, FeeSpec(flat=eur("40")), Pricing(), eur("40.00"), id="flat-40"),
        pytest.param(
            BOB, FeeSpec(percent=Decimal("12.5")), Pricing(), eur("12.50"), id="12.5pct-of-100"
        ),
        pytest.param(
            BOB,
            FeeSpec(percent=Decimal(25)),
            Pricing("CHF", Money(Decimal(90), "CHF")),
            Money(Decimal("22.50"), "CHF"),
            id="25pct-in-chf",
        ),
    ],
)
def test_late_cancel_fee(client: str, fee_spec: FeeSpec, pricing: Pricing, expected: Money) -> None:
    """The late cancellation fee is a share of the client's price or a flat amount."""
    policy = replace(rules(late_cancel_fee=fee_spec), pricing=pricing)
    change = cancel(appt(client=client))
    fee = judge(change, notice=HOUR, policy=policy, client=client).fee
    assert fee is not None
    assert (fee, str(fee.amount), fee.currency) == (
        expected,
        f"{expected.amount}",
        expected.currency,
    )


@pytest.mark.parametrize(
    ("fee_spec", "expected"),
    [
        pytest.param(FeeSpec(percent=Decimal(100)), eur("120.00"), id="100pct-of-120"),
        pytest.param(FeeSpec(percent=Decimal(50)), eur("60.00"), id="50pct-of-120"),
        pytest.param(FeeSpec(flat=eur("30")), eur("30.00"), id="flat-30"),
    ],
)
def test_no_show_fee(fee_spec: FeeSpec, expected: Money) -> None:
    """A marked no-show costs no_show_fee of the client's price."""
    verdict = attend(
        appt(categories=("no-show",)), now=START + 2 * HOUR, policy=rules(no_show_fee=fee_spec)
    )
    assert verdict is not None
    assert (verdict.kind, verdict.fee) == (VerdictKind.NO_SHOW, expected)


# --- deposits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deposit", "rebook_within", "amount", "outcome", "deadline"),
    [
        pytest.param(
            FeeSpec(percent=Decimal(20)),
            3 * DAY,
            eur("24.00"),
            Deposit.PENDING,
            START + 3 * DAY,
            id="20pct-pending-3d",
        ),
        pytest.param(
            FeeSpec(flat=eur("25")),
            5 * DAY,
            eur("25.00"),
            Deposit.PENDING,
            START + 5 * DAY,
            id="flat-pending-5d",
        ),
        pytest.param(FeeSpec(percent=Decimal(0)), 3 * DAY, None, None, None, id="zero-percent"),
        pytest.param(FeeSpec(flat=eur("0")), 3 * DAY, None, None, None, id="zero-flat"),
    ],
)
def test_timely_cancellation_deposit(
    deposit: FeeSpec,
    rebook_within: timedelta,
    amount: Money | None,
    outcome: Deposit | None,
    deadline: datetime | None,
) -> None:
    """A timely cancellation leaves a deposit pending until original start + rebook_within."""
    policy = rules(deposit=deposit, rebook_within=rebook_within)
    verdict = judge(cancel(appt()), notice=72 * HOUR, policy=policy)
    assert (verdict.kind, verdict.fee, verdict.deposit_amount) == (
        VerdictKind.CANCELLATION,
        None,
        amount,
    )
    assert (verdict.deposit, verdict.deposit_deadline) == (outcome, deadline)


def test_late_cancellation_forfeits_the_deposit() -> None:
    """A late cancellation by the client forfeits a deposit and charges the fee."""
    verdict = judge(cancel(appt()), notice=HOUR, policy=rules(deposit=FeeSpec(percent=Decimal(20))))
    assert (verdict.fee, verdict.deposit, verdict.deposit_amount) == (
        eur("60.00"),
        Deposit.FORFEITED,
        eur("24.00"),
    )


def _pending() -> Verdict:
    policy = rules(deposit=FeeSpec(percent=Decimal(20)))
    verdict = judge(cancel(appt()), notice=72 * HOUR, policy=policy)
    assert verdict.deposit is Deposit.PENDING
    return verdict


@pytest.mark.parametrize(
    ("rebooked", "now", "outcome"),
    [
        pytest.param(START + 2 * DAY, START, Deposit.KEPT_AS_CREDIT, id="rebooked-2d-later"),
        pytest.param(START - 2 * DAY, START, Deposit.KEPT_AS_CREDIT, id="rebooked-2d-earlier"),
        pytest.param(START + 3 * DAY, START, Deposit.KEPT_AS_CREDIT, id="rebooked-exactly-3d"),
        pytest.param(START + 3 * DAY + SECOND, START, None, id="rebooked-beyond-3d-still-pending"),
        pytest.param(
            START + 3 * DAY,
            START + 5 * DAY,
            Deposit.KEPT_AS_CREDIT,
            id="rebooked-inside-seen-after-deadline",
        ),
        pytest.param(None, START + 3 * DAY - SECOND, None, id="no-rebooking-before-deadline"),
        pytest.param(None, START + 3 * DAY, Deposit.FORFEITED, id="no-rebooking-at-deadline"),
        pytest.param(None, START + 4 * DAY, Deposit.FORFEITED, id="no-rebooking-after-deadline"),
    ],
)
def test_resolve_deposit(rebooked: datetime | None, now: datetime, outcome: Deposit | None) -> None:
    """A pending deposit is kept as credit on a rebooking within the window, forfeited after
    the deadline, and otherwise stays pending (None)."""
    resolved = resolve_deposit(_pending(), rebooked_start=rebooked, now=now, zone=BERLIN)
    assert (resolved.deposit if resolved else None) is outcome


def test_resolve_deposit_keeps_the_rest_of_the_verdict() -> None:
    """Resolving changes the deposit and extends the rule; key, amount and deadline stay."""
    pending = _pending()
    resolved = resolve_deposit(pending, rebooked_start=START + DAY, now=START, zone=BERLIN)
    assert resolved is not None
    assert (resolved.key, resolved.deposit_amount, resolved.deposit_deadline) == (
        pending.key,
        pending.deposit_amount,
        pending.deposit_deadline,
    )
    assert resolved.rule.startswith(pending.rule)
    assert "credit" in resolved.rule


@pytest.mark.parametrize(
    "deposit",
    [
        pytest.param(Deposit.KEPT_AS_CREDIT, id="already-kept"),
        pytest.param(Deposit.FORFEITED, id="already-forfeited"),
        pytest.param(None, id="no-deposit"),
    ],
)
def test_resolve_deposit_ignores_settled_verdicts(deposit: Deposit | None) -> None:
    """Only a pending deposit can be resolved."""
    verdict = replace(_pending(), deposit=deposit)
    assert resolve_deposit(verdict, rebooked_start=None, now=START + 9 * DAY, zone=BERLIN) is None


@pytest.mark.parametrize(
    ("new_start", "rebook_within", "outcome"),
    [
        pytest.param(START + 3 * DAY, 3 * DAY, Deposit.KEPT_AS_CREDIT, id="exactly-3d"),
        pytest.param(START - DAY, 3 * DAY, Deposit.KEPT_AS_CREDIT, id="1d-earlier"),
        pytest.param(START + 3 * DAY + SECOND, 3 * DAY, Deposit.FORFEITED, id="beyond-3d"),
        pytest.param(START + 5 * DAY, 7 * DAY, Deposit.KEPT_AS_CREDIT, id="5d-within-7d"),
    ],
)
def test_timely_move_deposit(
    new_start: datetime, rebook_within: timedelta, outcome: Deposit
) -> None:
    """A timely move keeps the deposit only if the new start is within rebook_within."""
    policy = rules(deposit=FeeSpec(percent=Decimal(20)), rebook_within=rebook_within)
    verdict = judge(move(appt(), new_start), notice=72 * HOUR, policy=policy)
    assert (verdict.kind, verdict.fee, verdict.deposit) == (VerdictKind.MOVE, None, outcome)


# --- grace -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "history", "waived"),
    [
        pytest.param(0, (), False, id="grace-0"),
        pytest.param(1, (), True, id="grace-1-first-forgiven"),
        pytest.param(1, (grace_used(100),), False, id="grace-1-used-100d-ago"),
        pytest.param(1, (grace_used(364),), False, id="grace-1-used-364d-ago"),
        pytest.param(1, (grace_used(365),), True, id="grace-1-used-365d-ago-expired"),
        pytest.param(1, (grace_used(400),), True, id="grace-1-used-400d-ago"),
        pytest.param(2, (grace_used(10),), True, id="grace-2-one-used"),
        pytest.param(2, (grace_used(10), grace_used(20)), False, id="grace-2-both-used"),
        pytest.param(2, (grace_used(10), grace_used(400)), True, id="grace-2-one-outside-year"),
        pytest.param(
            1,
            (
                PastVerdict(
                    VerdictKind.LATE_CANCELLATION,
                    START - 10 * DAY,
                    True,
                    "marked 'emergency' on the event",
                ),
            ),
            True,
            id="grace-1-owner-waiver-uses-no-grace",
        ),
        pytest.param(
            1,
            (PastVerdict(VerdictKind.LATE_CANCELLATION, START - 10 * DAY, False),),
            True,
            id="grace-1-charged-one-uses-no-grace",
        ),
    ],
)
def test_grace_late_cancels(grace: int, history: tuple[PastVerdict, ...], waived: bool) -> None:
    """grace_late_cancels forgives that many late cancellations per rolling 365 days."""
    verdict = judge(
        cancel(appt()), notice=HOUR, policy=rules(grace_late_cancels=grace), history=history
    )
    assert (verdict.fee, verdict.waived) == (eur("60.00"), waived)
    assert (verdict.waive_reason or "").startswith("grace") is waived


# --- actor attribution ---------------------------------------------------------------------

CANCELLED_BY_INVITEE = ActorRule("Cancelled by invitee", "client")
CANCELLED_BY_HOST = ActorRule("cancelled by host", "owner")


@pytest.mark.parametrize(
    ("change", "policy", "actor", "evidence"),
    [
        pytest.param(
            decline(appt(organizer=ME)), rules(), Actor.CLIENT, "declined", id="client-declined"
        ),
        pytest.param(
            decline(appt(client=JANE_ALIAS, organizer=ME), client=JANE_ALIAS),
            rules(),
            Actor.CLIENT,
            "declined",
            id="client-declined-under-alias",
        ),
        pytest.param(
            cancel(
                appt(organizer=ME),
                appt(organizer=ME, partstat="DECLINED", status=Status.CANCELLED),
            ),
            rules(),
            Actor.CLIENT,
            "declined",
            id="cancelled-with-client-declined",
        ),
        pytest.param(cancel(appt()), rules(), Actor.CLIENT, "organizer", id="client-organizer"),
        pytest.param(
            cancel(appt(client=JANE_ALIAS)),
            rules(),
            Actor.CLIENT,
            "organizer",
            id="alias-organizer",
        ),
        pytest.param(
            cancel(appt(organizer=ME, summary="Coaching - Cancelled by invitee")),
            rules(actor_rules=(CANCELLED_BY_INVITEE,)),
            Actor.CLIENT,
            "Cancelled by invitee",
            id="actor-rule-client-in-summary",
        ),
        pytest.param(
            cancel(appt(organizer=ME, description="CANCELLED BY HOST: sick")),
            rules(actor_rules=(CANCELLED_BY_HOST,)),
            Actor.OWNER,
            "cancelled by host",
            id="actor-rule-owner-in-description-any-case",
        ),
        pytest.param(
            cancel(appt(organizer=ME)),
            rules(actor_rules=(CANCELLED_BY_INVITEE,)),
            Actor.UNKNOWN,
            "owner is asked",
            id="actor-rule-not-matching",
        ),
        pytest.param(
            cancel(appt(organizer=ME)), rules(), Actor.UNKNOWN, "owner is asked", id="unknown-ask"
        ),
        pytest.param(
            cancel(appt(organizer=ME)),
            rules(unknown_actor=UnknownActor.CLIENT),
            Actor.CLIENT,
            "by policy",
            id="unknown-as-client",
        ),
        pytest.param(
            cancel(appt(organizer=ME)),
            rules(unknown_actor=UnknownActor.OWNER),
            Actor.OWNER,
            "by policy",
            id="unknown-as-owner",
        ),
    ],
)
def test_actor_attribution(
    change: Change, policy: OwnerPolicy, actor: Actor, evidence: str
) -> None:
    """Who made a change: declines and client organizers are the client, then actor_rules,
    then the unknown_actor mode."""
    verdict = judge(change, notice=HOUR, policy=policy)
    assert verdict.actor is actor
    assert evidence in verdict.actor_evidence


@pytest.mark.parametrize(
    ("mode", "kind", "fee", "rule_part"),
    [
        pytest.param(
            UnknownActor.ASK,
            VerdictKind.LATE_CANCELLATION,
            None,
            "until the owner says who cancelled",
            id="ask",
        ),
        pytest.param(
            UnknownActor.CLIENT, VerdictKind.LATE_CANCELLATION, eur("60.00"), "fee", id="client"
        ),
        pytest.param(UnknownActor.OWNER, VerdictKind.CANCELLATION, None, "owner", id="owner"),
    ],
)
def test_unknown_actor_mode(
    mode: UnknownActor, kind: VerdictKind, fee: Money | None, rule_part: str
) -> None:
    """unknown_actor decides an unattributed late cancellation: ask (no fee yet), client
    (fee), owner (no fee)."""
    policy = rules(unknown_actor=mode, deposit=FeeSpec(percent=Decimal(20)))
    verdict = judge(cancel(appt(organizer=ME)), notice=HOUR, policy=policy)
    assert (verdict.kind, verdict.fee) == (kind, fee)
    assert rule_part in verdict.rule


def test_unknown_actor_ask_forfeits_no_deposit() -> None:
    """Until the owner answers, an unattributed late cancellation forfeits no deposit."""
    policy = rules(deposit=FeeSpec(percent=Decimal(20)))
    verdict = judge(cancel(appt(organizer=ME)), notice=HOUR, policy=policy)
    assert (verdict.actor, verdict.deposit) == (Actor.UNKNOWN, None)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(cancel(appt(organizer=ME, summary="cancelled by host")), id="cancel"),
        pytest.param(move(appt(organizer=ME, summary="cancelled by host"), START + DAY), id="move"),
    ],
)
def test_owner_actor_pays_no_fee(change: Change) -> None:
    """A late change by the owner is a plain cancellation or move with no fee."""
    policy = rules(actor_rules=(CANCELLED_BY_HOST,), deposit=FeeSpec(percent=Decimal(20)))
    verdict = judge(change, notice=HOUR, policy=policy)
    assert verdict.kind in (VerdictKind.CANCELLATION, VerdictKind.MOVE)
    assert (verdict.fee, verdict.deposit) == (None, None)
    assert "owner" in verdict.rule


# --- per-client settings and aliases -------------------------------------------------------

LENIENT = ClientSettings(
    email=JANE,
    aliases=(JANE_ALIAS,),
    rate=Money(Decimal(80), "EUR"),
    policy=PolicySettings(late_cancel_window=12 * HOUR, late_move_window=12 * HOUR),
)


@pytest.mark.parametrize(
    ("client", "kind", "fee"),
    [
        pytest.param(JANE, VerdictKind.CANCELLATION, None, id="client-override-12h-window"),
        pytest.param(JANE_ALIAS, VerdictKind.CANCELLATION, None, id="alias-gets-override"),
        pytest.param(BOB, VerdictKind.LATE_CANCELLATION, eur("50.00"), id="others-get-owner-48h"),
    ],
)
def test_client_policy_override(client: str, kind: VerdictKind, fee: Money | None) -> None:
    """rules.policy_for gives a configured client (or alias) their own policy."""
    policy = rules(clients=(LENIENT,))
    verdict = judge(cancel(appt(client=client)), notice=24 * HOUR, policy=policy, client=client)
    assert (verdict.kind, verdict.fee) == (kind, fee)


@pytest.mark.parametrize(
    ("client", "fee"),
    [
        pytest.param(JANE, eur("60.00"), id="client-rate-120"),
        pytest.param(JANE_ALIAS, eur("60.00"), id="alias-rate-120"),
        pytest.param(BOB, eur("50.00"), id="default-rate-100"),
    ],
)
def test_client_rate(client: str, fee: Money) -> None:
    """rules.price_for uses the client's rate, under any alias, else the default rate."""
    instance = appt(client=client)
    (canonical,) = appointment_clients(instance, OWNER, rules())
    assert judge(cancel(instance), notice=HOUR, client=canonical).fee == fee


@pytest.mark.parametrize(
    ("instance", "clients"),
    [
        pytest.param(appt(), [JANE], id="client-and-owner"),
        pytest.param(appt(client=JANE_ALIAS, organizer=ME), [JANE], id="alias-to-canonical"),
        pytest.param(
            replace(appt(), attendees=((JANE, "ACCEPTED"), (JANE_ALIAS, "ACCEPTED"))),
            [JANE],
            id="alias-and-canonical-once",
        ),
        pytest.param(
            replace(appt(organizer=ME), attendees=((BOB, "ACCEPTED"), (JANE, "ACCEPTED"))),
            [BOB, JANE],
            id="two-clients-sorted",
        ),
        pytest.param(
            replace(appt(organizer=ME), attendees=((ME, "ACCEPTED"),)), [], id="only-the-owner"
        ),
        pytest.param(replace(appt(organizer=ME), attendees=()), [], id="owner-organizer-alone"),
        pytest.param(replace(appt(), organizer=None, attendees=()), [], id="no-people"),
        pytest.param(
            replace(appt(organizer="Me@Example.COM"), attendees=()), [], id="owner-any-case"
        ),
        pytest.param(replace(appt(), attendees=()), [JANE], id="client-organizer-only"),
    ],
)
def test_appointment_clients(instance: Instance, clients: list[str]) -> None:
    """Clients are the canonical emails of everyone on the event but the owner."""
    assert appointment_clients(instance, OWNER, rules()) == clients


def test_verdict_names_the_canonical_client() -> None:
    """A change seen under an alias is judged for the canonical client at the client's rate."""
    instance = appt(client=JANE_ALIAS)
    (client,) = appointment_clients(instance, OWNER, rules())
    verdict = judge(cancel(instance), notice=HOUR, client=client)
    assert (verdict.client, verdict.fee) == (JANE, eur("60.00"))


# --- markers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "categories", "found"),
    [
        pytest.param("Coaching", (), set(), id="none"),
        pytest.param("Coaching", ("Waive",), {"waive"}, id="category-lowercased"),
        pytest.param("Coaching [Emergency]", (), {"emergency"}, id="bracketed-word"),
        pytest.param("[ no-show ] Coaching", (), {"no-show"}, id="bracket-stripped"),
        pytest.param("Coaching [waive] [IMPORTANT]", ("x",), {"waive", "important", "x"}, id="all"),
        pytest.param("Coaching waive", (), set(), id="bare-word-is-not-a-marker"),
        pytest.param("Coaching [" + "a" * 41 + "]", (), set(), id="over-40-chars"),
    ],
)
def test_markers(summary: str, categories: tuple[str, ...], found: set[str]) -> None:
    """Markers are categories and bracketed words in the summary, lower-cased."""
    assert markers(appt(summary=summary, categories=categories)) == found


@pytest.mark.parametrize(
    ("names", "found"),
    [
        pytest.param(("WAIVE",), "WAIVE", id="case-insensitive"),
        pytest.param(("emergency", "waive"), "waive", id="first-present"),
        pytest.param(("emergency",), None, id="absent"),
    ],
)
def test_has_marker(names: tuple[str, ...], found: str | None) -> None:
    """has_marker returns the first of the names present, ignoring case."""
    assert has_marker(appt(categories=("Waive",)), names) == found


def test_has_marker_without_instance() -> None:
    """No instance has no markers."""
    assert has_marker(None, ("waive",)) is None


@pytest.mark.parametrize(
    ("before", "after", "policy", "reason"),
    [
        pytest.param(appt(categories=("Emergency",)), None, rules(), "emergency", id="category"),
        pytest.param(appt(summary="Coaching [WAIVE]"), None, rules(), "waive", id="bracketed"),
        pytest.param(
            appt(),
            appt(categories=("waive",), status=Status.CANCELLED),
            rules(),
            "waive",
            id="on-the-cancelled-event",
        ),
        pytest.param(
            appt(summary="[kulanz]"),
            None,
            rules(waive_markers=("Kulanz",)),
            "Kulanz",
            id="custom-marker",
        ),
        pytest.param(
            appt(categories=("emergency",)),
            None,
            rules(grace_late_cancels=1),
            "emergency",
            id="marker-reason-beats-grace",
        ),
    ],
)
def test_waive_marker_on_event(
    before: Instance, after: Instance | None, policy: OwnerPolicy, reason: str
) -> None:
    """A waive marker on the event waives a late cancellation, keeping fee and reason."""
    verdict = judge(cancel(before, after), notice=HOUR, policy=policy)
    assert (verdict.kind, verdict.fee, verdict.waived) == (
        VerdictKind.LATE_CANCELLATION,
        eur("60.00"),
        True,
    )
    assert verdict.waive_reason == f"marked '{reason}' on the event"


@pytest.mark.parametrize(
    ("change", "notice", "waived"),
    [
        pytest.param(cancel(appt(summary="Coaching waive")), HOUR, False, id="bare-word"),
        pytest.param(cancel(appt(categories=("waive",))), 72 * HOUR, False, id="nothing-to-waive"),
        pytest.param(
            move(appt(categories=("waive",)), START + 9 * DAY),
            72 * HOUR,
            True,
            id="forfeited-deposit-of-timely-move",
        ),
    ],
)
def test_waive_marker_needs_something_to_waive(
    change: Change, notice: timedelta, waived: bool
) -> None:
    """Only a real marker waives, and only a fee or a forfeited deposit."""
    policy = rules(deposit=FeeSpec(percent=Decimal(20)))
    assert judge(change, notice=notice, policy=policy).waived is waived


@pytest.mark.parametrize(
    ("before", "after_categories", "policy", "important"),
    [
        pytest.param(appt(), (), rules(), False, id="none"),
        pytest.param(appt(summary="Review [Deadline]"), (), rules(), True, id="bracketed"),
        pytest.param(appt(categories=("IMPORTANT",)), (), rules(), True, id="category"),
        pytest.param(appt(), ("important",), rules(), True, id="on-the-new-time"),
        pytest.param(
            appt(summary="[pitch]"),
            (),
            rules(important_markers=("pitch",)),
            True,
            id="custom-marker",
        ),
        pytest.param(appt(summary="an important deadline"), (), rules(), False, id="bare-words"),
    ],
)
def test_important_marker(
    before: Instance, after_categories: tuple[str, ...], policy: OwnerPolicy, important: bool
) -> None:
    """important markers on the event (before or after the change) set `important`."""
    change = move(before, START + DAY)
    assert change.after is not None
    change = replace(change, after=replace(change.after, categories=after_categories))
    assert judge(change, notice=HOUR, policy=policy).important is important


@pytest.mark.parametrize(
    ("location", "description", "remote"),
    [
        pytest.param("Office, Room 2", "", False, id="in-person"),
        pytest.param("", "Join: https://us02web.zoom.us/j/1", True, id="link"),
        pytest.param("", "Reschedule: https://calendly.com/x/cancel", False, id="booking-link"),
        pytest.param("Zoom", "", True, id="zoom"),
        pytest.param("", "we will meet online", False, id="description-words"),
    ],
)
def test_remote(location: str, description: str, remote: bool) -> None:
    """A conferencing link in location or description, or a video service named in the
    location, marks the verdict remote; other links and words in the description do not."""
    instance = appt(location=location, description=description)
    assert judge(cancel(instance), notice=HOUR).remote is remote


def test_a_remote_marker_makes_the_verdict_remote() -> None:
    """The readiness check's marker counts for the comfort insight as well."""
    instance = replace(appt(), categories=("remote",))
    assert judge(cancel(instance), notice=HOUR).remote is True


# --- changes that are not judged -----------------------------------------------------------


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(ChangeKind.CREATED, id="created"),
        pytest.param(ChangeKind.EDITED, id="edited"),
        pytest.param(ChangeKind.TAGS_CHANGED, id="tags"),
        pytest.param(ChangeKind.RESPONSE_CHANGED, id="response-accepted"),
    ],
)
def test_other_changes_give_no_verdict(kind: ChangeKind) -> None:
    """Only cancellations, declines and moves are judged."""
    before = appt(partstat="NEEDS-ACTION")
    change = Change(kind, "u1", None, before, appt())
    assert judge_or_none(change, notice=HOUR) is None


# --- with_actor ----------------------------------------------------------------------------


def _unknown(notice: timedelta, **policy: object) -> Verdict:
    verdict = judge(cancel(appt(organizer=ME)), notice=notice, policy=rules(**policy))
    assert verdict.actor is Actor.UNKNOWN
    return verdict


@pytest.mark.parametrize(
    ("actor", "kind", "fee", "deposit"),
    [
        pytest.param(
            Actor.CLIENT,
            VerdictKind.LATE_CANCELLATION,
            eur("60.00"),
            Deposit.FORFEITED,
            id="client-pays",
        ),
        pytest.param(Actor.OWNER, VerdictKind.CANCELLATION, None, None, id="owner-no-fee"),
    ],
)
def test_with_actor_late_cancellation(
    actor: Actor, kind: VerdictKind, fee: Money | None, deposit: Deposit | None
) -> None:
    """The owner's answer to 'who cancelled?' decides the fee of a late cancellation."""
    unknown = _unknown(HOUR, deposit=FeeSpec(percent=Decimal(20)))
    policy = rules(deposit=FeeSpec(percent=Decimal(20)))
    verdict = with_actor(unknown, actor, "answered", rules=policy, zone=BERLIN, history=())
    assert (verdict.actor, verdict.kind, verdict.fee, verdict.deposit) == (
        actor,
        kind,
        fee,
        deposit,
    )
    assert (verdict.key, verdict.actor_evidence) == (unknown.key, "answered")


def test_with_actor_timely_cancellation_leaves_deposit_pending() -> None:
    """Answered 'client', a timely cancellation with a deposit becomes pending."""
    policy = rules(deposit=FeeSpec(percent=Decimal(20)))
    unknown = _unknown(72 * HOUR, deposit=FeeSpec(percent=Decimal(20)))
    verdict = with_actor(unknown, Actor.CLIENT, "answered", rules=policy, zone=BERLIN, history=())
    assert (verdict.deposit, verdict.deposit_deadline) == (Deposit.PENDING, START + 3 * DAY)


@pytest.mark.parametrize(
    ("history", "waived"),
    [
        pytest.param((), True, id="grace-left"),
        pytest.param((grace_used(30),), False, id="grace-used"),
    ],
)
def test_with_actor_applies_grace(history: tuple[PastVerdict, ...], waived: bool) -> None:
    """Answered 'client', a late cancellation still gets the client's grace."""
    unknown = _unknown(HOUR, grace_late_cancels=1)
    verdict = with_actor(
        unknown,
        Actor.CLIENT,
        "answered",
        rules=rules(grace_late_cancels=1),
        zone=BERLIN,
        history=history,
    )
    assert (verdict.fee, verdict.waived) == (eur("60.00"), waived)


def test_with_actor_keeps_a_late_move_late() -> None:
    """Answered 'client', an unattributed late move gets the late move fee."""
    unknown = judge(move(appt(organizer=ME), START + DAY), notice=HOUR)
    assert (unknown.kind, unknown.actor, unknown.fee) == (
        VerdictKind.LATE_MOVE,
        Actor.UNKNOWN,
        None,
    )
    verdict = with_actor(unknown, Actor.CLIENT, "answered", rules=rules(), zone=BERLIN, history=())
    assert (verdict.kind, verdict.fee) == (VerdictKind.LATE_MOVE, eur("60.00"))


@pytest.mark.parametrize(
    "late_move",
    [pytest.param(LateMove.FEE, id="fee"), pytest.param(LateMove.DEPOSIT_RULE, id="deposit-rule")],
)
def test_with_actor_leaves_a_possible_no_show_alone(late_move: LateMove) -> None:
    """A 'client' answer on a possible no-show does not turn it into a move."""
    policy = rules(late_move=late_move, deposit=FeeSpec(percent=Decimal(20)))
    possible = attend(appt(), now=START + 2 * HOUR, policy=policy, inferred=True)
    assert possible is not None
    assert possible.actor is Actor.UNKNOWN
    verdict = with_actor(possible, Actor.CLIENT, "answered", rules=policy, zone=BERLIN, history=())
    assert verdict == possible


# --- idempotency ---------------------------------------------------------------------------


def test_same_change_judged_twice_gives_equal_verdicts() -> None:
    """Judging one change twice gives the same key and verdict, decided_at aside."""
    change = cancel(appt())
    first = judge(change, notice=HOUR, now=START)
    second = judge(change, notice=HOUR, now=START + 5 * HOUR)
    assert first.decided_at != second.decided_at
    assert replace(second, decided_at=first.decided_at) == first


@pytest.mark.parametrize(
    ("other", "same"),
    [
        pytest.param(move(appt(), START + DAY), True, id="same-move"),
        pytest.param(move(appt(), START + 2 * DAY), False, id="other-target"),
        pytest.param(cancel(appt()), False, id="cancel-not-move"),
        pytest.param(
            move(appt(recurrence_id=START), START + DAY), False, id="occurrence-of-a-series"
        ),
    ],
)
def test_verdict_key_identifies_the_change(other: Change, same: bool) -> None:
    """The key is stable for the same change and differs for a different one."""
    key = judge(move(appt(), START + DAY), notice=HOUR).key
    assert (judge(other, notice=HOUR).key == key) is same


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("other", "u1", None, "cancel", "d"), id="calendar"),
        pytest.param(("work", "u2", None, "cancel", "d"), id="uid"),
        pytest.param(("work", "u1", "2026-03-12T14:00:00Z", "cancel", "d"), id="instance"),
        pytest.param(("work", "u1", None, "move", "d"), id="family"),
        pytest.param(("work", "u1", None, "cancel", "e"), id="detail"),
    ],
)
def test_verdict_key_parts(args: tuple[str, str, str | None, str, str]) -> None:
    """verdict_key is deterministic and every part changes it."""
    base = ("work", "u1", None, "cancel", "d")
    assert verdict_key(*base) == verdict_key(*base)
    assert verdict_key(*args) != verdict_key(*base)


# --- attendance ----------------------------------------------------------------------------

END = START + HOUR


@pytest.mark.parametrize(
    ("instance", "now", "inferred", "kind"),
    [
        pytest.param(appt(categories=("no-show",)), END - SECOND, False, None, id="before-end"),
        pytest.param(
            appt(categories=("no-show",)), END, False, VerdictKind.NO_SHOW, id="at-end-no-show"
        ),
        pytest.param(
            appt(summary="[NoShow] Coaching"),
            END + 30 * timedelta(minutes=1),
            False,
            VerdictKind.NO_SHOW,
            id="bracketed-any-case",
        ),
        pytest.param(
            appt(categories=("attended",)), END, False, VerdictKind.ATTENDED, id="attended"
        ),
        pytest.param(appt(), END, False, None, id="no-marker-kept"),
        pytest.param(appt(), END, True, VerdictKind.POSSIBLE_NO_SHOW, id="inferred"),
        pytest.param(
            appt(categories=("attended",)),
            END,
            True,
            VerdictKind.ATTENDED,
            id="marker-beats-inference",
        ),
    ],
)
def test_attendance_verdict(
    instance: Instance, now: datetime, inferred: bool, kind: VerdictKind | None
) -> None:
    """After the end, the owner's marker decides; without one, inference asks."""
    verdict = attend(instance, now=now, inferred=inferred)
    assert (verdict.kind if verdict else None) is kind


@pytest.mark.parametrize(
    ("instance", "inferred", "fee", "actor"),
    [
        pytest.param(appt(categories=("attended",)), False, None, Actor.OWNER, id="attended"),
        pytest.param(appt(), True, None, Actor.UNKNOWN, id="possible-no-show"),
        pytest.param(
            appt(categories=("no-show",)), False, eur("120.00"), Actor.CLIENT, id="no-show"
        ),
    ],
)
def test_attendance_fee_and_actor(
    instance: Instance, inferred: bool, fee: Money | None, actor: Actor
) -> None:
    """Only a marked no-show carries a fee; inference alone never does."""
    verdict = attend(instance, now=END, inferred=inferred)
    assert verdict is not None
    assert (verdict.fee, verdict.actor) == (fee, actor)


@pytest.mark.parametrize(
    ("offset", "judged"),
    [
        pytest.param(timedelta(0), True, id="at-end-plus-grace"),
        pytest.param(-timedelta(minutes=30) - SECOND, False, id="before-the-end"),
    ],
)
def test_attendance_at_the_no_show_grace_timer(offset: timedelta, judged: bool) -> None:
    """At end + no_show_grace (the timer) a marked no-show is judged; before the end it is not."""
    policy = rules(no_show_grace=timedelta(minutes=30))
    now = END + policy.policy.no_show_grace + offset
    assert (attend(appt(categories=("no-show",)), now=now, policy=policy) is not None) is judged


def test_no_show_grace_default() -> None:
    """The no-show grace defaults to 30 minutes."""
    assert PolicySettings().no_show_grace == timedelta(minutes=30)


def test_no_show_forfeits_the_deposit() -> None:
    """A marked no-show forfeits a deposit."""
    policy = rules(deposit=FeeSpec(flat=eur("25")))
    verdict = attend(appt(categories=("no-show",)), now=END, policy=policy)
    assert verdict is not None
    assert (verdict.deposit, verdict.deposit_amount) == (Deposit.FORFEITED, eur("25.00"))


@pytest.mark.parametrize(
    ("categories", "waived"),
    [
        pytest.param(("no-show", "emergency"), True, id="waived"),
        pytest.param(("no-show",), False, id="charged"),
    ],
)
def test_no_show_waive_marker(categories: tuple[str, ...], waived: bool) -> None:
    """A waive marker next to the no-show marker waives the no-show fee, reason kept."""
    verdict = attend(appt(categories=categories), now=END)
    assert verdict is not None
    assert (verdict.waived, verdict.waive_reason) == (
        waived,
        "marked 'emergency' on the event" if waived else None,
    )


@pytest.mark.parametrize(
    "markers_",
    [
        pytest.param(("absent",), id="custom-no-show-marker"),
    ],
)
def test_custom_no_show_marker(markers_: tuple[str, ...]) -> None:
    """no_show_markers replaces the default markers."""
    policy = rules(no_show_markers=markers_)
    marked = attend(appt(categories=markers_), now=END, policy=policy)
    default = attend(appt(categories=("no-show",)), now=END, policy=policy)
    assert (marked.kind if marked else None, default) == (VerdictKind.NO_SHOW, None)
