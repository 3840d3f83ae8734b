"""Run records: the world names the faults armed at its ports, every rule step is counted
against them, and explore stores one record per run beside the example database — in a
directory or in Redis — which reads back as it was written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from solat_chaos.engine.broker import BrokerTimeout
from solat_chaos.model.explore import ExploreOptions, explore
from solat_chaos.model.machines import DiskMachine
from solat_chaos.model.run_record import (
    REDIS_KEY,
    RUNS_DIR,
    DirectoryRunStore,
    RedisRunStore,
    RunRecordError,
)
from solat_chaos.model.stats import NO_FAULT, RunStats
from solat_chaos.model.world import MODEL_CONFIG, World
from tests.unit.test_example_database import redis_url  # noqa: F401  (a fixture)


@pytest.fixture
def world():
    world = World(MODEL_CONFIG)
    yield world
    world.close()


def test_the_world_names_the_faults_armed_at_its_ports(world: World) -> None:
    assert world.armed_faults() == set()
    world.sim.fail_next("confirm", BrokerTimeout("t"))
    world.sim.fail_next("open_position", BrokerTimeout("t"), after_execute=True)
    world.sim.hold("account", 1)
    world.sim.stale_positions()
    world.disk_fault("fsync", lambda disk: disk.fail_fsync())
    world.unmount()
    assert world.armed_faults() == {
        "broker:fail_next:confirm",
        "broker:answer_lost:open_position",
        "broker:hold:account",
        "broker:stale_positions",
        "disk:fsync",
        "disk:unmounted",
    }
    assert world.armed_faults() <= set(world.fault_kinds())
    world.heal_disk()
    world.sim.heal()
    assert world.armed_faults() == set()


def test_a_rule_step_counts_against_every_fault_armed_when_it_starts(world: World) -> None:
    stats = RunStats()
    stats.watch(world)
    stats.ran("submit_order")
    world.disk_fault("flush", lambda disk: disk.fail_flush())
    world.sim.fill_fraction(0.5)
    stats.ran("submit_order")
    stats.ran("reconcile")
    assert stats.coverage == {
        ("submit_order", NO_FAULT): 1,
        ("submit_order", "disk:flush"): 1,
        ("submit_order", "broker:partial_fill:open_position"): 1,
        ("reconcile", "disk:flush"): 1,
        ("reconcile", "broker:partial_fill:open_position"): 1,
    }
    assert stats.steps == 3 and stats.rules == {"submit_order": 2, "reconcile": 1}


def test_explore_stores_a_run_record_beside_the_examples(tmp_path: Path) -> None:
    database = tmp_path / "examples"
    report = explore(
        ExploreOptions(
            machines=("disk",),
            max_examples=15,
            seed=11,
            failures_dir=tmp_path / "failures",
            database=str(database),
        )
    )
    (stored,) = DirectoryRunStore(database / RUNS_DIR).load()
    assert stored == report.record
    (disk,) = stored.machines
    tally = report.tallies["disk"]
    assert (disk.name, disk.tier, disk.examples, disk.steps) == (
        "disk",
        1,
        tally.examples,
        tally.steps,
    )
    assert disk.examples > 0 and not disk.failures
    # Every rule of the machine is listed, ran or not; the steps under NO_FAULT and under
    # the faults armed add up to at least the rule's steps (a step may see two faults).
    assert set(disk.rules) == {r.function.__name__ for r in DiskMachine.setup_state().rules} | {
        "start_engine"
    }
    for rule, steps in disk.rule_steps.items():
        assert sum(disk.coverage[rule].values()) >= steps
    armed = {fault for by_fault in disk.coverage.values() for fault in by_fault} - {NO_FAULT}
    assert armed and armed <= set(stored.fault_kinds)
    assert disk.checks["AUDIT_BEFORE_BROKER"] > 0 and disk.checks["LIVENESS"] > 0


def test_a_malformed_record_is_named(tmp_path: Path) -> None:
    (tmp_path / "20260101T000000Z-1.json").write_text(json.dumps({"schema": 1, "run_id": "x"}))
    with pytest.raises(RunRecordError, match="20260101T000000Z-1.json"):
        DirectoryRunStore(tmp_path).load()


def test_records_are_kept_in_redis_beside_the_examples(
    tmp_path: Path,
    redis_url: str,  # noqa: F811
) -> None:
    report = explore(
        ExploreOptions(
            machines=("disk",),
            max_examples=3,
            seed=5,
            failures_dir=tmp_path,
            database=redis_url,
        )
    )
    client = redis.Redis.from_url(redis_url)
    try:
        assert report.record in RedisRunStore(client).load()
    finally:
        client.hdel(REDIS_KEY, report.record.run_id)
        client.close()
