"""What every machine does on a fixed set of derandomized examples, as digests to compare
across two versions of the code, and its CPU seconds: a change meant only to make the world
or the checks cheaper must leave every digest alone.

    .venv/bin/python benchmarks/step_digest.py [--examples N] [--steps N] [--machine NAME]...
        [--bug BUG]... [--view sim|rest] [--cpu-only [--rounds N]]
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/step_digest.py ...   # the other side

Per machine, one line: the examples and steps run, the invariant checks, then digests of the
rules in order (every example's trail), of the coverage counts (rule x armed fault), of the
checks run by name, of the world as every rule found it and as every example left it (the
clock, the disk's every file current and durable, the broker's positions, events, requests
and held requests, the engine's state, book, pending outcomes and health, the reference
model's verdicts and flags, the trade stream, the tasks), and the verdict (the invariant a
failure named, or "pass"). `--bug BUG` runs BUG's machine with the bug planted (the same
budget, shrinking included) and digests it alike, verdict and shrunk steps included.
`--view rest`: every machine over the IG REST adapter (`model.views`). Diff the output of the
two sides, but for `cpu=`.

`--cpu-only`: no digests (they cost more than the run), only each machine's least CPU seconds
over `--rounds` runs of the same examples; run both sides alternately, e.g. `git archive main
src | tar -x -C /tmp/old` and the command above with and without its PYTHONPATH.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.planted_bugs import BUGS, planted  # noqa: E402
from tests.stateful.test_catches_planted_bugs import BUDGET  # noqa: E402

from solat_chaos.model import world as world_module  # noqa: E402
from solat_chaos.model.invariants import invariant_of  # noqa: E402
from solat_chaos.model.machines import MACHINES  # noqa: E402
from solat_chaos.model.stats import STATS, RunStats  # noqa: E402
from solat_chaos.model.views import BROKER_VIEWS, SIM, in_broker_view  # noqa: E402


def world_state(world) -> str:
    """What can be observed of `world` without changing it, as text."""
    disk = world.disk
    files = sorted(
        (directory, name, current is entries.durable.get(name), bytes(inode.data), inode.durable)
        for directory, entries in disk._dirs.items()
        for name, inode in [*entries.current.items(), *entries.durable.items()]
        for current in [entries.current.get(name)]
    )
    engine, reference, stream = world.engine, world.reference, world.stream
    sim = world.sim
    parts = [
        world.clock.now(),
        world.clock.monotonic(),
        hashlib.sha256(repr(files).encode()).hexdigest(),
        sorted(map(repr, sim.snapshot_positions())),
        len(sim.events),
        len(sim.requests),
        [(held.kind, held.seq) for held in sim.pending],
        engine.state,
        sorted(world.local_positions().items()),
        [repr(r) for r in engine.journal.pending],
        repr(engine.health()),
        [str(v) for v in reference.violations],
        reference.book_may_lag,
        reference.stream_gap,
        reference.stale_positions_served,
        sorted(reference.acknowledged),
        sorted(world.armed_faults()),
        [(t.kind, t.task.done(), t.task.cancelled()) for t in world.tasks],
        world.restarts,
        world.unmounted,
    ]
    if stream is not None:
        parts += [
            stream.state,
            stream.silent,
            stream.delayed,
            stream.last_spoke,
            len(stream.history),
            len(stream.delivered),
        ]
    return repr(parts)


class Recorder:
    """Digests the world before every rule and as every example ends."""

    def __init__(self) -> None:
        self.worlds: list = []
        self.states = hashlib.sha256()
        self.trails = hashlib.sha256()

    def __enter__(self) -> Recorder:
        recorder = self
        self._init, self._close, self._ran = (
            world_module.World.__init__,
            world_module.World.close,
            RunStats.ran,
        )
        original_init, original_close, original_ran = self._init, self._close, self._ran

        def init(world, *args, **kwargs):
            original_init(world, *args, **kwargs)
            recorder.worlds.append(world)

        def close(world):
            recorder.states.update(b"end " + world_state(world).encode())
            recorder.trails.update(repr(STATS.trail).encode() + b"\n")
            STATS.trail = []
            original_close(world)

        def ran(stats, rule):
            recorder.states.update(f"{rule} ".encode() + world_state(recorder.worlds[-1]).encode())
            original_ran(stats, rule)

        world_module.World.__init__ = init
        world_module.World.close = close
        RunStats.ran = ran
        STATS.trail = []
        return self

    def __exit__(self, *exc) -> None:
        world_module.World.__init__ = self._init
        world_module.World.close = self._close
        RunStats.ran = self._ran
        STATS.trail = None


def digest(data) -> str:
    return hashlib.sha256(repr(data).encode()).hexdigest()[:16]


def run(label: str, machine, budget: settings, bug: str | None = None) -> None:
    STATS.reset()
    verdict = "pass"
    with Recorder() as recorder, planted(bug) if bug else nullcontext():
        begun = time.process_time()
        try:
            run_state_machine_as_test(machine, settings=budget)
        except AssertionError as error:
            verdict = f"{invariant_of(error)} {digest(getattr(error, '__notes__', []))}"
        seconds = time.process_time() - begun
    print(
        f"{label}: examples={STATS.examples} steps={STATS.steps} "
        f"checks={STATS.invariant_checks} rules={recorder.trails.hexdigest()[:16]} "
        f"coverage={digest(sorted(STATS.coverage.items()))} "
        f"by_check={digest(sorted(STATS.checks.items()))} "
        f"states={recorder.states.hexdigest()[:16]} verdict={verdict} cpu={seconds:.2f}s",
        flush=True,
    )


def least_cpu(machine, budget: settings, rounds: int) -> float:
    """The least CPU seconds of `rounds` runs of `machine` (the same examples each time)."""
    least = float("inf")
    for _ in range(rounds):
        STATS.reset()
        begun = time.process_time()
        run_state_machine_as_test(machine, settings=budget)
        least = min(least, time.process_time() - begun)
    return least


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--machine", action="append", choices=sorted(MACHINES))
    parser.add_argument("--bug", action="append", choices=sorted(BUGS), default=[])
    parser.add_argument("--view", choices=BROKER_VIEWS, default=SIM)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    budget = settings(BUDGET, max_examples=args.examples, stateful_step_count=args.steps)
    machines = args.machine or ([] if args.bug else list(MACHINES))
    for name in machines:
        with in_broker_view(MACHINES[name], args.view):
            if args.cpu_only:
                seconds = least_cpu(MACHINES[name], budget, args.rounds)
                print(f"{name}: steps={STATS.steps} cpu={seconds:.3f}s", flush=True)
            else:
                run(name, MACHINES[name], budget)
    for bug in [] if args.cpu_only else args.bug:
        machine = MACHINES[BUGS[bug].machine]
        with in_broker_view(machine, args.view):
            run(f"{bug} ({BUGS[bug].machine})", machine, budget, bug)


if __name__ == "__main__":
    main()
