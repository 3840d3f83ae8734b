"""Planted bugs against an older checker: does the bug slip past it, and does today's catch it?

    .venv/bin/python benchmarks/old_checker.py [--ref REF] [--seeds S S S] [--dev-seed S]
        [--dev-examples N] [--new-seeds S ...] [--new-dev] [--keep] [BUG ...]

Default REF is 7e0db86, main just before issue 11's precision invariants; default BUGs are
the in-process bugs of tests/planted_bugs.py (machine other than "process") that REF's
catalogue does not have. For each bug, and for each checker — REF's (a throwaway
`git worktree` in a scratch directory, removed at the end) and this tree's — it runs
`python -m tests.plant_cli BUG explore ...` in a subprocess: every machine, profile `ci`, on
each of --seeds, then profile `dev` with --dev-examples examples per machine on --dev-seed.
The new checker gets the dev run only with --new-dev: its ci runs already show the catch, and
its dev run mostly shrinks the same failure again on every machine (13 minutes for one bug
on the loaded 2-core machine); the larger budget is there to give the old checker every
chance. --new-seeds gives the new checker fewer ci seeds, for the same reason.
Each run has its own example database (SOLAT_CHAOS_DB) and failures directory, both scratch.

The bug itself always comes from THIS tree's tests/planted_bugs.py; only `solat_chaos` differs.
The subprocess's PYTHONPATH puts the checker's `src` first and this tree's root after it (for
`tests`); the child checks that `solat_chaos` was imported from that `src` before running.

The catalogue names invariants (Bug.invariant, a label) that REF's invariants module may not
define, and it reads them when it is imported. For the old checker the child gives REF's
module those missing names as plain strings (each invariant's value is its own name) before
importing the catalogue. They are labels only: what REF checks and reports is its own
`invariants.ALL`, which is untouched; the child lists the names it added. A bug whose
monkeypatch names something REF's core does not have is reported "not applicable", not run.
A REF without broker views (`model.views`) gets the view labels (`SIM`, `REST`) the same way.

Ends with a table: per bug, the old checker's exit codes (ci seeds, then dev) and the
invariants it found, and the same for the new checker with each invariant's machine and
the shrunk counterexample's step count (the engine's start, the invariant checks and the
heal phase not counted, as in tests/stateful/test_catches_planted_bugs.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REF = "7e0db86"
NOT_APPLICABLE = 3  # the child's exit status when the bug cannot be planted in that core
_CATALOGUE_ENTRY = re.compile(r'Bug\(\s*"(\w+)"')
_INVARIANT_LABEL = re.compile(r"\binvariants\.([A-Z][A-Z_]+)\b")


def child(bug: str, src: str, argv: list[str]) -> None:
    """In the subprocess: check the import, plant `bug`, run `solat-chaos argv` through
    tests.plant_cli (exactly as a person would), and exit with its status."""
    import solat_chaos

    imported = Path(solat_chaos.__file__).resolve()
    if not imported.is_relative_to(Path(src).resolve()):
        sys.exit(f"solat_chaos imported from {imported}, not from {src}")
    print(f"solat_chaos from {imported}", file=sys.stderr)

    from solat_chaos.model import invariants

    catalogue = (REPO / "tests" / "planted_bugs.py").read_text()
    missing = sorted(
        name for name in set(_INVARIANT_LABEL.findall(catalogue)) if not hasattr(invariants, name)
    )
    for name in missing:
        setattr(invariants, name, name)
    if missing:
        print(f"labels added to this checker's invariants: {', '.join(missing)}", file=sys.stderr)
    if importlib.util.find_spec("solat_chaos.model.views") is None:
        # A checker from before the broker views: the catalogue's view labels, nothing more
        # (such a checker runs every machine on the sim port).
        views = types.ModuleType("solat_chaos.model.views")
        views.SIM, views.REST = "sim", "rest"
        sys.modules[views.__name__] = views
        print("labels added for the broker views this checker lacks", file=sys.stderr)

    try:
        from tests.planted_bugs import planted

        with planted(bug):
            pass
    except (AttributeError, ImportError) as e:
        print(f"not applicable: {type(e).__name__}: {e}")
        sys.exit(NOT_APPLICABLE)
    sys.argv = ["tests.plant_cli", bug, *argv]
    runpy.run_module("tests.plant_cli", run_name="__main__", alter_sys=True)


def run(bug: str, src: Path, argv: list[str], scratch: Path) -> dict:
    """One explore run in a subprocess; its exit status, output and artifacts."""
    scratch.mkdir(parents=True)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(src), str(REPO)]),
        SOLAT_CHAOS_DB=str(scratch / "db"),
    )
    env.pop("SOLAT_CHAOS_PROFILE", None)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", bug, str(src)]
    failures = scratch / "failures"
    done = subprocess.run(
        [*command, *argv, "--failures-dir", str(failures)],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    (scratch / "stdout").write_text(done.stdout)
    (scratch / "stderr").write_text(done.stderr)
    found = [json.loads(path.read_text()) for path in sorted(failures.glob("*.json"))]
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr, "found": found}


def shrunk_steps(steps: str) -> int:
    from tests.stateful.test_catches_planted_bugs import NOT_STEPS, STEP

    return sum(
        1
        for line in steps.splitlines()
        if (match := STEP.match(line)) and match.group(2) not in NOT_STEPS
    )


def runs_for(args: argparse.Namespace, checker: str) -> list[tuple[str, list[str]]]:
    seeds = args.new_seeds if checker == "new" and args.new_seeds else args.seeds
    runs = [(f"ci seed {seed}", ["explore", "--seed", str(seed)]) for seed in seeds]
    if checker == "old" or args.new_dev:
        dev = ["--profile", "dev", "--max-examples", str(args.dev_examples)]
        runs.append((f"dev seed {args.dev_seed}", ["explore", "--seed", str(args.dev_seed), *dev]))
    return runs


def checker_cell(results: list[dict], with_steps: bool) -> str:
    """'exit ci 0,0,0 dev 0; none' or 'exit ci 1,1,1; INVARIANT (steps: machine 3, ...)':
    the exit codes of the ci runs and the dev run, then what their artifacts found."""
    rcs = [str(result["rc"]) for result in results]
    for result in results:
        if result["rc"] == NOT_APPLICABLE:
            return result["stdout"].strip()
        if result["rc"] not in (0, 1):
            tail = (result["stderr"].strip().splitlines() or ["no output"])[-1]
            return f"exit {','.join(rcs)}: could not run: {tail}"
    steps: dict[str, dict[str, list[int]]] = {}
    for result in results:
        for artifact in result["found"]:
            by_machine = steps.setdefault(artifact["invariant"], {})
            by_machine.setdefault(artifact["machine"], []).append(shrunk_steps(artifact["steps"]))
    by_profile: dict[str, list[str]] = {}
    for result in results:
        by_profile.setdefault(result["profile"], []).append(str(result["rc"]))
    codes = "exit " + " ".join(f"{p} {','.join(rc)}" for p, rc in by_profile.items())
    if not steps:
        return f"{codes}; none"
    found = []
    for invariant, by_machine in sorted(steps.items()):
        counts = ", ".join(
            f"{machine} {min(n)}" + (f"-{max(n)}" if max(n) != min(n) else "")
            for machine, n in sorted(by_machine.items())
        )
        found.append(f"{invariant} (steps: {counts})" if with_steps else invariant)
    return f"{codes}; {'; '.join(found)}"


def default_bugs(ref: str) -> list[str]:
    from tests.planted_bugs import BUGS

    old = git("show", f"{ref}:tests/planted_bugs.py")
    known = set(_CATALOGUE_ENTRY.findall(old))
    return [name for name, bug in BUGS.items() if bug.machine != "process" and name not in known]


def git(*argv: str) -> str:
    return subprocess.run(
        ["git", *argv], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", metavar="BUG", help="default: the new in-process bugs")
    parser.add_argument("--ref", default=DEFAULT_REF, help="the old checker's commit")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="ci runs")
    parser.add_argument("--dev-seed", type=int, default=1)
    parser.add_argument("--dev-examples", type=int, default=200, help="per machine")
    parser.add_argument("--new-seeds", type=int, nargs="+", help="default: --seeds")
    parser.add_argument("--new-dev", action="store_true", help="the dev run for the new one too")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.planted_bugs import BUGS

    bugs = args.bugs or default_bugs(args.ref)
    unknown = [bug for bug in bugs if bug not in BUGS]
    if unknown:
        parser.error(f"unknown bug(s) {', '.join(unknown)}; one of: {', '.join(BUGS)}")
    commit = git("rev-parse", "--short", args.ref).strip()
    scratch = Path(tempfile.mkdtemp(prefix="old_checker-"))
    old_tree = scratch / "old"
    git("worktree", "add", "--detach", str(old_tree), args.ref)
    try:
        rows = []
        for bug in bugs:
            cells = []
            for label, src in (("old", old_tree / "src"), ("new", REPO / "src")):
                results = []
                for name, argv in runs_for(args, label):
                    result = run(bug, src, argv, scratch / bug / label / name.replace(" ", "-"))
                    print(f"{bug}: {label} checker, {name}: exit {result['rc']}", flush=True)
                    results.append({**result, "profile": name.split()[0]})
                    if result["rc"] == NOT_APPLICABLE:
                        break
                cells.append(checker_cell(results, with_steps=label == "new"))
            rows.append((bug, BUGS[bug].invariant, *cells))
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
    finally:
        git("worktree", "remove", "--force", str(old_tree))
        if not args.keep:
            shutil.rmtree(scratch)
    old_runs, new_runs = (", ".join(name for name, _ in runs_for(args, c)) for c in ("old", "new"))
    print(f"\nold checker: {args.ref} ({commit}), runs: {old_runs}")
    print(f"new checker: this tree, runs: {new_runs}")
    print("| bug | invariant it breaks | old checker | new checker |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        bug, src, *argv = sys.argv[2:]
        child(bug, src, argv)
    else:
        main()
