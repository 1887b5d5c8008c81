"""Tests for syncd.audit: sealing, appending, recovery and verification of the audit log."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.audit import GENESIS_HASH, Anchor, AuditLog, seal, verify
from syncd.errors import AuditError

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def canon(obj: object) -> bytes:
    """The canonical JSON of the design, written out independently of the module."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(record: dict[str, object]) -> str:
    """The hash a record should carry."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(canon(body)).hexdigest()


def payloads(count: int) -> list[dict[str, object]]:
    """``count`` small distinct payloads."""
    return [{"type": "change", "n": index, "calendar": "work"} for index in range(count)]


def write_log(path: Path, count: int) -> tuple[list[dict[str, object]], Anchor]:
    """Seal and append ``count`` records to a new log; return them and the anchor."""
    sealed, anchor = seal(payloads(count), Anchor.EMPTY, NOW)
    AuditLog(path).append(sealed)
    return sealed, anchor


def lines_of(path: Path) -> list[bytes]:
    """The file's lines, each with its newline."""
    return path.read_bytes().splitlines(keepends=True)


def line_for(record: dict[str, object]) -> bytes:
    """A record as a log line, its hash recomputed (a careful forger's line)."""
    record = {**record}
    record["hash"] = digest(record)
    return canon(record) + b"\n"


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where the log under test lives."""
    return tmp_path / "state" / "audit.jsonl"


# --- seal -----------------------------------------------------------------------------------


def test_seal_chains_from_genesis() -> None:
    """Seq runs from 1, each prev_hash is the previous hash, each hash covers its record."""
    sealed, anchor = seal(payloads(3), Anchor.EMPTY, NOW)
    assert [r["seq"] for r in sealed] == [1, 2, 3]
    assert [r["prev_hash"] for r in sealed] == [GENESIS_HASH, sealed[0]["hash"], sealed[1]["hash"]]
    assert [r["hash"] for r in sealed] == [digest(r) for r in sealed]
    assert anchor == Anchor(3, str(sealed[2]["hash"]))


def test_seal_continues_from_an_anchor() -> None:
    """Sealing from an anchor gives the same chain as sealing everything at once."""
    whole, whole_anchor = seal(payloads(4), Anchor.EMPTY, NOW)
    first, middle = seal(payloads(4)[:2], Anchor.EMPTY, NOW)
    rest, anchor = seal(payloads(4)[2:], middle, NOW)
    assert (first + rest, anchor) == (whole, whole_anchor)


def test_seal_is_deterministic() -> None:
    """The same payloads, anchor and clock give the same records."""
    assert seal(payloads(3), Anchor.EMPTY, NOW) == seal(payloads(3), Anchor.EMPTY, NOW)


def test_seal_of_nothing_keeps_the_anchor() -> None:
    """No payloads: no records, and the anchor stays where it was."""
    anchor = Anchor(5, "a" * 64)
    assert seal([], anchor, NOW) == ([], anchor)


def test_seal_writes_ts_in_utc() -> None:
    """An aware clock in another zone is written as UTC with microseconds and a Z."""
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    sealed, _ = seal(payloads(1), Anchor.EMPTY, plus_two)
    assert sealed[0]["ts"] == "2024-05-06T07:08:09.123456Z"


def test_seal_rejects_a_naive_clock() -> None:
    """A naive now is a ValueError."""
    with pytest.raises(ValueError, match="timezone-aware"):
        seal(payloads(1), Anchor.EMPTY, NOW.replace(tzinfo=None))


@pytest.mark.parametrize("key", ["seq", "ts", "prev_hash", "hash"])
def test_seal_rejects_reserved_keys(key: str) -> None:
    """A payload may not set the keys seal assigns."""
    with pytest.raises(ValueError, match=key):
        seal([{"type": "change", key: 1}], Anchor.EMPTY, NOW)


def test_seal_requires_a_text_type() -> None:
    """A payload without a text type is a ValueError."""
    with pytest.raises(ValueError, match="type"):
        seal([{"n": 1}], Anchor.EMPTY, NOW)


def test_seal_rejects_datetime_values() -> None:
    """Values JSON cannot hold are a TypeError; the caller converts datetimes."""
    with pytest.raises(TypeError):
        seal([{"type": "change", "at": NOW}], Anchor.EMPTY, NOW)


def test_seal_rejects_nan() -> None:
    """NaN is not JSON, so it is refused rather than written."""
    with pytest.raises(ValueError, match="JSON"):
        seal([{"type": "change", "x": float("nan")}], Anchor.EMPTY, NOW)


def test_seal_copies_the_payload() -> None:
    """Changing a payload after sealing does not change the sealed record."""
    items = [1, 2]
    sealed, _ = seal([{"type": "change", "items": items}], Anchor.EMPTY, NOW)
    items.append(3)
    assert sealed[0]["items"] == [1, 2]


def test_anchor_rejects_a_non_genesis_hash_at_seq_zero() -> None:
    """An anchor at seq 0 must carry the genesis hash."""
    with pytest.raises(ValueError, match="GENESIS"):
        Anchor(0, "a" * 64)


def test_anchor_rejects_a_negative_seq() -> None:
    """Seq below 0 is not an anchor."""
    with pytest.raises(ValueError, match="seq"):
        Anchor(-1, GENESIS_HASH)


# --- append ---------------------------------------------------------------------------------


def test_append_then_verify_is_ok(log_path: Path) -> None:
    """An intact log verifies, with and without its anchor."""
    _, anchor = write_log(log_path, 5)
    assert verify(log_path, anchor).ok
    assert verify(log_path, None) == verify(log_path, Anchor.EMPTY)
    assert verify(log_path, None).records == 5


def test_append_writes_one_canonical_line_per_record(log_path: Path) -> None:
    """Each line is the canonical JSON of its sealed record."""
    sealed, _ = write_log(log_path, 3)
    assert lines_of(log_path) == [canon(record) + b"\n" for record in sealed]


def test_appends_in_several_batches_verify(log_path: Path) -> None:
    """Batches sealed from the previous anchor form one chain."""
    _, anchor = write_log(log_path, 2)
    more, anchor = seal(payloads(3), anchor, NOW + timedelta(seconds=1))
    AuditLog(log_path).append(more)
    assert anchor.seq == 5
    assert verify(log_path, anchor).ok


def test_append_creates_the_file_0600_in_a_new_folder_0700(tmp_path: Path) -> None:
    """A new log file is 0600 and each folder created for it is 0700."""
    path = tmp_path / "a" / "b" / "audit.jsonl"
    write_log(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_append_to_an_unwritable_location_raises_audit_error(tmp_path: Path) -> None:
    """A folder that cannot exist (a file is in the way) gives an AuditError naming the path."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    path = tmp_path / "blocker" / "audit.jsonl"
    sealed, _ = seal(payloads(1), Anchor.EMPTY, NOW)
    with pytest.raises(AuditError, match=str(path)):
        AuditLog(path).append(sealed)


