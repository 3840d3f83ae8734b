"""An engine on a file system and a SimBroker, restartable like a crashed process.

`EngineEnv` is what a chaos test (or a unit test of the core) needs around the engine: the
disk, the clock, the broker's ground truth (`sim`), and the port the engine talks through
(`port`, a `HookedBroker`, so a test can act at the very moment the broker receives a call).
The helpers below read the ledger straight from the bytes, durable or current, never from
the engine's memory: what a test asserts is what a restart would find.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import attrs

from solat_chaos.broker.sim import (
    ACCOUNT,
    ACTIVITY,
    CLOSE_POSITION,
    CONFIRM,
    OPEN_POSITION,
    ORDER_METHODS,
    POSITIONS,
    BrokerRequest,
    SimBroker,
)
from solat_chaos.chaos.sim_filesystem import SimFileSystem
from solat_chaos.engine.broker import (
    Account,
    Broker,
    BrokerActivity,
    BrokerPosition,
    CloseOrder,
    DealConfirm,
    OpenOrder,
)
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine, EngineConfig
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.ledger import LEDGER_FILE, unframe
from solat_chaos.engine.positions import Position
from solat_chaos.engine.records import Record
from solat_chaos.engine.risk import RiskLimits
from solat_chaos.engine.stream import TradeStream

EURUSD = "CS.D.EURUSD.TODAY.IP"
GBPUSD = "CS.D.GBPUSD.TODAY.IP"
FTSE = "IX.D.FTSE.DAILY.IP"

# A hook sees the argument of the port call: the order, the deal reference, or None.
PortHook = Callable[[Any], None]


def ledger_records(data: bytes) -> list[Record]:
    """Every record of ledger bytes whose line verifies; torn and corrupt lines are skipped,
    as recovery would quarantine them."""
    records = []
    for line in data.split(b"\n"):
        try:
            records.append(unframe(line).record)
        except ValueError:
            continue
    return records


def records_on_disk(fs: FileSystem, root: str) -> list[Record]:
    """Every record of the ledger that verifies, read straight from the file's current bytes."""
    path = f"{root}/{LEDGER_FILE}"
    return ledger_records(fs.read(path)) if fs.exists(path) else []


def records_of(fs: FileSystem, root: str, deal_reference: str) -> list[Record]:
    return [
        r for r in records_on_disk(fs, root) if getattr(r, "deal_reference", None) == deal_reference
    ]


def position_sizes(positions: dict[str, Position] | list[BrokerPosition]) -> dict[str, float]:
    """{deal id: size} of a local book (`engine.positions()`) or a broker's positions list:
    the form in which local and broker positions are compared."""
    if isinstance(positions, dict):
        return {deal_id: p.size for deal_id, p in positions.items()}
    return {p.deal_id: p.size for p in positions}


class HookedBroker:
    """The engine's broker port with test hooks before and after each port method: the way
    a test looks at the disk, or changes the world, at the very moment the broker is called."""

    def __init__(self, inner: Broker) -> None:
        self.inner = inner
        self._before: dict[str, list[PortHook]] = defaultdict(list)
        self._after: dict[str, list[PortHook]] = defaultdict(list)

    def before(self, method: str, hook: PortHook) -> Callable[[], None]:
        """Run `hook` before every call of `method`; returns a function removing it."""
        self._before[method].append(hook)
        return lambda: self._before[method].remove(hook)

    def after(self, method: str, hook: PortHook) -> Callable[[], None]:
        """Run `hook` after every call of `method` that returned; returns its remover."""
        self._after[method].append(hook)
        return lambda: self._after[method].remove(hook)

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        return await self._call(OPEN_POSITION, order, self.inner.open_position)

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        return await self._call(CLOSE_POSITION, order, self.inner.close_position)

    async def confirm(self, deal_reference: str) -> DealConfirm | None:
        return await self._call(CONFIRM, deal_reference, self.inner.confirm)

    async def positions(self) -> list[BrokerPosition]:
        return await self._call(POSITIONS, None, lambda _: self.inner.positions())

    async def account(self) -> Account:
        return await self._call(ACCOUNT, None, lambda _: self.inner.account())

    async def activity(self, since: float) -> list[BrokerActivity]:
        return await self._call(ACTIVITY, since, self.inner.activity)

    async def _call(self, method: str, arg: Any, call: Callable[[Any], Any]) -> Any:
        for hook in list(self._before[method]):
            hook(arg)
        answer = await call(arg)
        for hook in list(self._after[method]):
            hook(arg)
        return answer


