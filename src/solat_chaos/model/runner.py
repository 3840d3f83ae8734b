"""Run one state machine once, seeded or replaying one example, and describe its failures.

`run_machine(cls, settings, seed=...)` runs `cls` through Hypothesis'
`run_state_machine_as_test` with the machine class itself as the factory, so the example
database key is the one `cls.TestCase` uses under pytest: explore, pytest and every process
sharing the database see the same stored failures. `seed` and `reproduce` are applied with
Hypothesis' public `@seed` / `@reproduce_failure` decorators, which state machine classes
accept; the class is restored afterwards.

A failure is an exception carrying the `@reproduce_failure` line Hypothesis adds when
`print_blob` is on; it becomes a `Failure` with the invariant name, the evidence, the blob and
the shrunk steps as the code Hypothesis printed. Any other exception (a broken machine
definition, an unreachable database, ...) propagates: nothing was checked. Nothing is printed.

A `FailureWatch` handed in learns when the first example failed (before any shrinking), and
may bound the shrinking by time (`shrink_seconds`) or end it once a failing example is short
enough (`short_enough`, a test over its rules: the planted-bug hunts need at most 8 steps, and
polishing 4 steps into 3 took most of their time). Hypothesis has no public setting for
either. It stops shrinking on its own once its deadline passes, `MAX_SHRINKING_SECONDS` (five
minutes) after the shrink phase began, and then reports the smallest failing example found so
far, blob and steps included, exactly as after a finished shrink; the watch stands in a
deadline of its own for that bound for the run, and restores it. Every example it reports
still fails when replayed: the bound only ends the search for a smaller one.

A failure Hypothesis cannot run again the same way ends the run with a `Flaky` error: the
example failed, then its replay (shrinking, or the final run) drew differently
(FlakyStrategyDefinition) or did not fail (FlakyFailure). Its evidence would be lost, so
`run_machine` watches every example as it ends and keeps the first that failed, before
Hypothesis shrinks or replays it; a Flaky error then becomes a `Failure` marked
`not_reproducible`, carrying what that first run saw (and the rules it ran, in order).
One watch does both.
"""

from __future__ import annotations

import math
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import hypothesis
from hypothesis import reproduce_failure as hypothesis_reproduce_failure
from hypothesis import seed as hypothesis_seed
from hypothesis import settings as Settings
from hypothesis.errors import DidNotReproduce, Flaky, HypothesisException, InvalidArgument
from hypothesis.internal.conjecture import engine as conjecture_engine
from hypothesis.reporting import with_reporter
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from solat_chaos.model.invariants import InvariantViolation, invariant_of
from solat_chaos.model.stats import STATS
from solat_chaos.model.views import SIM, in_broker_view, view_database

_BLOB = re.compile(r"@reproduce_failure\('(?P<version>[^']+)', b'(?P<blob>[^']+)'\)")
_FIRST_STEP = "state = "
_LAST_STEP = "state.teardown()"


@attrs.frozen
class Failure:
    """One failing example, shrunk."""

    invariant: str  # a name from model.invariants; ENGINE_RAISED or MODEL_ERROR for any other
    evidence: str
    message: str  # "<ExceptionType>: <str(exception)>"
    hypothesis_version: str  # the version the blob belongs to
    blob: str  # what @reproduce_failure(hypothesis_version, blob) needs, as ASCII
    steps: str  # the example as Python code, one statement a line
    traceback: str
    # Why Hypothesis could not run the example again the same way (its Flaky error), or None.
    # When set, the evidence is what the first failing run saw, and `blob` may be empty.
    not_reproducible: str | None = None


