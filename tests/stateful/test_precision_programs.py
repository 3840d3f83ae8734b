"""Hand-written programs for the precision invariants: each planted bug of REJECTED_JUSTIFIED's
and OUTCOME_TRUTHFUL's newer halves is caught by that invariant where no older one could
(the book agrees with the broker), and the unmodified core passes the same program."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from solat_chaos.engine.trading_state import TradingState
from solat_chaos.model import invariants
from solat_chaos.model.machines import EPICS, BrokerMachine, ChaosMachine, RecoveryMachine

from ..planted_bugs import planted

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]


def violations(machine: ChaosMachine) -> list[str]:
    """The invariants the step just taken broke, as the machine's safety check reports them."""
    try:
        machine.safety()
    except invariants.InvariantViolation as violation:
        return [violation.invariant]
    return []


@contextmanager
def started(machine_cls: type[ChaosMachine]) -> Iterator[ChaosMachine]:
    """A machine with its engine started as every example starts it; its world closed after."""
    machine = machine_cls()
    try:
        machine.start_engine()
        yield machine
    finally:
        machine.world.close()


def the_only_deal(machine: ChaosMachine) -> str:
    (deal,) = machine.world.local_positions()
    return deal


def close_after_the_dashboard_closed_it() -> tuple[list[str], bool]:
    """The violations, and whether the book then agrees with the broker."""
    with started(BrokerMachine) as machine:
        machine.submit_order(EPICS[0], "BUY", 1.0)
        deal = the_only_deal(machine)
        machine.close_on_the_dashboard(deal, 1.0)
        machine.close_position(deal, 1.0)
        agrees = machine.world.local_positions() == machine.world.broker_positions()
        return violations(machine), agrees


def test_a_close_the_broker_rejected_recorded_filled_is_untruthful() -> None:
    assert close_after_the_dashboard_closed_it() == ([], False)  # a reconcile will repair
    with planted("refused_close_recorded_filled"):
        # The book agrees with the broker: only the recorded outcome can tell the lie.
        assert close_after_the_dashboard_closed_it() == ([invariants.OUTCOME_TRUTHFUL], True)


def close_under_the_kill_switch() -> list[str]:
    with started(RecoveryMachine) as machine:
        machine.submit_order(EPICS[0], "BUY", 1.0)
        machine.kill_switch(active=True)
        machine.submit_order(EPICS[0], "BUY", 1.0)  # refused, and rightly: judged so
        assert violations(machine) == []
        machine.close_position(the_only_deal(machine), 1.0)
        return violations(machine)


def test_a_close_refused_under_the_kill_switch_is_unjustified() -> None:
    assert close_under_the_kill_switch() == []
    with planted("closes_refused_unless_active"):
        assert close_under_the_kill_switch() == [invariants.REJECTED_JUSTIFIED]


def refusals_under_a_halt_after_the_kill_switch() -> list[invariants.InvariantViolation]:
    """What the model found as an opening order and a close were refused under a halt, the
    kill switch activated and deactivated before it."""
    with started(RecoveryMachine) as machine:
        machine.submit_order(EPICS[0], "BUY", 1.0)
        machine.kill_switch(active=True)
        machine.kill_switch(active=False)
        machine.halt(active=True)
        machine.submit_order(EPICS[0], "BUY", 1.0)  # refused, and rightly: judged so
        machine.close_position(the_only_deal(machine), 1.0)  # refused too: HALTED
        assert machine.world.engine.state is TradingState.HALTED
        return list(machine.world.reference.violations)


def test_a_refusal_naming_a_kill_switch_that_is_off_is_unjustified() -> None:
    assert refusals_under_a_halt_after_the_kill_switch() == []
    with planted("kill_switch_reason_kept_until_reconciled"):
        found = refusals_under_a_halt_after_the_kill_switch()
    # The engine is HALTED, rightly, and says so: only the cause it also names is wrong.
    assert [(v.invariant, v.evidence.split(" was REJECTED")[0].split()[0]) for v in found] == [
        (invariants.REJECTED_JUSTIFIED, "opening"),
        (invariants.REJECTED_JUSTIFIED, "close"),
    ]
    assert all(
        v.evidence.endswith("it names kill_switch, and the kill switch cannot be on") for v in found
    )