def test_append_to_a_folder_path_raises_audit_error(tmp_path: Path) -> None:
    """A log path that is a folder gives an AuditError, not an OSError."""
    sealed, _ = seal(payloads(1), Anchor.EMPTY, NOW)
    with pytest.raises(AuditError, match="audit log"):
        AuditLog(tmp_path).append(sealed)


def test_append_of_nothing_creates_no_file(log_path: Path) -> None:
    """Appending no records touches nothing."""
    AuditLog(log_path).append([])
    assert not log_path.parent.exists()


def test_append_refuses_records_that_do_not_continue_the_log(log_path: Path) -> None:
    """Records sealed from a stale anchor are refused and nothing is written."""
    write_log(log_path, 3)
    before = log_path.read_bytes()
    stale, _ = seal(payloads(1), Anchor.EMPTY, NOW)
    with pytest.raises(AuditError, match="refusing to append"):
        AuditLog(log_path).append(stale)
    assert log_path.read_bytes() == before


def test_append_refuses_after_a_torn_line(log_path: Path) -> None:
    """A file ending in a torn line must be recovered before appending."""
    _, anchor = write_log(log_path, 2)
    with log_path.open("ab") as stream:
        stream.write(b'{"seq":3,"ty')
    more, _ = seal(payloads(1), anchor, NOW)
    with pytest.raises(AuditError, match="torn"):
        AuditLog(log_path).append(more)


