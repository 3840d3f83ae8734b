"""EngineMachine's steps per second without and with the trade stream, side by side.

    .venv/bin/python benchmarks/stream_rules.py [--max-examples N] [--steps N] [--seed S]
        [--rounds R]

"without" is EngineMachine as it was before tier 3: every other rule group, no stream (the
engine opened with none). "with" is EngineMachine now: the stream rules too, and an engine
consuming the SimBroker's trade stream, pumped at every settle and kept alive as time passes.
Both run the same budget and seed in the same process, alternating for `--rounds` rounds so
that a busy neighbour on the machine slows both alike; each round's best is reported.
Prints one line per run and a result line:

    stream_rules: max_examples=200 steps=50 seed=1 without=1,129 steps/s with=1,122 steps/s
    ratio=0.99
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, settings

from solat_chaos.model.machines import (
    BrokerRules,
    ChaosMachine,
    CrashRules,
    DiskRules,
    EngineMachine,
    InterleavingRules,
    OrderRules,
    RecoveryRules,
)
from solat_chaos.model.runner import run_machine
from solat_chaos.model.stats import STATS


class EngineMachineWithoutStream(
    ChaosMachine, OrderRules, BrokerRules, InterleavingRules, CrashRules, DiskRules, RecoveryRules
):
    """EngineMachine before the stream rules."""


def steps_per_second(machine: type, budget: settings, seed: int) -> tuple[float, int]:
    STATS.reset()
    begun = time.perf_counter()
    failures = run_machine(machine, budget, seed=seed)
    seconds = time.perf_counter() - begun
    if failures:
        raise SystemExit(f"{machine.__name__} failed, nothing to compare: {failures[0].message}")
    print(f"{machine.__name__}: {STATS.steps} steps in {seconds:.2f}s")
    return STATS.steps / seconds, STATS.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50, help="stateful_step_count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    budget = settings(
        max_examples=args.max_examples,
        stateful_step_count=args.steps,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    best = {"without": 0.0, "with": 0.0}
    for _ in range(args.rounds):
        for label, machine in (("without", EngineMachineWithoutStream), ("with", EngineMachine)):
            rate, _ = steps_per_second(machine, budget, args.seed)
            best[label] = max(best[label], rate)
    print(
        f"stream_rules: max_examples={args.max_examples} steps={args.steps} seed={args.seed} "
        f"without={best['without']:,.0f} steps/s with={best['with']:,.0f} steps/s "
        f"ratio={best['with'] / best['without']:.2f}"
    )


if __name__ == "__main__":
    main()
