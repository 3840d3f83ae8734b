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
import functools

from side_by_side import add_budget_options, best_rates, budget_of, steps_per_second

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


class EngineMachineWithoutStream(
    ChaosMachine, OrderRules, BrokerRules, InterleavingRules, CrashRules, DiskRules, RecoveryRules
):
    """EngineMachine before the stream rules."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_budget_options(parser, max_examples=200, steps=50)
    args = parser.parse_args()
    budget = budget_of(args)
    best = best_rates(
        args.rounds,
        {
            label: functools.partial(steps_per_second, machine, budget, args.seed)
            for label, machine in (("without", EngineMachineWithoutStream), ("with", EngineMachine))
        },
    )
    print(
        f"stream_rules: max_examples={args.max_examples} steps={args.steps} seed={args.seed} "
        f"without={best['without']:,.0f} steps/s with={best['with']:,.0f} steps/s "
        f"ratio={best['with'] / best['without']:.2f}"
    )


if __name__ == "__main__":
    main()
