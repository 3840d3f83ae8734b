"""The router's contract, through the engine's public API, on both file systems and on both
views of the simulated broker (direct, and IGRestBroker over IG's REST dialect)."""

from __future__ import annotations

import math

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, records_of, records_on_disk
from solat_chaos.engine.broker import BUY, SELL, BrokerTimeout, BrokerUnavailable
from solat_chaos.engine.records import Confirmed, InDoubt, Intent, Rejected
from solat_chaos.engine.risk import MAX_OPEN_POSITIONS
from solat_chaos.engine.router import (
    EXCEEDS_CLOSABLE,
    INVALID_SIZE,
    UNKNOWN_DEAL,
    OrderIntent,
    OrderResult,
    OrderStatus,
)
from solat_chaos.engine.trading_state import HALT, KILL_SWITCH, NOT_RECONCILED, TradingState

pytestmark = pytest.mark.asyncio


def decision_of(env, result: OrderResult) -> Rejected:
    """The durable decision record of a refusal: its stage, reason and named causes."""
    (decision,) = records_of(env.fs, env.root, result.deal_reference)
    assert isinstance(decision, Rejected)
    return decision


async def test_an_accepted_order_is_written_ahead_and_confirmed(env) -> None:
    engine = await env.ready_engine()
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))

    assert result.status is OrderStatus.ACCEPTED and result.filled_size == 2.0
    intent, confirmed = records_of(env.fs, env.root, result.deal_reference)
    assert isinstance(intent, Intent) and intent.size == 2.0 and intent.balance_age is not None
    assert isinstance(confirmed, Confirmed) and confirmed.deal_id == result.deal_id
    broker_positions = {p.deal_id: p.size for p in await env.sim.positions()}
    assert broker_positions == {result.deal_id: 2.0}
    assert {d: p.size for d, p in engine.positions().items()} == broker_positions


async def test_the_intent_is_durable_before_the_broker_sees_the_deal_reference(env) -> None:
    engine = await env.ready_engine()
    seen_on_disk_first: list[bool] = []
    env.before_broker_open(
        lambda order: seen_on_disk_first.append(
            any(
                isinstance(r, Intent) and r.deal_reference == order.deal_reference
                for r in records_on_disk(env.fs, env.root)
            )
        )
    )
    await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 1.0))
    assert seen_on_disk_first == [True, True]


@pytest.mark.parametrize(
    ("field", "intent"),
    [
        ("size", OrderIntent(EURUSD, BUY, 0)),
        ("size", OrderIntent(EURUSD, BUY, -1.0)),
        ("size", OrderIntent(EURUSD, BUY, math.nan)),
        ("size", OrderIntent(EURUSD, BUY, math.inf)),
        ("size", OrderIntent(EURUSD, BUY, "1")),
        ("size", OrderIntent(EURUSD, BUY, True)),
        ("direction", OrderIntent(EURUSD, "HOLD", 1.0)),
        ("direction", OrderIntent(EURUSD, None, 1.0)),
        ("epic", OrderIntent("NOT.AN.EPIC", BUY, 1.0)),
        ("epic", OrderIntent(None, BUY, 1.0)),
        ("epic", object()),
    ],
)
async def test_an_invalid_intent_is_rejected_naming_the_field(env, field, intent) -> None:
    engine = await env.ready_engine()
    result = await engine.submit_order_intent(intent)
    assert result.status is OrderStatus.REJECTED
    assert result.reason.startswith(f"invalid {field}")
    assert env.sim_order_requests() == []
    (decision,) = records_of(env.fs, env.root, result.deal_reference)
    assert isinstance(decision, Rejected) and decision.stage == "validation"
    assert decision.causes == (f"invalid_{field}",)


async def test_a_rejection_on_a_full_disk_is_still_a_rejection(sim_env) -> None:
    engine = await sim_env.ready_engine()
    sim_env.fs.fail_writes_after(0)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, -3))
    assert result.status is OrderStatus.REJECTED and "invalid size" in result.reason


async def test_ledger_full_on_intent_rejects_and_never_calls_the_broker(sim_env) -> None:
    engine = await sim_env.ready_engine()
    sim_env.fs.fail_writes_after(10)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert result.status is OrderStatus.REJECTED
    assert "disk space" in result.reason.lower() and "not sent" in result.reason
    assert sim_env.sim_order_requests() == []
    assert await sim_env.sim.positions() == []


