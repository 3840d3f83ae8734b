"""The reference model: what the engine has promised, and what the model saw happen.

The SimBroker is the ground truth of the broker side; this model keeps the other half —
which orders the caller was told were filled, whether the kill switch was reported
persisted, which balance fetch the engine could have used, when the broker last answered,
and whether anything happened at the broker that the engine could not have seen.

Checks that must hold at the instant an order reaches the broker run here, as it arrives;
their violations are kept and raised by the machine after the step.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from solat_chaos.engine.broker import BUY, SELL, OpenOrder
from solat_chaos.engine.engine import DEFAULT_EPICS, Engine, EngineConfig
from solat_chaos.engine.records import CLOSE, OPEN, TERMINAL, Intent, Rejected
from solat_chaos.engine.risk import (
    INSUFFICIENT_FUNDS,
    MAX_EXPOSURE,
    MAX_OPEN_POSITIONS,
    MAX_ORDER_SIZE,
    MAX_ORDERS_PER_HOUR,
)
from solat_chaos.engine.router import (
    BALANCE_REFRESH_FAILED,
    BALANCE_STALE,
    EXCEEDS_CLOSABLE,
    INVALID_DIRECTION,
    INVALID_EPIC,
    INVALID_SIZE,
    UNKNOWN_DEAL,
    OrderIntent,
    OrderResult,
    OrderStatus,
)
from solat_chaos.engine.trading_state import (
    HALT,
    KILL_SWITCH,
    LEDGER_UNREADABLE,
    NOT_RECONCILED,
    OUTCOMES_PENDING,
    STREAM_BLIND,
    TradingState,
    refusal_heading,
)
from solat_chaos.model.invariants import (
    AUDIT_BEFORE_BROKER,
    FRESH_BALANCE,
    HALT_DURABLE,
    KILL_SWITCH_DURABLE,
    OPERATOR_ACTION_PERSISTED,
    REJECTED_JUSTIFIED,
    RISK_LIMITS,
    STREAM_GAPLESS,
    InvariantViolation,
)

if TYPE_CHECKING:
    from solat_chaos.engine.broker import CloseOrder
    from solat_chaos.model.world import World

# The causes that halt the engine (DESIGN.md, Trading state and Router step 6: an operator's
# halt, outcomes the ledger refused, a ledger that cannot be read); every other cause of a
# state refusal only keeps it REDUCING. The model's own grouping, by the core's stable names.
HALTING = frozenset({HALT.name, OUTCOMES_PENDING.name, LEDGER_UNREADABLE.name})


@attrs.frozen
class BeforeDecision:
    """What the model knew as an order or close was started, to judge its refusal against:
    the broker requests made before it (a refresh already waiting at the broker counts as
    after: the order may join it), the disk faults armed until then, and whether one was
    armed then."""

    requests: int
    disk_faults_armed: int
    disk_sound: bool


@attrs.frozen
class BalanceFetch:
    """An account read that completed: the book's version when it was asked for, and when
    it completed (monotonic)."""

    book_version: int
    at: float


class Reference:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.violations: list[InvariantViolation] = []
        # Promises to the caller.
        self.acknowledged: dict[str, OrderResult] = {}
        self.rejected_on_a_sound_disk: set[str] = set()
        # Deal references whose ledger lines the model itself corrupted (bit rot): the
        # ledger quarantines them, and no promise about them can survive that.
        self.rotted: set[str] = set()
        self._rot_unseen_by_recovery = False
        # The kill switch, as reported to the operator.
        self.kill_switch_promised = False  # reported persisted, not since deactivated
        self.kill_switch_reported = False  # what the running engine last reported
        self.kill_switch_file_garbled = False
        # The kill switch as the model predicts it from the operator's actions: whether the
        # running engine's may be on, and the states a restart may find on disk.
        self.kill_switch_may_be_on = False
        self.kill_switch_on_disk: frozenset[bool] = frozenset({False})
        # The operator's halt as the model predicts it: whether the running engine must be
        # halted (None: the model cannot know), the states a restart may find on disk, and
        # the story behind the prediction, for the evidence.
        self.halted: bool | None = False
        self.halt_on_disk: frozenset[bool] = frozenset({False})
        self.halt_story = "the operator never halted"
        # What this process could know.
        self.latest_balance: BalanceFetch | None = None
        self.broker_last_ok: float | None = None
        # Disk faults ever armed (a refusal while one was, or since an operation started, is
        # justified) and how many when this process started (one armed since may have left
        # outcomes pending), whether this process started on a faulty disk (its ledger or
        # switches may have been unreadable), and whether the model saw a reconcile of this
        # process succeed (until then it may refuse openings).
        self.disk_faults_armed = 0
        self.disk_faults_armed_at_start = 0
        self.started_on_faulty_disk = False
        self.reconciled = False
        # Why the book may differ from the broker since the last converged reconcile: events
        # at the broker the engine cannot have seen, or knowledge it lost (rot, a crash).
        self.book_may_lag: list[str] = []
        # A confirm named a deal id that is not the order's: until a reconcile converges the
        # engine may hold the wrong positions, and no limit it enforces can be trusted.
        self.broker_misattributed_a_deal = False
        # Deal references a confirm named with another deal's id: whatever the engine then
        # recorded for them, it could not know better.
        self.misattributed: set[str] = set()
        # Stale positions answers the broker served: a reconcile that read one may report
        # success on stale truth, and CONVERGENCE cannot be asked of it.
        self.stale_positions_served = 0
        # Why the trade stream may hide a gap (the engine must be blind), and a count of the
        # moments one could have opened: a reconcile proves the stream whole only if it
        # started live after the last of them and none came while it ran.
        self.stream_gap: str | None = None
        self.stream_gaps = 0

    # -- processes ---------------------------------------------------------------------

    def process_started(self, engine: Engine, *, disk_sound: bool) -> None:
        if self._rot_unseen_by_recovery:
            # The running engine's memory was right; this one recovered without the rot.
            self.book_may_lag_because("rotted ledger lines were quarantined at this start")
            self._rot_unseen_by_recovery = False
        self.latest_balance = None
        self.broker_last_ok = None
        self.kill_switch_reported = engine.kill_switch.active
        self.kill_switch_may_be_on = (
            True in self.kill_switch_on_disk or self.kill_switch_file_garbled or not disk_sound
        )
        self.started_on_faulty_disk = not disk_sound
        self.disk_faults_armed_at_start = self.disk_faults_armed
        self.reconciled = False
        # A start on a faulty disk may fail closed (halted); one of two states on disk is
        # either.
        if self.halt_on_disk == {True}:
            self.halted = True
            self.halt_story = "a halt was reported persisted and never resumed"
        elif disk_sound and self.halt_on_disk == {False}:
            self.halted = False
        else:
            self.halted = None
        if engine.watch is not None:
            self.stream_may_hide_a_gap("the engine started: its stream has proven nothing yet")

    def process_died(self, *, orphaned: bool) -> None:
        if orphaned:
            self.book_may_lag_because("a crash orphaned requests in flight")

    # -- what the broker saw -----------------------------------------------------------

    def order_arrived(self, order: OpenOrder | CloseOrder, world: World) -> None:
        """The checks that must hold the instant an order reaches the broker."""
        reference = order.deal_reference
        durable_intents = {
            e.record.deal_reference for e in world.durable_entries() if isinstance(e.record, Intent)
        }
        if reference not in durable_intents:
            self._violated(
                AUDIT_BEFORE_BROKER,
                f"broker request #{len(world.sim.requests)} for deal reference {reference} "
                "arrived with no durable INTENT record",
            )
        if self.halted is True:
            self._violated(
                HALT_DURABLE,
                f"order {reference} reached the broker while the engine must be halted: "
                f"{self.halt_story}",
            )
        if not isinstance(order, OpenOrder):
            return
        if world.stream is not None and (world.stream_silent() or self.stream_gap):
            self._violated(
                STREAM_GAPLESS,
                f"opening order {reference} reached the broker while the stream was blind: "
                f"{self.stream_gap or 'silent past its keepalive threshold'}",
            )
        if self.kill_switch_reported:
            self._violated(
                KILL_SWITCH_DURABLE,
                f"opening order {reference} reached the broker while the kill switch was "
                "reported active",
            )
        self._check_fresh_balance(reference, world)
        self._check_risk_limits(order, world)

    def _check_fresh_balance(self, reference: str, world: World) -> None:
        fetch = self.latest_balance
        version = world.engine.journal.book.version
        now = world.clock.monotonic()
        if fetch is None:
            problem = "no balance was ever fetched by this process"
        elif fetch.book_version != version:
            problem = (
                f"the balance was fetched at book version {fetch.book_version}, "
                f"the book has changed since (version {version})"
            )
        elif now - fetch.at >= self.config.balance_ttl:
            problem = f"the balance was {now - fetch.at:.1f}s old, TTL {self.config.balance_ttl}s"
        else:
            return
        self._violated(
            FRESH_BALANCE, f"opening order {reference} approved on a stale balance: {problem}"
        )

    def ledger_rotted(self, deal_reference: str | None) -> None:
        if deal_reference is not None:
            self.rotted.add(deal_reference)
        self._rot_unseen_by_recovery = True

    def _check_risk_limits(self, order: OpenOrder, world: World) -> None:
        """Against the broker's truth: with this order, the engine's positions and opening
        orders still waiting at the broker, their exposure, and its opening orders in the last
        hour stay within the limits. Not while a broker answer has misattributed a deal: the
        engine cannot count what the broker hid under another deal's id."""
        if self.broker_misattributed_a_deal:
            return
        for breach in self.limits_reached(order.size, world).values():
            self._violated(RISK_LIMITS, f"opening order {order.deal_reference} {breach}")

    def limits_reached(
        self, size: float, world: World, *, as_counted: bool = False
    ) -> dict[str, str]:
        """The limits one more opening order of `size` breaks, by the name a refusal for
        each records, with how far (the order size and the funds are not counted here),
        counted against the broker's
        truth: the engine's positions there and its opening orders still waiting there.
        `as_counted`: as an engine that knows the broker's truth counts them: every position
        (adopted ones too), every held order, even one the model knows will never execute
        (past the grace), the orders whose ledger lines rotted, and every opening order the
        durable ledger shows without an outcome, or in the last hour: a write the engine saw
        fail may have reached the disk after all, and a restarted engine cannot know such an
        order never reached the broker."""
        limits = self.config.limits
        prefix = self.config.reference_prefix

        def ours(reference: str | None) -> bool:
            # A rotted reference is the disk's loss; the running engine still remembers it.
            rotted = reference in self.rotted and not as_counted
            return (reference or "").startswith(prefix) and not rotted

        # Held orders past the grace never execute (the model's network assumption).
        held = {p.seq for p in world.sim.pending if p.kind == "open_position"}
        waiting = [
            r
            for r in world.sim.requests
            if r.seq in held
            and ours(r.deal_reference)
            and (as_counted or not world.past_grace(r.at))
        ]
        positions = [
            p for p in world.sim.snapshot_positions() if as_counted or ours(p.deal_reference)
        ]
        hour_ago = world.clock.now() - 3600.0
        counted = {r.deal_reference for r in waiting} | {p.deal_reference for p in positions}
        unresolved: dict[str, float] = {}  # opening INTENTs without a durable outcome
        recent_intents: set[str] = set()
        if as_counted:
            entries = world.durable_entries()
            outcomes = {e.record.deal_reference for e in entries if isinstance(e.record, TERMINAL)}
            for record in (e.record for e in entries):
                if not isinstance(record, Intent) or record.action != OPEN:
                    continue
                if record.deal_reference not in outcomes | counted:
                    unresolved[record.deal_reference] = record.size
                if record.at > hour_ago:
                    recent_intents.add(record.deal_reference)
        breaches = {}
        committed = len(positions) + len(waiting) + len(unresolved) + 1
        if committed > limits.max_open_positions:
            breaches[MAX_OPEN_POSITIONS] = (
                f"reached the broker with {len(positions)} positions open, {len(waiting)} "
                f"opening orders waiting there and {len(unresolved)} unresolved in the ledger: "
                f"{committed} > limit {limits.max_open_positions}"
            )
        exposure = (
            sum(p.size for p in positions)
            + sum(r.size or 0 for r in waiting)
            + sum(unresolved.values())
            + size
        )
        if exposure > limits.max_exposure + 1e-9:
            breaches[MAX_EXPOSURE] = (
                f"takes exposure at the broker to {exposure}, limit {limits.max_exposure}"
            )
        recent = {
            r.deal_reference
            for r in world.sim.requests
            if r.kind == "open_position" and ours(r.deal_reference) and (r.at or 0) > hour_ago
        } | recent_intents
        if len(recent) + 1 > limits.max_orders_per_hour:
            breaches[MAX_ORDERS_PER_HOUR] = (
                f"is the {len(recent) + 1}th in an hour, limit {limits.max_orders_per_hour}"
            )
        return breaches

    def rejection_unjustified(
        self, intent: OrderIntent, result: OrderResult, world: World, before: BeforeDecision
    ) -> None:
        """REJECTED_JUSTIFIED for an opening order refused while no disk fault was armed
        since it started (one justifies any refusal): the stage, and every cause the decision
        record names, are ones the model confirms at that instant (a cause it does not know,
        or none, is unjustified): `validation` naming a field of the intent the model finds
        invalid; `state` naming causes the model's own facts allow, in the state they ask
        for (`_state_refusal_unjustified`); `broker`, which then saw it; `risk` naming a
        failed balance refresh (one the order could have waited on failed), a balance stale
        again after the last refresh, or a limit reached against the broker's truth plus the
        orders in flight (or a book the engine could not know was wrong)."""
        limits = self.config.limits
        knowable = not self.book_may_lag and not self.broker_misattributed_a_deal

        def refresh_failed() -> str | None:
            since = world.sim.requests[before.requests :]
            if any(r.kind == "account" and r.fault for r in since):
                return None
            return "no balance request failed"

        def limit(name: str) -> Callable[[], str | None]:
            def reached() -> str | None:
                if not knowable or name in self.limits_reached(intent.size, world, as_counted=True):
                    return None
                return "that limit is not reached against the broker's truth"

            return reached

        def funds() -> str | None:
            if not knowable or not _funded(intent, world):
                return None
            return "the broker's account covers the order's margin"

        causes: dict[str, dict[str, Callable[[], str | None]]] = {
            "validation": {
                INVALID_EPIC: lambda: _unless(
                    intent.epic not in DEFAULT_EPICS, "the engine trades that epic"
                ),
                INVALID_DIRECTION: lambda: _unless(
                    intent.direction not in (BUY, SELL), "the direction is BUY or SELL"
                ),
                INVALID_SIZE: lambda: _unless(
                    not _valid_size(intent.size), "the size is a finite number > 0"
                ),
            },
            "risk": {
                BALANCE_REFRESH_FAILED: refresh_failed,
                BALANCE_STALE: lambda: self._balance_fresh(world),
                MAX_ORDER_SIZE: lambda: _unless(
                    intent.size > limits.max_order_size, "the order is within it"
                ),
                MAX_OPEN_POSITIONS: limit(MAX_OPEN_POSITIONS),
                MAX_EXPOSURE: limit(MAX_EXPOSURE),
                MAX_ORDERS_PER_HOUR: limit(MAX_ORDERS_PER_HOUR),
                INSUFFICIENT_FUNDS: funds,
            },
        }

        def unjustified(decision: Rejected) -> str | None:
            if decision.stage == "state":
                return self._state_refusal_unjustified(decision, world, opening=True)
            if decision.stage == "broker":
                return self._broker_never_saw(result, world)
            if decision.stage in causes:
                return _causes_unjustified(decision, causes[decision.stage])
            return "no refusal of an opening order has that stage"

        self._judge_refusal(
            f"opening order {result.deal_reference} ({intent.epic} {intent.direction} "
            f"{intent.size})",
            result,
            world,
            before,
            unjustified,
        )

    def close_refusal_unjustified(
        self,
        deal_id: str,
        size: float | None,
        result: OrderResult,
        world: World,
        before: BeforeDecision,
    ) -> None:
        """REJECTED_JUSTIFIED for a close, which reduces risk: refused only at `validation`
        naming what the model confirms (a deal the broker does not hold, a size invalid or
        more than it holds — or any of these when the engine could not know better: its book
        may lag, another operation is in flight, or a close of the deal has no outcome yet),
        at `state` for causes the model allows
        that halt (HALTED: an operator's halt that may be on, outcomes pending or a ledger
        unreadable after a disk fault — never the kill switch, blindness or a missing
        reconcile alone), or at the broker, which then saw it."""
        held = {p.deal_id: p.size for p in world.sim.snapshot_positions()}
        others = [t for t in world.running() if t.task is not asyncio.current_task()]
        # A close of this deal with no outcome in the engine's audit (a recovered INTENT, say)
        # may be at the broker for all the engine knows, until a reconcile resolves it.
        closing_in_doubt = any(
            intent.action == CLOSE and intent.deal_id == deal_id
            for intent in world.engine.journal.audit.unresolved()
        )
        could_not_know = bool(
            self.book_may_lag
            or self.broker_misattributed_a_deal
            or others
            or world.sim.pending
            or closing_in_doubt
        )
        asked = (
            f"the broker holds deal {deal_id} ({held.get(deal_id)}) and the engine could know it"
        )

        def unless_known(problem: bool) -> str | None:
            return None if problem or could_not_know else asked

        causes = {
            UNKNOWN_DEAL: lambda: unless_known(deal_id not in held),
            INVALID_SIZE: lambda: unless_known(size is not None and not _valid_size(size)),
            EXCEEDS_CLOSABLE: lambda: unless_known(
                deal_id not in held or (size is not None and size > held[deal_id] + 1e-9)
            ),
        }

        def unjustified(decision: Rejected) -> str | None:
            if decision.stage == "validation":
                return _causes_unjustified(decision, causes)
            if decision.stage == "state":
                return self._state_refusal_unjustified(decision, world, opening=False)
            if decision.stage == "broker":
                return self._broker_never_saw(result, world)
            return "no refusal of a close has that stage"

        self._judge_refusal(
            f"close {result.deal_reference} of deal {deal_id} (size {size or 'all'})",
            result,
            world,
            before,
            unjustified,
        )

    def _judge_refusal(
        self,
        what: str,
        result: OrderResult,
        world: World,
        before: BeforeDecision,
        unjustified: Callable[[Rejected], str | None],
    ) -> None:
        """Judge a refusal's decision record by `unjustified(record)`: why the model finds it
        unjustified, or None."""
        decision = self._decision(result, world, before)
        if decision is None:
            return
        why = unjustified(decision)
        if why is not None:
            self._violated(
                REJECTED_JUSTIFIED,
                f"{what} was REJECTED at stage {decision.stage} ({decision.reason}; causes "
                f"{', '.join(decision.causes) or 'none'}) but {why}",
            )

    def _decision(
        self, result: OrderResult, world: World, before: BeforeDecision
    ) -> Rejected | None:
        """The refusal's decision record, unless a disk fault was armed at any time since the
        operation started (the disk is then the justification) or none was written (then
        AUDIT_COMPLETE judges)."""
        if world.disk_faults or not before.disk_sound:
            return None
        if self.disk_faults_armed != before.disk_faults_armed:
            return None
        journal = world.engine.journal
        return next(
            (
                r
                for r in [*journal.pending, *reversed(list(journal.ledger.records()))]
                if isinstance(r, Rejected) and r.deal_reference == result.deal_reference
            ),
            None,
        )

    def _broker_never_saw(self, result: OrderResult, world: World) -> str | None:
        if result.deal_reference not in world.sim.received_deal_references():
            return "the broker never saw it"
        return None

    def _state_refusal_unjustified(
        self, decision: Rejected, world: World, *, opening: bool
    ) -> str | None:
        """Whether the model's own facts, at this instant, allow every cause the refusal
        names, and the state it says follows from them (HALTED if one of them halts, else
        REDUCING); a close is refused only HALTED."""
        halt_may_be_on = self.halted is not False or self.started_on_faulty_disk
        disk_fault_in_this_process = (
            self.disk_faults_armed != self.disk_faults_armed_at_start or self.started_on_faulty_disk
        )
        stream_may_hide_a_gap = world.stream is not None and bool(
            self.stream_gap or not world.stream_live()
        )
        causes = {
            HALT.name: lambda: _unless(halt_may_be_on, f"no halt may be on ({self.halt_story})"),
            OUTCOMES_PENDING.name: lambda: _unless(
                disk_fault_in_this_process, "no disk fault was armed since this process started"
            ),
            LEDGER_UNREADABLE.name: lambda: _unless(
                self.started_on_faulty_disk, "this process started on a sound disk"
            ),
            KILL_SWITCH.name: lambda: _unless(
                self.kill_switch_may_be_on, "the kill switch cannot be on"
            ),
            NOT_RECONCILED.name: lambda: _unless(
                not self.reconciled, "a reconcile of this process succeeded"
            ),
            STREAM_BLIND.name: lambda: _unless(
                stream_may_hide_a_gap,
                "the stream is live with no gap" if world.stream else "the engine has no stream",
            ),
        }
        if why := _causes_unjustified(decision, causes):
            return why
        state = (
            TradingState.HALTED if HALTING.intersection(decision.causes) else TradingState.REDUCING
        )
        if not decision.reason.startswith(refusal_heading(state)):
            return f"the causes it names make the engine {state}, and its reason says otherwise"
        if not opening and state is not TradingState.HALTED:
            return "a close is refused only HALTED, and no cause it names halts the engine"
        return None

    def _balance_fresh(self, world: World) -> str | None:
        """Whether the balance the engine last fetched is fresh at this instant: fetched at
        the book's current version, within its TTL."""
        fetch = self.latest_balance
        if fetch is None or fetch.book_version != world.engine.journal.book.version:
            return None
        age = world.clock.monotonic() - fetch.at
        if age >= self.config.balance_ttl:
            return None
        return f"the last balance fetched is fresh ({age:.1f}s old, no fill since it was asked)"

    def disk_fault_armed(self) -> None:
        self.disk_faults_armed += 1

    def before_decision(self, world: World) -> BeforeDecision:
        """What a refusal of the operation starting now is judged against."""
        return BeforeDecision(
            requests=min(
                [p.seq - 1 for p in world.sim.pending if p.kind == "account"],
                default=len(world.sim.requests),
            ),
            disk_faults_armed=self.disk_faults_armed,
            disk_sound=world.disk_sound(),
        )

    def balance_fetched(self, book_version: int, at: float) -> None:
        self.latest_balance = BalanceFetch(book_version, at)

    def broker_answered(self, at: float) -> None:
        self.broker_last_ok = at

    def stream_may_hide_a_gap(self, why: str) -> None:
        self.stream_gap = why
        self.stream_gaps += 1

    def reconcile_proved_the_stream(self, gaps_at_start: int, live_at_start: bool) -> None:
        """A reconcile of the running engine succeeded: the engine is reconciled, and it
        closes the stream's gap if it started live after the last one."""
        self.reconciled = True
        if live_at_start and gaps_at_start == self.stream_gaps:
            self.stream_gap = None

    def book_may_lag_because(self, what: str) -> None:
        self.book_may_lag.append(what)

    def deal_misattributed(self, deal_reference: str, what: str) -> None:
        self.broker_misattributed_a_deal = True
        self.misattributed.add(deal_reference)
        self.book_may_lag_because(what)

    def book_converged(self) -> None:
        self.book_may_lag.clear()
        self.broker_misattributed_a_deal = False

    # -- what the caller was told --------------------------------------------------------

    def order_answered(self, result: OrderResult, *, disk_sound: bool) -> None:
        if result.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED):
            self.acknowledged[result.deal_reference] = result
        elif result.status is OrderStatus.REJECTED and disk_sound:
            self.rejected_on_a_sound_disk.add(result.deal_reference)

    def kill_switch_activated(self, persisted: bool) -> None:
        self.kill_switch_reported = True
        self.kill_switch_may_be_on = True
        if persisted:
            self.kill_switch_promised = True
            self.kill_switch_file_garbled = False
            self.kill_switch_on_disk = frozenset({True})
        else:
            self.kill_switch_on_disk |= {True}

    def kill_switch_deactivated(self, active: bool, persisted: bool) -> None:
        """A deactivation that did not persist leaves the switch as it was (it is off only
        once durable), so the model's prediction moves only on `persisted`."""
        self.kill_switch_reported = active
        if persisted:
            self.kill_switch_may_be_on = False
            self.kill_switch_on_disk = frozenset({False})
        else:
            self.kill_switch_on_disk |= {False}
        if not active and persisted:
            self.kill_switch_promised = False
            self.kill_switch_file_garbled = False

    def operator_acted(self, action: str, persisted: bool, *, disk_sound: bool) -> None:
        """OPERATOR_ACTION_PERSISTED: an operator's switch action on a disk that accepts
        writes is reported persisted."""
        if disk_sound and not persisted:
            self._violated(
                OPERATOR_ACTION_PERSISTED,
                f"{action} while the disk accepted writes reported persisted: false",
            )

    def halt_requested(self, persisted: bool) -> None:
        self.halted = True
        if persisted:
            self.halt_on_disk = frozenset({True})
            self.halt_story = "a halt was reported persisted"
        else:
            # The write may or may not have reached the disk.
            self.halt_on_disk |= {True}
            self.halt_story = "the operator halted (not persisted)"

    def resume_requested(self, persisted: bool) -> None:
        """A resume that did not persist leaves the halt on (it is off only once durable)."""
        if persisted:
            self.halted = False
            self.halt_on_disk = frozenset({False})
            self.halt_story = "a resume was reported persisted"
        else:
            self.halt_on_disk |= {False}

    def _violated(self, invariant: str, evidence: str) -> None:
        self.violations.append(InvariantViolation(invariant, evidence))


def _valid_size(size: object) -> bool:
    """Whether the model itself finds an order's size valid (not the engine's predicate:
    the model judges the engine's validation with its own)."""
    return isinstance(size, int | float) and math.isfinite(size) and size > 0


def _unless(allowed: bool, why: str) -> str | None:
    """None when the model's facts allow a cause; else why they do not."""
    return None if allowed else why


def _causes_unjustified(
    decision: Rejected, judges: dict[str, Callable[[], str | None]]
) -> str | None:
    """Whether a refusal names a cause the model cannot confirm: `judges` maps each cause
    the stage may name to why the model's facts rule it out now (None: they allow it). A
    refusal naming no cause, or one with no judge here, is unjustified: the model cannot
    confirm what it cannot classify."""
    if not decision.causes:
        return "it names no cause"
    for cause in decision.causes:
        judge = judges.get(cause)
        if judge is None:
            return f"it names {cause!r}, a cause the model does not know at that stage"
        if (why := judge()) is not None:
            return f"it names {cause}, and {why}"
    return None


def _funded(intent: OrderIntent, world: World) -> bool:
    """Whether the broker's account covers the order's margin."""
    needed = intent.size * world.config.limits.margin_per_unit
    return world.sim.snapshot_account().available >= needed
