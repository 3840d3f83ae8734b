"""Failure artifacts: one JSON file per failing example, enough to replay it exactly.

`write(artifact, directory)` stores `<directory>/<invariant>-<hash>.json`, where the hash is
of the machine class, the invariant and the shrunk steps, so the same example found twice (by
two workers, say, whose blobs may differ in encoding only) is one file. The file is written
whole or not at all (temporary file, then rename).

Schema (version 1; every key always present):

| key                 | value                                                              |
|---------------------|--------------------------------------------------------------------|
| schema              | 1                                                                  |
| invariant           | the invariant name (model.invariants), ENGINE_RAISED or MODEL_ERROR |
| evidence            | what the invariant saw (the message after "NAME: ")                |
| message             | "<ExceptionType>: <message>"                                       |
| machine             | the machine's name in MACHINES (what `replay` looks up)            |
| machine_class       | "module:QualName" of the machine class, for people                 |
| seed                | the Hypothesis seed of the run that found it (int or null)         |
| profile             | the settings profile of that run                                   |
| stateful_step_count | the step budget of that run; replay uses it, since a smaller budget |
|                     | would cut the example short                                        |
| solat_chaos_version | the project's version                                              |
| git_commit          | `git rev-parse HEAD` of the checkout, null outside a git checkout  |
| hypothesis_version  | the Hypothesis version the blob belongs to                         |
| reproduce_blob      | the blob, ASCII: `@reproduce_failure(hypothesis_version, blob)`;   |
|                     | empty when there is none (a failure that is not reproducible)      |
| reproduce_decorator | that decorator as code, to paste onto the machine class; empty     |
|                     | when the blob is                                                   |
| steps               | the shrunk example as Python code                                  |
| traceback           | the formatted exception of the failing run                         |
| created_at          | UTC time, ISO 8601                                                 |
| engine_adapter      | process machines only: "module:Class" of the engine adapter the    |
|                     | example ran against (replay uses it); null for the in-process ones |
|                     | (and absent from artifacts written before it existed)              |
| broker_view         | the broker view the example ran in (`model.views`: "sim", "rest"); |
|                     | replay uses it. Absent from older artifacts: "sim"                 |
| not_reproducible    | null, or why Hypothesis could not run the example again the same   |
|                     | way (its Flaky error, one line): then evidence and traceback are   |
|                     | the first failing run's, steps list the rules it ran, the blob may |
|                     | be empty (absent from artifacts written before it existed)         |
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

import solat_chaos
from solat_chaos.model.runner import Failure
from solat_chaos.model.views import SIM

SCHEMA = 1


class ArtifactError(Exception):
    """A file is not a readable failure artifact; the message says why."""


@attrs.frozen
class Artifact:
    invariant: str
    evidence: str
    message: str
    machine: str
    machine_class: str
    seed: int | None
    profile: str
    stateful_step_count: int
    solat_chaos_version: str
    git_commit: str | None
    hypothesis_version: str
    reproduce_blob: str
    reproduce_decorator: str
    steps: str
    traceback: str
    created_at: str
    schema: int = SCHEMA
    engine_adapter: str | None = None
    broker_view: str = SIM
    not_reproducible: str | None = None

    @classmethod
    def of(
        cls,
        failure: Failure,
        *,
        machine: str,
        machine_cls: type,
        seed: int | None,
        profile: str,
        stateful_step_count: int,
        broker_view: str = SIM,
    ) -> Artifact:
        return cls(
            invariant=failure.invariant,
            evidence=failure.evidence,
            message=failure.message,
            machine=machine,
            machine_class=f"{machine_cls.__module__}:{machine_cls.__qualname__}",
            seed=seed,
            profile=profile,
            stateful_step_count=stateful_step_count,
            solat_chaos_version=solat_chaos.__version__,
            git_commit=current_commit(),
            hypothesis_version=failure.hypothesis_version,
            reproduce_blob=failure.blob,
            reproduce_decorator=(
                f"@reproduce_failure({failure.hypothesis_version!r}, "
                f"{failure.blob.encode('ascii')!r})"
                if failure.blob
                else ""
            ),
            steps=failure.steps,
            traceback=failure.traceback,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            engine_adapter=_adapter_of(machine_cls),
            broker_view=broker_view,
            not_reproducible=failure.not_reproducible,
        )

    @property
    def file_name(self) -> str:
        # The view only when it is not the default, so sim-view names stay what they were.
        view = "" if self.broker_view == SIM else f"\0{self.broker_view}"
        digest = hashlib.sha256(
            f"{self.machine_class}\0{self.invariant}\0{self.steps}{view}".encode()
        )
        return f"{self.invariant}-{digest.hexdigest()[:12]}.json"


def _adapter_of(machine_cls: type) -> str | None:
    adapter = getattr(machine_cls, "adapter_cls", None)
    return None if adapter is None else f"{adapter.__module__}:{adapter.__qualname__}"


def write(artifact: Artifact, directory: str | os.PathLike[str]) -> Path:
    """Store `artifact` in `directory` (created if missing); the path written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / artifact.file_name
    text = json.dumps(attrs.asdict(artifact), indent=2, sort_keys=True) + "\n"
    # Workers writing the same failure at once must each leave a whole file.
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path


def read(path: str | os.PathLike[str]) -> Artifact:
    """The artifact stored at `path`; ArtifactError when it is missing or not one."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise ArtifactError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ArtifactError(f"{path}: not a solat-chaos failure artifact (schema {SCHEMA})")
    fields = {field.name for field in attrs.fields(Artifact)}
    optional = {"engine_adapter", "broker_view", "not_reproducible"}
    missing = sorted(fields - optional - data.keys())
    if missing:
        raise ArtifactError(f"{path}: missing {', '.join(missing)}")
    return Artifact(**{name: data[name] for name in fields if name in data})


def replay_command(path: str | os.PathLike[str]) -> str:
    return f"solat-chaos replay {path}"


@functools.cache
def current_commit() -> str | None:
    """HEAD of the git checkout holding this package; None when it is not in one."""
    package_dir = Path(solat_chaos.__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None
