"""Fixtures shared by every test folder. `sim_fs`, `sim_clock`, `sim_broker`, `engine_env` and
the chaos fixtures come from the solat_chaos pytest plugin (`solat_chaos.chaos.plugin`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator

import pytest
from hypothesis.internal.constants_ast import is_local_module_file

import solat_chaos
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.filesystem import FileSystem, OsFileSystem

# Hypothesis feeds the constants of every *local* module in sys.modules into generation (its
# local-constants pool: hypothesis.internal.conjecture.providers._get_local_constants, with
# `is_local_module_file` deciding what is local: not the stdlib, not site-packages, not a file
# under a `tests` folder). So a derandomized hunt's examples depend on which of our modules
# happened to be imported before it drew: a partial selection, or an xdist worker that ran
# other tests first, could make a hunt miss its bug. The pool is fixed before any test runs by
# importing the whole package; tests/ itself never enters the pool, so it needs no importing.

# The length of sys.modules and the local modules in it, as pytest_configure left them.
_POOL = pytest.StashKey[tuple[int, frozenset[str]]]()


def _local_modules() -> frozenset[str]:
    return frozenset(
        name
        for name, module in list(sys.modules.items())
        if (path := getattr(module, "__file__", None)) is not None and is_local_module_file(path)
    )


def import_the_package() -> None:
    """Every module of solat_chaos imported: the constants pool every test run draws from
    (benchmarks call it too, to draw the examples the tests draw)."""
    for module in pkgutil.walk_packages(solat_chaos.__path__, f"{solat_chaos.__name__}."):
        # A `__main__` would run the CLI on import.
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)


def pytest_configure(config: pytest.Config) -> None:
    import_the_package()
    config.stash[_POOL] = (len(sys.modules), _local_modules())


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """A test that imports a local module from outside the package (an adapter written to a
    tmp dir, say) grows the pool for every test after it in the same process: refused here."""
    seen, pool = item.config.stash[_POOL]
    if len(sys.modules) == seen:
        return
    new = _local_modules() - pool
    # Only the test that imported it fails: the pool now holds it, as Hypothesis' does.
    item.config.stash[_POOL] = (len(sys.modules), pool | new)
    if new:
        raise AssertionError(
            f"{item.nodeid} imported {sorted(new)}: local modules outside solat_chaos join "
            "Hypothesis' constants pool and change what every later hunt draws"
        )


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
