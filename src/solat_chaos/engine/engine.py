"""`Engine.open`: the composition root, and the only way to start — crash-only.

A restart is `Engine.open` on the same data directory: the ledger is recovered, the book
and the audit trail are folded from it, the kill switch and the halt are read back, and
the engine stays REDUCING until its first reconcile succeeds.

With a trade stream (`Engine.open(..., stream=...)`) the engine also stays REDUCING while the
stream is blind, polls reconciliation every `blind_reconcile_interval` meanwhile, and makes
each reconcile a backfill (activity since the last event seen, minus `backfill_margin`).
"""

from __future__ import annotations

import attrs

from solat_chaos.engine.balance import BalanceCache
from solat_chaos.engine.broker import Broker
from solat_chaos.engine.broker_link import BrokerLink
from solat_chaos.engine.clock import Clock, SystemClock
from solat_chaos.engine.durable_switch import SwitchStatus
from solat_chaos.engine.filesystem import FileSystem, OsFileSystem
from solat_chaos.engine.health import Health, HealthThresholds, stale_ages
from solat_chaos.engine.journal import Journal
from solat_chaos.engine.kill_switch import KillSwitch
from solat_chaos.engine.ledger import Ledger
from solat_chaos.engine.positions import Position
from solat_chaos.engine.reconciler import Reconciler, ReconcileReport
from solat_chaos.engine.risk import RiskLimits
from solat_chaos.engine.router import OrderIntent, OrderResult, Router
from solat_chaos.engine.snapshots import SnapshotBuffer
from solat_chaos.engine.stream import TradeStream
from solat_chaos.engine.stream_watch import StreamWatch
from solat_chaos.engine.trading_state import HaltSwitch, TradingState, TradingStatus, trading_status

DEFAULT_EPICS = frozenset({"CS.D.EURUSD.TODAY.IP", "CS.D.GBPUSD.TODAY.IP", "IX.D.FTSE.DAILY.IP"})


@attrs.frozen
class EngineConfig:
    epics: frozenset[str] = DEFAULT_EPICS
    balance_ttl: float = 60.0
    limits: RiskLimits = RiskLimits()
    reference_prefix: str = "SOLAT"
    health: HealthThresholds = HealthThresholds()
    read_attempts: int = 3
    # How long an order's request may still reach the broker after it was sent; until then
    # an order the broker has no record of stays in doubt.
    in_doubt_grace: float = 60.0
    snapshot_max_pending: int = 64
    snapshot_flush_every: int = 8
    # How often `tick` reconciles with the broker when nothing asks for it sooner.
    reconcile_interval: float = 60.0
    # How often `tick` reconciles while the trade stream is blind (the short poll).
    blind_reconcile_interval: float = 5.0
    # A backfill reads the activity since the last event seen minus this much (clock skew,
    # events in flight when the stream went quiet).
    backfill_margin: float = 60.0


