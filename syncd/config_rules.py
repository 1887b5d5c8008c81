"""Configuration of the policy engine: ``[policy]``, ``[pricing]``, ``[[clients]]`` and
``[rebooking]``, parsed into :class:`syncd.rules.OwnerPolicy`."""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from syncd.config_reader import MAX_DURATION, Reader, parse_duration, positive_duration
from syncd.money import FeeSpec, Money, parse_amount, parse_fee
from syncd.rules import (
    ActorRule,
    ClientSettings,
    Escalation,
    LateMove,
    OwnerPolicy,
    PolicySettings,
    Pricing,
    RebookingSettings,
    UnknownActor,
)
from syncd.verdict import VerdictKind

__all__ = ["parse_rules"]

E = TypeVar("E", bound=StrEnum)


_POLICY_KEYS = tuple(f.name for f in dataclasses.fields(PolicySettings))
_OWNER_ONLY = ("escalations", "actor_rules")
_CLIENT_POLICY_KEYS = tuple(k for k in _POLICY_KEYS if k not in _OWNER_ONLY)
_MARKERS = (
    "no_show_markers",
    "attended_markers",
    "waive_markers",
    "important_markers",
    "reviewed_markers",
    "remote_markers",
)
# The notes tell the owner to add one of these: an empty list would leave no way to do it.
_NON_EMPTY = ("reviewed_markers", "remote_markers")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CLIENT_KEYS = ("email", "aliases", "name", "rate", "policy")
# "attended" is not a lapse a client could be escalated for.
_ESCALATION_KINDS = tuple(k.value for k in VerdictKind if k is not VerdictKind.ATTENDED)
_ESCALATION_ACTIONS = ("require_deposit",)
_DAY = timedelta(days=1)


def parse_rules(
    data: Mapping[str, Any], owner_emails: tuple[str, ...], reader: Reader
) -> OwnerPolicy:
    """The policy sections of a parsed configuration; problems go to ``reader``."""
    # [pricing] first: fees and rates are read in its currency wherever it stands in the file.
    pricing = _pricing(reader.table(data, "pricing"), reader)
    table = reader.table(data, "policy")
    reader.known(table, _POLICY_KEYS, "policy.")
    values = _policy_values(table, "policy.", pricing.currency, reader)
    _moves_follow_cancels(values)
    policy = PolicySettings(
        **values, escalations=_escalations(table, reader), actor_rules=_actor_rules(table, reader)
    )
    # A client's late_cancel_window carries their late_move_window along unless either is set.
    follow = "late_move_window" not in table
    clients = tuple(_clients(data, policy, follow, pricing.currency, owner_emails, reader))
    rebooking = _rebooking(reader.table(data, "rebooking"), reader)
    return OwnerPolicy(policy=policy, pricing=pricing, clients=clients, rebooking=rebooking)


def _moves_follow_cancels(values: dict[str, Any]) -> None:
    if "late_cancel_window" in values and "late_move_window" not in values:
        values["late_move_window"] = values["late_cancel_window"]


def _pricing(table: Mapping[str, Any], reader: Reader) -> Pricing:
    reader.known(table, ("currency", "default_rate"), "pricing.")
    default = Pricing()
    currency = reader.converted(table, "currency", "pricing.currency", _currency, default.currency)
    rate = reader.converted(
        table,
        "default_rate",
        "pricing.default_rate",
        lambda text: parse_amount(text, currency),
        Money(default.default_rate.amount, currency),
    )
    return Pricing(currency=currency, default_rate=rate)


def _currency(text: str) -> str:
    code = text.strip()
    if len(code) != 3 or not (code.isascii() and code.isalpha()):
        raise ValueError(f"{text!r} is not a three-letter currency code such as 'EUR'")
    return code.upper()


