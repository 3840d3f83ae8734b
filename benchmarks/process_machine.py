"""Throughput of the process machine: steps per second and engine restarts per second.

    .venv/bin/python benchmarks/process_machine.py [--examples N] [--steps S] [--machine NAME]

Runs the process machine against `solat-chaos serve` (derandomized, no database) for N
examples of up to S steps and prints one result line:

    process_machine: machine=process examples=10 steps=231 seconds=58.1 steps_per_s=3.98
    processes_started=31 restarts_per_s=0.36 mean_start_s=0.74

A restart is a SIGKILL and a new process on the same data directory; every example also
starts one process of its own. `mean_start_s` is the time from spawning a process to its
first answer.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from solat_chaos.model.process_machine import PROCESS_MACHINES
from solat_chaos.model.process_world import ProcessWorld
from solat_chaos.model.stats import STATS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--machine", default="process", choices=sorted(PROCESS_MACHINES))
    args = parser.parse_args()
    budget = settings(
        max_examples=args.examples,
        stateful_step_count=args.steps,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    STATS.reset()
    begun = time.monotonic()
    run_state_machine_as_test(PROCESS_MACHINES[args.machine], settings=budget)
    seconds = time.monotonic() - begun
    started = ProcessWorld.processes_started
    restarts = started - STATS.examples
    print(
        f"process_machine: machine={args.machine} examples={STATS.examples} "
        f"steps={STATS.steps} seconds={seconds:.1f} steps_per_s={STATS.steps / seconds:.2f} "
        f"processes_started={started} restarts_per_s={restarts / seconds:.2f} "
        f"mean_start_s={ProcessWorld.start_seconds_total / max(1, started):.2f}"
    )


if __name__ == "__main__":
    main()
