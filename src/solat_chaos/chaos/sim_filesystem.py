"""`SimFileSystem`: an in-memory, deterministic adapter of the `FileSystem` port.

It models the POSIX durability contract stated in `solat_chaos.engine.filesystem`:

- a file is an inode with its current bytes (what `read` returns) and its durable bytes (what
  survives a crash); `append` and `write` change only the current bytes, `fsync` makes them
  durable;
- every directory has a current mapping of names to inodes and a durable one; creating a file,
  `rename` and `remove` change only the current mapping, `fsync_dir` makes that directory's
  entries durable;
- `crash` drops everything that is not durable, optionally keeping a torn prefix of
  un-fsynced appends, or of an un-fsynced overwrite (the old bytes truncated).

Simplification: directories themselves are durable as soon as `makedirs` creates them, and
directories cannot be renamed or removed through the port (only by `remove_directory`).

Paths are POSIX strings, normalised with `posixpath.normpath`. Relative paths live under an
implicit root `.` and absolute ones under `/`; both always exist. Nothing here is random and
nothing is shared between instances, so a run replays exactly.
"""

from __future__ import annotations

import errno
import functools
import os
import posixpath

_ROOTS = frozenset({"/", "."})


class _Inode:
    """A file's bytes: `data` is what `read` returns, `durable` what survives a crash."""

    __slots__ = ("data", "durable")

    def __init__(self) -> None:
        self.data = bytearray()
        self.durable = b""


class _Dir:
    """A directory's file entries: the current mapping and the one a crash reverts to."""

    __slots__ = ("current", "durable")

    def __init__(self) -> None:
        self.current: dict[str, _Inode] = {}
        self.durable: dict[str, _Inode] = {}


def _oserror(code: int, path: str, path2: str | None = None) -> OSError:
    # OSError picks the subclass from the errno (ENOENT -> FileNotFoundError, ...), as os does.
    if path2 is None:
        return OSError(code, os.strerror(code), path)
    return OSError(code, os.strerror(code), path, None, path2)


# Cached: the engine and the checks use a handful of paths, normalised on every call (the
# invariants ask for durable bytes several times a step).
@functools.lru_cache(maxsize=1024)
def _normalise(path: str) -> str:
    if not path:
        raise _oserror(errno.ENOENT, path)
    normal = posixpath.normpath(path)
    # normpath keeps a leading "//" (POSIX leaves its meaning to the implementation); here
    # it is simply "/".
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    return normal


@functools.lru_cache(maxsize=1024)
def _split(normal: str) -> tuple[str, str]:
    """(parent directory, name) of a normalised path that is not a root."""
    parent, name = posixpath.split(normal)
    return (parent or "."), name