def _policy_values(
    table: Mapping[str, Any], prefix: str, currency: str, reader: Reader
) -> dict[str, Any]:
    """The valid [policy] keys present in ``table``, typed (escalations and actor rules aside)."""

    def fee(text: str) -> FeeSpec:
        return parse_fee(text, currency)

    converters: dict[str, Callable[[str], Any]] = {
        "late_cancel_window": _window,
        "late_move_window": _window,
        "late_move": _enum(LateMove),
        "late_cancel_fee": fee,
        "no_show_fee": fee,
        "deposit": fee,
        "rebook_within": _window,
        "unknown_actor": _enum(UnknownActor),
        "no_show_grace": _window,
        "review_every": positive_duration,
        "readiness_lead": positive_duration,
    }
    values: dict[str, Any] = {
        key: reader.converted(table, key, prefix + key, convert, None)
        for key, convert in converters.items()
    }
    grace = "grace_late_cancels"
    values[grace] = reader.bounded(table, grace, prefix + grace, 0)
    values.update((key, reader.words(table, key, prefix + key)) for key in _MARKERS)
    for key in _NON_EMPTY:
        if values.get(key) == ():
            reader.problem(prefix + key, "must name at least one marker")
            values[key] = None
    values["meeting_link_hosts"] = _hosts(table, prefix + "meeting_link_hosts", reader)
    return {key: value for key, value in values.items() if value is not None}


def _hosts(table: Mapping[str, Any], where: str, reader: Reader) -> tuple[str, ...] | None:
    """Host names such as ``video.example.com`` (no scheme, no path)."""
    hosts = reader.words(table, "meeting_link_hosts", where)
    bad = [h for h in hosts or () if not _HOST.match(h)]
    if bad:
        reader.problem(where, f"must be host names such as 'video.example.com', got {bad!r}")
        return None
    return hosts


