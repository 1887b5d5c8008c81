"""The local folder connector: the contract suite plus folder-specific behaviour."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from connectors.local import LocalConnector
from syncd.config import CalendarConfig
from syncd.errors import ConfigError, ConnectorError
from tests.contract import ConnectorContract, Outside, sample


class FolderOutside(Outside):
    """Edits the folder directly, as the user's calendar app or vdirsyncer would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, href: str, data: bytes) -> None:
        path = self.folder / href
        path.write_bytes(data)
        # A second edit inside the file system's timestamp granularity must still show.
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    def remove(self, href: str) -> None:
        (self.folder / href).unlink()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "cal"
    path.mkdir()
    return path


@pytest.fixture
def connector(folder: Path) -> LocalConnector:
    return LocalConnector("work", folder)


@pytest.fixture
def outside(folder: Path) -> FolderOutside:
    return FolderOutside(folder)


class TestLocalContract(ConnectorContract):
    """The local connector passes the shared contract suite."""


def _calendar_config(tmp_path: Path, **options: object) -> CalendarConfig:
    return CalendarConfig(
        name="work", connector="local", options=options, source=tmp_path / "syncd.toml", index=0
    )


def test_path_resolves_against_the_config_folder(tmp_path: Path) -> None:
    """A relative ``path`` is taken from the configuration file's folder."""
    connector = LocalConnector.from_config(_calendar_config(tmp_path, path="cals/work"))
    assert isinstance(connector, LocalConnector)
    assert connector.folder == tmp_path / "cals" / "work"


def test_bad_options_name_each_key(tmp_path: Path) -> None:
    """A missing path and an unknown key are both reported with their keys."""
    with pytest.raises(ConfigError) as caught:
        LocalConnector.from_config(_calendar_config(tmp_path, pathh="x", create="yes"))
    keys = sorted(p.key for p in caught.value.problems)
    assert keys == ["calendars[0].create", "calendars[0].path", "calendars[0].pathh"]


