"""The administrator's commands: ``syncd doctor`` and ``syncd auth``. Errors are turned into
messages and exit codes by :func:`syncd.cli.main`, like every other command's."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from syncd.config import (
    CalendarConfig,
    Config,
    default_config_path,
    load_config,
    tokens_folder,
)
from syncd.connector import connector_class
from syncd.doctor import diagnose
from syncd.secrets import SecretError, TokenStore

__all__ = ["ADMIN_HANDLERS", "add_admin_commands"]

EXIT_OK, EXIT_FAILURE = 0, 1
AddCommand = Callable[..., argparse.ArgumentParser]


def add_admin_commands(
    commands: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    command: AddCommand,
) -> None:
    """Declare ``doctor`` and ``auth`` on the main parser (``command`` is its helper)."""
    command(
        commands,
        "doctor",
        [common],
        "check the configuration, the permissions of the state files, the connection to "
        "each calendar and the notes calendar; exits 1 if any check fails",
    )
    auth = command(commands, "auth", [], "store credentials for a calendar")
    providers = auth.add_subparsers(
        dest="auth_command", required=True, metavar="PROVIDER", parser_class=type(auth)
    )
    caldav = command(
        providers,
        "caldav",
        [common],
        "store a CalDAV calendar's password in syncd's token store (0600 in a 0700 folder) "
        "and print the password_file line to put in the configuration",
    )
    caldav.add_argument("--calendar", required=True, help="the [[calendars]] name")
    for kind, how in _FLOWS.items():
        flow = command(providers, kind, [common], how)
        flow.add_argument("--calendar", required=True, help="the [[calendars]] name")
        flow.add_argument(
            "--no-browser",
            action="store_true",
            help="print the address to open instead of starting a browser",
        )
    caldav.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )


def _doctor(args: argparse.Namespace) -> int:
    checks = diagnose(args.config or default_config_path())
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILURE


_FLOWS = {
    "google": "sign in to Google (a consent page and a loopback redirect) and store the "
    "refresh token in the calendar's token_file (0600)",
    "outlook": "sign in to Microsoft 365 with a device code and store MSAL's token cache "
    "(0600) for the calendar",
}


def _calendar(args: argparse.Namespace, kind: str) -> tuple[Config, CalendarConfig]:
    config = load_config(args.config or default_config_path())
    try:
        calendar = config.calendar(args.calendar)
    except KeyError:
        raise SecretError(f"no calendar {args.calendar!r} in {config.path}") from None
    if calendar.connector != kind:
        raise SecretError(f"calendar {args.calendar!r} uses the {calendar.connector} connector")
    return config, calendar


def _auth_flow(args: argparse.Namespace) -> int:
    _config, calendar = _calendar(args, args.auth_command)
    connector = connector_class(calendar.connector, calendar)
    print(connector.authorize(calendar, sys.stdout, open_browser=not args.no_browser))
    return EXIT_OK


def _auth_caldav(args: argparse.Namespace) -> int:
    config, calendar = _calendar(args, "caldav")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {calendar.name}: ")
    if not password:
        raise SecretError("an empty password was not stored")
    store = TokenStore(tokens_folder(config.state_path))
    name = f"caldav-{calendar.name}"
    store.write(name, password.encode("utf-8"))
    print(f"stored; in [[calendars]] {calendar.name!r} set:")
    print(f'password_file = "{store.folder / name}"')
    return EXIT_OK


ADMIN_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "doctor": _doctor,
    "auth caldav": _auth_caldav,
    "auth google": _auth_flow,
    "auth outlook": _auth_flow,
}
