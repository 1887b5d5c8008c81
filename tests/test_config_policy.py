"""Tests for ``syncd.config``: the [policy], [pricing], [[clients]] and [rebooking] sections."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from syncd.config import Config, DaemonConfig, OwnerConfig, load_config
from syncd.errors import ConfigError, ConfigProblem
from syncd.money import FeeSpec, Money
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

CALENDAR = """\
[[calendars]]
name = "work"
connector = "local"
path = "cal"
"""

# Every [policy] key that a client may override too.
POLICY_KEYS = """\
late_cancel_window = "24h"
late_move_window = "12h"
late_move = "deposit_rule"
late_cancel_fee = "40"
no_show_fee = "75.5%"
deposit = "20%"
rebook_within = "5d"
grace_late_cancels = 1
unknown_actor = "client"
no_show_grace = "15m"
no_show_markers = ["No-Show"]
attended_markers = ["Here"]
waive_markers = ["Waive", "Force-Majeure"]
important_markers = []
review_every = "90d"
"""

# [policy] comes before [pricing] on purpose: fees are read in the [pricing] currency anyway.
FULL = (
    "[policy]\n"
    + POLICY_KEYS
    + """\
[[policy.escalations]]
after = 2
kind = "late_cancellation"
within = "90d"
action = "require_deposit"
[[policy.escalations]]
after = 1
kind = "no_show"
within = "1w"
[[policy.actor_rules]]
contains = "Canceled by invitee"
actor = "client"
[pricing]
currency = "chf"
default_rate = "150"
[[clients]]
email = "Jane@Example.com"
aliases = ["Jane.Doe@Work.example"]
name = "Jane Doe"
rate = "120.50 CHF"
policy = { late_cancel_window = "6h", no_show_fee = "10" }
[[clients]]
email = "bob@example.com"
[rebooking]
count = 5
buffer = "0m"
search_days = 14
holds = true
granularity = "15m"
"""
)


def write(folder: Path, text: str) -> Path:
    """Write ``text`` plus one calendar as ``syncd.toml`` in ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "syncd.toml"
    path.write_text(text + CALENDAR, encoding="utf-8")
    return path


def load(folder: Path, text: str) -> OwnerPolicy:
    """The policy settings of a configuration made of ``text`` and one calendar."""
    return load_config(write(folder, text)).rules


