"""Unit tests for ``syncd.insights``: the client record, reliability, flags and escalations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from syncd.insights import client_record, reliability
from syncd.money import Money
from syncd.rules import Escalation, PolicySettings
from syncd.verdict import Actor, ClientRecord, Verdict, VerdictKind

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
LC = VerdictKind.LATE_CANCELLATION
NS = VerdictKind.NO_SHOW


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def ago(days: float) -> datetime:
    return NOW - days * DAY


def v(
    kind: VerdictKind,
    days_ago: float = 1,
    *,
    fee: str | None = None,
    waived: bool = False,
    actor: Actor = Actor.CLIENT,
    remote: bool = False,
    start: datetime | None = None,
) -> Verdict:
    """A verdict decided ``days_ago``, for an appointment starting an hour later by default."""
    decided = ago(days_ago)
    start = start or decided + HOUR
    return Verdict(
        key=f"{kind}-{days_ago}-{start.isoformat()}",
        kind=kind,
        calendar="work",
        uid="u",
        instance=None,
        client="jane@example.com",
        client_name="Jane",
        start=start,
        end=start + HOUR,
        summary="Coaching",
        decided_at=decided,
        rule="",
        actor=actor,
        actor_evidence="",
        fee=None if fee is None else eur(fee),
        waived=waived,
        waive_reason="waived" if waived else None,
        remote=remote,
    )


def record(
    verdicts: Sequence[Verdict],
    kept: Sequence[datetime] = (),
    policy: PolicySettings | None = None,
) -> ClientRecord:
    return client_record(
        "jane@example.com",
        "Jane",
        verdicts,
        kept,
        policy=policy or PolicySettings(),
        now=NOW,
        zone=BERLIN,
        currency="EUR",
    )


def codes(result: ClientRecord) -> set[str]:
    return {flag.code for flag in result.flags}


# --- reliability ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kept", "missed", "expected"),
    [
        pytest.param((), (), None, id="no-data"),
        pytest.param((ago(400),), (ago(500),), None, id="only-outside-365d"),
        pytest.param((ago(1), ago(2)), (), 1.0, id="only-kept"),
        pytest.param((), (ago(1),), 0.0, id="only-missed"),
        pytest.param((NOW,), (NOW,), 0.5, id="same-day-even"),
        pytest.param((NOW,), (ago(180),), 0.8, id="recent-kept-outweighs-old-missed"),
        pytest.param((ago(180),), (NOW,), 0.2, id="recent-missed-outweighs-old-kept"),
        pytest.param((NOW,), (ago(366),), 1.0, id="missed-366d-ago-ignored"),
        pytest.param((NOW,), (ago(365),), 0.943, id="missed-365d-ago-counts"),
    ],
)
def test_reliability(
    kept: tuple[datetime, ...], missed: tuple[datetime, ...], expected: float | None
) -> None:
    """Kept share over 365 days, halving each event's weight every 90 days."""
    assert reliability(kept, missed, NOW) == expected


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        pytest.param([v(LC, 0, start=NOW)], 0.5, id="client-late-cancel-missed"),
        pytest.param([v(NS, 0, start=NOW)], 0.5, id="no-show-missed"),
        pytest.param([v(LC, 0, start=NOW, actor=Actor.UNKNOWN)], 1.0, id="unknown-actor-ignored"),
        pytest.param(
            [v(VerdictKind.CANCELLATION, 0, start=NOW)], 1.0, id="timely-cancel-not-missed"
        ),
    ],
)
def test_record_reliability(verdicts: list[Verdict], expected: float) -> None:
    """The record's reliability counts client late cancellations and no-shows as missed."""
    assert record(verdicts, kept=[NOW]).reliability == expected


def test_record_reliability_none_without_data() -> None:
    """A client with no history has no reliability figure."""
    assert record([]).reliability is None


# --- counts and fees -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "field", "expected"),
    [
        pytest.param([v(LC), v(LC, 2)], "late_cancellations", 2, id="late-cancellations"),
        pytest.param([v(VerdictKind.CANCELLATION)], "cancellations", 1, id="cancellations"),
        pytest.param([v(VerdictKind.MOVE), v(VerdictKind.MOVE, 3)], "moves", 2, id="moves"),
        pytest.param([v(VerdictKind.LATE_MOVE)], "late_moves", 1, id="late-moves"),
        pytest.param([v(NS), v(NS, 2), v(NS, 3)], "no_shows", 3, id="no-shows"),
        pytest.param([v(LC, waived=True), v(NS)], "waivers", 1, id="waivers"),
        pytest.param(
            [v(LC, actor=Actor.UNKNOWN)], "late_cancellations", 0, id="unknown-not-counted"
        ),
        pytest.param(
            [v(VerdictKind.CANCELLATION, actor=Actor.OWNER)],
            "cancellations",
            0,
            id="owner-not-counted",
        ),
        pytest.param(
            [v(LC, waived=True, actor=Actor.UNKNOWN)], "waivers", 0, id="unknown-waiver-not-counted"
        ),
    ],
)
def test_record_counts(verdicts: list[Verdict], field: str, expected: int) -> None:
    """Counts by kind include only verdicts the client is the actor of."""
    assert getattr(record(verdicts), field) == expected


