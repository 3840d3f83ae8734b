"""The Hypothesis profiles and the example database: budgets, selection, SOLAT_CHAOS_DB, and
the pytest plugin choosing them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import InvalidArgument

from solat_chaos.chaos.profiles import (
    DEFAULT_DB_DIR,
    PROFILES,
    DatabaseError,
    database_from,
    selected_profile,
)
from tests.pytest_process import run_pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOLAT_CHAOS_PROFILE", raising=False)
    monkeypatch.delenv("SOLAT_CHAOS_DB", raising=False)


def test_the_budgets_rise_from_ci_to_nightly() -> None:
    ci, dev, nightly = (settings.get_profile(name) for name in ("ci", "dev", "nightly"))
    assert ci.max_examples < dev.max_examples < nightly.max_examples
    assert ci.stateful_step_count < dev.stateful_step_count < nightly.stateful_step_count
    assert nightly.deadline is None
    assert ci.derandomize and ci.database is None
    assert all(settings.get_profile(name).print_blob for name in PROFILES)


def test_replay_runs_only_stored_examples_of_any_length() -> None:
    replay = settings.get_profile("replay")
    assert set(replay.phases) == {Phase.explicit, Phase.reuse}
    longest = max(settings.get_profile(name).stateful_step_count for name in PROFILES)
    assert replay.stateful_step_count == longest


def test_profile_chosen_by_option_then_environment_then_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert selected_profile() == "ci"
    monkeypatch.setenv("SOLAT_CHAOS_PROFILE", "nightly")
    assert selected_profile() == "nightly"
    assert selected_profile("dev") == "dev"
    with pytest.raises(InvalidArgument, match="unknown Hypothesis profile 'nope'"):
        selected_profile("nope")


def test_database_is_a_directory_by_default_or_as_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert database_from() == DirectoryBasedExampleDatabase(DEFAULT_DB_DIR)
    monkeypatch.setenv("SOLAT_CHAOS_DB", str(tmp_path))
    assert database_from() == DirectoryBasedExampleDatabase(tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("http://example.invalid/db", "not a directory or a redis:// URL"),
        ("redis://127.0.0.1:notaport/0", "not a valid Redis URL"),
        ("redis://127.0.0.1:1/0", "Redis does not answer"),
    ],
)
def test_a_bad_database_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        database_from(spec)


def test_a_file_is_not_a_database_directory(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(DatabaseError, match="exists and is not a directory"):
        database_from(str(tmp_path / "f"))


# ------------------------------------------------------------------ the pytest plugin

PROBE = """
import os
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

def test_probe():
    assert settings.get_current_profile_name() == os.environ["EXPECT_PROFILE"]
    if "EXPECT_DB" in os.environ:
        assert settings.default.database == DirectoryBasedExampleDatabase(os.environ["EXPECT_DB"])
"""


def pytest_in(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    return run_pytest(tmp_path, *args, timeout=120, **env)


def test_plugin_loads_ci_by_default(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, EXPECT_PROFILE="ci")
    assert done.returncode == 0, done.stdout + done.stderr


def test_plugin_loads_the_environments_profile_on_the_environments_database(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "shared")
    done = pytest_in(
        tmp_path,
        SOLAT_CHAOS_PROFILE="nightly",
        SOLAT_CHAOS_DB=db,
        EXPECT_PROFILE="nightly",
        EXPECT_DB=db,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hypothesis_option_wins_over_the_environment(tmp_path: Path) -> None:
    done = pytest_in(
        tmp_path,
        "--hypothesis-profile",
        "replay",
        SOLAT_CHAOS_PROFILE="nightly",
        EXPECT_PROFILE="replay",
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_plugin_stops_pytest_on_a_bad_database_in_one_line(tmp_path: Path) -> None:
    done = pytest_in(tmp_path, SOLAT_CHAOS_DB="redis://127.0.0.1:1/0", EXPECT_PROFILE="ci")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: SOLAT_CHAOS_DB='redis://127.0.0.1:1/0': Redis does not answer" in done.stderr
    assert "Traceback" not in done.stderr
