"""The `solat-chaos` command.

    solat-chaos explore [--profile P] [--machine NAME]... [--max-examples N] [--minutes M]
                        [--seed S] [--workers N] [--failures-dir D] [--report PATH]
                        [--keep-going] [--shrink-seconds S]
                        [--target core|process] [--engine-adapter MODULE:CLASS]
                        [--broker-view sim|rest]
    solat-chaos replay ARTIFACT [--write-test DIR]
    solat-chaos report [--out PATH] [--runs N] [--history N]
    solat-chaos serve-broker [--host H] [--port P | --fd FD]
    solat-chaos serve [--data-dir D] [--host H] [--port P] [--broker-url URL] [--allow-remote]
                      [--in-doubt-grace S] [--max-open-positions N] [--max-exposure X]

explore runs the state machines on the embedded simulated broker and file system (nothing to
configure), shows a progress bar on stderr and ends with a verdict table on stdout: per
machine the examples, steps and invariant checks run and the failures found, each with its
artifact's replay command. Exit status: 0 when every invariant held, 1 when a failure was
found, 2 when it could not run (bad option, profile, machine name or database, or a machine
that broke without a failing example). A failure Hypothesis could not run again the same way
(a Flaky error) still counts: it is listed as NOT REPRODUCIBLE with its evidence and the
artifact that keeps what its first run saw. Explore stops at the first failure: no further
batch starts, and the failure is shrunk for at most 20 s (`--shrink-seconds`);
`--keep-going` runs every other machine's batches too, and looks on for more failures.

Every explore run stores a run record beside the example database (`model.run_record`);
with `--report PATH` it also writes the LIVE-readiness report of that run there.

With `--broker-view rest` the engine's broker port is the real IG REST adapter
(`IGRestBroker`) through respx onto the sim's IG dialect instead of the sim itself
(`model.views`); its artifacts record the view and replay runs them in it.

With `--target process` explore runs the process machines instead (`model.process_machine`):
a real engine process driven through its HTTP API by an engine adapter (default: the one for
`solat-chaos serve`; `--engine-adapter module:Class` loads another, docs/engine-contract.md),
and it lists the invariants that engine's adapter cannot support as NOT CHECKED.

replay re-runs an artifact's example exactly (see `model.replay`): exit 1 while it fails,
0 once it passes, 2 when it cannot be replayed. A different commit is reported, not refused.
With `--write-test DIR` it writes the artifact's regression test instead
(`model.regression`): exit 0 when written, 2 when the artifact cannot become one.

report writes the LIVE-readiness report (`solat_chaos.report`): one self-contained HTML file
over the newest N recorded runs (default 1) with the newest 30 as history; exit 0 when it
says SAFE for LIVE, 1 when not, 2 when it could not read the records.

serve-broker serves a fresh SimBroker in IG's REST dialect until interrupted, with its trade
stream (Lightstreamer TLCP, `broker.ig_tlcp`) at the `lightstreamerEndpoint` its login names.

serve runs the engine as a service (see `api.serve`): the HTTP API and the health panel on
127.0.0.1:8765, the data in --data-dir (default $SOLAT_CHAOS_DATA or ./solat-data), the
embedded simulated IG broker unless --broker-url names an IG-dialect base URL (credentials
from IG_API_KEY, IG_IDENTIFIER, IG_PASSWORD, IG_ACCOUNT_ID). Exit 2 when it cannot start.

`main(argv, machines=..., initializer=...)` lets a test or a script under tests/ run explore
and replay on machines of its own (with a planted bug, say); the installed command runs the
project's MACHINES.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from solat_chaos.model.catalogue import Machines

OK, FAILED, CANNOT_RUN = 0, 1, 2


def main(
    argv: Sequence[str] | None = None,
    *,
    machines: Machines | None = None,
    initializer: Callable[[], object] | None = None,
) -> int:
    """Run the command in `argv` (default: sys.argv); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["serve"], ["serve-broker"]):
        # A served engine or broker parses its command without the checker's stack
        # (Hypothesis, the machines): importing it was a quarter of an engine process's
        # start, paid again at every restart the process machine makes.
        args = _parser(checker=False).parse_args(argv)
    else:
        args = _parser().parse_args(argv)
    if args.command == "explore":
        return _explore(args, machines, initializer)
    if args.command == "replay":
        return _replay(args, machines)
    if args.command == "report":
        return _report(args)
    if args.command == "serve":
        return _serve(args)
    return _serve_broker(args)


