"""The process machine against a real `solat-chaos serve` process: a short run of the
unmodified engine holds every invariant, and each bug planted in the served process is found
from outside, named, and shrunk."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from solat_chaos.chaos.profiles import PROFILE_ENV
from solat_chaos.cli import main
from solat_chaos.model import artifacts
from solat_chaos.model.invariants import REJECTED_JUSTIFIED, invariant_of
from solat_chaos.model.process_machine import PROCESS_MACHINES, ProcessMachine, process_machines
from solat_chaos.model.runner import run_machine
from solat_chaos.model.stats import STATS

from ..planted_bugs import BUGS
from ..stateful.test_catches_planted_bugs import shrunk_steps
from .planted_engine import PLANTED_BUG_ENV, PlantedSolatEngine

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

# Examples start engine processes (about half a second each): a small, fixed budget.
SMOKE = settings(
    max_examples=4,
    stateful_step_count=12,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
HUNT = settings(SMOKE, max_examples=150, stateful_step_count=6, report_multiple_bugs=False)
# The seeds the replay test searches, in turn, for a failure to replay.
REPLAY_SEEDS = (3, 1, 2, 4)
# The machine that hunts each bug planted in the served process.
HUNTERS = {
    "broker_before_intent": "process-broker",
    "timeout_resolved_as_rejected": "process-broker",
    "kill_switch_written_in_place": "process-recovery",
}
nightly = pytest.mark.skipif(
    os.environ.get(PROFILE_ENV) != "nightly",
    reason=f"minutes of engine processes: runs with {PROFILE_ENV}=nightly",
)


def test_the_unmodified_engine_holds_every_invariant() -> None:
    """The ci smoke: a few examples of every rule against `solat-chaos serve`."""
    STATS.reset()
    run_state_machine_as_test(ProcessMachine, settings=SMOKE)
    # Hypothesis also starts examples it gives up on (no rule enabled in one): not counted.
    assert STATS.examples >= SMOKE.max_examples
    assert STATS.rules["kill_and_restart"] + STATS.rules["process_pauses"] > 0
    # The healed engine was asked for an order, and filled it, in most examples.
    assert STATS.checks["check_a_healed_engine_trades"] >= 2


@pytest.mark.parametrize("machine", list(PROCESS_MACHINES.values()), ids=list(PROCESS_MACHINES))
def test_what_the_machine_draws_never_depends_on_the_process(machine) -> None:
    """A replay must draw alike though the process answers otherwise (Hypothesis stops with
    FlakyStrategyDefinition when it does not): no rule fills or draws from a Bundle, and a
    precondition reads only what earlier draws decided (here, whether the disk is full)."""
    setup = machine.setup_state()
    for rule in (*setup.initializers, *setup.rules):
        assert not rule.targets and not rule.bundles, rule.function.__name__
    # Anything else a precondition read of the world (the process, say) raises here.
    drawn_only = SimpleNamespace(disk_off=None, world=SimpleNamespace(disk_full=False))
    for rule in setup.rules:
        for precondition in rule.preconditions:
            precondition(drawn_only)


class _AnswersRecorded(PROCESS_MACHINES["process-broker"]):
    """The broker machine, every answer of the engine's API recorded, example by example."""

    answers: list[list[str]] = []

    def __init__(self) -> None:
        super().__init__()
        self.answers.append([])

    def _call(self, operation, *args):
        answer = super()._call(operation, *args)
        self.answers[-1].append(f"{operation.__name__}: {answer!r}")
        return answer


def _answers_of_a_run() -> list[list[str]]:
    _AnswersRecorded.answers = []
    run_state_machine_as_test(_AnswersRecorded, settings=settings(SMOKE, max_examples=12))
    return _AnswersRecorded.answers


@nightly
def test_the_same_examples_see_the_same_answers_when_run_again() -> None:
    """What a replay rests on: the harness steps in lockstep with the engine's clock and its
    trade stream, so real time never decides what the engine answers a step."""
    first = _answers_of_a_run()
    assert sum(len(example) for example in first) > 12 * 3
    assert _answers_of_a_run() == first


def test_an_engine_refusing_every_order_is_caught_once_healed(monkeypatch) -> None:
    """Safety alone passes an engine that refuses every order: nothing bad reaches the
    broker. The order asked of it once healed, with nothing in its way, does not."""
    monkeypatch.setenv(PLANTED_BUG_ENV, "rejects_everything")
    machine = process_machines(PlantedSolatEngine)["process-broker"]
    one_example = settings(SMOKE, max_examples=1, phases=[Phase.generate])
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(machine, settings=one_example)
    assert invariant_of(caught.value) == REJECTED_JUSTIFIED, str(caught.value)
    assert "open positions limit reached" in str(caught.value)


def test_every_invariant_is_checked_for_the_default_engine() -> None:
    assert {what for what in ProcessMachine.not_checked() if not what.startswith("rule ")} == set()


def _hunt(bug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLANTED_BUG_ENV, bug)
    machine = process_machines(PlantedSolatEngine)[HUNTERS[bug]]
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(machine, settings=HUNT)
    steps = shrunk_steps(caught.value)
    assert invariant_of(caught.value) in BUGS[bug].invariants, str(caught.value)
    assert 0 < len(steps) <= 8, "\n".join(steps)


@nightly
@pytest.mark.parametrize("bug", list(HUNTERS))
def test_the_process_machine_catches_the_planted_bug(bug: str, monkeypatch) -> None:
    """Found from outside, named, and shrunk to a few steps."""
    _hunt(bug, monkeypatch)


@nightly
def test_a_process_failure_replays_from_its_artifact(tmp_path, monkeypatch) -> None:
    """The artifact names the adapter; replay starts the engine through it again: it fails
    while the served engine has the bug, and passes once it has not."""
    bug = "timeout_resolved_as_rejected"
    monkeypatch.setenv(PLANTED_BUG_ENV, bug)
    machine = process_machines(PlantedSolatEngine)[HUNTERS[bug]]
    # Finding is the hunts' test; a seed's 150 examples may all miss the bug, so the seeds
    # are tried in turn until one finds a failure to replay.
    for seed in REPLAY_SEEDS:
        failures = run_machine(machine, settings(HUNT, print_blob=True), seed=seed)
        if failures:
            break
    assert failures, f"no seed of {REPLAY_SEEDS} found {bug}"
    failure = failures[0]
    artifact = artifacts.write(
        artifacts.Artifact.of(
            failure,
            machine=HUNTERS[bug],
            machine_cls=machine,
            seed=seed,
            profile="ci",
            stateful_step_count=HUNT.stateful_step_count,
        ),
        tmp_path,
    )
    recorded = json.loads(artifact.read_text())
    assert recorded["engine_adapter"] == "tests.blackbox.planted_engine:PlantedSolatEngine"
    assert recorded["invariant"] in BUGS[bug].invariants
    assert main(["replay", str(artifact)]) == 1
    monkeypatch.delenv(PLANTED_BUG_ENV)
    assert main(["replay", str(artifact)]) == 0