def problems_of(path: Path) -> list[ConfigProblem]:
    """The problems ``load_config`` reports for ``path`` (fails if it accepts the file)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def problem_at(folder: Path, text: str, key: str) -> str:
    """The message of the one problem reported at ``key`` for ``text``."""
    found = problems_of(write(folder, text))
    messages = [p.message for p in found if p.key == key]
    assert len(messages) == 1, f"expected one problem at {key!r}, got {found}"
    return messages[0]


@pytest.fixture
def full(tmp_path: Path) -> OwnerPolicy:
    """The policy settings of the full configuration above."""
    return load(tmp_path, FULL)


# --- a full valid configuration -------------------------------------------------------------


def test_policy_section_parses_into_typed_values(full: OwnerPolicy) -> None:
    """Every [policy] key becomes its typed value; flat fees are in the [pricing] currency."""
    assert full.policy == PolicySettings(
        late_cancel_window=timedelta(hours=24),
        late_move_window=timedelta(hours=12),
        late_move=LateMove.DEPOSIT_RULE,
        late_cancel_fee=FeeSpec(flat=Money(Decimal(40), "CHF")),  # "40", in CHF
        no_show_fee=FeeSpec(percent=Decimal("75.5")),
        deposit=FeeSpec(percent=Decimal(20)),
        rebook_within=timedelta(days=5),
        grace_late_cancels=1,
        unknown_actor=UnknownActor.CLIENT,
        no_show_grace=timedelta(minutes=15),
        no_show_markers=("no-show",),
        attended_markers=("here",),
        waive_markers=("waive", "force-majeure"),
        important_markers=(),
        escalations=(
            Escalation(2, "late_cancellation", timedelta(days=90), "require_deposit"),
            Escalation(1, "no_show", timedelta(weeks=1), "require_deposit"),
        ),
        actor_rules=(ActorRule("Canceled by invitee", "client"),),
        review_every=timedelta(days=90),
    )


def test_pricing_section_parses_currency_and_rate(full: OwnerPolicy) -> None:
    """The currency is upper-cased and the default rate is Money in it."""
    assert full.pricing == Pricing(currency="CHF", default_rate=Money(Decimal(150), "CHF"))


def test_rebooking_section_parses_into_typed_values(full: OwnerPolicy) -> None:
    """Every [rebooking] key becomes its typed value; a zero buffer is allowed."""
    assert full.rebooking == RebookingSettings(
        count=5,
        buffer=timedelta(0),
        search_days=14,
        holds=True,
        granularity=timedelta(minutes=15),
    )


def test_clients_keep_file_order_with_lower_case_addresses(full: OwnerPolicy) -> None:
    """Clients come as a tuple in file order; emails and aliases are lower-cased."""
    assert [(c.email, c.aliases, c.name) for c in full.clients] == [
        ("jane@example.com", ("jane.doe@work.example",), "Jane Doe"),
        ("bob@example.com", (), ""),
    ]


def test_client_rate_is_money_in_the_pricing_currency(full: OwnerPolicy) -> None:
    """A client's rate is Money; a client without one is priced at the default rate."""
    assert (full.price_for("jane@example.com"), full.price_for("bob@example.com")) == (
        Money(Decimal("120.50"), "CHF"),
        Money(Decimal(150), "CHF"),
    )


def test_client_policy_overrides_are_merged_over_the_owners(full: OwnerPolicy) -> None:
    """A client's policy has their overrides and the owner's value for every other key."""
    expected = dataclasses.replace(
        full.policy,
        late_cancel_window=timedelta(hours=6),
        no_show_fee=FeeSpec(flat=Money(Decimal(10), "CHF")),
    )
    assert full.clients[0].policy == expected


def test_client_without_overrides_has_no_policy_of_their_own(full: OwnerPolicy) -> None:
    """A client without a policy table has policy None and gets the owner's policy."""
    assert (full.clients[1].policy, full.policy_for("bob@example.com")) == (None, full.policy)


def test_empty_client_policy_table_means_no_overrides(tmp_path: Path) -> None:
    """An empty policy table is the same as none at all."""
    rules = load(tmp_path, '[[clients]]\nemail = "a@example.com"\npolicy = {}\n')
    assert rules.clients[0].policy is None


def test_alias_maps_to_the_client_and_its_canonical_address(full: OwnerPolicy) -> None:
    """An alias, in any case, finds the client and canonicalises to the main address."""
    alias = "JANE.DOE@work.example"
    assert (full.client(alias), full.canonical(alias)) == (full.clients[0], "jane@example.com")


def test_alias_gets_the_clients_policy(full: OwnerPolicy) -> None:
    """Policy lookup by an alias gives the client's merged policy."""
    assert full.policy_for("jane.doe@work.example").late_cancel_window == timedelta(hours=6)


# --- defaults -------------------------------------------------------------------------------


def test_absent_sections_give_the_default_settings(tmp_path: Path) -> None:
    """Without the four sections the settings are the defaults of syncd.rules."""
    assert load(tmp_path, "") == OwnerPolicy()


def test_config_built_without_rules_has_the_default_policy(tmp_path: Path) -> None:
    """Config constructed without rules (as older code does) gets OwnerPolicy()."""
    config = Config(
        path=tmp_path,
        state_path=tmp_path,
        audit_path=tmp_path,
        daemon=DaemonConfig(),
        owner=OwnerConfig(),
        calendars=(),
    )
    assert config.rules == OwnerPolicy()


