"""The report's verdict, coverage and page, from run records written by hand: LIVE is safe
only when tier 1 ran and every invariant held; a rule never run under a fault is a blind
spot; the page is one file that loads nothing."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from solat_chaos.cli import main
from solat_chaos.model.run_record import (
    RUNS_DIR,
    DirectoryRunStore,
    FailureRecord,
    MachineRecord,
    RunRecord,
)
from solat_chaos.model.stats import NO_FAULT
from solat_chaos.report.html import render, write_report
from solat_chaos.report.summary import summarize

FAILURE = FailureRecord(
    invariant="AUDIT_BEFORE_BROKER",
    evidence="broker request #3 arrived with no durable INTENT record",
    artifact="failures/AUDIT_BEFORE_BROKER-abc.json",
    replay_command="solat-chaos replay failures/AUDIT_BEFORE_BROKER-abc.json",
    steps="state = DiskMachine()\nstate.submit_order(size=0.5)\nstate.teardown()",
    seed=42,
)


def machine(name: str, tier: int | None, *failures: FailureRecord, steps: int = 10):
    return MachineRecord(
        name=name,
        tier=tier,
        examples=2,
        steps=steps,
        invariant_checks=5 * steps,
        rules=("submit_order", "crash_and_restart"),
        rule_steps={"submit_order": steps},
        checks={"AUDIT_BEFORE_BROKER": 3 * steps},
        coverage={"submit_order": {NO_FAULT: steps - 1, "disk:full": 1}},
        failures=failures,
        errors=(),
    )


def run(day: int, *machines: MachineRecord) -> RunRecord:
    return RunRecord(
        run_id=f"202612{day:02d}T010000Z-{day}",
        created_at=f"2026-12-{day:02d}T01:00:00+00:00",
        profile="nightly",
        seed=day,
        workers=2,
        seconds=60.0,
        git_commit="abc123",
        solat_chaos_version="0.1.0",
        fault_kinds=("disk:full", "disk:fsync"),
        machines=machines,
    )


def test_live_is_safe_when_tier_1_passed_and_every_invariant_held() -> None:
    verdict = summarize([run(1, machine("disk", 1), machine("broker", 2))], []).verdict
    assert verdict.safe and verdict.reasons == ()


def test_a_failure_anywhere_says_why_not() -> None:
    verdict = summarize([run(1, machine("disk", 1), machine("broker", 2, FAILURE))], []).verdict
    assert not verdict.safe
    assert verdict.reasons == ("AUDIT_BEFORE_BROKER failed on machine broker (1 time(s))",)


def test_a_tier_1_failure_and_a_run_without_tier_1_are_not_safe() -> None:
    tier1_failed = summarize([run(1, machine("disk", 1, FAILURE))], []).verdict
    assert "tier 1 failed: machine disk" in tier1_failed.reasons
    no_tier1 = summarize([run(1, machine("broker", 2))], []).verdict
    assert not no_tier1.safe
    assert no_tier1.reasons == ("no tier-1 machine ran an example in the runs covered",)
    assert not summarize([], []).verdict.safe


def test_a_rule_never_run_under_a_fault_is_a_blind_spot() -> None:
    coverage = summarize([run(1, machine("disk", 1))], []).coverage
    assert coverage.faults == (NO_FAULT, "disk:fsync", "disk:full")
    assert coverage.rules == ("crash_and_restart", "submit_order")
    assert coverage.steps == {("submit_order", NO_FAULT): 9, ("submit_order", "disk:full"): 1}
    assert (coverage.cells, coverage.blind_spots) == (6, 4)


def test_the_page_shows_verdict_failure_heatmap_and_history_and_loads_nothing(
    tmp_path: Path,
) -> None:
    records = [run(day, machine("disk", 1, steps=10 + day)) for day in range(1, 4)]
    records.append(run(4, machine("disk", 1, FAILURE)))
    write_report(tmp_path / "report.html", records[-1:], records)
    page = (tmp_path / "report.html").read_text()
    assert "NOT safe for LIVE" in page and "tier 1 failed: machine disk" in page
    assert FAILURE.evidence in page and FAILURE.replay_command in page
    assert "state.submit_order(size=0.5)" in page
    assert page.count('class="blind"') == 4
    assert "blind spot: crash_and_restart never ran while disk:full" in page
    history = page[page.index('id="history"') :]
    assert "<svg" in history and "</svg>" in history
    # One file: no script, stylesheet, image or font fetched from anywhere.
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)
    assert "url(" not in page.replace("url(#", "")


def test_the_page_escapes_what_it_shows() -> None:
    hostile = attrs.evolve(FAILURE, evidence="<script>alert(1)</script>")
    page = render(summarize([run(1, machine("disk", 1, hostile))], []))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_report_command_covers_the_newest_runs(tmp_path: Path, monkeypatch) -> None:
    database = tmp_path / "examples"
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(database))
    out = tmp_path / "report.html"
    assert main(["report", "--out", str(out)]) == 1
    assert "no explore run is recorded" in out.read_text()

    store = DirectoryRunStore(database / RUNS_DIR)
    store.save(run(1, machine("disk", 1, FAILURE)))
    store.save(run(2, machine("disk", 1)))
    assert main(["report", "--out", str(out)]) == 0
    assert "SAFE for LIVE</strong>" in out.read_text()
    assert main(["report", "--runs", "2", "--out", str(out)]) == 1
    assert "NOT safe for LIVE" in out.read_text()
