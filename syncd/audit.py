"""The audit log: append-only JSON Lines, one record per line, hash-chained.

Glossary:

- *record*: one JSON object on one line, with ``seq`` (1, 2, 3, ...), ``ts`` (UTC text),
  ``type``, ``prev_hash`` (the previous record's ``hash``; 64 zeros for seq 1), ``hash``
  (SHA-256 of the canonical JSON of the record without ``hash``) and the caller's payload keys.
  Each line is exactly the canonical JSON of its record followed by ``\\n``.
- *sealed*: a record whose ``seq``, ``ts``, ``prev_hash`` and ``hash`` were given by `seal`.
- *anchor*: the ``(seq, hash)`` of the last record the engine committed; the engine keeps it in
  the state store, outside the log, so that truncation and rewrites are detectable.
- *tail*: lines after the anchored record: appended but never committed (a crash between the
  append and the commit), possibly ending in a *torn* line (a crash in the middle of a write).

The engine's order for one cycle: `seal`, `AuditLog.append` (flushed and fsynced), then commit
the new anchor with its transaction. On start, `AuditLog.recover` drops the tail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, ClassVar

from syncd.errors import AuditError

__all__ = ["GENESIS_HASH", "Anchor", "AuditLog", "VerifyResult", "seal", "verify"]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of seq 1 and the hash of the empty log's anchor."""

