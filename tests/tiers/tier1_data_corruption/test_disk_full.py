"""Tier 1 — disk full during ledger and snapshot writes: simulated, and the kernel's own ENOSPC.

Every test ends on what survives: the ledger's durable bytes (or the file on the real disk)
read back after a crash, and the SimBroker's requests and positions.
"""

from __future__ import annotations

import pytest

from solat_chaos.chaos.disk import dev_full_at
from solat_chaos.chaos.engine_env import (
    EURUSD,
    GBPUSD,
    EngineEnv,
    position_sizes,
    records_on_disk,
)
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.filesystem import OsFileSystem
from solat_chaos.engine.records import Confirmed, Intent
from solat_chaos.engine.router import OrderIntent, OrderStatus
from solat_chaos.engine.snapshots import SNAPSHOT_FILE
from solat_chaos.engine.trading_state import TradingState

pytestmark = [pytest.mark.chaos, pytest.mark.tier1]


async def test_ledger_write_fails__orders_rejected(engine_env, disk_chaos) -> None:
    """
    SCENARIO: Disk full during ledger write
    EXPECTED: Order rejected, broker NOT called, ledger readable
    FAILURE MODE: Order submitted despite ledger failure (audit trail lost)
    """
    # SETUP: an engine past its startup reconcile, one order already on the books
    engine = await engine_env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert first.status is OrderStatus.ACCEPTED

    # INJECT CHAOS: 100 bytes of space left, less than one INTENT line
    with disk_chaos.disk_full_on_write(100):
        result = await engine.submit_order_intent(OrderIntent(GBPUSD, SELL, 2.0))

    # VERIFICATION: rejected for the disk, and the broker never saw the deal reference
    assert result.status is OrderStatus.REJECTED
    assert "disk space" in result.reason.lower()
    assert result.deal_reference not in engine_env.sim.received_deal_references()
    assert engine_env.broker_sizes() == {first.deal_id: 1.0}
    # ...the ledger a restart finds is readable and holds the first order, not the second
    disk_chaos.crash(torn=40)
    restarted = engine_env.open_engine()
    assert restarted.recovery.unreadable is None
    assert engine_env.durable_records_of(result.deal_reference) == []
    assert position_sizes(restarted.positions()) == {first.deal_id: 1.0}


