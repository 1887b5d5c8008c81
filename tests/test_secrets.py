"""The token store and secret reading: modes, atomic writes, refusals, errors without values."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from syncd.errors import SyncdError
from syncd.secrets import Secret, SecretError, TokenStore, read_secret, scrub

VALUE = "s3cr3t-VALUE-4f9c2e"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    """A token store in a folder it creates itself."""
    return TokenStore(tmp_path / "tokens")


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A 0600 file whose first line is VALUE."""
    path = tmp_path / "password"
    path.write_text(f"{VALUE}\nsecond line\n")
    path.chmod(0o600)
    return path


# ----------------------------------------------------------------------------- TokenStore


def test_store_creates_folder_0700_and_files_0600(store: TokenStore) -> None:
    """A new folder is 0700 and a written token is 0600, exactly."""
    store.write("google-me@example.com", b"{}")
    assert mode(store.folder) == 0o700
    assert mode(store.folder / "google-me@example.com") == 0o600


def test_store_round_trip(store: TokenStore) -> None:
    """What is written is read back; an absent name reads as None."""
    store.write("outlook", b'{"refresh_token": "r"}')
    assert store.read("outlook") == b'{"refresh_token": "r"}'
    assert store.read("other") is None


def test_write_replaces_content_and_leaves_no_temporary_file(store: TokenStore) -> None:
    """A second write replaces the content; only the token file stays in the folder."""
    store.write("caldav", b"first, and longer than the second")
    store.write("caldav", b"second")
    assert store.read("caldav") == b"second"
    assert sorted(p.name for p in store.folder.iterdir()) == ["caldav"]


