"""Fixtures for the core's unit tests: an engine environment on each file system, talking to
the SimBroker directly and through IGRestBroker over IG's REST dialect — one suite, and the
same results from every combination."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from solat_chaos.broker.harness import VIEW_NAMES, open_broker_view
from solat_chaos.broker.sim import SimBroker
from solat_chaos.chaos.engine_env import EngineEnv, HookedBroker
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.filesystem import FileSystem


@pytest.fixture(params=VIEW_NAMES)
async def broker_view(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SimBroker, object]]:
    sim = SimBroker()
    async with open_broker_view(sim, request.param) as view:
        yield sim, view


@pytest.fixture
def env(fs: FileSystem, root: str, clock: SimClock, broker_view) -> EngineEnv:
    sim, view = broker_view
    return EngineEnv(fs, root, clock, sim, HookedBroker(view))


@pytest.fixture
def sim_env(sim_fs: SimFileSystem, clock: SimClock, broker_view) -> EngineEnv:
    sim_fs.makedirs("/srv/data")
    sim, view = broker_view
    return EngineEnv(sim_fs, "/srv/data", clock, sim, HookedBroker(view))
