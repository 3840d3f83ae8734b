"""explore and replay, on the toy machines: a planted bug is found, written as an artifact and
replayed exactly until it is fixed; a correct machine passes; seeds and workers behave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import hypothesis
import pytest
from hypothesis import settings
from hypothesis.errors import FlakyStrategyDefinition

import solat_chaos
from solat_chaos import cli
from solat_chaos.model import artifacts
from solat_chaos.model.explore import BATCH_EXAMPLES, ExploreOptions, Plan, explore
from solat_chaos.model.invariants import RISK_LIMITS, STREAM_GAPLESS, InvariantViolation
from solat_chaos.model.runner import FailureWatch, _watched, run_machine
from solat_chaos.model.stats import STATS
from tests.unit import toy_machines
from tests.unit.toy_machines import (
    TOY_MACHINES,
    ToyBankMachine,
    ToyDriftingMachine,
    ToyQueueMachine,
    plant_overdraft_bug,
)

REPO = Path(__file__).resolve().parents[2]
SEED = "20251125"


@pytest.fixture(autouse=True)
def own_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh example database per test: no test replays another's failures."""
    db = tmp_path / "db"
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(db))
    monkeypatch.delenv("SOLAT_CHAOS_PROFILE", raising=False)
    return db


@pytest.fixture
def bug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toy_machines, "OVERDRAFT_BUG", True)


def run_cli(*argv: str) -> int:
    return cli.main(list(argv), machines=TOY_MACHINES)


def explore_toys(failures: Path, *extra: str) -> int:
    return run_cli("explore", "--seed", SEED, "--failures-dir", str(failures), *extra)


def the_artifact(failures: Path) -> Path:
    (path,) = failures.glob("*.json")
    return path


@pytest.fixture
def found(bug: None, tmp_path: Path) -> Path:
    """The artifact explore writes for the planted bug."""
    assert explore_toys(tmp_path / "failures", "--machine", "bank") == cli.FAILED
    return the_artifact(tmp_path / "failures")


# ------------------------------------------------------------------------ explore


