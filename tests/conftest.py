"""Fixtures shared by every test folder. `sim_fs`, `sim_clock`, `sim_broker`, `engine_env` and
the chaos fixtures come from the solat_chaos pytest plugin (`solat_chaos.chaos.plugin`)."""

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
def root(fs: FileSystem, tmp_path) -> str:
    """An existing, empty directory on `fs`."""
    if isinstance(fs, SimFileSystem):
        fs.makedirs("/srv/data")
        return "/srv/data"
    return str(tmp_path)


@pytest.fixture
def clock(sim_clock: SimClock) -> SimClock:
    """The chaos plugin's `sim_clock`, under the short name the unit tests use."""
    return sim_clock
