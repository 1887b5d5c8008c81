"""The pure row builders of ``audit show``, ``clients`` and ``report fees``."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from syncd.money import Money
from syncd.reports import (
    AuditFilter,
    ReportError,
    audit_line,
    audit_matches,
    audit_row,
    bound_instant,
    client_rows,
    fee_report,
    fee_report_json,
    fee_report_rows,
    parse_audit_line,
    parse_bound,
)
from syncd.rules import ClientSettings, OwnerPolicy, Pricing
from syncd.verdict import Actor, Deposit, Verdict, VerdictKind

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
RULES = OwnerPolicy(
    clients=(ClientSettings("jane@example.com", aliases=("jd@work.example",), name="Jane Doe"),),
    pricing=Pricing(currency="EUR", default_rate=Money(Decimal(100), "EUR")),
)
NOVEMBER = (datetime(2026, 11, 1, tzinfo=BERLIN), datetime(2026, 12, 1, tzinfo=BERLIN))


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def verdict(
    key: str,
    kind: VerdictKind = VerdictKind.LATE_CANCELLATION,
    *,
    client: str = "jane@example.com",
    start: datetime | date = datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    **extra: Any,
) -> Verdict:
    """A client-made verdict of ``kind`` for an appointment at ``start``."""
    end = start + timedelta(hours=1) if isinstance(start, datetime) else start
    return Verdict(
        key=key,
        kind=kind,
        calendar="work",
        uid=key,
        instance=None,
        client=client,
        client_name=client,
        start=start,
        end=end,
        summary="Coaching",
        decided_at=NOW - timedelta(days=1),
        rule="",
        actor=extra.pop("actor", Actor.CLIENT),
        actor_evidence="",
        **extra,
    )


def report(*verdicts: Verdict, start: datetime = NOVEMBER[0], end: datetime = NOVEMBER[1]) -> Any:
    """The fee report for November in Berlin as its JSON object."""
    return fee_report_json(fee_report(verdicts, RULES, start=start, end=end, zone=BERLIN))


# --- dates ----------------------------------------------------------------------------------


def test_a_day_bound_is_midnight_in_the_owners_zone() -> None:
    """2026-11-27 is 00:00 in Berlin, 23:00 UTC the day before."""
    assert bound_instant(parse_bound("2026-11-27"), BERLIN) == datetime(
        2026, 11, 26, 23, 0, tzinfo=UTC
    )


def test_a_full_timestamp_bound_keeps_its_zone() -> None:
    """A timestamp with a zone (Z or an offset) stands for itself whatever the owner's zone."""
    assert [
        bound_instant(parse_bound(t), BERLIN)
        for t in ("2026-11-27T09:00:00Z", "2026-11-27T10:00:00+01:00")
    ] == [NOW, NOW]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2026-13-45", "not a valid date"),
        ("yesterday", "not an ISO-8601 date or time"),
        ("2026-11-27T09:00", "needs a zone"),
    ],
)
def test_a_bad_bound_says_what_is_wrong(text: str, says: str) -> None:
    """Bad dates, words and zone-less times are ValueErrors naming the text and the problem."""
    with pytest.raises(ValueError, match=says) as caught:
        parse_bound(text)
    assert repr(text) in str(caught.value)


# --- fees -----------------------------------------------------------------------------------


def test_fees_due_sum_per_client_and_in_total_as_decimal_strings() -> None:
    """Two late cancellations and a no-show of Jane plus a late move of Bob add up exactly."""
    result = report(
        verdict("a", fee=eur("60")),
        verdict("b", fee=eur("60.10")),
        verdict("c", VerdictKind.NO_SHOW, fee=eur("120")),
        verdict("d", VerdictKind.LATE_MOVE, client="bob@example.com", fee=eur("50")),
    )
    assert [(c["client"], c["fees_due"]) for c in result["clients"]] == [
        ("bob@example.com", "50.00"),
        ("jane@example.com", "240.10"),
    ]
    assert (result["total"]["fees_due"], result["currency"]) == ("290.10", "EUR")


def test_a_waived_fee_is_reported_as_waived_not_due() -> None:
    """A waived late cancellation moves its fee from fees_due to fees_waived."""
    result = report(verdict("a", fee=eur("60")), verdict("b", fee=eur("60"), waived=True))
    assert (result["total"]["fees_due"], result["total"]["fees_waived"]) == ("60.00", "60.00")