def test_unchanged_files_are_not_read_again(
    connector: LocalConnector, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files whose size and mtime are known are not opened on the next scan."""
    FolderOutside(folder).put("a.ics", sample("a"))
    FolderOutside(folder).put("b.ics", sample("b"))
    first = connector.list_changes(None, {})
    FolderOutside(folder).put("b.ics", sample("b", 13))
    opened: list[str] = []
    real_open = Path.open

    def spy(path: Path, *args: object, **kwargs: object) -> object:
        opened.append(path.name)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", spy)
    second = connector.list_changes(first.cursor, {o.href: o.etag for o in first.upserts})
    assert [o.href for o in second.upserts] == ["b.ics"]
    assert opened == ["b.ics"]


def test_unreadable_file_is_an_item_failure(
    connector: LocalConnector, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that cannot be read is reported by name; the other files are listed."""
    FolderOutside(folder).put("a.ics", sample("a"))
    FolderOutside(folder).put("b.ics", sample("b"))
    real_open = Path.open

    def deny_b(path: Path, *args: object, **kwargs: object) -> object:
        if path.name == "b.ics":
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", deny_b)
    delta = connector.list_changes(None, {})
    assert [o.href for o in delta.upserts] == ["a.ics"]
    assert [(f.href, f.reason) for f in delta.failures] == [
        ("b.ics", "cannot read: Permission denied")
    ]


def test_hidden_and_temporary_files_are_ignored(connector: LocalConnector, folder: Path) -> None:
    """Dot-files (editors' and syncd's temporary files) and other suffixes are not objects."""
    (folder / ".a.ics.swp").write_bytes(b"x")
    (folder / ".syncd-1.tmp").write_bytes(b"x")
    (folder / "notes.txt").write_bytes(b"x")
    FolderOutside(folder).put("a.ics", sample("a"))
    assert [o.href for o in connector.list_changes(None, {}).upserts] == ["a.ics"]


def test_missing_folder_is_an_error_not_a_mass_deletion(tmp_path: Path) -> None:
    """A vanished folder (an unmounted disk) raises instead of reporting every file removed."""
    connector = LocalConnector("work", tmp_path / "gone", create=False)
    with pytest.raises(ConnectorError, match="missing"):
        connector.list_changes("cursor", {"a.ics": "1"})


def test_write_leaves_no_temporary_file(connector: LocalConnector, folder: Path) -> None:
    """An atomic write renames its temporary file into place."""
    connector.create("a.ics", sample("a"))
    connector.update("a.ics", sample("a", 12), connector.get("a.ics").etag)
    assert sorted(p.name for p in folder.iterdir()) == ["a.ics"]


def test_href_outside_the_folder_is_refused(connector: LocalConnector) -> None:
    """An href with a path separator cannot escape the calendar folder."""
    with pytest.raises(ConnectorError):
        connector.create("../escape.ics", sample("a"))


@pytest.mark.parametrize("action", ["created", "modified", "moved", "deleted"])
def test_watch_reports_file_events(connector: LocalConnector, folder: Path, action: str) -> None:
    """watchdog reports creation, modification, an editor's atomic save (a move) and deletion."""
    FolderOutside(folder).put("a.ics", sample("a"))
    seen = threading.Event()
    watch = connector.watch(seen.set)
    try:
        if action == "created":
            (folder / "b.ics").write_bytes(sample("b"))
        elif action == "modified":
            with (folder / "a.ics").open("ab") as handle:
                handle.write(b"\r\n")
        elif action == "moved":
            (folder / ".a.ics.tmp").write_bytes(sample("a", 14))
            seen.clear()
            os.replace(folder / ".a.ics.tmp", folder / "a.ics")
        else:
            (folder / "a.ics").unlink()
        assert seen.wait(5), f"no event for {action}"
    finally:
        watch.stop()


def test_watch_ignores_hidden_files(connector: LocalConnector, folder: Path) -> None:
    """Temporary files alone do not wake the daemon."""
    seen = threading.Event()
    watch = connector.watch(seen.set)
    try:
        (folder / ".scratch.tmp").write_bytes(b"x")
        assert not seen.wait(0.5)
    finally:
        watch.stop()


def test_vanished_folder_of_a_known_calendar_is_an_error(tmp_path: Path) -> None:
    """With objects known, a missing folder is not recreated empty (no false cancellations)."""
    connector = LocalConnector("work", tmp_path / "gone")
    with pytest.raises(ConnectorError, match="missing"):
        connector.list_changes("cursor", {"a.ics": "1"})
    assert not (tmp_path / "gone").exists()


def test_missing_folder_of_a_new_calendar_is_created(tmp_path: Path) -> None:
    """A calendar syncd knows nothing of yet gets its folder made."""
    connector = LocalConnector("work", tmp_path / "new")
    assert list(connector.list_changes(None, {}).upserts) == []
    assert (tmp_path / "new").is_dir()


def test_folder_that_cannot_be_made_is_a_connector_error(tmp_path: Path) -> None:
    """An impossible folder is a per-calendar error, not a crash of every calendar."""
    (tmp_path / "file").write_text("x")
    connector = LocalConnector("work", tmp_path / "file" / "sub")
    with pytest.raises(ConnectorError, match="cannot create"):
        connector.list_changes(None, {})


def test_permission_fix_changes_the_etag(connector: LocalConnector, folder: Path) -> None:
    """A chmod alone gives a new etag, so a file that could not be read is tried again."""
    FolderOutside(folder).put("a.ics", sample("a"))
    before = connector.get("a.ics").etag
    (folder / "a.ics").chmod(0o640)
    assert connector.get("a.ics").etag != before


def test_watches_share_one_observer_thread(tmp_path: Path) -> None:
    """Many watched folders add one emitter each, not a dispatch thread each."""
    folders = [tmp_path / f"c{i}" for i in range(20)]
    for folder in folders:
        folder.mkdir()
    before = threading.active_count()
    watches = [LocalConnector(f.name, f).watch(lambda: None) for f in folders]
    try:
        assert threading.active_count() - before <= len(folders) + 1
    finally:
        for watch in watches:
            watch.stop()


def test_a_watch_the_system_refuses_is_a_connector_error(
    connector: LocalConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of inotify instances, watch() raises ConnectorError (the daemon then polls)."""
    import connectors.local as local

    def refuse(*_args: object) -> None:
        raise OSError(24, "inotify instance limit reached")

    monkeypatch.setattr(local._FolderWatch, "__init__", refuse)
    with pytest.raises(ConnectorError, match="polled on its interval"):
        connector.watch(lambda: None)
