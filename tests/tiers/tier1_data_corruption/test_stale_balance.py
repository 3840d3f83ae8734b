"""Tier 1 — risk checks on an outdated account balance.

The seed's manual check "wait 10 minutes without trading, submit, verify the balance refresh is
logged before the risk check" is automated here on a SimClock: the broker's request log shows
the account read before the order, and the INTENT record carries the age of the balance used.
"""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import ACCOUNT, OPEN_POSITION
from solat_chaos.chaos.engine_env import EURUSD, GBPUSD
from solat_chaos.engine.broker import BUY
from solat_chaos.engine.records import Intent, Rejected
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier1]

TEN_MINUTES = 600.0


async def test_ten_minutes_idle__balance_refreshed_before_the_risk_check(engine_env) -> None:
    """
    SCENARIO: The engine sits idle for 10 minutes, then an order arrives
    EXPECTED: The balance is re-read before the order is sent; the INTENT records a fresh age
    FAILURE MODE: The order is approved on a 10-minute-old balance
    """
    # SETUP: a balance fetched at start-up
    engine = await engine_env.ready_engine()
    await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    ttl = engine_env.config.balance_ttl

    # INJECT CHAOS: time passes, nothing trades
    engine_env.clock.advance(TEN_MINUTES)
    seen = len(engine_env.sim.requests)
    result = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))

    # VERIFICATION: account read, then the order — in that order, at the broker
    assert result.status is OrderStatus.ACCEPTED
    kinds = [r.kind for r in engine_env.sim.requests[seen:]]
    assert kinds[:2] == [ACCOUNT, OPEN_POSITION]
    (intent,) = [
        r for r in engine_env.durable_records_of(result.deal_reference) if isinstance(r, Intent)
    ]
    assert intent.balance_age is not None and intent.balance_age < ttl
    assert intent.balance_fetched_at >= TEN_MINUTES


async def test_funds_used_elsewhere_while_idle__fresh_balance_rejects(engine_env) -> None:
    """
    SCENARIO: While the engine is idle, positions opened on the dashboard use up the margin
    EXPECTED: The refresh sees the funds are gone: rejected on risk, broker NOT sent the order
    FAILURE MODE: An order approved on the cached balance over-leverages the account
    """
    # SETUP: an order caches the balance while the account is flush
    engine = await engine_env.ready_engine()
    await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 0.5))
    await engine.balance.fresh()
    assert engine.balance.view().account.available > 9_000
    orders_before = len(engine_env.sim_order_requests())

    # INJECT CHAOS: EUR/USD on the dashboard leaves ~100 available; then 10 minutes pass
    engine_env.sim.open_externally(EURUSD, BUY, 26.5)
    engine_env.clock.advance(TEN_MINUTES)
    result = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 2.0))

    # VERIFICATION
    assert result.status is OrderStatus.REJECTED and "insufficient funds" in result.reason
    assert len(engine_env.sim_order_requests()) == orders_before
    (decision,) = engine_env.durable_records_of(result.deal_reference)
    assert isinstance(decision, Rejected) and decision.stage == "risk"


async def test_balance_refresh_fails__rejected_as_stale(engine_env, broker_chaos) -> None:
    """
    SCENARIO: The balance is past its TTL and every refresh attempt times out
    EXPECTED: Rejected as "stale balance", broker NOT sent the order, decision durable
    FAILURE MODE: The engine falls back on the old balance and trades blind
    """
    # SETUP
    engine = await engine_env.ready_engine()
    engine_env.clock.advance(TEN_MINUTES)

    # INJECT CHAOS: every read attempt of the account times out
    broker_chaos.timeout(method=ACCOUNT, count=engine_env.config.read_attempts)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # VERIFICATION
    assert result.status is OrderStatus.REJECTED and result.reason.startswith("stale balance")
    assert engine_env.sim_order_requests() == []
    (decision,) = engine_env.durable_records_of(result.deal_reference)
    assert isinstance(decision, Rejected) and decision.stage == "risk"
