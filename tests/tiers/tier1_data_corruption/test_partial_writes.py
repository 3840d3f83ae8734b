"""Tier 1 — writes that succeed while the data never becomes durable: flush and fsync fail, a
line is torn by a crash, the data directory vanishes."""

from __future__ import annotations

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, position_sizes
from solat_chaos.engine.broker import BUY
from solat_chaos.engine.records import Confirmed, Intent, Recovery
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier1]


async def test_flush_fails_after_the_intent_was_written__order_rejected(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: The INTENT line is written to the page cache but the flush fails
    EXPECTED: Order rejected, broker NOT called; after a crash the line is gone, the ledger is clean
    FAILURE MODE: A written-but-not-durable INTENT is taken as durable and the order is sent
    """
    # SETUP
    engine = await engine_env.ready_engine()
    durable_before = disk_chaos.fs.durable_bytes(engine_env.ledger_path)

    # INJECT CHAOS
    with disk_chaos.partial_write_on_flush():
        result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # VERIFICATION
    assert result.status is OrderStatus.REJECTED and "not sent" in result.reason
    assert engine_env.sim_order_requests() == []
    assert disk_chaos.fs.durable_bytes(engine_env.ledger_path) == durable_before
    disk_chaos.crash()
    restarted = engine_env.open_engine()
    assert restarted.recovery.unreadable is None and restarted.recovery.quarantined == ()
    assert engine_env.durable_records_of(result.deal_reference) == []


async def test_fsync_fails_on_the_intent__order_rejected_and_trading_resumes(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: fsync of the ledger fails (EIO) while an order is being written ahead
    EXPECTED: Order rejected, broker NOT called; once fsync works the next order is audited and sent
    FAILURE MODE: The engine ignores the fsync error and trades on a ledger that will not survive
    """
    # SETUP
    engine = await engine_env.ready_engine()

    # INJECT CHAOS
    fault = disk_chaos.fsync_fails()
    refused = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    fault.lift()
    accepted = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))

    # VERIFICATION: the broker saw only the second deal reference, which is durable
    assert refused.status is OrderStatus.REJECTED and accepted.status is OrderStatus.ACCEPTED
    assert engine_env.sim.received_deal_references() == {accepted.deal_reference}
    disk_chaos.crash(torn=64)
    restarted = engine_env.open_engine()
    kinds = [type(r) for r in engine_env.durable_records_of(accepted.deal_reference)]
    assert kinds == [Intent, Confirmed]
    assert position_sizes(restarted.positions()) == engine_env.broker_sizes()


async def test_torn_intent_after_a_crash__quarantined_and_never_sent(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: Disk full mid-line, then power cut keeps a torn prefix of the INTENT on disk
    EXPECTED: The torn line is quarantined with a RECOVERY record; appends resume on a clean line
    FAILURE MODE: The torn line makes the ledger unreadable, or is glued to the next record
    """
    # SETUP
    engine = await engine_env.ready_engine()
    placed = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # INJECT CHAOS: 60 bytes fit, then ENOSPC; the crash keeps those 60 bytes
    with disk_chaos.disk_full_on_write(60):
        torn = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    disk_chaos.crash(torn=60)

    # VERIFICATION
    restarted = engine_env.open_engine()
    (quarantined,) = restarted.recovery.quarantined
    assert quarantined.reason == "torn last line" and len(quarantined.raw) == 60
    recovery = [r for r in engine_env.durable_records() if isinstance(r, Recovery)]
    assert [r.offsets for r in recovery] == [(quarantined.offset,)]
    assert torn.deal_reference not in engine_env.sim.received_deal_references()
    assert (await restarted.reconcile()).ok
    after = await restarted.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    assert after.status is OrderStatus.ACCEPTED
    disk_chaos.crash()
    again = engine_env.open_engine()
    assert len(again.recovery.quarantined) == 1  # the same torn line, nothing new
    assert position_sizes(again.positions()) == engine_env.broker_sizes()
    assert set(engine_env.broker_sizes()) == {placed.deal_id, after.deal_id}


async def test_directory_disappears__orders_rejected_not_sent(engine_env, disk_chaos) -> None:
    """
    SCENARIO: The data directory is deleted under the running engine
    EXPECTED: Orders rejected (no INTENT can be written), broker NOT called, the reason names it
    FAILURE MODE: Writes into a vanished directory are taken as success and orders go out unaudited
    """
    # SETUP
    engine = await engine_env.ready_engine()

    # INJECT CHAOS
    disk_chaos.directory_disappears(engine_env.root)
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # VERIFICATION
    assert result.status is OrderStatus.REJECTED
    assert "INTENT not written" in result.reason and "No such file" in result.reason
    assert engine_env.sim_order_requests() == []
    assert disk_chaos.fs.durable_bytes(engine_env.ledger_path) is None