def test_fees_not_owed_by_the_client_are_not_due() -> None:
    """A possible no-show, an unknown-actor change and a timely move add no fee due."""
    result = report(
        verdict("a", VerdictKind.POSSIBLE_NO_SHOW, fee=eur("100"), actor=Actor.UNKNOWN),
        verdict("b", fee=eur("60"), actor=Actor.UNKNOWN),
        verdict("c", VerdictKind.MOVE),
    )
    assert (result["clients"], result["total"]["fees_due"]) == ([], "0.00")


def test_deposits_are_reported_by_outcome() -> None:
    """Kept as credit, forfeited and pending deposits land in their own columns; a waived
    verdict's forfeited deposit is not counted as forfeited."""
    result = report(
        verdict(
            "a", VerdictKind.CANCELLATION, deposit=Deposit.KEPT_AS_CREDIT, deposit_amount=eur("20")
        ),
        verdict("b", fee=eur("60"), deposit=Deposit.FORFEITED, deposit_amount=eur("24")),
        verdict("c", VerdictKind.CANCELLATION, deposit=Deposit.PENDING, deposit_amount=eur("20")),
        verdict(
            "d", fee=eur("60"), waived=True, deposit=Deposit.FORFEITED, deposit_amount=eur("24")
        ),
    )
    total = result["total"]
    assert (
        total["deposits_credit"],
        total["deposits_forfeited"],
        total["deposits_pending"],
    ) == ("20.00", "24.00", "20.00")


def test_the_period_includes_its_start_and_excludes_its_end() -> None:
    """An appointment at the start instant counts; one at the end instant does not."""
    at_start = verdict("a", fee=eur("1"), start=NOVEMBER[0].astimezone(UTC))
    at_end = verdict("b", fee=eur("2"), start=NOVEMBER[1].astimezone(UTC))
    just_before_end = verdict("c", fee=eur("4"), start=NOVEMBER[1] - timedelta(seconds=1))
    assert report(at_start, at_end, just_before_end)["total"]["fees_due"] == "5.00"


def test_an_all_day_appointment_starts_at_midnight_in_the_owners_zone() -> None:
    """An all-day appointment on 1 December falls outside November, on 30 November inside."""
    inside = verdict("a", fee=eur("1"), start=date(2026, 11, 30))
    outside = verdict("b", fee=eur("2"), start=date(2026, 12, 1))
    assert report(inside, outside)["total"]["fees_due"] == "1.00"


def test_verdicts_under_an_alias_join_the_canonical_client() -> None:
    """A verdict recorded under Jane's alias is summed into her row, under her name."""
    result = report(
        verdict("a", fee=eur("60")), verdict("b", fee=eur("30"), client="JD@work.example")
    )
    assert [(c["client"], c["name"], c["fees_due"]) for c in result["clients"]] == [
        ("jane@example.com", "Jane Doe", "90.00")
    ]


def test_fee_rows_end_with_a_total_row() -> None:
    """The csv/table rows: a header, one row per client, then TOTAL with the sums."""
    rows = fee_report_rows(
        fee_report(
            [verdict("a", fee=eur("60"))], RULES, start=NOVEMBER[0], end=NOVEMBER[1], zone=BERLIN
        )
    )
    assert rows[0][:4] == ["client", "name", "currency", "fees_due"]
    assert [r[:4] for r in rows[1:]] == [
        ["jane@example.com", "Jane Doe", "EUR", "60.00"],
        ["TOTAL", "", "EUR", "60.00"],
    ]


def test_an_amount_in_another_currency_is_an_error() -> None:
    """A fee in USD cannot be summed into an EUR report: ReportError naming both currencies."""
    with pytest.raises(ReportError, match=r"USD.*EUR"):
        report(verdict("a", fee=Money(Decimal(60), "USD")))


# --- audit show -----------------------------------------------------------------------------


