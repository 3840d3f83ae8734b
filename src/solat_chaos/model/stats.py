"""Counters the machines keep while they run, for explore's verdict table and run records.

Coverage: each rule step is counted against every fault armed in the world as it starts
(`NO_FAULT` when none is), asked of the world the machine `watch`es; so a new rule or a new
fault of a port shows up without anything here knowing it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from operator import attrgetter

import attrs

NO_FAULT = "(no fault)"
_NAME = attrgetter("__name__")


@attrs.define
class RunStats:
    examples: int = 0
    steps: int = 0
    invariant_checks: int = 0
    rules: Counter = attrs.Factory(Counter)
    checks: Counter = attrs.Factory(Counter)  # by check function name
    coverage: Counter = attrs.Factory(Counter)  # (rule, fault) -> steps
    fault_kinds: set[str] = attrs.Factory(set)
    armed: Callable[[], Iterable[str]] = tuple
    # The rules of the example running now, in order, while a runner records them (else
    # None): the evidence of a failure Hypothesis cannot replay (model.runner.FailureWatch).
    trail: list[str] | None = None

    def reset(self) -> None:
        self.examples = self.steps = self.invariant_checks = 0
        self.rules.clear()
        self.checks.clear()
        self.coverage.clear()
        self.fault_kinds.clear()
        self.armed = tuple

    def watch(self, world) -> None:
        """Count the next steps against `world`'s armed faults (`armed_faults()`,
        `fault_kinds()`)."""
        self.armed = world.armed_faults
        self.fault_kinds.update(world.fault_kinds())

    def ran(self, rule: str) -> None:
        """A rule step starts."""
        self.steps += 1
        self.rules[rule] += 1
        if self.trail is not None:
            self.trail.append(rule)
        armed = self.armed()
        if not armed:
            self.coverage[rule, NO_FAULT] += 1
        for fault in armed:
            self.coverage[rule, fault] += 1

    def checked(self, *checks: Callable) -> None:
        """Invariant checks ran (the functions of model.invariants)."""
        self.invariant_checks += len(checks)
        self.checks.update(map(_NAME, checks))


# One per process: explore runs one machine at a time in each worker process.
STATS = RunStats()
