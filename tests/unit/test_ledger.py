"""The ledger's contract: fsync on every append, recovery that never raises, never drops a
verified record, quarantines what does not verify, and resumes on a clean line."""

from __future__ import annotations

import base64
import errno
import json

import pytest

from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.ledger import Ledger, LedgerWriteError, frame, unframe
from solat_chaos.engine.records import Confirmed, Intent, Recovery, Rejected, decode, encode

NOW = 1_767_225_600.0


def intent(n: int) -> Intent:
    return Intent(f"REF{n}", "OPEN", "CS.D.EURUSD.TODAY.IP", "BUY", 1.0, NOW)


def quarantine(fs: FileSystem, ledger: Ledger) -> list[dict]:
    return [json.loads(line) for line in fs.read(ledger.quarantine_path).splitlines()]


def test_append_then_reopen_recovers_every_record(fs: FileSystem, root: str) -> None:
    ledger, report = Ledger.open(fs, root, NOW)
    assert report.recovered == 0
    for n in range(5):
        ledger.append(intent(n))
    reopened, report = Ledger.open(fs, root, NOW)
    assert [e.record for e in reopened.entries] == [intent(n) for n in range(5)]
    assert [e.seq for e in reopened.entries] == [1, 2, 3, 4, 5]
    assert report.quarantined == () and not report.torn_tail
    assert reopened.append(intent(9)).seq == 6


def test_a_line_carries_sequence_and_checksum(fs: FileSystem, root: str) -> None:
    ledger, _ = Ledger.open(fs, root, NOW)
    ledger.append(Rejected("REF1", "validation", "invalid size", NOW))
    (line,) = fs.read(ledger.path).splitlines()
    data = json.loads(line)
    assert data["seq"] == 1 and len(data["crc"]) == 8
    assert data["record"]["kind"] == "REJECTED"


def test_a_rejection_written_before_refusals_named_their_causes_still_loads() -> None:
    old = {"kind": "REJECTED", "deal_reference": "R", "stage": "state", "at": NOW}
    old["reason"] = "engine is REDUCING: no successful reconcile since the engine opened"
    assert decode(old) == Rejected("R", "state", old["reason"], NOW, causes=())
    assert decode({**old, "causes": ["not_reconciled"]}).causes == ("not_reconciled",)
    with pytest.raises(ValueError, match="causes"):
        decode({**old, "causes": "not_reconciled"})  # one name, not a list: corrupt
    # A rejection naming no cause (the broker's) is written as before, for older readers.
    assert encode(decode(old)) == old


def test_a_flipped_byte_that_still_parses_is_caught_by_the_checksum() -> None:
    line = frame(1, Confirmed("R", "OPEN", "D1", "E", "BUY", 2.0, NOW)).rstrip(b"\n")
    tampered = line.replace(b'"filled_size":2.0', b'"filled_size":9.0')
    assert json.loads(tampered)  # still valid JSON
    with pytest.raises(ValueError, match="checksum"):
        unframe(tampered)
    assert unframe(line).record.filled_size == 2.0


def test_corrupt_middle_line_and_torn_last_line_are_quarantined(fs: FileSystem, root: str) -> None:
    ledger, _ = Ledger.open(fs, root, NOW)
    for n in range(4):
        ledger.append(intent(n))
    data = fs.read(ledger.path)
    lines = data.split(b"\n")
    second_offset = len(lines[0]) + 1
    corrupt = lines[1][:10] + b"#" + lines[1][11:]
    torn = frame(5, intent(5))[:25]
    fs.write(ledger.path, b"\n".join([lines[0], corrupt, *lines[2:]]) + torn)

    reopened, report = Ledger.open(fs, root, NOW)

    assert [e.record for e in reopened.entries[:3]] == [intent(0), intent(2), intent(3)]
    assert report.recovered == 3 and report.torn_tail
    assert [q.offset for q in report.quarantined] == [second_offset, len(data)]
    saved = quarantine(fs, reopened)
    assert [base64.b64decode(q["raw_base64"]) for q in saved] == [corrupt, torn]
    assert saved[1]["reason"] == "torn last line"
    # The trail says so itself, and no byte of the ledger was deleted.
    assert reopened.entries[-1].record == Recovery(2, (second_offset, len(data)), NOW)
    assert fs.read(reopened.path).startswith(b"\n".join([lines[0], corrupt, *lines[2:]]) + torn)


def test_appending_resumes_on_a_clean_line_after_a_torn_tail(fs: FileSystem, root: str) -> None:
    ledger, _ = Ledger.open(fs, root, NOW)
    ledger.append(intent(1))
    fs.append(ledger.path, b'{"seq":2,"crc":')
    reopened, _ = Ledger.open(fs, root, NOW)
    reopened.append(intent(3))
    again, report = Ledger.open(fs, root, NOW)
    records = [e.record for e in again.entries]
    assert intent(1) in records and intent(3) in records
    # Opening again finds the same torn line but does not quarantine it twice.
    assert len(quarantine(fs, again)) == 1
    assert [q.reason for q in report.quarantined] == [
        "not JSON: Expecting value: line 1 column 16 (char 15)"
    ]


