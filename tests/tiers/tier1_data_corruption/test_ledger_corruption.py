"""Tier 1 — recovery from corrupted JSONL entries: bit rot in the middle, a torn tail."""

from __future__ import annotations

import base64
import json

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, position_sizes
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.ledger import QUARANTINE_FILE
from solat_chaos.engine.records import Confirmed, Intent, Recovery
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier1]


def line_offsets(data: bytes) -> list[int]:
    """Offsets of the lines of ledger bytes."""
    offsets, at = [], 0
    for line in data.split(b"\n")[:-1]:
        offsets.append(at)
        at += len(line) + 1
    return offsets


async def test_corrupted_fill_in_the_middle__quarantined_rest_recovered(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: Bit rot flips a byte inside a CONFIRMED line in the middle of the ledger
    EXPECTED: Line quarantined, raw bytes kept; all else recovered; reconcile restores the fill
    FAILURE MODE: Recovery stops at the bad line and drops every record after it
    """
    # SETUP: three orders on the books, everything durable
    engine = await engine_env.ready_engine()
    orders = [
        await engine.submit_order_intent(OrderIntent(epic, side, 1.0))
        for epic, side in ((EURUSD, BUY), (GBPUSD, SELL), (EURUSD, SELL))
    ]
    ledger = disk_chaos.fs.durable_bytes(engine_env.ledger_path)
    first_fill = next(
        i
        for i, line in zip(line_offsets(ledger), ledger.split(b"\n"), strict=False)
        if b'"kind":"CONFIRMED"' in line
    )

    # INJECT CHAOS: one byte of the first fill rots, then the machine restarts
    disk_chaos.corrupt_file_content(engine_env.ledger_path, first_fill + 30, b"#")
    disk_chaos.crash()
    restarted = engine_env.open_engine()

    # VERIFICATION: exactly that line quarantined, durably; every other fill recovered
    (bad,) = restarted.recovery.quarantined
    assert bad.offset == first_fill
    quarantine = disk_chaos.fs.durable_bytes(f"{engine_env.root}/{QUARANTINE_FILE}")
    (entry,) = [json.loads(line) for line in quarantine.splitlines()]
    assert entry["offset"] == first_fill and base64.b64decode(entry["raw_base64"]) == bad.raw
    assert any(isinstance(r, Recovery) for r in engine_env.durable_records())
    assert set(restarted.positions()) == {o.deal_id for o in orders[1:]}
    # ...no byte deleted: the rotten line is still where it was
    assert disk_chaos.fs.durable_bytes(engine_env.ledger_path).startswith(ledger[:first_fill])
    # ...the INTENT survived without its outcome: reconcile resolves it by deal reference
    assert (await restarted.reconcile()).ok
    resolved = engine_env.durable_records_of(orders[0].deal_reference)[-1]
    assert isinstance(resolved, Confirmed) and resolved.resolved_by == "reconcile"
    assert resolved.deal_id == orders[0].deal_id
    assert position_sizes(restarted.positions()) == engine_env.broker_sizes()


async def test_every_line_after_a_corrupt_one_is_recovered(engine_env, disk_chaos) -> None:
    """
    SCENARIO: The second line of a long ledger is corrupted
    EXPECTED: Every good line after it is recovered: the book equals the broker without a reconcile
    FAILURE MODE: Recovery truncates at the first bad line
    """
    # SETUP: eight fills; the damage will hit the first one's CONFIRMED
    engine = await engine_env.ready_engine(max_open_positions=10)
    for _ in range(8):
        assert (await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 0.5))).status is (
            OrderStatus.ACCEPTED
        )
    ledger = disk_chaos.fs.durable_bytes(engine_env.ledger_path)
    second_line = line_offsets(ledger)[1]

    # INJECT CHAOS
    disk_chaos.corrupt_file_content(engine_env.ledger_path, second_line, b"\x00\x00")
    restarted = engine_env.restart()

    # VERIFICATION
    fills = [r for r in engine_env.durable_records() if isinstance(r, Confirmed)]
    assert len(fills) == 7
    assert position_sizes(restarted.positions()) == {f.deal_id: 0.5 for f in fills}
    assert len(restarted.positions()) == len(engine_env.broker_sizes()) - 1


async def test_torn_tail_then_more_orders__boundary_clean_after_two_restarts(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: A crash leaves a torn last line; the engine restarts, trades, and crashes again
    EXPECTED: The torn bytes stay a line of their own; later records verify; one quarantine only
    FAILURE MODE: The next record is appended onto the torn bytes and is lost with them
    """
    # SETUP: one order durable
    engine = await engine_env.ready_engine()
    kept = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))

    # INJECT CHAOS: the next INTENT never reaches the platter; the crash keeps 25 bytes of it
    with disk_chaos.fsync_fails():
        refused = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    disk_chaos.crash(torn=25)
    first = engine_env.open_engine()
    assert first.recovery.torn_tail and len(first.recovery.quarantined) == 1
    assert (await first.reconcile()).ok
    after = await first.submit_order_intent(OrderIntent(GBPUSD, SELL, 1.0))
    disk_chaos.crash()

    # VERIFICATION: the record written after the torn line verifies; one quarantine, ever
    second = engine_env.open_engine()
    assert [q.offset for q in second.recovery.quarantined] == [
        q.offset for q in first.recovery.quarantined
    ]
    assert len([r for r in engine_env.durable_records() if isinstance(r, Recovery)]) == 1
    assert [type(r) for r in engine_env.durable_records_of(after.deal_reference)] == [
        Intent,
        Confirmed,
    ]
    assert len(engine_env.sim_order_requests()) == 2  # the refused order never went out
    assert refused.status is OrderStatus.REJECTED
    assert position_sizes(second.positions()) == engine_env.broker_sizes()
    assert set(engine_env.broker_sizes()) == {kept.deal_id, after.deal_id}
