"""The ``syncd`` command line. The one place that turns errors into messages and exit codes.

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from syncd.app import cycled_calendars, open_engine
from syncd.audit import Anchor, verify
from syncd.cli_admin import ADMIN_HANDLERS, add_admin_commands
from syncd.config import CalendarConfig, Config, default_config_path, load_config
from syncd.connector import connector_class
from syncd.daemon import CalendarOutcome, Daemon, run_cycles
from syncd.demo import default_state_dir, write_default
from syncd.errors import ConfigError, ConfigProblem, SyncdError
from syncd.lock import instance_lock
from syncd.logs import configure_logging
from syncd.model import Change, format_when
from syncd.reports import (
    AUDIT_HEADER,
    AUDIT_TYPES,
    AuditFilter,
    audit_line,
    audit_matches,
    audit_row,
    bound_instant,
    client_rows,
    client_table,
    fee_report,
    fee_report_json,
    fee_report_rows,
    parse_audit_line,
    parse_bound,
    table,
)
from syncd.sdnotify import Notifier
from syncd.store import CalendarState, SQLiteStore
from syncd.verdict import Verdict

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
log = structlog.get_logger("syncd.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with code 2 through our handler and no traceback."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"syncd: error: {message}\n")
        raise SystemExit(EXIT_CONFIG)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="syncd",
        description=(
            "Watch appointment calendars, detect late cancellations, moves and no-shows, and keep "
            "a tamper-evident audit log."
        ),
    )
    parser.add_argument("--version", action="version", version="syncd 0.1.0")
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=(
            "configuration file (default: $SYNCD_CONFIG, else $XDG_CONFIG_HOME/syncd/syncd.toml)"
        ),
    )
    common.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log verbosity",
    )
    clocked = _Parser(add_help=False)
    clocked.add_argument(
        "--now",
        type=_iso_time,
        metavar="ISO-8601",
        help=("fix the clock at this time (replay and tests); with run, time advances from it"),
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _command(
        commands,
        "run",
        [common, clocked],
        (
            "run the daemon: poll every calendar on its interval, react at once to local folders; "
            "creates the embedded default configuration on first start"
        ),
    )
    _command(
        commands,
        "once",
        [common, clocked],
        ("run one cycle over every calendar, print what changed, and exit"),
    )
    status = _command(
        commands,
        "status",
        [common],
        ("show each calendar: last cycle, instance count, last error"),
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    _command(
        commands,
        "check-config",
        [common],
        ("validate the configuration and print every problem with its file and key"),
    )
    audit = _command(commands, "audit", [], "audit log tools")
    audit_commands = audit.add_subparsers(
        dest="audit_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    _command(
        audit_commands,
        "verify",
        [common],
        (
            "check the audit log's hash chain against the anchor in the state store; exits 1 "
            "naming the first bad seq"
        ),
    )
    _audit_show_parser(audit_commands, common)
    clients = _command(
        commands,
        "clients",
        [common],
        (
            "list every client (seen in verdicts or kept appointments, or configured): kept, "
            "late cancellations, no-shows, reliability and insight flags, sorted by name"
        ),
    )
    clients.add_argument("--json", action="store_true", help="print JSON instead of a table")
    clients.add_argument("--now", type=_iso_time, help=argparse.SUPPRESS)
    report = _command(commands, "report", [], "reports for invoicing")
    report_commands = report.add_subparsers(
        dest="report_command", required=True, metavar="REPORT", parser_class=_Parser
    )
    _fees_parser(report_commands, common)
    add_admin_commands(commands, common, _command)
    return parser


_DATE_HELP = (
    "ISO-8601: a day (2026-11-27, 00:00 in the owner's time zone) or a time with a zone "
    "(2026-11-27T09:00:00+01:00)"
)


def _audit_show_parser(group: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    show = _command(
        group,
        "show",
        [common],
        (
            "print the audit log's records, oldest first, as a table or as JSON lines; "
            "a missing log prints nothing"
        ),
    )
    show.add_argument(
        "--client",
        metavar="EMAIL",
        help="only records about this client (an alias of a configured client matches too)",
    )
    show.add_argument(
        "--type",
        metavar="TYPE",
        help=f"only records of this type ({', '.join(AUDIT_TYPES)})",
    )
    show.add_argument(
        "--since",
        type=_bound,
        metavar="DATE",
        help=f"only records logged at or after: {_DATE_HELP}",
    )
    show.add_argument(
        "--until", type=_bound, metavar="DATE", help="only records logged before (exclusive)"
    )
    show.add_argument(
        "--json", action="store_true", help="print each record as its JSON line, unchanged"
    )


def _fees_parser(group: argparse._SubParsersAction[_Parser], common: _Parser) -> None:
    fees = _command(
        group,
        "fees",
        [common],
        (
            "fees due and waived, deposits kept as credit, forfeited and pending, per client "
            "and in total, for appointments starting in [--from, --to)"
        ),
    )
    fees.add_argument(
        "--from", dest="start", type=_bound, metavar="DATE", required=True, help=_DATE_HELP
    )
    fees.add_argument(
        "--to",
        dest="end",
        type=_bound,
        metavar="DATE",
        required=True,
        help="end of the period, exclusive (same forms as --from)",
    )
    fees.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (default), csv (a header, one row per client, a TOTAL row) or json",
    )


def _command(
    group: argparse._SubParsersAction[_Parser],
    name: str,
    parents: list[_Parser],
    text: str,
) -> _Parser:
    """Add a subcommand whose one-line help is also its ``--help`` description."""
    return group.add_parser(name, parents=parents, help=text, description=text)


def _iso_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a zone, e.g. 2026-11-27T09:00:00Z")
    return value.astimezone(UTC)


def _bound(text: str) -> date | datetime:
    try:
        return parse_bound(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _UsageError(Exception):
    """A mistake in the arguments found after parsing (exit 2, no traceback)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncd`` console script."""
    args = _parser().parse_args(argv)
    configure_logging(getattr(args, "log_level", "info"))
    action = getattr(args, f"{args.command}_command", None)
    handler = _HANDLERS[args.command if action is None else f"{args.command} {action}"]
    try:
        return handler(args)
    except _UsageError as error:
        sys.stderr.write(f"syncd: error: {error}\n")
        return EXIT_CONFIG
    except ConfigError as error:
        sys.stderr.write("syncd: configuration error:\n")
        for problem in error.problems:
            sys.stderr.write(f"  {problem}\n")
        return EXIT_CONFIG
    except SyncdError as error:
        sys.stderr.write(f"syncd: {error}\n")
        return EXIT_FAILURE
    except OSError as error:
        # e.g. an unwritable state or config folder: a runtime failure, not a crash
        log.debug("os.error", exc_info=True)
        sys.stderr.write(f"syncd: {error}\n")
        return EXIT_FAILURE


def _config(args: argparse.Namespace, *, create_default: bool = False) -> Config:
    path: Path = args.config or default_config_path()
    if create_default and args.config is None and not path.exists():
        write_default(path, default_state_dir(), _clock(args)())
        log.info("config.created", path=str(path), hint="edit it to connect your calendars")
    return load_config(path)


def _clock(args: argparse.Namespace) -> Callable[[], datetime]:
    fixed: datetime | None = getattr(args, "now", None)
    if fixed is None:
        return lambda: datetime.now(UTC)
    if args.command == "once":
        return lambda: fixed
    started = time.monotonic()
    return lambda: fixed + timedelta(seconds=time.monotonic() - started)


def _once(args: argparse.Namespace) -> int:
    config = _config(args, create_default=True)
    with instance_lock(config.state_path.parent), open_engine(config, _clock(args)) as engine:
        outcomes = run_cycles(engine, cycled_calendars(config))
    for outcome in outcomes:
        _print_outcome(outcome, notes=outcome.calendar == config.notes_calendar)
    return EXIT_FAILURE if any(o.error for o in outcomes) else EXIT_OK


def _print_outcome(outcome: CalendarOutcome, *, notes: bool) -> None:
    if outcome.report is None:
        print(f"{outcome.calendar}: failed: {outcome.error}")
        return
    report = outcome.report
    if notes:
        print(f"{report.calendar}: {report.instance_count} notes and holds, read for your markers")
    elif report.baseline:
        print(f"{report.calendar}: baseline of {report.instance_count} instances")
    else:
        print(
            f"{report.calendar}: {len(report.changes)} changes, {report.instance_count} instances"
        )
    for change in report.changes:
        print(f"  {_describe(change)}")
    for error in report.new_errors:
        print(f"  skipped {error.href}: {error.reason}")
    for verdict in report.verdicts:
        fee = "" if verdict.fee is None else f", fee {verdict.fee}"
        waived = " (waived)" if verdict.waived else ""
        deposit = "" if verdict.deposit is None else f", deposit {verdict.deposit.value}"
        print(f"  verdict {verdict.kind.value}{waived}: {verdict.client_name}{fee}{deposit}")


def _describe(change: Change) -> str:
    instance = change.after or change.before
    summary = instance.summary if instance else ""
    times = " -> ".join(
        format_when(t) for t in (change.start_before, change.start_after) if t is not None
    )
    return f"{change.kind.value:<16} {summary or change.uid}  {times}"


def _run(args: argparse.Namespace) -> int:
    config = _config(args, create_default=True)
    with instance_lock(config.state_path.parent):
        daemon = Daemon(config, _clock(args), notifier=Notifier())
        daemon.install_signal_handlers()
        log.info("daemon.started", config=str(config.path), calendars=cycled_calendars(config))
        daemon.run()
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    config = _config(args)
    rows = _status_rows(config)
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        mode = f", changes by {row['sync_mode']}" if row["sync_mode"] else ""
        print(
            f"{row['calendar']} ({row['connector']}): last cycle {row['last_cycle'] or 'never'}, "
            f"last success {row['last_success'] or 'never'}, {row['instances']} instances, "
            f"last error: {row['last_error'] or 'none'}{mode}"
        )
        if row["backoff_until"]:
            print(
                f"  backing off after {row['failures_in_a_row']} failures, until "
                f"{row['backoff_until']}"
            )
        if row["pending_writes"]:
            print(f"  {row['pending_writes']} writes waiting")
        for href in row["items_in_error"]:
            print(f"  item in error: {href}")
    return EXIT_OK


def _status_rows(config: Config) -> list[dict[str, Any]]:
    states: dict[str, CalendarState] = {}
    errors: dict[str, list[str]] = {}
    pending: dict[str, int] = {}
    # status only reads: no cycle ran yet when there is no store, so do not create one
    if config.state_path.exists():
        store = SQLiteStore(config.state_path)
        try:
            states = {s.name: s for s in store.calendar_states()}
            errors = {c.name: sorted(store.item_errors(c.name)) for c in config.calendars}
            pending = store.pending_writes()
        finally:
            store.close()
    rows = []
    for calendar in config.calendars:
        state = states.get(calendar.name)
        rows.append(
            {
                "calendar": calendar.name,
                "connector": calendar.connector,
                "last_cycle": _stamp(state.last_cycle_at if state else None),
                "last_success": _stamp(state.last_success_at if state else None),
                "instances": state.instance_count if state else 0,
                "last_error": state.last_error if state else None,
                "items_in_error": errors.get(calendar.name, []),
                "failures_in_a_row": state.failures if state else 0,
                "backoff_until": _stamp(state.backoff_until if state and state.failures else None),
                "pending_writes": pending.get(calendar.name, 0),
                # the cursor moves with every successful cycle
                "cursor_age_seconds": _age(state.last_success_at if state else None),
                "sync_mode": _cursor_mode(calendar, state.cursor if state else None),
            }
        )
    return rows


def _age(since: datetime | None) -> int | None:
    return None if since is None else int((datetime.now(UTC) - since).total_seconds())


def _cursor_mode(calendar: CalendarConfig, cursor: str | None) -> str | None:
    """How the calendar's connector tracks changes with its stored cursor (None: one way)."""
    return connector_class(calendar.connector, calendar).cursor_mode(cursor)


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _check_config(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"{config.path}: OK ({len(config.calendars)} calendars)")
    for problem in _warnings(config):
        print(f"  warning: {problem}")
    return EXIT_OK


