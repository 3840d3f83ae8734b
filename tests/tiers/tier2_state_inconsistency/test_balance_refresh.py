"""Tier 2 — account balance updates after fills: a fill (or a repair) makes the cached balance
stale whatever its age, so the next risk check reads the broker's account first."""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import ACCOUNT, OPEN_POSITION
from solat_chaos.chaos.engine_env import EURUSD, GBPUSD
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.records import Intent
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier2]


def request_kinds(env, since: int) -> list[str]:
    """The kinds of the requests that reached the broker after the first `since`."""
    return [r.kind for r in env.sim.requests[since:]]


async def test_a_fill_makes_the_next_order_refresh_the_balance(engine_env) -> None:
    """
    SCENARIO: Two orders a second apart, well within the balance's TTL
    EXPECTED: The account is read between the two orders; the second is approved on the new balance
    FAILURE MODE: The second order is approved on the balance from before the first fill
    """
    # SETUP
    engine = await engine_env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    filled_by = len(engine_env.sim.requests)

    # INJECT CHAOS: none but the fill itself; one second passes (the TTL is a minute)
    engine_env.clock.advance(1.0)
    second = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 1.0))

    # VERIFICATION
    assert first.status is second.status is OrderStatus.ACCEPTED
    assert request_kinds(engine_env, filled_by)[:2] == [ACCOUNT, OPEN_POSITION]
    intents = [r for r in engine_env.durable_records() if isinstance(r, Intent)]
    assert intents[1].balance_fetched_at == engine_env.clock.monotonic()


async def test_margin_used_by_a_fill_is_seen_by_the_next_risk_check(engine_env) -> None:
    """
    SCENARIO: The first fill uses most of the margin the second order's risk check needs
    EXPECTED: The second order is rejected on the refreshed balance; the broker never sees it
    FAILURE MODE: The cached pre-fill balance approves an order the account cannot carry
    """
    # SETUP: each order needs 700 of available balance per unit of size
    engine = await engine_env.ready_engine(margin_per_unit=700.0)
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 10.0))
    assert first.status is OrderStatus.ACCEPTED

    # INJECT CHAOS: none — the fill alone moved the account
    second = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 10.0))

    # VERIFICATION
    assert second.status is OrderStatus.REJECTED and "insufficient funds" in second.reason
    assert engine_env.sim.snapshot_account().available < 7_000
    assert [r.deal_reference for r in engine_env.sim_order_requests()] == [first.deal_reference]


async def test_refresh_after_a_fill_fails__next_order_rejected_stale(
    engine_env, broker_chaos
) -> None:
    """
    SCENARIO: After a fill, every attempt to refresh the account times out
    EXPECTED: The next order is rejected as "stale balance", not sent
    FAILURE MODE: The failed refresh falls back on the pre-fill balance and the order goes out
    """
    # SETUP
    engine = await engine_env.ready_engine()
    await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # INJECT CHAOS
    broker_chaos.timeout(method=ACCOUNT, count=engine_env.config.read_attempts)
    result = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))

    # VERIFICATION
    assert result.status is OrderStatus.REJECTED and result.reason.startswith("stale balance")
    assert result.deal_reference not in engine_env.sim.received_deal_references()


async def test_a_position_adopted_by_reconcile_also_refreshes_the_balance(engine_env) -> None:
    """
    SCENARIO: Reconcile adopts a position opened on the dashboard; the cached balance is young
    EXPECTED: The next order reads the account before it is risk-checked
    FAILURE MODE: Only the engine's own fills invalidate the balance; dashboard margin is ignored
    """
    # SETUP: a young cached balance
    engine = await engine_env.ready_engine()
    await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    await engine.balance.fresh()

    # INJECT CHAOS
    engine_env.sim.open_externally(GBPUSD, BUY, 5.0)
    assert (await engine.reconcile()).ok
    seen = len(engine_env.sim.requests)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, SELL, 1.0))

    # VERIFICATION
    assert result.status is OrderStatus.ACCEPTED
    assert request_kinds(engine_env, seen)[:2] == [ACCOUNT, OPEN_POSITION]
