"""Tier 4 — snapshot memory leak verification, and snapshot files across crashes."""

from __future__ import annotations

import json

import pytest

from solat_chaos.chaos.disk import dev_full_at
from solat_chaos.chaos.engine_env import EURUSD, GBPUSD
from solat_chaos.engine.broker import BUY
from solat_chaos.engine.router import OrderIntent, OrderStatus
from solat_chaos.engine.snapshots import SNAPSHOT_FILE

pytestmark = [pytest.mark.chaos, pytest.mark.tier4]


def snapshot_document(data: bytes | None) -> list[dict]:
    assert data is not None, "no snapshot file"
    return json.loads(data)["snapshots"]


async def test_snapshot_memory_does_not_grow_over_many_fills(engine_env, disk_chaos) -> None:
    """
    SCENARIO: 60 fills (30 round trips), a snapshot after each, flushed every 4
    EXPECTED: Pending snapshots never reach 4, none dropped; the durable file holds the last flush
    FAILURE MODE: Flushed snapshots are kept in memory (a leak that grows with every fill)
    """
    # SETUP
    engine_env.configure(snapshot_max_pending=8, snapshot_flush_every=4)
    engine = await engine_env.ready_engine()
    pending_seen = []

    # INJECT CHAOS: none — volume alone
    for _ in range(30):
        opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
        pending_seen.append(engine.health().snapshots_pending)
        await engine.close_position(opened.deal_id)
        pending_seen.append(engine.health().snapshots_pending)

    # VERIFICATION
    assert max(pending_seen) < 4 and engine.health().snapshots_dropped == 0
    durable = snapshot_document(disk_chaos.fs.durable_bytes(f"{engine_env.root}/{SNAPSHOT_FILE}"))
    assert len(durable) == 4 and durable[-1]["positions"] == []


async def test_crash_mid_flush__snapshot_file_is_the_old_one_whole(engine_env, disk_chaos) -> None:
    """
    SCENARIO: fsync starts failing right after a fill, mid snapshot flush, then the power goes
    EXPECTED: The snapshot file after the restart is the previous flush, whole and parseable
    FAILURE MODE: A torn or empty snapshot file (written in place, or renamed before fsync)
    """
    # SETUP: one flush per fill; the first fill's snapshot is durable
    engine_env.configure(snapshot_max_pending=2, snapshot_flush_every=1)
    engine = await engine_env.ready_engine()
    first = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    path = f"{engine_env.root}/{SNAPSHOT_FILE}"
    before = disk_chaos.fs.durable_bytes(path)

    # INJECT CHAOS
    engine_env.after_broker_open(lambda order: disk_chaos.fsync_fails())
    second = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    assert not second.outcome_durable and engine.snapshots.last_error
    disk_chaos.crash(torn=50)

    # VERIFICATION
    assert disk_chaos.fs.durable_bytes(path) == before
    (snapshot,) = snapshot_document(before)
    assert [p["deal_id"] for p in snapshot["positions"]] == [first.deal_id]


async def test_snapshot_disk_full_for_a_long_time__bounded_then_newest_written(
    os_engine_env,
) -> None:
    """
    SCENARIO: The kernel refuses the snapshot file (ENOSPC) for 40 fills, then has room again
    EXPECTED: At most max_pending kept, the rest counted dropped; the next flush writes the newest
    FAILURE MODE: Memory grows for as long as the disk is full
    """
    # SETUP
    os_engine_env.configure(snapshot_max_pending=3, snapshot_flush_every=1)
    engine = await os_engine_env.ready_engine()
    temp = f"{os_engine_env.root}/{SNAPSHOT_FILE}.tmp"

    # INJECT CHAOS
    with dev_full_at(temp):
        for _ in range(20):
            opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
            assert opened.status is OrderStatus.ACCEPTED
            await engine.close_position(opened.deal_id)
            assert engine.health().snapshots_pending <= 3

    # VERIFICATION
    assert engine.health().snapshots_dropped == 40 - 3
    last = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    assert engine.snapshots.last_error is None and engine.health().snapshots_pending == 0
    written = snapshot_document(os_engine_env.fs.read(f"{os_engine_env.root}/{SNAPSHOT_FILE}"))
    assert [p["deal_id"] for p in written[-1]["positions"]] == [last.deal_id]
