"""Replay a failure artifact: run exactly its example again and say whether it still fails.

The example is re-run with Hypothesis' `@reproduce_failure(version, blob)` applied to the
machine class: Hypothesis decodes the blob into the recorded choice sequence and runs that one
example — no generation, no database, no shrinking — with the step budget the artifact
recorded. A shrunk state machine example ends where it failed, so once fixed it would run out
of choices at its next "another step?" draw, which Hypothesis cannot tell from an example that
no longer fits the machine. Replay therefore appends one choice, "stop", to the recorded ones:
a fixed example runs its recorded steps, stops, tears down and passes.

The blob is only meaningful to the Hypothesis version that wrote it, so another installed
version is refused with the version to install. A checkout at another commit (or another
solat_chaos version) than the artifact's is replayed all the same, with a warning: the example
may now mean something else.

Verdicts: FAILS (it still fails; the detail names the recorded invariant when it now fails
another), PASSES (it ran to the end with every invariant holding: fixed), CANNOT_REPLAY
(unknown machine, other Hypothesis version, unusable blob, the example no longer fits the
machine's rules, or the failure was not reproducible when found and left no blob). A
not-reproducible failure that has a blob is replayed, with a warning.
"""

from __future__ import annotations

import attrs
import hypothesis
from hypothesis import HealthCheck
from hypothesis import settings as Settings
from hypothesis.core import decode_failure, encode_failure
from hypothesis.errors import DidNotReproduce, InvalidArgument

import solat_chaos
from solat_chaos.model.artifacts import Artifact, current_commit
from solat_chaos.model.catalogue import Machines, machine_catalogue
from solat_chaos.model.runner import Failure, run_machine

FAILS = "FAILS"
PASSES = "PASSES"
CANNOT_REPLAY = "CANNOT_REPLAY"

# The wording of Hypothesis' DidNotReproduce when the example ran to its end without failing;
# its other DidNotReproduce messages mean the recorded choices no longer fit the machine.
_RAN_CLEAN = "completed successfully"


@attrs.frozen
class ReplayResult:
    verdict: str
    detail: str  # one line for people
    warnings: tuple[str, ...] = ()
    failure: Failure | None = None  # set when the verdict is FAILS


def replay(artifact: Artifact, machines: Machines | None = None) -> ReplayResult:
    """Run the artifact's example once more against the code installed now."""
    warnings = tuple(_provenance_warnings(artifact))
    if artifact.not_reproducible:
        if not artifact.reproduce_blob:
            return ReplayResult(
                CANNOT_REPLAY,
                f"the failure was not reproducible when it was found "
                f"({artifact.not_reproducible}): there is no example to replay; the artifact "
                f"keeps what its first run saw ({artifact.invariant}: {artifact.evidence})",
                warnings,
            )
        warnings += (
            f"the failure was not reproducible when it was found ({artifact.not_reproducible})",
        )
    if artifact.hypothesis_version != hypothesis.__version__:
        return ReplayResult(
            CANNOT_REPLAY,
            f"the blob was written by Hypothesis {artifact.hypothesis_version} and Hypothesis "
            f"{hypothesis.__version__} is installed; replay it after "
            f"pip install hypothesis=={artifact.hypothesis_version}",
            warnings,
        )
    catalogue = machine_catalogue(machines)
    machine_cls = catalogue.get(artifact.machine)
    if machine_cls is None:
        return ReplayResult(
            CANNOT_REPLAY,
            f"no machine named {artifact.machine!r} (was {artifact.machine_class}); "
            f"machines now: {', '.join(sorted(catalogue)) or 'none'}",
            warnings,
        )
    settings = Settings(
        Settings.get_profile("replay"),
        database=None,
        stateful_step_count=artifact.stateful_step_count,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    try:
        blob = _then_stop(artifact.reproduce_blob)
        failures = run_machine(
            machine_cls,
            settings,
            reproduce=(artifact.hypothesis_version, blob),
            broker_view=artifact.broker_view,
        )
    except InvalidArgument as exc:
        return ReplayResult(CANNOT_REPLAY, f"the reproduce blob is unusable: {exc}", warnings)
    except DidNotReproduce as exc:
        if _RAN_CLEAN in str(exc):
            return ReplayResult(
                PASSES,
                f"the example ran to its end and every invariant held ({artifact.invariant} "
                "no longer fails)",
                warnings,
            )
        return ReplayResult(
            CANNOT_REPLAY,
            f"the example no longer fits machine {artifact.machine!r}: {exc}",
            warnings,
        )
    (failure,) = failures
    detail = f"{failure.invariant}: {failure.evidence}"
    if failure.invariant != artifact.invariant:
        detail += f" (the artifact recorded {artifact.invariant})"
    return ReplayResult(FAILS, detail, warnings, failure)


def _then_stop(blob: str) -> str:
    """`blob` with a final True choice: the answer to the state machine loop's next "stop
    here?" draw (a boolean before every step). A blob is tied to one Hypothesis version, which
    replay has checked, so its codec (hypothesis.core) is the installed one."""
    choices = decode_failure(blob.encode("ascii"))
    return encode_failure([*choices, True]).decode("ascii")


def _provenance_warnings(artifact: Artifact) -> list[str]:
    warnings = []
    commit = current_commit()
    if artifact.git_commit != commit:
        warnings.append(
            f"the artifact was made at commit {artifact.git_commit or 'unknown'}, "
            f"this checkout is at {commit or 'unknown'}: the same steps may now mean "
            "something else"
        )
    if artifact.solat_chaos_version != solat_chaos.__version__:
        warnings.append(
            f"the artifact was made by solat_chaos {artifact.solat_chaos_version}, "
            f"this is {solat_chaos.__version__}"
        )
    return warnings
