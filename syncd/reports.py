"""Rows for the read-only commands: ``audit show``, ``clients`` and ``report fees``. Pure.

Nothing here reads files or the clock: the command line streams the audit log, reads the
store and passes what it found in; these functions filter, sum and format.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from syncd.errors import SyncdError
from syncd.insights import client_record
from syncd.money import Money
from syncd.policy import day_start
from syncd.rules import OwnerPolicy
from syncd.verdict import Actor, Deposit, Verdict, VerdictKind

__all__ = [
    "AUDIT_HEADER",
    "AUDIT_TYPES",
    "FEE_COLUMNS",
    "AuditFilter",
    "ClientRow",
    "FeeReport",
    "FeeRow",
    "ReportError",
    "audit_line",
    "audit_matches",
    "audit_row",
    "bound_instant",
    "client_rows",
    "client_table",
    "fee_report",
    "fee_report_json",
    "fee_report_rows",
    "parse_audit_line",
    "parse_bound",
    "table",
]

AUDIT_TYPES = (
    "baseline",
    "change",
    "item_error",
    "resync",
    "recovery",
    "verdict",
    "verdict_revised",
    "waiver",
    "resolution",
    "booking_flagged",
    "write",
)
"""The record types syncd writes (for ``--help``; other types are still shown)."""

_FEE_KINDS = (VerdictKind.LATE_CANCELLATION, VerdictKind.LATE_MOVE, VerdictKind.NO_SHOW)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXAMPLE = "e.g. 2026-11-27 or 2026-11-27T09:00:00+01:00"


class ReportError(SyncdError):
    """The data cannot be reported as asked (amounts in a currency other than the owner's)."""


# --- dates ----------------------------------------------------------------------------------


def parse_bound(text: str) -> date | datetime:
    """Parse a report bound: a day (``2026-11-27``) or a full timestamp with a zone
    (``2026-11-27T09:00:00+01:00``, ``...Z``). Raises ValueError saying what is wrong."""
    value = text.strip()
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{text!r} is not a valid date ({_EXAMPLE})") from None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date or time ({_EXAMPLE})") from None
    if stamp.utcoffset() is None:
        raise ValueError(f"{text!r} needs a zone, e.g. {value}Z or {value}+01:00")
    return stamp


def bound_instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """The instant a bound stands for: a day is its 00:00 in ``zone``; a time stays as it is."""
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=zone)


def _in_range(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)


