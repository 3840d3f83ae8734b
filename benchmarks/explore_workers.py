"""Wall time of explore on one fixed budget at --workers 1 and --workers 2.

    .venv/bin/python benchmarks/explore_workers.py [--max-examples N] [--seed S]
        [--profile P] [--machine NAME]... [--toy]

Both runs explore the same plan (same seed, same batches), each on a fresh example database so
neither replays the other's examples, with their failure artifacts in a scratch directory.
Prints each run with the work it did, then one result line:

    explore_workers: profile=ci max_examples=300 seed=1 machines=all workers1=41.2s
    workers2=23.9s speedup=1.72x

Compare like with like: a run that finds a failure also shrinks it, and stops exploring that
machine, so its time measures other work. The result line says so when that happened; time a
core on which every invariant holds.

`--toy` explores the toy machines of tests/unit/toy_machines.py instead, to check this script
without the real machines; they are too quick for the parallel start-up to pay off.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from solat_chaos.model.explore import ExploreOptions, explore

REPO = Path(__file__).resolve().parents[1]


def timed_explore(args: argparse.Namespace, workers: int, machines: dict | None) -> tuple:
    with tempfile.TemporaryDirectory() as scratch:
        options = ExploreOptions(
            profile=args.profile,
            machines=tuple(args.machine or ()),
            max_examples=args.max_examples,
            seed=args.seed,
            workers=workers,
            failures_dir=Path(scratch, "failures"),
            database=str(Path(scratch, "db")),
        )
        begun = time.perf_counter()
        report = explore(options, machines=machines)
        seconds = time.perf_counter() - begun
    tallies = report.tallies.values()
    examples = sum(tally.examples for tally in tallies)
    steps = sum(tally.steps for tally in tallies)
    failed = sorted(tally.name for tally in tallies if tally.failed)
    verdict = f"failed: {', '.join(failed)}" if failed else "every invariant held"
    print(f"--workers {workers}: {seconds:.1f}s, {examples} examples, {steps} steps ({verdict})")
    return seconds, bool(failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=300, help="per machine")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="ci", help="its step budget is used")
    parser.add_argument("--machine", action="append", help="only this machine (repeatable)")
    parser.add_argument("--toy", action="store_true", help="the toy machines of tests/unit")
    args = parser.parse_args()
    machines = None
    if args.toy:
        sys.path.insert(0, str(REPO))
        from tests.unit.toy_machines import TOY_MACHINES

        machines = TOY_MACHINES
    (one, one_failed), (two, two_failed) = (
        timed_explore(args, workers, machines) for workers in (1, 2)
    )
    names = ",".join(args.machine or ()) or ("toy" if args.toy else "all")
    caveat = " (a run found failures: not like for like)" if one_failed or two_failed else ""
    print(
        f"explore_workers: profile={args.profile} max_examples={args.max_examples} "
        f"seed={args.seed} machines={names} workers1={one:.1f}s workers2={two:.1f}s "
        f"speedup={one / two:.2f}x{caveat}"
    )


if __name__ == "__main__":
    main()