@attrs.define
class FailureWatch:
    """What a run saw of its failing examples: when the first one ended and what it raised
    (kept before Hypothesis shrinks or replays it, so a failure it then finds flaky still
    leaves its evidence), and the bound on the shrink phase."""

    shrink_seconds: float | None = None  # the shrink phase's bound; None: Hypothesis' own
    # The shrink ends at the first failing example whose rules, in order, pass this test.
    short_enough: Callable[[tuple[str, ...]], bool] | None = None
    first_failure_at: float | None = None  # time.monotonic() the first failing example ended
    error: Exception | None = None  # what the first failing example raised
    rules: tuple[str, ...] = ()  # the rules it ran, in order
    shrunk_enough: bool = False  # a failing example passed `short_enough`

    def saw(self, error: BaseException | None) -> None:
        """An example ended raising `error`. Hypothesis' own exceptions (StopTest, a flaky
        draw, ...) end examples that did not fail; neither do those that ran clean."""
        if not isinstance(error, Exception) or isinstance(error, HypothesisException):
            return
        if self.short_enough is not None and self.short_enough(tuple(STATS.trail or ())):
            self.shrunk_enough = True
        if self.error is not None:
            return
        self.error = error
        self.rules = tuple(STATS.trail or ())
        self.first_failure_at = time.monotonic()

    def failures(self, flaky: Exception) -> list[Failure]:
        """The first failure seen, when Hypothesis ended the run with `flaky`, a Flaky error;
        else none."""
        if self.error is None or not isinstance(flaky, Flaky):
            return []
        first = _failure(self.error, hypothesis.__version__, "", self._steps())
        replayed = "".join(traceback.format_exception(flaky))
        return [
            attrs.evolve(
                first,
                not_reproducible=_why_flaky(flaky),
                traceback=f"{first.traceback}\nThen, running the example again:\n{replayed}",
            )
        ]

    def bounds_the_shrink(self) -> bool:
        return self.shrink_seconds is not None or self.short_enough is not None

    def _steps(self) -> str:
        lines = ["# The rules the first failing run ran, in order (their arguments unrecorded):"]
        return "\n".join([*lines, *(f"# {rule}" for rule in self.rules)])


class _ShrinkDeadline:
    """Stands in for Hypothesis' `MAX_SHRINKING_SECONDS`, which its engine adds to the clock
    once as the shrink phase begins, then compares with the clock after every example
    (`deadline < now`): here the deadline passes when `seconds` have, or as soon as `watch`
    has seen a failing example short enough."""

    def __init__(self, watch: FailureWatch, seconds: float) -> None:
        self.watch = watch
        self.seconds = seconds
        self.at = math.inf

    def __radd__(self, now: float) -> _ShrinkDeadline:
        self.at = now + self.seconds
        return self

    def __lt__(self, now: float) -> bool:
        return self.watch.shrunk_enough or self.at < now


def run_machine(
    machine_cls: type[RuleBasedStateMachine],
    settings: Settings,
    *,
    seed: int | None = None,
    reproduce: tuple[str, str] | None = None,
    watch: FailureWatch | None = None,
    broker_view: str = SIM,
) -> list[Failure]:
    """Run `machine_cls` once under `settings`; the failures Hypothesis reports (empty when
    every invariant held). An exception with no reproducible example in it (the run itself
    went wrong) is re-raised as it is.

    `reproduce=(hypothesis_version, blob)` runs that one example only: any exception it raises
    is its failure; Hypothesis raises DidNotReproduce when it passes (or no longer fits the
    machine) and InvalidArgument when `hypothesis_version` is not the installed one.

    `broker_view` (`model.views`): the view the machine runs in; a view other than "sim"
    uses the settings' database under that view's keys."""
    decorators = []
    if seed is not None:
        decorators.append(hypothesis_seed(seed))
    if reproduce is not None:
        version, blob = reproduce
        decorators.append(hypothesis_reproduce_failure(version, blob.encode("ascii")))
    # Hypothesis prints the steps of a reproduced example through its reporter; elsewhere it
    # attaches them to the exception. Either way nothing goes to stdout.
    reported: list[str] = []
    watch = watch or FailureWatch()
    if broker_view != SIM:
        settings = Settings(settings, database=view_database(settings.database, broker_view))
    with (
        _decorated(machine_cls, decorators),
        in_broker_view(machine_cls, broker_view),
        _watched(machine_cls, watch),
        with_reporter(reported.append),
    ):
        try:
            run_state_machine_as_test(machine_cls, settings=settings)
        except (DidNotReproduce, InvalidArgument):
            raise
        except Exception as exc:
            if reproduce is not None:
                return [_failure(exc, *reproduce, steps_of(reported))]
            failures = failures_of(exc) or watch.failures(exc)
            if not failures:
                raise
            return failures
    return []


