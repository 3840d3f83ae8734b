"""The checker must be able to fail: each planted bug is applied to the core, the machine
that guards against it runs with a fixed seed and a small budget, and it must fail with the
right invariant's name and a shrunk counterexample of at most 8 steps."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from solat_chaos.model.invariants import invariant_of
from solat_chaos.model.machines import MACHINES
from solat_chaos.model.views import SIM, in_broker_view

from ..planted_bugs import BUGS, planted

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

BUDGET = settings(
    max_examples=1000,
    stateful_step_count=10,
    derandomize=True,  # a fixed seed: the same examples every run
    database=None,
    deadline=None,
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
    # Not the explain phase: it only annotates the report, and tracing the failing example
    # for it cost several times the rest of a hunt (8.5 s of CPU against 2.5 s for one).
    phases=[phase for phase in Phase if phase is not Phase.explain],
)
STEP = re.compile(r"^(\(.*\) = )?state\.(\w+)\(")


# Not steps of the counterexample: the engine's start (every example has it), the invariant
# checks and the heal phase.
NOT_STEPS = ("start_engine", "safety", "teardown")


def shrunk_steps(error: BaseException) -> list[str]:
    """The rule calls of the counterexample Hypothesis printed."""
    lines = "\n".join(getattr(error, "__notes__", [])).splitlines()
    return [
        line for line in lines if (match := STEP.match(line)) and match.group(2) not in NOT_STEPS
    ]


# The bugs planted in a served process are the process machine's (tests/blackbox/).
IN_PROCESS = [name for name, bug in BUGS.items() if bug.machine in MACHINES]


@pytest.mark.parametrize("bug", IN_PROCESS, ids=IN_PROCESS)
def test_the_machine_catches_the_planted_bug(bug: str) -> None:
    with planted(bug) as planted_bug, pytest.raises(AssertionError) as caught:
        machine = MACHINES[planted_bug.machine]
        with in_broker_view(machine, planted_bug.view):
            run_state_machine_as_test(machine, settings=BUDGET)
    steps = shrunk_steps(caught.value)
    assert invariant_of(caught.value) in planted_bug.invariants, str(caught.value)
    assert 0 < len(steps) <= 8, "\n".join(steps)


# The bugs only a machine in another broker view can reach.
VIEW_ONLY = [name for name in IN_PROCESS if BUGS[name].view != SIM]


@pytest.mark.parametrize("bug", VIEW_ONLY, ids=VIEW_ONLY)
def test_the_sim_view_cannot_see_an_adapter_bug(bug: str) -> None:
    """The point of the rest view: on the sim port the same machine runs the same rules,
    the adapter's bug among them never, and every invariant holds."""
    with planted(bug) as planted_bug:
        machine = MACHINES[planted_bug.machine]
        with in_broker_view(machine, SIM):
            run_state_machine_as_test(machine, settings=settings(BUDGET, max_examples=100))