def test_record_counts_kept() -> None:
    """kept is the number of kept appointments."""
    assert record([], kept=[ago(1), ago(8), ago(15)]).kept == 3


@pytest.mark.parametrize(
    ("verdicts", "due"),
    [
        pytest.param([], "0.00", id="nothing"),
        pytest.param([v(LC, fee="60"), v(NS, 2, fee="40")], "100.00", id="sum"),
        pytest.param(
            [v(LC, fee="60"), v(NS, 2, fee="40", waived=True)], "60.00", id="waived-excluded"
        ),
        pytest.param([v(VerdictKind.LATE_MOVE, fee="12.50")], "12.50", id="late-move-fee"),
        pytest.param([v(LC, fee="60", actor=Actor.OWNER)], "0.00", id="owner-actor-excluded"),
    ],
)
def test_record_fees_due(verdicts: list[Verdict], due: str) -> None:
    """Fees due sum the client's unwaived fees, exactly, in the currency."""
    fees = record(verdicts).fees_due
    assert fees is not None
    assert (str(fees.amount), fees.currency) == (due, "EUR")


# --- flags ---------------------------------------------------------------------------------


def monday_morning(weeks_ago: int) -> datetime:
    return datetime(2026, 6, 1, 7, 0, tzinfo=UTC) - weeks_ago * 7 * DAY  # 09:00 in Berlin


def friday_afternoon(weeks_ago: int) -> datetime:
    return datetime(2026, 5, 29, 13, 0, tzinfo=UTC) - weeks_ago * 7 * DAY  # 15:00 in Berlin


def changes_at(*starts: datetime) -> list[Verdict]:
    return [v(VerdictKind.CANCELLATION, 20 + i * 7, start=s) for i, s in enumerate(starts)]


KEPT_LONG_AGO = [ago(40 + 7 * i) for i in range(5)]


@pytest.mark.parametrize(
    ("code", "verdicts", "kept", "present"),
    [
        # repeat late canceller: two late cancellations within 90 days
        pytest.param("repeat_late_canceller", [v(LC, 5), v(LC, 80)], [], True, id="late-2-in-90d"),
        pytest.param("repeat_late_canceller", [v(LC, 5)], [], False, id="late-only-1"),
        pytest.param("repeat_late_canceller", [v(LC, 5), v(LC, 100)], [], False, id="late-1-old"),
        pytest.param(
            "repeat_late_canceller",
            [v(LC, 5), v(LC, 6, actor=Actor.UNKNOWN)],
            [],
            False,
            id="late-unknown-actor",
        ),
        # availability: one weekday and band holds >= 60 % of >= 3 changes
        pytest.param(
            "availability",
            changes_at(monday_morning(1), monday_morning(2), monday_morning(3)),
            [],
            True,
            id="cluster-3-of-3",
        ),
        pytest.param(
            "availability",
            changes_at(monday_morning(1), monday_morning(2), friday_afternoon(1)),
            [],
            True,
            id="cluster-2-of-3",
        ),
        pytest.param(
            "availability",
            changes_at(
                *(monday_morning(i) for i in range(3)), *(friday_afternoon(i) for i in range(2))
            ),
            [],
            True,
            id="cluster-exactly-60pct",
        ),
        pytest.param(
            "availability",
            changes_at(
                monday_morning(1),
                monday_morning(2),
                friday_afternoon(1),
                friday_afternoon(2),
                friday_afternoon(3) + 4 * HOUR,  # 19:00 in Berlin: evening
            ),
            [],
            False,
            id="no-cluster-40pct",
        ),
        pytest.param(
            "availability",
            changes_at(monday_morning(1), monday_morning(2)),
            [],
            False,
            id="cluster-needs-3",
        ),
        # comfort: in-person appointments cancelled or moved, none remote
        pytest.param(
            "comfort",
            [v(VerdictKind.CANCELLATION, 3), v(LC, 9)],
            [],
            True,
            id="comfort-2-in-person",
        ),
        pytest.param("comfort", [v(LC, 9)], [], False, id="comfort-only-1"),
        pytest.param(
            "comfort",
            [v(VerdictKind.CANCELLATION, 3), v(LC, 9), v(LC, 12, remote=True)],
            [],
            False,
            id="comfort-remote-cancelled-too",
        ),
        # expectations: long reliable, then a burst of late changes
        pytest.param(
            "expectations",
            [v(LC, 3), v(VerdictKind.LATE_MOVE, 10)],
            KEPT_LONG_AGO,
            True,
            id="expectations-burst",
        ),
        pytest.param(
            "expectations",
            [v(LC, 3), v(VerdictKind.LATE_MOVE, 10)],
            KEPT_LONG_AGO[:4],
            False,
            id="expectations-not-long-reliable",
        ),
        pytest.param(
            "expectations",
            [v(LC, 3)],
            KEPT_LONG_AGO,
            False,
            id="expectations-only-1-recent",
        ),
        pytest.param(
            "expectations",
            [v(LC, 3), v(LC, 10), v(LC, 60), v(LC, 90)],
            KEPT_LONG_AGO,
            False,
            id="expectations-late-before-too",
        ),
        # cost: late changes with fees, unpaid (not waived), within 180 days
        pytest.param(
            "cost", [v(LC, 3, fee="60"), v(NS, 100, fee="120")], [], True, id="cost-2-fees"
        ),
        pytest.param(
            "cost",
            [v(LC, 3, fee="60"), v(NS, 100, fee="120", waived=True)],
            [],
            False,
            id="cost-one-waived",
        ),
        pytest.param(
            "cost", [v(LC, 3, fee="60"), v(NS, 200, fee="120")], [], False, id="cost-one-old"
        ),
        # ghosting: repeated no-shows without coming back
        pytest.param("ghosting", [v(NS, 20), v(NS, 10)], [], True, id="ghost-2-no-shows"),
        pytest.param("ghosting", [v(NS, 10)], [], False, id="ghost-only-1"),
        pytest.param("ghosting", [v(NS, 20), v(NS, 10)], [ago(5)], False, id="ghost-came-back"),
        pytest.param("ghosting", [v(NS, 20), v(NS, 10)], [ago(15)], True, id="ghost-kept-between"),
        pytest.param(
            "ghosting",
            [v(NS, 10), v(NS, 20)],
            [ago(15)],
            True,
            id="ghost-kept-between-any-order",
        ),
        pytest.param("ghosting", [v(NS, 10), v(NS, 200)], [], False, id="ghost-one-old"),
    ],
)
def test_flag(code: str, verdicts: list[Verdict], kept: list[datetime], present: bool) -> None:
    """Each insight flag appears on its pattern and not without it."""
    assert (code in codes(record(verdicts, kept))) is present