async def test_kill_switch_rejects_openings_but_allows_closes(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    assert engine.activate_kill_switch("test").persisted
    refused = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED and "kill switch" in refused.reason
    assert decision_of(env, refused).causes == (KILL_SWITCH.name,)
    assert len(env.sim_order_requests()) == 1
    closed = await engine.close_position(opened.deal_id)
    assert closed.status is OrderStatus.ACCEPTED
    assert await env.sim.positions() == [] and engine.positions() == {}


async def test_reducing_until_the_first_reconcile(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    restarted = env.restart()
    assert restarted.state is TradingState.REDUCING
    refused = await restarted.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED and "REDUCING" in refused.reason
    assert decision_of(env, refused).causes == (NOT_RECONCILED.name,)
    reduced = await restarted.close_position(opened.deal_id, 0.5)
    assert reduced.status is OrderStatus.ACCEPTED
    assert (await restarted.reconcile()).ok
    assert restarted.state is TradingState.ACTIVE


async def test_a_failed_startup_reconcile_keeps_the_engine_reducing(env) -> None:
    engine = env.open_engine()
    env.fail_broker("positions", BrokerUnavailable("down"), times=10)
    report = await engine.reconcile()
    assert not report.ok and "nothing changed" in report.error
    assert engine.state is TradingState.REDUCING


async def test_a_halt_survives_a_crash_and_reopen(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert engine.halt("operator").persisted
    restarted = env.restart()
    assert (await restarted.reconcile()).ok
    assert restarted.state is TradingState.HALTED
    for result in (
        await restarted.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0)),
        await restarted.close_position(opened.deal_id),
    ):
        assert result.status is OrderStatus.REJECTED and "HALTED" in result.reason
        assert decision_of(env, result).causes == (HALT.name,)
    assert restarted.resume().persisted
    assert env.restart().halt_switch.active is False


async def test_a_stale_balance_is_refreshed_before_approval(env) -> None:
    engine = await env.ready_engine()
    await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    env.clock.advance(engine.config.balance_ttl + 1)
    before = env.clock.monotonic()
    result = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    intent = records_of(env.fs, env.root, result.deal_reference)[0]
    assert intent.balance_fetched_at >= before and intent.balance_age < engine.config.balance_ttl


async def test_a_failed_balance_refresh_rejects(env) -> None:
    engine = await env.ready_engine()
    env.clock.advance(engine.config.balance_ttl + 1)
    env.fail_broker("account", BrokerUnavailable("down"), times=engine.config.read_attempts)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert result.status is OrderStatus.REJECTED and "stale balance" in result.reason
    assert env.sim_order_requests() == []


async def test_a_fill_makes_the_next_order_refresh_the_balance(env) -> None:
    engine = await env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    env.clock.advance(1)
    second = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    first_intent = records_of(env.fs, env.root, first.deal_reference)[0]
    second_intent = records_of(env.fs, env.root, second.deal_reference)[0]
    assert second_intent.balance_fetched_at > first_intent.balance_fetched_at
    assert second_intent.balance_age < 1


async def test_a_partial_fill_records_the_confirmed_size_only(env) -> None:
    engine = await env.ready_engine()
    env.sim.fill_fraction(0.4)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 5.0))
    assert result.status is OrderStatus.PARTIALLY_FILLED and result.filled_size == 2.0
    assert engine.positions()[result.deal_id].size == 2.0
    assert [p.size for p in await env.sim.positions()] == [2.0]


async def test_a_partial_close_removes_the_confirmed_size_only(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 4.0))
    env.sim.fill_fraction(0.5, method="close_position")
    closed = await engine.close_position(opened.deal_id, 2.0)
    assert closed.status is OrderStatus.PARTIALLY_FILLED and closed.filled_size == 1.0
    assert engine.positions()[opened.deal_id].size == 3.0
    assert [p.size for p in await env.sim.positions()] == [3.0]


@pytest.mark.parametrize("size", [0, -1, math.nan, 5.0])
async def test_an_invalid_close_is_rejected(env, size) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 4.0))
    result = await engine.close_position(opened.deal_id, size)
    assert result.status is OrderStatus.REJECTED and result.reason.startswith("invalid size")
    too_much = size == 5.0
    assert decision_of(env, result).causes == (EXCEEDS_CLOSABLE if too_much else INVALID_SIZE,)
    unknown = await engine.close_position("DIAAAAUNKNOWN")
    assert unknown.status is OrderStatus.REJECTED and unknown.reason.startswith("invalid deal_id")
    assert decision_of(env, unknown).causes == (UNKNOWN_DEAL,)