def test_non_ascii_payload_round_trips_and_verifies(log_path: Path) -> None:
    """Non-ASCII text (and U+2028) is stored as UTF-8, reads back equal and verifies."""
    payload = {"type": "note", "title": "Zoë · 東京 🎉", "odd": "a\u2028b\u2029c"}
    sealed, anchor = seal([payload], Anchor.EMPTY, NOW)
    AuditLog(log_path).append(sealed)
    assert "Zoë · 東京 🎉".encode() in log_path.read_bytes()
    assert json.loads(log_path.read_bytes().decode("utf-8")) == sealed[0]
    assert verify(log_path, anchor).ok


# --- tail_anchor ----------------------------------------------------------------------------


def test_tail_anchor_of_a_missing_file_is_empty(log_path: Path) -> None:
    """No file: the empty anchor."""
    assert AuditLog(log_path).tail_anchor() == Anchor.EMPTY


def test_tail_anchor_is_the_last_record(log_path: Path) -> None:
    """The tail anchor is the last record's seq and hash."""
    _, anchor = write_log(log_path, 4)
    assert AuditLog(log_path).tail_anchor() == anchor


def test_tail_anchor_skips_a_torn_last_line(log_path: Path) -> None:
    """A torn last line is not a record."""
    _, anchor = write_log(log_path, 4)
    with log_path.open("ab") as stream:
        stream.write(b'{"seq":5')
    assert AuditLog(log_path).tail_anchor() == anchor


def test_tail_anchor_reads_across_chunks(log_path: Path) -> None:
    """Records longer than a read chunk are found whole."""
    big = [{"type": "big", "text": "x" * 100_000}, {"type": "big", "text": "y" * 70_000}]
    sealed, anchor = seal(big, Anchor.EMPTY, NOW)
    AuditLog(log_path).append(sealed)
    assert AuditLog(log_path).tail_anchor() == anchor


# --- verify ---------------------------------------------------------------------------------


def test_verify_names_an_edited_payload_value(log_path: Path) -> None:
    """A changed value is caught at its own seq as an edit."""
    write_log(log_path, 5)
    lines = lines_of(log_path)
    lines[2] = lines[2].replace(b'"calendar":"work"', b'"calendar":"home"')
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.reason == "seq 3: hash does not match its content (edited)"


def test_verify_names_the_seq_after_an_edit_with_a_recomputed_hash(log_path: Path) -> None:
    """An edit with its hash recomputed breaks the chain at the next record."""
    sealed, _ = write_log(log_path, 5)
    lines = lines_of(log_path)
    lines[2] = line_for({**sealed[2], "calendar": "home"})
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "prev_hash" in result.reason


def test_verify_names_a_deleted_middle_line(log_path: Path) -> None:
    """A missing record is named by its seq."""
    write_log(log_path, 5)
    lines = lines_of(log_path)
    del lines[2]
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "missing" in result.reason


def test_verify_names_two_swapped_lines(log_path: Path) -> None:
    """Reordered records are caught at the first displaced seq."""
    write_log(log_path, 5)
    lines = lines_of(log_path)
    lines[1], lines[2] = lines[2], lines[1]
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "reordered" in result.reason


def test_verify_names_a_truncated_tail_with_the_anchor(log_path: Path) -> None:
    """Cutting off the last records is caught only by the anchor, at the first missing seq."""
    _, anchor = write_log(log_path, 5)
    log_path.write_bytes(b"".join(lines_of(log_path)[:3]))
    assert verify(log_path, None).ok
    result = verify(log_path, anchor)
    assert (result.ok, result.first_bad_seq, result.records) == (False, 4, 3)
    assert result.reason.startswith("truncated")


