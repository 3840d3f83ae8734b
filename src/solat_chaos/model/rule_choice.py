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

from hypothesis.errors import InvalidDefinition
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.strategies import SearchStrategy

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
def _conditional(machine_type: type[RuleBasedStateMachine]) -> tuple[Any, ...]:
    """Per rule, in order: the rule if it has bundles or preconditions to ask about, else
    None. Most rules can always run, and asking nothing of them is much of the saving."""
    return tuple(
        rule if rule.bundles or rule.preconditions else None
        for rule in _rules_in_order(machine_type)
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
        self._conditional = _conditional(type(machine))
        self.weights = rule_weights(type(machine))
        self._left_out: frozenset[int] | None = None

    def do_draw(self, data) -> tuple[Any, dict[str, Any]]:
        can_run = [
            i for i, rule in enumerate(self._conditional) if rule is None or self._can_run(rule)
        ]
        if not can_run:
            names = ", ".join(rule.function.__name__ for rule in self.rules)
            raise InvalidDefinition(
                f"No progress can be made from state {self.machine!r}, because no "
                f"available rule had a True precondition. rules: {names}"
            )
        if self._left_out is None:
            self._left_out = self._swarm(data)
        chosen = [i for i in can_run if i not in self._left_out] or can_run
        weighted = [i for i in chosen for _ in range(self.weights[i])]
        rule = self.rules[weighted[data.draw_integer(0, len(weighted) - 1)]]
        arguments = {name: data.draw(s) for name, s in rule.arguments_strategies.items()}
        return rule, arguments

    def _can_run(self, rule) -> bool:
        machine = self.machine
        return all(machine.bundle(b.name) for b in rule.bundles) and all(
            precondition(machine) for precondition in rule.preconditions
        )

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