def test_late_move_window_defaults_to_the_late_cancel_window(tmp_path: Path) -> None:
    """Only late_cancel_window given: late moves use the same window."""
    rules = load(tmp_path, '[policy]\nlate_cancel_window = "24h"\n')
    assert rules.policy.late_move_window == timedelta(hours=24)


def test_client_late_cancel_window_carries_their_late_move_window(tmp_path: Path) -> None:
    """When late_move_window is set nowhere, a client's cancel window is their move window."""
    text = '[[clients]]\nemail = "a@example.com"\npolicy = { late_cancel_window = "6h" }\n'
    assert load(tmp_path, text).clients[0].policy == dataclasses.replace(
        PolicySettings(),
        late_cancel_window=timedelta(hours=6),
        late_move_window=timedelta(hours=6),
    )


def test_owners_explicit_late_move_window_stays_for_a_client(tmp_path: Path) -> None:
    """An owner's own late_move_window is kept when a client overrides only the cancel window."""
    text = (
        '[policy]\nlate_move_window = "12h"\n'
        '[[clients]]\nemail = "a@example.com"\npolicy = { late_cancel_window = "6h" }\n'
    )
    policy = load(tmp_path, text).clients[0].policy
    assert policy is not None
    assert policy.late_move_window == timedelta(hours=12)


def test_default_rate_follows_the_configured_currency(tmp_path: Path) -> None:
    """Without default_rate the default price is 100 in the configured currency."""
    assert load(tmp_path, '[pricing]\ncurrency = "USD"\n').pricing.default_rate == Money(
        Decimal(100), "USD"
    )


def test_zero_late_cancel_window_is_allowed(tmp_path: Path) -> None:
    """A zero-length window (never late) is accepted."""
    rules = load(tmp_path, '[policy]\nlate_cancel_window = "0h"\n')
    assert rules.policy.late_cancel_window == timedelta(0)


def test_every_policy_key_but_owner_only_ones_can_be_overridden_per_client(
    tmp_path: Path,
) -> None:
    """Each [policy] key but escalations and actor_rules reads the same in a client's policy."""
    owner = load(tmp_path, "[policy]\n" + POLICY_KEYS).policy
    inline = ", ".join(POLICY_KEYS.splitlines())
    text = f'[[clients]]\nemail = "a@example.com"\npolicy = {{ {inline} }}\n'
    assert (load(tmp_path, text).clients[0].policy, owner == PolicySettings()) == (owner, False)


# --- every problem at its dotted key --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("late_cancel_fee", '"50 %%"', "neither a share"),
        ("late_cancel_fee", '"150%"', "more than 100%"),
        ("no_show_fee", '"-5%"', "neither a share"),
        ("deposit", '"ten"', "neither a share"),
        ("late_move", '"charge"', "is not one of 'fee', 'deposit_rule', 'free'"),
        ("unknown_actor", '"nobody"', "is not one of 'ask', 'client', 'owner'"),
        ("grace_late_cancels", "-1", "at least 0"),
        ("grace_late_cancels", "true", "must be an integer"),
        ("late_cancel_window", '"-1h"', "must not be negative"),
        ("late_move_window", '"soon"', "not a duration"),
        ("rebook_within", "3", "must be a string"),
        ("review_every", '"0d"', "longer than zero"),
        ("no_show_markers", '["no-show", ""]', "non-empty strings"),
        ("waive_markers", '"waive"', "non-empty strings"),
        ("readiness_lead", '"0h"', "longer than zero"),
        ("readiness_lead", '"two days"', "not a duration"),
        ("remote_markers", '"remote"', "non-empty strings"),
        ("reviewed_markers", '["reviewed", ""]', "non-empty strings"),
        ("reviewed_markers", "[]", "at least one marker"),
        ("remote_markers", "[]", "at least one marker"),
        ("meeting_link_hosts", '["https://video.example.com/"]', "host names"),
        ("meeting_link_hosts", '"video.example.com"', "non-empty strings"),
    ],
)
def test_bad_policy_value_is_a_problem_at_its_key(
    tmp_path: Path, key: str, value: str, reason: str
) -> None:
    """A bad [policy] value is reported at policy.<key> with the reason."""
    assert reason in problem_at(tmp_path, f"[policy]\n{key} = {value}\n", f"policy.{key}")