def test_failed_write_leaves_old_content_and_no_temporary_file(
    store: TokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails before the rename keeps the old token and removes its temporary file."""
    store.write("caldav", b"old")

    def fail(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(SecretError, match="cannot write token file"):
        store.write("caldav", b"new")
    monkeypatch.undo()
    assert store.read("caldav") == b"old"
    assert [p.name for p in store.folder.iterdir()] == ["caldav"]


def test_delete_removes_and_tolerates_absence(store: TokenStore) -> None:
    """Delete removes a token; deleting it again is not an error."""
    store.write("google", b"x")
    store.delete("google")
    store.delete("google")
    assert store.read("google") is None
    assert store.names() == []


def test_names_lists_tokens_only(store: TokenStore) -> None:
    """names() lists the stored tokens, not a temporary file of a write in flight."""
    store.write("b", b"1")
    store.write("a", b"2")
    (store.folder / ".a.x1y2.tmp").write_bytes(b"partial")
    assert store.names() == ["a", "b"]


def test_open_refuses_folder_open_to_others(tmp_path: Path) -> None:
    """A 0755 folder is refused with its path and the chmod that fixes it, and left alone."""
    folder = tmp_path / "tokens"
    folder.mkdir()
    folder.chmod(0o755)
    with pytest.raises(SecretError) as caught:
        TokenStore(folder)
    assert str(folder) in str(caught.value)
    assert f"chmod 700 {folder}" in str(caught.value)
    assert mode(folder) == 0o755


def test_read_refuses_file_open_to_others(store: TokenStore) -> None:
    """A 0644 token file is refused on read with its path and the fix, and left alone."""
    store.write("google", b"token")
    path = store.folder / "google"
    path.chmod(0o644)
    with pytest.raises(SecretError) as caught:
        store.read("google")
    assert f"chmod 600 {path}" in str(caught.value)
    assert mode(path) == 0o644


def test_read_rechecks_folder(store: TokenStore) -> None:
    """A folder widened after the store was opened is refused at the next read."""
    store.write("google", b"token")
    store.folder.chmod(0o750)
    with pytest.raises(SecretError, match="chmod 700"):
        store.read("google")


def test_read_refuses_symlink(store: TokenStore, tmp_path: Path) -> None:
    """A token file that is a symbolic link is refused rather than followed."""
    target = tmp_path / "elsewhere"
    target.write_bytes(b"x")
    target.chmod(0o600)
    (store.folder / "google").symlink_to(target)
    with pytest.raises(SecretError, match="symbolic link"):
        store.read("google")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_refuses_folder_of_another_user(tmp_path: Path) -> None:
    """A folder another user owns is refused, naming the path and the owner."""
    folder = tmp_path / "tokens"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(SecretError, match=r"belongs to user id 65534"):
        TokenStore(folder)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "..", "a\\b", "a\0b", "x" * 201])
def test_store_rejects_bad_names(store: TokenStore, name: str) -> None:
    """Names with separators, a leading dot, NUL or excessive length are rejected."""
    with pytest.raises(SecretError, match="not a token name"):
        store.write(name, b"x")


def test_secret_error_is_a_syncd_error() -> None:
    """SecretError belongs to the SyncdError family the CLI reports."""
    assert issubclass(SecretError, SyncdError)


# ----------------------------------------------------------------------------- read_secret


def test_read_secret_from_file_takes_first_line(secret_file: Path) -> None:
    """A file source gives its first line without the newline."""
    secret = read_secret(file=secret_file, env=None, credential=None, where="x.password")
    assert secret.reveal() == VALUE


def test_read_secret_strips_crlf(tmp_path: Path) -> None:
    """A file written with CRLF line ends gives the value without the CR."""
    path = tmp_path / "pw"
    path.write_bytes(VALUE.encode() + b"\r\n")
    path.chmod(0o400)
    assert read_secret(file=path, env=None, credential=None, where="k").reveal() == VALUE


def test_read_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment source gives the variable's value."""
    monkeypatch.setenv("SYNCD_TEST_PASSWORD", VALUE)
    secret = read_secret(file=None, env="SYNCD_TEST_PASSWORD", credential=None, where="k")
    assert secret.reveal() == VALUE


def test_read_secret_from_systemd_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential source reads $CREDENTIALS_DIRECTORY/<name>."""
    (tmp_path / "caldav-password").write_text(VALUE + "\n")
    (tmp_path / "caldav-password").chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    secret = read_secret(file=None, env=None, credential="caldav-password", where="k")
    assert secret.reveal() == VALUE


def _error(**sources: object) -> str:
    with pytest.raises(SecretError) as caught:
        read_secret(**{"file": None, "env": None, "credential": None, **sources}, where="cal.pw")  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith("cal.pw: ")
    assert VALUE not in message
    return message


def test_missing_file_error(tmp_path: Path) -> None:
    """A missing file is named in the error."""
    assert f"secret file {tmp_path / 'nope'} does not exist" in _error(file=tmp_path / "nope")


@pytest.mark.parametrize("bits", [0o644, 0o640, 0o604, 0o620])
def test_file_open_to_others_is_refused(secret_file: Path, bits: int) -> None:
    """A secret file group or others may read or write is refused, naming file and fix."""
    secret_file.chmod(bits)
    message = _error(file=secret_file)
    assert f"chmod 600 {secret_file}" in message
    assert f"{bits:04o}" in message


def test_empty_file_is_refused(tmp_path: Path) -> None:
    """A file with an empty first line is an error, not an empty password."""
    path = tmp_path / "pw"
    path.write_text("\n" + VALUE)
    path.chmod(0o600)
    assert "is empty" in _error(file=path)


def test_unset_env_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset variable is named in the error."""
    monkeypatch.delenv("SYNCD_TEST_UNSET", raising=False)
    assert "environment variable SYNCD_TEST_UNSET is not set" in _error(env="SYNCD_TEST_UNSET")


def test_missing_credential_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential absent from $CREDENTIALS_DIRECTORY is named with the folder."""
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    message = _error(credential="nope")
    assert "systemd credential 'nope'" in message
    assert str(tmp_path) in message


def test_credential_without_directory_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A credential asked for outside systemd says how to load it."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert "LoadCredential=pw:" in _error(credential="pw")


def test_credential_name_with_separator_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A credential name cannot climb out of $CREDENTIALS_DIRECTORY."""
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    assert "not a credential name" in _error(credential="../password")


def test_two_sources_error(secret_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two sources at once are refused, naming both, even when both would work."""
    monkeypatch.setenv("SYNCD_TEST_PASSWORD", VALUE)
    message = _error(file=secret_file, env="SYNCD_TEST_PASSWORD")
    assert "exactly one of" in message
    assert "file and env" in message


def test_no_source_error() -> None:
    """No source at all is an error naming the key."""
    assert "got none" in _error()


# ----------------------------------------------------------------------------- Secret


def test_secret_prints_as_stars() -> None:
    """repr, str, format and a container's repr all show *** instead of the value."""
    secret = Secret(VALUE)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret:>5}", repr({"pw": secret})]
    assert all(VALUE not in text for text in shown)
    assert repr(secret) == "'***'"
    assert str(secret) == "***"
    secret.forget()


def test_secret_is_not_pickled() -> None:
    """A Secret refuses pickling, which would carry the value out of the process."""
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(Secret(VALUE))


def test_secret_equality_by_value() -> None:
    """Two Secrets with one value are equal (a reloaded config compares equal)."""
    a, b, c = Secret("same-value"), Secret("same-value"), Secret("other-value")
    assert a == b
    assert hash(a) == hash(b)
    assert a != c


def test_registered_value_is_scrubbed_until_forgotten() -> None:
    """scrub() hides a live Secret's value, and stops once every holder forgot it."""
    first, second = Secret("forget-me-value"), Secret("forget-me-value")
    assert scrub("x forget-me-value y") == "x *** y"
    first.forget()
    first.forget()
    assert scrub("forget-me-value") == "***"
    second.forget()
    assert scrub("forget-me-value") == "forget-me-value"


def test_scrub_catches_escaped_forms() -> None:
    """A value with quotes or non-ASCII is hidden also in its JSON- and repr-escaped forms."""
    value = 'pa"ss\\wörd'
    secret = Secret(value)
    assert scrub(repr(value)) == "'***'"
    assert "ö" not in scrub('"pa\\"ss\\\\w\\u00f6rd"')
    secret.forget()


def test_short_values_are_not_scrubbed_from_text() -> None:
    """A value shorter than four characters is not cut out of every word that contains it."""
    secret = Secret("abc")
    assert scrub("abcdef") == "abcdef"
    secret.forget()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer ya29.a0Af-x_y~z+/==", "Authorization: Bearer ***"),
        ("GET https://me:hunter22@dav.example.com/cal/", "GET https://me:***@dav.example.com/cal/"),
        ("POST /token?refresh_token=1//0gAb&x=1", "POST /token?refresh_token=***&x=1"),
        (
            '{"access_token": "ya29.xyz", "expires_in": 3599}',
            '{"access_token": "***", "expires_in": 3599}',
        ),
    ],
)
def test_scrub_recognises_credentials_without_registration(text: str, expected: str) -> None:
    """Bearer tokens, URL passwords and token pairs are hidden even if never registered."""
    assert scrub(text) == expected
