"""The reconciler: evidence-based repairs, recorded once, and nothing changed on a failed read."""

from __future__ import annotations

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, records_of, records_on_disk
from solat_chaos.engine.broker import BUY, BrokerTimeout, OpenOrder
from solat_chaos.engine.records import Adopted, ClosedExternally, Confirmed, Resized
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = pytest.mark.asyncio


async def test_an_order_executed_behind_a_timeout_is_found_by_reference_once(env) -> None:
    engine = await env.ready_engine()
    env.fail_broker("open_position", BrokerTimeout("read timeout"), after_execute=True)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    assert result.status is OrderStatus.IN_DOUBT

    assert (await engine.reconcile()).ok
    assert (await engine.reconcile()).ok
    fills = [
        r for r in records_of(env.fs, env.root, result.deal_reference) if isinstance(r, Confirmed)
    ]
    assert len(fills) == 1 and fills[0].resolved_by == "reconcile"
    (broker_position,) = await env.sim.positions()
    assert {d: p.size for d, p in engine.positions().items()} == {broker_position.deal_id: 2.0}
    assert engine.health().in_doubt == 0


async def test_an_order_the_broker_never_saw_stays_in_doubt_through_the_grace(env) -> None:
    """A missing report is not a flat position: the request may still reach the broker, so
    only once the grace period has passed is the order resolved as never executed."""
    engine = await env.ready_engine()
    env.fail_broker("open_position", BrokerTimeout("connect then lost"), after_execute=False)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    early = await engine.reconcile()
    assert early.ok and result.deal_reference in early.deferred
    assert engine.health().in_doubt == 1
    env.clock.advance(engine.config.in_doubt_grace)
    assert (await engine.reconcile()).ok
    outcome = records_of(env.fs, env.root, result.deal_reference)[-1]
    assert outcome.stage == "reconcile" and "no record" in outcome.reason
    assert engine.positions() == {} and await env.sim.positions() == []


async def test_a_position_closed_on_the_broker_is_closed_externally(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    env.sim.close_externally(opened.deal_id)
    report = await engine.reconcile()
    assert report.ok and [type(r) for r in report.records] == [ClosedExternally]
    assert engine.positions() == {}


async def test_a_broker_side_partial_close_becomes_resized(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 3.0))
    env.sim.close_externally(opened.deal_id, 1.0)
    report = await engine.reconcile()
    assert report.ok and report.records == (report.records[0],)
    assert isinstance(report.records[0], Resized) and report.records[0].size == 2.0
    assert engine.positions()[opened.deal_id].size == 2.0


async def test_an_unknown_broker_position_is_adopted(env) -> None:
    engine = await env.ready_engine()
    outsider = await env.sim.open_position(OpenOrder("DASHBOARD1", GBPUSD, BUY, 1.5))
    report = await engine.reconcile()
    assert [type(r) for r in report.records] == [Adopted]
    assert engine.positions()[outsider.deal_id].size == 1.5


async def test_a_timed_out_positions_call_changes_nothing(env) -> None:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    env.sim.close_externally(opened.deal_id)
    ledger_before = env.fs.read(f"{env.root}/ledger.jsonl")
    book_before = engine.positions()
    env.fail_broker("positions", BrokerTimeout("read timeout"), times=engine.config.read_attempts)
    report = await engine.reconcile()
    assert not report.ok and "BrokerTimeout" in report.error
    assert env.fs.read(f"{env.root}/ledger.jsonl") == ledger_before
    assert engine.positions() == book_before


async def test_a_reconcile_replayed_after_a_crash_adds_nothing_twice(env) -> None:
    engine = await env.ready_engine()
    a = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 3.0))
    b = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    env.sim.close_externally(a.deal_id, 1.0)
    env.sim.close_externally(b.deal_id)
    assert (await engine.reconcile()).ok
    count = len(records_on_disk(env.fs, env.root))
    restarted = env.restart()
    report = await restarted.reconcile()
    assert report.ok and report.records == ()
    assert len(records_on_disk(env.fs, env.root)) == count
    assert {d: p.size for d, p in restarted.positions().items()} == {a.deal_id: 2.0}


async def test_a_stale_positions_list_closes_nothing(env) -> None:
    engine = await env.ready_engine()
    env.sim.stale_positions()  # the list as it is now: empty
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    report = await engine.reconcile()
    assert not report.ok and "changed between two reads" in report.error
    assert engine.positions()[opened.deal_id].size == 2.0
    assert (await engine.reconcile()).ok
    assert engine.positions()[opened.deal_id].size == 2.0


async def test_repairs_the_disk_refuses_are_kept_and_written_once(sim_env) -> None:
    """Found by the engine machine: a resolution whose fsync failed was recomputed by the
    next reconcile, so the ledger could end with two outcomes for one deal reference."""
    engine = await sim_env.ready_engine()
    sim_env.fail_broker("open_position", BrokerTimeout("read timeout"), after_execute=True)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    sim_env.fs.fail_fsync()
    report = await engine.reconcile()
    assert not report.ok and "pending" in report.error
    assert engine.health().outcomes_pending == 1
    sim_env.fs.heal()
    sim_env.clock.advance(1)
    assert (await engine.reconcile()).ok
    outcomes = [r for r in records_on_disk(sim_env.fs, sim_env.root) if isinstance(r, Confirmed)]
    assert len({r for r in outcomes if r.deal_reference == result.deal_reference}) == 1
