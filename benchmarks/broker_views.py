"""One machine's steps per second in the sim and rest broker views, side by side.

    .venv/bin/python benchmarks/broker_views.py [--machine NAME] [--max-examples N]
        [--steps N] [--seed S] [--rounds R]

"sim": the engine's broker port is the SimBroker. "rest": it is IGRestBroker, through respx
onto IG's REST dialect served in-process around the same SimBroker (`model.views`), so every
broker call is an HTTP request and answer built, routed and parsed. Both run the same machine,
budget and seed in the same process, alternating for `--rounds` rounds so that a busy
neighbour on the machine slows both alike; each view's best round is reported. The two views
draw the same choices, and while they answer alike (as they must) run the same steps, so the
step counts printed should be equal. Prints one line per run and a result line:

    broker_views: machine=broker max_examples=100 steps=30 seed=1 sim=1,000 steps/s
    rest=400 steps/s ratio=0.40
"""

from __future__ import annotations

import argparse
import functools

from side_by_side import add_budget_options, best_rates, budget_of, steps_per_second

from solat_chaos.model.machines import MACHINES
from solat_chaos.model.views import BROKER_VIEWS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", default="broker", choices=sorted(MACHINES))
    add_budget_options(parser, max_examples=100, steps=30)
    args = parser.parse_args()
    budget = budget_of(args)
    machine = MACHINES[args.machine]
    best = best_rates(
        args.rounds,
        {
            view: functools.partial(
                steps_per_second, machine, budget, args.seed, label=f" ({view})", broker_view=view
            )
            for view in BROKER_VIEWS
        },
    )
    print(
        f"broker_views: machine={args.machine} max_examples={args.max_examples} "
        f"steps={args.steps} seed={args.seed} sim={best['sim']:,.0f} steps/s "
        f"rest={best['rest']:,.0f} steps/s ratio={best['rest'] / best['sim']:.2f}"
    )


if __name__ == "__main__":
    main()
