"""Tests for ``syncd.config``: parsing into typed values and reporting every problem."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.local import LocalConnector
from syncd.config import Config, load_config, parse_duration
from syncd.errors import ConfigError, ConfigProblem

FULL = """\
[state]
path = "var/state.db"
[audit]
path = "var/audit.jsonl"
[daemon]
poll_interval = "5m"
horizon_past = "30d"
horizon_future = "180d"
[owner]
emails = ["Me@Example.com"]
timezone = "Europe/Berlin"
working_hours = { mon = "09:00-17:00", tue = "09:00-17:00", wed = "09:00-17:00", \
thu = "09:00-17:00", fri = "09:00-13:00" }
[[calendars]]
name = "work"
connector = "local"
path = "var/calendars/work"
[[calendars]]
name = "notes"
connector = "local"
path = "var/calendars/notes"
[notes]
calendar = "notes"
"""

MINIMAL = """\
[[calendars]]
name = "work"
connector = "local"
path = "cal"
"""


def write(folder: Path, text: str) -> Path:
    """Write ``text`` as ``syncd.toml`` in ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "syncd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[ConfigProblem]:
    """The problems ``load_config`` reports for ``path`` (fails if it accepts the file)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def problem_at(path: Path, key: str) -> str:
    """The message of the one problem reported at ``key``."""
    found = [p.message for p in problems_of(path) if p.key == key]
    assert len(found) == 1, f"expected one problem at {key!r}, got {problems_of(path)}"
    return found[0]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A folder for the configuration file, apart from the working directory."""
    return tmp_path / "etc"


