"""Snapshots: memory bounded whatever the disk does; the file is the old or the new flush."""

from __future__ import annotations

import json

from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.snapshots import SnapshotBuffer


def flushed(fs: FileSystem, buffer: SnapshotBuffer) -> list[dict]:
    return json.loads(fs.read(buffer.path))["snapshots"]


def test_snapshots_flush_every_n_and_clear(fs: FileSystem, root: str) -> None:
    buffer = SnapshotBuffer(fs, root, max_pending=8, flush_every=3)
    for n in range(7):
        buffer.add({"n": n})
    assert flushed(fs, buffer) == [{"n": 3}, {"n": 4}, {"n": 5}]
    assert buffer.pending == [{"n": 6}]
    assert buffer.flush() and flushed(fs, buffer) == [{"n": 6}]
    assert buffer.pending == []


def test_a_failing_disk_keeps_memory_bounded_and_reports(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    buffer = SnapshotBuffer(sim_fs, "/d", max_pending=5, flush_every=2)
    sim_fs.fail_writes_after(0)
    for n in range(50):
        buffer.add({"n": n})
        assert len(buffer.pending) <= 5
    assert buffer.dropped == 45
    assert buffer.last_error and "No space left" in buffer.last_error
    sim_fs.heal()
    assert buffer.flush()
    assert flushed(sim_fs, buffer) == [{"n": n} for n in range(45, 50)]
    assert buffer.last_error is None


def test_a_crash_mid_flush_leaves_the_old_file(sim_fs: SimFileSystem) -> None:
    sim_fs.makedirs("/d")
    buffer = SnapshotBuffer(sim_fs, "/d", max_pending=4, flush_every=1)
    buffer.add({"n": 1})
    sim_fs.fail_fsync()
    buffer.add({"n": 2})
    sim_fs.heal()
    sim_fs.crash(torn_bytes=7)
    assert flushed(sim_fs, buffer) == [{"n": 1}]