def _window(text: str) -> timedelta:
    """A duration of zero or more: a zero window means a change is never late."""
    if text.strip().startswith("-"):
        raise ValueError(f"{text!r} must not be negative")
    value = parse_duration(text)
    if value > MAX_DURATION:
        raise ValueError(f"{text!r} is too long (at most {MAX_DURATION.days}d)")
    return value


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        value = text.strip().lower()
        if value in choices:
            return value
        close = difflib.get_close_matches(value, choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{text!r} is not one of {', '.join(map(repr, choices))}{hint}")

    return convert


def _enum(kind: type[E]) -> Callable[[str], E]:
    pick = _one_of(tuple(member.value for member in kind))
    return lambda text: kind(pick(text))


def _escalations(table: Mapping[str, Any], reader: Reader) -> tuple[Escalation, ...]:
    found = []
    for where, item in reader.tables(table, "escalations", "policy.escalations"):
        reader.known(item, ("after", "kind", "within", "action"), f"{where}.")
        _require(item, ("after", "kind", "within"), where, reader)
        after = reader.bounded(item, "after", f"{where}.after", 1)
        kind = reader.converted(item, "kind", f"{where}.kind", _one_of(_ESCALATION_KINDS), None)
        within = reader.converted(item, "within", f"{where}.within", positive_duration, None)
        action = reader.converted(
            item, "action", f"{where}.action", _one_of(_ESCALATION_ACTIONS), _ESCALATION_ACTIONS[0]
        )
        if after is not None and kind is not None and within is not None:
            found.append(Escalation(after=after, kind=kind, within=within, action=action))
    return tuple(found)


def _actor_rules(table: Mapping[str, Any], reader: Reader) -> tuple[ActorRule, ...]:
    found = []
    for where, item in reader.tables(table, "actor_rules", "policy.actor_rules"):
        reader.known(item, ("contains", "actor"), f"{where}.")
        _require(item, ("contains", "actor"), where, reader)
        contains = reader.converted(item, "contains", f"{where}.contains", _text, None)
        actor = reader.converted(
            item, "actor", f"{where}.actor", _one_of(("client", "owner")), None
        )
        if contains is not None and actor is not None:
            found.append(ActorRule(contains=contains, actor=actor))
    return tuple(found)


def _require(item: Mapping[str, Any], keys: tuple[str, ...], where: str, reader: Reader) -> None:
    for key in keys:
        if key not in item:
            reader.problem(f"{where}.{key}", "is required")


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _email(text: str) -> str:
    if "@" not in text:
        raise ValueError(f"{text!r} is not an email address")
    return text.strip().lower()


def _clients(
    data: Mapping[str, Any],
    policy: PolicySettings,
    follow: bool,
    currency: str,
    owner_emails: tuple[str, ...],
    reader: Reader,
) -> Iterator[ClientSettings]:
    seen: dict[str, str] = {email: "owner.emails" for email in owner_emails}
    for where, item in reader.tables(data, "clients", "clients"):
        reader.known(item, _CLIENT_KEYS, f"{where}.")
        _require(item, ("email",), where, reader)
        email = reader.converted(item, "email", f"{where}.email", _email, None)
        aliases = _aliases(item, where, reader)
        addresses = [(f"{where}.email", email)] if email else []
        addresses += [(f"{where}.aliases[{i}]", alias) for i, alias in enumerate(aliases)]
        for key, address in addresses:
            if address in seen:
                reader.problem(key, f"{address!r} is already given at {seen[address]}")
            seen.setdefault(address, key)
        name = reader.typed(item, "name", f"{where}.name", str, "")
        rate = reader.converted(
            item, "rate", f"{where}.rate", lambda text: parse_amount(text, currency), None
        )
        overrides = _client_policy(item, where, policy, follow, currency, reader)
        if email:
            yield ClientSettings(email, aliases, name.strip(), rate, overrides)


def _aliases(item: Mapping[str, Any], where: str, reader: Reader) -> tuple[str, ...]:
    aliases = reader.typed(item, "aliases", f"{where}.aliases", list, [])
    if not all(isinstance(a, str) and "@" in a for a in aliases):
        reader.problem(f"{where}.aliases", "must be a list of email addresses")
        return ()
    return tuple(a.strip().lower() for a in aliases)


def _client_policy(
    item: Mapping[str, Any],
    where: str,
    policy: PolicySettings,
    follow: bool,
    currency: str,
    reader: Reader,
) -> PolicySettings | None:
    """The owner's policy with this client's overrides merged in; None without overrides."""
    table = reader.subtable(item, "policy", f"{where}.policy")
    prefix = f"{where}.policy."
    for key in _OWNER_ONLY:
        if key in table:
            reader.problem(prefix + key, "applies to every client: set it in [policy]")
    reader.known(
        {k: v for k, v in table.items() if k not in _OWNER_ONLY}, _CLIENT_POLICY_KEYS, prefix
    )
    values = _policy_values(table, prefix, currency, reader)
    if follow:
        _moves_follow_cancels(values)
    return dataclasses.replace(policy, **values) if values else None


def _rebooking(table: Mapping[str, Any], reader: Reader) -> RebookingSettings:
    keys = tuple(f.name for f in dataclasses.fields(RebookingSettings))
    reader.known(table, keys, "rebooking.")
    values: dict[str, Any] = {
        "count": reader.bounded(table, "count", "rebooking.count", 0, 20),
        "search_days": reader.bounded(table, "search_days", "rebooking.search_days", 1, 90),
        "buffer": reader.converted(table, "buffer", "rebooking.buffer", _window, None),
        "granularity": reader.converted(
            table, "granularity", "rebooking.granularity", _granularity, None
        ),
        "holds": reader.typed(table, "holds", "rebooking.holds", bool, RebookingSettings().holds),
    }
    return RebookingSettings(**{k: v for k, v in values.items() if v is not None})


def _granularity(text: str) -> timedelta:
    value = parse_duration(text)
    if value <= timedelta():
        raise ValueError(f"{text!r} must be longer than zero")
    if value > _DAY:
        raise ValueError(f"{text!r} is longer than a day")
    if _DAY % value:
        raise ValueError(f"{text!r} does not divide a day evenly (use e.g. 15m, 30m, 1h)")
    return value
