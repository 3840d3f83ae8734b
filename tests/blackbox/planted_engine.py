"""`solat-chaos serve` with a planted bug from `tests/planted_bugs.py` applied in the engine's
own process: an engine adapter a test (or `--engine-adapter`) loads, as a team would load
theirs. The bug is named by $SOLAT_CHAOS_PLANTED_BUG and applied by `tests.plant_cli` in the
served process only; the checker's process carries no bug. Without the variable the engine
runs unmodified, so an artifact replays against the fixed engine.

    SOLAT_CHAOS_PLANTED_BUG=kill_switch_written_in_place solat-chaos explore --target process \\
        --engine-adapter tests.blackbox.planted_engine:PlantedSolatEngine
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from solat_chaos.model.engine_adapter import SolatEngineAdapter

PLANTED_BUG_ENV = "SOLAT_CHAOS_PLANTED_BUG"
ROOT = Path(__file__).resolve().parents[2]


class PlantedSolatEngine(SolatEngineAdapter):
    name = "solat with a planted bug"

    def launcher(self) -> list[str]:
        bug = os.environ.get(PLANTED_BUG_ENV)
        if not bug:
            return super().launcher()
        return [sys.executable, "-m", "tests.plant_cli", bug]

    def environment(self, *, broker_url: str, data_dir: str) -> dict[str, str]:
        # `tests` is importable from the repository's root, wherever the harness runs.
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        return {**super().environment(broker_url=broker_url, data_dir=data_dir), "PYTHONPATH": path}