# --- audit show -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit records ``audit show`` prints. ``client`` is a canonical email (aliases
    already resolved); ``until`` is exclusive. None means no condition."""

    client: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def parse_audit_line(line: bytes) -> dict[str, Any] | None:
    """One audit log line as a record, or None when it is not a JSON object (a torn write)."""
    try:
        record: object = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def _record_time(record: Mapping[str, Any]) -> datetime | None:
    ts = record.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        stamp = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return stamp if stamp.utcoffset() is not None else stamp.replace(tzinfo=UTC)


def _record_clients(record: Mapping[str, Any]) -> list[str]:
    found = [record["client"]] if isinstance(record.get("client"), str) else []
    clients = record.get("clients")
    if isinstance(clients, list):
        found += [c for c in clients if isinstance(c, str)]
    return found


def audit_matches(record: Mapping[str, Any], where: AuditFilter, rules: OwnerPolicy) -> bool:
    """True when the record passes every condition of ``where``. A record's ``client`` and
    ``clients`` are resolved through the configured aliases before they are compared."""
    if where.type is not None and record.get("type") != where.type:
        return False
    if where.since is not None or where.until is not None:
        at = _record_time(record)
        if at is None or not _in_range(at, where.since, where.until):
            return False
    if where.client is not None:
        wanted = rules.canonical(where.client)
        return any(rules.canonical(c) == wanted for c in _record_clients(record))
    return True


AUDIT_HEADER = ("seq", "ts", "type", "calendar", "summary")
_AUDIT_WIDTHS = (6, 20, 15, 10)


def audit_line(cells: Sequence[str]) -> str:
    """One line of the ``audit show`` table. The log is streamed, so the columns have fixed
    widths (a longer cell pushes the rest of its line to the right)."""
    padded = [cell.ljust(width) for cell, width in zip(cells, _AUDIT_WIDTHS, strict=False)]
    return "  ".join([*padded, *cells[len(_AUDIT_WIDTHS) :]]).rstrip()


def audit_row(record: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    """The table row of one record: seq, ts (to the second), type, calendar, a short summary."""
    ts = str(record.get("ts", ""))
    if len(ts) == 27 and ts.endswith("Z"):  # 2026-11-27T09:00:00.000000Z
        ts = ts[:19] + "Z"
    return (
        str(record.get("seq", "")),
        ts,
        str(record.get("type", "")),
        str(record.get("calendar") or ""),
        _summary(record),
    )


def _money_text(value: object) -> str:
    if isinstance(value, dict) and "amount" in value:
        return f"{value['amount']} {value.get('currency', '')}".strip()
    return ""


def _verdict_summary(record: Mapping[str, Any]) -> str:
    parts = [str(record.get("verdict", "")), str(record.get("client", ""))]
    fee = _money_text(record.get("fee"))
    if fee:
        parts.append(f"fee {fee}" + (" waived" if record.get("waived") else ""))
    if record.get("deposit"):
        parts.append(f"deposit {record['deposit']}")
    if record.get("actor") == Actor.UNKNOWN.value:
        parts.append("(who? owner asked)")
    return " ".join(p for p in parts if p)


def _summary(record: Mapping[str, Any]) -> str:
    kind = record.get("type")
    if kind == "change":
        clients = ", ".join(_record_clients(record))
        text = f"{record.get('change', '')} {record.get('uid', '')}"
        return f"{text} ({clients})" if clients else text
    if kind in ("verdict", "verdict_revised", "waiver", "resolution"):
        return _verdict_summary(record)
    if kind == "write":
        text = f"{record.get('status', '')} {record.get('action', '')} {record.get('href', '')}"
        return f"{text}: {record['error']}" if record.get("error") else text
    if kind == "baseline":
        return f"{record.get('instances', 0)} instances"
    if kind == "item_error":
        return f"{record.get('href', '')}: {record.get('reason', '')}"
    if kind == "resync":
        return str(record.get("reason", ""))
    if kind == "booking_flagged":
        flags = record.get("flags")
        codes = ", ".join(str(f) for f in flags) if isinstance(flags, list) else ""
        return f"{record.get('client', '')} {record.get('uid', '')} [{codes}]"
    if kind == "recovery":
        seqs = record.get("dropped_seqs")
        dropped = ", ".join(str(s) for s in seqs) if isinstance(seqs, list) else ""
        return f"dropped seqs {dropped}"
    return ""


# --- clients --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientRow:
    """One line of ``syncd clients``."""

    client: str
    name: str
    kept: int
    cancellations: int
    late_cancellations: int
    moves: int
    late_moves: int
    no_shows: int
    waivers: int
    fees_due: Money
    reliability: float | None
    """Kept share, 0 to 1; None when nothing falls in the window."""
    flags: tuple[str, ...]

    @property
    def label(self) -> str:
        """``Name <email>``, or the email alone when there is no configured name."""
        return self.client if self.name == self.client else f"{self.name} <{self.client}>"

    def to_json(self) -> dict[str, Any]:
        """The row as ``clients --json`` prints it (reliability in percent)."""
        return {
            "client": self.client,
            "name": self.name,
            "kept": self.kept,
            "cancellations": self.cancellations,
            "late_cancellations": self.late_cancellations,
            "moves": self.moves,
            "late_moves": self.late_moves,
            "no_shows": self.no_shows,
            "waivers": self.waivers,
            "fees_due": self.fees_due.to_json(),
            "reliability_pct": _percent(self.reliability),
            "flags": list(self.flags),
        }


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def client_rows(
    verdicts: Iterable[Verdict],
    kept: Iterable[tuple[str, datetime]],
    rules: OwnerPolicy,
    *,
    now: datetime,
    zone: ZoneInfo,
) -> list[ClientRow]:
    """Every client seen in ``verdicts`` or ``kept`` plus every configured client, each once
    under their canonical email, with their record as of ``now``; sorted by name."""
    by_client: dict[str, list[Verdict]] = defaultdict(list)
    kept_by: dict[str, list[datetime]] = defaultdict(list)
    for verdict in verdicts:
        by_client[rules.canonical(verdict.client)].append(verdict)
    for client, start in kept:
        kept_by[rules.canonical(client)].append(start)
    emails = set(by_client) | set(kept_by) | {c.email.lower() for c in rules.clients}
    rows = []
    for email in emails:
        record = client_record(
            email,
            rules.name_for(email),
            sorted(by_client[email], key=lambda v: v.decided_at),
            sorted(kept_by[email]),
            policy=rules.policy_for(email),
            now=now,
            zone=zone,
            currency=rules.pricing.currency,
        )
        rows.append(
            ClientRow(
                client=email,
                name=record.name,
                kept=record.kept,
                cancellations=record.cancellations,
                late_cancellations=record.late_cancellations,
                moves=record.moves,
                late_moves=record.late_moves,
                no_shows=record.no_shows,
                waivers=record.waivers,
                fees_due=record.fees_due or Money(Decimal(0), rules.pricing.currency),
                reliability=record.reliability,
                flags=tuple(dict.fromkeys(f.code for f in record.flags)),
            )
        )
    return sorted(rows, key=lambda r: (r.name.casefold(), r.client))


def client_table(rows: Sequence[ClientRow]) -> list[str]:
    """``syncd clients`` as aligned text lines (a header, then one line per client)."""
    return table(
        ("client", "kept", "late cancels", "no-shows", "reliability", "flags"),
        [
            (
                r.label,
                str(r.kept),
                str(r.late_cancellations),
                str(r.no_shows),
                "-" if r.reliability is None else f"{_percent(r.reliability):g} %",
                ", ".join(r.flags) or "-",
            )
            for r in rows
        ],
    )


# --- fees -----------------------------------------------------------------------------------

FEE_COLUMNS = (
    "fees_due",
    "fees_waived",
    "deposits_credit",
    "deposits_forfeited",
    "deposits_pending",
)
"""The amounts of ``report fees``, in column order."""


@dataclass(frozen=True, slots=True)
class FeeRow:
    """One client's (or the total's) amounts for a period, in the owner's currency."""

    client: str
    name: str
    amounts: Mapping[str, Money]

    def amount(self, column: str) -> Money:
        """The amount of one of `FEE_COLUMNS` (zero when nothing was added)."""
        return self.amounts[column]


