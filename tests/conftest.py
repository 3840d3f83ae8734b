"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.filesystem import FileSystem, OsFileSystem


@pytest.fixture(params=["os", "sim"])
def fs(request: pytest.FixtureRequest) -> Iterator[FileSystem]:
    """Each adapter of the FileSystem port in turn: one suite, two file systems."""
    if request.param == "os":
        with OsFileSystem() as real:
            yield real
    else:
        yield SimFileSystem()


@pytest.fixture
def sim_fs() -> SimFileSystem:
    return SimFileSystem()


@pytest.fixture
def root(fs: FileSystem, tmp_path) -> str:
    """An existing, empty directory on `fs`."""
    if isinstance(fs, SimFileSystem):
        fs.makedirs("/srv/data")
        return "/srv/data"
    return str(tmp_path)


@pytest.fixture
def clock() -> SimClock:
    return SimClock()