class Engine:
    def __init__(
        self,
        data_dir: str,
        broker: Broker,
        fs: FileSystem,
        clock: Clock,
        config: EngineConfig,
        stream: TradeStream | None = None,
    ):
        self.data_dir = data_dir
        self.fs = fs
        self.clock = clock
        self.config = config
        fs.makedirs(data_dir)
        self.kill_switch = KillSwitch(fs, data_dir)
        self.halt_switch = HaltSwitch(fs, data_dir)
        ledger, self.recovery = Ledger.open(fs, data_dir, clock.now())
        self.journal = Journal(ledger)
        self.link = BrokerLink(broker, clock, read_attempts=config.read_attempts)
        self.balance = BalanceCache(self.link, clock, config.balance_ttl)
        self.snapshots = SnapshotBuffer(
            fs,
            data_dir,
            max_pending=config.snapshot_max_pending,
            flush_every=config.snapshot_flush_every,
        )
        self.router = Router(
            self.journal,
            self.link,
            self.balance,
            clock,
            epics=config.epics,
            limits=config.limits,
            reference_prefix=config.reference_prefix,
            trading_status=self.trading_status,
            on_fill=self._snapshot,
        )
        self.reconciler = Reconciler(
            self.journal,
            self.link,
            clock,
            self.router.in_flight,
            in_doubt_grace=config.in_doubt_grace,
            on_book_change=self.balance.fill_happened,
        )
        self.reconciled = False
        self._last_reconcile_started: float | None = None
        self._opened_at = clock.now()
        self.stream = stream
        self.watch: StreamWatch | None = None
        if stream is not None:
            self.watch = StreamWatch(
                self.journal,
                self.reconciler,
                self.router.in_flight,
                clock,
                silence=config.health.stream,
                on_book_change=self._book_changed,
            )
            stream.start(self.watch)

    @classmethod
    def open(
        cls,
        data_dir: str,
        broker: Broker,
        *,
        fs: FileSystem | None = None,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
        stream: TradeStream | None = None,
    ) -> Engine:
        return cls(
            data_dir,
            broker,
            fs or OsFileSystem(),
            clock or SystemClock(),
            config or EngineConfig(),
            stream,
        )

    # -- orders ------------------------------------------------------------------------

    async def submit_order_intent(self, intent: OrderIntent) -> OrderResult:
        self.retry_pending()
        return await self.router.submit_order_intent(intent)

    async def close_position(self, deal_id: str, size: float | None = None) -> OrderResult:
        self.retry_pending()
        return await self.router.close_position(deal_id, size)

    async def reconcile(self) -> ReconcileReport:
        self._last_reconcile_started = self.clock.monotonic()
        start = self.watch.reconcile_starting() if self.watch is not None else None
        if not self.retry_pending():
            return ReconcileReport(
                False, f"outcomes pending, ledger not writable: {self.journal.last_write_error}"
            )
        report = await self.reconciler.reconcile(activity_since=self._backfill_since())
        if report.ok:
            self.reconciled = True
            if start is not None and self.watch is not None:
                self.watch.reconcile_succeeded(start)
        return report

    def _backfill_since(self) -> float | None:
        """Where a backfill's activity read starts; None without a stream (no backfill)."""
        if self.watch is None:
            return None
        last = self.watch.last_event_at
        return (self._opened_at if last is None else last) - self.config.backfill_margin

    async def tick(self) -> ReconcileReport | None:
        """The engine's periodic work; its host calls this about once a second (on the Clock).

        Writes the outcomes the disk refused, and reconciles when one is due: every
        `reconcile_interval`, every `blind_reconcile_interval` while the stream is blind, and
        at once when a stream event contradicted the book. Returns the reconcile's report
        when it ran one."""
        self.retry_pending()
        if self.reconcile_due_in() > 0:
            return None
        return await self.reconcile()

    def reconcile_due_in(self) -> float:
        """Seconds until `tick` reconciles; 0 when the next tick will."""
        interval = self.config.reconcile_interval
        if self.watch is not None:
            if self.watch.blind() is not None:
                interval = self.config.blind_reconcile_interval
            if self.watch.reconcile_due:
                interval = 0.0
        last = self._last_reconcile_started
        if last is None:
            return 0.0
        return max(0.0, last + interval - self.clock.monotonic())

    # -- switches ----------------------------------------------------------------------

    def activate_kill_switch(self, reason: str = "activated by operator") -> SwitchStatus:
        return self.kill_switch.turn_on(reason, self.clock.now())

    def deactivate_kill_switch(self, reason: str = "deactivated by operator") -> SwitchStatus:
        return self.kill_switch.turn_off(reason, self.clock.now())

    def halt(self, reason: str = "halted by operator") -> SwitchStatus:
        return self.halt_switch.turn_on(reason, self.clock.now())

    def resume(self, reason: str = "resumed by operator") -> SwitchStatus:
        return self.halt_switch.turn_off(reason, self.clock.now())

    # -- reads -------------------------------------------------------------------------

    def trading_status(self) -> TradingStatus:
        return trading_status(
            halted=self.halt_switch.status.reason if self.halt_switch.active else None,
            outcomes_pending=len(self.journal.pending),
            ledger_unreadable=self.recovery.unreadable,
            kill_switch=self.kill_switch.status.reason if self.kill_switch.active else None,
            reconciled=self.reconciled,
            stream_blind=self.watch.blind() if self.watch is not None else None,
        )

    @property
    def state(self) -> TradingState:
        return self.trading_status().state

    def positions(self) -> dict[str, Position]:
        return self.journal.book.positions()

    def retry_pending(self) -> bool:
        """Try to write the outcomes the disk refused; whether none is left. Every order and
        reconcile does this first; a deployment also calls it on a timer."""
        return self.journal.write_pending()

    def health(self) -> Health:
        """A pure read, computed now from ages and state."""
        now = self.clock.monotonic()
        ages: dict[str, float | None] = {
            "broker": None if self.link.last_ok is None else now - self.link.last_ok,
            "balance": self.balance.age if self.balance.fetched else None,
        }
        blind = None
        if self.watch is not None:
            ages["stream"] = self.watch.age()
            blind = self.watch.blind()
        stale = stale_ages(ages, self.config.health)
        status = self.trading_status()
        reasons = [f"{name} stale" for name, is_stale in stale.items() if is_stale]
        reasons += list(status.reasons)
        if self.journal.pending:
            reasons.append(f"ledger: {self.journal.last_write_error}")
        if self.snapshots.last_error:
            reasons.append(self.snapshots.last_error)
        if blind is not None:
            verdict = "blind"
        elif any(stale.values()):
            verdict = "stale"
        elif status.state is not TradingState.ACTIVE or self.snapshots.last_error:
            verdict = "degraded"
        else:
            verdict = "ok"
        return Health(
            status=verdict,
            trading_state=str(status.state),
            reasons=tuple(reasons),
            ages=ages,
            stale=stale,
            outcomes_pending=len(self.journal.pending),
            in_doubt=self.journal.audit.unresolved_count() - len(self.router.in_flight),
            kill_switch_active=self.kill_switch.active,
            snapshots_pending=len(self.snapshots.pending),
            snapshots_dropped=self.snapshots.dropped,
            stream=None if self.watch is None else str(self.watch.state or "NOT_CONNECTED"),
            blind=blind,
        )

    def _book_changed(self) -> None:
        """A stream event resolved an order in doubt: like any fill, it moves the balance."""
        self.balance.fill_happened()
        self._snapshot()

    def _snapshot(self) -> None:
        self.snapshots.add(
            {
                "at": self.clock.now(),
                "positions": [attrs.asdict(p, recurse=False) for p in self.positions().values()],
            }
        )