def test_verify_of_a_missing_file_with_an_anchor_is_truncation(log_path: Path) -> None:
    """A missing file is ok without an anchor and truncated with one."""
    assert verify(log_path, None).ok
    assert verify(log_path, Anchor.EMPTY).ok
    result = verify(log_path, Anchor(2, "b" * 64))
    assert (result.ok, result.first_bad_seq) == (False, 1)


def test_verify_names_a_garbage_line(log_path: Path) -> None:
    """A line that is not JSON is bad at the seq it should have had."""
    write_log(log_path, 5)
    lines = lines_of(log_path)
    lines[3] = b"not json at all\n"
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert result.reason == "seq 4: line is not a JSON object"


def test_verify_names_a_torn_last_line(log_path: Path) -> None:
    """A last line without its newline is a torn write."""
    write_log(log_path, 3)
    log_path.write_bytes(log_path.read_bytes()[:-10])
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "torn" in result.reason


def test_verify_names_an_inserted_record(log_path: Path) -> None:
    """A forged record chained after seq 2 pushes the real seq 3 out of place."""
    sealed, _ = write_log(log_path, 5)
    forged, _ = seal([{"type": "forged"}], Anchor(2, str(sealed[1]["hash"])), NOW)
    lines = lines_of(log_path)
    lines.insert(2, canon(forged[0]) + b"\n")
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "found seq 3 again" in result.reason


def test_verify_names_a_duplicated_line(log_path: Path) -> None:
    """A line copied right after itself is a repeat."""
    write_log(log_path, 4)
    lines = lines_of(log_path)
    lines.insert(2, lines[1])
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_verify_names_a_rewrite_that_differs_from_the_anchor(log_path: Path) -> None:
    """A last record rewritten with a fresh hash chains fine but differs from the anchor."""
    sealed, anchor = write_log(log_path, 4)
    lines = lines_of(log_path)
    lines[3] = line_for({**sealed[3], "calendar": "home"})
    log_path.write_bytes(b"".join(lines))
    assert verify(log_path, None).ok
    result = verify(log_path, anchor)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "anchor" in result.reason


def test_verify_names_a_whitespace_only_edit(log_path: Path) -> None:
    """Bytes changed without changing the parsed record are still an edit."""
    write_log(log_path, 3)
    lines = lines_of(log_path)
    lines[1] = lines[1].replace(b'"n":1', b'"n": 1')
    log_path.write_bytes(b"".join(lines))
    result = verify(log_path, None)
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "canonical" in result.reason


def test_verify_accepts_records_past_the_anchor(log_path: Path) -> None:
    """An appended but uncommitted tail is not tampering."""
    write_log(log_path, 5)
    anchor = Anchor(3, str(json.loads(lines_of(log_path)[2])["hash"]))
    result = verify(log_path, anchor)
    assert (result.ok, result.records) == (True, 5)
    assert "2 past the anchor" in result.reason


def test_verify_of_an_unreadable_path_raises_audit_error(tmp_path: Path) -> None:
    """A log path that is a folder is an AuditError, not a verdict."""
    with pytest.raises(AuditError, match=str(tmp_path)):
        verify(tmp_path, None)


# --- recover --------------------------------------------------------------------------------


def commit_point(log_path: Path, count: int) -> Anchor:
    """Write ``count`` committed records, then two appended but uncommitted ones."""
    _, anchor = write_log(log_path, count)
    tail, _ = seal(payloads(2), anchor, NOW + timedelta(seconds=1))
    AuditLog(log_path).append(tail)
    return anchor


