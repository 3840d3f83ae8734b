"""The `FileSystem` port and its real adapter.

The core never touches `os` or `open` directly: every byte it persists goes through this
port, so a simulated file system can decide exactly which bytes survive a crash.

Durability contract (POSIX, and what `SimFileSystem` models):
- `append` and `write` put bytes in the page cache: readable at once, lost by a crash;
- `fsync(path)` makes a file's bytes durable;
- creating, renaming or removing a directory entry is durable only after `fsync_dir`.
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import Protocol


class FileSystem(Protocol):
    """What the core needs from a file system. Every method raises `OSError` on failure."""

    def makedirs(self, path: str) -> None: ...

    def exists(self, path: str) -> bool: ...

    def read(self, path: str) -> bytes: ...

    def listdir(self, path: str) -> list[str]: ...

    def append(self, path: str, data: bytes) -> None:
        """Append to a file, creating it if missing. A failure may leave a prefix written."""

    def write(self, path: str, data: bytes) -> None:
        """Create or truncate a file and write `data` to it."""

    def flush(self, path: str) -> None:
        """Hand buffered bytes of an appended file to the OS."""

    def fsync(self, path: str) -> None: ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically replace `dst` by `src`."""

    def fsync_dir(self, path: str) -> None: ...

    def remove(self, path: str) -> None: ...


def replace_atomically(fs: FileSystem, path: str, data: bytes) -> None:
    """Replace `path` by `data` so that after any crash it holds the old or the new bytes.

    Write a temporary file, fsync it, rename it over the target and fsync the directory:
    without the first fsync a crash can leave an empty file under the new name, without the
    last the rename itself can be lost.
    """
    temporary = path + ".tmp"
    fs.write(temporary, data)
    fs.fsync(temporary)
    fs.rename(temporary, path)
    fs.fsync_dir(posixpath.dirname(path) or ".")


class OsFileSystem:
    """The real adapter. Appends use unbuffered descriptors so that a failed write never
    leaves bytes in a user-space buffer to be written later behind the caller's back.
    Call `close()` (or use it as a context manager) to release the descriptors."""

    def __init__(self) -> None:
        self._append_fds: dict[str, int] = {}

    def makedirs(self, path: str) -> None:
        """Create missing directories and fsync each new one's parent, so they survive."""
        target = path = os.path.abspath(path)
        missing = []
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        if not missing and not os.path.isdir(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
        for directory in reversed(missing):
            os.mkdir(directory)
            self.fsync_dir(os.path.dirname(directory))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def append(self, path: str, data: bytes) -> None:
        fd = self._append_fd(path)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written == 0:  # pragma: no cover - os.write raises rather than return 0
                raise OSError(errno.EIO, "short write", path)
            view = view[written:]

    def write(self, path: str, data: bytes) -> None:
        self._close_append_fd(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def flush(self, path: str) -> None:
        """Appends are unbuffered; nothing waits in user space."""

    def fsync(self, path: str) -> None:
        fd = self._append_fds.get(os.path.normpath(path))
        if fd is not None:
            os.fsync(fd)
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        self._close_append_fd(src)
        self._close_append_fd(dst)
        os.replace(src, dst)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: str) -> None:
        self._close_append_fd(path)
        os.remove(path)

    def __enter__(self) -> OsFileSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for path in list(self._append_fds):
            self._close_append_fd(path)

    def _append_fd(self, path: str) -> int:
        path = os.path.normpath(path)
        fd = self._append_fds.get(path)
        if fd is not None and not self._still_named(fd, path):
            # Removed or replaced behind our back: writing on would land in a deleted file.
            self._close_append_fd(path)
            fd = None
        if fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._append_fds[path] = fd
        return fd

    @staticmethod
    def _still_named(fd: int, path: str) -> bool:
        try:
            named = os.stat(path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _close_append_fd(self, path: str) -> None:
        fd = self._append_fds.pop(os.path.normpath(path), None)
        if fd is not None:
            os.close(fd)
