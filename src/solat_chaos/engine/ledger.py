"""The write-ahead ledger: append-only JSONL, one CRC-framed, sequence-numbered record a line.

A line is `{"seq": N, "crc": "xxxxxxxx", "record": {...}}` where the CRC32 covers the
sequence number and the canonical JSON of the record, so a flipped byte that still parses
is caught too. `append` returns only after the line is fsynced.

Opening never raises on bad data: a line that does not verify, and a torn last line, are
copied to the quarantine file with their offset, and the ledger itself is never rewritten —
no byte is deleted. The next append starts on a fresh line.
"""

from __future__ import annotations

import base64
import json
import posixpath
import zlib
from collections.abc import Iterator

import attrs

from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.records import Record, Recovery, decode, encode

LEDGER_FILE = "ledger.jsonl"
QUARANTINE_FILE = "ledger.quarantine.jsonl"


@attrs.frozen
class Entry:
    seq: int
    record: Record


@attrs.frozen
class Quarantined:
    offset: int
    reason: str
    raw: bytes


@attrs.frozen
class RecoveryReport:
    """What opening the ledger found. `quarantine_error` is set when a bad line could not be
    copied to quarantine (it stays in the ledger and is found again next time); `unreadable`
    when the ledger itself could not be read, so nothing is known."""

    recovered: int
    quarantined: tuple[Quarantined, ...]
    torn_tail: bool
    quarantine_error: str | None = None
    unreadable: str | None = None


# One encoder for every line: `json.dumps` with options builds a new encoder per call, and
# every append and every line read back encodes a record (the same output either way).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _canonical(record_json: dict) -> bytes:
    return _CANONICAL.encode(record_json).encode()


def _crc(seq: int, body: bytes) -> str:
    return f"{zlib.crc32(str(seq).encode() + b':' + body) & 0xFFFFFFFF:08x}"


def frame(seq: int, record: Record) -> bytes:
    """One ledger line, newline included."""
    body = _canonical(encode(record))
    return b'{"seq":%d,"crc":"%s","record":%s}\n' % (seq, _crc(seq, body).encode(), body)


def unframe(line: bytes) -> Entry:
    """Verify and decode one line (without its newline); ValueError says why it is bad."""
    try:
        data = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(data, dict) or set(data) != {"seq", "crc", "record"}:
        raise ValueError("not a ledger frame")
    seq, crc, record_json = data["seq"], data["crc"], data["record"]
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(crc, str):
        raise ValueError("bad frame header")
    if _crc(seq, _canonical(record_json)) != crc:
        raise ValueError("checksum mismatch")
    return Entry(seq, decode(record_json))


class LedgerWriteError(OSError):
    """An append did not become durable. The record must be treated as not written."""


class Ledger:
    """Open with `Ledger.open`; the entries recovered and appended since are in `entries`."""

    def __init__(self, fs: FileSystem, directory: str) -> None:
        self._fs = fs
        self.path = posixpath.join(directory, LEDGER_FILE)
        self.quarantine_path = posixpath.join(directory, QUARANTINE_FILE)
        self.entries: list[Entry] = []
        self._next_seq = 1
        # After a failed or torn append the file may end mid-line; the next append first
        # writes a newline so the partial bytes stay a line of their own (quarantined later).
        self._needs_boundary = False
        # The file's directory entry is durable only after a directory fsync that succeeded
        # while the file existed; until then every append retries it.
        self._entry_durable = False

    @classmethod
    def open(cls, fs: FileSystem, directory: str, now: float) -> tuple[Ledger, RecoveryReport]:
        ledger = cls(fs, directory)
        report = ledger._recover(now)
        return ledger, report

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    def append(self, record: Record) -> Entry:
        """Write `record` and fsync it. Raises LedgerWriteError if it is not durable."""
        seq = self._next_seq
        # A sequence number is used up even by a failed attempt: bytes of that attempt may
        # still reach the disk later, and two lines must never share a number.
        self._next_seq += 1
        line = frame(seq, record)
        if self._needs_boundary:
            line = b"\n" + line
        try:
            self._fs.append(self.path, line)
            self._fs.flush(self.path)
            self._fs.fsync(self.path)
            if not self._entry_durable:
                self._fs.fsync_dir(posixpath.dirname(self.path))
                self._entry_durable = True
        except OSError as e:
            self._needs_boundary = True
            raise LedgerWriteError(e.errno, f"ledger append failed: {e.strerror or e}") from e
        self._needs_boundary = False
        entry = Entry(seq, record)
        self.entries.append(entry)
        return entry

    def records(self) -> Iterator[Record]:
        return (entry.record for entry in self.entries)

    def _recover(self, now: float) -> RecoveryReport:
        try:
            data = self._fs.read(self.path) if self._fs.exists(self.path) else b""
        except OSError as e:
            # An unreadable ledger is not an empty one: the caller must not trade on it.
            self._needs_boundary = True
            return RecoveryReport(0, (), False, unreadable=f"ledger unreadable: {e}")
        bad: list[Quarantined] = []
        offset = 0
        lines = data.split(b"\n")
        torn_tail = lines[-1] != b""
        for index, line in enumerate(lines):
            if line.strip():
                try:
                    self.entries.append(unframe(line))
                except ValueError as e:
                    reason = "torn last line" if index == len(lines) - 1 else str(e)
                    bad.append(Quarantined(offset, reason, line))
            offset += len(line) + 1
        recovered = len(self.entries)
        self._next_seq = max((entry.seq for entry in self.entries), default=0) + 1
        self._needs_boundary = torn_tail
        try:
            new = self._quarantine_new(bad)
            if new:
                self.append(Recovery(len(new), tuple(q.offset for q in new), now))
        except OSError as e:
            return RecoveryReport(recovered, tuple(bad), torn_tail, quarantine_error=str(e))
        return RecoveryReport(recovered, tuple(bad), torn_tail)

    def _quarantine_new(self, bad: list[Quarantined]) -> list[Quarantined]:
        """Copy to quarantine, and fsync, the bad lines not already there.

        Bad lines stay in the ledger, so each opening finds them again; the offset keys them.
        """
        if not bad:
            return []
        existing = (
            self._fs.read(self.quarantine_path) if self._fs.exists(self.quarantine_path) else b""
        )
        known = self._quarantined_offsets(existing)
        new = [q for q in bad if q.offset not in known]
        if new:
            lines = b"".join(map(self._quarantine_line, new))
            if existing and not existing.endswith(b"\n"):
                lines = b"\n" + lines
            self._fs.append(self.quarantine_path, lines)
            self._fs.flush(self.quarantine_path)
            self._fs.fsync(self.quarantine_path)
            self._fs.fsync_dir(posixpath.dirname(self.quarantine_path))
        return new

    @staticmethod
    def _quarantined_offsets(existing: bytes) -> set[int]:
        offsets = set()
        for line in existing.split(b"\n"):
            try:
                offsets.add(int(json.loads(line)["offset"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn quarantine line is simply written again
        return offsets

    def _quarantine_line(self, q: Quarantined) -> bytes:
        return (
            json.dumps(
                {
                    "ledger": LEDGER_FILE,
                    "offset": q.offset,
                    "reason": q.reason,
                    "raw_base64": base64.b64encode(q.raw).decode(),
                }
            ).encode()
            + b"\n"
        )
