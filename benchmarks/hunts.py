"""CPU seconds of the planted-bug hunts as the default test run runs them: the `hunt` of
tests/stateful/test_catches_planted_bugs.py (the bug's machine on seeds in turn, until a
counterexample of at most 8 steps), of the checkout in the current directory.

    cd CHECKOUT && PYTHONPATH=src python /path/to/benchmarks/hunts.py [BUG...]

Run it in two checkouts side by side (say, before and after a change) to compare them. Every
module of the package is imported first, as tests/conftest.py does, so the hunts draw the
same examples as under pytest. Prints one line a bug (CPU seconds, the invariants found, the
steps of each seed's counterexample), then the total.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time

sys.path.insert(0, os.getcwd())

import solat_chaos  # noqa: E402

# Not tests/conftest.py's `import_the_package`: the checkout measured may be older than it.
for module in pkgutil.walk_packages(solat_chaos.__path__, f"{solat_chaos.__name__}."):
    if not module.name.endswith(".__main__"):
        importlib.import_module(module.name)

from tests.planted_bugs import planted  # noqa: E402
from tests.stateful.test_catches_planted_bugs import (  # noqa: E402
    IN_PROCESS,
    hunt,
    steps_of_program,
)


def main() -> None:
    total = 0.0
    for bug in sys.argv[1:] or IN_PROCESS:
        begun = time.process_time()
        with planted(bug):
            found = hunt(bug)
        cpu = time.process_time() - begun
        total += cpu
        steps = [len(steps_of_program(failure.steps)) for failure in found]
        invariants = sorted({failure.invariant for failure in found}) or ["NOT FOUND"]
        print(f"{bug} cpu={cpu:.1f}s {','.join(invariants)} steps={steps}", flush=True)
    print(f"total cpu={total:.1f}s")


if __name__ == "__main__":
    main()