@pytest.fixture
def full(config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The contract's full configuration, loaded while the working directory is elsewhere."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return load_config(write(config_dir, FULL))


# --- a full valid configuration -------------------------------------------------------------


def test_daemon_durations_parse_into_timedeltas(full: Config) -> None:
    """The [daemon] durations become timedeltas."""
    assert (full.daemon.poll_interval, full.daemon.horizon_past, full.daemon.horizon_future) == (
        timedelta(minutes=5),
        timedelta(days=30),
        timedelta(days=180),
    )


def test_owner_timezone_parses_into_zoneinfo(full: Config) -> None:
    """owner.timezone becomes a ZoneInfo."""
    assert full.owner.timezone == ZoneInfo("Europe/Berlin")


def test_working_hours_parse_into_time_pairs(full: Config) -> None:
    """Each weekday's span becomes a (start, end) pair of times."""
    nine_to_five = (time(9), time(17))
    assert dict(full.owner.working_hours) == {
        "mon": nine_to_five,
        "tue": nine_to_five,
        "wed": nine_to_five,
        "thu": nine_to_five,
        "fri": (time(9), time(13)),
    }


def test_owner_emails_are_normalised_to_lower_case(full: Config) -> None:
    """Owner emails are kept as a lower-case tuple."""
    assert full.owner.emails == ("me@example.com",)


def test_state_and_audit_paths_resolve_against_config_folder(
    full: Config, config_dir: Path
) -> None:
    """Relative state and audit paths resolve against the config file's folder, not the cwd."""
    base = config_dir.resolve()
    assert (full.state_path, full.audit_path) == (base / "var/state.db", base / "var/audit.jsonl")


def test_calendar_path_resolves_against_config_folder(full: Config, config_dir: Path) -> None:
    """A local calendar's relative path resolves against the config file's folder."""
    connector = LocalConnector.from_config(full.calendar("work"))
    assert connector.folder == config_dir.resolve() / "var/calendars/work"


def test_calendars_keep_name_and_connector(full: Config) -> None:
    """Each [[calendars]] table keeps its name and connector, in file order."""
    assert [(c.name, c.connector) for c in full.calendars] == [
        ("work", "local"),
        ("notes", "local"),
    ]


def test_notes_calendar_names_a_configured_calendar(full: Config) -> None:
    """[notes] calendar is kept when it names a configured calendar."""
    assert full.notes_calendar == "notes"


def test_tilde_is_expanded_in_paths(
    config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leading ~ in state, audit and calendar paths expands to the home folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    text = (
        '[state]\npath = "~/s.db"\n[audit]\npath = "~/a.jsonl"\n'
        '[[calendars]]\nname = "w"\nconnector = "local"\npath = "~/cal"\n'
    )
    config = load_config(write(config_dir, text))
    folder = LocalConnector.from_config(config.calendar("w")).folder
    assert (config.state_path, config.audit_path, folder) == (
        home / "s.db",
        home / "a.jsonl",
        home / "cal",
    )


# --- defaults -------------------------------------------------------------------------------


def test_missing_daemon_section_uses_default_durations(config_dir: Path) -> None:
    """Without [daemon]: poll every 5 minutes, expand 30 days back and 180 days ahead."""
    config = load_config(write(config_dir, MINIMAL))
    assert (
        config.daemon.poll_interval,
        config.daemon.horizon_past,
        config.daemon.horizon_future,
    ) == (timedelta(minutes=5), timedelta(days=30), timedelta(days=180))


def test_missing_state_and_audit_sections_use_default_paths(config_dir: Path) -> None:
    """Without [state] and [audit]: var/state.db and var/audit.jsonl beside the config."""
    config = load_config(write(config_dir, MINIMAL))
    base = config_dir.resolve()
    expected = (base / "var/state.db", base / "var/audit.jsonl")
    assert (config.state_path, config.audit_path) == expected


def test_missing_owner_section_uses_utc_and_no_working_hours(config_dir: Path) -> None:
    """Without [owner]: UTC, no emails, no working hours."""
    config = load_config(write(config_dir, MINIMAL))
    assert (config.owner.timezone, config.owner.emails, dict(config.owner.working_hours)) == (
        ZoneInfo("UTC"),
        (),
        {},
    )


def test_missing_notes_section_means_no_notes_calendar(config_dir: Path) -> None:
    """Without [notes] there is no notes calendar."""
    assert load_config(write(config_dir, MINIMAL)).notes_calendar is None


# --- every problem at once ------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_file_and_key(config_dir: Path) -> None:
    """Several bad keys give one ConfigError listing each with the file and the key."""
    path = write(
        config_dir,
        """\
[daemon]
poll_interval = "soon"
horizon_past = "0m"
[owner]
timezone = "Nowhere/City"
[[calendars]]
name = "work"
connector = "locl"
[notes]
calendar = "missing"
""",
    )
    found = problems_of(path)
    assert {(p.file, p.key) for p in found} == {
        (path.resolve(), "daemon.poll_interval"),
        (path.resolve(), "daemon.horizon_past"),
        (path.resolve(), "owner.timezone"),
        (path.resolve(), "calendars[0].connector"),
        (path.resolve(), "notes.calendar"),
    }


def test_config_error_text_names_file_and_key_of_each_problem(config_dir: Path) -> None:
    """The error's text has one line per problem, each naming the file and the key."""
    path = write(config_dir, '[daemon]\npoll_interval = "x"\nhorizon_future = "y"\n' + MINIMAL)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).splitlines() == [
        f"{path.resolve()}: daemon.poll_interval: 'x' is not a duration "
        "(use e.g. 90s, 5m, 48h, 3d, 2w, 1h30m)",
        f"{path.resolve()}: daemon.horizon_future: 'y' is not a duration "
        "(use e.g. 90s, 5m, 48h, 3d, 2w, 1h30m)",
    ]


# --- unknown keys ---------------------------------------------------------------------------


def test_unknown_daemon_key_suggests_the_close_one(config_dir: Path) -> None:
    """daemon.pol_interval is unknown and answered with "did you mean 'poll_interval'"."""
    path = write(config_dir, '[daemon]\npol_interval = "5m"\n' + MINIMAL)
    assert "did you mean 'poll_interval'" in problem_at(path, "daemon.pol_interval")


def test_unknown_top_level_key_suggests_the_close_one(config_dir: Path) -> None:
    """A top-level 'calender' is unknown and answered with "did you mean 'calendars'"."""
    path = write(config_dir, 'calender = "work"\n' + MINIMAL)
    assert "did you mean 'calendars'" in problem_at(path, "calender")


def test_unknown_key_without_close_match_has_no_suggestion(config_dir: Path) -> None:
    """An unknown key that resembles nothing is reported without a guess."""
    path = write(config_dir, "[state]\nzzz = 1\n" + MINIMAL)
    assert problem_at(path, "state.zzz") == "unknown key"


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["5 minutes", "0m", "-3d", "5", "1.5h", ""])
def test_bad_duration_is_a_problem_at_its_key(config_dir: Path, text: str) -> None:
    """A duration that is not a positive 90s/5m/48h/3d/2w span is reported at its key."""
    path = write(config_dir, f'[daemon]\npoll_interval = "{text}"\n' + MINIMAL)
    assert text in problem_at(path, "daemon.poll_interval")


