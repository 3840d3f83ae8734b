"""The `FileSystem` port: `OsFileSystem` and `SimFileSystem` agree on ordinary behaviour, and
`SimFileSystem` models crashes and faults as promised."""

from __future__ import annotations

import errno
import inspect
import os
from collections.abc import Callable

import pytest

from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.filesystem import FileSystem, replace_atomically

# -- both adapters ---------------------------------------------------------------------------


def test_append_then_read(fs: FileSystem, root: str) -> None:
    path = f"{root}/ledger.jsonl"
    fs.append(path, b"one\n")
    fs.append(path, b"two\n")
    fs.flush(path)
    assert fs.read(path) == b"one\ntwo\n"


def test_append_creates_the_file(fs: FileSystem, root: str) -> None:
    path = f"{root}/new"
    assert not fs.exists(path)
    fs.append(path, b"x")
    assert fs.exists(path)
    assert fs.read(path) == b"x"


def test_write_creates_and_truncates(fs: FileSystem, root: str) -> None:
    path = f"{root}/state"
    fs.write(path, b"a long first content")
    fs.write(path, b"short")
    assert fs.read(path) == b"short"


def test_append_after_write_extends_the_written_bytes(fs: FileSystem, root: str) -> None:
    path = f"{root}/f"
    fs.append(path, b"old")
    fs.write(path, b"new")
    fs.append(path, b"+more")
    assert fs.read(path) == b"new+more"


def test_empty_append_creates_an_empty_file(fs: FileSystem, root: str) -> None:
    path = f"{root}/empty"
    fs.append(path, b"")
    assert fs.read(path) == b""


def test_rename_replaces_atomically(fs: FileSystem, root: str) -> None:
    src, dst = f"{root}/state.tmp", f"{root}/state"
    fs.write(dst, b"old")
    fs.write(src, b"new")
    fs.rename(src, dst)
    assert fs.read(dst) == b"new"
    assert not fs.exists(src)
    assert fs.listdir(root) == ["state"]


def test_append_after_rename_goes_to_a_new_file(fs: FileSystem, root: str) -> None:
    src, dst = f"{root}/a", f"{root}/b"
    fs.append(src, b"first")
    fs.rename(src, dst)
    fs.append(src, b"second")
    assert fs.read(dst) == b"first"
    assert fs.read(src) == b"second"


def test_rename_of_a_missing_file_raises(fs: FileSystem, root: str) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        fs.rename(f"{root}/missing", f"{root}/b")
    assert caught.value.errno == errno.ENOENT
    assert caught.value.filename == f"{root}/missing"
    assert not fs.exists(f"{root}/b")


def test_listdir_is_sorted_and_lists_files_and_directories(fs: FileSystem, root: str) -> None:
    for name in ["b", "a", "c10", "c2"]:
        fs.append(f"{root}/{name}", b"x")
    fs.makedirs(f"{root}/sub/deeper")
    fs.append(f"{root}/sub/inner", b"x")
    assert fs.listdir(root) == ["a", "b", "c10", "c2", "sub"]
    assert fs.listdir(f"{root}/sub") == ["deeper", "inner"]
    assert fs.listdir(f"{root}/sub/deeper") == []


def test_listdir_of_a_missing_directory_raises(fs: FileSystem, root: str) -> None:
    with pytest.raises(FileNotFoundError):
        fs.listdir(f"{root}/missing")


def test_remove(fs: FileSystem, root: str) -> None:
    path = f"{root}/f"
    fs.write(path, b"x")
    fs.remove(path)
    assert not fs.exists(path)
    assert fs.listdir(root) == []
    with pytest.raises(FileNotFoundError):
        fs.read(path)
    with pytest.raises(FileNotFoundError):
        fs.remove(path)


def test_append_after_remove_starts_a_new_file(fs: FileSystem, root: str) -> None:
    path = f"{root}/f"
    fs.append(path, b"old")
    fs.remove(path)
    fs.append(path, b"new")
    assert fs.read(path) == b"new"


