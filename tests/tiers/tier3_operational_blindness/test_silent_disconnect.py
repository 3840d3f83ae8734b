"""Tier 3 — a stream that dies silently: no close frame, no keepalive, only silence."""

from __future__ import annotations

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, position_sizes
from solat_chaos.engine.broker import BUY
from solat_chaos.engine.records import Adopted
from solat_chaos.engine.router import OrderIntent, OrderStatus
from solat_chaos.engine.trading_state import TradingState

pytestmark = [pytest.mark.chaos, pytest.mark.tier3]


async def test_dashboard_fill_during_a_silent_disconnect__in_the_book_once(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: The socket dies silently; meanwhile a position is opened on the IG dashboard
    EXPECTED: Blind once the silence passes the threshold; the backfill adopts the fill, once
    FAILURE MODE: The fill is never fetched (the book misses a live position) or counted twice
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    assert engine.health().blind is None

    # INJECT CHAOS
    disconnect = stream_chaos.silent_disconnect()
    confirm = engine_env.sim.open_externally(GBPUSD, BUY, 2.0)
    sim_stream.advance(engine.config.health.stream + 1)

    # VERIFICATION: blind, and polling reconciles on the short interval
    assert engine.state is TradingState.REDUCING and engine.health().status == "blind"
    assert (await engine.tick()) is not None
    engine_env.clock.advance(1.0)
    assert (await engine.tick()) is None  # polled again only after the short interval
    engine_env.clock.advance(engine.config.blind_reconcile_interval)
    assert (await engine.tick()) is not None
    disconnect.lift()  # a new session, replaying nothing it missed
    sim_stream.advance(engine.config.blind_reconcile_interval)
    assert (await engine.tick()).ok
    assert engine.health().blind is None and engine.state is TradingState.ACTIVE
    assert position_sizes(engine.positions()) == engine_env.broker_sizes()
    assert position_sizes(engine.positions())[confirm.deal_id] == 2.0
    adoptions = [r for r in engine_env.durable_records() if isinstance(r, Adopted)]
    assert [a.deal_id for a in adoptions] == [confirm.deal_id]


async def test_silent_stream__no_opening_order_reaches_the_broker(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: The stream goes silent past its keepalive threshold; the strategy keeps trading
    EXPECTED: Openings are refused (REDUCING, the reason names the stream); closes still go out
    FAILURE MODE: The engine trades blind, on a book that may miss fills it cannot see
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    sim_stream.pump()

    # INJECT CHAOS
    stream_chaos.silent_disconnect()
    sim_stream.advance(engine.config.health.stream + 1)
    refused = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    closed = await engine.close_position(opened.deal_id)

    # VERIFICATION
    assert refused.status is OrderStatus.REJECTED and "stream blind" in refused.reason
    assert closed.status is OrderStatus.ACCEPTED
    assert [r.kind for r in engine_env.sim_order_requests()] == ["open_position", "close_position"]


async def test_blindness_ends_only_after_a_reconcile_started_after_reconnection(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: A reconcile starts while the stream is stalled and succeeds after it recovers
    EXPECTED: Still blind: only a reconcile that started after reconnection ends blindness
    FAILURE MODE: A backfill that read the broker before the reconnection is trusted for the gap
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)
    stall = stream_chaos.stall()
    recovered_during_the_read = engine_env.port.before("positions", lambda _: stall.lift())

    # INJECT CHAOS: the stream recovers while the broker is being read
    assert (await engine.reconcile()).ok
    recovered_during_the_read()

    # VERIFICATION
    assert engine.health().status == "blind"
    assert (await engine.reconcile()).ok
    assert engine.health().blind is None
