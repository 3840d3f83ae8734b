"""Instructions per step of every state machine against the trivial machine of
`machine_speed.py`, counted by valgrind: the same comparison as CPU seconds, without the noise
of a shared machine (identical runs give identical counts).

    .venv/bin/python benchmarks/machine_instructions.py [--examples N] [--machine NAME]...
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/machine_instructions.py ...  # before

Each count is a fresh `valgrind --tool=cachegrind` process running one machine on the hunts'
derandomized settings (`--examples` examples of up to 30 steps), less a process that only
starts up (imports, and one trivial example, so Hypothesis' one-off scan of the local
modules' constants is not counted against the first machine). Prints per machine:

    machine_instructions: engine 2.91 M/step, ratio 0.36 (trivial 1.05 M/step)

A machine's ratio is the trivial machine's instructions per step over its own: the share of
the trivial machine's steps per second it would reach on an idle CPU. Needs valgrind.
Target (issue 11): every machine at >= 0.5x the trivial machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine_speed import BUDGET, TrivialMachine  # noqa: E402

from solat_chaos.model.machines import MACHINES  # noqa: E402
from solat_chaos.model.stats import STATS  # noqa: E402

STARTUP = "startup"
TRIVIAL = "trivial"
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def run_one(which: str, examples: int) -> int:
    """Run `which` in this process (under valgrind); its steps, the engine's start not counted."""
    budget = settings(BUDGET, max_examples=examples, stateful_step_count=30)
    run_state_machine_as_test(TrivialMachine, settings=settings(budget, max_examples=1))
    if which == STARTUP:
        return 0
    if which == TRIVIAL:
        TrivialMachine.steps = 0
        run_state_machine_as_test(TrivialMachine, settings=budget)
        return TrivialMachine.steps
    STATS.reset()
    run_state_machine_as_test(MACHINES[which], settings=budget)
    return STATS.steps - STATS.rules["start_engine"]


def count(which: str, examples: int) -> tuple[int, int]:
    """(instructions, steps) of a valgrind process running `which`."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        which,
        "--examples",
        str(examples),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, check=True)
    refs = REFS.search(done.stderr)
    steps = re.search(r"^steps (\d+)$", done.stdout, re.MULTILINE)
    if refs is None or steps is None:
        raise SystemExit(f"machine_instructions: no count for {which}:\n{done.stderr[-2000:]}")
    return int(refs.group(1).replace(",", "")), int(steps.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=60)
    parser.add_argument("--machine", action="append", choices=sorted(MACHINES))
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(f"steps {run_one(args.run, args.examples)}")
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("machine_instructions: needs valgrind (apt-get install valgrind)")
    base, _ = count(STARTUP, args.examples)
    trivial_refs, trivial_steps = count(TRIVIAL, args.examples)
    trivial = (trivial_refs - base) / trivial_steps
    for name in args.machine or list(MACHINES):
        refs, steps = count(name, args.examples)
        per_step = (refs - base) / steps
        print(
            f"machine_instructions: {name} {per_step / 1e6:.2f} M/step, "
            f"ratio {trivial / per_step:.2f} (trivial {trivial / 1e6:.2f} M/step)",
            flush=True,
        )


if __name__ == "__main__":
    main()