@pytest.mark.parametrize(
    ("start", "band"),
    [
        pytest.param(datetime(2026, 5, 25, 7, 0, tzinfo=UTC), "Monday mornings", id="morning"),
        # 10:30Z is 12:30 in Berlin: the band is the owner's local one.
        pytest.param(datetime(2026, 5, 25, 10, 30, tzinfo=UTC), "Monday afternoons", id="local"),
        pytest.param(datetime(2026, 5, 29, 17, 0, tzinfo=UTC), "Friday evenings", id="evening"),
    ],
)
def test_availability_names_the_local_band(start: datetime, band: str) -> None:
    """The availability flag names the weekday and band in the owner's zone."""
    starts = [start - i * 7 * DAY for i in range(3)]
    flag = next(f for f in record(changes_at(*starts)).flags if f.code == "availability")
    assert band in flag.cause


# --- escalations ---------------------------------------------------------------------------

AFTER_2_LATE = Escalation(after=2, kind="late_cancellation", within=timedelta(days=90))
AFTER_2_NO_SHOWS = Escalation(after=2, kind="no_show", within=timedelta(days=30))


@pytest.mark.parametrize(
    ("rule", "verdicts", "escalated"),
    [
        pytest.param(AFTER_2_LATE, [v(LC, 5), v(LC, 60)], True, id="2-late-in-90d"),
        pytest.param(AFTER_2_LATE, [v(LC, 5), v(LC, 90)], True, id="second-exactly-90d-ago"),
        pytest.param(AFTER_2_LATE, [v(LC, 5), v(LC, 91)], False, id="second-outside-90d"),
        pytest.param(AFTER_2_LATE, [v(LC, 5)], False, id="only-1"),
        pytest.param(AFTER_2_LATE, [v(NS, 5), v(NS, 6)], False, id="other-kind"),
        pytest.param(
            AFTER_2_LATE, [v(LC, 5), v(LC, 6, actor=Actor.UNKNOWN)], False, id="unknown-actor"
        ),
        pytest.param(AFTER_2_NO_SHOWS, [v(NS, 5), v(NS, 29)], True, id="no-shows-in-30d"),
        pytest.param(AFTER_2_NO_SHOWS, [v(NS, 5), v(NS, 31)], False, id="no-shows-outside-30d"),
    ],
)
def test_escalation(rule: Escalation, verdicts: list[Verdict], escalated: bool) -> None:
    """After N verdicts of a kind within the window the client must pay a deposit, flagged."""
    result = record(verdicts, policy=PolicySettings(escalations=(rule,)))
    assert (result.require_deposit, "require_deposit" in codes(result)) == (escalated, escalated)


def test_no_escalation_without_rules() -> None:
    """Without escalation rules nothing requires a deposit."""
    result = record([v(LC, 1), v(LC, 2), v(LC, 3)])
    assert (result.require_deposit, "require_deposit" in codes(result)) == (False, False)
