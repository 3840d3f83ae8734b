"""Tier 2 — partial position closes: the broker confirms less than was asked, or a position is
cut down on the IG dashboard (the seed's manual check, automated: `SimBroker.close_externally`
is the dashboard, then a reconcile)."""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import CLOSE_POSITION
from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, position_sizes
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.records import ClosedExternally, Confirmed, Resized
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier2]


async def test_broker_confirms_half_the_close__only_that_size_removed(
    engine_env, broker_chaos, disk_chaos
) -> None:
    """
    SCENARIO: A close of 4 is confirmed for 2 only (partial fill of the close)
    EXPECTED: PARTIALLY_FILLED; the book keeps 4 - 2 = 2 = the broker's size, across a restart
    FAILURE MODE: The close is booked in full: the book is 2 short of what the broker holds
    """
    # SETUP
    engine = await engine_env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 6.0))

    # INJECT CHAOS
    broker_chaos.partial_fill(0.5, method=CLOSE_POSITION)
    result = await engine.close_position(opened.deal_id, 4.0)

    # VERIFICATION
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled_size == 2.0
    assert engine_env.broker_sizes() == {opened.deal_id: 4.0}
    (fill,) = [
        r for r in engine_env.durable_records_of(result.deal_reference) if isinstance(r, Confirmed)
    ]
    assert fill.filled_size == 2.0
    disk_chaos.crash()
    assert position_sizes(engine_env.open_engine().positions()) == {opened.deal_id: 4.0}


async def test_half_closed_on_the_dashboard__reconcile_resizes(engine_env, disk_chaos) -> None:
    """
    SCENARIO: Half of a position is closed by hand on the IG dashboard
    EXPECTED: Reconcile detects the drift and writes a durable RESIZED record; book equals broker
    FAILURE MODE: The engine keeps trading on the old size (risk computed on a phantom position)
    """
    # SETUP
    engine = await engine_env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 3.0))

    # INJECT CHAOS: the dashboard
    engine_env.sim.close_externally(opened.deal_id, 1.5)

    # VERIFICATION
    report = await engine.reconcile()
    assert report.ok
    (resized,) = [r for r in engine_env.durable_records() if isinstance(r, Resized)]
    assert (resized.deal_id, resized.size) == (opened.deal_id, 1.5)
    assert position_sizes(engine.positions()) == engine_env.broker_sizes() == {opened.deal_id: 1.5}
    # ...a restart and another reconcile add nothing (the record id comes from the evidence)
    disk_chaos.crash()
    restarted = engine_env.open_engine()
    assert (await restarted.reconcile()).records == ()
    assert position_sizes(restarted.positions()) == {opened.deal_id: 1.5}


async def test_close_racing_the_dashboard__refused_then_reconciled(engine_env) -> None:
    """
    SCENARIO: The dashboard closes part of a position just before the engine closes all it knows of
    EXPECTED: The broker refuses the over-sized close; the book waits for reconcile to resize it
    FAILURE MODE: The engine books a close the broker refused, or closes the remainder twice
    """
    # SETUP
    engine = await engine_env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))

    # INJECT CHAOS
    engine_env.sim.close_externally(opened.deal_id, 0.5)
    refused = await engine.close_position(opened.deal_id)

    # VERIFICATION
    assert refused.status is OrderStatus.REJECTED and "broker rejected" in refused.reason
    assert engine_env.broker_sizes() == {opened.deal_id: 1.5}
    assert position_sizes(engine.positions()) == {opened.deal_id: 2.0}  # not guessed
    assert (await engine.reconcile()).ok
    closed = await engine.close_position(opened.deal_id)
    assert closed.status is OrderStatus.ACCEPTED and closed.filled_size == 1.5
    assert engine.positions() == {} and engine_env.broker_sizes() == {}


async def test_fully_closed_on_the_dashboard__closed_externally_once(engine_env) -> None:
    """
    SCENARIO: A position is closed entirely on the dashboard
    EXPECTED: Reconcile writes one CLOSED_EXTERNALLY record; the engine never sends a close for it
    FAILURE MODE: The engine keeps a phantom position and its exposure blocks or distorts new orders
    """
    # SETUP
    engine = await engine_env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # INJECT CHAOS
    engine_env.sim.close_externally(opened.deal_id)

    # VERIFICATION
    assert (await engine.reconcile()).ok
    assert (await engine.reconcile()).records == ()
    closed = [r for r in engine_env.durable_records() if isinstance(r, ClosedExternally)]
    assert [c.deal_id for c in closed] == [opened.deal_id]
    assert engine.positions() == {} and engine_env.broker_sizes() == {}
    assert [r.kind for r in engine_env.sim_order_requests()] == ["open_position"]