def switched_on_while_an_order_awaits_its_refresh(switch: str) -> list[str]:
    """An order's balance refresh waits at the broker while the operator switches `switch`
    on; then the broker answers it."""
    with started(RecoveryMachine) as machine:
        machine.submit_order_the_broker_holds(EPICS[0], 1.0, "account")
        getattr(machine, switch)(active=True)
        machine.broker_answers_held_requests("all", 0)
        return violations(machine)


@pytest.mark.parametrize(
    ("switch", "invariant"),
    [("kill_switch", invariants.KILL_SWITCH_DURABLE), ("halt", invariants.HALT_DURABLE)],
)
def test_an_order_sent_after_a_switch_turned_on_during_its_refresh_is_caught(
    switch: str, invariant: str
) -> None:
    assert switched_on_while_an_order_awaits_its_refresh(switch) == []
    with planted("kill_switch_checked_before_refresh"):
        assert switched_on_while_an_order_awaits_its_refresh(switch) == [invariant]


def heal_answering_a_refresh_held_past_an_activation() -> None:
    """The kill switch goes on while an order's balance refresh waits at the broker, and the
    example ends: the heal phase answers the refresh, and is judged as a step is."""
    machine = RecoveryMachine()
    try:
        machine.start_engine()
        machine.submit_order_the_broker_holds(EPICS[0], 1.0, "account")
        machine.kill_switch(active=True)
        assert violations(machine) == []
    finally:
        machine.teardown()


def test_an_order_the_heal_phase_lets_through_is_caught() -> None:
    heal_answering_a_refresh_held_past_an_activation()
    with (
        planted("kill_switch_checked_before_refresh"),
        pytest.raises(invariants.InvariantViolation) as caught,
    ):
        heal_answering_a_refresh_held_past_an_activation()
    assert caught.value.invariant == invariants.KILL_SWITCH_DURABLE


def three_orders_past_the_exposure_limit() -> list[str]:
    """Two orders of 3.0 fill; a third takes exposure to 9.0, past the limit of 6.0, with
    three positions committed, within the limit of four."""
    with started(BrokerMachine) as machine:
        for _ in range(3):
            machine.submit_order(EPICS[0], "BUY", 3.0)
        assert len(machine.world.broker_positions()) == 2
        return violations(machine)


def test_a_refusal_naming_a_limit_not_reached_is_unjustified() -> None:
    assert three_orders_past_the_exposure_limit() == []
    with planted("exposure_refused_as_open_positions"):
        # A limit is reached, and the order rightly refused: only the limit named is wrong.
        assert three_orders_past_the_exposure_limit() == [invariants.REJECTED_JUSTIFIED]


def duplicate_confirm_after_a_restart() -> list[str]:
    with started(BrokerMachine) as machine:
        machine.submit_order(EPICS[0], "BUY", 1.0)
        deal = the_only_deal(machine)
        machine.crash_and_restart(0, reconciles=False)
        machine.submit_order(EPICS[0], "BUY", 1.0)  # refused until reconciled: judged so
        assert violations(machine) == []
        machine.reconcile()
        machine.order_confirmed_with_a_duplicate_deal_id(deal, EPICS[0], 1.0)
        return violations(machine)


def test_the_fill_index_is_rebuilt_at_restart() -> None:
    assert duplicate_confirm_after_a_restart() == []
    with planted("fill_dedupe_not_rebuilt_at_restart"):
        assert duplicate_confirm_after_a_restart() == [invariants.EXACTLY_ONCE_FILLS]


def close_past_a_recovered_close_intent() -> list[str]:
    """A close whose INTENT the disk did not make durable is refused; a crash keeps its
    unsynced bytes; the next process refuses a partial close of the same deal."""
    with started(RecoveryMachine) as machine:
        machine.submit_order(EPICS[0], "BUY", 1.0)
        deal = the_only_deal(machine)
        machine.fsync_fails_with_eio()
        machine.close_position(deal, 1.0)  # refused: its INTENT is not durable
        machine.disk_recovers()
        machine.crash_and_restart(300, reconciles=False)
        assert violations(machine) == []
        machine.close_position(deal, 0.5)
        return violations(machine)


def test_a_close_refused_while_a_recovered_close_is_unresolved_is_justified() -> None:
    """The recovered close INTENT may be at the broker for all the engine knows: refusing a
    second close of the deal until a reconcile resolves it is safe, and no false alarm."""
    assert close_past_a_recovered_close_intent() == []
