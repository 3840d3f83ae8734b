"""How a machine picks its next step: one draw among the rules that can run now.

Hypothesis' own rule choice draws a rule index, then filters it by the rule's preconditions
and by a swarm flag drawn lazily per rule and asked again at every step; with 10-30 rules,
most of them unable or disabled at any one step, that is several draws and retries per step
and about a third of a machine's time. Here the rules that can run are listed first (their
preconditions and bundles, checked once each), the example's swarm has already decided which
rules it leaves out, and a single index picks among the rest: no filtered draw, no retry.

Swarm testing is kept (Groce et al., 2012): each example leaves out a random share of the
rules, from none to nearly all, so some examples dwell on a few rules long enough to reach
their deep states. The share shrinks towards none, so a shrunk example may use any rule.
Should the swarm leave out every rule that can run, all of them may. Hypothesis leaves out
half the rules on average; here a third (each kept with chance sqrt(1 - s) for a uniform s):
the planted bugs that need three or four particular rules in one example were found two to
three times as often per example (docs/benchmarks.md, "Fourth round: rule weights").

Each argument of the rule chosen is drawn as Hypothesis draws it, the same span around the
same choice, without the bookkeeping of a nested `data.draw` (`_draw_of`). A machine's one
initialize rule (without arguments) is drawn here too, first, with the spans and labels
Hypothesis gives it, instead of through the strategies its runner builds for it in every
example. Its runner then no longer knows the rule is pending and would check invariants
before it: a machine keeps an invariant from running early by a precondition on
`initializing`.

Rule weights, which Hypothesis has none of: a machine class may name rules in `rule_weights`
(rule name -> a whole number, 1 when unnamed), and a rule of weight w is as likely as w rules
of weight 1 among those that can run and the swarm keeps. The index is drawn over a list in
which each such rule appears w times, in the rules' order, so index 0 is still the first rule
and the shrink moves towards the same simple rules as without weights. A weight shifts where
the search spends its steps; it never makes a rule unreachable (0 is refused).
"""

from __future__ import annotations

import math
import random
from functools import cache
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidDefinition
from hypothesis.stateful import Bundle, RuleBasedStateMachine, self_strategy
from hypothesis.strategies import SearchStrategy
from hypothesis.strategies._internal.lazy import unwrap_strategies
from hypothesis.strategies._internal.numbers import IntegersStrategy
from hypothesis.strategies._internal.strategies import SampledFromStrategy

# Every draw here stays below 100: Hypothesis also draws the integer constants (100 and
# more) of the project's own source, so a wider draw would let a new literal anywhere in the
# package change every machine's examples.
_PERCENT = 100


@cache
def _rules_in_order(machine_type: type[RuleBasedStateMachine]) -> tuple[Any, ...]:
    """The machine's rules in Hypothesis' own order (rules without a target first, then by
    fewer arguments, then by name), so the shrink favours the same simple rules it would."""
    rules = machine_type.setup_state().rules
    return tuple(
        sorted(rules, key=lambda r: (sorted(r.targets), len(r.arguments), r.function.__name__))
    )


@cache
def _conditions(machine_type: type[RuleBasedStateMachine]) -> tuple[tuple[Any, ...], ...]:
    """Per rule with bundles or preconditions to ask about, in order: its index, its bundles'
    names and its preconditions. Most rules can always run, and asking nothing of them is
    much of the saving."""
    return tuple(
        (i, tuple(b.name for b in rule.bundles), tuple(rule.preconditions))
        for i, rule in enumerate(_rules_in_order(machine_type))
        if rule.bundles or rule.preconditions
    )


@cache
def rule_weights(machine_type: type[RuleBasedStateMachine]) -> tuple[int, ...]:
    """The weight of each of the machine's rules, in `_rules_in_order`'s order: its entry in
    the class's `rule_weights`, else 1. Raises InvalidDefinition for a weight that is not a
    positive whole number, or for weights adding up past 100. (A mapping may name rules the
    machine lacks: machines built from the same groups of rules share one.)"""
    rules = _rules_in_order(machine_type)
    named: dict[str, int] = dict(getattr(machine_type, "rule_weights", {}))
    for name, weight in named.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise InvalidDefinition(f"rule weight {name}={weight!r}: a whole number >= 1")
    weights = tuple(named.get(rule.function.__name__, 1) for rule in rules)
    if sum(weights) > _PERCENT:  # the index draw, like every draw here, stays below 100
        raise InvalidDefinition(f"rule weights of {machine_type.__name__} add up past 100")
    return weights


