"""Counters the machines keep while they run, for explore's verdict table."""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.define
class RunStats:
    examples: int = 0
    steps: int = 0
    invariant_checks: int = 0
    rules: Counter = attrs.Factory(Counter)

    def reset(self) -> None:
        self.examples = self.steps = self.invariant_checks = 0
        self.rules.clear()


# One per process: explore runs one machine at a time in each worker process.
STATS = RunStats()
