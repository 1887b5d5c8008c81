"""The ``local`` connector: a folder of ``.ics`` files, one calendar object per file.

This is the vdir layout khal and vdirsyncer use. The etag of a file is its modification time
and size, so an unchanged file is never read again; the core also keeps a content hash so a
touched but unchanged file is not parsed again. Writes are atomic (temporary file in the same
folder, fsync, rename, fsync of the folder). watchdog reports edits at once, including an
editor's atomic save, which arrives as a move.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from syncd.config import CalendarConfig
from syncd.connector import Connector, Delta, ItemFailure, RemoteObject, Watch
from syncd.errors import AlreadyExists, ConfigError, Conflict, ConnectorError, NotFound

__all__ = ["LocalConnector"]

SUFFIX = ".ics"
_OPTIONS = ("path", "create")


class LocalConnector(Connector):
    """A calendar stored as a folder of ``.ics`` files."""

    kind = "local"

    def __init__(self, name: str, folder: Path, *, create: bool = True) -> None:
        self.name = name
        self.folder = folder
        self.create_folder = create
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, calendar: CalendarConfig) -> LocalConnector:
        """Options: ``path`` (the folder, required) and ``create`` (make it if missing)."""
        problems = [
            calendar.problem(
                key, f"unknown key for the local connector (known: {', '.join(_OPTIONS)})"
            )
            for key in calendar.options
            if key not in _OPTIONS
        ]
        raw_path = calendar.options.get("path")
        if not isinstance(raw_path, str) or not raw_path:
            problems.append(calendar.problem("path", "is required: the folder of .ics files"))
        create = calendar.options.get("create", True)
        if not isinstance(create, bool):
            problems.append(calendar.problem("create", f"must be true or false, got {create!r}"))
        if problems:
            raise ConfigError(problems)
        assert isinstance(raw_path, str)
        return cls(calendar.name, calendar.resolve(raw_path), create=bool(create))

    def _cursor(self) -> str:
        return f"local:{self.folder.resolve()}"

    def list_changes(
        self,
        cursor: str | None,
        known: Mapping[str, str],
        *,
        horizon: tuple[datetime, datetime] | None = None,
    ) -> Delta:
        """Scan the folder; read only files whose size or modification time changed.

        A missing folder is created only for a calendar syncd knows nothing of yet: once it
        holds objects, a vanished folder (an unmounted disk) is an error, never a wave of
        cancellations.
        """
        self._ensure_folder(may_create=not known)
        upserts: list[RemoteObject] = []
        failures: list[ItemFailure] = []
        present: set[str] = set()
        for href, etag in self._scan():
            present.add(href)
            if known.get(href) == etag:
                continue
            try:
                upserts.append(self._read(href))
            except OSError as error:
                failures.append(ItemFailure(href, etag, f"cannot read: {error.strerror}"))
            except NotFound:
                present.discard(href)
        removed = sorted(set(known) - present)
        return Delta(
            upserts=upserts, removed=removed, cursor=self._cursor(), full=False, failures=failures
        )

    def _ensure_folder(self, *, may_create: bool = True) -> None:
        if self.folder.is_dir():
            return
        if self.create_folder and may_create and not self.folder.exists():
            try:
                self.folder.mkdir(parents=True, mode=0o700)
            except OSError as error:
                raise ConnectorError(
                    self.name, f"cannot create folder {self.folder}: {error.strerror}"
                ) from None
            return
        raise ConnectorError(self.name, f"folder {self.folder} is missing or not a folder")

    def _scan(self) -> list[tuple[str, str]]:
        found = []
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if _is_object_name(entry.name) and entry.is_file(follow_symlinks=True):
                        found.append((entry.name, _etag(entry.stat())))
        except OSError as error:
            raise ConnectorError(
                self.name, f"cannot list {self.folder}: {error.strerror}"
            ) from None
        return found

    def _path(self, href: str) -> Path:
        if not _is_object_name(href):
            raise ConnectorError(self.name, f"{href!r} is not a file name of this calendar")
        return self.folder / href

    def _read(self, href: str) -> RemoteObject:
        path = self._path(href)
        try:
            with path.open("rb") as handle:
                stat = os.fstat(handle.fileno())
                data = handle.read()
        except FileNotFoundError:
            raise NotFound(self.name, f"{href} does not exist") from None
        return RemoteObject(href=href, etag=_etag(stat), data=data)

    def get(self, href: str) -> RemoteObject:
        """Read one file. Raises ``NotFound``."""
        try:
            return self._read(href)
        except NotFound:
            raise
        except OSError as error:
            raise ConnectorError(self.name, f"cannot read {href}: {error.strerror}") from None

    def update(self, href: str, data: bytes, etag: str) -> str:
        """Replace a file atomically if it is still at ``etag``."""
        with self._lock:
            current = self.get(href)
            if current.etag != etag:
                raise Conflict(self.name, f"{href} changed since it was read")
            return self._write(href, data, replace=True)

    def create(self, href: str, data: bytes) -> str:
        """Create a file atomically; ``AlreadyExists`` if the name is taken."""
        self._path(href)
        with self._lock:
            self._ensure_folder()
            return self._write(href, data, replace=False)

    def delete(self, href: str, etag: str) -> None:
        """Delete a file if it is still at ``etag``."""
        with self._lock:
            current = self.get(href)
            if current.etag != etag:
                raise Conflict(self.name, f"{href} changed since it was read")
            try:
                self._path(href).unlink()
                _fsync_folder(self.folder)
            except FileNotFoundError:
                raise NotFound(self.name, f"{href} does not exist") from None
            except OSError as error:
                raise ConnectorError(self.name, f"cannot delete {href}: {error.strerror}") from None

    def _write(self, href: str, data: bytes, *, replace: bool) -> str:
        target = self._path(href)
        fd, temp_name = tempfile.mkstemp(prefix=".syncd-", suffix=".tmp", dir=self.folder)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if replace:
                os.replace(temp, target)
            else:
                os.link(temp, target)  # fails if the name is taken: create-if-absent, atomically
            _fsync_folder(self.folder)
            return _etag(target.stat())
        except FileExistsError:
            raise AlreadyExists(self.name, f"{href} already exists") from None
        except OSError as error:
            raise ConnectorError(self.name, f"cannot write {href}: {error.strerror}") from None
        finally:
            temp.unlink(missing_ok=True)

    def check(self) -> str:
        """The folder exists and syncd can list, read and write in it."""
        if not self.folder.is_dir():
            raise ConnectorError(self.name, f"folder {self.folder} is missing")
        if not os.access(self.folder, os.R_OK | os.W_OK | os.X_OK):
            raise ConnectorError(self.name, f"folder {self.folder} is not readable and writable")
        count = sum(1 for name, _ in self._scan() if name)
        return f"folder {self.folder}, {count} objects"

    def watch(self, on_change: Callable[[], None]) -> Watch:
        """Call ``on_change`` on every create, modify, move or delete of an ``.ics`` file.

        Never creates the folder (a first cycle does): raises ``ConnectorError`` while it is
        missing, and the daemon tries again after the next cycle."""
        self._ensure_folder(may_create=False)
        try:
            return _FolderWatch(self.folder, on_change)
        except OSError as error:
            # inotify instances are limited per user (often 128): past that, this calendar
            # is polled on its interval instead of watched.
            raise ConnectorError(
                self.name,
                f"cannot watch folder {self.folder} ({error.strerror}); it is "
                "polled on its interval instead",
            ) from None


class _FolderWatch(Watch):
    """One folder's schedule on the process's one shared observer (one dispatch thread for
    every local calendar, not one per calendar)."""

    _observer: Any = None
    _lock = threading.Lock()

    def __init__(self, folder: Path, on_change: Callable[[], None]) -> None:
        with _FolderWatch._lock:
            if _FolderWatch._observer is None:
                observer = Observer()
                observer.daemon = True
                observer.start()
                _FolderWatch._observer = observer
            self._watch = _FolderWatch._observer.schedule(
                _Handler(on_change), str(folder), recursive=False
            )

    def stop(self) -> None:
        with _FolderWatch._lock, contextlib.suppress(KeyError):  # KeyError: already gone
            _FolderWatch._observer.unschedule(self._watch)


class _Handler(FileSystemEventHandler):
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "modified", "moved", "deleted"):
            return
        names = [os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")]
        if any(_is_object_name(os.path.basename(n)) for n in names if n):
            self._on_change()


def _is_object_name(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".") and "/" not in name and name != SUFFIX


def _etag(stat: os.stat_result) -> str:
    # The inode changes on an atomic save; mtime and size catch edits in place; ctime catches
    # a permission fix (chmod) on a file that could not be read.
    return f"{stat.st_mtime_ns:x}-{stat.st_size:x}-{stat.st_ino:x}-{stat.st_ctime_ns:x}"


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
