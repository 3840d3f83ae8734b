"""The machines' rule choice (model/rule_choice.py): only rules that can run are chosen, each
example's swarm leaves some out, the same seed chooses the same steps, a failure still
shrinks to its few steps, and every argument is drawn as Hypothesis would draw it."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.control import BuildContext
from hypothesis.errors import InvalidDefinition
from hypothesis.internal.conjecture.data import ConjectureData
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    VarReference,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from solat_chaos.model.rule_choice import RuleChoice, _draw_of, _rules_in_order, rule_weights

RULES = ("open", "close", "tick", "poll", "nudge", "reset")


def budget(**changes) -> settings:
    return settings(
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[phase for phase in Phase if phase is not Phase.explain],
        **changes,
    )


class Recorder(RuleBasedStateMachine):
    """Six rules, two of them only sometimes able to run; records what ran, per example."""

    examples: list[list[str]] = []
    ran_while_unable: list[str] = []
    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self._rules_strategy = RuleChoice(self)
        self.steps: list[str] = []
        Recorder.examples.append(self.steps)
        self.open_count = 0

    def _ran(self, name: str) -> None:
        self.steps.append(name)

    @initialize(target=handles)
    def start(self):
        return 0

    @rule(target=handles, n=st.integers(0, 3))
    def open(self, n):
        self._ran("open")
        self.open_count += 1
        return n

    @precondition(lambda self: self.open_count > 0)
    @rule(handle=handles)
    def close(self, handle):
        if self.open_count == 0:
            Recorder.ran_while_unable.append("close")
        self._ran("close")
        self.open_count -= 1

    @rule()
    def tick(self):
        self._ran("tick")

    @rule(flag=st.booleans())
    def poll(self, flag):
        self._ran("poll")

    @precondition(lambda self: False)
    @rule()
    def never(self):
        Recorder.ran_while_unable.append("never")

    @rule()
    def nudge(self):
        self._ran("nudge")

    @rule()
    def reset(self):
        self._ran("reset")


@pytest.fixture(autouse=True)
def fresh_records():
    Recorder.examples = []
    Recorder.ran_while_unable = []


def run(seed: int, examples: int = 60) -> list[list[str]]:
    Recorder.examples = []
    seeded = hypothesis.seed(seed)(type("Seeded", (Recorder,), {}))
    run_state_machine_as_test(
        seeded, settings=budget(max_examples=examples, stateful_step_count=20, derandomize=False)
    )
    return Recorder.examples


def test_a_rule_runs_only_when_its_precondition_holds() -> None:
    examples = run(seed=1)
    assert sum(len(steps) for steps in examples) > 500
    assert Recorder.ran_while_unable == []


def test_every_rule_runs_somewhere_and_some_examples_leave_rules_out() -> None:
    examples = run(seed=2)
    used = {name for steps in examples for name in steps}
    assert used == set(RULES)
    # The swarm: long examples keeping to two or three of the five rules that can always
    # run. Fifteen fair picks among five cover at most three about once in 200 examples.
    always = {"open", "tick", "poll", "nudge", "reset"}
    narrow = [
        steps for steps in examples if len(steps) >= 15 and 2 <= len(always & set(steps)) <= 3
    ]
    assert len(narrow) >= 3, examples


def test_the_same_seed_chooses_the_same_steps() -> None:
    assert run(seed=3, examples=30) == run(seed=3, examples=30)
    assert run(seed=3, examples=30) != run(seed=4, examples=30)


class NeedsThreeCloses(Recorder):
    """Fails once three closes have run: the shortest failing program is open x3, close x3."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    @precondition(lambda self: self.open_count > 0)
    @rule(handle=Recorder.handles)
    def close(self, handle):
        super().close(handle)
        self.closes += 1
        assert self.closes < 3


def test_a_failure_shrinks_to_its_few_steps() -> None:
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            NeedsThreeCloses, settings=budget(max_examples=500, stateful_step_count=30)
        )
    # The last example run is the shrunk one, replayed to report it.
    assert sorted(Recorder.examples[-1]) == ["close"] * 3 + ["open"] * 3


