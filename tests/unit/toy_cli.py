"""`solat-chaos` on the toy machines, with the overdraft bug planted on request.

    python -m tests.unit.toy_cli [--bug] COMMAND [OPTIONS]

The subprocess tests of explore and replay run this script: the bug is planted here (in this
process, and by explore's initializer in every worker process), never by anything in src/.
"""

from __future__ import annotations

import sys

from solat_chaos.cli import main
from tests.unit.toy_machines import TOY_MACHINES, plant_overdraft_bug

if __name__ == "__main__":
    argv = sys.argv[1:]
    bug = argv[:1] == ["--bug"]
    if bug:
        argv = argv[1:]
        plant_overdraft_bug()
    sys.exit(main(argv, machines=TOY_MACHINES, initializer=plant_overdraft_bug if bug else None))