async def test_a_timeout_after_execution_is_in_doubt_and_never_resent(env) -> None:
    engine = await env.ready_engine()
    env.fail_broker("open_position", BrokerTimeout("read timeout"), after_execute=True)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert result.status is OrderStatus.IN_DOUBT
    assert isinstance(records_of(env.fs, env.root, result.deal_reference)[-1], InDoubt)
    assert len(env.sim_order_requests()) == 1
    assert engine.positions() == {}  # not assumed either way


async def test_a_refused_connection_is_rejected(env) -> None:
    engine = await env.ready_engine()
    env.fail_broker("open_position", BrokerUnavailable("connection refused"))
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert result.status is OrderStatus.REJECTED and "connection refused" in result.reason
    assert await env.sim.positions() == []


async def test_an_outcome_the_disk_refuses_is_kept_pending_and_written_later(sim_env) -> None:
    engine = await sim_env.ready_engine()
    sim_env.after_broker_open(lambda order: sim_env.fs.fail_writes_after(0))
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert result.status is OrderStatus.ACCEPTED and not result.outcome_durable
    assert "pending" in result.reason
    assert engine.state is TradingState.HALTED
    health = engine.health()
    assert health.outcomes_pending == 1 and any("ledger" in r for r in health.reasons)
    assert result.deal_id in engine.positions()
    assert not engine.retry_pending()
    sim_env.fs.heal()
    assert engine.retry_pending() and engine.health().outcomes_pending == 0
    assert engine.state is TradingState.ACTIVE
    assert isinstance(records_of(sim_env.fs, sim_env.root, result.deal_reference)[-1], Confirmed)


async def test_a_crash_with_an_outcome_pending_is_resolved_by_reconcile(sim_env) -> None:
    engine = await sim_env.ready_engine()
    sim_env.after_broker_open(lambda order: sim_env.fs.fail_writes_after(0))
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    sim_env.fs.heal()
    sim_env.fs.crash()
    restarted = sim_env.open_engine()
    assert restarted.positions() == {}
    assert (await restarted.reconcile()).ok
    assert {d: p.size for d, p in restarted.positions().items()} == {result.deal_id: 1.0}


async def test_open_positions_limit_counts_orders_in_doubt(env) -> None:
    engine = await env.ready_engine(max_open_positions=2)
    await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    env.fail_broker("open_position", BrokerTimeout("read timeout"), after_execute=True)
    assert (await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))).status is (
        OrderStatus.IN_DOUBT
    )
    third = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert third.status is OrderStatus.REJECTED and "open positions limit" in third.reason
    assert decision_of(env, third).causes == (MAX_OPEN_POSITIONS,)
    assert len(await env.sim.positions()) == 2


async def test_a_restart_rebuilds_the_book_exactly(env) -> None:
    engine = await env.ready_engine()
    a = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 3.0))
    b = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 2.0))
    await engine.close_position(a.deal_id, 1.0)
    await engine.close_position(b.deal_id)
    before = engine.positions()
    restarted = env.restart()
    assert restarted.positions() == before == {a.deal_id: before[a.deal_id]}
    fresh = await restarted.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert fresh.deal_reference not in (a.deal_reference, b.deal_reference)


async def test_references_stay_unique_across_restarts(env) -> None:
    engine = await env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    again = await env.restart().close_position(first.deal_id)
    assert again.deal_reference != first.deal_reference


async def test_references_stay_unique_when_the_ledger_lost_its_records(sim_env) -> None:
    """Found by the disk machine: with the ledger's lines rotted, a restarted engine reused
    a deal reference, and the broker answered its close with the old order's confirm."""
    engine = await sim_env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    ledger = f"{sim_env.root}/ledger.jsonl"
    for offset, _ in enumerate(sim_env.fs.read(ledger)):
        if sim_env.fs.read(ledger)[offset : offset + 1] == b"{":
            sim_env.fs.corrupt(ledger, offset, b"#")
    sim_env.clock.advance(1)
    restarted = sim_env.restart()
    assert restarted.positions() == {}
    assert (await restarted.reconcile()).ok  # adopts the position it forgot
    closed = await restarted.close_position(first.deal_id)
    assert closed.deal_reference != first.deal_reference
    assert closed.status is OrderStatus.ACCEPTED
    assert await sim_env.sim.positions() == []
