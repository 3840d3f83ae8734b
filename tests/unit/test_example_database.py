"""A failure one process finds with the Redis example database is replayed first by the next.

Needs a real Redis: SOLAT_CHAOS_TEST_REDIS names one (a redis:// URL) that the test may write
to; `.ci/run` starts one on loopback. The test removes the keys it created.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from solat_chaos.model.invariants import RISK_LIMITS
from tests.pytest_process import run_pytest

KEYS = "hypothesis-example:*"  # the key prefix of Hypothesis' RedisExampleDatabase

# The planted bug is applied by this test file; the class body holds a token of this run, so
# its database key (a digest of the class source) is new: no earlier run's failure is in it.
MACHINE_TEST = """
from tests.unit.toy_machines import ToyBankMachine, plant_overdraft_bug

plant_overdraft_bug()


class RedisToyMachine(ToyBankMachine):
    run_token = {token!r}


TestRedisToy = RedisToyMachine.TestCase
"""


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ.get("SOLAT_CHAOS_TEST_REDIS")
    if not url:
        pytest.skip("SOLAT_CHAOS_TEST_REDIS is not set (a redis:// URL; .ci/run starts one)")
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"SOLAT_CHAOS_TEST_REDIS={url} does not answer: {exc}")
    before = set(client.keys(KEYS))
    yield url
    created = set(client.keys(KEYS)) - before
    if created:
        client.delete(*created)
    client.close()


def run_toy(tmp_path: Path, profile: str, database: str) -> subprocess.CompletedProcess[str]:
    return run_pytest(
        tmp_path, "test_redis_toy.py", SOLAT_CHAOS_PROFILE=profile, SOLAT_CHAOS_DB=database
    )


def test_a_failure_found_by_one_process_is_replayed_first_by_another(
    redis_url: str, tmp_path: Path
) -> None:
    (tmp_path / "test_redis_toy.py").write_text(MACHINE_TEST.format(token=secrets.token_hex(8)))

    finder = run_toy(tmp_path, "dev", redis_url)
    assert finder.returncode == pytest.ExitCode.TESTS_FAILED, finder.stdout + finder.stderr
    assert RISK_LIMITS in finder.stdout

    # The replay profile generates nothing: it can only fail on what the database holds.
    replayer = run_toy(tmp_path, "replay", redis_url)
    assert replayer.returncode == pytest.ExitCode.TESTS_FAILED, replayer.stdout
    assert RISK_LIMITS in replayer.stdout
    assert "state.withdraw(amount=1)" in replayer.stdout

    # The same run on an empty directory database passes: the failure came from Redis.
    control = run_toy(tmp_path, "replay", str(tmp_path / "empty-db"))
    assert control.returncode == pytest.ExitCode.OK, control.stdout
