"""The harness steps in lockstep with a served engine's trade stream: it can wait until the
engine has read everything the broker's stream sent, and a jump of the engine's held clock
over a live stream is not taken for silence."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from solat_chaos.engine.broker import BUY
from solat_chaos.model.engine_adapter import SolatEngineAdapter
from solat_chaos.model.machines import EPICS
from solat_chaos.model.process_world import ProcessWorld

pytestmark = [pytest.mark.chaos]


@contextlib.contextmanager
def served_engine() -> Iterator[ProcessWorld]:
    world = ProcessWorld(SolatEngineAdapter(), lambda order: None, real_disk=False)
    try:
        world.start()
        assert world.stream_caught_up(), "a started engine reads the broker's stream"
        yield world
    finally:
        world.close()


def test_the_harness_waits_until_the_engine_has_read_the_stream() -> None:
    with served_engine() as world:
        before = world.adapter.trade_stream_position()
        assert before.session is not None
        world.sim.open_externally(EPICS[0], BUY, 1.0)
        assert world.stream_caught_up()
        after = world.adapter.trade_stream_position()
        assert after.session == before.session
        assert after.updates > before.updates
        assert after.updates == world.tlcp.updates_sent(after.session)


def test_a_clock_jump_over_a_live_stream_is_not_silence() -> None:
    with served_engine() as world:
        assert world.adapter.reconcile().complete
        healed = world.adapter.health()
        assert healed.trading_state == "ACTIVE", healed.reasons  # why, should it flake again
        world.adapter.advance_clock(61.0)
        health = world.adapter.health()
        assert health.trading_state == "ACTIVE", health.reasons