def test_explore_finds_the_planted_bug_and_writes_an_artifact(
    bug: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert explore_toys(tmp_path / "failures") == cli.FAILED

    path = the_artifact(tmp_path / "failures")
    assert path.name.startswith(f"{RISK_LIMITS}-")
    data = json.loads(path.read_text())
    assert data["invariant"] == RISK_LIMITS
    assert data["machine"] == "bank"
    assert data["machine_class"] == "tests.unit.toy_machines:ToyBankMachine"
    assert isinstance(data["seed"], int)
    assert data["profile"] == "ci"
    assert data["hypothesis_version"] == hypothesis.__version__
    assert data["solat_chaos_version"] == solat_chaos.__version__
    assert data["git_commit"] == artifacts.current_commit()
    assert data["reproduce_decorator"] == (
        f"@reproduce_failure({hypothesis.__version__!r}, {data['reproduce_blob'].encode()!r})"
    )
    # Shrunk: one withdrawal from an empty account, as code.
    assert data["steps"].splitlines()[0] == "state = ToyBankMachine()"
    assert "state.withdraw(amount=1)" in data["steps"].splitlines()
    assert data["steps"].splitlines()[-1] == "state.teardown()"
    assert "below 0" in data["evidence"]

    out = capsys.readouterr().out
    assert f"solat-chaos replay {path}" in out
    assert "bank" in out and "queue" in out


def test_a_failure_hypothesis_cannot_replay_leaves_its_evidence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hypothesis replays the failing example to shrink it, draws differently, and ends the
    run with a Flaky error: the failure is still reported, with what its first run saw."""
    failures = tmp_path / "failures"
    drifting = {"drifting": ToyDriftingMachine}
    argv = ["explore", "--seed", SEED, "--failures-dir", str(failures)]
    assert cli.main(argv, machines=drifting) == cli.FAILED

    path = the_artifact(failures)
    data = json.loads(path.read_text())
    assert data["invariant"] == RISK_LIMITS
    assert data["evidence"].startswith("drifted to ")
    assert data["not_reproducible"].startswith("Flaky")
    assert data["reproduce_blob"] == data["reproduce_decorator"] == ""
    assert data["steps"].splitlines()[1:] == ["# drift"]
    # The first run's exception, then what Hypothesis raised when it ran the example again.
    assert "InvariantViolation" in data["traceback"]
    assert "Then, running the example again:" in data["traceback"]
    out = capsys.readouterr().out
    assert f"FAILED drifting {RISK_LIMITS}: NOT REPRODUCIBLE (Flaky" in out
    assert f"evidence: {data['evidence']}" in out
    assert f"what its first run saw is in {path}" in out

    assert cli.main(["replay", str(path)], machines=drifting) == cli.CANNOT_RUN
    assert "was not reproducible when it was found" in capsys.readouterr().out


def test_the_first_failure_is_the_first_example_that_raised() -> None:
    """Seen as each example's teardown runs: an exception propagating through it, not one
    the caller of the run is handling; then reported for a bare FlakyStrategyDefinition."""

    class Watched(ToyQueueMachine):
        pass

    first = FailureWatch()
    try:
        raise KeyError("the caller's own")
    except KeyError:
        with _watched(Watched, first):
            Watched().teardown()  # an example that ran clean
            assert first.failures(FlakyStrategyDefinition("drew differently")) == []
            with pytest.raises(InvariantViolation):
                try:
                    raise InvariantViolation(STREAM_GAPLESS, "received [1]")
                finally:
                    Watched().teardown()
    assert first.failures(ValueError("not a Flaky error")) == []
    (failure,) = first.failures(FlakyStrategyDefinition("drew differently"))
    assert (failure.invariant, failure.evidence) == (STREAM_GAPLESS, "received [1]")
    assert failure.not_reproducible == "FlakyStrategyDefinition: drew differently"


def test_a_run_record_says_which_failures_are_not_reproducible(tmp_path: Path) -> None:
    report = explore(
        ExploreOptions(seed=1, max_examples=5, failures_dir=tmp_path),
        machines={"drifting": ToyDriftingMachine},
    )
    assert report.record is not None
    ((failure,),) = [machine.failures for machine in report.record.machines]
    assert failure.not_reproducible is not None
    assert failure.invariant == RISK_LIMITS


def test_explore_exits_0_when_every_invariant_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert explore_toys(tmp_path / "failures") == cli.OK
    assert not (tmp_path / "failures").exists()
    assert "every invariant held" in capsys.readouterr().out


def test_explore_counts_what_the_machines_report(tmp_path: Path) -> None:
    report = explore(
        ExploreOptions(seed=1, max_examples=30, failures_dir=tmp_path), machines=TOY_MACHINES
    )
    assert report.ok
    for tally in report.tallies.values():
        assert tally.batches == -(-30 // BATCH_EXAMPLES)  # 30 examples in full batches
        assert tally.examples >= 30
        assert tally.steps > tally.examples
        # An invariant check after construction and after every step.
        assert tally.invariant_checks == tally.examples + tally.steps
    assert set(report.tallies["bank"].rules) == {"deposit", "withdraw"}


def test_the_same_seed_explores_the_same_examples(bug: None, tmp_path: Path) -> None:
    # Separate databases: the second run must not just replay the first one's failure.
    runs = []
    for name in ("first", "second"):
        options = ExploreOptions(
            seed=7, failures_dir=tmp_path / name, database=str(tmp_path / name / "db")
        )
        report = explore(options, machines=TOY_MACHINES)
        runs.append((report, artifacts.read(the_artifact(tmp_path / name))))
    (first, first_artifact), (second, second_artifact) = runs
    assert first_artifact.file_name == second_artifact.file_name
    assert first_artifact.seed == second_artifact.seed
    assert first_artifact.reproduce_blob == second_artifact.reproduce_blob
    assert first.tallies["queue"].steps == second.tallies["queue"].steps


def test_parallel_runs_with_one_seed_explore_the_same_examples(tmp_path: Path) -> None:
    def run(workers: int, name: str):
        options = ExploreOptions(
            seed=3, max_examples=50, workers=workers, database=str(tmp_path / name)
        )
        report = explore(options, machines=TOY_MACHINES)
        assert report.ok
        return {name: (t.batches, t.examples, t.steps) for name, t in report.tallies.items()}

    in_process, two, three = run(1, "one"), run(2, "two"), run(3, "three")
    # The plan (batches, their seeds) is the same at any parallelism, and spawned workers
    # generate alike whichever batches they get. (This process may generate a little
    # differently: Hypothesis also draws on constants from the modules it has loaded.)
    assert two == three
    assert {name: batches for name, (batches, _, _) in in_process.items()} == {
        name: batches for name, (batches, _, _) in two.items()
    }


def test_workers_run_the_initializer_that_plants_the_bug(tmp_path: Path) -> None:
    report = explore(
        ExploreOptions(seed=3, workers=2, failures_dir=tmp_path),
        machines=TOY_MACHINES,
        initializer=plant_overdraft_bug,
    )
    assert not report.ok
    assert {f.invariant for f in report.tallies["bank"].failures.values()} == {RISK_LIMITS}
    assert not report.tallies["queue"].failed
    # Spawned: this process never had the bug.
    assert toy_machines.OVERDRAFT_BUG is False


def test_minutes_bound_the_run_and_start_at_least_one_batch(tmp_path: Path) -> None:
    report = explore(
        ExploreOptions(seed=5, minutes=1e-9, failures_dir=tmp_path), machines=TOY_MACHINES
    )
    assert report.ok
    assert sum(tally.batches for tally in report.tallies.values()) == 1


def test_explore_leaves_the_machine_class_as_it_found_it(bug: None, tmp_path: Path) -> None:
    before = set(vars(ToyBankMachine))
    explore_toys(tmp_path / "failures", "--machine", "bank")
    assert set(vars(ToyBankMachine)) == before


def test_the_plan_goes_round_robin_and_prefers_machines_no_worker_is_running() -> None:
    plan = Plan(("a", "b"), 2 * BATCH_EXAMPLES + 1, 9)
    assert plan.batches_a_round == 6
    first = plan.take()
    assert (first.machine, first.index, first.max_examples) == ("a", 0, BATCH_EXAMPLES)
    second = plan.take(busy={"a"})
    assert (second.machine, second.index) == ("b", 0)
    # Only a's and b's batches left, both busy: take the next anyway rather than idle.
    third = plan.take(busy={"a", "b"})
    assert (third.machine, third.index) == ("a", 1)
    assert len({first.seed, second.seed, third.seed}) == 3


def test_the_plan_drops_failed_machines_and_ends() -> None:
    plan = Plan(("a", "b"), 2 * BATCH_EXAMPLES, 9, rounds=None)
    plan.drop("a")
    assert {plan.take().machine for _ in range(5)} == {"b"}  # rounds go on without a
    plan.drop("b")
    assert plan.take() is None


def test_the_plan_stops_every_machine() -> None:
    plan = Plan(("a", "b"), 2 * BATCH_EXAMPLES, 9, rounds=None)
    plan.take()
    plan.stop()
    assert plan.take() is None


def test_explore_stops_at_the_first_failure_and_says_when_it_was_seen(
    bug: None, tmp_path: Path
) -> None:
    # The plan: bank's first batch, queue's, bank's second, ... Bank fails at once.
    report = explore(ExploreOptions(seed=3, failures_dir=tmp_path), machines=TOY_MACHINES)
    assert report.tallies["bank"].failed
    assert report.tallies["queue"].batches == 0
    assert report.first_failure_seconds is not None
    assert 0 < report.first_failure_seconds <= report.seconds
    assert report.record is not None
    assert report.record.first_failure_seconds == round(report.first_failure_seconds, 3)


def test_with_keep_going_explore_runs_the_other_machines_after_a_failure(
    bug: None, tmp_path: Path
) -> None:
    options = ExploreOptions(seed=3, failures_dir=tmp_path, keep_going=True)
    report = explore(options, machines=TOY_MACHINES)
    assert report.tallies["bank"].failed
    assert report.tallies["queue"].batches == -(-50 // BATCH_EXAMPLES)  # ci: 50 examples


def test_no_first_failure_when_every_invariant_holds(tmp_path: Path) -> None:
    report = explore(ExploreOptions(seed=3, failures_dir=tmp_path), machines=TOY_MACHINES)
    assert report.ok and report.first_failure_seconds is None


def test_a_shrink_cut_short_still_gives_a_replayable_example(
    bug: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def found(shrink_seconds: float | None, name: str) -> artifacts.Artifact:
        options = ExploreOptions(
            seed=3,
            machines=("bank",),
            failures_dir=tmp_path / name,
            database=str(tmp_path / name / "db"),
            shrink_seconds=shrink_seconds,
        )
        assert not explore(options, machines=TOY_MACHINES).ok
        return artifacts.read(the_artifact(tmp_path / name))

    shrunk, cut_short = found(None, "shrunk"), found(0.0, "cut")
    # Shrunk to its end: the smallest overdraft. Cut short at once: the example first found.
    assert "state.withdraw(amount=1)" in shrunk.steps.splitlines()
    assert cut_short.steps != shrunk.steps
    assert run_cli("replay", str(the_artifact(tmp_path / "cut"))) == cli.FAILED
    assert f"FAILS {RISK_LIMITS}" in capsys.readouterr().out
    # Hypothesis' own bound is back for every later run.
    from hypothesis.internal.conjecture import engine

    assert engine.MAX_SHRINKING_SECONDS == 300


def test_a_shrink_ends_at_the_first_failing_example_short_enough(bug: None) -> None:
    """`short_enough` ends the shrink at the first failing example it accepts: a run that
    needs at most 3 steps runs fewer examples than a full shrink, and reports a failing
    example of at most 3 steps; one that accepts nothing shrinks as far as Hypothesis does."""
    budget = settings(
        max_examples=200, stateful_step_count=30, database=None, deadline=None, print_blob=True
    )

    def shrunk(short_enough) -> tuple[int, list[str]]:
        STATS.reset()
        watch = FailureWatch(short_enough=short_enough)
        (failure,) = run_machine(ToyBankMachine, budget, seed=5, watch=watch)
        assert failure.invariant == RISK_LIMITS
        rules = ("state.deposit(", "state.withdraw(")
        return STATS.examples, [
            line for line in failure.steps.splitlines() if line.startswith(rules)
        ]

    full_examples, full_steps = shrunk(None)
    never_examples, never_steps = shrunk(lambda rules: False)
    short_examples, short_steps = shrunk(lambda rules: len(rules) <= 3)
    assert full_steps == never_steps == ["state.withdraw(amount=1)"]
    assert never_examples == full_examples
    assert 0 < len(short_steps) <= 3
    assert short_examples < full_examples
    from hypothesis.internal.conjecture import engine

    assert engine.MAX_SHRINKING_SECONDS == 300


def test_the_plan_ends_at_its_deadline_after_one_batch() -> None:
    plan = Plan(("a",), BATCH_EXAMPLES, 9, rounds=None, deadline=0.0)
    assert plan.take() is not None
    assert plan.take() is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--machine", "nope"], "no machine named 'nope' (machines: bank, queue)"),
        (["--profile", "nope"], "unknown Hypothesis profile 'nope'"),
    ],
)
def test_explore_refuses_bad_options_in_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert explore_toys(tmp_path / "failures", *argv) == cli.CANNOT_RUN
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_explore_refuses_an_unreachable_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOLAT_CHAOS_DB", "redis://127.0.0.1:1/0")
    assert explore_toys(tmp_path / "failures") == cli.CANNOT_RUN
    err = capsys.readouterr().err
    assert "Redis does not answer" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------ replay


def test_replay_fails_with_the_same_invariant_while_the_bug_is_there(
    found: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert run_cli("replay", str(found)) == cli.FAILED
    out = capsys.readouterr().out
    assert f"FAILS {RISK_LIMITS}: balance -1 below 0" in out
    assert "state.withdraw(amount=1)" in out
    assert "warning" not in out


def test_replay_passes_once_the_bug_is_fixed(
    found: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(toy_machines, "OVERDRAFT_BUG", False)
    capsys.readouterr()
    assert run_cli("replay", str(found)) == cli.OK
    assert f"PASSES the example ran to its end and every invariant held ({RISK_LIMITS}" in (
        capsys.readouterr().out
    )


def rewrite(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_replay_from_another_commit_says_so_and_replays(
    found: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rewrite(found, git_commit="0" * 40)
    capsys.readouterr()
    assert run_cli("replay", str(found)) == cli.FAILED
    out = capsys.readouterr().out
    assert f"warning: the artifact was made at commit {'0' * 40}" in out
    assert f"FAILS {RISK_LIMITS}" in out


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hypothesis_version": "0.0.1"}, "pip install hypothesis==0.0.1"),
        ({"machine": "gone"}, "no machine named 'gone'"),
        ({"reproduce_blob": "!!!"}, "the reproduce blob is unusable"),
    ],
)
def test_replay_says_why_it_cannot_replay(
    found: Path, changes: dict, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rewrite(found, **changes)
    capsys.readouterr()
    assert run_cli("replay", str(found)) == cli.CANNOT_RUN
    assert message in capsys.readouterr().out


def test_replay_refuses_a_file_that_is_not_an_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.json").write_text("{}")
    assert run_cli("replay", str(tmp_path / "x.json")) == cli.CANNOT_RUN
    assert "not a solat-chaos failure artifact" in capsys.readouterr().err


# ------------------------------------------------------------------------ as a command


def toy_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "tests.unit.toy_cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_command_explores_and_replays_in_fresh_processes(tmp_path: Path) -> None:
    explored = toy_cli("--bug", "explore", "--seed", SEED, "--workers", "2", cwd=tmp_path)
    assert explored.returncode == cli.FAILED, explored.stderr
    # Two workers may both have been running the bank machine when it failed: one artifact
    # each, both the same bug.
    paths = sorted((tmp_path / "failures").glob("*.json"))
    assert paths and all(path.name.startswith(f"{RISK_LIMITS}-") for path in paths)
    path = paths[0]
    assert f"solat-chaos replay {path.relative_to(tmp_path)}" in explored.stdout

    still = toy_cli("--bug", "replay", str(path), cwd=tmp_path)
    assert still.returncode == cli.FAILED, still.stderr
    assert f"FAILS {RISK_LIMITS}" in still.stdout

    fixed = toy_cli("replay", str(path), cwd=tmp_path)
    assert fixed.returncode == cli.OK, fixed.stderr
    assert "PASSES" in fixed.stdout
