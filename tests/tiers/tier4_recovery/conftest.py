"""The `engine_process` fixture: `solat-chaos serve` as a real process, always killed (with
the embedded broker it started) at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine_process import EngineProcess


@pytest.fixture
def engine_process(tmp_path: Path) -> Iterator[Callable[..., EngineProcess]]:
    """`engine_process(*serve_options)`: an engine on a fresh data directory, not started."""
    made: list[EngineProcess] = []

    def make(*options: str) -> EngineProcess:
        made.append(EngineProcess(tmp_path / f"data{len(made)}", *options))
        return made[-1]

    yield make
    for engine in made:
        engine.stop_all()
