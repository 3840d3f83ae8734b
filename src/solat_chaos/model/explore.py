"""Explore: run state machines for a budget, in parallel processes, and gather the verdict.

The plan. Each round gives every chosen machine its example budget (`max_examples`, else the
profile's), split into batches of at most `BATCH_EXAMPLES` examples, in round-robin order over
the machines. Each batch is one Hypothesis run with its own seed, derived from the run's seed
and the batch's place in the plan, so a seed names the same batches at any parallelism.
Without `minutes` there is one round; with it, rounds repeat and new batches start until the
time is up (a batch that has started runs to its end). Once a machine has failed no new batch
starts, of any machine: the first failure is what the user needs, and the sooner the verdict
the better (`keep_going` goes on with the other machines, as before: then only the failed
machine stops, since its stored failure would be replayed first and found again).

The verdict comes soon after the first failure: a batch stops generating at its first failing
example (Hypothesis' `report_multiple_bugs` off, unless `keep_going`) and shrinks it for at
most `shrink_seconds` (`model.runner.FailureWatch`), then reports the smallest failing example
found by then, which replays like any other.

Workers take the next batch of a machine no other worker is running, when there is one: two
batches of one machine sharing the database at once could each replay the other's half-shrunk
failure. So when every invariant holds, the same options (seed, workers, budget) explore the
same examples; after a failure, which batches of that machine still ran can depend on timing.
(Spawned workers explore alike however many there are; the in-process run of `workers=1` may
differ a little, since Hypothesis also draws on constants found in the modules a process has
loaded.)

Every batch runs its machine in the run's broker view (`options.broker_view`, `model.views`):
the engine's broker port is the SimBroker ("sim") or the IG REST adapter over HTTP onto it
("rest"); artifacts record the view, and replay uses it.

A batch runs the machine with the profile's step budget on the shared example database, with
Hypothesis' state machine defaults (no deadline, health checks off — as `Machine.TestCase`
has them) and `print_blob` on. Failing examples are shrunk by Hypothesis, saved in the
database and written as artifacts (`model.artifacts`). A failure Hypothesis then finds flaky
(it cannot run the example again the same way) is written too, marked not reproducible, with
what its first failing run saw (`model.runner`): an invariant failed, even if only once.

At the end a run record (`model.run_record`) is stored beside the examples, for reports.

Statistics come from `model.stats.STATS`, which the machines bump; each batch resets it in
the process that runs it, so workers count independently and the parent adds them up.

`workers=1` runs batches in this process (so a bug planted by a test by monkeypatching is
seen); more workers are spawned processes, each running `initializer` (a picklable callable,
e.g. one that plants a bug) before its first batch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import attrs
from hypothesis import HealthCheck, Phase
from hypothesis import settings as Settings
from hypothesis.database import ExampleDatabase

from solat_chaos.chaos.profiles import database_from, selected_profile
from solat_chaos.model import artifacts
from solat_chaos.model.catalogue import Machines, machine_catalogue
from solat_chaos.model.run_record import RunRecord, run_store_for
from solat_chaos.model.runner import FailureWatch, run_machine
from solat_chaos.model.stats import STATS
from solat_chaos.model.views import SIM, check_view

# Small, so that every machine has its first batch soon: a bug only one machine can reach is
# found that much sooner (each batch is a Hypothesis run of its own, a few ms to start).
BATCH_EXAMPLES = 10
# Shrinking a failure stops after this long: with the replay and the artifact, the verdict
# comes within 30 s of the first failure. Most failures shrink fully well within it.
SHRINK_SECONDS = 20.0


class UnknownMachine(ValueError):
    """A machine name that is not in the catalogue; the message lists the known ones."""


@attrs.frozen
class ExploreOptions:
    profile: str | None = None  # None: SOLAT_CHAOS_PROFILE, else ci
    machines: tuple[str, ...] = ()  # empty: every machine
    max_examples: int | None = None  # per machine and round; None: the profile's
    minutes: float | None = None  # None: one round
    seed: int = 0
    workers: int = 1
    failures_dir: Path = Path("failures")
    database: str | None = None  # None: SOLAT_CHAOS_DB, else .hypothesis/examples
    record: bool = True  # store a run record beside the examples (model.run_record)
    keep_going: bool = False  # after a failure, run the other machines' batches too
    shrink_seconds: float | None = SHRINK_SECONDS  # a failure's shrink; None: Hypothesis' 5 min
    broker_view: str = SIM  # how the engine's broker port reaches the sim (model.views)


@attrs.frozen
class Batch:
    machine: str
    round: int
    index: int
    seed: int  # the Hypothesis seed of this batch
    max_examples: int


@attrs.frozen
class FoundFailure:
    invariant: str
    evidence: str
    artifact: Path
    not_reproducible: str | None = None  # why Hypothesis could not run it again (Failure)


@attrs.frozen
class BatchResult:
    batch: Batch
    examples: int
    steps: int
    invariant_checks: int
    rules: Counter
    failures: tuple[FoundFailure, ...]
    error: str | None  # the run went wrong without a reproducible example
    checks: Counter = attrs.Factory(Counter)  # by invariant check function
    coverage: Counter = attrs.Factory(Counter)  # (rule, armed fault) -> steps
    fault_kinds: frozenset[str] = frozenset()
    first_failure_at: float | None = None  # time.monotonic() its first failing example ended


@attrs.define
class MachineTally:
    """What one machine did over the whole run."""

    name: str
    batches: int = 0
    examples: int = 0
    steps: int = 0
    invariant_checks: int = 0
    rules: Counter = attrs.Factory(Counter)
    failures: dict[Path, FoundFailure] = attrs.Factory(dict)  # one per artifact
    errors: list[str] = attrs.Factory(list)
    checks: Counter = attrs.Factory(Counter)
    coverage: Counter = attrs.Factory(Counter)
    fault_kinds: set[str] = attrs.Factory(set)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.examples += result.examples
        self.steps += result.steps
        self.invariant_checks += result.invariant_checks
        self.rules.update(result.rules)
        self.checks.update(result.checks)
        self.coverage.update(result.coverage)
        self.fault_kinds.update(result.fault_kinds)
        for failure in result.failures:
            self.failures[failure.artifact] = failure
        if result.error is not None:
            self.errors.append(result.error)

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.errors)


@attrs.define
class ExploreReport:
    profile: str
    seed: int
    tallies: dict[str, MachineTally]
    seconds: float = 0.0
    # Seconds from the start to the end of the first example that failed (before shrinking);
    # None when none failed.
    first_failure_seconds: float | None = None
    record: RunRecord | None = None  # what was stored, when options.record
    broker_view: str = SIM

    @property
    def ok(self) -> bool:
        """Every invariant held in every example run."""
        return not any(tally.failed for tally in self.tallies.values())


def batch_seed(run_seed: int, machine: str, round_: int, index: int) -> int:
    digest = hashlib.sha256(f"{run_seed}/{machine}/{round_}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Plan:
    """The batches still to run. `rounds=None` repeats rounds until `deadline` (a
    time.monotonic() value) has passed; the first batch is always handed out."""

    def __init__(
        self,
        names: tuple[str, ...],
        per_machine: int,
        run_seed: int,
        *,
        rounds: int | None = 1,
        deadline: float | None = None,
    ) -> None:
        self.names = names
        self.sizes = [
            min(BATCH_EXAMPLES, per_machine - start)
            for start in range(0, per_machine, BATCH_EXAMPLES)
        ]
        self.run_seed = run_seed
        self.rounds = rounds
        self.deadline = deadline
        self.live = set(names)
        self.pending: list[Batch] = []
        self.next_round = 0
        self.handed_out = 0

    @property
    def batches_a_round(self) -> int:
        return len(self.names) * len(self.sizes)

    def drop(self, machine: str) -> None:
        """No further batch of `machine`."""
        self.live.discard(machine)

    def stop(self) -> None:
        """No further batch of any machine."""
        self.live.clear()

    def take(self, busy: set[str] | frozenset[str] = frozenset()) -> Batch | None:
        """The next batch, preferring one whose machine is not in `busy`; None at the end."""
        if self.handed_out and self.deadline is not None and time.monotonic() >= self.deadline:
            return None
        self.pending = [batch for batch in self.pending if batch.machine in self.live]
        if not self.pending:
            self._start_round()
        if not self.pending:
            return None
        batch = next((b for b in self.pending if b.machine not in busy), self.pending[0])
        self.pending.remove(batch)
        self.handed_out += 1
        return batch

    def _start_round(self) -> None:
        if self.rounds is not None and self.next_round >= self.rounds:
            return
        round_ = self.next_round
        self.pending = [
            Batch(name, round_, index, batch_seed(self.run_seed, name, round_, index), size)
            for index, size in enumerate(self.sizes)
            for name in self.names
            if name in self.live
        ]
        self.next_round += 1


class Listener:
    """What explore tells while it runs (in the calling process); these do nothing."""

    def planned(self, batches: int | None) -> None:
        """How many batches the plan has; None when it repeats until the time is up. Fewer
        run when a machine fails."""

    def started(self, batch: Batch) -> None:
        pass

    def finished(self, result: BatchResult) -> None:
        pass


def explore(
    options: ExploreOptions,
    *,
    machines: Machines | None = None,
    initializer: Callable[[], object] | None = None,
    listener: Listener | None = None,
) -> ExploreReport:
    """Run the plan of `options` and report. Raises before running anything when a machine
    name, the profile or the database is bad (UnknownMachine, InvalidArgument, DatabaseError,
    NoMachines), or the broker view is unknown (ValueError)."""
    listener = listener or Listener()
    catalogue = machine_catalogue(machines)
    names = options.machines or tuple(catalogue)
    unknown = [name for name in names if name not in catalogue]
    if unknown:
        raise UnknownMachine(
            f"no machine named {', '.join(map(repr, unknown))} "
            f"(machines: {', '.join(catalogue) or 'none'})"
        )
    check_view(options.broker_view)
    profile = selected_profile(options.profile)
    database = database_from(options.database)
    per_machine = options.max_examples or Settings.get_profile(profile).max_examples
    report = ExploreReport(
        profile,
        options.seed,
        {name: MachineTally(name) for name in names},
        broker_view=options.broker_view,
    )
    job = _Job(
        profile,
        options.failures_dir,
        options.keep_going,
        options.shrink_seconds,
        options.broker_view,
    )
    begun = time.monotonic()
    plan = Plan(
        names,
        per_machine,
        options.seed,
        rounds=None if options.minutes else 1,
        deadline=None if options.minutes is None else begun + options.minutes * 60,
    )
    listener.planned(None if options.minutes else plan.batches_a_round)

    def record(result: BatchResult) -> None:
        if result.first_failure_at is not None:
            seconds = result.first_failure_at - begun
            if report.first_failure_seconds is None or seconds < report.first_failure_seconds:
                report.first_failure_seconds = seconds
        tally = report.tallies[result.batch.machine]
        tally.add(result)
        if tally.failed:
            plan.drop(tally.name)
            if not options.keep_going:
                plan.stop()
        listener.finished(result)

    if options.workers <= 1:
        if initializer is not None:
            initializer()
        while (batch := plan.take()) is not None:
            listener.started(batch)
            record(job.run(batch, catalogue[batch.machine], database))
    else:
        worker_setup = (machines, options.database, initializer)
        _run_parallel(job, plan, options.workers, worker_setup, listener.started, record)
    report.seconds = time.monotonic() - begun
    if options.record:
        report.record = RunRecord.of(report, catalogue, workers=options.workers)
        run_store_for(database).save(report.record)
    return report


@attrs.frozen
class _Job:
    """How every batch of one explore run is run; picklable, for the workers."""

    profile: str
    failures_dir: Path
    keep_going: bool = False
    shrink_seconds: float | None = None
    broker_view: str = SIM

    def run(self, batch: Batch, machine_cls: type, database: ExampleDatabase) -> BatchResult:
        profile = Settings.get_profile(self.profile)
        settings = Settings(
            profile,
            max_examples=batch.max_examples,
            database=database,
            derandomize=False,  # the batch seed decides; ci's derandomize would ignore it
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=True,
            # Looking on for other failures after the first would delay the verdict.
            report_multiple_bugs=self.keep_going,
            # Not the explain phase: it only annotates the shrunk example, and tracing the
            # failing example for it costs more than shrinking it (docs/model.md).
            phases=[phase for phase in profile.phases if phase is not Phase.explain],
        )
        STATS.reset()
        found: list[FoundFailure] = []
        error = None
        watch = FailureWatch(shrink_seconds=self.shrink_seconds)
        try:
            failures = run_machine(
                machine_cls, settings, seed=batch.seed, broker_view=self.broker_view, watch=watch
            )
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            for failure in failures:
                artifact = artifacts.Artifact.of(
                    failure,
                    machine=batch.machine,
                    machine_cls=machine_cls,
                    seed=batch.seed,
                    profile=self.profile,
                    stateful_step_count=settings.stateful_step_count,
                    broker_view=self.broker_view,
                )
                path = artifacts.write(artifact, self.failures_dir)
                found.append(
                    FoundFailure(
                        failure.invariant, failure.evidence, path, failure.not_reproducible
                    )
                )
        return BatchResult(
            batch,
            examples=STATS.examples,
            steps=STATS.steps,
            invariant_checks=STATS.invariant_checks,
            rules=Counter(STATS.rules),
            failures=tuple(found),
            error=error,
            checks=Counter(STATS.checks),
            coverage=Counter(STATS.coverage),
            fault_kinds=frozenset(STATS.fault_kinds),
            first_failure_at=watch.first_failure_at,
        )


# ---------------------------------------------------------------- worker processes

# Set once in each worker process by _start_worker.
_worker_catalogue: Machines = {}
_worker_database: ExampleDatabase | None = None


def _start_worker(
    machines: Machines | None,
    database_spec: str | None,
    initializer: Callable[[], object] | None,
) -> None:
    global _worker_catalogue, _worker_database
    if initializer is not None:
        initializer()
    _worker_catalogue = machine_catalogue(machines)
    _worker_database = database_from(database_spec)


def _run_in_worker(job: _Job, batch: Batch) -> BatchResult:
    assert _worker_database is not None, "_start_worker did not run"
    return job.run(batch, _worker_catalogue[batch.machine], _worker_database)


def _run_parallel(
    job: _Job,
    plan: Plan,
    workers: int,
    worker_setup: tuple,
    started: Callable[[Batch], object],
    record: Callable[[BatchResult], None],
) -> None:
    # spawn, not fork: a forked child would inherit the parent's threads, event loops and
    # Hypothesis state mid-flight.
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=worker_setup,
    )
    running: dict[Future[BatchResult], Batch] = {}
    try:
        while True:
            # Taken only when a worker is free, so a machine that failed meanwhile gets no
            # new batch.
            while len(running) < workers:
                batch = plan.take(busy={b.machine for b in running.values()})
                if batch is None:
                    break
                started(batch)
                running[pool.submit(_run_in_worker, job, batch)] = batch
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                del running[future]
                record(future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