class RuleChoice(SearchStrategy):
    """The next rule of one example of `machine` and its arguments, as Hypothesis' stateful
    runner expects them: `(rule, {argument: value})`."""

    def __init__(self, machine: RuleBasedStateMachine) -> None:
        super().__init__()
        self.machine = machine
        self.rules = _rules_in_order(type(machine))
        self._conditions = _conditions(type(machine))
        self.weights = rule_weights(type(machine))
        self._left_out: frozenset[int] | None = None
        # The index list drawn from, by which conditional rules can run: fixed for the
        # example once its swarm is, and most steps meet a combination met before.
        self._weighted: dict[tuple[bool, ...], list[int]] = {}
        # Hypothesis' runner draws a machine's initialize rule through strategies it builds
        # anew for every example, most of a short example's overhead. One initialize rule
        # without arguments is taken over: its step is drawn here, the same spans with the
        # same labels and, as there, no choice.
        self._initializing = None
        pending = machine._initialize_rules_to_run
        if len(pending) == 1 and not pending[0].arguments:
            self._initializing = pending.pop()

    @property
    def initializing(self) -> bool:
        """Whether the machine's initialize rule is still to run."""
        return self._initializing is not None

    @property
    def label(self) -> int:
        if self._initializing is not None:
            return _initialize_labels(self._initializing)[0]
        return super().label

    def do_draw(self, data) -> tuple[Any, dict[str, Any]]:
        if self._initializing is not None:
            rule, self._initializing = self._initializing, None
            for label in _initialize_labels(rule)[1:]:
                data.start_span(label)
                data.stop_span()
            return rule, {}
        able = tuple(map(self._can_run, self._conditions))
        weighted = self._weighted.get(able)
        if weighted is None:
            weighted = self._weighted[able] = self._weigh(able, data)
        rule = self.rules[weighted[data.draw_integer(0, len(weighted) - 1)]]
        return rule, {name: draw(data) for name, draw in _argument_draws(rule)}

    def _weigh(self, able: tuple[bool, ...], data) -> list[int]:
        """The rules that can run and the swarm keeps (all that can run, should it keep
        none), each as often as its weight."""
        conditions = zip(self._conditions, able, strict=True)
        unable = {condition[0] for condition, ok in conditions if not ok}
        can_run = [i for i in range(len(self.rules)) if i not in unable]
        if not can_run:
            names = ", ".join(rule.function.__name__ for rule in self.rules)
            raise InvalidDefinition(
                f"No progress can be made from state {self.machine!r}, because no "
                f"available rule had a True precondition. rules: {names}"
            )
        if self._left_out is None:
            self._left_out = self._swarm(data)
        chosen = [i for i in can_run if i not in self._left_out] or can_run
        return [i for i in chosen for _ in range(self.weights[i])]

    def _can_run(self, condition: tuple[Any, ...]) -> bool:
        # Plain loops, no generators: asked of every conditional rule at every step.
        _, bundles, preconditions = condition
        machine = self.machine
        for name in bundles:
            if not machine.bundle(name):
                return False
        for precondition in preconditions:  # noqa: SIM110
            if not precondition(machine):
                return False
        return True

    def _swarm(self, data) -> frozenset[int]:
        """The rules this example leaves out: each with the same chance, from a drawn share
        (0-99 %) and decided by a drawn seed, so three draws fix the whole swarm and a replay
        repeats it. A share s keeps each rule with chance sqrt(1 - s): a third of the rules
        left out on average, not a half (see the module's docstring)."""
        share = data.draw_integer(0, _PERCENT - 1)
        seed = data.draw_integer(0, _PERCENT - 1) * _PERCENT + data.draw_integer(0, _PERCENT - 1)
        rng = random.Random(seed)
        keep = math.sqrt(1 - share / _PERCENT)
        return frozenset(i for i in range(len(self.rules)) if rng.random() >= keep)


@cache
def _initialize_labels(rule) -> tuple[int, int, int]:
    """The labels of the spans of `rule`'s step as Hypothesis' runner draws an initialize rule
    (alone, without arguments): a pair's, around the rule's and its arguments' (no choice)."""
    rule_strategy, arguments = st.just(rule), st.fixed_dictionaries({})
    return tuple(
        unwrap_strategies(s).label
        for s in (st.tuples(rule_strategy, arguments), rule_strategy, arguments)
    )


@cache
def _argument_draws(rule) -> tuple[tuple[str, Any], ...]:
    """Per argument of `rule`, its name and how to draw it."""
    return tuple((name, _draw_of(s)) for name, s in rule.arguments_strategies.items())


def _draw_of(strategy: SearchStrategy):
    """A function drawing one argument from `strategy` as `data.draw(strategy)` would.

    Hypothesis' own draw validates the strategy, unwraps it, labels a span and records the
    value for it, which cost more than the one choice most arguments make. For the kinds
    the machines use (a `sampled_from` list, a small range of integers, a bundle) the draw is
    done here: the same spans with the same labels around the same one choice (the value
    Hypothesis would record serves only spans of several choices). The examples, their
    mutation, shrinking and replay are therefore Hypothesis' own;
    tests/unit/test_rule_choice.py checks it."""
    unwrapped = unwrap_strategies(strategy)
    if type(unwrapped) is SampledFromStrategy and not unwrapped._transformations:
        elements, label, top = unwrapped.elements, unwrapped.label, len(unwrapped.elements) - 1

        def sampled(data):
            data.start_span(label)
            value = elements[data.draw_integer(0, top)]
            data.stop_span()
            return value

        return sampled
    bounded = type(unwrapped) is IntegersStrategy and None not in (unwrapped.start, unwrapped.end)
    # A range of more than 127 Hypothesis draws with its bounds weighted: left to it. (The
    # bound here is the 100 of every draw in this module: see _PERCENT.)
    if bounded and unwrapped.end - unwrapped.start < _PERCENT:
        label, low, high = unwrapped.label, unwrapped.start, unwrapped.end

        def integer(data):
            data.start_span(label)
            value = data.draw_integer(low, high)
            data.stop_span()
            return value

        return integer
    if type(unwrapped) is Bundle and unwrapped.draw_references and not unwrapped.consume:
        return _bundle_draw(unwrapped)
    return lambda data: data.draw(strategy)


def _bundle_draw(bundle: Bundle):
    """A draw from `bundle` as `Bundle.do_draw` makes it: its span, inside it the empty span
    of drawing the machine, then one index into the bundle's references, newest first."""
    label, name = bundle.label, bundle.name
    runner_label = unwrap_strategies(self_strategy).label

    def referenced(data):
        data.start_span(label)
        data.start_span(runner_label)
        data.stop_span()
        references = data.hypothesis_runner.bundle(name)
        if not references:
            data.mark_invalid(f"Cannot draw from empty bundle {name!r}")
        reference = references[-1 - data.draw_integer(0, len(references) - 1)]
        data.stop_span()
        return reference

    return referenced
