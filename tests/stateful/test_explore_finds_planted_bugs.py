"""The main job on the real machines: with a planted bug `solat-chaos explore` exits non-zero
and writes an artifact, `replay` fails the same way while the bug is there and exits 0 once
it is gone — in fresh processes, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from solat_chaos.cli import main
from solat_chaos.model.invariants import AUDIT_BEFORE_BROKER

from ..planted_bugs import BUGS, planted

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

ROOT = Path(__file__).resolve().parents[2]


def run(database: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SOLAT_CHAOS_DB": str(database)},
    )


def test_explore_finds_a_planted_bug_and_replay_reproduces_it(tmp_path: Path) -> None:
    failures = tmp_path / "failures"
    database = tmp_path / "examples"
    explored = run(
        database,
        "-m", "tests.plant_cli", "kill_switch_not_fsynced", "explore", "--machine", "recovery",
        "--max-examples", "300", "--seed", "7", "--failures-dir", str(failures),
    )  # fmt: skip
    assert explored.returncode == 1, explored.stdout + explored.stderr
    # The bug leaves both operator switches (the kill switch, the halt) unsynced: explore
    # reports whichever it meets first.
    (artifact,) = failures.glob("*.json")
    recorded = json.loads(artifact.read_text())
    invariant = recorded["invariant"]
    assert invariant in BUGS["kill_switch_not_fsynced"].invariants
    assert recorded["machine"] == "recovery"
    assert "crash_and_restart" in recorded["steps"]

    still_failing = run(
        database, "-m", "tests.plant_cli", "kill_switch_not_fsynced", "replay", str(artifact)
    )
    assert still_failing.returncode == 1, still_failing.stdout + still_failing.stderr
    assert invariant in still_failing.stdout + still_failing.stderr

    fixed = run(database, "-m", "solat_chaos.cli", "replay", str(artifact))
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


def test_explore_in_process_with_a_planted_bug(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(tmp_path / "examples"))
    with planted("broker_before_intent"):
        status = main(
            ["explore", "--machine", "disk", "--max-examples", "100", "--seed", "3",
             "--failures-dir", str(tmp_path / "failures")]
        )  # fmt: skip
        (artifact,) = (tmp_path / "failures").glob(f"{AUDIT_BEFORE_BROKER}-*.json")
        assert status == 1
        assert main(["replay", str(artifact)]) == 1
    assert main(["replay", str(artifact)]) == 0