def _warnings(config: Config) -> list[ConfigProblem]:
    """What each calendar's connector points out in its valid options."""
    found: list[ConfigProblem] = []
    for calendar in config.calendars:
        found.extend(connector_class(calendar.connector, calendar).config_warnings(calendar))
    return found


def _audit_verify(args: argparse.Namespace) -> int:
    config = _config(args)
    anchor: Anchor | None = None
    if config.state_path.exists():
        store = SQLiteStore(config.state_path)
        try:
            anchor = store.audit_anchor()
        finally:
            store.close()
    result = verify(config.audit_path, anchor)
    if result.ok:
        print(f"{config.audit_path}: intact, {result.records} records")
        return EXIT_OK
    print(f"{config.audit_path}: first bad seq {result.first_bad_seq}: {result.reason}")
    return EXIT_FAILURE


def _audit_show(args: argparse.Namespace) -> int:
    config = _config(args)
    zone = config.owner.timezone
    where = AuditFilter(
        client=None if args.client is None else config.rules.canonical(args.client),
        type=args.type,
        since=None if args.since is None else bound_instant(args.since, zone),
        until=None if args.until is None else bound_instant(args.until, zone),
    )
    try:
        stream = config.audit_path.open("rb")
    except FileNotFoundError:
        return EXIT_OK
    with stream:
        try:
            _print_audit(stream, where, config, as_json=args.json)
        except BrokenPipeError:
            # the reader went away (`| head`): stop quietly, as other Unix tools do
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def _print_audit(
    lines: Iterable[bytes], where: AuditFilter, config: Config, *, as_json: bool
) -> None:
    """Stream the log: one line in memory at a time; the table header before the first match."""
    header_due = not as_json
    for number, line in enumerate(lines, start=1):
        record = parse_audit_line(line)
        if record is None:
            sys.stderr.write(f"syncd: {config.audit_path}: line {number} is not a record\n")
            continue
        if not audit_matches(record, where, config.rules):
            continue
        if as_json:
            print(line.decode("utf-8").rstrip("\n"))
            continue
        if header_due:
            print(audit_line(AUDIT_HEADER))
            header_due = False
        print(audit_line(audit_row(record)))


