"""Secrets: the one place that reads credentials and keeps tokens on disk.

Every connector and every ``syncd auth`` command goes through this module:

- :class:`TokenStore` keeps tokens as files of mode 0600 in a folder of mode 0700, writes
  them atomically, and refuses (never repairs) a folder or file that others could read or
  that another user owns.
- :func:`read_secret` reads one secret from a file, an environment variable or a systemd
  credential (``$CREDENTIALS_DIRECTORY``); its errors name the config key and the source,
  never the value.
- :class:`Secret` wraps a value so that ``repr``/``str`` print ``***``; every value wrapped is
  registered for :func:`scrub`, which the log pipeline (:mod:`syncd.logs`) applies to every
  line. A value stays registered until :meth:`Secret.forget` (a refreshed access token may
  forget the old one); dropping the object does not unregister it, because a revealed copy
  of the value may still be alive in a string somewhere.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import json
import os
import re
import stat
import tempfile
import threading
from collections import Counter
from pathlib import Path

from syncd.errors import SyncdError

__all__ = [
    "MIN_SCRUB_LENGTH",
    "Secret",
    "SecretError",
    "TokenStore",
    "read_secret",
    "scrub",
]

# Shorter values are not replaced inside text: scrubbing every "abc" out of every line would
# garble logs. They are still hidden by repr and by key-based redaction.
MIN_SCRUB_LENGTH = 4
_MAX_SECRET_FILE = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")


class SecretError(SyncdError):
    """A secret or token cannot be read or stored safely; the message never holds the value."""


# ----------------------------------------------------------------------------- Secret + registry


class _Registry:
    """Process-wide multiset of secret values, and the regex that finds them in text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False

    def add(self, value: str) -> None:
        with self._lock:
            self._counts[value] += 1
            self._stale = True

    def discard(self, value: str) -> None:
        with self._lock:
            self._counts[value] -= 1
            if self._counts[value] <= 0:
                del self._counts[value]
            self._stale = True

    def pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._stale:
                forms = {f for value in self._counts for f in _forms(value)}
                ordered = sorted(forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, ordered))) if forms else None
                self._stale = False
            return self._pattern


def _forms(value: str) -> set[str]:
    """The value as it may appear in text: raw, JSON-escaped, and repr-escaped."""
    if len(value) < MIN_SCRUB_LENGTH:
        return set()
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
    }
    return {f for f in forms if len(f) >= MIN_SCRUB_LENGTH}


_REGISTRY = _Registry()

_SENSITIVE_NAMES = (
    r"access_token|refresh_token|id_token|client_secret|password|passwd|api_key|apikey|token"
)
_PATTERNS = (
    # An HTTP bearer credential, wherever it was printed.
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1***"),
    # user:password@ in a URL.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/:@]+:)[^\s/@]+@"), r"\1***@"),
    # access_token=... in a query string or form body.
    (re.compile(rf"(?i)\b((?:{_SENSITIVE_NAMES})=)[^&\s\"']+"), r"\1***"),
    # "access_token": "..." in a JSON body (also with escaped quotes inside a JSON string).
    (
        re.compile(rf'(?i)(\\?"(?:{_SENSITIVE_NAMES})\\?"\s*:\s*\\?")(?:[^"\\]|\\[^"])*'),
        r"\1***",
    ),
)


def scrub(text: str) -> str:
    """``text`` with every registered secret value and every recognisable credential as ``***``."""
    pattern = _REGISTRY.pattern()
    if pattern is not None:
        text = pattern.sub("***", text)
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