@attrs.define
class EngineEnv:
    """One deployment of the engine: `fs` at `root`, `clock`, the broker's truth `sim`, and
    the `port` the engine calls (the sim itself, or a view of it such as IGRestBroker)."""

    fs: FileSystem
    root: str
    clock: SimClock
    sim: SimBroker
    port: HookedBroker
    config: EngineConfig = EngineConfig()

    @classmethod
    def on(
        cls,
        fs: FileSystem,
        root: str,
        clock: SimClock,
        sim: SimBroker,
        broker: Broker | None = None,
    ) -> EngineEnv:
        """An environment whose engine talks to `broker` (default: `sim` directly)."""
        fs.makedirs(root)
        return cls(fs, root, clock, sim, HookedBroker(sim if broker is None else broker))

    def with_broker(self, broker: Broker) -> EngineEnv:
        """The same disk, clock and broker truth, reached through another port (e.g. an
        IGRestBroker over HTTP in front of `sim`)."""
        return attrs.evolve(self, port=HookedBroker(broker))

    def configure(self, **fields: Any) -> EngineConfig:
        """Change the configuration of the engines opened from now on."""
        self.config = attrs.evolve(self.config, **fields)
        return self.config

    # -- the engine's life ---------------------------------------------------------------

    def open_engine(self, *, stream: TradeStream | None = None, **limits: Any) -> Engine:
        if limits:
            self.config = attrs.evolve(self.config, limits=RiskLimits(**limits))
        return Engine.open(
            self.root, self.port, fs=self.fs, clock=self.clock, config=self.config, stream=stream
        )

    async def ready_engine(self, *, stream: TradeStream | None = None, **limits: Any) -> Engine:
        """An engine past its startup reconcile (ACTIVE unless a switch says otherwise)."""
        engine = self.open_engine(stream=stream, **limits)
        report = await engine.reconcile()
        assert report.ok, f"startup reconcile failed: {report.error}"
        return engine

    def restart(self, torn_bytes: int = 0) -> Engine:
        """Drop the engine like a crashed process and open a new one from what is durable.
        On a SimFileSystem this is a power cut (`crash(torn_bytes)`); on the real disk a
        process crash keeps the page cache, so nothing is lost there."""
        if isinstance(self.fs, SimFileSystem):
            self.fs.crash(torn_bytes)
        return self.open_engine()

    # -- what is durable, what the broker holds --------------------------------------------

    @property
    def ledger_path(self) -> str:
        return f"{self.root}/{LEDGER_FILE}"

    def durable_records(self) -> list[Record]:
        """The records a restart would recover now: the durable bytes on a SimFileSystem,
        the file on a real disk."""
        if isinstance(self.fs, SimFileSystem):
            return ledger_records(self.fs.durable_bytes(self.ledger_path) or b"")
        return records_on_disk(self.fs, self.root)

    def durable_records_of(self, deal_reference: str) -> list[Record]:
        return [
            r
            for r in self.durable_records()
            if getattr(r, "deal_reference", None) == deal_reference
        ]

    def broker_sizes(self) -> dict[str, float]:
        """The broker's ground truth, {deal id: size}."""
        return position_sizes(self.sim.snapshot_positions())

    def sim_order_requests(self) -> list[BrokerRequest]:
        """Every order (open or close) that reached the broker."""
        return [r for r in self.sim.requests if r.kind in ORDER_METHODS]

    # -- shorthands for tests ------------------------------------------------------------

    def fail_broker(
        self, method: str, error: Exception, *, times: int = 1, after_execute: bool = False
    ) -> None:
        self.sim.fail_next(method, error, after_execute=after_execute, count=times)

    def before_broker_open(self, hook: Callable[[OpenOrder], None]) -> None:
        self.port.before(OPEN_POSITION, hook)

    def after_broker_open(self, hook: Callable[[OpenOrder], None]) -> None:
        self.port.after(OPEN_POSITION, hook)