def _read_ledger(config: Config) -> tuple[list[Verdict], list[tuple[str, datetime]]]:
    """Verdicts and kept appointments; nothing when no cycle ran yet (no store is created)."""
    if not config.state_path.exists():
        return [], []
    store = SQLiteStore(config.state_path)
    try:
        return store.verdicts(), store.kept_starts()
    finally:
        store.close()


def _clients(args: argparse.Namespace) -> int:
    config = _config(args)
    verdicts, kept = _read_ledger(config)
    now: datetime = args.now or datetime.now(UTC)
    rows = client_rows(verdicts, kept, config.rules, now=now, zone=config.owner.timezone)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], indent=2))
        return EXIT_OK
    for line in client_table(rows):
        print(line)
    return EXIT_OK


def _report_fees(args: argparse.Namespace) -> int:
    config = _config(args)
    zone = config.owner.timezone
    start, end = bound_instant(args.start, zone), bound_instant(args.end, zone)
    if start >= end:
        raise _UsageError(f"--from ({start.isoformat()}) must lie before --to ({end.isoformat()})")
    verdicts, _kept = _read_ledger(config)
    report = fee_report(verdicts, config.rules, start=start, end=end, zone=zone)
    if args.format == "json":
        print(json.dumps(fee_report_json(report), indent=2))
    elif args.format == "csv":
        csv.writer(sys.stdout, lineterminator="\n").writerows(fee_report_rows(report))
    else:
        header, *rows = fee_report_rows(report)
        print(f"fees for appointments from {start.isoformat()} to {end.isoformat()} (exclusive)")
        for line in table(header, rows):
            print(line)
    return EXIT_OK


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _run,
    "once": _once,
    "status": _status,
    "check-config": _check_config,
    "audit verify": _audit_verify,
    "audit show": _audit_show,
    "clients": _clients,
    "report fees": _report_fees,
    **ADMIN_HANDLERS,
}

if __name__ == "__main__":
    sys.exit(main())
