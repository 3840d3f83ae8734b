"""`solat-chaos` with one planted bug, for showing that explore finds it and replay
reproduces it. The bug is applied here, in this process and (through explore's initializer)
in every worker process — never by anything in src/.

    python -m tests.plant_cli BUG COMMAND [OPTIONS]     e.g. broker_before_intent explore
"""

from __future__ import annotations

import functools
import sys

from solat_chaos.cli import main
from tests.planted_bugs import BUGS, plant

if __name__ == "__main__":
    bug, *argv = sys.argv[1:]
    if bug not in BUGS:
        sys.exit(f"unknown bug {bug!r}; one of: {', '.join(BUGS)}")
    plant(bug)
    sys.exit(main(argv, initializer=functools.partial(plant, bug)))