def failures_of(error: BaseException) -> list[Failure]:
    """The failures in what a Hypothesis run raised, one per distinct bug it reported with a
    `@reproduce_failure` line; empty when it reported none (the run itself went wrong)."""
    if isinstance(error, BaseExceptionGroup) and not isinstance(error, Flaky):
        return [failure for inner in error.exceptions for failure in failures_of(inner)]
    notes = getattr(error, "__notes__", [])
    found = next(filter(None, map(_BLOB.search, notes)), None)
    if found is None:
        return []
    failure = _failure(error, found["version"], found["blob"], steps_of(notes))
    if isinstance(error, Flaky):
        failure = attrs.evolve(failure, not_reproducible=_why_flaky(error))
    return [failure]


def steps_of(lines: list[str]) -> str:
    """The state machine program among Hypothesis' report lines: `state = X()` through
    `state.teardown()`."""
    start = next((i for i, line in enumerate(lines) if line.startswith(_FIRST_STEP)), None)
    if start is None:
        return ""
    end = next((i for i in range(start, len(lines)) if lines[i] == _LAST_STEP), len(lines) - 1)
    return "\n".join(lines[start : end + 1])


def _failure(error: BaseException, version: str, blob: str, steps: str) -> Failure:
    # A flaky failure wraps the exception(s) seen on the first run: name their invariant.
    cause = error.exceptions[0] if isinstance(error, BaseExceptionGroup) else error
    return Failure(
        invariant=invariant_of(cause),
        evidence=_evidence(cause),
        message=f"{type(error).__name__}: {error}",
        hypothesis_version=version,
        blob=blob,
        steps=steps,
        traceback="".join(traceback.format_exception(error)),
    )


def _why_flaky(error: BaseException) -> str:
    """One line: the Flaky error's type and the first line of its message."""
    message = str(error.message if isinstance(error, BaseExceptionGroup) else error)
    return f"{type(error).__name__}: {message.strip().splitlines()[0] if message else ''}"


def _evidence(error: BaseException) -> str:
    if isinstance(error, InvariantViolation):
        return error.evidence
    name = invariant_of(error)
    text = str(error)
    if text.startswith(f"{name}:"):
        return text[len(name) + 1 :].strip()
    return f"{type(error).__name__}: {text}"


@contextmanager
def _watched(machine_cls: type[RuleBasedStateMachine], watch: FailureWatch) -> Iterator[None]:
    """Have `watch` see every example end, and bound the shrink phase by its
    `shrink_seconds`, for the duration. Hypothesis calls `teardown` at the end of every
    example, in a `finally`: an exception a rule or an invariant raised is the one
    propagating through it, and its own is raised in it. The machines' steps
    (`STATS.ran`) record the rules of each example meanwhile."""
    teardown = machine_cls.teardown
    callers = sys.exception()  # an exception the caller is handling is no example's

    def watched_teardown(machine: RuleBasedStateMachine) -> None:
        propagating = sys.exception()
        try:
            teardown(machine)
        except Exception as exc:
            watch.saw(exc)
            raise
        else:
            if propagating is not callers:
                watch.saw(propagating)
        finally:
            if STATS.trail is not None:
                STATS.trail.clear()  # the next example's rules start afresh

    own = vars(machine_cls).get("teardown")  # None: inherited
    bound = conjecture_engine.MAX_SHRINKING_SECONDS
    machine_cls.teardown = watched_teardown  # type: ignore[method-assign]
    if watch.bounds_the_shrink():
        seconds = bound if watch.shrink_seconds is None else watch.shrink_seconds
        deadline = _ShrinkDeadline(watch, seconds)
        conjecture_engine.MAX_SHRINKING_SECONDS = deadline  # type: ignore[assignment]
    STATS.trail = []
    try:
        yield
    finally:
        STATS.trail = None
        conjecture_engine.MAX_SHRINKING_SECONDS = bound
        if own is None:
            del machine_cls.teardown
        else:
            machine_cls.teardown = own  # type: ignore[method-assign]


@contextmanager
def _decorated(machine_cls: type, decorators: list) -> Iterator[None]:
    """Apply class decorators for the duration, then restore the class exactly: the same
    class object is shared with pytest and later runs in this process."""
    before = dict(vars(machine_cls))
    for decorate in decorators:
        decorate(machine_cls)
    try:
        yield
    finally:
        for name in set(vars(machine_cls)) - set(before):
            delattr(machine_cls, name)
        for name, value in before.items():
            if vars(machine_cls).get(name) is not value:
                setattr(machine_cls, name, value)