CHANGE = {
    "seq": 2,
    "ts": "2026-11-27T09:00:00.000000Z",
    "type": "change",
    "calendar": "work",
    "change": "cancelled",
    "uid": "a",
    "clients": ["jd@work.example", "bob@example.com"],
}
VERDICT = {
    "seq": 3,
    "ts": "2026-11-27T09:00:00.000000Z",
    "type": "verdict",
    "calendar": "work",
    "verdict": "late_cancellation",
    "client": "jane@example.com",
    "fee": {"amount": "60.00", "currency": "EUR"},
    "waived": False,
    "deposit": None,
    "actor": "client",
}


def test_client_filter_resolves_aliases_on_both_sides() -> None:
    """--client with the alias or the canonical email matches both the change (listing the
    alias) and the verdict (naming the canonical email); another client matches neither."""
    matched = {
        who: [audit_matches(r, AuditFilter(client=who), RULES) for r in (CHANGE, VERDICT)]
        for who in ("JD@work.example", "jane@example.com", "carol@example.com")
    }
    assert matched == {
        "JD@work.example": [True, True],
        "jane@example.com": [True, True],
        "carol@example.com": [False, False],
    }


def test_type_and_time_filters() -> None:
    """--type compares exactly; --since is inclusive and --until exclusive on the record's ts."""
    assert [
        audit_matches(VERDICT, AuditFilter(type="verdict"), RULES),
        audit_matches(VERDICT, AuditFilter(type="change"), RULES),
        audit_matches(VERDICT, AuditFilter(since=NOW), RULES),
        audit_matches(VERDICT, AuditFilter(until=NOW), RULES),
        audit_matches(VERDICT, AuditFilter(until=NOW + timedelta(microseconds=1)), RULES),
    ] == [True, False, True, False, True]


def test_table_rows_summarise_each_record_type() -> None:
    """Change: kind, uid, clients; verdict: kind, client, fee; write: status, action, href."""
    write = {
        "seq": 4,
        "ts": VERDICT["ts"],
        "type": "write",
        "calendar": "notes",
        "status": "applied",
        "action": "note",
        "href": "n.ics",
    }
    assert [audit_row(r)[4] for r in (CHANGE, VERDICT, write)] == [
        "cancelled a (jd@work.example, bob@example.com)",
        "late_cancellation jane@example.com fee 60.00 EUR",
        "applied note n.ics",
    ]
    assert audit_line(audit_row(VERDICT)).split()[:4] == [
        "3",
        "2026-11-27T09:00:00Z",
        "verdict",
        "work",
    ]


def test_a_torn_line_is_not_a_record() -> None:
    """A half-written line or a JSON array parses to None; a whole record to its dict."""
    assert [
        parse_audit_line(b'{"seq": 1'),
        parse_audit_line(b"[1]"),
        parse_audit_line(b'{"seq": 1}\n'),
    ] == [None, None, {"seq": 1}]


# --- clients --------------------------------------------------------------------------------


def test_client_rows_include_configured_and_seen_clients_sorted_by_name() -> None:
    """A configured client with no history, and clients only seen in verdicts or kept
    appointments (one under an alias), appear once each, sorted by display name."""
    rows = client_rows(
        [verdict("a", fee=eur("60"), client="jd@work.example")],
        [("zed@example.com", NOW - timedelta(days=2)), ("JD@work.example", NOW)],
        RULES,
        now=NOW,
        zone=BERLIN,
    )
    assert [(r.client, r.kept, r.late_cancellations, r.fees_due) for r in rows] == [
        ("jane@example.com", 1, 1, eur("60")),
        ("zed@example.com", 1, 0, eur("0")),
    ]
    assert rows[0].to_json()["reliability_pct"] == pytest.approx(50.0, abs=5)


def test_a_configured_client_without_history_has_no_reliability() -> None:
    """Jane with nothing recorded: zero counts, no reliability figure, no flags."""
    [row] = client_rows([], [], RULES, now=NOW, zone=BERLIN)
    assert (row.label, row.kept, row.reliability, row.flags) == (
        "Jane Doe <jane@example.com>",
        0,
        None,
        (),
    )


def test_repeat_late_cancellations_raise_a_flag() -> None:
    """Two recent late cancellations give the repeat_late_canceller flag code."""
    late = verdict("a", fee=eur("60"))
    rows = client_rows([late, replace(late, key="b", uid="b")], [], RULES, now=NOW, zone=BERLIN)
    assert "repeat_late_canceller" in rows[0].flags