def test_recover_drops_an_uncommitted_tail(log_path: Path) -> None:
    """Records past the anchor are cut off and their seqs returned."""
    anchor = commit_point(log_path, 3)
    assert AuditLog(log_path).recover(anchor) == [4, 5]
    assert AuditLog(log_path).tail_anchor() == anchor
    assert verify(log_path, anchor).reason == "ok: 3 records"


def test_recover_drops_a_torn_last_line(log_path: Path) -> None:
    """A torn line past the anchor is cut off and reported by the seq it would have had."""
    _, anchor = write_log(log_path, 3)
    with log_path.open("ab") as stream:
        stream.write(b'{"seq":4,"ts":"2024-')
    assert AuditLog(log_path).recover(anchor) == [4]
    assert verify(log_path, anchor).ok


def test_recover_drops_a_tail_ending_in_a_torn_line(log_path: Path) -> None:
    """Complete and torn lines past the anchor go together."""
    anchor = commit_point(log_path, 3)
    log_path.write_bytes(log_path.read_bytes()[:-7])
    assert AuditLog(log_path).recover(anchor) == [4, 5]
    assert verify(log_path, anchor).ok


def test_recover_then_append_continues_the_chain(log_path: Path) -> None:
    """After recovery, the redone cycle appends and verifies."""
    anchor = commit_point(log_path, 3)
    AuditLog(log_path).recover(anchor)
    redo, anchor = seal(payloads(2), anchor, NOW + timedelta(seconds=2))
    AuditLog(log_path).append(redo)
    assert verify(log_path, anchor).ok


def test_recover_at_the_tail_changes_nothing(log_path: Path) -> None:
    """Nothing past the anchor: nothing dropped, file unchanged."""
    _, anchor = write_log(log_path, 3)
    before = log_path.read_bytes()
    assert AuditLog(log_path).recover(anchor) == []
    assert log_path.read_bytes() == before


def test_recover_to_the_empty_anchor_drops_everything(log_path: Path) -> None:
    """With nothing committed, every line is an uncommitted tail."""
    write_log(log_path, 3)
    assert AuditLog(log_path).recover(Anchor.EMPTY) == [1, 2, 3]
    assert log_path.read_bytes() == b""


def test_recover_a_missing_file_at_the_empty_anchor_does_nothing(log_path: Path) -> None:
    """No file and nothing committed: nothing to do, no file created."""
    assert AuditLog(log_path).recover(Anchor.EMPTY) == []
    assert not log_path.exists()


def test_recover_refuses_a_missing_file_with_an_anchor(log_path: Path) -> None:
    """A missing file when records were committed is loss, not a crash."""
    with pytest.raises(AuditError, match="missing"):
        AuditLog(log_path).recover(Anchor(3, "c" * 64))
    assert not log_path.exists()


def test_recover_refuses_a_file_shorter_than_the_anchor(log_path: Path) -> None:
    """Fewer records than the anchor: AuditError and the file is left as it was."""
    _, anchor = write_log(log_path, 5)
    log_path.write_bytes(b"".join(lines_of(log_path)[:3]))
    before = log_path.read_bytes()
    with pytest.raises(AuditError, match="seq 5"):
        AuditLog(log_path).recover(anchor)
    assert log_path.read_bytes() == before


def test_recover_refuses_when_the_anchored_hash_differs(log_path: Path) -> None:
    """The record at the anchor's seq with another hash: AuditError, file unchanged."""
    commit_point(log_path, 3)
    before = log_path.read_bytes()
    with pytest.raises(AuditError, match="anchored hash"):
        AuditLog(log_path).recover(Anchor(3, "d" * 64))
    assert log_path.read_bytes() == before


def test_recover_refuses_an_edited_anchored_record(log_path: Path) -> None:
    """The anchored record edited but keeping its hash field: AuditError, file unchanged."""
    anchor = commit_point(log_path, 3)
    lines = lines_of(log_path)
    lines[2] = lines[2].replace(b'"calendar":"work"', b'"calendar":"home"')
    log_path.write_bytes(b"".join(lines))
    before = log_path.read_bytes()
    with pytest.raises(AuditError, match="anchored hash"):
        AuditLog(log_path).recover(anchor)
    assert log_path.read_bytes() == before


