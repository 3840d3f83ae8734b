"""Tier 4 — the kill switch across restarts.

The seed's manual check (activate over the API, restart the engine, read the status) is
automated at the engine's interface: activate, power cut (`crash()`: whatever was not fsynced
is gone), `Engine.open` again — the same path as a first start — and check that no opening
order reaches the broker.
"""

from __future__ import annotations

import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD
from solat_chaos.engine.broker import BUY
from solat_chaos.engine.kill_switch import KILL_SWITCH_FILE
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier4]


async def test_activated_kill_switch_survives_a_power_cut(engine_env, disk_chaos) -> None:
    """
    SCENARIO: The kill switch is activated, then the machine loses power
    EXPECTED: After restart the switch is still on: no opening reaches the broker, closes still do
    FAILURE MODE: The switch state was never fsynced: the emergency stop is gone after the restart
    """
    # SETUP
    engine = await engine_env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    assert engine.activate_kill_switch("operator: stop trading").persisted

    # INJECT CHAOS
    disk_chaos.crash()
    restarted = engine_env.open_engine()
    assert (await restarted.reconcile()).ok

    # VERIFICATION
    assert restarted.kill_switch.active and restarted.health().kill_switch_active
    refused = await restarted.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED and "kill switch" in refused.reason
    assert refused.deal_reference not in engine_env.sim.received_deal_references()
    closed = await restarted.close_position(opened.deal_id)
    assert closed.status is OrderStatus.ACCEPTED and engine_env.broker_sizes() == {}


async def test_activation_that_cannot_be_persisted__reported_and_still_active(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: The disk refuses the kill switch file (fsync fails) when the switch is activated
    EXPECTED: The caller is told persisted=false; the switch is on in memory and blocks orders
    FAILURE MODE: Activation reports success that a restart would not find, or the switch stays off
    """
    # SETUP
    engine = await engine_env.ready_engine()

    # INJECT CHAOS
    with disk_chaos.fsync_fails():
        status = engine.activate_kill_switch("operator: stop trading")

    # VERIFICATION
    assert status.active and not status.persisted
    refused = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED
    assert engine_env.sim_order_requests() == []
    assert disk_chaos.fs.durable_bytes(f"{engine_env.root}/{KILL_SWITCH_FILE}") is None
    assert engine.activate_kill_switch("operator: again, disk healed").persisted


async def test_deactivation_that_cannot_be_persisted__stays_on_after_restart(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: Deactivation is attempted while fsync fails, then the machine restarts
    EXPECTED: The switch stays on, in memory and after the restart; the file is the old state, whole
    FAILURE MODE: The switch reports off, then is on after a restart (or the other way round)
    """
    # SETUP
    engine = await engine_env.ready_engine()
    assert engine.activate_kill_switch("operator: stop").persisted

    # INJECT CHAOS
    with disk_chaos.fsync_fails():
        status = engine.deactivate_kill_switch("operator: resume")
    disk_chaos.crash(torn=13)

    # VERIFICATION
    assert status.active and not status.persisted
    restarted = engine_env.open_engine()
    assert restarted.kill_switch.active
    assert restarted.kill_switch.status.reason == "operator: stop"  # the old state, not torn


async def test_corrupt_kill_switch_file__engine_starts_with_the_switch_on(
    engine_env, disk_chaos
) -> None:
    """
    SCENARIO: The kill switch file is damaged on disk (a byte rots) while the switch is off
    EXPECTED: The engine starts with the switch ON, saying the file is corrupt; no opening goes out
    FAILURE MODE: An unreadable state is taken as "off" and trading starts unprotected
    """
    # SETUP: the switch turned on and off again: the file says "off"
    engine = await engine_env.ready_engine()
    engine.activate_kill_switch("drill")
    assert engine.deactivate_kill_switch("drill over").persisted

    # INJECT CHAOS
    disk_chaos.corrupt_file_content(f"{engine_env.root}/{KILL_SWITCH_FILE}", 20, b"X")
    restarted = engine_env.restart()
    assert (await restarted.reconcile()).ok

    # VERIFICATION
    assert restarted.kill_switch.active and "corrupt" in restarted.kill_switch.status.reason
    refused = await restarted.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED and "kill switch" in refused.reason
    assert engine_env.sim_order_requests() == []


async def test_kill_switch_on_the_real_disk_survives_a_restart(os_engine_env) -> None:
    """
    SCENARIO: On the real file system the switch is activated and the engine process restarts
    EXPECTED: The new engine reads the switch back on and refuses openings
    FAILURE MODE: The state lives only in memory
    """
    # SETUP
    engine = await os_engine_env.ready_engine()

    # INJECT CHAOS
    assert engine.activate_kill_switch("operator: stop").persisted
    restarted = os_engine_env.restart()
    assert (await restarted.reconcile()).ok

    # VERIFICATION
    assert restarted.kill_switch.active
    refused = await restarted.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED
    assert os_engine_env.sim_order_requests() == []
