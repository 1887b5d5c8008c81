"""`syncd doctor` and `syncd auth caldav` through the command line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from syncd.cli import main
from tests.harness import CONFIG

CALDAV = (
    '[[calendars]]\nname = "remote"\nconnector = "caldav"\n'
    'url = "http://127.0.0.1:9/dav/me/cal/"\nusername = "me"\npassword_env = "NOPE"\n'
)


def test_doctor_exits_1_and_names_the_failing_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing calendar folder fails the doctor with a FAIL line naming it."""
    (tmp_path / "syncd.toml").write_text(CONFIG)
    assert main(["doctor", "--config", str(tmp_path / "syncd.toml")]) == 1
    out = capsys.readouterr().out
    assert "FAIL calendar work" in out
    assert "ok   configuration" in out


def test_doctor_exits_0_when_everything_is_fine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the folder there and nothing else wrong, every check passes."""
    (tmp_path / "cal").mkdir()
    (tmp_path / "syncd.toml").write_text(CONFIG)
    assert main(["doctor", "--config", str(tmp_path / "syncd.toml")]) == 0
    assert "FAIL" not in capsys.readouterr().out


def test_auth_caldav_stores_the_password_privately(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The password lands 0600 in a 0700 token folder and is never printed."""
    import io

    (tmp_path / "syncd.toml").write_text(CONFIG + CALDAV)
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cr3t-Pa55\n"))
    code = main(
        [
            "auth",
            "caldav",
            "--calendar",
            "remote",
            "--password-stdin",
            "--config",
            str(tmp_path / "syncd.toml"),
        ]
    )
    assert code == 0
    token = tmp_path / "var" / "tokens" / "caldav-remote"
    assert token.read_bytes() == b"s3cr3t-Pa55"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    out = capsys.readouterr()
    assert f'password_file = "{token}"' in out.out
    assert "s3cr3t" not in out.out + out.err


def test_auth_caldav_refuses_a_calendar_of_another_connector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asking to store a password for a local calendar is a clear error, exit 1."""
    (tmp_path / "syncd.toml").write_text(CONFIG)
    code = main(
        [
            "auth",
            "caldav",
            "--calendar",
            "work",
            "--password-stdin",
            "--config",
            str(tmp_path / "syncd.toml"),
        ]
    )
    assert code == 1
    assert "uses the local connector" in capsys.readouterr().err


@pytest.mark.parametrize("provider", ["google", "outlook"])
def test_auth_flow_refuses_a_calendar_of_another_connector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str
) -> None:
    """`syncd auth google|outlook` on a local calendar is a clear error, exit 1."""
    (tmp_path / "syncd.toml").write_text(CONFIG)
    config = str(tmp_path / "syncd.toml")
    code = main(["auth", provider, "--calendar", "work", "--no-browser", "--config", config])
    assert code == 1
    assert "uses the local connector" in capsys.readouterr().err


def test_auth_flow_names_an_unknown_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A calendar name that is not configured is named in the error."""
    (tmp_path / "syncd.toml").write_text(CONFIG)
    config = str(tmp_path / "syncd.toml")
    assert main(["auth", "google", "--calendar", "nope", "--config", config]) == 1
    assert "no calendar 'nope'" in capsys.readouterr().err


def test_calendars_know_the_token_folder_beside_the_state(tmp_path: Path) -> None:
    """Every calendar gets the token store's folder, where `syncd auth` writes."""
    from syncd.config import load_config

    (tmp_path / "syncd.toml").write_text(CONFIG + CALDAV)
    config = load_config(tmp_path / "syncd.toml")
    assert {c.tokens_dir for c in config.calendars} == {config.state_path.parent / "tokens"}
    assert not any(c.is_notes for c in config.calendars)  # this one has no [notes]


def test_the_notes_calendar_knows_it_is_one(tmp_path: Path) -> None:
    """Connectors create only the notes calendar when it is missing: it is marked."""
    from syncd.config import load_config

    notes = '[[calendars]]\nname = "n"\nconnector = "local"\npath = "n"\n[notes]\ncalendar = "n"\n'
    (tmp_path / "syncd.toml").write_text(CONFIG + notes)
    config = load_config(tmp_path / "syncd.toml")
    assert [c.name for c in config.calendars if c.is_notes] == ["n"]