# --- properties -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
payload_lists = st.lists(
    st.dictionaries(
        st.text().filter(lambda key: key not in {"seq", "ts", "prev_hash", "hash", "type"}),
        json_values,
        max_size=4,
    ).map(lambda extra: {"type": "change", **extra}),
    min_size=1,
    max_size=6,
)


def _meaning(line: bytes) -> bytes | None:
    """The canonical JSON of what a line holds (so -0.0 and 0.0 differ), or None if not JSON."""
    try:
        return canon(json.loads(line.decode("utf-8")))
    except ValueError:
        return None


@settings(deadline=None)  # each example fsyncs: its time is the disk's, not the code's
@given(payload_lists)
def test_any_sealed_log_verifies(records: list[dict[str, object]]) -> None:
    """Whatever JSON payloads are sealed and appended, the log verifies against its anchor."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        sealed, anchor = seal(records, Anchor.EMPTY, NOW)
        AuditLog(path).append(sealed)
        assert verify(path, anchor).ok


@settings(deadline=None)  # each example fsyncs: its time is the disk's, not the code's
@given(payload_lists, st.data())
def test_any_changed_byte_is_caught_at_its_line(
    records: list[dict[str, object]], data: st.DataObject
) -> None:
    """Changing one byte of one line makes verify fail at that line's seq, even when the
    changed line parses to the same object (then it is reported as not canonical)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "audit.jsonl"
        sealed, anchor = seal(records, Anchor.EMPTY, NOW)
        AuditLog(path).append(sealed)
        lines = lines_of(path)
        index = data.draw(st.integers(0, len(lines) - 1), label="line")
        position = data.draw(st.integers(0, len(lines[index]) - 1), label="byte")
        old = lines[index][position]
        new = data.draw(st.integers(0, 255).filter(lambda byte: byte != old), label="value")
        changed = lines[index][:position] + bytes([new]) + lines[index][position + 1 :]
        path.write_bytes(b"".join([*lines[:index], changed, *lines[index + 1 :]]))
        result = verify(path, anchor)
        assert (result.ok, result.first_bad_seq) == (False, index + 1)
        if _meaning(changed) == _meaning(lines[index]):
            assert "canonical" in result.reason


def test_large_log_is_read_in_bounded_memory(log_path: Path) -> None:
    """Verify, tail_anchor and recover work on a log far larger than one read chunk."""
    sealed, anchor = seal(payloads(3000), Anchor.EMPTY, NOW)
    AuditLog(log_path).append(sealed)
    tail, _ = seal(payloads(1), anchor, NOW)
    AuditLog(log_path).append(tail)
    assert os.path.getsize(log_path) > 4 * 64 * 1024
    assert verify(log_path, anchor).ok
    assert AuditLog(log_path).recover(anchor) == [3001]
    assert AuditLog(log_path).tail_anchor() == anchor


def test_recover_refuses_to_drop_several_cycles(log_path: Path) -> None:
    """A tail of two sealed batches (a store restored from a backup) is kept, not erased."""
    anchor = commit_point(log_path, 3)
    later, _ = seal(payloads(1), AuditLog(log_path).tail_anchor(), NOW + timedelta(seconds=9))
    AuditLog(log_path).append(later)
    before = log_path.read_bytes()
    with pytest.raises(AuditError, match="backup"):
        AuditLog(log_path).recover(anchor)
    assert log_path.read_bytes() == before


def test_recover_refuses_to_cut_a_file_that_is_not_an_audit_log(log_path: Path) -> None:
    """With audit.path pointing at some other file, recovery changes nothing."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("".join(f"line {i} of my notes\n" for i in range(50)))
    before = log_path.read_bytes()
    with pytest.raises(AuditError):
        AuditLog(log_path).recover(Anchor.EMPTY)
    assert log_path.read_bytes() == before
