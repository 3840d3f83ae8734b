"""What the side-by-side benchmarks share: their budget options, and one machine's steps per
second under `model.runner.run_machine` (a failure ends the benchmark: a machine that fails
explores something else than the one it is compared with)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from hypothesis import HealthCheck, settings

from solat_chaos.model.runner import run_machine
from solat_chaos.model.stats import STATS


def add_budget_options(parser: argparse.ArgumentParser, *, max_examples: int, steps: int) -> None:
    parser.add_argument("--max-examples", type=int, default=max_examples)
    parser.add_argument("--steps", type=int, default=steps, help="stateful_step_count")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)


def budget_of(args: argparse.Namespace) -> settings:
    return settings(
        max_examples=args.max_examples,
        stateful_step_count=args.steps,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def steps_per_second(
    machine: type, budget: settings, seed: int, *, label: str = "", **run
) -> float:
    """Run `machine` once (`run`: more options of `run_machine`); its steps per second."""
    STATS.reset()
    begun = time.perf_counter()
    failures = run_machine(machine, budget, seed=seed, **run)
    seconds = time.perf_counter() - begun
    name = f"{machine.__name__}{label}"
    if failures:
        raise SystemExit(f"{name} failed, nothing to compare: {failures[0].message}")
    print(f"{name}: {STATS.steps} steps in {seconds:.2f}s")
    return STATS.steps / seconds


def best_rates(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Each run's best rate over `rounds` rounds, the runs alternating within a round so that
    a busy neighbour on the machine slows them alike."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for label, run in runs.items():
            best[label] = max(best[label], run())
    return best