@pytest.mark.parametrize("text", ["1000000w", "99999999999w"])
def test_absurdly_long_duration_is_a_problem_not_a_crash(config_dir: Path, text: str) -> None:
    """A duration too long for date arithmetic is reported, not raised as OverflowError."""
    path = write(config_dir, f'[daemon]\nhorizon_future = "{text}"\n' + MINIMAL)
    assert "too long" in problem_at(path, "daemon.horizon_future")


def test_non_string_duration_is_a_problem(config_dir: Path) -> None:
    """A duration given as a number is reported."""
    path = write(config_dir, "[daemon]\npoll_interval = 300\n" + MINIMAL)
    assert "must be a string" in problem_at(path, "daemon.poll_interval")


def test_calendar_poll_interval_overrides_are_parsed(config_dir: Path) -> None:
    """A calendar's own poll_interval becomes a timedelta."""
    config = load_config(write(config_dir, MINIMAL + 'poll_interval = "90s"\n'))
    assert config.calendar("work").poll_interval == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("48h", timedelta(hours=48)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_parse_duration_reads_units_and_combinations(text: str, expected: timedelta) -> None:
    """parse_duration reads s, m, h, d, w and combinations of them."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5 minutes", "-3d", "abc", "", "3d2"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    """parse_duration raises ValueError for text that is not a duration."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# --- time zone and working hours ------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe", "../etc/passwd", ""])
def test_unknown_time_zone_is_a_problem(config_dir: Path, zone: str) -> None:
    """A name that is not an IANA zone (a folder such as 'Europe' included) is reported."""
    path = write(config_dir, f'[owner]\ntimezone = "{zone}"\n' + MINIMAL)
    assert "unknown time zone" in problem_at(path, "owner.timezone")


@pytest.mark.parametrize(
    ("span", "reason"),
    [
        ("9-5", "is not a span of hours"),
        ("17:00-09:00", "ends before it starts"),
        ("25:00-26:00", "out of range"),
        ("09:00-09:00", "ends before it starts"),
        ("09:60-10:00", "out of range"),
    ],
)
def test_bad_working_hours_are_a_problem(config_dir: Path, span: str, reason: str) -> None:
    """A malformed, reversed or out-of-range span is reported at its weekday key."""
    path = write(config_dir, f'[owner]\nworking_hours = {{ mon = "{span}" }}\n' + MINIMAL)
    assert reason in problem_at(path, "owner.working_hours.mon")


def test_working_hours_may_end_at_midnight(config_dir: Path) -> None:
    """'24:00' as an end means the end of the day."""
    config = load_config(
        write(config_dir, '[owner]\nworking_hours = { sat = "20:00-24:00" }\n' + MINIMAL)
    )
    assert config.owner.working_hours["sat"] == (time(20), time(23, 59, 59))


def test_unknown_weekday_key_is_a_problem(config_dir: Path) -> None:
    """A working_hours key that is not mon..sun is reported, with a suggestion."""
    path = write(config_dir, '[owner]\nworking_hours = { monday = "09:00-17:00" }\n' + MINIMAL)
    assert "did you mean 'mon'" in problem_at(path, "owner.working_hours.monday")


# --- calendars ------------------------------------------------------------------------------


def test_duplicate_calendar_names_are_a_problem(config_dir: Path) -> None:
    """A second calendar with the same name is reported at its own name key."""
    path = write(config_dir, MINIMAL + MINIMAL)
    assert "configured twice" in problem_at(path, "calendars[1].name")


def test_missing_calendar_name_is_a_problem(config_dir: Path) -> None:
    """A calendar without a name is reported."""
    path = write(config_dir, '[[calendars]]\nconnector = "local"\npath = "cal"\n')
    assert problem_at(path, "calendars[0].name") == "is required"


