"""`solat-chaos serve` as a real process, for the tests (and the benchmark) that kill it.

`EngineProcess(data_dir, *options).start()` runs the installed command on a free loopback
port and returns once `/health` answers; `kill()` is SIGKILL. The embedded broker the engine
starts lives in a process of its own and outlives the kill (that is the point): `stop_all`
(the `engine_processes` fixture's teardown) kills the engines and their brokers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from solat_chaos.api.serve import BROKER_FILE, SERVICE_FILE
from solat_chaos.api.token import TOKEN_FILE

START_TIMEOUT = 30.0


class EngineProcess:
    def __init__(self, data_dir: Path, *options: str) -> None:
        self.data_dir = data_dir
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.broker_pids: set[int] = set()

    @property
    def token(self) -> str:
        return (self.data_dir / TOKEN_FILE).read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def broker_url(self) -> str:
        return json.loads((self.data_dir / BROKER_FILE).read_text())["url"]

    @property
    def log(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")

    def start(self, timeout: float = START_TIMEOUT) -> str:
        """Start the engine on the data directory; its URL once `/health` answers."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / SERVICE_FILE).unlink(missing_ok=True)
        with open(self.data_dir / "serve.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "solat_chaos.cli",
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    "0",
                    *self.options,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self._serving():
            if self.process.poll() is not None:
                raise RuntimeError(f"solat-chaos serve exited at start:\n{self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"solat-chaos serve did not start in {timeout}s:\n{self.log}")
            time.sleep(0.05)
        if (self.data_dir / BROKER_FILE).exists():
            self.broker_pids.add(json.loads((self.data_dir / BROKER_FILE).read_text())["pid"])
        return self.url

    def _serving(self) -> bool:
        try:
            service = json.loads((self.data_dir / SERVICE_FILE).read_text())
        except (OSError, ValueError):
            return False
        if self.process is None or service.get("pid") != self.process.pid:
            return False
        self.url = service["url"]
        try:
            return httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_for(self, predicate, what: str, timeout: float = START_TIMEOUT) -> dict:
        """Poll `/health` until `predicate(health)` holds; that health document."""
        deadline = time.monotonic() + timeout
        while True:
            health = httpx.get(f"{self.url}/health", timeout=2.0).json()
            if predicate(health):
                return health
            if time.monotonic() > deadline:
                raise TimeoutError(f"engine never {what}; last health {health}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was not on disk is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop_all(self) -> None:
        self.kill()
        for pid in self.broker_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.broker_pids.clear()
