"""The chaos suite must be able to fail: each bug planted in the core makes its tier test fail,
and the same test passes on the real core.

Two pytest processes run side by side on the same tier tests: one clean, one with
`tests.tiers.plant_bugs_plugin`, which applies a bug from `tests/planted_bugs.py` (a real
monkeypatch of the core) around its one target test. Not marked `chaos`: it guards the suite
itself, so it runs in `pytest -m "not chaos"` and in the default run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

TIER1 = "tests/tiers/tier1_data_corruption"
TIER2 = "tests/tiers/tier2_state_inconsistency"
TIER3 = "tests/tiers/tier3_operational_blindness"
TIER4 = "tests/tiers/tier4_recovery"

# bug in tests/planted_bugs.py -> the tier test that must catch it
CATCHES = {
    # the three: write-ahead deleted, kill switch without fsync, timeout read as flat
    "broker_before_intent": f"{TIER1}/test_disk_full.py::test_ledger_write_fails__orders_rejected",
    "kill_switch_not_fsynced": (
        f"{TIER4}/test_kill_switch_persistence.py::test_activated_kill_switch_survives_a_power_cut"
    ),
    "timed_out_positions_are_flat": (
        f"{TIER2}/test_reconciliation_failures.py::"
        "test_positions_call_times_out__no_position_closed"
    ),
    # and one for each other tier file that has a planted bug of its kind
    "recovery_drops_after_corrupt_line": (
        f"{TIER1}/test_ledger_corruption.py::test_every_line_after_a_corrupt_one_is_recovered"
    ),
    "partial_close_recorded_as_full": (
        f"{TIER2}/test_partial_close.py::"
        "test_broker_confirms_half_the_close__only_that_size_removed"
    ),
    "duplicate_applied_after_eviction": (
        f"{TIER2}/test_duplicate_fills.py::test_duplicate_of_a_long_forgotten_deal__still_ignored"
    ),
    "balance_not_refreshed_after_fill": (
        f"{TIER2}/test_balance_refresh.py::"
        "test_margin_used_by_a_fill_is_seen_by_the_next_risk_check"
    ),
    "snapshots_never_cleared": (
        f"{TIER4}/test_snapshot_flush.py::test_snapshot_memory_does_not_grow_over_many_fills"
    ),
    # tier 3: the trade stream
    "no_reconcile_after_new_session": (
        f"{TIER3}/test_reconnect_backfill.py::"
        "test_new_session_replaying_less_than_the_gap__backfilled_by_rest"
    ),
    "event_applied_as_delta": (
        f"{TIER3}/test_reconnect_backfill.py::test_duplicated_and_replayed_events_change_nothing"
    ),
    "health_by_connection_flag": (
        f"{TIER3}/test_stale_health.py::"
        "test_keepalives_stop_on_a_connected_session__health_is_not_ok"
    ),
    "openings_allowed_while_blind": (
        f"{TIER3}/test_silent_disconnect.py::"
        "test_silent_stream__no_opening_order_reaches_the_broker"
    ),
}
RUN_TIMEOUT = 120.0


def name_of(nodeid: str) -> str:
    return nodeid.rpartition("::")[2]


def outcomes(junit_xml: Path) -> dict[str, str]:
    """{test name: passed | failed | error | skipped} from a JUnit XML report."""
    results = {}
    for case in ElementTree.parse(junit_xml).iter("testcase"):
        kinds = {child.tag for child in case} & {"failure", "error", "skipped"}
        verdict = {"failure": "failed", "error": "error", "skipped": "skipped"}
        results[case.get("name")] = verdict[kinds.pop()] if kinds else "passed"
    return results


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> dict:
    """The outcomes of the target tests in a clean run and in the run with bugs planted."""
    out = tmp_path_factory.mktemp("can_fail")
    plantings = [f"--plant-bug={bug}={name_of(node)}" for bug, node in CATCHES.items()]
    commands = {
        "clean": [],
        "planted": ["-p", "tests.tiers.plant_bugs_plugin", *plantings],
    }
    processes = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                f"--junitxml={out / name}.xml",
                *extra,
                *CATCHES.values(),
            ],
            cwd=pytestconfig.rootpath,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, extra in commands.items()
    }
    results = {}
    for name, process in processes.items():
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
        assert (out / f"{name}.xml").exists(), f"the {name} run did not report:\n{output}"
        results[name] = outcomes(out / f"{name}.xml")
        results[f"{name} output"] = output
    return results


def test_every_planted_bug_makes_its_tier_test_fail(runs: dict) -> None:
    """One test for every bug, not one a bug: the two pytest runs are a module fixture, and
    xdist's work stealing set it up again on each worker that took a test of this module
    (three times a default run: 60 s)."""
    not_clean = [node for node in CATCHES.values() if runs["clean"][name_of(node)] != "passed"]
    assert not not_clean, f"failing on the real core: {not_clean}\n{runs['clean output']}"
    missed = [bug for bug, node in CATCHES.items() if runs["planted"][name_of(node)] != "failed"]
    assert not missed, f"planted and not caught: {missed}\n{runs['planted output']}"