def _parser(*, checker: bool = True) -> argparse.ArgumentParser:
    """Every command's parser; with `checker` False, only the engine's (serve, serve-broker)."""
    parser = argparse.ArgumentParser(
        prog="solat-chaos", description="Explore and replay the SOLAT core's state machines."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if checker:
        _add_checker_commands(commands)
    _add_engine_commands(commands)
    return parser


def _add_checker_commands(commands) -> None:
    from solat_chaos.model.explore import SHRINK_SECONDS
    from solat_chaos.model.views import BROKER_VIEWS, SIM
    from solat_chaos.report.summary import DEFAULT_HISTORY

    run = commands.add_parser(
        "explore",
        help="run the state machines for a budget; exit 0 only if every invariant held",
        description="Run the state machines on the simulated broker and file system. "
        "The example database is SOLAT_CHAOS_DB (a directory or redis:// URL; "
        "default .hypothesis/examples).",
    )
    run.add_argument(
        "--profile",
        help="Hypothesis profile: ci, dev, nightly (default: $SOLAT_CHAOS_PROFILE or ci)",
    )
    run.add_argument(
        "--machine",
        action="append",
        dest="machines",
        metavar="NAME",
        help="only this machine (repeatable; default: all)",
    )
    run.add_argument(
        "--max-examples",
        type=_positive_int,
        metavar="N",
        help="examples per machine (per round with --minutes; default: the profile's)",
    )
    run.add_argument(
        "--minutes",
        type=_positive_float,
        metavar="M",
        help="keep starting new rounds until M minutes have passed",
    )
    run.add_argument(
        "--seed", type=int, metavar="S", help="seed of the whole run (default: random, printed)"
    )
    run.add_argument(
        "--workers", type=_positive_int, default=1, metavar="N", help="parallel processes"
    )
    run.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failure, go on with the other machines and look for more failures",
    )
    run.add_argument(
        "--shrink-seconds",
        type=_positive_float,
        default=SHRINK_SECONDS,
        metavar="S",
        help=f"stop shrinking a failure after S seconds (default: {SHRINK_SECONDS:g})",
    )
    run.add_argument(
        "--target",
        choices=("core", "process"),
        default="core",
        help="core: the engine in-process, through its ports (default); process: a running "
        "engine process, through its HTTP API",
    )
    run.add_argument(
        "--broker-view",
        choices=BROKER_VIEWS,
        default=SIM,
        help="sim: the engine's broker port is the simulated broker (default); rest: the IG "
        "REST adapter, over HTTP onto the same simulated broker",
    )
    run.add_argument(
        "--engine-adapter",
        metavar="MODULE:CLASS",
        help="with --target process: the EngineAdapter of the engine to check "
        "(default: solat-chaos serve)",
    )
    run.add_argument(
        "--failures-dir",
        type=Path,
        default=Path("failures"),
        metavar="D",
        help="where failure artifacts go (default: ./failures)",
    )
    run.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write the LIVE-readiness report of this run (HTML) to PATH at the end",
    )

    again = commands.add_parser("replay", help="re-run a failure artifact's example exactly")
    again.add_argument("artifact", type=Path, metavar="ARTIFACT")
    again.add_argument(
        "--write-test",
        type=Path,
        metavar="DIR",
        help="write a standalone pytest file running the shrunk steps into DIR (no replay)",
    )

    report = commands.add_parser(
        "report",
        help="write the LIVE-readiness report (one self-contained HTML file) from run records",
        description="Build the report from the run records kept beside the example database "
        "(SOLAT_CHAOS_DB, default .hypothesis/examples).",
    )
    report.add_argument(
        "--out",
        type=Path,
        default=Path("solat-chaos-report.html"),
        metavar="PATH",
        help="where to write it (default: ./solat-chaos-report.html)",
    )
    report.add_argument(
        "--runs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="the newest N runs decide the verdict and the tables (default: 1)",
    )
    report.add_argument(
        "--history",
        type=_positive_int,
        default=DEFAULT_HISTORY,
        metavar="N",
        help=f"the newest N runs make the trend chart (default: {DEFAULT_HISTORY})",
    )


