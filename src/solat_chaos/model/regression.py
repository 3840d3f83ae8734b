"""Regression tests from failure artifacts.

`write_test(artifact, directory)` writes `test_regression_<invariant>_<hash>.py`: a standalone
pytest file whose one test is the artifact's shrunk steps as Hypothesis printed them — the
machine built, each rule called with its recorded arguments, the invariants checked after
every step, the teardown (heal phase and LIVENESS). Nothing is generated and no Hypothesis
blob is decoded, so the test means the same under any Hypothesis version: it fails while the
bug exists and passes once it is fixed. Its docstring carries the invariant, the evidence, the
seed and the commit the failure was found at.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from solat_chaos.model.artifacts import Artifact
from solat_chaos.model.views import SIM

_FIRST_STEP = "state = "


class RegressionError(ValueError):
    """The artifact cannot become a test; the message says why."""


def regression_test_source(artifact: Artifact, source: str | os.PathLike[str] | None = None) -> str:
    """The test module for `artifact` (read from `source`, named in the docstring)."""
    steps = artifact.steps.strip()
    if not steps.startswith(_FIRST_STEP):
        raise RegressionError(
            f"the artifact of {artifact.invariant} has no shrunk steps to turn into a test"
        )
    module, _, qualname = artifact.machine_class.partition(":")
    class_name = qualname.split(".")[0]
    if not module or not class_name:
        raise RegressionError(f"machine_class {artifact.machine_class!r} is not module:QualName")
    name = Path(artifact.file_name).stem.lower().replace("-", "_")
    docstring = "\n".join(
        [
            f"Regression test: {artifact.invariant} on machine {artifact.machine}.",
            "",
            f"invariant: {artifact.invariant}",
            f"evidence: {artifact.evidence}",
            f"seed: {artifact.seed}",
            f"commit: {artifact.git_commit or 'unknown'}",
            f"profile: {artifact.profile}",
            f"machine: {artifact.machine_class}",
            f"broker view: {artifact.broker_view}",
            f"found: {artifact.created_at} by solat_chaos {artifact.solat_chaos_version}",
            *([f"artifact: {source}"] if source is not None else []),
            "",
            "Written by `solat-chaos replay ARTIFACT --write-test DIR`: the shrunk steps of the",
            "failure, run directly against the machine with its invariants checked after every",
            "step, as Hypothesis ran them (no generation). It fails while the bug exists and",
            "passes once it is fixed.",
        ]
    )
    docstring = docstring.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    imports = f"from {module} import {class_name}\n"
    body = textwrap.indent(steps, "    ")
    if artifact.broker_view != SIM:
        # The steps mean what they meant only in the broker view they ran in.
        imports += "from solat_chaos.model.views import in_broker_view\n"
        body = (
            f"    with in_broker_view({class_name}, {artifact.broker_view!r}):\n"
            f"{textwrap.indent(steps, '        ')}"
        )
    return (
        f'"""{docstring}\n"""\n\n'
        "from math import inf, nan  # noqa: F401  (the steps may name them)\n\n"
        f"{imports}\n\n"
        f"def test_{name}() -> None:\n"
        f"{body}\n"
    )


def write_test(
    artifact: Artifact,
    directory: str | os.PathLike[str],
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the regression test of `artifact` into `directory` (created if missing)."""
    text = regression_test_source(artifact, source)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"test_regression_{Path(artifact.file_name).stem.lower().replace('-', '_')}.py"
    path.write_text(text, encoding="utf-8")
    return path
