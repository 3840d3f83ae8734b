"""Planted bugs: each one a realistic mistake, applied to the core (or, named so, to the IG
REST adapter) by monkeypatching, so the checker can prove it finds it. Nothing in `src/`
knows these exist.

Use: `with planted("kill_switch_not_fsynced"): ...`, or `BUGS[name]` for the catalogue.
"""

from __future__ import annotations

import posixpath
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import pytest

from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.engine import durable_switch, records, risk, trading_state
from solat_chaos.engine import engine as engine_module
from solat_chaos.engine import router as router_module
from solat_chaos.engine.balance import BalanceCache
from solat_chaos.engine.broker import (
    ACCEPTED,
    REJECTED,
    BrokerError,
    BrokerProtocolError,
    BrokerTimeout,
    BrokerUnavailable,
    DealConfirm,
)
from solat_chaos.engine.filesystem import FileSystem
from solat_chaos.engine.journal import Journal
from solat_chaos.engine.kill_switch import KillSwitch
from solat_chaos.engine.ledger import Ledger, unframe
from solat_chaos.engine.positions import PositionBook
from solat_chaos.engine.reconciler import Reconciler
from solat_chaos.engine.records import CLOSE, OPEN, Rejected, Resized
from solat_chaos.engine.risk import Commitments
from solat_chaos.engine.router import Router
from solat_chaos.engine.snapshots import SnapshotBuffer
from solat_chaos.engine.stream import OPU, POSITION_OPEN, StreamState
from solat_chaos.engine.stream_watch import StreamWatch
from solat_chaos.engine.trading_state import HaltSwitch, TradingState, TradingStatus
from solat_chaos.model import invariants
from solat_chaos.model.views import REST, SIM


@attrs.frozen
class Bug:
    """`invariant` is the one the bug breaks first in the obvious story; `also` lists others
    it legitimately breaks on the way (a reconciler that forgets positions also lets the
    engine open past its limits). `view` is the broker view (`model.views`) its machine must
    run in to reach it: a bug in the IG REST adapter is invisible on the sim port."""

    name: str
    machine: str
    invariant: str
    description: str
    apply: Callable[[pytest.MonkeyPatch], None]
    also: tuple[str, ...] = ()
    view: str = SIM

    @property
    def invariants(self) -> tuple[str, ...]:
        return (self.invariant, *self.also)


def _broker_before_intent(mp: pytest.MonkeyPatch) -> None:
    write_intent, send = Router._write_intent, Router._send

    async def send_then_write(self, intent, call):
        async def call_then_write():
            try:
                return await call()
            finally:
                write_intent(self, intent)

        return await send(self, intent, call_then_write)

    mp.setattr(Router, "_write_intent", lambda self, record: None)
    mp.setattr(Router, "_send", send_then_write)


def _kill_switch_not_fsynced(mp: pytest.MonkeyPatch) -> None:
    def replace_without_fsync(fs: FileSystem, path: str, data: bytes) -> None:
        fs.write(path + ".tmp", data)
        fs.rename(path + ".tmp", path)

    mp.setattr(durable_switch, "replace_atomically", replace_without_fsync)


def _timed_out_positions_are_flat(mp: pytest.MonkeyPatch) -> None:
    read = Reconciler._broker_positions

    async def positions_or_nothing(self):
        try:
            return await read(self)
        except BrokerError:
            return []

    mp.setattr(Reconciler, "_broker_positions", positions_or_nothing)