@given(st.data())
@settings(budget(max_examples=5))
def test_no_rule_can_run_is_an_error_that_says_so(data) -> None:
    class Stuck(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self._rules_strategy = RuleChoice(self)

        @precondition(lambda self: False)
        @rule()
        def blocked(self):
            pass

    machine = Stuck()
    with pytest.raises(Exception, match="no available rule had a True precondition"):
        data.draw(machine._rules_strategy)


class Weighted(Recorder):
    """Recorder with `tick` weighted 4: it runs about four times as often as a rule of weight 1
    that can always run."""

    rule_weights = {"tick": 4}


def test_a_weighted_rule_runs_as_often_as_its_weight_says() -> None:
    Recorder.examples = []
    run_state_machine_as_test(
        Weighted,
        settings=budget(max_examples=100, stateful_step_count=20, derandomize=True),
    )
    # Counted only in the examples whose swarm kept both `tick` and the other rule (each
    # example's swarm leaves out rules of its own). Not the full 4 times for every rule:
    # Hypothesis' own choices (its simplest examples, small constants, copied steps) favour
    # the lowest indices, where `nudge` and `reset` come.
    ticks, others = 0, 0
    for other in ("open", "poll", "nudge", "reset"):
        both = [steps for steps in Recorder.examples if "tick" in steps and other in steps]
        tick_runs = sum(steps.count("tick") for steps in both)
        other_runs = sum(steps.count(other) for steps in both)
        assert tick_runs > 1.5 * other_runs, (other, tick_runs, other_runs)
        ticks, others = ticks + tick_runs, others + other_runs
    assert ticks > 2.5 * others, (ticks, others)
    assert Recorder.ran_while_unable == []


def test_the_weights_follow_the_rules_order() -> None:
    rules = [rule.function.__name__ for rule in _rules_in_order(Weighted)]
    weights = dict(zip(rules, rule_weights(Weighted), strict=True))
    assert weights == {name: 4 if name == "tick" else 1 for name in rules}


@pytest.mark.parametrize("weight", [0, -1, 1.5, True])
def test_a_weight_must_be_a_whole_number_from_1(weight) -> None:
    machine_type = type("BadWeight", (Recorder,), {"rule_weights": {"tick": weight}})
    with pytest.raises(InvalidDefinition, match="tick"):
        rule_weights(machine_type)


class WeightedNeedsThreeCloses(NeedsThreeCloses):
    rule_weights = {"tick": 5, "reset": 3}


def test_a_weighted_failure_still_shrinks_to_its_few_steps() -> None:
    Recorder.examples = []
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            WeightedNeedsThreeCloses, settings=budget(max_examples=500, stateful_step_count=30)
        )
    assert sorted(Recorder.examples[-1]) == ["close"] * 3 + ["open"] * 3


def _machine_arguments():
    """Every argument strategy of every machine's rules, once."""
    from solat_chaos.model.machines import MACHINES

    seen = {}
    for machine_type in MACHINES.values():
        for rule_ in _rules_in_order(machine_type):
            for name, strategy in rule_.arguments_strategies.items():
                seen.setdefault(repr(strategy), (f"{rule_.function.__name__}.{name}", strategy))
    return sorted(seen.values(), key=lambda pair: pair[0])


class _Bundles:
    """A machine as a bundle draw sees it: three values in every bundle."""

    def bundle(self, name: str) -> list[VarReference]:
        return [VarReference(f"{name}_{i}") for i in range(3)]

    @property
    def names_to_values(self) -> dict[str, str]:
        return {f"{name}_{i}": f"value {i}" for name in ("deals", "handles") for i in range(3)}


def _drawn(draw, choice: int):
    """The value drawn from a data of the one choice `choice`, and the spans it left."""
    data = ConjectureData.for_choices([choice])
    data.hypothesis_runner = _Bundles()
    value = draw(data)
    data.freeze()
    return repr(value), [(s.label, s.start, s.end) for s in data.spans], data.choices


@pytest.mark.parametrize(("argument", "strategy"), _machine_arguments(), ids=lambda a: str(a))
def test_an_argument_is_drawn_as_hypothesis_draws_it(argument, strategy) -> None:
    """For each choice, the same value and the same spans as `data.draw` gives."""
    draw = _draw_of(strategy)
    values = set()
    # Past a strategy's last value Hypothesis maps the choice back into range, alike.
    for choice in range(8):
        ours = _drawn(draw, choice)
        assert ours == _drawn(lambda data: data.draw(strategy), choice), argument
        values.add(ours[0])
    assert len(values) > 1, argument


class StartedFirst(Recorder):
    """An invariant that holds only once the initialize rule has run, kept from running
    before it as the machines keep theirs (RuleChoice draws that rule's step)."""

    checks = 0

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    @initialize(target=Recorder.handles)
    def start(self):
        self.started = True
        return 0

    @precondition(lambda self: not self._rules_strategy.initializing)
    @invariant()
    def started_first(self) -> None:
        StartedFirst.checks += 1
        assert self.started


def test_the_initialize_rule_runs_first_and_invariants_after_it() -> None:
    StartedFirst.checks = 0
    run_state_machine_as_test(
        StartedFirst, settings=budget(max_examples=20, stateful_step_count=10)
    )
    assert StartedFirst.checks > 20


def _spans_of_a_draw(strategy):
    data = ConjectureData.for_choices([])
    with BuildContext(data, wrapped_test=None):
        value = data.draw(strategy)
    data.freeze()
    return value, [(s.label, s.start, s.end, s.depth) for s in data.spans], data.choices


def test_the_initialize_step_is_drawn_as_hypothesis_draws_it() -> None:
    """The same rule, spans and (no) choices as the runner's own draw of an initialize rule."""
    (rule,) = Recorder.setup_state().initializers
    theirs = _spans_of_a_draw(
        st.one_of([st.tuples(st.just(rule), st.fixed_dictionaries(rule.arguments))])
    )
    machine = Recorder()
    assert machine._rules_strategy.initializing
    assert machine._initialize_rules_to_run == []
    ours = _spans_of_a_draw(machine._rules_strategy)
    assert ours == theirs
    assert ours[0] == (rule, {})
    assert not machine._rules_strategy.initializing
