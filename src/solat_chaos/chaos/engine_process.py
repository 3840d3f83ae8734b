"""An engine as a real OS process: started, killed with SIGKILL, paused with SIGSTOP.

`EngineProcess(command, env)` starts the program in its own process group, its output
going to a log file (read it after a failure: `log_tail()`). `wait_until(ready, timeout)`
polls until the engine answers; the wait is bounded and says why when it gives up (the
process exited, with its log, or the time ran out). Every process it starts it also ends:
`kill()` sends SIGKILL and reaps it, `stop()` as well, and a paused process is killed
paused, so nothing outlives the harness.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

POLL_SECONDS = 0.01


class EngineDidNotStart(RuntimeError):
    """The engine exited or did not answer in time; the message has its log's tail."""


def free_port() -> int:
    """A port free on 127.0.0.1 now (the engine binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EngineProcess:
    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], log_path: str, cwd: str | None = None
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self._popen = subprocess.Popen(
                self.command,
                env={**os.environ, **env},
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.paused = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float = 15.0) -> float:
        """Poll `ready` until it is true; the seconds it took. EngineDidNotStart when the
        process exits or `timeout` passes first."""
        begun = time.monotonic()
        while not ready():
            if not self.alive:
                raise EngineDidNotStart(
                    f"the engine exited with status {self._popen.returncode} during start-up:\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() - begun > timeout:
                self.kill()
                raise EngineDidNotStart(
                    f"the engine did not answer within {timeout}s:\n{self.log_tail()}"
                )
            time.sleep(POLL_SECONDS)
        return time.monotonic() - begun

    def kill(self) -> None:
        """SIGKILL, and reap it: no clean-up code of the engine runs."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait(timeout=10)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the process stops where it is; its sockets stay open."""
        os.killpg(self._popen.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.killpg(self._popen.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as log:
                text = log.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])