def test_flat_fee_in_another_currency_names_both_currencies(tmp_path: Path) -> None:
    """ "40 USD" when [pricing] is in EUR is reported, naming USD and EUR."""
    text = '[policy]\nlate_cancel_fee = "40 USD"\n[pricing]\ncurrency = "EUR"\n'
    message = problem_at(tmp_path, text, "policy.late_cancel_fee")
    assert ("USD" in message, "EUR" in message) == (True, True)


def test_fee_currency_comes_from_pricing_placed_after_policy(tmp_path: Path) -> None:
    """A fee in EUR is wrong when a later [pricing] says USD."""
    text = '[policy]\ndeposit = "40 EUR"\n[pricing]\ncurrency = "USD"\n'
    assert "currency is USD" in problem_at(tmp_path, text, "policy.deposit")


def test_bad_client_override_is_a_problem_at_its_dotted_key(tmp_path: Path) -> None:
    """A bad value in a client's policy is reported at clients[i].policy.<key>."""
    text = (
        '[[clients]]\nemail = "a@example.com"\n'
        '[[clients]]\nemail = "b@example.com"\npolicy = { deposit = "200%" }\n'
    )
    assert "more than 100%" in problem_at(tmp_path, text, "clients[1].policy.deposit")


def test_escalations_cannot_be_set_per_client(tmp_path: Path) -> None:
    """escalations in a client's policy is reported: it belongs in [policy]."""
    text = '[[clients]]\nemail = "a@example.com"\npolicy = { escalations = [] }\n'
    assert "[policy]" in problem_at(tmp_path, text, "clients[0].policy.escalations")


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ('after = 2\nkind = "lateness"\nwithin = "90d"', "kind", "is not one of"),
        ('after = 2\nkind = "attended"\nwithin = "90d"', "kind", "is not one of"),
        ('after = 0\nkind = "no_show"\nwithin = "90d"', "after", "at least 1"),
        ('after = 2\nkind = "no_show"\nwithin = "0d"', "within", "longer than zero"),
        ('after = 2\nkind = "no_show"\nwithin = "9d"\naction = "ban"', "action", "not one of"),
        ('after = 2\nkind = "no_show"', "within", "is required"),
    ],
)
def test_bad_escalation_is_a_problem_at_its_dotted_key(
    tmp_path: Path, table: str, key: str, reason: str
) -> None:
    """A bad second escalation is reported at policy.escalations[1].<key>."""
    good = '[[policy.escalations]]\nafter = 1\nkind = "move"\nwithin = "30d"\n'
    text = f"{good}[[policy.escalations]]\n{table}\n"
    assert reason in problem_at(tmp_path, text, f"policy.escalations[1].{key}")