def test_exists(fs: FileSystem, root: str) -> None:
    fs.makedirs(f"{root}/d")
    fs.write(f"{root}/d/f", b"")
    assert fs.exists(root)
    assert fs.exists(f"{root}/d")
    assert fs.exists(f"{root}/d/f")
    assert not fs.exists(f"{root}/d/g")
    assert not fs.exists(f"{root}/nowhere/f")


def test_makedirs_creates_parents_and_is_idempotent(fs: FileSystem, root: str) -> None:
    fs.makedirs(f"{root}/a/b/c")
    fs.makedirs(f"{root}/a/b/c")
    fs.write(f"{root}/a/b/c/f", b"deep")
    assert fs.read(f"{root}/a/b/c/f") == b"deep"
    assert fs.listdir(f"{root}/a") == ["b"]


def test_makedirs_over_a_file_raises(fs: FileSystem, root: str) -> None:
    fs.write(f"{root}/f", b"x")
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{root}/f")
    with pytest.raises(NotADirectoryError):
        fs.makedirs(f"{root}/f/sub")
    assert fs.read(f"{root}/f") == b"x"


def test_paths_are_normalised(fs: FileSystem, root: str) -> None:
    fs.makedirs(f"{root}/d")
    fs.append(f"{root}/d/../d/./f", b"x")
    assert fs.read(f"{root}/d/f") == b"x"


def test_reading_a_missing_file_raises(fs: FileSystem, root: str) -> None:
    path = f"{root}/missing"
    with pytest.raises(FileNotFoundError) as caught:
        fs.read(path)
    assert caught.value.errno == errno.ENOENT
    assert caught.value.filename == path


def test_fsync_of_a_missing_file_raises(fs: FileSystem, root: str) -> None:
    with pytest.raises(FileNotFoundError):
        fs.fsync(f"{root}/missing")
    with pytest.raises(FileNotFoundError):
        fs.fsync_dir(f"{root}/missing")


