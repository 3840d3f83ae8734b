"""How fast plain `solat-chaos explore` finds each planted bug: time to the first failure and
to the verdict, per bug and seed.

    .venv/bin/python benchmarks/time_to_find.py [--seeds 1 2 3] [--bug NAME]... [--profile ci]
        [--keep-going] [--json PATH]

For every in-process planted bug (tests/planted_bugs.py; the process machine's are not run
here) and every seed, one explore run as `solat-chaos explore --seed S` runs it: every
machine, the profile's budget, one worker, in this process so the monkeypatched bug applies,
on a fresh example database, in the bug's broker view (`--broker-view rest` for the IG
adapter's bug). A run *finds* the bug when it fails with one of the bug's
invariants. Prints one line a run, then a table a bug:

| bug | found | invariant | first failure (median) | verdict (max after first failure) |

"first failure" is seconds from the start of the run to the end of the first example that
failed (before shrinking); "verdict" is seconds from then to explore's answer (the shrunk
example and its artifact written). Timings are wall clock on a shared machine: compare runs
made side by side, not with numbers from another day.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import attrs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.planted_bugs import BUGS, planted  # noqa: E402

from solat_chaos.model.explore import ExploreOptions, explore  # noqa: E402
from solat_chaos.model.machines import MACHINES  # noqa: E402

IN_PROCESS = [name for name, bug in BUGS.items() if bug.machine in MACHINES]


@attrs.frozen
class Hunt:
    bug: str
    seed: int
    found: bool  # failed with one of the bug's invariants
    invariants: tuple[str, ...]  # every invariant the run failed with
    machines: tuple[str, ...]  # the machines that failed
    first_failure: float | None  # seconds from the start
    verdict: float  # seconds from the start to the answer

    @property
    def after_first(self) -> float | None:
        return None if self.first_failure is None else self.verdict - self.first_failure


def hunt(bug: str, seed: int, profile: str, keep_going: bool) -> Hunt:
    with tempfile.TemporaryDirectory() as scratch, planted(bug) as planted_bug:
        options = ExploreOptions(
            profile=profile,
            seed=seed,
            failures_dir=Path(scratch, "failures"),
            database=str(Path(scratch, "db")),
            record=False,
            broker_view=planted_bug.view,
            **({"keep_going": True} if keep_going else {}),
        )
        report = explore(options)
    found = tuple(
        sorted({f.invariant for t in report.tallies.values() for f in t.failures.values()})
    )
    return Hunt(
        bug,
        seed,
        any(invariant in planted_bug.invariants for invariant in found),
        found,
        tuple(name for name, tally in report.tallies.items() if tally.failed),
        report.first_failure_seconds,
        report.seconds,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(hunts: list[Hunt]) -> str:
    lines = [
        "| bug | found | invariant | first failure (median) | verdict after it (max) |",
        "|---|---:|---|---:|---:|",
    ]
    for bug in dict.fromkeys(h.bug for h in hunts):
        runs = [h for h in hunts if h.bug == bug]
        found = [h for h in runs if h.found]
        # A seed that did not find the bug counts as never: the median is of every seed.
        firsts = [h.first_failure if h.found else float("inf") for h in runs]
        median = statistics.median(firsts)
        afters = [h.after_first for h in found if h.after_first is not None]
        invariants = sorted({i for h in runs for i in h.invariants}) or ["-"]
        lines.append(
            f"| {bug} | {len(found)}/{len(runs)} | {', '.join(invariants)} "
            f"| {'never' if median == float('inf') else f'{median:.2f} s'} "
            f"| {f'{max(afters):.2f} s' if afters else '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--bug", action="append", choices=IN_PROCESS, help="only this bug")
    parser.add_argument("--profile", default="ci")
    parser.add_argument(
        "--keep-going", action="store_true", help="explore's --keep-going (the old behaviour)"
    )
    parser.add_argument("--json", type=Path, help="also write every run here")
    args = parser.parse_args()
    hunts = []
    for bug in args.bug or IN_PROCESS:
        for seed in args.seeds:
            result = hunt(bug, seed, args.profile, args.keep_going)
            hunts.append(result)
            print(
                f"{bug} seed={seed} found={result.found} invariants={','.join(result.invariants)}"
                f" machines={','.join(result.machines)}"
                f" first_failure={_seconds(result.first_failure)} verdict={result.verdict:.2f}",
                flush=True,
            )
    print(table(hunts))
    if args.json is not None:
        args.json.write_text(json.dumps([attrs.asdict(h) for h in hunts], indent=1))


if __name__ == "__main__":
    main()
