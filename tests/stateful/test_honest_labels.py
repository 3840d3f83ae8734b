"""A failure is reported as what it was: a step that raised is not healed and relabelled,
and an exception of the model's own code is MODEL_ERROR, one out of the core ENGINE_RAISED."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import rule

from solat_chaos.engine.ledger import unframe
from solat_chaos.model.invariants import ENGINE_RAISED, MODEL_ERROR, invariant_of
from solat_chaos.model.machines import BrokerMachine
from solat_chaos.model.runner import run_machine

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]


def machine_waiting_on_the_broker() -> BrokerMachine:
    """A started machine whose reconcile waits on a positions request the broker holds."""
    machine = BrokerMachine()
    machine.start_engine()
    machine.world.sim.hold("positions", 1)
    machine.reconcile()
    assert machine.world.sim.pending
    return machine


def test_after_a_step_that_raised_the_world_is_not_healed() -> None:
    machine = machine_waiting_on_the_broker()
    with pytest.raises(RuntimeError):
        try:
            raise RuntimeError("a step failed")
        finally:  # as Hypothesis calls it
            machine.teardown()
    assert machine.world.sim.pending, "the heal phase answered the held request"


def test_after_steps_that_passed_the_world_is_healed() -> None:
    machine = machine_waiting_on_the_broker()
    machine.teardown()
    assert not machine.world.sim.pending


class MachineWithABrokenRule(BrokerMachine):
    @rule()
    def a_rule_with_a_bug(self):
        raise KeyError("the model looked up what it never stored")


def test_an_exception_in_the_models_own_rule_is_a_model_error() -> None:
    budget = settings(
        max_examples=50,
        stateful_step_count=4,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    failures = run_machine(MachineWithABrokenRule, budget, seed=1)
    assert [f.invariant for f in failures] == [MODEL_ERROR]
    assert "a_rule_with_a_bug" in failures[0].steps


def test_an_exception_out_of_the_core_is_engine_raised() -> None:
    with pytest.raises(ValueError) as out_of_the_core:
        unframe(b"not a ledger line")
    assert invariant_of(out_of_the_core.value) == ENGINE_RAISED
    assert invariant_of(ValueError("raised by the model")) == MODEL_ERROR