def _add_engine_commands(commands) -> None:
    serve = commands.add_parser(
        "serve-broker", help="serve a SimBroker in IG's REST dialect (foreground)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8766)
    serve.add_argument(
        "--fd", type=int, help="serve on this inherited listening socket instead of host:port"
    )

    engine = commands.add_parser(
        "serve",
        help="run the engine as a service: HTTP API and health panel (foreground)",
        description="Run the engine in production composition: the data directory on disk, "
        "the IG REST adapter, the system clock, the HTTP API on loopback.",
    )
    engine.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SOLAT_CHAOS_DATA", "solat-data")),
        help="ledger, kill switch, token (default: $SOLAT_CHAOS_DATA or ./solat-data)",
    )
    engine.add_argument("--host", default="127.0.0.1")
    engine.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    engine.add_argument(
        "--broker-url",
        metavar="URL",
        help="an IG-dialect base URL, e.g. https://demo-api.ig.com/gateway/deal "
        "(default: the embedded simulated IG broker)",
    )
    engine.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; every endpoint then needs the token",
    )
    engine.add_argument(
        "--in-doubt-grace",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds an order the broker has no record of stays in doubt (default 60)",
    )
    engine.add_argument("--max-open-positions", type=_positive_int, metavar="N")
    engine.add_argument("--max-exposure", type=_positive_float, metavar="X")
    engine.add_argument(
        "--test-clock",
        type=float,
        metavar="EPOCH",
        help="tests only: the engine's clock starts at EPOCH and moves only through "
        "POST /test/clock/advance (see api/test_clock.py)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


# ---------------------------------------------------------------------------- explore


def _explore(
    args: argparse.Namespace,
    machines: Machines | None,
    initializer: Callable[[], object] | None,
) -> int:
    from concurrent.futures.process import BrokenProcessPool

    from hypothesis.errors import InvalidArgument

    from solat_chaos.chaos.profiles import DatabaseError, database_from
    from solat_chaos.model.catalogue import NoMachines
    from solat_chaos.model.explore import ExploreOptions, UnknownMachine, explore
    from solat_chaos.model.explore_console import (
        ExploreProgress,
        print_not_checked,
        print_verdict,
        terminal,
        verdict_table,
    )
    from solat_chaos.model.run_record import run_store_for
    from solat_chaos.model.views import SIM
    from solat_chaos.report.summary import DEFAULT_HISTORY

    out, err = terminal(), Console(stderr=True, soft_wrap=True)
    if args.target == "process":
        try:
            machines = _process_machines(args.engine_adapter, args.workers)
        except ValueError as exc:
            err.print(f"[red]solat-chaos explore:[/] {escape(str(exc))}", highlight=False)
            return CANNOT_RUN
    elif args.engine_adapter:
        err.print("[red]solat-chaos explore:[/] --engine-adapter needs --target process")
        return CANNOT_RUN
    if args.target == "process" and args.broker_view != SIM:
        err.print("[red]solat-chaos explore:[/] --broker-view is for --target core")
        return CANNOT_RUN
    options = ExploreOptions(
        profile=args.profile,
        machines=tuple(args.machines or ()),
        max_examples=args.max_examples,
        minutes=args.minutes,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(2**32),
        workers=args.workers,
        failures_dir=args.failures_dir,
        keep_going=args.keep_going,
        shrink_seconds=args.shrink_seconds,
        broker_view=args.broker_view,
    )
    progress = ExploreProgress(err)
    try:
        with progress.bar:
            report = explore(options, machines=machines, initializer=initializer, listener=progress)
    except (UnknownMachine, InvalidArgument, DatabaseError, NoMachines, BrokenProcessPool) as exc:
        err.print(f"[red]solat-chaos explore:[/] {escape(str(exc))}", highlight=False)
        return CANNOT_RUN
    out.print(verdict_table(report))
    if args.target == "process":
        print_not_checked(out, report, machines)
    print_verdict(out, report, options)
    if args.report is not None and report.record is not None:
        # Imported here: the report's libraries (Jinja2, matplotlib) load only when asked for.
        from solat_chaos.report.html import newest, write_report

        history = newest(run_store_for(database_from()).load(), DEFAULT_HISTORY)
        write_report(args.report, [report.record], history)
        out.print(f"report: {args.report}", highlight=False, soft_wrap=True)
    if report.ok:
        return OK
    failed = any(tally.failures for tally in report.tallies.values())
    return FAILED if failed else CANNOT_RUN


def _process_machines(spec: str | None, workers: int) -> Machines:
    from solat_chaos.model.engine_adapter import SolatEngineAdapter, load_adapter
    from solat_chaos.model.process_machine import PROCESS_MACHINES, process_machines

    if spec is None:
        return PROCESS_MACHINES
    adapter = load_adapter(spec)
    if adapter is SolatEngineAdapter:
        return PROCESS_MACHINES
    if workers > 1:
        # Machines built for a team's adapter exist in this process only.
        raise ValueError("--engine-adapter runs with --workers 1")
    return process_machines(adapter)


# ---------------------------------------------------------------------------- replay


def _replay(args: argparse.Namespace, machines: Machines | None) -> int:
    from solat_chaos.model.artifacts import ArtifactError, read
    from solat_chaos.model.catalogue import NoMachines
    from solat_chaos.model.regression import RegressionError, write_test
    from solat_chaos.model.replay import FAILS, PASSES, replay

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        artifact = read(args.artifact)
        if args.write_test is not None:
            written = write_test(artifact, args.write_test, source=args.artifact)
            out.print(f"wrote {written}", markup=False)
            return OK
        if artifact.engine_adapter is not None and machines is None:
            machines = _process_machines(artifact.engine_adapter, workers=1)
        result = replay(artifact, machines)
    except (ArtifactError, NoMachines, RegressionError, ValueError) as exc:
        err.print(f"[red]solat-chaos replay:[/] {escape(str(exc))}")
        return CANNOT_RUN
    out.print(
        f"replaying {args.artifact}: {artifact.invariant} on machine {artifact.machine} "
        f"(broker view {artifact.broker_view})",
        markup=False,
    )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if result.verdict == FAILS:
        assert result.failure is not None
        out.print(result.failure.steps, markup=False)
        err.print(result.failure.traceback, markup=False)
        out.print(f"[red]FAILS[/] {escape(result.detail)}")
        return FAILED
    if result.verdict == PASSES:
        out.print(f"[green]PASSES[/] {escape(result.detail)}")
        return OK
    out.print(f"[red]CANNOT REPLAY[/] {escape(result.detail)}")
    return CANNOT_RUN


# ---------------------------------------------------------------------------- report


def _report(args: argparse.Namespace) -> int:
    from solat_chaos.chaos.profiles import DatabaseError, database_from
    from solat_chaos.model.run_record import RunRecordError, run_store_for
    from solat_chaos.report.html import newest, write_report

    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        records = run_store_for(database_from()).load()
    except (DatabaseError, RunRecordError) as exc:
        err.print(f"[red]solat-chaos report:[/] {escape(str(exc))}")
        return CANNOT_RUN
    covered = newest(records, args.runs)
    verdict = write_report(args.out, covered, newest(records, args.history)).verdict
    out.print(
        f"{'SAFE' if verdict.safe else 'NOT SAFE'} for LIVE over {len(covered)} run(s): {args.out}",
        markup=False,
    )
    for reason in verdict.reasons:
        out.print(f"  {reason}", markup=False)
    return OK if verdict.safe else FAILED


# ---------------------------------------------------------------------------- serve-broker


def _serve_broker(args: argparse.Namespace) -> int:
    # Imported here: the web stack (starlette, uvicorn) is this command's alone.
    from solat_chaos.broker.ig_http import serve_broker

    serve_broker(args.host, args.port, fd=args.fd)
    return OK


# ---------------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace) -> int:
    # Imported here: the web stack (starlette, uvicorn) is this command's alone.
    from solat_chaos.api.serve import ServeError, ServeOptions, serve
    from solat_chaos.engine.risk import RiskLimits

    limits = RiskLimits()
    if args.max_open_positions is not None:
        limits = attrs.evolve(limits, max_open_positions=args.max_open_positions)
    if args.max_exposure is not None:
        limits = attrs.evolve(limits, max_exposure=args.max_exposure)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per broker call otherwise
    options = ServeOptions(
        data_dir=args.data_dir,
        host=args.host,
        port=args.port,
        broker_url=args.broker_url,
        allow_remote=args.allow_remote,
        in_doubt_grace=args.in_doubt_grace,
        limits=limits,
        test_clock=args.test_clock,
    )
    try:
        serve(options)
    except (ServeError, OSError, ValueError) as exc:
        Console(stderr=True).print(f"[red]solat-chaos serve:[/] {escape(str(exc))}")
        return CANNOT_RUN
    return OK


if __name__ == "__main__":
    sys.exit(main())
