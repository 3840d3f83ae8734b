"""The morning after a nightly run, on the real machines with a planted bug: the report shows
the verdict, the failure and the coverage heatmap in a real browser; the failure becomes a
pytest file that fails while the bug is there and passes once it is gone."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import attrs
import pytest

from solat_chaos.cli import main
from solat_chaos.model.invariants import AUDIT_BEFORE_BROKER
from tests.pytest_process import run_pytest

from ..browser import chromium, dump_dom, screenshot
from ..planted_bugs import planted

pytestmark = [pytest.mark.chaos, pytest.mark.stateful]

BUG = "broker_before_intent"


@attrs.frozen
class Night:
    database: Path
    artifact: Path
    report: Path


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    """One explore run of the tier-1 machine with a planted bug, ending with its report."""
    tmp = tmp_path_factory.mktemp("night")
    database, report = tmp / "examples", tmp / "report.html"
    with pytest.MonkeyPatch.context() as mp, planted(BUG):
        mp.setenv("SOLAT_CHAOS_DB", str(database))
        status = main(
            ["explore", "--machine", "disk", "--max-examples", "100", "--seed", "3",
             "--failures-dir", str(tmp / "failures"), "--report", str(report)]
        )  # fmt: skip
    assert status == 1
    (artifact,) = (tmp / "failures").glob(f"{AUDIT_BEFORE_BROKER}-*.json")
    return Night(database, artifact, report)


def test_the_report_in_a_browser_shows_verdict_failure_and_heatmap(
    night: Night, tmp_path: Path
) -> None:
    chromium()
    dom = dump_dom(night.report.as_uri())
    verdict = dom[dom.index('id="verdict"') : dom.index("</section>")]
    assert "NOT safe for LIVE" in verdict and "tier 1 failed: machine disk" in verdict
    failures = dom[dom.index('id="failures"') :]
    assert AUDIT_BEFORE_BROKER in failures and f"solat-chaos replay {night.artifact}" in failures
    assert "state.submit_order(" in failures
    heatmap = dom[dom.index('id="heatmap"') : dom.index('id="invariants"')]
    assert "submit_order" in heatmap and "disk:fsync" in heatmap
    assert 'class="blind"' in heatmap
    assert "<svg" in dom[dom.index('id="history"') :]
    picture = screenshot(night.report.as_uri(), tmp_path / "report.png")
    assert picture.stat().st_size > 10_000


def test_report_command_reads_the_records(night: Night, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(night.database))
    out = tmp_path / "again.html"
    assert main(["report", "--out", str(out)]) == 1  # not safe for LIVE
    assert AUDIT_BEFORE_BROKER in out.read_text()


def test_a_failure_becomes_a_test_that_fails_until_the_bug_is_fixed(
    night: Night, tmp_path: Path
) -> None:
    fixed, buggy = tmp_path / "fixed", tmp_path / "buggy"
    assert main(["replay", str(night.artifact), "--write-test", str(fixed)]) == 0
    (written,) = fixed.glob("test_*.py")
    source = written.read_text()
    recorded = json.loads(night.artifact.read_text())
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert f"invariant: {AUDIT_BEFORE_BROKER}" in docstring
    assert f"seed: {recorded['seed']}" in docstring
    assert f"commit: {recorded['git_commit']}" in docstring
    assert "hypothesis" not in source.replace(docstring, "")  # nothing generated

    buggy.mkdir()
    shutil.copy(written, buggy)
    (buggy / "conftest.py").write_text(f"from tests.planted_bugs import plant\n\nplant({BUG!r})\n")
    with_bug = run_pytest(buggy, ".")
    assert with_bug.returncode == 1, with_bug.stdout + with_bug.stderr
    assert f"InvariantViolation: {AUDIT_BEFORE_BROKER}" in with_bug.stdout

    once_fixed = run_pytest(fixed, ".")
    assert once_fixed.returncode == 0, once_fixed.stdout + once_fixed.stderr
    assert "1 passed" in once_fixed.stdout