def test_missing_calendar_connector_is_a_problem(config_dir: Path) -> None:
    """A calendar without a connector is reported."""
    path = write(config_dir, '[[calendars]]\nname = "work"\npath = "cal"\n')
    assert problem_at(path, "calendars[0].connector") == "is required"


def test_unknown_connector_suggests_an_installed_one(config_dir: Path) -> None:
    """connector = "locl" is unknown and answered with "did you mean 'local'"."""
    path = write(config_dir, '[[calendars]]\nname = "work"\nconnector = "locl"\npath = "cal"\n')
    assert "did you mean 'local'" in problem_at(path, "calendars[0].connector")


def test_local_connector_requires_a_path(config_dir: Path) -> None:
    """A local calendar without path is reported at calendars[i].path."""
    path = write(config_dir, '[[calendars]]\nname = "work"\nconnector = "local"\n')
    assert "is required" in problem_at(path, "calendars[0].path")


def test_local_connector_rejects_unknown_option(config_dir: Path) -> None:
    """An option the local connector does not know is reported at its key."""
    path = write(config_dir, MINIMAL + 'folder = "cal"\n')
    assert "unknown key for the local connector" in problem_at(path, "calendars[0].folder")


def test_calendars_must_be_an_array_of_tables(config_dir: Path) -> None:
    """calendars given as a plain value is reported."""
    path = write(config_dir, 'calendars = "work"\n')
    assert "array of tables" in problem_at(path, "calendars")


def test_notes_calendar_must_name_a_configured_calendar(config_dir: Path) -> None:
    """[notes] calendar naming no configured calendar is reported."""
    path = write(config_dir, MINIMAL + '[notes]\ncalendar = "notes"\n')
    assert "'notes' is not the name of a configured calendar" in problem_at(path, "notes.calendar")


# --- the file itself ------------------------------------------------------------------------


def test_invalid_toml_is_a_config_error_naming_the_file(config_dir: Path) -> None:
    """A file that is not TOML gives a ConfigError naming the file."""
    path = write(config_dir, "[daemon\npoll_interval = 5m\n")
    [problem] = problems_of(path)
    assert (problem.file, problem.message.startswith("invalid TOML")) == (path, True)


def test_missing_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    """A configuration file that does not exist gives a ConfigError naming the file."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: file not found"


def test_the_shipped_example_configuration_is_valid() -> None:
    """config/syncd.example.toml loads without a problem, so the documented keys stay true."""
    example = Path(__file__).resolve().parent.parent / "config" / "syncd.example.toml"
    config = load_config(example)
    assert [c.name for c in config.calendars] == ["work", "notes"]
    assert config.notes_calendar == "notes"


def _commented_calendars(text: str) -> list[str]:
    """The ``# [[calendars]]`` examples of a file, uncommented once."""
    blocks, current = [], None
    for line in text.splitlines():
        if line == "# [[calendars]]":
            current = []
            blocks.append(current)
        if current is not None and line.startswith("#"):
            current.append(line[2:])
        elif current is not None:
            current = None
    return ["\n".join(block) + "\n" for block in blocks]


def test_the_commented_connector_examples_are_valid(tmp_path: Path) -> None:
    """Each commented [[calendars]] example (caldav, google, outlook) loads once uncommented."""
    example = Path(__file__).resolve().parent.parent / "config" / "syncd.example.toml"
    text = example.read_text()
    blocks = _commented_calendars(text)
    kinds = [next(w for w in b.split('"') if w in ("caldav", "google", "outlook")) for b in blocks]
    assert kinds == ["caldav", "google", "outlook"]
    for block in blocks:
        (tmp_path / "syncd.toml").write_text(text.replace("[notes]", block + "\n[notes]", 1))
        load_config(tmp_path / "syncd.toml")


def test_under_systemd_state_and_config_default_to_its_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$STATE_DIRECTORY holds the state and audit log; $CONFIGURATION_DIRECTORY the file."""
    from syncd.config import default_config_path

    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "etc"))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "syncd.toml").write_text('[owner]\nemails = ["me@example.com"]\n')
    assert default_config_path() == tmp_path / "etc" / "syncd.toml"
    config = load_config(default_config_path())
    assert config.state_path == tmp_path / "state" / "state.db"
    assert config.audit_path == tmp_path / "state" / "audit.jsonl"
