"""Disk faults: on the simulated disk (`DiskChaos`), and real ones from the kernel.

`DiskChaos` names the seed's disk failures and maps each onto a fault hook of
`SimFileSystem`; it re-implements nothing. A fault is armed when the method is called, so it
works as a plain call or as a `with` block that lifts it on exit.

The real failures go through `OsFileSystem` and the kernel, so they prove the core handles
the errno the OS really gives, not one a test made up:

- `dev_full_at(path)`: the file at `path` becomes a symlink to `/dev/full`, where every write
  fails with ENOSPC;
- `TinyTmpfs`: a tmpfs of a few pages mounted for the test, filled with ballast so that the
  next write runs out of space exactly where the test wants — mid-line, in the ledger.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator

from solat_chaos.chaos.injected import InjectedFault
from solat_chaos.chaos.sim_filesystem import SimFileSystem

DEV_FULL = "/dev/full"
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class DiskChaos:
    """The seed's disk failures on a `SimFileSystem`.

    Lifting a fault lifts every lasting fault of the disk (`SimFileSystem.heal`): the disk
    has one state, and a test that stacks faults lifts them together.
    """

    def __init__(self, fs: SimFileSystem) -> None:
        self.fs = fs

    def disk_full_on_write(self, n_bytes: int) -> InjectedFault:
        """ENOSPC once `n_bytes` more bytes are written: the write that crosses the limit
        writes the bytes that fit (a partial line), then fails."""
        self.fs.fail_writes_after(n_bytes)
        return InjectedFault(f"disk full after {n_bytes} bytes", self.fs.heal)

    def partial_write_on_flush(self, err: int = errno.EIO) -> InjectedFault:
        """Writes succeed (the bytes are in the page cache) but every flush fails, so
        nothing written from now on becomes durable."""
        self.fs.fail_flush(err)
        return InjectedFault(f"flush fails with {errno.errorcode[err]}", self.fs.heal)

    def fsync_fails(self, err: int = errno.EIO) -> InjectedFault:
        """Every fsync, of files and directories, fails: written bytes and renames stay
        volatile and a crash loses them."""
        self.fs.fail_fsync(err)
        return InjectedFault(f"fsync fails with {errno.errorcode[err]}", self.fs.heal)

    def directory_disappears(self, path: str) -> None:
        """`rm -rf path`, durably: every later operation under it fails with ENOENT until
        someone recreates it. Damage, not a fault: nothing lifts it."""
        self.fs.remove_directory(path)

    def corrupt_file_content(self, path: str, offset: int, data: bytes = b"\xff") -> None:
        """Bit rot: overwrite bytes at `offset`, durably (a crash keeps the damage)."""
        self.fs.corrupt(path, offset, data)

    def crash(self, torn: int = 0) -> None:
        """Power cut: everything not fsynced is lost, except up to `torn` bytes of each
        un-fsynced append, which survive as a torn tail."""
        self.fs.crash(torn_bytes=torn)

    def heal(self) -> None:
        """Lift every lasting fault (full disk, failing flush or fsync)."""
        self.fs.heal()


# ------------------------------------------------------------------------- real failures


@contextlib.contextmanager
def dev_full_at(path: str) -> Iterator[str]:
    """Make every write to `path` fail with the kernel's ENOSPC, by pointing it at /dev/full.

    The file's bytes are moved aside and put back on exit, so a ledger keeps its history.
    `OsFileSystem` notices that the name now points elsewhere and reopens it; reading the
    symlink would give endless zeros, so only open an engine on it before entering.
    """
    if not os.path.exists(DEV_FULL):
        raise FileNotFoundError(errno.ENOENT, f"{DEV_FULL} is not available here", DEV_FULL)
    aside = path + ".aside"
    had_file = os.path.lexists(path)
    if had_file:
        os.rename(path, aside)
    os.symlink(DEV_FULL, path)
    try:
        yield path
    finally:
        os.remove(path)
        if had_file:
            os.rename(aside, path)


class MountNotPermitted(RuntimeError):
    """Mounting a tmpfs is not allowed here; the message says why (a reason to skip)."""


class TinyTmpfs:
    """A tmpfs of `size` bytes mounted at `mount_point` for one test, always unmounted.

    tmpfs counts space in pages, so `fill(leave=n)` writes a ballast file until the kernel
    says ENOSPC and then gives back whole pages until `n` bytes (rounded up to pages) are
    free: the next writes fail at an exact, repeatable place. Needs root (CAP_SYS_ADMIN)
    and the `mount` and `umount` tools; `mount()` raises `MountNotPermitted` otherwise.
    """

    BALLAST = ".ballast"

    def __init__(self, mount_point: str, size: int = 64 * 1024) -> None:
        self.mount_point = mount_point
        self.size = size
        self.mounted = False

    @property
    def ballast_path(self) -> str:
        return os.path.join(self.mount_point, self.BALLAST)

    def mount(self) -> TinyTmpfs:
        missing = [tool for tool in ("mount", "umount") if shutil.which(tool) is None]
        if missing:
            raise MountNotPermitted(f"no {' or '.join(missing)} command on this machine")
        if os.geteuid() != 0:
            raise MountNotPermitted("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
        os.makedirs(self.mount_point, exist_ok=True)
        command = ["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", self.mount_point]
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            reason = done.stderr.strip() or f"exit status {done.returncode}"
            raise MountNotPermitted(f"mount -t tmpfs refused: {reason}")
        self.mounted = True
        return self

    def unmount(self) -> None:
        if not self.mounted:
            return
        done = subprocess.run(["umount", self.mount_point], capture_output=True, timeout=10)
        if done.returncode != 0:
            # Something still holds a file open: detach now, the kernel frees it when closed.
            subprocess.run(["umount", "-l", self.mount_point], capture_output=True, timeout=10)
        self.mounted = False

    def free_bytes(self) -> int:
        stats = os.statvfs(self.mount_point)
        return stats.f_bavail * stats.f_frsize

    def fill(self, leave: int = 0) -> int:
        """Fill the file system with ballast, leaving `leave` bytes (whole pages) free.
        Returns the bytes left free."""
        chunk = b"\0" * PAGE
        fd = os.open(self.ballast_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
            pages_back = -(-leave // PAGE)
            size = os.fstat(fd).st_size
            os.ftruncate(fd, max(0, size - size % PAGE - pages_back * PAGE))
        finally:
            os.close(fd)
        return self.free_bytes()

    def make_room(self) -> None:
        """Remove the ballast: the disk has space again."""
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.ballast_path)

    def __enter__(self) -> TinyTmpfs:
        return self.mount()

    def __exit__(self, *exc: object) -> None:
        self.unmount()
