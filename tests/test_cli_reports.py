"""``audit show``, ``clients`` and ``report fees`` through ``syncd.cli.main``, in process, on a
store and audit log made by real ``once`` cycles."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from syncd.cli import main
from tests.ical import calendar, event

NOW = "2026-11-27T09:00:00Z"  # Friday 10:00 in Berlin
HOUR = timedelta(hours=1)
SOON = datetime.fromisoformat("2026-11-28T07:00:00+00:00")  # 22 h after NOW
LATER = datetime.fromisoformat("2026-12-02T09:00:00+00:00")  # 120 h after NOW

CONFIG = """\
[state]
path = "var/state.db"
[audit]
path = "var/audit.jsonl"
[owner]
emails = ["me@example.com"]
timezone = "Europe/Berlin"
[owner.working_hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
[policy]
late_cancel_window = "48h"
late_cancel_fee = "50%"
deposit = "20%"
rebook_within = "3d"
[pricing]
currency = "EUR"
default_rate = "100"
[[clients]]
email = "jane@example.com"
aliases = ["jd@work.example"]
name = "Jane Doe"
rate = "120"
[[calendars]]
name = "work"
connector = "local"
path = "cal"
[[calendars]]
name = "notes"
connector = "local"
path = "notes"
[notes]
calendar = "notes"
"""


def appointment(uid: str, start: datetime, attendee: str) -> bytes:
    """One one-hour appointment organised by the owner with one attendee line."""
    return calendar(event(uid, start, start + HOUR, "ORGANIZER:mailto:me@example.com", attendee))


def put(path: Path, data: bytes) -> None:
    """Write a calendar file so that its mtime surely moves."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(data)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1000, before + 1000))


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """``main(argv)``: exit code (argparse's SystemExit included), stdout and stderr."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A configuration whose store and log hold two verdicts: Jane (through her alias)
    declined 22 h ahead, a late cancellation; Bob declined 5 days ahead, a timely one with
    a pending deposit."""
    path = tmp_path / "syncd.toml"
    path.write_text(CONFIG)
    folder = tmp_path / "cal"
    folder.mkdir()
    jane = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:jd@work.example"
    bob = "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com"
    put(folder / "a.ics", appointment("a", SOON, jane))
    put(folder / "b.ics", appointment("b", LATER, bob))
    assert run(capsys, "once", "--config", path, "--now", NOW)[0] == 0
    put(folder / "a.ics", appointment("a", SOON, jane.replace("ACCEPTED", "DECLINED")))
    put(folder / "b.ics", appointment("b", LATER, bob.replace("ACCEPTED", "DECLINED")))
    assert run(capsys, "once", "--config", path, "--now", NOW)[0] == 0
    return path


def test_audit_show_json_prints_the_verdict_lines_unchanged(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--type verdict --json prints exactly the log's verdict lines, byte for byte."""
    code, out, _ = run(capsys, "audit", "show", "--config", config, "--type", "verdict", "--json")
    log = (config.parent / "var" / "audit.jsonl").read_text().splitlines()
    expected = [line for line in log if json.loads(line)["type"] == "verdict"]
    assert (code, out.splitlines(), len(expected)) == (0, expected, 2)


def test_audit_show_client_alias_selects_that_clients_records(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--client with Jane's alias shows her change and verdict records and nothing of Bob's."""
    code, out, _ = run(
        capsys, "audit", "show", "--config", config, "--client", "JD@work.example", "--json"
    )
    records = [json.loads(line) for line in out.splitlines()]
    kinds = sorted({r["type"] for r in records})
    uids = {r.get("uid") for r in records}
    assert (code, kinds, uids) == (0, ["change", "verdict"], {"a"})


def test_audit_show_table_has_a_header_and_a_summary(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table starts with its header; the verdict row names the kind, client and fee."""
    code, out, _ = run(capsys, "audit", "show", "--config", config, "--type", "verdict")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["seq", "ts", "type", "calendar", "summary"]
    assert any(
        "late_cancellation jane@example.com fee 60.00 EUR" in line and "work" in line
        for line in lines[1:]
    ), out


def test_audit_show_since_until_bound_by_record_time(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records are logged at NOW: --since that day shows them, --until NOW (exclusive) none."""
    _, since, _ = run(capsys, "audit", "show", "--config", config, "--since", "2026-11-27")
    _, until, _ = run(capsys, "audit", "show", "--config", config, "--until", NOW, "--json")
    assert (len(since.splitlines()) > 1, until) == (True, "")


def test_audit_show_bad_since_exits_2_without_traceback(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --since date is a usage error: exit 2, the option and value named, no traceback."""
    code, out, err = run(capsys, "audit", "show", "--config", config, "--since", "2026-13-45")
    assert (code, out, "--since" in err, "2026-13-45" in err, "Traceback" in err) == (
        2,
        "",
        True,
        True,
        False,
    ), err


def test_audit_show_missing_log_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the first cycle there is no audit log: nothing printed, exit 0."""
    path = tmp_path / "syncd.toml"
    path.write_text(CONFIG)
    assert run(capsys, "audit", "show", "--config", path) == (0, "", "")


def test_clients_json_lists_both_clients_with_their_records(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """clients --json: Bob and Jane (by her canonical email), sorted by name, with counts."""
    code, out, _ = run(capsys, "clients", "--config", config, "--json", "--now", NOW)
    rows = json.loads(out)
    summary = [
        (r["client"], r["name"], r["late_cancellations"], r["cancellations"], r["reliability_pct"])
        for r in rows
    ]
    assert (code, summary) == (
        0,
        [
            ("bob@example.com", "bob@example.com", 0, 1, None),
            ("jane@example.com", "Jane Doe", 1, 0, 0.0),
        ],
    )
    assert rows[1]["fees_due"] == {"amount": "60.00", "currency": "EUR"}


def test_clients_table_names_jane_with_her_email(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The clients table shows 'Jane Doe <jane@example.com>' with one late cancellation."""
    code, out, _ = run(capsys, "clients", "--config", config, "--now", NOW)
    jane = next(line for line in out.splitlines() if "Jane Doe" in line)
    assert (code, jane.split()[:6]) == (0, ["Jane", "Doe", "<jane@example.com>", "0", "1", "0"])


def test_report_fees_csv_has_the_fee_deposits_and_total(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """csv: 60.00 due (50 % of 120) and 24.00 forfeited for Jane, 20.00 pending for Bob."""
    code, out, _ = run(
        capsys,
        "report",
        "fees",
        "--config",
        config,
        "--from",
        "2026-11-01",
        "--to",
        "2026-12-31",
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    by_client = {
        r["client"]: (r["fees_due"], r["deposits_forfeited"], r["deposits_pending"]) for r in rows
    }
    assert (code, [r["client"] for r in rows]) == (
        0,
        ["bob@example.com", "jane@example.com", "TOTAL"],
    )
    assert by_client == {
        "bob@example.com": ("0.00", "0.00", "20.00"),
        "jane@example.com": ("60.00", "24.00", "0.00"),
        "TOTAL": ("60.00", "24.00", "20.00"),
    }


def test_report_fees_json_period_excludes_an_appointment_at_to(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """json up to Jane's start (exclusive, Berlin 08:00) leaves her out; one hour more includes."""
    argv = ("report", "fees", "--config", config, "--from", "2026-11-27", "--format", "json")
    _, before, _ = run(capsys, *argv, "--to", "2026-11-28T08:00:00+01:00")
    _, after, _ = run(capsys, *argv, "--to", "2026-11-28T09:00:00+01:00")
    first, second = json.loads(before), json.loads(after)
    assert (first["from"], first["currency"], first["clients"], first["total"]["fees_due"]) == (
        "2026-11-27T00:00:00+01:00",
        "EUR",
        [],
        "0.00",
    )
    assert [(c["client"], c["fees_due"]) for c in second["clients"]] == [
        ("jane@example.com", "60.00")
    ]


def test_report_fees_from_after_to_exits_2(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from not before --to is a usage error: exit 2 and a message, no traceback."""
    code, out, err = run(
        capsys, "report", "fees", "--config", config, "--from", "2026-12-01", "--to", "2026-11-01"
    )
    assert (code, out, "must lie before --to" in err, "Traceback" in err) == (2, "", True, False)


def test_report_fees_requires_from_and_to(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """report fees without --to exits 2 naming the missing option."""
    code, _, err = run(capsys, "report", "fees", "--config", config, "--from", "2026-11-01")
    assert (code, "--to" in err) == (2, True)


@pytest.mark.parametrize(
    "argv",
    [("audit", "show"), ("clients",), ("report", "fees")],
)
def test_each_command_documents_itself_in_help(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each new command's --help exits 0 and documents --config."""
    code, out, _ = run(capsys, *argv, "--help")
    assert (code, "--config" in out, "--now" in out) == (0, True, False)
