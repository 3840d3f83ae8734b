"""No rule is dead: in a `ci`-sized run of each machine every rule fires at least once."""

from __future__ import annotations

import inspect

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import INITIALIZE_RULE_MARKER, RULE_MARKER, run_state_machine_as_test

from solat_chaos.model.machines import MACHINES
from solat_chaos.model.stats import STATS

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

# The rules that need a held request behind them fire only a few times in 100 examples of
# EngineMachine (every rule of every tier) and of RecoveryMachine (whose crashes end what is
# held), so those two get twice the budget.
EXAMPLES = {"engine": 200, "recovery": 200}


@pytest.mark.parametrize("name", list(MACHINES))
def test_every_rule_fires(name: str) -> None:
    machine = MACHINES[name]
    STATS.reset()
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES.get(name, 100),
            stateful_step_count=30,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    rules = {
        name
        for name, member in inspect.getmembers(machine)
        if hasattr(member, RULE_MARKER) or hasattr(member, INITIALIZE_RULE_MARKER)
    }
    assert len(rules) > 5
    assert rules - set(STATS.rules) == set()
