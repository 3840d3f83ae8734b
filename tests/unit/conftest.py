"""Fixtures for the core's unit tests: an engine environment on each file system."""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import SimBroker
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.filesystem import FileSystem

from .engine_helpers import EngineEnv, HookedBroker


def _env(fs: FileSystem, root: str, clock: SimClock) -> EngineEnv:
    sim = SimBroker()
    return EngineEnv(fs, root, clock, sim, HookedBroker(sim))


@pytest.fixture
def env(fs: FileSystem, root: str, clock: SimClock) -> EngineEnv:
    return _env(fs, root, clock)


@pytest.fixture
def sim_env(sim_fs: SimFileSystem, clock: SimClock) -> EngineEnv:
    sim_fs.makedirs("/srv/data")
    return _env(sim_fs, "/srv/data", clock)
