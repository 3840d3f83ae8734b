"""Wall time of `solat-chaos report` over 30 nightly run records.

    .venv/bin/python benchmarks/report_render.py [--runs 30] [--seed S] [--max-examples N]

One real explore run of every machine (profile ci, `--max-examples` per machine) gives a run
record with the real rules, faults and coverage; the script stores `--runs` nights made from
it in a scratch database (each night's counts scaled by a seeded factor, every fifth night
with a failure in it), then times the command a person runs in the morning, in a fresh
process (imports included), covering every one of them and charting them all:

    solat-chaos report --runs 30 --history 30 --out report.html

Prints one result line:

    report_render: runs=30 seconds=1.9 html_kib=310 cells=726
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs

from solat_chaos.model.explore import ExploreOptions, explore
from solat_chaos.model.run_record import RUNS_DIR, DirectoryRunStore, FailureRecord, RunRecord

FAILURE = FailureRecord(
    invariant="CONVERGENCE",
    evidence="the local book differs from the broker's: DIAAAA1 local 1.0, broker 0.5",
    artifact="failures/CONVERGENCE-000000000000.json",
    replay_command="solat-chaos replay failures/CONVERGENCE-000000000000.json",
    steps="state = BrokerMachine()\nstate.start_engine()\nstate.safety()\nstate.teardown()",
    seed=1,
)


def nights(record: RunRecord, runs: int, seed: int) -> list[RunRecord]:
    rng = random.Random(seed)
    first = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    out = []
    for night in range(runs):
        scale = rng.uniform(0.5, 1.5)
        when = first + timedelta(days=night)
        machines = tuple(
            attrs.evolve(
                m,
                steps=int(m.steps * scale),
                examples=int(m.examples * scale),
                invariant_checks=int(m.invariant_checks * scale),
                coverage={
                    rule: {fault: max(1, int(n * scale)) for fault, n in by_fault.items()}
                    for rule, by_fault in m.coverage.items()
                },
                failures=(FAILURE,) if night % 5 == 4 and m.name == "broker" else (),
            )
            for m in record.machines
        )
        out.append(
            attrs.evolve(
                record,
                run_id=f"{when:%Y%m%dT%H%M%SZ}-{night}",
                created_at=when.isoformat(),
                machines=machines,
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch, "db")
        report = explore(
            ExploreOptions(
                max_examples=args.max_examples,
                seed=args.seed,
                failures_dir=Path(scratch, "failures"),
                database=str(Path(scratch, "explored")),
            )
        )
        assert report.record is not None
        store = DirectoryRunStore(database / RUNS_DIR)
        for night in nights(report.record, args.runs, args.seed):
            store.save(night)
        out = Path(scratch, "report.html")
        begun = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "solat_chaos.cli", "report", "--out", str(out),
             "--runs", str(args.runs), "--history", str(args.runs)],
            env={**os.environ, "SOLAT_CHAOS_DB": str(database)},
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - begun
        if done.returncode not in (0, 1):
            sys.exit(done.stderr)
        page = out.read_text()
        cells = page.count('<td class="blind"') + page.count('<td style="background')
        print(
            f"report_render: runs={args.runs} seconds={seconds:.2f} "
            f"html_kib={out.stat().st_size // 1024} cells={cells}"
        )


if __name__ == "__main__":
    main()
