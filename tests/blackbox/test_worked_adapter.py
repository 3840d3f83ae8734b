"""The worked adapter of docs/engine-contract.md, run as a reader would run it: its code,
taken from the doc, drives another team's engine (`tests.other_engine`, started as
`myengine`) through `solat-chaos explore --target process`: it passes and says what it
cannot check."""

from __future__ import annotations

import os
import re
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from solat_chaos.cli import main
from solat_chaos.model.engine_adapter import load_adapter
from solat_chaos.model.invariants import (
    AUDIT_BEFORE_BROKER,
    FAIL_CLOSED,
    KILL_SWITCH_DURABLE,
    RISK_LIMITS,
    invariant_of,
)
from solat_chaos.model.process_machine import process_machines

from .. import other_engine

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "engine-contract.md"
# Two examples of the machine that activates the switch, kills and restarts the engine.
EXPLORE = ["explore", "--target", "process", "--engine-adapter", "my_adapter:MyEngine"]
SHORT = ["--machine", "process-recovery", "--max-examples", "2", "--seed", "1"]


def worked_adapter() -> str:
    """The python block under "## A worked adapter"."""
    section = CONTRACT.read_text().split("## A worked adapter", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The doc's adapter as an importable module, and `myengine` on PATH."""
    # In a folder named `tests`, which Hypothesis does not count as local code: imported
    # in-process, the adapter would otherwise join the constants pool of every hunt after it
    # (tests/conftest.py).
    adapter_dir = tmp_path / "tests"
    adapter_dir.mkdir()
    (adapter_dir / "my_adapter.py").write_text(worked_adapter())
    monkeypatch.syspath_prepend(str(adapter_dir))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "myengine"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m {other_engine.__name__} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(tmp_path / "db"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_worked_adapter_passes_and_says_what_it_cannot_check(reader, capsys) -> None:
    code = main([*EXPLORE, *SHORT, "--failures-dir", str(reader / "failures")])
    out = capsys.readouterr().out
    assert code == 0, out
    for invariant in (AUDIT_BEFORE_BROKER, FAIL_CLOSED, RISK_LIMITS):
        assert f"NOT CHECKED process-recovery {invariant}" in out, out


def test_the_worked_adapter_finds_an_engine_that_forgets_its_kill_switch(
    reader, monkeypatch
) -> None:
    """Generation only: shrinking a failure of engine processes takes minutes."""
    monkeypatch.setenv(other_engine.FORGETS_KILL_SWITCH, "1")
    machine = process_machines(load_adapter("my_adapter:MyEngine"))["process-recovery"]
    found = settings(
        max_examples=6,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(machine, settings=found)
    assert invariant_of(caught.value) == KILL_SWITCH_DURABLE, str(caught.value)