class SimFileSystem:
    """In-memory `FileSystem` with explicit durability, crashes and deterministic faults.

    Faults set by `fail_writes_after`, `fail_flush` and `fail_fsync` last until `heal()`,
    across crashes. `remove_directory` and `corrupt` are damage done once: `heal()` does not
    undo them.
    """

    def __init__(self) -> None:
        self._dirs: dict[str, _Dir] = {root: _Dir() for root in _ROOTS}
        self._space_left: int | None = None
        self._flush_error: int | None = None
        self._fsync_error: int | None = None
        self._bytes_written = 0

    # -- the FileSystem port -------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        """Create a directory and its missing parents; an existing directory is fine.

        New directories are durable at once. Creating one over a name whose file entry was
        removed but not yet made durable drops that durable entry too, so a crash never
        brings back a file and a directory under the same name.
        """
        normal = _normalise(path)
        missing: list[str] = []
        ancestor = normal
        while ancestor not in self._dirs:
            missing.append(ancestor)
            ancestor = _split(ancestor)[0]
        for directory in reversed(missing):
            parent, name = _split(directory)
            entries = self._dirs[parent]
            if name in entries.current:
                # The last component existing as a file is EEXIST, an earlier one ENOTDIR.
                code = errno.EEXIST if directory == normal else errno.ENOTDIR
                raise _oserror(code, path)
            entries.durable.pop(name, None)
            self._dirs[directory] = _Dir()

    def exists(self, path: str) -> bool:
        """True if `path` is a directory or a file in the current namespace."""
        normal = _normalise(path)
        if normal in self._dirs:
            return True
        parent, name = _split(normal)
        entries = self._dirs.get(parent)
        return entries is not None and name in entries.current

    def read(self, path: str) -> bytes:
        """The file's current bytes, durable or not."""
        return bytes(self._file(path).data)

    def listdir(self, path: str) -> list[str]:
        """Sorted names of the current files and subdirectories of a directory."""
        normal = self._directory(path)
        names = set(self._dirs[normal].current)
        names.update(
            _split(child)[1]
            for child in self._dirs
            if child not in _ROOTS and _split(child)[0] == normal
        )
        return sorted(names)

    def append(self, path: str, data: bytes) -> None:
        """Append to a file, creating it if missing (a current entry only, until
        `fsync_dir`). Under `fail_writes_after` the bytes that fit are written, then ENOSPC."""
        self._put(path, data, truncate=False)

    def write(self, path: str, data: bytes) -> None:
        """Truncate the file (the same inode if it exists) and write `data` to it.

        As with O_TRUNC, the truncation happens before any byte is written, so under
        `fail_writes_after` a failed write leaves a short file behind.
        """
        self._put(path, data, truncate=True)

    def flush(self, path: str) -> None:
        """Nothing is buffered in user space here: a fault point only, no existence check
        (like `OsFileSystem.flush`)."""
        if self._flush_error is not None:
            raise _oserror(self._flush_error, path)

    def fsync(self, path: str) -> None:
        """Make the file's current bytes durable. On a directory it is `fsync_dir`, as
        fsync on a directory descriptor is."""
        normal = _normalise(path)
        if normal in self._dirs:
            self.fsync_dir(path)
            return
        inode = self._file(path)
        if self._fsync_error is not None:
            raise _oserror(self._fsync_error, path)
        inode.durable = bytes(inode.data)

    def rename(self, src: str, dst: str) -> None:
        """Point `dst` at `src`'s inode and remove `src`, in one step, in the current
        namespace only: a crash before `fsync_dir` of both directories undoes it."""
        src_normal, dst_normal = _normalise(src), _normalise(dst)
        if src_normal in self._dirs:
            # Renaming directories is not modelled; the port uses rename for files only.
            raise _oserror(errno.EISDIR, src, dst)
        src_parent, src_name = _split(src_normal)
        dst_parent, dst_name = _split(dst_normal)
        src_entries = self._parent_entries(src_parent, src)
        dst_entries = self._parent_entries(dst_parent, dst)
        if src_name not in src_entries.current:
            raise _oserror(errno.ENOENT, src, dst)
        if dst_normal in self._dirs:
            raise _oserror(errno.EISDIR, src, dst)
        if src_normal == dst_normal:
            return
        dst_entries.current[dst_name] = src_entries.current.pop(src_name)

    def fsync_dir(self, path: str) -> None:
        """Make the directory's current file entries durable: additions, replacements and
        removals alike."""
        normal = self._directory(path)
        if self._fsync_error is not None:
            raise _oserror(self._fsync_error, path)
        entries = self._dirs[normal]
        entries.durable = dict(entries.current)

    def remove(self, path: str) -> None:
        """Remove a file's current entry; the removal is durable only after `fsync_dir`."""
        normal = _normalise(path)
        if normal in self._dirs:
            raise _oserror(errno.EISDIR, path)
        parent, name = _split(normal)
        entries = self._parent_entries(parent, path)
        if name not in entries.current:
            raise _oserror(errno.ENOENT, path)
        del entries.current[name]

    # -- crash -----------------------------------------------------------------------------

    def crash(self, torn_bytes: int = 0) -> None:
        """Lose everything volatile, as a power cut would.

        Every directory's entries revert to its durable mapping and every file's bytes to its
        durable bytes. When a file's current bytes extend its durable bytes (un-fsynced
        appends), up to `torn_bytes` bytes of that tail survive, as a torn write, and become
        durable; when they replace them (a file overwritten in place, not fsynced), the
        file is truncated and up to `torn_bytes` of the new bytes survive. Directories and
        faults are kept.
        """
        if torn_bytes < 0:
            raise ValueError(f"torn_bytes must be >= 0, got {torn_bytes}")
        seen: set[int] = set()
        for entries in self._dirs.values():
            entries.current = dict(entries.durable)
            for inode in entries.durable.values():
                # One inode can be durable under two names (a rename not yet made durable).
                if id(inode) in seen:
                    continue
                seen.add(id(inode))
                durable = inode.durable
                if torn_bytes and inode.data.startswith(durable):
                    durable = bytes(inode.data[: len(durable) + torn_bytes])
                elif torn_bytes:
                    # Overwritten in place: the truncation reached the disk, and the new
                    # content only up to the tear.
                    durable = bytes(inode.data[:torn_bytes])
                inode.durable = durable
                inode.data = bytearray(durable)

    # -- faults ----------------------------------------------------------------------------

    def fail_writes_after(self, n_bytes: int) -> None:
        """A disk with `n_bytes` of space left. `append` and `write` write the bytes that
        still fit, counted against the budget, then raise ENOSPC; with 0 every write fails
        having written nothing. The budget counts bytes written since this call; truncating
        or removing files does not give space back."""
        if n_bytes < 0:
            raise ValueError(f"n_bytes must be >= 0, got {n_bytes}")
        self._space_left = n_bytes

    def fail_flush(self, err: int = errno.EIO) -> None:
        """Every `flush` raises `OSError(err)`; nothing becomes durable."""
        self._flush_error = err

    def fail_fsync(self, err: int = errno.EIO) -> None:
        """Every `fsync` and `fsync_dir` raises `OSError(err)`; the bytes and entries they
        would have made durable stay volatile."""
        self._fsync_error = err

    def remove_directory(self, path: str) -> None:
        """Remove a directory with everything under it, durably (`rm -rf` followed by a
        directory fsync). Later operations under it raise FileNotFoundError until
        `makedirs` recreates it."""
        normal = self._directory(path)
        if normal in _ROOTS:
            raise ValueError(f"cannot remove the root directory {path!r}")
        prefix = normal + "/"
        for child in [d for d in self._dirs if d == normal or d.startswith(prefix)]:
            del self._dirs[child]

    def corrupt(self, path: str, offset: int, data: bytes = b"\xff") -> None:
        """Overwrite the file's bytes at `offset` with `data`, in its current bytes and in
        the part of its durable bytes the range covers (bit rot: it survives a crash).
        ValueError if the range is not inside the file's current bytes."""
        inode = self._file(path)
        end = offset + len(data)
        if not data:
            raise ValueError("corrupt needs at least one byte to write")
        if offset < 0 or end > len(inode.data):
            raise ValueError(
                f"cannot corrupt {path!r} at [{offset}, {end}): the file has "
                f"{len(inode.data)} bytes"
            )
        inode.data[offset:end] = data
        if offset < len(inode.durable):
            durable = bytearray(inode.durable)
            durable[offset:end] = data[: len(durable) - offset]
            inode.durable = bytes(durable)

    FAULT_KINDS = ("disk:full", "disk:flush", "disk:fsync")

    def armed_faults(self) -> set[str]:
        """The faults armed now (names from FAULT_KINDS); `heal()` lifts them all."""
        armed = set()
        if self._space_left is not None:
            armed.add("disk:full")
        if self._flush_error is not None:
            armed.add("disk:flush")
        if self._fsync_error is not None:
            armed.add("disk:fsync")
        return armed

    def heal(self) -> None:
        """Lift the faults set by `fail_writes_after`, `fail_flush` and `fail_fsync`."""
        self._space_left = None
        self._flush_error = None
        self._fsync_error = None

    # -- introspection ---------------------------------------------------------------------

    def durable_bytes(self, path: str) -> bytes | None:
        """The bytes a crash now would leave under `path` (not counting torn bytes), or
        None if the name would not survive it."""
        normal = _normalise(path)
        if normal in self._dirs:
            return None
        parent, name = _split(normal)
        entries = self._dirs.get(parent)
        if entries is None or name not in entries.durable:
            return None
        return entries.durable[name].durable

    @property
    def bytes_written(self) -> int:
        """Total bytes ever written by `append` and `write`, partial writes included."""
        return self._bytes_written

    # -- internals -------------------------------------------------------------------------

    def _put(self, path: str, data: bytes, *, truncate: bool) -> None:
        normal = _normalise(path)
        if normal in self._dirs:
            raise _oserror(errno.EISDIR, path)
        parent, name = _split(normal)
        entries = self._parent_entries(parent, path)
        inode = entries.current.get(name)
        if inode is None:
            inode = entries.current[name] = _Inode()
        if truncate:
            inode.data.clear()
        fits = len(data) if self._space_left is None else min(len(data), self._space_left)
        inode.data += data[:fits]
        self._bytes_written += fits
        if self._space_left is not None:
            self._space_left -= fits
        if fits < len(data):
            raise _oserror(errno.ENOSPC, path)

    def _file(self, path: str) -> _Inode:
        normal = _normalise(path)
        if normal in self._dirs:
            raise _oserror(errno.EISDIR, path)
        parent, name = _split(normal)
        inode = self._parent_entries(parent, path).current.get(name)
        if inode is None:
            raise _oserror(errno.ENOENT, path)
        return inode

    def _directory(self, path: str) -> str:
        normal = _normalise(path)
        if normal in self._dirs:
            return normal
        if self.exists(path):
            raise _oserror(errno.ENOTDIR, path)
        raise _oserror(errno.ENOENT, path)

    def _parent_entries(self, parent: str, path: str) -> _Dir:
        """The entries of `path`'s parent directory, or the error `open` would give."""
        entries = self._dirs.get(parent)
        if entries is not None:
            return entries
        # A missing parent is ENOENT, unless some ancestor is a file, which is ENOTDIR.
        ancestor = parent
        while ancestor not in self._dirs:
            up, name = _split(ancestor)
            up_entries = self._dirs.get(up)
            if up_entries is not None and name in up_entries.current:
                raise _oserror(errno.ENOTDIR, path)
            ancestor = up
        raise _oserror(errno.ENOENT, path)