async def test_disk_full_after_the_broker_filled__outcome_kept_and_engine_halted(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: The INTENT is durable, the broker fills, then the disk fills before CONFIRMED
    EXPECTED: ACCEPTED, flagged not durable; engine HALTED; the fill is written once there is room
    FAILURE MODE: A filled order silently missing from the ledger (position untracked after restart)
    """
    # SETUP
    engine = await engine_env.ready_engine()
    engine_env.after_broker_open(lambda order: disk_chaos.disk_full_on_write(0))

    # INJECT CHAOS: the disk fills the moment the broker has answered
    result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.5))

    # VERIFICATION: nothing silently lost, trading halted while the outcome is pending
    assert result.status is OrderStatus.ACCEPTED and not result.outcome_durable
    assert engine.state is TradingState.HALTED
    assert engine.health().outcomes_pending == 1
    refused = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED and "HALTED" in refused.reason
    assert engine_env.broker_sizes() == {result.deal_id: 1.5}
    # ...the disk gets room again: the pending fill is written before anything else
    disk_chaos.heal()
    assert engine.retry_pending()
    disk_chaos.crash()
    restarted = engine_env.open_engine()
    (fill,) = [
        r for r in engine_env.durable_records_of(result.deal_reference) if isinstance(r, Confirmed)
    ]
    assert fill.filled_size == 1.5
    assert position_sizes(restarted.positions()) == engine_env.broker_sizes()


# ----------------------------------------------------------------------- the kernel's ENOSPC


async def test_real_enospc_from_dev_full__order_rejected_broker_not_called(os_engine_env) -> None:
    """
    SCENARIO: The real disk refuses the ledger append with the kernel's ENOSPC (/dev/full)
    EXPECTED: Order rejected naming the disk, broker NOT called, ledger bytes untouched
    FAILURE MODE: The adapter swallows a real ENOSPC and the order is sent without its INTENT
    """
    # SETUP: the real file system, one accepted order in the ledger
    engine = await os_engine_env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    ledger_before = os_engine_env.fs.read(os_engine_env.ledger_path)

    # INJECT CHAOS: every write to the ledger now goes to /dev/full
    with dev_full_at(os_engine_env.ledger_path):
        result = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))

    # VERIFICATION
    assert result.status is OrderStatus.REJECTED
    assert "no space left on device" in result.reason.lower()
    assert result.deal_reference not in os_engine_env.sim.received_deal_references()
    assert os_engine_env.fs.read(os_engine_env.ledger_path) == ledger_before
    # ...and once the disk takes writes again, trading resumes on the same ledger
    again = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    assert again.status is OrderStatus.ACCEPTED
    assert os_engine_env.broker_sizes() == {first.deal_id: 1.0, again.deal_id: 1.0}


async def test_real_enospc_mid_ledger_on_a_tiny_tmpfs__torn_line_quarantined(
    tiny_tmpfs, sim_clock, sim_broker
) -> None:
    """
    SCENARIO: A 64 KiB tmpfs runs out of pages in the middle of a ledger line
    EXPECTED: Only audited orders reach the broker; the torn line is quarantined; book = broker
    FAILURE MODE: A half-written line makes the ledger unreadable, or an order goes out unaudited
    """
    # SETUP: the engine's data directory on the tmpfs, its first page of ledger in use
    with OsFileSystem() as fs:
        env = EngineEnv.on(fs, f"{tiny_tmpfs.mount_point}/solat", sim_clock, sim_broker)
        engine = await env.ready_engine(max_open_positions=50, max_exposure=500.0)
        opened = [await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 0.1))]

        # INJECT CHAOS: leave no free page; the ledger's last page has a few bytes of room
        tiny_tmpfs.fill(leave=0)
        while opened[-1].status is OrderStatus.ACCEPTED and opened[-1].outcome_durable:
            opened.append(await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 0.1)))

        # VERIFICATION: the kernel cut a line short, and the write-ahead rule held anyway
        assert "No space left on device" in (engine.journal.last_write_error or "")
        on_disk = records_on_disk(fs, env.root)
        intents = {r.deal_reference for r in on_disk if isinstance(r, Intent)}
        assert sim_broker.received_deal_references() <= intents
        ledger = fs.read(env.ledger_path)
        assert not ledger.endswith(b"\n")  # the torn tail the kernel left

        # ...room again: a restart quarantines the torn line, no byte is deleted
        tiny_tmpfs.make_room()
        engine.retry_pending()
        restarted = env.restart()
        assert restarted.recovery.unreadable is None
        assert len(restarted.recovery.quarantined) == 1
        assert fs.read(env.ledger_path).startswith(ledger)
        assert (await restarted.reconcile()).ok
        assert position_sizes(restarted.positions()) == env.broker_sizes()


async def test_real_enospc_on_snapshot_flush__orders_go_on_memory_bounded(os_engine_env) -> None:
    """
    SCENARIO: The kernel refuses the snapshot file (ENOSPC from /dev/full) while fills keep coming
    EXPECTED: Orders filled and audited; pending snapshots bounded; health says the flush failed
    FAILURE MODE: Snapshot memory grows without bound, or a snapshot failure blocks the audit trail
    """
    # SETUP: a snapshot after every fill, at most 2 kept pending
    os_engine_env.configure(snapshot_max_pending=2, snapshot_flush_every=1)
    engine = await os_engine_env.ready_engine()
    snapshot_temp = f"{os_engine_env.root}/{SNAPSHOT_FILE}.tmp"

    # INJECT CHAOS: the snapshot's temporary file (atomic replace) is /dev/full
    with dev_full_at(snapshot_temp):
        results = [
            await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 0.5)) for _ in range(4)
        ]

    # VERIFICATION: every fill is in the ledger; snapshot memory stayed bounded and reported
    assert [r.status for r in results] == [OrderStatus.ACCEPTED] * 4
    confirmed = [
        r for r in records_on_disk(os_engine_env.fs, os_engine_env.root) if isinstance(r, Confirmed)
    ]
    assert {c.deal_id for c in confirmed} == {r.deal_id for r in results}
    health = engine.health()
    assert health.snapshots_pending == 2 and health.snapshots_dropped == 2
    assert any("No space left on device" in reason for reason in health.reasons)
    assert not os_engine_env.fs.exists(f"{os_engine_env.root}/{SNAPSHOT_FILE}")
