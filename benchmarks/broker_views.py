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
import time

from hypothesis import HealthCheck, settings

from solat_chaos.model.machines import MACHINES
from solat_chaos.model.runner import run_machine
from solat_chaos.model.stats import STATS
from solat_chaos.model.views import BROKER_VIEWS


def steps_per_second(machine: type, view: str, budget: settings, seed: int) -> float:
    STATS.reset()
    begun = time.perf_counter()
    failures = run_machine(machine, budget, seed=seed, broker_view=view)
    seconds = time.perf_counter() - begun
    if failures:
        raise SystemExit(f"{machine.__name__} failed in view {view}: {failures[0].message}")
    print(f"{machine.__name__} ({view}): {STATS.steps} steps in {seconds:.2f}s")
    return STATS.steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--machine", default="broker", choices=sorted(MACHINES))
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30, help="stateful_step_count")
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
    machine = MACHINES[args.machine]
    best = dict.fromkeys(BROKER_VIEWS, 0.0)
    for _ in range(args.rounds):
        for view in BROKER_VIEWS:
            best[view] = max(best[view], steps_per_second(machine, view, budget, args.seed))
    print(
        f"broker_views: machine={args.machine} max_examples={args.max_examples} "
        f"steps={args.steps} seed={args.seed} sim={best['sim']:,.0f} steps/s "
        f"rest={best['rest']:,.0f} steps/s ratio={best['rest'] / best['sim']:.2f}"
    )


if __name__ == "__main__":
    main()
