"""An engine on a file system and a simulated broker, restartable like a crashed process."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from solat_chaos.broker.sim import ORDER_METHODS, SimBroker
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.broker import Broker, CloseOrder, DealConfirm, OpenOrder
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine, EngineConfig
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.ledger import LEDGER_FILE, unframe
from solat_chaos.engine.records import Record
from solat_chaos.engine.risk import RiskLimits

EURUSD = "CS.D.EURUSD.TODAY.IP"
GBPUSD = "CS.D.GBPUSD.TODAY.IP"


def records_on_disk(fs: FileSystem, root: str) -> list[Record]:
    """Every record of the ledger that verifies, read straight from the file."""
    path = f"{root}/{LEDGER_FILE}"
    if not fs.exists(path):
        return []
    records = []
    for line in fs.read(path).split(b"\n"):
        try:
            records.append(unframe(line).record)
        except ValueError:
            continue
    return records


def records_of(fs: FileSystem, root: str, deal_reference: str) -> list[Record]:
    return [
        r for r in records_on_disk(fs, root) if getattr(r, "deal_reference", None) == deal_reference
    ]


class HookedBroker:
    """The engine's broker port with test hooks around `open_position`: the way a test looks
    at the disk at the very moment the broker receives an order."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self.before_open: list[Callable[[OpenOrder], None]] = []
        self.after_open: list[Callable[[OpenOrder], None]] = []

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        for hook in self.before_open:
            hook(order)
        confirm = await self.inner.open_position(order)
        for hook in self.after_open:
            hook(order)
        return confirm

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        return await self.inner.close_position(order)

    async def confirm(self, deal_reference: str):
        return await self.inner.confirm(deal_reference)

    async def positions(self):
        return await self.inner.positions()

    async def account(self):
        return await self.inner.account()


@attrs.define
class EngineEnv:
    fs: FileSystem
    root: str
    clock: SimClock
    sim: SimBroker
    port: HookedBroker
    config: EngineConfig = EngineConfig()

    def open_engine(self, **limits) -> Engine:
        if limits:
            self.config = attrs.evolve(self.config, limits=RiskLimits(**limits))
        return Engine.open(self.root, self.port, fs=self.fs, clock=self.clock, config=self.config)

    async def ready_engine(self, **limits) -> Engine:
        engine = self.open_engine(**limits)
        assert (await engine.reconcile()).ok
        return engine

    def restart(self) -> Engine:
        """Drop the engine like a crashed process and open a new one from what is durable
        (on the real disk a process crash keeps the page cache, so nothing is lost there)."""
        if isinstance(self.fs, SimFileSystem):
            self.fs.crash()
        return self.open_engine()

    def sim_order_requests(self) -> list:
        return [r for r in self.sim.requests if r.kind in ORDER_METHODS]

    def fail_broker(self, method: str, error: Exception, *, times: int = 1, after_execute=False):
        self.sim.fail_next(method, error, after_execute=after_execute, count=times)

    def before_broker_open(self, hook: Callable[[OpenOrder], None]) -> None:
        self.port.before_open.append(hook)

    def after_broker_open(self, hook: Callable[[OpenOrder], None]) -> None:
        self.port.after_open.append(hook)
