"""Tier 2 — idempotency: duplicate confirmations, lost answers, replays after a restart, and a
long history that would overflow a bounded idempotency cache."""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import OPEN_POSITION
from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, position_sizes
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.records import Confirmed, InDoubt
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier2]


async def test_duplicate_confirmation_names_a_known_deal__not_counted_twice(
    engine_env, broker_chaos
) -> None:
    """
    SCENARIO: The broker's confirm for a new order names the deal id of an earlier order
    EXPECTED: The earlier position is not grown; reconcile settles the new order on its real deal
    FAILURE MODE: A deal id filled twice: the book doubles a position the broker holds once
    """
    # SETUP
    engine = await engine_env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # INJECT CHAOS
    broker_chaos.duplicate_confirmation(deal_id=first.deal_id)
    second = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 2.0))

    # VERIFICATION: the earlier position is not grown, and nothing was sent twice
    assert second.status is not OrderStatus.REJECTED
    assert position_sizes(engine.positions())[first.deal_id] == 1.0
    assert len(engine_env.sim_order_requests()) == 2
    # ...reconcile settles the new order on its real deal, by evidence
    assert (await engine.reconcile()).ok
    (second_deal,) = set(engine_env.broker_sizes()) - {first.deal_id}
    assert position_sizes(engine.positions()) == engine_env.broker_sizes()
    assert engine_env.broker_sizes() == {first.deal_id: 1.0, second_deal: 2.0}
    assert (await engine.reconcile()).records == ()


async def test_executed_but_response_lost__resolved_by_reference_exactly_once(
    engine_env, broker_chaos, disk_chaos
) -> None:
    """
    SCENARIO: The broker executes the order and the answer is lost (timeout after execution)
    EXPECTED: IN_DOUBT, never re-sent; reconcile finds it by deal reference; one position, ever
    FAILURE MODE: The engine retries the order (two positions) or forgets it (an untracked position)
    """
    # SETUP
    engine = await engine_env.ready_engine()

    # INJECT CHAOS
    broker_chaos.executed_but_response_lost()
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.5))

    # VERIFICATION
    assert result.status is OrderStatus.IN_DOUBT
    assert isinstance(engine_env.durable_records_of(result.deal_reference)[-1], InDoubt)
    (broker_deal,) = engine_env.broker_sizes()
    assert (await engine.reconcile()).ok
    resolved = engine_env.durable_records_of(result.deal_reference)[-1]
    assert isinstance(resolved, Confirmed) and resolved.resolved_by == "reconcile"
    assert position_sizes(engine.positions()) == {broker_deal: 1.5}
    disk_chaos.crash()
    restarted = engine_env.open_engine()
    assert (await restarted.reconcile()).records == ()
    assert position_sizes(restarted.positions()) == engine_env.broker_sizes() == {broker_deal: 1.5}
    assert [r.deal_reference for r in engine_env.sim_order_requests()] == [result.deal_reference]


async def test_duplicate_of_a_long_forgotten_deal__still_ignored(
    engine_env, broker_chaos, disk_chaos
) -> None:
    """
    SCENARIO: After 40 more fills (overflowing any small dedupe cache) a confirm names deal 1 again
    EXPECTED: The first position keeps its size, also after a restart; reconcile finds the real deal
    FAILURE MODE: A bounded dedupe cache forgot the first deal id: the duplicate is applied twice
    """
    # SETUP: one position kept open, then a long history of round trips
    engine = await engine_env.ready_engine()
    kept = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    for _ in range(20):
        opened = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 0.5))
        assert (await engine.close_position(opened.deal_id)).status is OrderStatus.ACCEPTED

    # INJECT CHAOS
    broker_chaos.duplicate_confirmation(method=OPEN_POSITION, deal_id=kept.deal_id)
    echo = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 0.5))

    # VERIFICATION
    assert echo.status is not OrderStatus.REJECTED
    assert position_sizes(engine.positions()) == {kept.deal_id: 1.0}
    disk_chaos.crash()
    restarted = engine_env.open_engine()
    assert position_sizes(restarted.positions()) == {kept.deal_id: 1.0}
    assert (await restarted.reconcile()).ok
    assert position_sizes(restarted.positions()) == engine_env.broker_sizes()
    assert engine_env.broker_sizes()[kept.deal_id] == 1.0 and len(engine_env.broker_sizes()) == 2