def test_escalation_with_unknown_kind_suggests_a_close_one(tmp_path: Path) -> None:
    """kind = "late_cancelation" is answered with "did you mean 'late_cancellation'"."""
    text = '[[policy.escalations]]\nafter = 2\nkind = "late_cancelation"\nwithin = "90d"\n'
    message = problem_at(tmp_path, text, "policy.escalations[0].kind")
    assert "did you mean 'late_cancellation'" in message


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ('contains = "  "\nactor = "client"', "contains", "must not be empty"),
        ('contains = "x"\nactor = "robot"', "actor", "is not one of 'client', 'owner'"),
        ('actor = "owner"', "contains", "is required"),
    ],
)
def test_bad_actor_rule_is_a_problem_at_its_dotted_key(
    tmp_path: Path, table: str, key: str, reason: str
) -> None:
    """A bad actor rule is reported at policy.actor_rules[0].<key>."""
    text = f"[[policy.actor_rules]]\n{table}\n"
    assert reason in problem_at(tmp_path, text, f"policy.actor_rules[0].{key}")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("currency", '"EURO"', "three-letter currency code"),
        ("currency", '"€€€"', "three-letter currency code"),
        ("default_rate", '"100 USD"', "is in USD, but [pricing] currency is EUR"),
        ("default_rate", '"-100"', "not an amount"),
        ("default_rate", "100", "must be a string"),
    ],
)
def test_bad_pricing_value_is_a_problem_at_its_key(
    tmp_path: Path, key: str, value: str, reason: str
) -> None:
    """A bad [pricing] value is reported at pricing.<key>."""
    assert reason in problem_at(tmp_path, f"[pricing]\n{key} = {value}\n", f"pricing.{key}")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("granularity", '"7m"', "does not divide a day evenly"),
        ("granularity", '"0m"', "longer than zero"),
        ("granularity", '"2d"', "longer than a day"),
        ("count", "21", "from 0 to 20"),
        ("search_days", "0", "from 1 to 90"),
        ("search_days", "91", "from 1 to 90"),
        ("buffer", '"-5m"', "must not be negative"),
        ("holds", '"yes"', "must be bool"),
    ],
)
def test_bad_rebooking_value_is_a_problem_at_its_key(
    tmp_path: Path, key: str, value: str, reason: str
) -> None:
    """A bad [rebooking] value is reported at rebooking.<key>."""
    text = f"[rebooking]\n{key} = {value}\n"
    assert reason in problem_at(tmp_path, text, f"rebooking.{key}")


@pytest.mark.parametrize("granularity", ["15m", "1h", "90m", "1d"])
def test_granularity_dividing_a_day_is_accepted(tmp_path: Path, granularity: str) -> None:
    """Grids that divide 24 hours evenly are accepted."""
    rules = load(tmp_path, f'[rebooking]\ngranularity = "{granularity}"\n')
    assert rules.rebooking.granularity * (timedelta(days=1) // rules.rebooking.granularity) == (
        timedelta(days=1)
    )


# --- clients --------------------------------------------------------------------------------


def test_client_without_email_is_a_problem(tmp_path: Path) -> None:
    """A [[clients]] entry without email is reported at clients[0].email."""
    assert problem_at(tmp_path, '[[clients]]\nname = "Jane"\n', "clients[0].email") == (
        "is required"
    )


def test_client_email_without_at_sign_is_a_problem(tmp_path: Path) -> None:
    """An email without @ is reported."""
    text = '[[clients]]\nemail = "jane"\n'
    assert "not an email address" in problem_at(tmp_path, text, "clients[0].email")


def test_client_alias_without_at_sign_is_a_problem(tmp_path: Path) -> None:
    """An alias that is not an email address is reported at clients[0].aliases."""
    text = '[[clients]]\nemail = "a@example.com"\naliases = ["jane"]\n'
    assert "email addresses" in problem_at(tmp_path, text, "clients[0].aliases")


def test_duplicate_client_email_is_a_problem(tmp_path: Path) -> None:
    """A second client with the same email, in another case, is reported at its email."""
    text = '[[clients]]\nemail = "a@example.com"\n[[clients]]\nemail = "A@example.com"\n'
    assert "clients[0].email" in problem_at(tmp_path, text, "clients[1].email")


def test_alias_equal_to_another_clients_email_is_a_problem(tmp_path: Path) -> None:
    """An alias that is another client's email is reported at that alias."""
    text = (
        '[[clients]]\nemail = "a@example.com"\n'
        '[[clients]]\nemail = "b@example.com"\naliases = ["x@example.com", "a@example.com"]\n'
    )
    assert "clients[0].email" in problem_at(tmp_path, text, "clients[1].aliases[1]")


def test_email_equal_to_another_clients_alias_is_a_problem(tmp_path: Path) -> None:
    """An email that is an earlier client's alias is reported at that email."""
    text = (
        '[[clients]]\nemail = "a@example.com"\naliases = ["b@example.com"]\n'
        '[[clients]]\nemail = "b@example.com"\n'
    )
    assert "clients[0].aliases[0]" in problem_at(tmp_path, text, "clients[1].email")