OPERATIONS: dict[str, Callable[[FileSystem, str], object]] = {
    "append": lambda fs, path: fs.append(path, b"x"),
    "write": lambda fs, path: fs.write(path, b"x"),
    "read": lambda fs, path: fs.read(path),
    "fsync": lambda fs, path: fs.fsync(path),
    "remove": lambda fs, path: fs.remove(path),
    "rename": lambda fs, path: fs.rename(path, path + ".new"),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_file_under_a_missing_directory_raises(fs: FileSystem, root: str, operation: str) -> None:
    path = f"{root}/missing/f"
    with pytest.raises(FileNotFoundError) as caught:
        OPERATIONS[operation](fs, path)
    assert caught.value.errno == errno.ENOENT
    assert caught.value.filename == path
    assert fs.listdir(root) == []


@pytest.mark.parametrize("operation", ["append", "write", "read"])
def test_a_file_under_a_file_raises(fs: FileSystem, root: str, operation: str) -> None:
    fs.write(f"{root}/f", b"data")
    with pytest.raises(NotADirectoryError):
        OPERATIONS[operation](fs, f"{root}/f/g")
    assert fs.read(f"{root}/f") == b"data"


@pytest.mark.parametrize("operation", ["append", "write", "read", "remove"])
def test_file_operations_on_a_directory_raise(fs: FileSystem, root: str, operation: str) -> None:
    fs.makedirs(f"{root}/d")
    with pytest.raises(IsADirectoryError):
        OPERATIONS[operation](fs, f"{root}/d")
    assert fs.listdir(root) == ["d"]


def test_replace_atomically_round_trip(fs: FileSystem, root: str) -> None:
    path = f"{root}/kill_switch.json"
    replace_atomically(fs, path, b'{"active": true}')
    assert fs.read(path) == b'{"active": true}'
    replace_atomically(fs, path, b'{"active": false}')
    assert fs.read(path) == b'{"active": false}'
    assert fs.listdir(root) == ["kill_switch.json"]


def test_fsync_keeps_the_bytes(fs: FileSystem, root: str) -> None:
    path = f"{root}/f"
    fs.append(path, b"abc")
    fs.flush(path)
    fs.fsync(path)
    fs.fsync_dir(root)
    fs.append(path, b"def")
    fs.fsync(path)
    assert fs.read(path) == b"abcdef"


# -- SimFileSystem: the port's signatures ----------------------------------------------------


def test_sim_has_every_method_of_the_port_with_the_same_parameters() -> None:
    for name, member in inspect.getmembers(FileSystem, inspect.isfunction):
        if name.startswith("_"):
            continue
        expected = list(inspect.signature(member).parameters)
        assert list(inspect.signature(getattr(SimFileSystem, name)).parameters) == expected


# -- SimFileSystem: crashes ------------------------------------------------------------------

ROOT = "/srv/data"


@pytest.fixture
def sim() -> SimFileSystem:
    sim = SimFileSystem()
    sim.makedirs(ROOT)
    return sim


def durable_file(sim: SimFileSystem, path: str, data: bytes) -> None:
    """Create `path` holding `data`, all of it durable."""
    sim.write(path, data)
    sim.fsync(path)
    sim.fsync_dir(os.path.dirname(path))


def test_crash_drops_unsynced_appends_and_keeps_synced_ones(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    sim.append(path, b"synced\n")
    sim.flush(path)
    sim.fsync(path)
    sim.fsync_dir(ROOT)
    sim.append(path, b"lost\n")
    sim.flush(path)
    assert sim.durable_bytes(path) == b"synced\n"
    sim.crash()
    assert sim.read(path) == b"synced\n"
    sim.append(path, b"after\n")
    assert sim.read(path) == b"synced\nafter\n"


def test_crash_with_torn_bytes_keeps_exactly_that_prefix(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"abc")
    sim.append(path, b"defgh")
    sim.crash(torn_bytes=2)
    assert sim.read(path) == b"abcde"
    # The torn bytes are on disk now: a second crash keeps them.
    assert sim.durable_bytes(path) == b"abcde"
    sim.crash(torn_bytes=0)
    assert sim.read(path) == b"abcde"


def test_torn_bytes_beyond_the_tail_keep_the_whole_tail(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"abc")
    sim.append(path, b"de")
    sim.crash(torn_bytes=100)
    assert sim.read(path) == b"abcde"


def test_a_rewrite_in_place_without_fsync_survives_whole_or_torn(sim: SimFileSystem) -> None:
    path = f"{ROOT}/state"
    durable_file(sim, path, b"old state")
    sim.write(path, b"new content")
    sim.crash()
    assert sim.read(path) == b"old state"
    sim.write(path, b"new content")
    sim.crash(torn_bytes=3)
    assert sim.read(path) == b"new"  # truncated, then torn within the new bytes
    assert sim.durable_bytes(path) == b"new"


def test_crash_rejects_negative_torn_bytes(sim: SimFileSystem) -> None:
    with pytest.raises(ValueError):
        sim.crash(torn_bytes=-1)


def test_fsynced_file_without_directory_fsync_disappears(sim: SimFileSystem) -> None:
    path = f"{ROOT}/f"
    sim.write(path, b"data")
    sim.fsync(path)
    assert sim.durable_bytes(path) is None
    sim.crash()
    assert not sim.exists(path)
    assert sim.listdir(ROOT) == []
    with pytest.raises(FileNotFoundError):
        sim.read(path)


def test_directory_fsync_without_file_fsync_leaves_an_empty_file(sim: SimFileSystem) -> None:
    path = f"{ROOT}/f"
    sim.write(path, b"data")
    sim.fsync_dir(ROOT)
    assert sim.durable_bytes(path) == b""
    sim.crash()
    assert sim.read(path) == b""


def test_remove_is_undone_by_a_crash_until_the_directory_is_fsynced(sim: SimFileSystem) -> None:
    path = f"{ROOT}/f"
    durable_file(sim, path, b"data")
    sim.remove(path)
    sim.crash()
    assert sim.read(path) == b"data"
    sim.remove(path)
    sim.fsync_dir(ROOT)
    assert sim.durable_bytes(path) is None
    sim.crash()
    assert not sim.exists(path)


def test_replace_atomically_survives_a_crash(sim: SimFileSystem) -> None:
    path = f"{ROOT}/kill_switch.json"
    replace_atomically(sim, path, b"old")
    replace_atomically(sim, path, b"new")
    sim.crash()
    assert sim.read(path) == b"new"
    assert sim.listdir(ROOT) == ["kill_switch.json"]


def test_rename_without_directory_fsync_reverts_at_crash(sim: SimFileSystem) -> None:
    path = f"{ROOT}/kill_switch.json"
    replace_atomically(sim, path, b"old")
    sim.write(path + ".tmp", b"new")
    sim.fsync(path + ".tmp")
    sim.rename(path + ".tmp", path)
    assert sim.read(path) == b"new"
    assert sim.durable_bytes(path) == b"old"
    sim.crash()
    assert sim.read(path) == b"old"
    assert sim.listdir(ROOT) == ["kill_switch.json"]


def test_rename_of_durable_names_without_directory_fsync(sim: SimFileSystem) -> None:
    # Both names durable: a crash brings the source back and the target's old inode.
    durable_file(sim, f"{ROOT}/a", b"A")
    durable_file(sim, f"{ROOT}/b", b"B")
    sim.rename(f"{ROOT}/a", f"{ROOT}/b")
    sim.crash()
    assert sim.read(f"{ROOT}/a") == b"A"
    assert sim.read(f"{ROOT}/b") == b"B"


def test_rename_across_directories_needs_both_directories_fsynced(sim: SimFileSystem) -> None:
    sim.makedirs(f"{ROOT}/in")
    sim.makedirs(f"{ROOT}/out")
    durable_file(sim, f"{ROOT}/in/f", b"data")
    sim.rename(f"{ROOT}/in/f", f"{ROOT}/out/f")
    sim.fsync_dir(f"{ROOT}/out")
    sim.crash()
    # Only the new name was made durable: the inode is now under both names.
    assert sim.read(f"{ROOT}/in/f") == b"data"
    assert sim.read(f"{ROOT}/out/f") == b"data"


def test_crash_keeps_directories(sim: SimFileSystem) -> None:
    sim.makedirs(f"{ROOT}/a/b")
    sim.crash()
    assert sim.listdir(ROOT) == ["a"]
    assert sim.listdir(f"{ROOT}/a") == ["b"]


def test_a_directory_replacing_a_removed_file_survives_a_crash(sim: SimFileSystem) -> None:
    durable_file(sim, f"{ROOT}/x", b"file")
    sim.remove(f"{ROOT}/x")
    sim.makedirs(f"{ROOT}/x")
    sim.crash()
    assert sim.listdir(ROOT) == ["x"]
    assert sim.listdir(f"{ROOT}/x") == []


def test_durable_bytes_of_unknown_names_is_none(sim: SimFileSystem) -> None:
    assert sim.durable_bytes(f"{ROOT}/missing") is None
    assert sim.durable_bytes(f"{ROOT}/nowhere/f") is None
    assert sim.durable_bytes(ROOT) is None


# -- SimFileSystem: faults -------------------------------------------------------------------


def test_enospc_append_writes_exactly_the_bytes_that_fit(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    sim.fail_writes_after(5)
    sim.append(path, b"abc")
    with pytest.raises(OSError) as caught:
        sim.append(path, b"defgh")
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.strerror == "No space left on device"
    assert caught.value.filename == path
    assert sim.read(path) == b"abcde"
    with pytest.raises(OSError) as again:
        sim.append(path, b"z")
    assert again.value.errno == errno.ENOSPC
    assert sim.read(path) == b"abcde"
    assert sim.bytes_written == 5


def test_enospc_write_truncates_then_writes_what_fits(sim: SimFileSystem) -> None:
    path = f"{ROOT}/state"
    sim.write(path, b"previous")
    sim.fail_writes_after(2)
    with pytest.raises(OSError) as caught:
        sim.write(path, b"next")
    assert caught.value.errno == errno.ENOSPC
    assert sim.read(path) == b"ne"


def test_enospc_budget_counts_from_when_it_is_set(sim: SimFileSystem) -> None:
    sim.append(f"{ROOT}/f", b"0123456789")
    sim.fail_writes_after(3)
    sim.append(f"{ROOT}/f", b"abc")
    with pytest.raises(OSError):
        sim.append(f"{ROOT}/g", b"d")
    assert sim.read(f"{ROOT}/f") == b"0123456789abc"
    assert sim.read(f"{ROOT}/g") == b""
    assert sim.bytes_written == 13


def test_enospc_zero_fails_every_write_with_nothing_written(sim: SimFileSystem) -> None:
    path = f"{ROOT}/f"
    durable_file(sim, path, b"keep")
    sim.fail_writes_after(0)
    with pytest.raises(OSError) as caught:
        sim.append(path, b"x")
    assert caught.value.errno == errno.ENOSPC
    assert sim.read(path) == b"keep"
    assert sim.bytes_written == 4


def test_eio_on_flush_leaves_the_data_volatile(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"")
    sim.fail_flush()
    sim.append(path, b"record\n")
    with pytest.raises(OSError) as caught:
        sim.flush(path)
    assert caught.value.errno == errno.EIO
    assert caught.value.strerror == os.strerror(errno.EIO)
    assert caught.value.filename == path
    sim.crash()
    assert sim.read(path) == b""


def test_eio_on_fsync_leaves_the_data_volatile(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"old\n")
    sim.fail_fsync()
    sim.append(path, b"new\n")
    with pytest.raises(OSError) as caught:
        sim.fsync(path)
    assert caught.value.errno == errno.EIO
    assert caught.value.filename == path
    assert sim.read(path) == b"old\nnew\n"
    assert sim.durable_bytes(path) == b"old\n"
    sim.crash()
    assert sim.read(path) == b"old\n"


def test_eio_on_fsync_dir_leaves_the_entry_volatile(sim: SimFileSystem) -> None:
    path = f"{ROOT}/f"
    sim.write(path, b"data")
    sim.fsync(path)
    sim.fail_fsync()
    with pytest.raises(OSError) as caught:
        sim.fsync_dir(ROOT)
    assert caught.value.errno == errno.EIO
    assert caught.value.filename == ROOT
    sim.crash()
    assert not sim.exists(path)


def test_fsync_fault_takes_the_errno_given(sim: SimFileSystem) -> None:
    sim.write(f"{ROOT}/f", b"x")
    sim.fail_fsync(errno.ENOSPC)
    with pytest.raises(OSError) as caught:
        sim.fsync(f"{ROOT}/f")
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.strerror == os.strerror(errno.ENOSPC)


def test_faults_last_across_a_crash(sim: SimFileSystem) -> None:
    sim.fail_fsync()
    sim.fail_flush()
    sim.fail_writes_after(0)
    sim.crash()
    with pytest.raises(OSError):
        sim.append(f"{ROOT}/f", b"x")
    with pytest.raises(OSError):
        sim.flush(f"{ROOT}/f")
    with pytest.raises(OSError):
        sim.fsync(f"{ROOT}/f")


def test_heal_lifts_every_fault(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    sim.fail_writes_after(0)
    sim.fail_flush()
    sim.fail_fsync()
    sim.heal()
    sim.append(path, b"record\n")
    sim.flush(path)
    sim.fsync(path)
    sim.fsync_dir(ROOT)
    sim.crash()
    assert sim.read(path) == b"record\n"


def test_remove_directory(sim: SimFileSystem) -> None:
    sim.makedirs(f"{ROOT}/d/e")
    durable_file(sim, f"{ROOT}/d/f", b"1")
    durable_file(sim, f"{ROOT}/d/e/g", b"2")
    durable_file(sim, f"{ROOT}/keep", b"3")
    sim.remove_directory(f"{ROOT}/d")
    assert not sim.exists(f"{ROOT}/d")
    assert not sim.exists(f"{ROOT}/d/e/g")
    assert sim.listdir(ROOT) == ["keep"]
    with pytest.raises(FileNotFoundError) as caught:
        sim.append(f"{ROOT}/d/f", b"x")
    assert caught.value.filename == f"{ROOT}/d/f"
    with pytest.raises(FileNotFoundError):
        sim.listdir(f"{ROOT}/d")
    sim.crash()
    assert sim.listdir(ROOT) == ["keep"]
    assert sim.durable_bytes(f"{ROOT}/d/f") is None
    sim.makedirs(f"{ROOT}/d")
    assert sim.listdir(f"{ROOT}/d") == []
    sim.append(f"{ROOT}/d/f", b"x")
    assert sim.read(f"{ROOT}/d/f") == b"x"


def test_remove_directory_of_a_missing_directory_raises(sim: SimFileSystem) -> None:
    with pytest.raises(FileNotFoundError):
        sim.remove_directory(f"{ROOT}/missing")


def test_corrupt_overwrites_current_and_durable_bytes(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"hello")
    sim.corrupt(path, 1, b"XY")
    assert sim.read(path) == b"hXYlo"
    assert sim.durable_bytes(path) == b"hXYlo"
    sim.crash()
    assert sim.read(path) == b"hXYlo"


def test_corrupt_defaults_to_one_ff_byte(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"abc")
    sim.corrupt(path, 2)
    assert sim.read(path) == b"ab\xff"


def test_corrupt_reaches_the_durable_part_of_a_partly_synced_file(sim: SimFileSystem) -> None:
    path = f"{ROOT}/ledger"
    durable_file(sim, path, b"abc")
    sim.append(path, b"def")
    sim.corrupt(path, 2, b"XY")
    assert sim.read(path) == b"abXYef"
    assert sim.durable_bytes(path) == b"abX"


@pytest.mark.parametrize(("offset", "data"), [(-1, b"x"), (3, b"x"), (2, b"xy"), (0, b"")])
def test_corrupt_outside_the_file_raises(sim: SimFileSystem, offset: int, data: bytes) -> None:
    path = f"{ROOT}/f"
    durable_file(sim, path, b"abc")
    with pytest.raises(ValueError):
        sim.corrupt(path, offset, data)
    assert sim.read(path) == b"abc"


def test_heal_does_not_undo_damage(sim: SimFileSystem) -> None:
    sim.makedirs(f"{ROOT}/d")
    durable_file(sim, f"{ROOT}/f", b"abc")
    sim.corrupt(f"{ROOT}/f", 0)
    sim.remove_directory(f"{ROOT}/d")
    sim.heal()
    assert sim.read(f"{ROOT}/f") == b"\xffbc"
    assert not sim.exists(f"{ROOT}/d")


def test_relative_paths_live_under_the_implicit_root() -> None:
    sim = SimFileSystem()
    sim.append("f", b"x")
    sim.makedirs("d")
    assert sim.listdir(".") == ["d", "f"]
    assert sim.read("./f") == b"x"
    replace_atomically(sim, "state", b"s")
    sim.crash()
    # The directory fsync in replace_atomically made the entry of "f" durable, not its bytes.
    assert sim.listdir(".") == ["d", "f", "state"]
    assert sim.read("f") == b""
    assert sim.read("state") == b"s"
