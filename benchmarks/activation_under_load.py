"""How long kill-switch activation takes while 1,000 status reads hammer the service.

    .venv/bin/python benchmarks/activation_under_load.py [--rounds N] [--reads R]
        [--connections C]

Starts `solat-chaos serve` (the real process, embedded broker, a scratch data directory) and
runs `--rounds` rounds: the switch is turned off (with the token), then R status reads go
over C connections while an activation is sent once a quarter of them are answered. Then the
same number of activations with no load. Prints the activation latencies (client side: the
POST written to the answer read) and the reads sent after an activation's answer that still
said "inactive" (there must be none), then one result line:

    activation_under_load: rounds=20 reads=1000 connections=100 loaded_median=...ms
    loaded_p90=...ms loaded_max=...ms idle_median=...ms inactive_after_answer=0
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.engine_process import EngineProcess  # noqa: E402
from tests.kill_switch_load import status_reads_during_activation  # noqa: E402


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _rounds(engine: EngineProcess, rounds: int, reads: int, connections: int) -> None:
    loaded: list[float] = []
    idle: list[float] = []
    inactive_after_answer = 0
    async with httpx.AsyncClient(base_url=engine.url, headers=engine.auth) as operator:
        for _ in range(rounds):
            await operator.post("/execution/kill-switch/deactivate")
            load = await status_reads_during_activation(
                engine.url, reads=reads, connections=connections
            )
            loaded.append(load.latency)
            inactive_after_answer += sum(
                1 for read in load.reads if read.sent > load.answered and not read.active
            )
        for _ in range(rounds):
            await operator.post("/execution/kill-switch/deactivate")
            sent = time.perf_counter()
            await operator.post("/execution/kill-switch/activate")
            idle.append(time.perf_counter() - sent)
    print("under load:", ", ".join(_ms(v) for v in loaded))
    print("idle:      ", ", ".join(_ms(v) for v in idle))
    print(
        f"activation_under_load: rounds={rounds} reads={reads} connections={connections} "
        f"loaded_median={_ms(statistics.median(loaded))} "
        f"loaded_p90={_ms(_percentile(loaded, 0.9))} loaded_max={_ms(max(loaded))} "
        f"idle_median={_ms(statistics.median(idle))} "
        f"inactive_after_answer={inactive_after_answer}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="solat-activation-") as scratch:
        engine = EngineProcess(Path(scratch) / "data")
        try:
            engine.start()
            asyncio.run(_rounds(engine, args.rounds, args.reads, args.connections))
        finally:
            engine.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
