"""Steps per second of every state machine, against a trivial two-rule Hypothesis machine
with an event loop per example, side by side in one process.

    .venv/bin/python benchmarks/machine_speed.py [--examples N] [--steps N] [--rounds N]
        [--machine NAME]...

Each round runs the trivial machine, then each machine, then the trivial machine again, on
the same Hypothesis settings (derandomized, no database, `--examples` examples of up to
`--steps` steps); a machine's ratio in a round is its steps per second over the mean of the
two trivial runs around it, so load that comes and goes on a shared machine hits both sides
of a ratio alike. Prints every run, then per machine the median ratio over the rounds:

    machine_speed: engine ratio=0.61 (rounds: 0.58 0.61 0.66) best=0.63 steps/s=1,234
        trivial=2,020

`best` is the machine's fastest round over the trivial machine's fastest run.

A step is a rule call, the engine's start (`start_engine`, once per example) not counted.
Seconds are CPU seconds of this process (`time.process_time`), not wall time. Each run starts
after a full collection, with what the process held before it frozen (`gc.freeze`), so a run
pays the collector for its own objects only.
Target (issue 11): every machine at >= 0.5x the trivial machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.stateful.test_catches_planted_bugs import BUDGET  # noqa: E402

from solat_chaos.model.machines import MACHINES  # noqa: E402
from solat_chaos.model.stats import STATS  # noqa: E402


class TrivialMachine(RuleBasedStateMachine):
    """Two rules and an event loop per example: the floor any machine here pays."""

    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.total = 0

    @rule(n=st.integers(0, 10))
    def add(self, n: int) -> None:
        TrivialMachine.steps += 1
        self.total += n

    @rule()
    def tick(self) -> None:
        TrivialMachine.steps += 1
        self.loop.run_until_complete(asyncio.sleep(0))

    def teardown(self) -> None:
        self.loop.close()


def steps_per_second(machine: type[RuleBasedStateMachine], budget: settings) -> float:
    STATS.reset()
    TrivialMachine.steps = 0
    # Every run starts with nothing for the collector but its own objects: a full collection
    # visits everything the process holds (the earlier runs' too), costs 5-15 % of a run, and
    # lands in whichever run crosses the threshold, the same one every time for the same code.
    gc.collect()
    gc.freeze()
    # CPU time of this process: on a machine shared with other jobs, wall time measures
    # the load more than the machine.
    begun = time.process_time()
    run_state_machine_as_test(machine, settings=budget)
    seconds = time.process_time() - begun
    if machine is TrivialMachine:
        steps = TrivialMachine.steps
    else:
        steps = STATS.steps - STATS.rules["start_engine"]
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--machine", action="append", choices=sorted(MACHINES))
    args = parser.parse_args()
    # The hunts' settings (derandomized, no database, no deadline), with this budget.
    budget = settings(BUDGET, max_examples=args.examples, stateful_step_count=args.steps)
    names = args.machine or list(MACHINES)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    speeds: dict[str, list[float]] = {name: [] for name in names}
    trivials: list[float] = []
    for round_ in range(args.rounds):
        for name in names:
            before = steps_per_second(TrivialMachine, budget)
            speed = steps_per_second(MACHINES[name], budget)
            after = steps_per_second(TrivialMachine, budget)
            trivial = (before + after) / 2
            ratios[name].append(speed / trivial)
            speeds[name].append(speed)
            trivials.extend((before, after))
            print(
                f"round {round_ + 1} {name}: {speed:,.0f} steps/s, trivial {trivial:,.0f} "
                f"steps/s, ratio {speed / trivial:.2f}",
                flush=True,
            )
    # The same derandomized examples run every round, so the fastest round of each side is
    # the one least slowed by other jobs: the ratio of the best rounds is the steadier one.
    best_trivial = max(trivials)
    for name in names:
        rounds = " ".join(f"{r:.2f}" for r in ratios[name])
        print(
            f"machine_speed: {name} ratio={statistics.median(ratios[name]):.2f} "
            f"(rounds: {rounds}) best={max(speeds[name]) / best_trivial:.2f} "
            f"steps/s={statistics.median(speeds[name]):,.0f} "
            f"trivial={statistics.median(trivials):,.0f}"
        )


if __name__ == "__main__":
    main()