class Secret:
    """A secret value: prints as ``***``; :meth:`reveal` gives it to the code that sends it."""

    __slots__ = ("_registered", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret wraps a str, not {type(value).__name__}")
        self._value = value
        self._registered = True
        _REGISTRY.add(value)

    def reveal(self) -> str:
        """The value itself: pass it to the wire, never to a log or a message."""
        return self._value

    def forget(self) -> None:
        """Stop scrubbing this value from logs (for a token that was replaced); idempotent."""
        if self._registered:
            self._registered = False
            _REGISTRY.discard(self._value)

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return format("***", spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled (it would carry its value out of the process)")


# ----------------------------------------------------------------------------- read_secret


def read_secret(
    *, file: Path | None, env: str | None, credential: str | None, where: str
) -> Secret:
    """Read one secret from exactly one of a file, an environment variable, a systemd credential.

    ``where`` is the config key that asked (``calendars[0].password``); every error names it
    and the source, never the value. A file must not be readable or writable by group or
    others; its first line is the secret.
    """
    sources = (("file", file), ("env", env), ("credential", credential))
    given = [name for name, value in sources if value is not None]
    if len(given) != 1:
        found = f"got {' and '.join(given)}" if given else "got none"
        raise SecretError(f"{where}: give exactly one of file, env or credential ({found})")
    if file is not None:
        return Secret(_read_first_line(Path(file), where, f"secret file {file}"))
    if env is not None:
        if not env or "=" in env or "\0" in env:
            raise SecretError(f"{where}: {env!r} is not an environment variable name")
        value = os.environ.get(env)
        if value is None:
            raise SecretError(f"{where}: environment variable {env} is not set")
        if not value:
            raise SecretError(f"{where}: environment variable {env} is empty")
        return Secret(value)
    assert credential is not None
    if not _NAME.match(credential):
        raise SecretError(
            f"{where}: {credential!r} is not a credential name (letters, digits, . _ @ + -)"
        )
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        raise SecretError(
            f"{where}: systemd credential {credential!r} requested but $CREDENTIALS_DIRECTORY "
            f"is not set (add LoadCredential={credential}:/path/to/file to the unit)"
        )
    path = Path(folder) / credential
    return Secret(_read_first_line(path, where, f"systemd credential {credential!r} ({path})"))


def _read_first_line(path: Path, where: str, source: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SecretError(f"{where}: {source} does not exist") from None
    except OSError as error:
        raise SecretError(f"{where}: cannot open {source}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretError(f"{where}: {source} is not a regular file")
        if info.st_mode & 0o077:
            raise SecretError(
                f"{where}: {source} is open to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(_MAX_SECRET_FILE + 1)
    except OSError as error:
        raise SecretError(f"{where}: cannot read {source}: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > _MAX_SECRET_FILE:
        raise SecretError(f"{where}: {source} is larger than {_MAX_SECRET_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{where}: {source} is not UTF-8 text") from None
    line = text.split("\n", 1)[0].removesuffix("\r")
    if not line:
        raise SecretError(f"{where}: {source} is empty (the secret is its first line)")
    return line


# ----------------------------------------------------------------------------- TokenStore


class TokenStore:
    """Token files of mode 0600 in a folder of mode 0700, written atomically.

    A missing folder is created with mode 0700. An existing folder or file that group or
    others may use, or that another user owns, is refused with a :class:`SecretError` that
    names the path and the fix; nothing is ever chmod-ed behind the user's back.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise SecretError(
                f"cannot create token folder {self.folder}: {error.strerror}"
            ) from None
        self._check_folder()

    def read(self, name: str) -> bytes | None:
        """The token stored under ``name``, or None if there is none."""
        path = self._path(name)
        self._check_folder()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise SecretError(f"token file {path} is a symbolic link; remove it") from None
            raise SecretError(f"cannot open token file {path}: {error.strerror}") from None
        try:
            _check(os.fstat(fd), path, "file", "600")
            with os.fdopen(os.dup(fd), "rb") as handle:
                return handle.read()
        except OSError as error:
            raise SecretError(f"cannot read token file {path}: {error.strerror}") from None
        finally:
            os.close(fd)

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name``: a temporary file, fsync, rename, fsync the folder."""
        path = self._path(name)
        self._check_folder()
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.folder)
        try:
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except OSError as error:
            _unlink_quietly(temp)
            raise SecretError(f"cannot write token file {path}: {error.strerror}") from None
        except BaseException:
            _unlink_quietly(temp)
            raise
        self._sync_folder()

    def delete(self, name: str) -> None:
        """Remove the token stored under ``name``; no error if there is none."""
        path = self._path(name)
        self._check_folder()
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise SecretError(f"cannot delete token file {path}: {error.strerror}") from None
        self._sync_folder()

    def names(self) -> list[str]:
        """The names stored, sorted (temporary files of a write in flight are not names)."""
        self._check_folder()
        return sorted(p.name for p in self.folder.iterdir() if _NAME.match(p.name))

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.match(name):
            raise SecretError(
                f"{name!r} is not a token name: use letters, digits and . _ @ + - "
                "(no path separators, no leading dot, at most 200 characters)"
            )
        return self.folder / name

    def _check_folder(self) -> None:
        try:
            info = os.stat(self.folder)
        except OSError as error:
            raise SecretError(f"cannot open token folder {self.folder}: {error.strerror}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise SecretError(f"token folder {self.folder} is not a folder")
        _check(info, self.folder, "folder", "700")

    def _sync_folder(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check(info: os.stat_result, path: Path, kind: str, mode: str) -> None:
    if info.st_uid != os.geteuid():
        raise SecretError(
            f"token {kind} {path} belongs to user id {info.st_uid}, not to the user running "
            f"syncd ({os.geteuid()}); run: chown {os.geteuid()} {path} && chmod {mode} {path}"
        )
    if kind == "file" and not stat.S_ISREG(info.st_mode):
        raise SecretError(f"token file {path} is not a regular file")
    if info.st_mode & 0o077:
        raise SecretError(
            f"token {kind} {path} is open to group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod {mode} {path}"
        )


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
