"""One black-box deployment: a real engine process, the simulated IG broker it trades with,
a TCP fault proxy between them, and a data directory on a small tmpfs that can fill up.

    harness (this process)                              engine process (the adapter's command)
    SimBroker  <- LoopbackServer <- TcpFaultProxy  <------------------  IG REST client
       ^ the broker's truth, and the eyes on arrivals                   data dir on a tmpfs

The broker runs here, so its truth (positions, the request log, what it executed) is read
directly, and every order is looked at the instant it arrives: the engine's ledger file is
read right then. The engine is reached only through its `EngineAdapter`. Time is the
engine's test clock, held by the harness: it moves when a rule moves it (and a second at each
restart), and the broker stamps requests with the same time. The trade stream is real-time,
so the harness steps in lockstep with it: before it looks at the engine it waits until the
engine has handled every update the broker's stream sent it (`stream_caught_up`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable

from solat_chaos.broker.ig_http import LoopbackServer, create_app
from solat_chaos.broker.sim import SimBroker
from solat_chaos.chaos.disk import MountNotPermitted, TinyTmpfs
from solat_chaos.chaos.engine_process import EngineProcess, free_port
from solat_chaos.chaos.tcp_proxy import TcpFaultProxy
from solat_chaos.engine.broker import CloseOrder, DealConfirm, OpenOrder
from solat_chaos.engine.clock import SimClock
from solat_chaos.model.engine_adapter import EngineAdapter

# A half-open broker connection is cut after this long (the engine's own read timeout is
# longer): the request is lost and the engine sees a dead connection, never an answer.
HALF_OPEN_SECONDS = 0.3
# The data directory's file system: room for a few hundred ledger lines, small enough to fill
# in a millisecond.
TMPFS_BYTES = 1024 * 1024
RESTART_SECONDS = 1.0
START_TIMEOUT = 20.0
# How long, in real time, the harness waits for the engine to catch up with the broker's
# trade stream (a started engine connects in well under a second), and how often it asks.
STREAM_CATCH_UP_SECONDS = 5.0
STREAM_POLL_SECONDS = 0.005

OrderHook = Callable[[OpenOrder | CloseOrder], None]


class _BrokerEyes:
    """The SimBroker as the HTTP app sees it, with `on_order` called the instant an order
    arrives (on the server's thread), before the broker acts on it."""

    def __init__(self, sim: SimBroker, on_order: OrderHook) -> None:
        self._sim = sim
        self._on_order = on_order

    def __getattr__(self, name: str):
        return getattr(self._sim, name)

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        self._on_order(order)
        return await self._sim.open_position(order)

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        self._on_order(order)
        return await self._sim.close_position(order)


class _StreamBesideTheProxy:
    """The broker's app, telling the engine at login to stream from the broker itself: the
    TCP faults are for the REST calls, and the proxy relays whole answers, not a stream."""

    def __init__(self, app, world: ProcessWorld) -> None:
        self.app = app
        self.world = world

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("type") == "http" and scope.get("path", "").endswith("/session"):
            direct = f"127.0.0.1:{self.world.server.port}".encode()
            headers = [(k, direct if k == b"host" else v) for k, v in scope["headers"]]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


@functools.cache
def disk_fault_support() -> str | None:
    """Probed once: None when a tmpfs can be mounted for the data directory; else why not.
    Once per process, since the disk rules' preconditions read it: a probe refused under load
    in one example and not in the next would change what the machine draws."""
    probe = tempfile.mkdtemp(prefix="solat-tmpfs-probe-")
    try:
        TinyTmpfs(os.path.join(probe, "mnt"), size=TMPFS_BYTES).mount().unmount()
    except MountNotPermitted as exc:
        return str(exc)
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return None


class ProcessWorld:
    """Everything one example runs in. `on_order` sees each order as it reaches the broker."""

    # Over every world of this Python process, for benchmarks/process_machine.py.
    processes_started = 0
    start_seconds_total = 0.0

    def __init__(self, adapter: EngineAdapter, on_order: OrderHook, *, real_disk: bool) -> None:
        self.adapter = adapter
        self.clock = SimClock()
        self.sim = SimBroker(clock=self.clock)
        self.workdir = tempfile.mkdtemp(prefix="solat-process-")
        self.tmpfs: TinyTmpfs | None = None
        self.process: EngineProcess | None = None
        self.restarts = 0
        self.disk_full = False
        app = create_app(_BrokerEyes(self.sim, on_order))
        self.tlcp = app.state.tlcp
        self.server = LoopbackServer(_StreamBesideTheProxy(app, self))
        self.proxy: TcpFaultProxy | None = None
        try:
            self.server.start()
            self.proxy = TcpFaultProxy(self.server.port, hang_limit=HALF_OPEN_SECONDS).start()
            data_root = os.path.join(self.workdir, "data")
            if real_disk:
                self.tmpfs = TinyTmpfs(data_root, size=TMPFS_BYTES).mount()
            self.data_dir = os.path.join(data_root, "engine")
            os.makedirs(self.data_dir, exist_ok=True)
        except BaseException:
            self.close()
            raise

    @property
    def broker_url(self) -> str:
        assert self.proxy is not None
        return f"{self.proxy.base_url}/gateway/deal"

    # -- the process --------------------------------------------------------------------

    def start(self) -> None:
        """Start an engine process on the data directory and wait until it answers."""
        port = free_port()
        self.adapter.bind(f"http://127.0.0.1:{port}", self.data_dir)
        command = self.adapter.command(
            port=port, data_dir=self.data_dir, broker_url=self.broker_url, clock=self.clock.now()
        )
        env = self.adapter.environment(broker_url=self.broker_url, data_dir=self.data_dir)
        log = os.path.join(self.workdir, "engine.log")
        self.process = EngineProcess(command, env, log)
        seconds = self.process.wait_until(self.adapter.ready, START_TIMEOUT)
        ProcessWorld.processes_started += 1
        ProcessWorld.start_seconds_total += seconds

    def kill(self) -> None:
        """SIGKILL: the engine's memory is gone; its files stay as they are."""
        if self.process is not None:
            self.process.kill()
        self.adapter.close_client()

    def restart(self) -> None:
        self.kill()
        self.clock.advance(RESTART_SECONDS)
        self.restarts += 1
        self.start()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.alive

    def stream_caught_up(self) -> bool:
        """Wait until the engine has handled every update the broker's trade stream sent on
        the session the engine reads, and that stream has sent every broker event so far.
        False when that did not happen within STREAM_CATCH_UP_SECONDS (the engine has no
        stream session, say). The adapter's `NotSupported` and `EngineUnreachable` pass
        through."""
        deadline = time.monotonic() + STREAM_CATCH_UP_SECONDS
        while True:
            position = self.adapter.trade_stream_position()
            sent = self.tlcp.updates_sent(position.session)
            if sent is not None and position.updates >= sent:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(STREAM_POLL_SECONDS)

    # -- the disk -----------------------------------------------------------------------

    def fill_disk(self) -> None:
        assert self.tmpfs is not None
        self.tmpfs.fill(leave=0)
        self.disk_full = True

    def make_room(self) -> None:
        if self.tmpfs is not None:
            self.tmpfs.make_room()
        self.disk_full = False

    # -- the broker's truth ---------------------------------------------------------------

    def broker_positions(self) -> dict[str, float]:
        return {p.deal_id: p.size for p in self.sim.snapshot_positions()}

    def heal(self) -> None:
        """Every fault lifted: the proxy relays, the broker's seams are disarmed, the disk
        has room, and the engine runs (resumed, or restarted if it is dead)."""
        assert self.proxy is not None
        self.proxy.heal()
        self.sim.heal()
        self.make_room()
        if self.process is not None and self.process.paused:
            self.process.resume()
        if not self.alive:
            self.restart()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.adapter.close_client()
        if self.process is not None:
            self.process.kill()
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                self.proxy.stop()
        with contextlib.suppress(Exception):
            self.server.stop()
        if self.tmpfs is not None:
            self.tmpfs.unmount()
        shutil.rmtree(self.workdir, ignore_errors=True)