_RESERVED = frozenset({"seq", "ts", "prev_hash", "hash"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Anchor:
    """The ``(seq, hash)`` of one record: where the log must reach. ``Anchor.EMPTY`` is the
    anchor of an empty log (seq 0, `GENESIS_HASH`)."""

    seq: int
    hash: str

    EMPTY: ClassVar[Anchor]

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 0:
            raise ValueError(f"anchor seq must be an integer >= 0, not {self.seq!r}")
        if not isinstance(self.hash, str) or not _HEX64.fullmatch(self.hash):
            raise ValueError(f"anchor hash must be 64 lower-case hex digits, not {self.hash!r}")
        if self.seq == 0 and self.hash != GENESIS_HASH:
            raise ValueError("the anchor at seq 0 must carry GENESIS_HASH")


Anchor.EMPTY = Anchor(0, GENESIS_HASH)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What `verify` found. ``records`` counts the lines read (up to and including the first bad
    one); ``first_bad_seq`` is the seq at which the log stops being right, ``None`` when ok."""

    ok: bool
    records: int
    first_bad_seq: int | None
    reason: str


# --- canonical form and hashing -------------------------------------------------------------


def _canonical(obj: Mapping[str, object]) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, other readers of the log could not parse them
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def _hash(record: Mapping[str, object]) -> str:
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(_canonical(body)).hexdigest()


# --- sealing --------------------------------------------------------------------------------


def seal(
    records: Sequence[Mapping[str, object]], anchor: Anchor, now: datetime
) -> tuple[list[dict[str, object]], Anchor]:
    """Give each payload ``seq``, ``ts``, ``prev_hash`` and ``hash``, chaining from ``anchor``.

    Returns the sealed records (deep copies, exactly as they will read back from the file) and
    the anchor of the last one (``anchor`` itself when ``records`` is empty). Every record gets
    the same ``ts``: ``now`` (timezone-aware, converted to UTC).

    Raises ValueError when a payload has a reserved key (seq, ts, prev_hash, hash), lacks a
    text ``type``, holds NaN or infinity, or loses data in a JSON round trip; ValueError for a
    naive ``now``; TypeError for a value JSON cannot hold (convert datetimes first).
    """
    ts = _format_ts(now)
    sealed: list[dict[str, object]] = []
    last = anchor
    for payload in records:
        record, last = _seal_one(payload, last, ts)
        sealed.append(record)
    return sealed, last


def _format_ts(now: datetime) -> str:
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    # isoformat, not strftime: %Y is not zero-padded below year 1000 on every platform
    return now.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _seal_one(
    payload: Mapping[str, object], prev: Anchor, ts: str
) -> tuple[dict[str, object], Anchor]:
    _check_payload(payload)
    record = _json_copy({**payload, "seq": prev.seq + 1, "ts": ts, "prev_hash": prev.hash})
    digest = _hash(record)
    record["hash"] = digest
    return record, Anchor(prev.seq + 1, digest)


def _check_payload(payload: Mapping[str, object]) -> None:
    reserved = sorted(_RESERVED.intersection(payload))
    if reserved:
        raise ValueError(f"payload must not set {', '.join(reserved)}: seal assigns them")
    if not isinstance(payload.get("type"), str):
        raise ValueError("payload needs a text 'type'")


def _json_copy(record: Mapping[str, object]) -> dict[str, object]:
    # A copy, so a caller mutating its payload after seal cannot make the line differ from the
    # hash; the round trip also catches keys that collide once made text (1 and "1").
    data = _canonical(record)
    copy: dict[str, object] = json.loads(data)
    if _canonical(copy) != data:
        raise ValueError("payload changes in a JSON round trip (keys colliding as text?)")
    return copy


# --- reading lines --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    """One parsed record with its chain fields typed."""

    seq: int
    prev_hash: str
    hash: str
    data: dict[str, object]


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _read_record(line: bytes) -> _Line | str:
    """Parse one line (without its newline) into a record, or say what is wrong with it."""
    try:
        obj: object = json.loads(line.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # bad UTF-8 and bad JSON are both ValueErrors
        return "line is not a JSON object"
    if not isinstance(obj, dict):
        return "line is not a JSON object"
    return _typed(obj)


def _typed(obj: dict[str, object]) -> _Line | str:
    seq, prev_hash, digest = obj.get("seq"), obj.get("prev_hash"), obj.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        return "malformed record: 'seq' is not a positive integer"
    if not isinstance(obj.get("type"), str):
        return "malformed record: 'type' is missing or not text"
    ts = obj.get("ts")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return "malformed record: 'ts' is missing or not UTC ISO-8601 text"
    if not isinstance(prev_hash, str) or not _HEX64.fullmatch(prev_hash):
        return "malformed record: 'prev_hash' is not 64 hex digits"
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        return "malformed record: 'hash' is not 64 hex digits"
    return _Line(seq, prev_hash, digest, obj)


def _lines_backward(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, line)`` from the end of the file back to its start. Lines keep their
    newline, so only the first one yielded can lack it (a torn write)."""
    base, buf, hi = size, b"", 0  # buf == file[base:base+len(buf)]; buf[:hi] not yielded yet
    while hi > 0 or base > 0:
        cut = buf.rfind(b"\n", 0, hi - 1) if hi > 0 else -1
        while cut < 0 and base > 0:
            step = min(_CHUNK, base)
            base -= step
            buf = os.pread(fd, step, base) + buf[:hi]
            hi = len(buf)
            cut = buf.rfind(b"\n", 0, hi - 1)
        yield base + cut + 1, buf[cut + 1 : hi]
        hi = cut + 1


_MAX_UNCOMMITTED = 64 * 1024 * 1024
"""No single cycle's batch is this large; a longer tail past the anchor is not one batch."""


def _count_lines(fd: int, start: int, end: int) -> int:
    """How many lines (a torn last one included) lie in ``file[start:end]``."""
    count, pos, last = 0, start, b"\n"
    while pos < end:
        chunk = os.pread(fd, min(_CHUNK, end - pos), pos)
        if not chunk:
            break
        count, pos, last = count + chunk.count(b"\n"), pos + len(chunk), chunk[-1:]
    return count + (last != b"\n")


def _tail_of(fd: int, path: Path) -> tuple[Anchor, bool]:
    """The anchor of the last complete record, and whether the file ends right after it."""
    clean = True
    for _offset, line in _lines_backward(fd, os.fstat(fd).st_size):
        if not line.endswith(b"\n"):
            clean = False
            continue
        parsed = _read_record(line[:-1])
        if isinstance(parsed, str):
            raise AuditError(f"audit log {path}: the last complete line is bad: {parsed}")
        return Anchor(parsed.seq, parsed.hash), clean
    return Anchor.EMPTY, clean


# --- checking the chain ---------------------------------------------------------------------


@dataclass(slots=True)
class _Chain:
    """What the next line must be, given the lines fed so far."""

    last: Anchor = Anchor.EMPTY
    anchor: Anchor | None = None
    anchored_hash: str | None = field(default=None, init=False)

    def feed(self, raw: bytes) -> str | None:
        """Take one raw line (with its newline); return what is wrong with it, or None."""
        seq = self.last.seq + 1
        if not raw.endswith(b"\n"):
            return f"seq {seq}: the last line is incomplete (torn write)"
        parsed = _read_record(raw[:-1])
        if isinstance(parsed, str):
            return f"seq {seq}: {parsed}"
        problem = _link_problem(seq, self.last.hash, parsed)
        if problem is None and _canonical(parsed.data) + b"\n" != raw:
            problem = f"seq {seq}: line is not in canonical form (edited)"
        if problem is None:
            self._advance(parsed)
        return problem

    def _advance(self, parsed: _Line) -> None:
        self.last = Anchor(parsed.seq, parsed.hash)
        if self.anchor is not None and parsed.seq == self.anchor.seq:
            self.anchored_hash = parsed.hash

    def result(self, lines: int) -> VerifyResult:
        """The verdict once every line was fed without a problem: only the anchor is left."""
        anchor, last = self.anchor, self.last
        if anchor is None or anchor.seq == 0:
            return VerifyResult(True, lines, None, f"ok: {lines} records")
        if last.seq < anchor.seq:
            reason = f"truncated: the log ends at seq {last.seq}, the anchor is at seq {anchor.seq}"
            return VerifyResult(False, lines, last.seq + 1, reason)
        if self.anchored_hash != anchor.hash:
            reason = f"seq {anchor.seq}: hash differs from the anchor (rewritten)"
            return VerifyResult(False, lines, anchor.seq, reason)
        extra = last.seq - anchor.seq
        note = f"; {extra} past the anchor (uncommitted, recover drops them)" if extra else ""
        return VerifyResult(True, lines, None, f"ok: {lines} records{note}")


def _link_problem(seq: int, prev_hash: str, parsed: _Line) -> str | None:
    if parsed.seq < seq:
        return f"seq {seq}: found seq {parsed.seq} again (repeated, inserted or reordered)"
    if parsed.seq > seq:
        return f"seq {seq}: missing, found seq {parsed.seq} instead (deleted or reordered)"
    if parsed.prev_hash != prev_hash:
        return (
            f"seq {seq}: prev_hash does not match the hash of seq {seq - 1} "
            "(a record was edited, removed or inserted before it)"
        )
    if _hash(parsed.data) != parsed.hash:
        return f"seq {seq}: hash does not match its content (edited)"
    return None


def _check_lines(chain: _Chain, lines: Iterable[bytes]) -> VerifyResult:
    count = 0
    for count, raw in enumerate(lines, start=1):
        problem = chain.feed(raw)
        if problem is not None:
            return VerifyResult(False, count, chain.last.seq + 1, problem)
    return chain.result(count)


# --- file access ----------------------------------------------------------------------------


@contextlib.contextmanager
def _io(path: Path, action: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise AuditError(f"cannot {action} audit log {path}: {exc}") from exc


def _open_existing(path: Path, flags: int) -> int | None:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_folder(folder: Path) -> None:
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(mode=0o700)
        os.chmod(new, 0o700)  # the umask may have narrowed it further than 0700
        _fsync_dir(new.parent)


def _open_for_append(path: Path) -> tuple[int, bool]:
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, flags), False


def _write_durably(fd: int, data: bytes) -> None:
    size = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        # Best effort: without this a half-written line would block every later append
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
            os.fsync(fd)
        raise


class AuditLog:
    """The audit log file at ``path``: durable appends, crash recovery, the current tail.

    Every method that touches the file raises `AuditError` (naming the path) when it cannot.
    """

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, sealed: Sequence[Mapping[str, object]]) -> None:
        """Append sealed records as lines, then flush and fsync.

        Creates the file 0600 (and missing folders 0700). Refuses with `AuditError`, writing
        nothing, when the records do not continue the file's last record, or the file ends in a
        torn line (run `recover` first). On a failed write the file is cut back to where it was.
        """
        if not sealed:
            return
        with _io(self.path, "append to"):
            _make_folder(self.path.parent)
            fd, created = _open_for_append(self.path)
            try:
                if created:
                    _fsync_dir(self.path.parent)
                _write_durably(fd, self._continuation(fd, sealed))
            finally:
                os.close(fd)

    def _continuation(self, fd: int, sealed: Sequence[Mapping[str, object]]) -> bytes:
        tail, clean = _tail_of(fd, self.path)
        if not clean:
            raise AuditError(f"audit log {self.path} ends in a torn line; recover it first")
        lines = [_canonical(record) + b"\n" for record in sealed]
        chain = _Chain(last=tail)
        for line in lines:
            problem = chain.feed(line)
            if problem is not None:
                raise AuditError(
                    f"refusing to append to audit log {self.path} (it ends at seq {tail.seq}): "
                    f"{problem}"
                )
        return b"".join(lines)

    def recover(self, anchor: Anchor) -> list[int]:
        """Make the file end exactly at ``anchor``, dropping the uncommitted tail.

        Drops complete and torn lines after the record at ``anchor.seq`` and returns their seqs,
        counted on from ``anchor.seq + 1`` (a torn line gets the seq it would have had); fsyncs
        after truncating. Raises `AuditError` and changes nothing when the file has no record at
        ``anchor.seq`` (it is shorter, or missing while ``anchor.seq > 0``) or that record does
        not carry ``anchor.hash``: that is loss or tampering, for `verify` to report.
        """
        with _io(self.path, "recover"):
            fd = _open_existing(self.path, os.O_RDWR)
            if fd is None:
                if anchor.seq == 0:
                    return []
                raise AuditError(f"audit log {self.path} is missing; anchor is at seq {anchor.seq}")
            try:
                return self._cut_after(fd, anchor)
            finally:
                os.close(fd)

    def _cut_after(self, fd: int, anchor: Anchor) -> list[int]:
        size = os.fstat(fd).st_size
        cut = self._anchor_end(fd, size, anchor)
        self._refuse_several_cycles(fd, cut, size)
        dropped = _count_lines(fd, cut, size)
        if cut < size:
            os.ftruncate(fd, cut)
            os.fsync(fd)
        return list(range(anchor.seq + 1, anchor.seq + 1 + dropped))

    def _refuse_several_cycles(self, fd: int, start: int, end: int) -> None:
        """One uncommitted append is one sealed batch: complete records sharing one ``ts``,
        perhaps followed by one torn line. Anything else past the anchor (records of several
        cycles, after a state store restored from a backup; lines that are not records, when
        ``audit.path`` names some other file) is kept, and recovery refuses."""
        tail = os.pread(fd, min(end - start, _MAX_UNCOMMITTED + 1), start)
        lines = tail.split(b"\n")
        complete, torn = lines[:-1], lines[-1]
        parsed = [_read_record(line) for line in complete]
        stamps = {p.data.get("ts") for p in parsed if not isinstance(p, str)}
        strangers = sum(1 for p in parsed if isinstance(p, str))
        if len(stamps) > 1 or strangers or len(tail) > _MAX_UNCOMMITTED:
            raise AuditError(
                f"audit log {self.path} holds {len(stamps)} batches of records and "
                f"{strangers} other lines past the state store's anchor; the store may have "
                "been restored from a backup, or audit.path names another file. Not dropping "
                "them (run `syncd audit verify`)"
            )
        if torn and not torn.startswith(b"{"):  # a torn record still begins like one
            raise AuditError(f"audit log {self.path} ends in a line that is not a record")

    def _anchor_end(self, fd: int, size: int, anchor: Anchor) -> int:
        """The offset just past the anchored record's line."""
        if anchor.seq == 0:
            return 0
        for offset, line in _lines_backward(fd, size):
            parsed = _read_record(line[:-1]) if line.endswith(b"\n") else "torn"
            if isinstance(parsed, str) or parsed.seq > anchor.seq:
                continue
            if parsed.seq < anchor.seq:
                break
            if parsed.hash != anchor.hash or _hash(parsed.data) != anchor.hash:
                raise AuditError(
                    f"audit log {self.path}: seq {anchor.seq} does not carry the anchored hash; "
                    "not recovering (run verify)"
                )
            return offset + len(line)
        raise AuditError(
            f"audit log {self.path} has no record seq {anchor.seq} (the anchor): it is shorter "
            "than the state store says; not recovering (run verify)"
        )

    def tail_anchor(self) -> Anchor:
        """The anchor of the last complete record (a torn last line is skipped); `Anchor.EMPTY`
        when the file is missing or has no complete line."""
        with _io(self.path, "read"):
            fd = _open_existing(self.path, os.O_RDONLY)
            if fd is None:
                return Anchor.EMPTY
            try:
                return _tail_of(fd, self.path)[0]
            finally:
                os.close(fd)


def verify(path: Path, anchor: Anchor | None) -> VerifyResult:
    """Check the whole file, streaming it line by line.

    Every line must be the canonical JSON of a record (any changed byte is caught, even one that
    leaves the parsed object the same); seqs run 1, 2, 3, ...; each ``prev_hash`` is the
    previous record's ``hash``; each ``hash`` matches its content. With an anchor, the file must
    reach ``anchor.seq`` and the record there must carry ``anchor.hash``; valid records past the
    anchor are ok (appended, not yet committed). A missing file is ok only when ``anchor`` is
    None or at seq 0. Raises `AuditError` when the file exists but cannot be read.
    """
    with _io(path, "read"):
        try:
            stream: BinaryIO = path.open("rb")
        except FileNotFoundError:
            return _verify_missing(anchor)
        with stream:
            return _check_lines(_Chain(anchor=anchor), stream)


def _verify_missing(anchor: Anchor | None) -> VerifyResult:
    if anchor is None or anchor.seq == 0:
        return VerifyResult(True, 0, None, "ok: no log yet")
    reason = f"truncated: the log is missing but the anchor is at seq {anchor.seq}"
    return VerifyResult(False, 0, 1, reason)