class _EvictingSet:
    """An idempotency cache of one entry: what the book used to remember, it forgets."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def add(self, key: str) -> None:
        self._entries[key] = None
        while len(self._entries) > 1:
            self._entries.popitem(last=False)


def _duplicate_applied_after_eviction(mp: pytest.MonkeyPatch) -> None:
    init = PositionBook.__init__

    def with_small_cache(self) -> None:
        init(self)
        self._filled_deal_ids = _EvictingSet()

    mp.setattr(PositionBook, "__init__", with_small_cache)


def _balance_not_refreshed_after_fill(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(BalanceCache, "fill_happened", lambda self: None)


def _partial_close_recorded_as_full(mp: pytest.MonkeyPatch) -> None:
    confirmed = Router._confirmed

    def as_full(self, intent, confirm):
        if intent.action == CLOSE:
            confirm = attrs.evolve(confirm, size=intent.size)
        return confirmed(self, intent, confirm)

    mp.setattr(Router, "_confirmed", as_full)


def _recovery_drops_after_corrupt_line(mp: pytest.MonkeyPatch) -> None:
    recover = Ledger._recover

    def stop_at_first_bad_line(self, now):
        fs = self._fs

        class Truncating:
            def __getattr__(self, name):
                return getattr(fs, name)

            def read(self, path):
                data = fs.read(path)
                if posixpath.basename(path) != posixpath.basename(self_path):
                    return data
                kept, offset = [], 0
                for line in data.split(b"\n"):
                    kept.append(line)
                    try:
                        if line.strip():
                            unframe(line)
                    except ValueError:
                        break
                    offset += len(line) + 1
                return b"\n".join(kept)

        self_path = self.path
        self._fs = Truncating()
        try:
            return recover(self, now)
        finally:
            self._fs = fs

    mp.setattr(Ledger, "_recover", stop_at_first_bad_line)


def _snapshots_never_cleared(mp: pytest.MonkeyPatch) -> None:
    flush = SnapshotBuffer.flush

    def flush_and_keep(self):
        kept = list(self.pending)
        written = flush(self)
        if written:
            self.pending[:] = kept
        return written

    mp.setattr(SnapshotBuffer, "flush", flush_and_keep)


def _kill_switch_checked_before_refresh(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(Router, "_judge_state_again", lambda self, reference: None)


def _limit_ignores_in_flight_orders(mp: pytest.MonkeyPatch) -> None:
    commitments = Router.commitments

    def book_only(self):
        book = self._journal.book
        return Commitments(
            positions=len(book),
            exposure=sum(p.size for p in book.positions().values()),
            orders_last_hour=commitments(self).orders_last_hour,
        )

    mp.setattr(Router, "commitments", book_only)


def _no_reconcile_after_new_session(mp: pytest.MonkeyPatch) -> None:
    on_status = StreamWatch.on_status

    def trust_the_replay(self, status):
        new = status.state is StreamState.CONNECTED and status.session_id not in self._sessions
        on_status(self, status)
        if new:
            self.blind_reason = None  # the new session's replay taken for the whole gap

    mp.setattr(StreamWatch, "on_status", trust_the_replay)


def _event_applied_as_delta(mp: pytest.MonkeyPatch) -> None:
    on_update = StreamWatch.on_update

    def add_opened_size(self, update):
        position = self._journal.book.get(update.deal_id or "")
        if update.channel == OPU and update.status == POSITION_OPEN and position is not None:
            self.events += 1
            grown = position.size + update.size
            self._journal.record_outcome(
                Resized(f"RESIZED:{update.deal_id}@stream{self.events}", update.deal_id, grown, 0.0)
            )
            return
        on_update(self, update)

    mp.setattr(StreamWatch, "on_update", add_opened_size)


def _health_by_connection_flag(mp: pytest.MonkeyPatch) -> None:
    def age_while_connected(self):
        if self.last_seen is None:
            return None
        return (
            0.0 if self.state is StreamState.CONNECTED else self._clock.monotonic() - self.last_seen
        )

    mp.setattr(StreamWatch, "_silence", lambda self: None)
    mp.setattr(StreamWatch, "age", age_while_connected)


def _openings_allowed_while_blind(mp: pytest.MonkeyPatch) -> None:
    trading_status = engine_module.trading_status

    def ignoring_the_stream(**conditions):
        conditions.pop("stream_blind", None)
        return trading_status(**conditions)

    mp.setattr(engine_module, "trading_status", ignoring_the_stream)


def _kill_switch_written_in_place(mp: pytest.MonkeyPatch) -> None:
    def overwrite_in_place(fs: FileSystem, path: str, data: bytes) -> None:
        fs.write(path, data)
        fs.fsync(path)

    mp.setattr(durable_switch, "replace_atomically", overwrite_in_place)


def _timeout_resolved_as_rejected(mp: pytest.MonkeyPatch) -> None:
    send = Router._send

    async def timeout_is_a_refusal(self, intent, call):
        async def refused_on_timeout():
            try:
                return await call()
            except (BrokerTimeout, BrokerProtocolError) as e:
                raise BrokerUnavailable(f"treated as refused: {e}") from e

        return await send(self, intent, refused_on_timeout)

    mp.setattr(Router, "_send", timeout_is_a_refusal)


def _reconcile_rejects_what_the_broker_executed(mp: pytest.MonkeyPatch) -> None:
    resolution_by = Reconciler.resolution_by

    def resolution_misread(self, intent, confirm, now, source):
        found = resolution_by(self, intent, confirm, now, source)
        if source == "reconcile" and found is not None:
            # Misreads the confirm's status; the repair step adopts the position anyway.
            return Rejected(intent.deal_reference, source, "broker rejected: misread", now)
        return found

    mp.setattr(Reconciler, "resolution_by", resolution_misread)


def _positions_read_once(mp: pytest.MonkeyPatch) -> None:
    async def read_once(self):
        return await self._link.positions()

    mp.setattr(Reconciler, "_broker_positions", read_once)


def _rejects_everything(mp: pytest.MonkeyPatch) -> None:
    # benchmarks/old_checker.py also plants this into a core from before refusals named
    # their causes, whose check answers with the reason's text alone.
    refusal = getattr(records, "Refusal", None)
    breach = (
        "limit reached"
        if refusal is None
        else refusal("open positions limit reached", (risk.MAX_OPEN_POSITIONS,))
    )
    mp.setattr(router_module, "check_opening", lambda size, limits, balance, committed: breach)


def _limit_counts_filled_orders_twice(mp: pytest.MonkeyPatch) -> None:
    commitments = Router.commitments

    def counted_twice(self):
        # Every opening INTENT is counted, resolved or not: a fill counts as its position
        # and again as its order.
        counted = commitments(self)
        opens = [i for i in self._journal.audit.intents.values() if i.action == OPEN]
        return attrs.evolve(counted, positions=len(self._journal.book) + len(opens))

    mp.setattr(Router, "commitments", counted_twice)


def _halt_not_read_at_start(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(
        HaltSwitch,
        "_load",
        lambda self: durable_switch.SwitchStatus(False, True, "no halt state read: inactive"),
    )


def _kill_switch_reactivation_not_persisted(mp: pytest.MonkeyPatch) -> None:
    turn_on = KillSwitch.turn_on

    def turn_on_unless_on(self, reason, now):
        if self.active:  # "already on": but the last activation may not have persisted
            return self.status
        return turn_on(self, reason, now)

    mp.setattr(KillSwitch, "turn_on", turn_on_unless_on)


def _confirm_poll_failure_is_rejected(mp: pytest.MonkeyPatch) -> None:
    poll = IGRestBroker._confirm_after_order

    async def rejected_when_the_poll_fails(self, ref):
        # "No confirm, so no deal": but the POST was answered, so the order was sent.
        try:
            return await poll(self, ref)
        except BrokerError as error:
            refused = DealConfirm(
                deal_reference=ref,
                status=REJECTED,
                deal_id=None,
                epic="",
                direction="",
                size=0.0,
                level=None,
                reason=f"confirm poll failed: {error}",
            )
            return refused, ()

    mp.setattr(IGRestBroker, "_confirm_after_order", rejected_when_the_poll_fails)


def _switches_never_persist(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(durable_switch.DurableSwitch, "_persist", lambda self, active, reason, now: False)


def _fill_dedupe_not_rebuilt_at_restart(mp: pytest.MonkeyPatch) -> None:
    init = Journal.__init__

    def index_in_memory_only(self, ledger) -> None:
        init(self, ledger)
        # The fold at start restores the positions, but the deal ids already filled live
        # only in the memory of the process that filled them.
        self.book._filled_deal_ids = set()

    mp.setattr(Journal, "__init__", index_in_memory_only)


def _closes_refused_unless_active(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(TradingStatus, "refuses_reducing", TradingStatus.refuses_opening)


def _kill_switch_reason_kept_until_reconciled(mp: pytest.MonkeyPatch) -> None:
    engine_class = engine_module.Engine
    activate, reconcile, status_of = (
        engine_class.activate_kill_switch,
        engine_class.reconcile,
        engine_class.trading_status,
    )
    named, kill_switch = trading_state.Reason, trading_state.KILL_SWITCH

    def activate_and_remember(self, reason="activated by operator"):
        status = activate(self, reason)
        self.kill_switch_reason = status.reason
        return status

    async def reconcile_and_forget(self):
        report = await reconcile(self)
        if report.ok:  # the reasons are re-judged when the venue is known again
            self.kill_switch_reason = None
        return report

    def listing_the_remembered_switch(self):
        status = status_of(self)
        remembered = getattr(self, "kill_switch_reason", None)
        if status.state is TradingState.ACTIVE or remembered is None or self.kill_switch.active:
            return status
        reason = named(kill_switch, f"kill switch active: {remembered}")
        return attrs.evolve(status, why=(*status.why, reason))

    mp.setattr(engine_class, "activate_kill_switch", activate_and_remember)
    mp.setattr(engine_class, "reconcile", reconcile_and_forget)
    mp.setattr(engine_class, "trading_status", listing_the_remembered_switch)


def _exposure_refused_as_open_positions(mp: pytest.MonkeyPatch) -> None:
    check, refusal = router_module.check_opening, records.Refusal
    exposure, open_positions = risk.MAX_EXPOSURE, risk.MAX_OPEN_POSITIONS

    def copied_from_the_branch_above(size, limits, balance, committed):
        breach = check(size, limits, balance, committed)
        if breach is None or breach.causes != (exposure,):
            return breach
        # The exposure branch was pasted from the open-positions one and kept its refusal.
        return refusal(
            f"open positions limit: {committed.positions} committed, "
            f"maximum {limits.max_open_positions}",
            (open_positions,),
        )

    mp.setattr(router_module, "check_opening", copied_from_the_branch_above)


def _refused_close_recorded_filled(mp: pytest.MonkeyPatch) -> None:
    send = Router._send

    async def refusal_means_closed(self, intent, call):
        if intent.action != CLOSE:
            return await send(self, intent, call)

        async def closed_unless_in_doubt():
            try:
                confirm = await call()
            except (BrokerTimeout, BrokerProtocolError):
                raise
            except BrokerError:
                confirm = None
            if confirm is None or confirm.status != ACCEPTED:
                # "Not there to close", or refused: taken to mean the position is closed.
                return DealConfirm(
                    intent.deal_reference,
                    ACCEPTED,
                    intent.deal_id,
                    intent.epic,
                    intent.direction,
                    intent.size,
                )
            return confirm

        return await send(self, intent, closed_unless_in_doubt)

    mp.setattr(Router, "_send", refusal_means_closed)


BUGS: dict[str, Bug] = {
    bug.name: bug
    for bug in (
        Bug(
            "broker_before_intent",
            "disk",
            invariants.AUDIT_BEFORE_BROKER,
            "the router calls the broker before the INTENT record is written",
            _broker_before_intent,
        ),
        Bug(
            "kill_switch_not_fsynced",
            "recovery",
            invariants.KILL_SWITCH_DURABLE,
            "the kill switch is written and renamed but neither file nor directory fsynced "
            "(the halt too: both switches persist through the same code)",
            _kill_switch_not_fsynced,
            # The state file renamed into place but never fsynced is empty after a crash: the
            # engine fails closed, refusing orders for a kill switch the operator turned off.
            also=(invariants.HALT_DURABLE, invariants.REJECTED_JUSTIFIED),
        ),
        Bug(
            "timed_out_positions_are_flat",
            "broker",
            invariants.CONVERGENCE,
            "the reconciler treats a failed positions call as 'no positions'",
            _timed_out_positions_are_flat,
            also=(invariants.RISK_LIMITS, invariants.REPAIR_TRUTHFUL),
        ),
        Bug(
            "duplicate_applied_after_eviction",
            "broker",
            invariants.EXACTLY_ONCE_FILLS,
            "the book's idempotency cache holds one deal id, so a duplicate confirmation "
            "naming an evicted deal is applied twice",
            _duplicate_applied_after_eviction,
        ),
        Bug(
            "balance_not_refreshed_after_fill",
            "broker",
            invariants.FRESH_BALANCE,
            "a fill does not invalidate the cached balance",
            _balance_not_refreshed_after_fill,
        ),
        Bug(
            "partial_close_recorded_as_full",
            "broker",
            invariants.CONVERGENCE,
            "a close is recorded with the size asked for, not the size confirmed",
            _partial_close_recorded_as_full,
        ),
        Bug(
            "recovery_drops_after_corrupt_line",
            "disk",
            invariants.LEDGER_READABLE,
            "ledger recovery stops at the first corrupt line and drops every line after it",
            _recovery_drops_after_corrupt_line,
        ),
        Bug(
            "snapshots_never_cleared",
            "recovery",
            invariants.SNAPSHOT_BOUNDED,
            "a successful snapshot flush does not clear the buffer",
            _snapshots_never_cleared,
        ),
        Bug(
            "kill_switch_checked_before_refresh",
            "recovery",
            invariants.KILL_SWITCH_DURABLE,
            "the kill switch (and the halt) is checked only before the balance refresh, so "
            "an order awaiting the refresh opens a position after activation returned",
            _kill_switch_checked_before_refresh,
            also=(invariants.HALT_DURABLE,),
        ),
        Bug(
            "limit_ignores_in_flight_orders",
            "broker",
            invariants.RISK_LIMITS,
            "the open-positions limit counts the book only, not orders awaiting the broker",
            _limit_ignores_in_flight_orders,
        ),
        Bug(
            "no_reconcile_after_new_session",
            "stream",
            invariants.STREAM_GAPLESS,
            "a new stream session's replay is trusted to cover the gap: blindness ends at the "
            "reconnection, with no backfill reconcile",
            _no_reconcile_after_new_session,
        ),
        Bug(
            "event_applied_as_delta",
            "stream",
            invariants.CONVERGENCE,
            "an OPU's size is added to the position as a change, so an event the book already "
            "holds (the engine's own fill, a duplicate, a replay) is applied twice",
            _event_applied_as_delta,
            also=(invariants.RISK_LIMITS, invariants.EXACTLY_ONCE_FILLS),
        ),
        Bug(
            "health_by_connection_flag",
            "stream",
            invariants.HEALTH_TRUTHFUL,
            "the stream is judged by its connection flag: connected means fresh, though no "
            "keepalive has arrived for longer than the threshold",
            _health_by_connection_flag,
            also=(invariants.STREAM_GAPLESS,),
        ),
        Bug(
            "openings_allowed_while_blind",
            "stream",
            invariants.STREAM_GAPLESS,
            "the trading state ignores the stream's blindness, so opening orders go out while "
            "events may be missing from the book",
            _openings_allowed_while_blind,
        ),
        # Planted in a served engine's process (`python -m tests.plant_cli BUG serve ...`)
        # and found by the process machine, from outside.
        Bug(
            "kill_switch_written_in_place",
            "process",
            invariants.KILL_SWITCH_DURABLE,
            "the kill switch state is written over the old file, not replaced atomically",
            _kill_switch_written_in_place,
        ),
        Bug(
            "timeout_resolved_as_rejected",
            "process",
            invariants.NO_SILENT_LOSS,
            "an order whose answer timed out is recorded and answered REJECTED, without a "
            "reconcile asking the broker",
            _timeout_resolved_as_rejected,
            also=(invariants.CONVERGENCE, invariants.RISK_LIMITS),
        ),
        Bug(
            "reconcile_rejects_what_the_broker_executed",
            "broker",
            invariants.OUTCOME_TRUTHFUL,
            "the reconciler records REJECTED for an order the broker executed, while its "
            "repair step adopts the position so the book still converges",
            _reconcile_rejects_what_the_broker_executed,
        ),
        Bug(
            "positions_read_once",
            "broker",
            invariants.REPAIR_TRUTHFUL,
            "the reconciler trusts a single positions read: a stale list closes a position "
            "the broker still holds, which a later reconcile adopts back",
            _positions_read_once,
            also=(invariants.CONVERGENCE,),
        ),
        Bug(
            "rejects_everything",
            "broker",
            invariants.REJECTED_JUSTIFIED,
            "every opening order is refused for limits",
            _rejects_everything,
        ),
        Bug(
            "limit_counts_filled_orders_twice",
            "broker",
            invariants.REJECTED_JUSTIFIED,
            "the open-positions limit counts every opening order ever sent as well as the "
            "positions: orders are refused for limits with fewer positions at the broker",
            _limit_counts_filled_orders_twice,
        ),
        Bug(
            "halt_not_read_at_start",
            "recovery",
            invariants.HALT_DURABLE,
            "the operator's halt is written but not read back at start: the engine trades "
            "after a restart",
            _halt_not_read_at_start,
        ),
        Bug(
            "kill_switch_reactivation_not_persisted",
            "recovery",
            invariants.OPERATOR_ACTION_PERSISTED,
            "activating a kill switch already on in memory does nothing, though its last "
            "activation failed to persist: the engine trades after a crash",
            _kill_switch_reactivation_not_persisted,
            also=(invariants.KILL_SWITCH_DURABLE,),
        ),
        Bug(
            "switches_never_persist",
            "recovery",
            invariants.OPERATOR_ACTION_PERSISTED,
            "the engine never persists the kill switch or the halt, and says so",
            _switches_never_persist,
        ),
        # In the IG REST adapter, not the core: only a machine in the rest view runs it.
        Bug(
            "confirm_poll_failure_is_rejected",
            "broker",
            invariants.OUTCOME_TRUTHFUL,
            "the IG adapter answers REJECTED when the confirm poll after a successful order "
            "POST fails, though the order was sent and may have executed",
            _confirm_poll_failure_is_rejected,
            also=(invariants.CONVERGENCE, invariants.REJECTED_JUSTIFIED),
            view=REST,
        ),
        Bug(
            "fill_dedupe_not_rebuilt_at_restart",
            "broker",
            invariants.EXACTLY_ONCE_FILLS,
            "the index of deal ids already filled is not rebuilt from the ledger at start: "
            "after a restart, a duplicate confirmation naming an old deal is applied again",
            _fill_dedupe_not_rebuilt_at_restart,
        ),
        Bug(
            "closes_refused_unless_active",
            "recovery",
            invariants.REJECTED_JUSTIFIED,
            "a close is judged like an opening order: refused whenever the engine is not "
            "ACTIVE (the kill switch on, not reconciled yet), though a close reduces risk",
            _closes_refused_unless_active,
        ),
        Bug(
            "kill_switch_reason_kept_until_reconciled",
            "recovery",
            invariants.REJECTED_JUSTIFIED,
            "the kill switch's reason is remembered from its activation and forgotten at the "
            "next successful reconcile, not at deactivation: while the engine refuses for "
            "another cause (a halt) its refusals still name the kill switch, though it is off",
            _kill_switch_reason_kept_until_reconciled,
        ),
        Bug(
            "exposure_refused_as_open_positions",
            "broker",
            invariants.REJECTED_JUSTIFIED,
            "an order past the exposure limit is refused naming the open-positions limit, "
            "which it is within: the exposure branch was pasted from the one above it",
            _exposure_refused_as_open_positions,
        ),
        Bug(
            "refused_close_recorded_filled",
            "broker",
            invariants.OUTCOME_TRUTHFUL,
            "a close the broker refuses is recorded as filled, as if the position were "
            "already gone: after a dashboard close the book even agrees, but the ledger lies",
            _refused_close_recorded_filled,
            also=(invariants.CONVERGENCE,),
        ),
    )
}


@contextmanager
def planted(name: str) -> Iterator[Bug]:
    """Apply bug `name` to the core for the duration of the block."""
    bug = BUGS[name]
    with pytest.MonkeyPatch.context() as mp:
        bug.apply(mp)
        yield bug


def plant(name: str) -> None:
    """Apply bug `name` for the rest of this process (a worker process's initializer)."""
    BUGS[name].apply(pytest.MonkeyPatch())
