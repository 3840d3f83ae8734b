"""CPU seconds of planted-bug hunts, with the derandomized settings the hunts of
tests/stateful/test_catches_planted_bugs.py used before they turned to seeds (`BUDGET`:
1,000 examples of 10 steps), or those with Hypothesis' explain phase back (`--explain`, as
the hunts ran before that).

    .venv/bin/python benchmarks/hunt_cpu.py BUG [BUG...] [--explain]

Prints one line a hunt: the invariant it failed with (or NOT FOUND), the examples run
(generation and shrinking), CPU and wall seconds. Run the code before a change with its `src`
first on PYTHONPATH to compare, in the same conditions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.planted_bugs import BUGS, planted  # noqa: E402
from tests.stateful.test_catches_planted_bugs import BUDGET  # noqa: E402

from solat_chaos.model.invariants import invariant_of  # noqa: E402
from solat_chaos.model.machines import MACHINES  # noqa: E402
from solat_chaos.model.stats import STATS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="+", choices=sorted(BUGS), metavar="BUG")
    parser.add_argument("--explain", action="store_true", help="with the explain phase")
    args = parser.parse_args()
    budget = settings(BUDGET, phases=list(Phase)) if args.explain else BUDGET
    for bug in args.bugs:
        STATS.reset()
        cpu, wall = time.process_time(), time.perf_counter()
        with planted(bug) as planted_bug:
            try:
                run_state_machine_as_test(MACHINES[planted_bug.machine], settings=budget)
                found = "NOT FOUND"
            except AssertionError as error:
                found = invariant_of(error)
        print(
            f"{bug} explain={args.explain} {found} examples={STATS.examples} "
            f"cpu={time.process_time() - cpu:.1f}s wall={time.perf_counter() - wall:.1f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
