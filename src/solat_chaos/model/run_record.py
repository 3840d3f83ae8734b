"""Run records: what one explore run did, one JSON document per run, kept beside the example
database so that every machine sharing the database shares the history.

Where: in a directory database (`.hypothesis/examples`, or the directory SOLAT_CHAOS_DB
names) as `<database>/solat-chaos-runs/<run_id>.json`; in a Redis database as the field
`<run_id>` of the hash `solat-chaos:runs`. A record is written whole or not at all.

Schema (version 1):

| key                 | value                                                              |
|---------------------|--------------------------------------------------------------------|
| schema              | 1                                                                  |
| run_id              | `<created_at as 20261202T004835Z>-<seed>[-<broker view>]`; sorted by |
| created_at          | UTC time the run ended, ISO 8601                                   |
| profile, seed       | as explore ran                                                     |
| workers, seconds    | processes used, wall time                                          |
| first_failure_seconds | seconds to the end of the first failing example; null: none     |
| git_commit          | HEAD of the checkout (null outside one)                            |
| solat_chaos_version | the project's version                                              |
| fault_kinds         | every fault the machines' worlds can arm                           |
| broker_view         | the broker view the machines ran in (`model.views`); "sim" when    |
|                     | absent (records written before it existed)                         |
| machines            | one object per machine, below                                      |

Per machine: `name`, `tier` (the chaos tier it is about; null: all), `examples`, `steps`,
`invariant_checks`, `rules` (every rule the machine has, ran or not), `rule_steps` (steps per
rule), `checks` (per invariant name: how many checks guarding it ran), `coverage` (rule ->
armed fault -> steps; `(no fault)` when none was armed), `failures` (invariant, evidence,
artifact path, replay command, shrunk steps, seed, and `not_reproducible`: null, or why
Hypothesis could not run the example again, absent from older records), `errors` (runs that
broke without a failing example).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

import solat_chaos
from solat_chaos.model.artifacts import current_commit, replay_command
from solat_chaos.model.invariants import INVARIANTS_CHECKED_BY

if TYPE_CHECKING:
    from solat_chaos.model.explore import ExploreReport, FoundFailure, MachineTally

SCHEMA = 1
RUNS_DIR = "solat-chaos-runs"
REDIS_KEY = "solat-chaos:runs"


class RunRecordError(Exception):
    """A stored document is not a readable run record; the message says which and why."""


@attrs.frozen
class FailureRecord:
    invariant: str
    evidence: str
    artifact: str
    replay_command: str
    steps: str
    seed: int | None
    not_reproducible: str | None = None  # why the example cannot be replayed (explore)


@attrs.frozen
class MachineRecord:
    name: str
    tier: int | None
    examples: int
    steps: int
    invariant_checks: int
    rules: tuple[str, ...]
    rule_steps: dict[str, int]
    checks: dict[str, int]
    coverage: dict[str, dict[str, int]]
    failures: tuple[FailureRecord, ...]
    errors: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return bool(self.failures or self.errors)


@attrs.frozen
class RunRecord:
    run_id: str
    created_at: str
    profile: str
    seed: int
    workers: int
    seconds: float
    git_commit: str | None
    solat_chaos_version: str
    fault_kinds: tuple[str, ...]
    machines: tuple[MachineRecord, ...]
    schema: int = SCHEMA
    first_failure_seconds: float | None = None  # absent from records written before it
    broker_view: str = "sim"

    @classmethod
    def of(cls, report: ExploreReport, catalogue: Mapping[str, type], *, workers: int) -> RunRecord:
        now = datetime.now(UTC).replace(microsecond=0)
        machines = tuple(
            _machine_record(tally, catalogue[name]) for name, tally in report.tallies.items()
        )
        kinds = set().union(*(tally.fault_kinds for tally in report.tallies.values()))
        return cls(
            # A view other than sim is named: the sim and rest passes of one seed are two runs.
            run_id=f"{now:%Y%m%dT%H%M%SZ}-{report.seed}"
            + ("" if report.broker_view == "sim" else f"-{report.broker_view}"),
            created_at=now.isoformat(),
            profile=report.profile,
            seed=report.seed,
            workers=workers,
            seconds=round(report.seconds, 3),
            first_failure_seconds=(
                None
                if report.first_failure_seconds is None
                else round(report.first_failure_seconds, 3)
            ),
            git_commit=current_commit(),
            solat_chaos_version=solat_chaos.__version__,
            fault_kinds=tuple(sorted(kinds)),
            machines=machines,
            broker_view=report.broker_view,
        )

    def to_json(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> RunRecord:
        try:
            data: Any = json.loads(text)
            if not isinstance(data, dict) or data.get("schema") != SCHEMA:
                raise ValueError(f"not a solat-chaos run record (schema {SCHEMA})")
            machines = tuple(
                MachineRecord(
                    **{
                        **machine,
                        "rules": tuple(machine["rules"]),
                        "errors": tuple(machine["errors"]),
                        "failures": tuple(FailureRecord(**f) for f in machine["failures"]),
                    }
                )
                for machine in data["machines"]
            )
            return cls(**{**data, "fault_kinds": tuple(data["fault_kinds"]), "machines": machines})
        except (ValueError, TypeError, KeyError) as exc:
            raise RunRecordError(f"{where}: {exc}") from None


def _machine_record(tally: MachineTally, machine_cls: type) -> MachineRecord:
    coverage: dict[str, dict[str, int]] = defaultdict(dict)
    for (rule, fault), steps in sorted(tally.coverage.items()):
        coverage[rule][fault] = steps
    checks: Counter[str] = Counter()
    for check, count in tally.checks.items():
        for invariant in INVARIANTS_CHECKED_BY.get(check, (check,)):
            checks[invariant] += count
    return MachineRecord(
        name=tally.name,
        tier=getattr(machine_cls, "tier", None),
        examples=tally.examples,
        steps=tally.steps,
        invariant_checks=tally.invariant_checks,
        rules=_rules_of(machine_cls),
        rule_steps=dict(sorted(tally.rules.items())),
        checks=dict(sorted(checks.items())),
        coverage=dict(coverage),
        failures=tuple(_failure_record(failure) for failure in tally.failures.values()),
        errors=tuple(tally.errors),
    )


def _rules_of(machine_cls: type) -> tuple[str, ...]:
    setup = machine_cls.setup_state()  # Hypothesis' own list of a machine's rules
    return tuple(sorted(r.function.__name__ for r in (*setup.initializers, *setup.rules)))


def _failure_record(failure: FoundFailure) -> FailureRecord:
    try:
        artifact = json.loads(failure.artifact.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        artifact = {}  # the steps and seed are a convenience; the artifact stays the source
    return FailureRecord(
        invariant=failure.invariant,
        evidence=failure.evidence,
        artifact=str(failure.artifact),
        replay_command=replay_command(failure.artifact),
        steps=artifact.get("steps") or "",
        seed=artifact.get("seed"),
        not_reproducible=failure.not_reproducible,
    )


# ---------------------------------------------------------------------------- stores


class RunStore(Protocol):
    def save(self, record: RunRecord) -> None: ...

    def load(self) -> list[RunRecord]:
        """Every stored record, oldest first."""
        ...


@attrs.frozen
class DirectoryRunStore:
    path: Path

    def save(self, record: RunRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path, prefix=".run.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(record.to_json())
            os.replace(temporary, self.path / f"{record.run_id}.json")
        except BaseException:
            os.unlink(temporary)
            raise

    def load(self) -> list[RunRecord]:
        if not self.path.is_dir():
            return []
        return [
            RunRecord.from_json(path.read_bytes(), str(path))
            for path in sorted(self.path.glob("*.json"))
        ]


@attrs.frozen
class RedisRunStore:
    client: Any  # a redis.Redis

    def save(self, record: RunRecord) -> None:
        self.client.hset(REDIS_KEY, record.run_id, record.to_json())

    def load(self) -> list[RunRecord]:
        stored = self.client.hgetall(REDIS_KEY)
        return [
            RunRecord.from_json(stored[run_id], f"redis {REDIS_KEY} {run_id.decode()}")
            for run_id in sorted(stored)
        ]


def run_store_for(database: ExampleDatabase) -> RunStore:
    """Where the run records of `database` (from `chaos.profiles.database_from`) live."""
    if isinstance(database, DirectoryBasedExampleDatabase):
        return DirectoryRunStore(Path(database.path) / RUNS_DIR)
    client = getattr(database, "redis", None)
    if client is not None:
        return RedisRunStore(client)
    raise RunRecordError(f"run records cannot be kept beside {database!r}")
