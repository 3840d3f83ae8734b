"""Tier 3 — a stream that reconnects: new sessions, short and long replays, drops, duplicates
and reordering. Backfill is REST, never trust."""

from __future__ import annotations

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, position_sizes
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.records import Confirmed, InDoubt
from solat_chaos.engine.router import OrderIntent, OrderStatus
from solat_chaos.engine.trading_state import TradingState

pytestmark = [pytest.mark.chaos, pytest.mark.tier3]


async def test_new_session_replaying_less_than_the_gap__backfilled_by_rest(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: Two dashboard changes happen while the stream is stalled; a new session replays one
    EXPECTED: Blind until the backfill reconcile; then the book holds both changes
    FAILURE MODE: The replay is trusted as complete and the missing change never reaches the book
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    sim_stream.pump()

    # INJECT CHAOS
    stream_chaos.stall()
    engine_env.sim.close_externally(mine.deal_id, 1.0)
    engine_env.sim.open_externally(GBPUSD, SELL, 1.0)
    stream_chaos.replay_recent_history(2)  # the last change's CONFIRMS and OPU only

    # VERIFICATION
    assert engine.health().status == "blind" and engine.state is TradingState.REDUCING
    assert (await engine.tick()).ok
    assert engine.health().blind is None
    assert position_sizes(engine.positions()) == engine_env.broker_sizes()
    assert position_sizes(engine.positions())[mine.deal_id] == 1.0


async def test_dropped_event_with_healthy_keepalives__repaired_by_the_periodic_reconcile(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: One OPU (a dashboard partial close) is dropped while keepalives keep arriving
    EXPECTED: Not blind (nothing shows the gap) but the periodic reconcile repairs the book
    FAILURE MODE: The engine relies on the stream alone and the book keeps the old size forever
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    sim_stream.pump()

    # INJECT CHAOS: the change's CONFIRMS and OPU are both lost
    stream_chaos.drop_next_update(2)
    engine_env.sim.close_externally(mine.deal_id, 0.5)
    sim_stream.advance(10.0)
    assert engine.health().status == "ok"
    assert position_sizes(engine.positions())[mine.deal_id] == 2.0

    # VERIFICATION
    sim_stream.advance(engine.config.reconcile_interval)
    assert (await engine.tick()).ok
    assert position_sizes(engine.positions()) == engine_env.broker_sizes() == {mine.deal_id: 1.5}


async def test_duplicated_and_replayed_events_change_nothing(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: Every event arrives twice, then a new session replays a history longer than the gap
    EXPECTED: The book is exactly the broker's; nothing written for the duplicates
    FAILURE MODE: An event applied as a delta: a duplicate grows or shrinks a position twice
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    stream_chaos.duplicate_updates(count=20)

    # INJECT CHAOS
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    await engine.close_position(first.deal_id, 0.5)
    second = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 1.0))
    sim_stream.pump()
    written = len(engine_env.durable_records())
    stream_chaos.replay_recent_history(50)

    # VERIFICATION
    expected = {first.deal_id: 1.5, second.deal_id: 1.0}
    assert position_sizes(engine.positions()) == engine_env.broker_sizes() == expected
    assert len(engine_env.durable_records()) == written
    assert (await engine.tick()).records == ()
    assert position_sizes(engine.positions()) == expected


async def test_opu_before_confirms_resolves_an_order_in_doubt_once(
    engine_env, sim_stream, stream_chaos, broker_chaos
) -> None:
    """
    SCENARIO: The order executes, its REST answer is lost; its OPU arrives before its CONFIRMS
    EXPECTED: The stream resolves the order in doubt by identity, once; no reconcile repairs more
    FAILURE MODE: The OPU and the CONFIRMS each fill the order (a double position)
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    broker_chaos.executed_but_response_lost()
    stream_chaos.reorder_next()

    # INJECT CHAOS
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.5))
    assert result.status is OrderStatus.IN_DOUBT
    sim_stream.pump()

    # VERIFICATION
    outcome = engine_env.durable_records_of(result.deal_reference)
    assert [type(r) for r in outcome[1:]] == [InDoubt, Confirmed]
    assert outcome[-1].resolved_by == "stream"
    assert position_sizes(engine.positions()) == engine_env.broker_sizes()
    assert (await engine.reconcile()).records == ()


async def test_backfill_resolves_an_order_from_the_activity_history(
    engine_env, sim_stream, stream_chaos, broker_chaos
) -> None:
    """
    SCENARIO: An order's answer is lost during a silent disconnect and its position is closed on
    the dashboard; the broker no longer has the order's confirm
    EXPECTED: The backfill's activity read proves the fill; the order is resolved, not rejected
    FAILURE MODE: No confirm, no position: the order is rejected though it traded
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    stream_chaos.silent_disconnect()
    broker_chaos.executed_but_response_lost()
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    (deal_id,) = engine_env.broker_sizes()
    engine_env.sim.close_externally(deal_id)

    # INJECT CHAOS: the confirm lookup answers nothing (IG's confirms expire)
    engine_env.port.inner = _WithoutConfirms(engine_env.sim)
    stream_chaos.heal()

    # VERIFICATION
    assert (await engine.tick()).ok
    resolved = engine_env.durable_records_of(result.deal_reference)[-1]
    assert isinstance(resolved, Confirmed) and resolved.deal_id == deal_id
    assert engine.positions() == {} and engine.health().blind is None


class _WithoutConfirms:
    """The sim, except that its confirms have expired."""

    def __init__(self, sim) -> None:
        self._sim = sim

    def __getattr__(self, name):
        return getattr(self._sim, name)

    async def confirm(self, deal_reference):
        return None


async def test_an_event_contradicting_the_book__reconciled_at_once_never_written_over_it(
    engine_env, sim_stream
) -> None:
    """
    SCENARIO: An OPU says a position shrank (a dashboard partial close) while the book says not
    EXPECTED: Nothing written from the event; the next tick reconciles at once and repairs it
    FAILURE MODE: The event overwrites the book (trusting a stream that may be replaying old
    events), or waits for the periodic reconcile a minute later
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    sim_stream.pump()
    assert (await engine.tick()) is None  # nothing due: the event agreed with the book
    written = len(engine_env.durable_records())

    # INJECT CHAOS
    engine_env.sim.close_externally(mine.deal_id, 0.5)
    sim_stream.advance(1.0)

    # VERIFICATION
    assert len(engine_env.durable_records()) == written
    assert position_sizes(engine.positions()) == {mine.deal_id: 2.0}
    report = await engine.tick()
    assert report.ok and [type(r).__name__ for r in report.records] == ["Resized"]
    assert position_sizes(engine.positions()) == engine_env.broker_sizes() == {mine.deal_id: 1.5}
