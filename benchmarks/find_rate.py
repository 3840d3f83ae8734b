"""Examples per find: how many examples a planted bug's machine generates per example that
finds the bug, over seeds 1..K (generation only: no shrink, no explore around it).

    .venv/bin/python benchmarks/find_rate.py BUG [BUG...] [--seeds K] [--examples M]
        [--steps N] [--weights rule=w,rule=w]

Each seed runs the bug's machine, in the bug's broker view, for up to M examples of up to N
steps (default: 300 of 30, the `ci` length) and stops at the first failure; a failure with
one of the bug's invariants is a find. `--weights` overrides rule weights of that machine
for the run, to try weights before writing them into `model/machines.py`. Deterministic for
given arguments and code: compare weights or code versions by the number, not by time.
Prints one line a bug: finds, examples run, examples per find, CPU seconds per find.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import import_the_package  # noqa: E402
from tests.planted_bugs import BUGS, planted  # noqa: E402

from solat_chaos.model import rule_choice  # noqa: E402
from solat_chaos.model.machines import MACHINES  # noqa: E402
from solat_chaos.model.runner import run_machine  # noqa: E402
from solat_chaos.model.stats import STATS  # noqa: E402


def weights(text: str) -> dict[str, int]:
    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {name: int(weight) for name, weight in pairs}


def main() -> None:
    import_the_package()  # the same constants pool, so the same examples as under pytest
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="+", choices=sorted(BUGS), metavar="BUG")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--weights", type=weights, default={})
    args = parser.parse_args()
    budget = settings(
        max_examples=args.examples,
        stateful_step_count=args.steps,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],
        report_multiple_bugs=False,
        print_blob=True,
    )
    for bug in args.bugs:
        machine = MACHINES[BUGS[bug].machine]
        own = machine.__dict__.get("rule_weights")
        machine.rule_weights = {**machine.rule_weights, **args.weights}
        rule_choice.rule_weights.cache_clear()
        finds = examples = 0
        begun = time.process_time()
        try:
            for seed in range(1, args.seeds + 1):
                STATS.reset()
                with planted(bug) as planted_bug:
                    failures = run_machine(machine, budget, seed=seed, broker_view=planted_bug.view)
                found = bool(failures) and failures[0].invariant in planted_bug.invariants
                finds += found
                # A failure is run once more to report it: not an example of the search.
                examples += STATS.examples - bool(failures)
        finally:
            if own is None:
                del machine.rule_weights
            else:
                machine.rule_weights = own
            rule_choice.rule_weights.cache_clear()
        per_find = max(finds, 1)
        cpu = time.process_time() - begun
        print(
            f"{bug} finds={finds} examples={examples} examples_per_find="
            f"{examples / per_find:.1f} cpu_per_find={cpu / per_find:.2f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
