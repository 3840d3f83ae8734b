"""What the report says, decided from run records: the verdict, the per-machine table, the
rule x fault coverage, the invariants, the failures and the history.

The runs *covered* (by default the newest) decide the verdict and every table; the *history*
(by default the newest 30) is the trend. LIVE is safe only when a tier-1 machine ran in the
runs covered and every invariant held in all of them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import attrs

from solat_chaos.model import invariants
from solat_chaos.model.run_record import RunRecord
from solat_chaos.model.stats import NO_FAULT

LIVE_TIER = 1
DEFAULT_HISTORY = 30  # runs in the trend chart


@attrs.frozen
class Verdict:
    safe: bool
    reasons: tuple[str, ...]  # why not; empty when safe


@attrs.frozen
class MachineRow:
    name: str
    tier: int | None
    runs: int
    examples: int
    steps: int
    invariant_checks: int
    failures: int
    errors: tuple[str, ...]


@attrs.frozen
class Coverage:
    """Steps per (rule, armed fault) over the runs covered; a zero cell is a blind spot."""

    rules: tuple[str, ...]
    faults: tuple[str, ...]  # NO_FAULT first
    steps: dict[tuple[str, str], int]

    @property
    def cells(self) -> int:
        return len(self.rules) * len(self.faults)

    @property
    def blind_spots(self) -> int:
        return sum(1 for r in self.rules for f in self.faults if not self.steps.get((r, f)))

    @property
    def covered_share(self) -> float:
        return 1 - self.blind_spots / self.cells if self.cells else 0.0


@attrs.frozen
class FailureView:
    run_id: str
    machine: str
    invariant: str
    evidence: str
    steps: str
    replay_command: str
    seed: int | None
    not_reproducible: str | None = None


@attrs.frozen
class InvariantRow:
    name: str
    checks: int
    failed_in: tuple[str, ...]  # "machine (run id)"


@attrs.frozen
class HistoryPoint:
    run_id: str
    created_at: str
    steps: int
    failures: int
    coverage: float  # share of the rule x fault cells that ran


@attrs.frozen
class Summary:
    covered: tuple[str, ...]  # run ids
    verdict: Verdict
    machines: tuple[MachineRow, ...]
    coverage: Coverage
    invariants: tuple[InvariantRow, ...]
    failures: tuple[FailureView, ...]
    history: tuple[HistoryPoint, ...]


def summarize(covered: Sequence[RunRecord], history: Sequence[RunRecord]) -> Summary:
    """The report over `covered` runs, with `history` (oldest first) as the trend."""
    machines = _machine_rows(covered)
    failures = _failures(covered)
    return Summary(
        covered=tuple(r.run_id for r in covered),
        verdict=_verdict(covered, machines),
        machines=machines,
        coverage=coverage_of(covered),
        invariants=_invariant_rows(covered),
        failures=failures,
        history=tuple(
            HistoryPoint(
                run_id=record.run_id,
                created_at=record.created_at,
                steps=sum(m.steps for m in record.machines),
                failures=sum(len(m.failures) + len(m.errors) for m in record.machines),
                coverage=coverage_of([record]).covered_share,
            )
            for record in history
        ),
    )


def coverage_of(records: Sequence[RunRecord]) -> Coverage:
    steps: Counter[tuple[str, str]] = Counter()
    rules: set[str] = set()
    faults: set[str] = set()
    for record in records:
        faults.update(record.fault_kinds)
        for machine in record.machines:
            rules.update(machine.rules)
            for rule, by_fault in machine.coverage.items():
                rules.add(rule)
                for fault, count in by_fault.items():
                    steps[rule, fault] += count
                    faults.add(fault)
    faults.discard(NO_FAULT)
    return Coverage(tuple(sorted(rules)), (NO_FAULT, *sorted(faults)), dict(steps))


def _machine_rows(records: Sequence[RunRecord]) -> tuple[MachineRow, ...]:
    rows: dict[str, MachineRow] = {}
    for record in records:
        for m in record.machines:
            before = rows.get(m.name) or MachineRow(m.name, m.tier, 0, 0, 0, 0, 0, ())
            rows[m.name] = MachineRow(
                name=m.name,
                tier=m.tier,
                runs=before.runs + 1,
                examples=before.examples + m.examples,
                steps=before.steps + m.steps,
                invariant_checks=before.invariant_checks + m.invariant_checks,
                failures=before.failures + len(m.failures),
                errors=before.errors + m.errors,
            )
    return tuple(sorted(rows.values(), key=lambda row: (row.tier is None, row.tier, row.name)))


def _verdict(records: Sequence[RunRecord], machines: Sequence[MachineRow]) -> Verdict:
    if not records:
        return Verdict(False, ("no explore run is recorded",))
    reasons = []
    tier1 = [row for row in machines if row.tier == LIVE_TIER]
    if not any(row.examples for row in tier1):
        reasons.append(f"no tier-{LIVE_TIER} machine ran an example in the runs covered")
    for row in tier1:
        if row.failures or row.errors:
            reasons.append(f"tier {LIVE_TIER} failed: machine {row.name}")
    failed: Counter[tuple[str, str]] = Counter()
    for record in records:
        for m in record.machines:
            failed.update((f.invariant, m.name) for f in m.failures)
    for (invariant, machine), times in sorted(failed.items()):
        reasons.append(f"{invariant} failed on machine {machine} ({times} time(s))")
    for row in machines:
        if row.errors:
            reasons.append(
                f"machine {row.name} broke without a reproducible example ({len(row.errors)})"
            )
    return Verdict(not reasons, tuple(reasons))


def _invariant_rows(records: Sequence[RunRecord]) -> tuple[InvariantRow, ...]:
    checks: Counter[str] = Counter()
    failed_in: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for m in record.machines:
            checks.update(m.checks)
            for f in m.failures:
                failed_in[f.invariant].append(f"{m.name} ({record.run_id})")
    names = [*invariants.ALL, invariants.ENGINE_RAISED, invariants.MODEL_ERROR]
    names += sorted((set(checks) | set(failed_in)) - set(names))
    return tuple(InvariantRow(name, checks[name], tuple(failed_in[name])) for name in names)


def _failures(records: Sequence[RunRecord]) -> tuple[FailureView, ...]:
    return tuple(
        FailureView(
            run_id=record.run_id,
            machine=m.name,
            invariant=f.invariant,
            evidence=f.evidence,
            steps=f.steps,
            replay_command=f.replay_command,
            seed=f.seed,
            not_reproducible=f.not_reproducible,
        )
        for record in records
        for m in record.machines
        for f in m.failures
    )