@dataclass(frozen=True, slots=True)
class FeeReport:
    """``report fees``: appointments starting in ``[start, end)``, per client and in total."""

    start: datetime
    end: datetime
    currency: str
    clients: tuple[FeeRow, ...]
    total: FeeRow


def _fee_columns(verdict: Verdict) -> list[tuple[str, Money]]:
    """What one verdict adds to which column.

    A fee counts only for late cancellations, late moves and no-shows the client made: due
    unless waived, else waived. A deposit counts by its outcome; a waived verdict's forfeited
    deposit is not counted as forfeited (the waiver forgives it)."""
    found: list[tuple[str, Money]] = []
    if verdict.kind in _FEE_KINDS and verdict.fee is not None and verdict.actor is Actor.CLIENT:
        found.append(("fees_waived" if verdict.waived else "fees_due", verdict.fee))
    amount = verdict.deposit_amount
    if amount is not None:
        if verdict.deposit is Deposit.KEPT_AS_CREDIT:
            found.append(("deposits_credit", amount))
        elif verdict.deposit is Deposit.FORFEITED and not verdict.waived:
            found.append(("deposits_forfeited", amount))
        elif verdict.deposit is Deposit.PENDING:
            found.append(("deposits_pending", amount))
    return found


def _zero_amounts(currency: str) -> dict[str, Money]:
    return {column: Money(Decimal(0), currency) for column in FEE_COLUMNS}


def fee_report(
    verdicts: Iterable[Verdict],
    rules: OwnerPolicy,
    *,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
) -> FeeReport:
    """Sum fees and deposits of the verdicts whose appointment starts in ``[start, end)``
    (an all-day appointment starts at 00:00 in ``zone``), per canonical client and in total.
    Clients whose amounts are all zero are left out. Raises `ReportError` for an amount in
    another currency than ``rules.pricing.currency``."""
    currency = rules.pricing.currency
    sums: dict[str, dict[str, Money]] = {}
    total = _zero_amounts(currency)
    for verdict in verdicts:
        if not _in_range(day_start(verdict.start, zone), start, end):
            continue
        for column, money in _fee_columns(verdict):
            if money.currency != currency:
                raise ReportError(
                    f"verdict {verdict.key} has {money} in {money.currency}, but the report "
                    f"is in {currency} ([pricing] currency)"
                )
            client = rules.canonical(verdict.client)
            row = sums.setdefault(client, _zero_amounts(currency))
            row[column] = row[column] + money
            total[column] = total[column] + money
    rows = [
        FeeRow(client, rules.name_for(client), amounts)
        for client, amounts in sums.items()
        if any(m.amount for m in amounts.values())
    ]
    rows.sort(key=lambda r: (r.name.casefold(), r.client))
    return FeeReport(start, end, currency, tuple(rows), FeeRow("TOTAL", "", total))


def _amount_texts(row: FeeRow) -> dict[str, str]:
    return {column: f"{row.amount(column).amount:.2f}" for column in FEE_COLUMNS}


def fee_report_json(report: FeeReport) -> dict[str, Any]:
    """The report as ``report fees --format json`` prints it; amounts as decimal strings."""
    return {
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "currency": report.currency,
        "clients": [
            {"client": r.client, "name": r.name, **_amount_texts(r)} for r in report.clients
        ],
        "total": _amount_texts(report.total),
    }


def fee_report_rows(report: FeeReport) -> list[list[str]]:
    """Header, one row per client and a TOTAL row (the csv and table layouts)."""
    header = ["client", "name", "currency", *FEE_COLUMNS]
    rows = [header]
    for row in (*report.clients, report.total):
        texts = _amount_texts(row)
        rows.append([row.client, row.name, report.currency, *(texts[c] for c in FEE_COLUMNS)])
    return rows


# --- text tables ----------------------------------------------------------------------------


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    lines = [list(header), *(list(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        for line in lines
    ]
