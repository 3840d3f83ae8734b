"""What explore shows on a terminal: a progress bar of batches on stderr while it runs (and
a line for each failure as it is found), then the verdict table and a plain line per failure
with its replay command."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from solat_chaos.model.artifacts import replay_command
from solat_chaos.model.catalogue import Machines
from solat_chaos.model.explore import (
    Batch,
    BatchResult,
    ExploreOptions,
    ExploreReport,
    FoundFailure,
    Listener,
)


def terminal() -> Console:
    console = Console()
    # Off a terminal (a CI log, a pipe) rich would assume 80 columns and fold every replay
    # command in the table; the table takes only the width it needs.
    return console if console.is_terminal else Console(width=200)


class ExploreProgress(Listener):
    """A progress bar of batches on stderr, and a line for each failure as it is found."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            TextColumn("[bold]explore[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("batches"),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("", total=None)
        self.running: Counter[str] = Counter()

    def planned(self, batches: int | None) -> None:
        self.bar.update(self.task, total=batches)

    def started(self, batch: Batch) -> None:
        self.running[batch.machine] += 1
        self._describe()

    def finished(self, result: BatchResult) -> None:
        self.running[result.batch.machine] -= 1
        self.bar.update(self.task, advance=1)
        self._describe()
        for failure in result.failures:
            flaky = " (not reproducible)" if failure.not_reproducible else ""
            self.bar.console.print(
                f"[red]FAILED[/] {result.batch.machine}: {failure.invariant}{flaky} -> "
                f"{escape(str(failure.artifact))}"
            )

    def _describe(self) -> None:
        running = sorted(name for name, count in self.running.items() if count > 0)
        self.bar.update(self.task, description=f"running {', '.join(running)}")


def verdict_table(report: ExploreReport) -> Table:
    table = Table(
        title=f"solat-chaos explore: profile {report.profile}, seed {report.seed}, "
        f"broker view {report.broker_view}"
    )
    table.add_column("machine")
    table.add_column("examples", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("invariants checked", justify="right")
    table.add_column("rules fired", justify="right")
    table.add_column("failures", overflow="fold")
    for tally in report.tallies.values():
        lines = [
            f"[red]{f.invariant}[/]: {escape(_what_to_do(f))}" for f in tally.failures.values()
        ]
        lines += [f"[red]error[/]: {escape(error)}" for error in tally.errors]
        table.add_row(
            tally.name,
            str(tally.examples),
            str(tally.steps),
            str(tally.invariant_checks),
            str(len(tally.rules)),
            "\n".join(lines) or "[green]none[/]",
        )
    return table


def print_verdict(out: Console, report: ExploreReport, options: ExploreOptions) -> None:
    # Plain lines as well as the table: a replay command must survive a narrow terminal.
    for tally in report.tallies.values():
        for failure in tally.failures.values():
            out.print(
                f"FAILED {tally.name} {failure.invariant}: {_what_to_do(failure)}",
                highlight=False,
                soft_wrap=True,
            )
            if failure.not_reproducible:
                out.print(f"  evidence: {failure.evidence}", highlight=False, soft_wrap=True)
    verdict = "every invariant held" if report.ok else "invariants failed"
    if report.first_failure_seconds is not None:
        verdict += f" (first failure after {report.first_failure_seconds:.1f}s)"
    out.print(
        f"{verdict} ({report.seconds:.1f}s, --workers {options.workers}); "
        f"rerun with --seed {report.seed}",
        highlight=False,
        soft_wrap=True,
    )


def _what_to_do(failure: FoundFailure) -> str:
    """The replay command; for a failure Hypothesis could not run again, where its evidence
    is and why it cannot be replayed."""
    if failure.not_reproducible:
        return (
            f"NOT REPRODUCIBLE ({failure.not_reproducible}); what its first run saw is in "
            f"{failure.artifact}"
        )
    return replay_command(failure.artifact)


def print_not_checked(out: Console, report: ExploreReport, machines: Machines) -> None:
    # Never counted as passed: an invariant the engine's adapter cannot support says so.
    for name in report.tallies:
        for what, why in machines[name].not_checked().items():  # type: ignore[attr-defined]
            out.print(f"NOT CHECKED {name} {what}: {why}", highlight=False, soft_wrap=True)