def test_recovery_never_raises_on_garbage(fs: FileSystem, root: str) -> None:
    ledger, _ = Ledger.open(fs, root, NOW)
    ledger.append(intent(1))
    fs.append(
        ledger.path, b"\xff\xfe garbage\n[1,2]\n{}\n\n" + b'{"seq":"x","crc":1,"record":{}}\n'
    )
    reopened, report = Ledger.open(fs, root, NOW)
    assert [e.record for e in reopened.entries][0] == intent(1)
    assert len(report.quarantined) == 4


def test_sequence_numbers_continue_after_the_highest_recovered(fs: FileSystem, root: str) -> None:
    ledger, _ = Ledger.open(fs, root, NOW)
    ledger.append(intent(1))
    fs.append(ledger.path, frame(41, intent(2)))
    reopened, _ = Ledger.open(fs, root, NOW)
    assert reopened.append(intent(3)).seq == 42


# -- faults (simulated disk) --------------------------------------------------------------


def test_a_crash_after_an_unfsynced_append_loses_only_that_record(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    ledger.append(intent(1))
    ledger.append(intent(2))
    sim_fs.append(ledger.path, frame(3, intent(3)))  # written, never fsynced
    sim_fs.crash()
    reopened, report = Ledger.open(sim_fs, "/d", NOW)
    assert [e.record for e in reopened.entries] == [intent(1), intent(2)]
    assert report.quarantined == ()


@pytest.mark.parametrize("torn_bytes", [1, 17, 60])
def test_a_torn_append_is_quarantined_and_the_rest_recovered(
    sim_fs: SimFileSystem, torn_bytes: int
) -> None:
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    ledger.append(intent(1))
    sim_fs.append(ledger.path, frame(2, intent(2)))
    sim_fs.crash(torn_bytes=torn_bytes)
    reopened, report = Ledger.open(sim_fs, "/d", NOW)
    assert reopened.entries[0].record == intent(1)
    assert report.torn_tail and len(report.quarantined) == 1
    reopened.append(intent(3))
    final, _ = Ledger.open(sim_fs, "/d", NOW)
    assert intent(3) in [e.record for e in final.entries]


def test_enospc_mid_append_raises_and_the_next_append_starts_clean(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    ledger.append(intent(1))
    sim_fs.fail_writes_after(20)
    with pytest.raises(LedgerWriteError) as raised:
        ledger.append(intent(2))
    assert raised.value.errno == errno.ENOSPC
    assert len(ledger.entries) == 1
    sim_fs.heal()
    ledger.append(intent(3))
    reopened, report = Ledger.open(sim_fs, "/d", NOW)
    assert [e.record for e in reopened.entries][:2] == [intent(1), intent(3)]
    assert len(report.quarantined) == 1  # the 20 partial bytes, kept in quarantine


def test_an_fsync_failure_is_a_failed_append(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    sim_fs.fail_fsync()
    with pytest.raises(LedgerWriteError):
        ledger.append(intent(1))
    assert ledger.entries == []


def test_a_ledger_created_but_whose_directory_was_not_fsynced_would_vanish(
    sim_fs: SimFileSystem,
) -> None:
    """The first append fsyncs the directory too, so the new file itself survives."""
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    ledger.append(intent(1))
    sim_fs.crash()
    reopened, _ = Ledger.open(sim_fs, "/d", NOW)
    assert [e.record for e in reopened.entries] == [intent(1)]


def test_bit_rot_in_a_durable_line_is_quarantined(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    for n in range(3):
        ledger.append(intent(n))
    first_line = len(sim_fs.read(ledger.path).split(b"\n")[0]) + 1
    sim_fs.corrupt(ledger.path, first_line + 40, b"\x00")
    reopened, report = Ledger.open(sim_fs, "/d", NOW)
    assert [e.record for e in reopened.entries][:2] == [intent(0), intent(2)]
    assert [q.offset for q in report.quarantined] == [first_line]


def test_recovery_reports_rather_than_raises_when_quarantine_cannot_be_written(
    sim_fs: SimFileSystem,
) -> None:
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    ledger.append(intent(1))
    sim_fs.append(ledger.path, b"garbage\n")
    sim_fs.fail_writes_after(0)
    reopened, report = Ledger.open(sim_fs, "/d", NOW)
    assert [e.record for e in reopened.entries] == [intent(1)]
    assert "quarantine" not in (report.unreadable or "")
    assert report.quarantine_error and "No space left" in report.quarantine_error


def test_a_ledger_created_during_a_failed_append_still_becomes_durable(
    sim_fs: SimFileSystem,
) -> None:
    """Found by the disk machine: the first append created the file and failed before the
    directory fsync; later appends must still make the file's name durable."""
    sim_fs.makedirs("/d")
    ledger, _ = Ledger.open(sim_fs, "/d", NOW)
    sim_fs.fail_flush()
    with pytest.raises(LedgerWriteError):
        ledger.append(intent(1))
    sim_fs.heal()
    ledger.append(intent(2))
    sim_fs.crash()
    reopened, _ = Ledger.open(sim_fs, "/d", NOW)
    assert intent(2) in [e.record for e in reopened.entries]