def test_client_with_the_owners_email_is_a_problem(tmp_path: Path) -> None:
    """A client address that is one of the owner's emails is reported."""
    text = '[owner]\nemails = ["me@example.com"]\n[[clients]]\nemail = "Me@example.com"\n'
    assert "owner.emails" in problem_at(tmp_path, text, "clients[0].email")


def test_clients_must_be_an_array_of_tables(tmp_path: Path) -> None:
    """A [clients] table instead of [[clients]] is reported."""
    text = '[clients]\nemail = "a@example.com"\n'
    assert "array of tables" in problem_at(tmp_path, text, "clients")


def test_client_policy_must_be_a_table(tmp_path: Path) -> None:
    """A client's policy given as text is reported at clients[0].policy."""
    text = '[[clients]]\nemail = "a@example.com"\npolicy = "strict"\n'
    assert "must be a table" in problem_at(tmp_path, text, "clients[0].policy")


# --- unknown keys and all problems at once --------------------------------------------------


def test_unknown_policy_key_suggests_the_close_one(tmp_path: Path) -> None:
    """policy.late_cancel_windw is answered with "did you mean 'late_cancel_window'"."""
    text = '[policy]\nlate_cancel_windw = "24h"\n'
    message = problem_at(tmp_path, text, "policy.late_cancel_windw")
    assert "did you mean 'late_cancel_window'" in message


def test_unknown_client_policy_key_suggests_the_close_one(tmp_path: Path) -> None:
    """A misspelt key in a client's policy is reported at its dotted key with a suggestion."""
    text = '[[clients]]\nemail = "a@example.com"\npolicy = { deposti = "10%" }\n'
    assert "did you mean 'deposit'" in problem_at(tmp_path, text, "clients[0].policy.deposti")


@pytest.mark.parametrize(
    ("text", "key", "close"),
    [
        ('[pricing]\ncurency = "EUR"\n', "pricing.curency", "currency"),
        ("[rebooking]\ncont = 3\n", "rebooking.cont", "count"),
        ('[[clients]]\nemail = "a@example.com"\nalias = []\n', "clients[0].alias", "aliases"),
        ('pricng = { currency = "EUR" }\n', "pricng", "pricing"),
    ],
)
def test_unknown_key_in_the_new_sections_suggests_the_close_one(
    tmp_path: Path, text: str, key: str, close: str
) -> None:
    """Misspelt keys in [pricing], [rebooking], [[clients]] and at the top get a suggestion."""
    assert f"did you mean {close!r}" in problem_at(tmp_path, text, key)


def test_every_policy_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Problems in all four sections come in one ConfigError, each with the file."""
    text = (
        '[policy]\nlate_move = "x"\n[pricing]\ncurrency = "x"\n'
        '[[clients]]\nname = "x"\n[rebooking]\ncount = -1\n'
    )
    path = write(tmp_path, text)
    assert {(p.file, p.key) for p in problems_of(path)} == {
        (path.resolve(), "policy.late_move"),
        (path.resolve(), "pricing.currency"),
        (path.resolve(), "clients[0].email"),
        (path.resolve(), "rebooking.count"),
    }


def test_shipped_example_has_a_client_with_an_override() -> None:
    """config/syncd.example.toml's client keeps the owner's policy but their own window."""
    example = Path(__file__).resolve().parent.parent / "config" / "syncd.example.toml"
    rules = load_config(example).rules
    jane = rules.client("jane.doe@work.example")
    assert jane == ClientSettings(
        email="jane@example.com",
        aliases=("jane.doe@work.example",),
        name="Jane Doe",
        rate=Money(Decimal(120), "EUR"),
        policy=dataclasses.replace(rules.policy, late_cancel_window=timedelta(hours=24)),
    )
