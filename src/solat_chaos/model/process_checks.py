"""The named invariants, judged from outside a running engine process.

Only three things are evidence here: the broker's truth (the SimBroker the harness runs),
what the engine's API answered, and the files the engine left in its data directory (read
through the adapter, after the fact or the instant an order reaches the broker). Never the
engine's memory. `Outside` keeps what the engine promised through its API; the `check_*`
functions raise `InvariantViolation` with the evidence, under the names of
`model.invariants`.

An invariant that needs something the engine's adapter cannot give (no ledger file to read,
no known kill switch file, no stated limits) is NOT CHECKED: `not_checked(adapter)` says
which and why, and the run reports it — it is never counted as passed.
"""

from __future__ import annotations

import threading

from solat_chaos.broker.sim import OPENED, ORDER_METHODS
from solat_chaos.engine.broker import ACCEPTED, CloseOrder, OpenOrder
from solat_chaos.engine.records import TERMINAL, Confirmed, Intent, Rejected
from solat_chaos.engine.risk import RiskLimits
from solat_chaos.model.engine_adapter import FILLED, REJECTED, EngineAdapter, OrderAnswer
from solat_chaos.model.invariants import (
    AUDIT_BEFORE_BROKER,
    CONVERGENCE,
    EXACTLY_ONCE_FILLS,
    FAIL_CLOSED,
    KILL_SWITCH_DURABLE,
    LIVENESS,
    NO_SILENT_LOSS,
    REJECTED_JUSTIFIED,
    RISK_LIMITS,
    InvariantViolation,
)
from solat_chaos.model.process_world import ProcessWorld

# The invariants the process machine judges.
PROCESS_INVARIANTS = (
    AUDIT_BEFORE_BROKER,
    NO_SILENT_LOSS,
    EXACTLY_ONCE_FILLS,
    KILL_SWITCH_DURABLE,
    FAIL_CLOSED,
    RISK_LIMITS,
    CONVERGENCE,
    LIVENESS,
    REJECTED_JUSTIFIED,
)
SIZE_EPSILON = 1e-9


def not_checked(adapter: EngineAdapter) -> dict[str, str]:
    """{invariant: why it cannot be judged} for an engine behind `adapter`: the optional
    capabilities its class does not provide."""

    def lacks(capability: str) -> bool:
        return getattr(type(adapter), capability) is getattr(EngineAdapter, capability)

    missing = {}
    if lacks("ledger"):
        missing[AUDIT_BEFORE_BROKER] = "the adapter reads no ledger file"
    if lacks("kill_switch_path"):
        missing[FAIL_CLOSED] = "the adapter names no kill switch state file to corrupt"
    if lacks("risk_limits") or adapter.risk_limits() is None:
        missing[RISK_LIMITS] = "the adapter states no risk limits"
        missing[REJECTED_JUSTIFIED] = (
            "the adapter states no risk limits, so no refusal can be known to be unjustified"
        )
    return missing


class Outside:
    """What the engine promised through its API, and what the harness did that the engine
    could not see. Violations seen on the broker's thread wait in `violations` for the step
    to end."""

    def __init__(self) -> None:
        self.acknowledged: dict[str, OrderAnswer] = {}
        self.answered_rejected: set[str] = set()
        self.kill_switch_promised = False  # activation reported persisted, not since undone
        self.kill_switch_reported = False  # what the running engine last said
        self.kill_switch_file_rotted = False
        self.book_may_lag: list[str] = []
        self.violations: list[InvariantViolation] = []
        self._lock = threading.Lock()

    def violated(self, invariant: str, evidence: str) -> None:
        with self._lock:
            self.violations.append(InvariantViolation(invariant, evidence))

    def raise_first(self) -> None:
        with self._lock:
            if self.violations:
                raise self.violations[0]

    def order_answered(self, answer: OrderAnswer) -> None:
        reference = answer.deal_reference
        if reference is None:
            return
        if answer.status in FILLED:
            self.acknowledged[reference] = answer
        elif answer.status == REJECTED:
            self.answered_rejected.add(reference)
        else:
            self.lags(f"{reference} answered {answer.status}")

    def lags(self, why: str) -> None:
        self.book_may_lag.append(why)

    def kill_switch_said(self, active: bool, persisted: bool | None, *, activation: bool) -> None:
        self.kill_switch_reported = active
        if activation and active and persisted is not False:
            self.kill_switch_promised = True
            self.kill_switch_file_rotted = False
        if not activation and not active and persisted is not False:
            self.kill_switch_promised = False
            self.kill_switch_file_rotted = False


# -- the instant an order reaches the broker --------------------------------------------------


def check_order_arrival(
    order: OpenOrder | CloseOrder, world: ProcessWorld, outside: Outside
) -> None:
    """AUDIT_BEFORE_BROKER from the ledger file as it is now; KILL_SWITCH_DURABLE and
    RISK_LIMITS for an opening order, against the broker's truth."""
    adapter = world.adapter
    reference = order.deal_reference
    ledger = adapter.ledger()
    if ledger is not None and reference not in _intents(ledger):
        outside.violated(
            AUDIT_BEFORE_BROKER,
            f"order {reference} reached the broker (request #{len(world.sim.requests) + 1}) "
            "while the engine's ledger file held no INTENT for it",
        )
    if not isinstance(order, OpenOrder):
        return
    if outside.kill_switch_reported:
        outside.violated(
            KILL_SWITCH_DURABLE,
            f"opening order {reference} reached the broker while the engine reported the "
            "kill switch active",
        )
    limits = adapter.risk_limits()
    if limits is None:
        return
    for breach in _limits_breached(world, limits, order.size):
        outside.violated(RISK_LIMITS, f"opening order {reference} reached the broker: {breach}")


def _limits_breached(world: ProcessWorld, limits: RiskLimits, size: float) -> list[str]:
    """The position and exposure limits an opening order of `size` breaches, counted
    against the engine's positions at the broker."""
    ours = [p for p in world.sim.snapshot_positions() if world.adapter.owns(p.deal_reference)]
    breaches = []
    if len(ours) + 1 > limits.max_open_positions:
        breaches.append(
            f"{len(ours)} of the engine's positions open there, limit {limits.max_open_positions}"
        )
    exposure = sum(p.size for p in ours) + size
    if exposure > limits.max_exposure + SIZE_EPSILON:
        breaches.append(
            f"the engine's exposure there {exposure} with it, limit {limits.max_exposure}"
        )
    return breaches


# -- after every step ---------------------------------------------------------------------------


def _intents(ledger) -> set[str]:
    return {r.deal_reference for r in ledger if isinstance(r, Intent)}


def _broker_filled(world: ProcessWorld, reference: str) -> bool:
    confirm = world.sim.lookup_confirm(reference)
    return confirm is not None and confirm.status == ACCEPTED and confirm.size > 0


def check_no_silent_loss(world: ProcessWorld, outside: Outside, health=None) -> None:
    """Every order answered filled is CONFIRMED in the ledger file, or pending with the engine
    halted and its health saying so, or (a kill lost what was pending) an INTENT without an
    outcome yet; no order the broker filled was answered, or recorded, as rejected."""
    for reference in sorted(outside.answered_rejected):
        if _broker_filled(world, reference):
            _violated(
                NO_SILENT_LOSS,
                f"{reference} was answered REJECTED but the broker filled it: a fill the "
                "caller was told did not happen",
            )
    ledger = world.adapter.ledger()
    if ledger is None:
        return
    for record in ledger:
        if isinstance(record, Rejected) and _broker_filled(world, record.deal_reference):
            if any(
                isinstance(r, Confirmed) and r.deal_reference == record.deal_reference
                for r in ledger
            ):
                continue
            _violated(
                NO_SILENT_LOSS,
                f"the ledger records {record.deal_reference} as rejected ({record.stage}: "
                f"{record.reason}) but the broker filled it",
            )
    confirmed = {r.deal_reference for r in ledger if isinstance(r, Confirmed)}
    # An outcome pending in memory dies with the process; its INTENT, still without an
    # outcome, is what the next process resolves by deal reference.
    terminal = {r.deal_reference for r in ledger if isinstance(r, TERMINAL)}
    unresolved = _intents(ledger) - terminal
    for reference, answer in outside.acknowledged.items():
        if reference in confirmed or reference in unresolved:
            continue
        if health is not None and health.outcomes_pending and health.trading_state == "HALTED":
            continue
        _violated(
            NO_SILENT_LOSS,
            f"{reference} was answered {answer.status} (deal {answer.deal_id}, filled "
            f"{answer.filled_size}) but the ledger file holds no CONFIRMED record for it"
            + (
                ""
                if health is None
                else f" (health: {health.trading_state}, {health.outcomes_pending} pending)"
            ),
        )


def largest_broker_sizes(world: ProcessWorld) -> dict[str, float]:
    """The size each deal had when the broker opened it (positions only shrink after)."""
    largest: dict[str, float] = {}
    for event in world.sim.events:
        if event.kind == OPENED:
            largest[event.deal_id] = max(largest.get(event.deal_id, 0.0), event.size)
    return largest


def check_exactly_once_fills(local: dict[str, float], world: ProcessWorld) -> None:
    """No position in the engine's book is larger than the broker ever made it."""
    largest = largest_broker_sizes(world)
    for deal_id, size in sorted(local.items()):
        if size > largest.get(deal_id, 0.0) + SIZE_EPSILON:
            _violated(
                EXACTLY_ONCE_FILLS,
                f"the engine's book holds {size} of deal {deal_id}, but the broker never "
                f"held more than {largest.get(deal_id, 0.0)}: a fill counted twice",
            )


def check_kill_switch_durable(active: bool, outside: Outside, restarts: int) -> None:
    if outside.kill_switch_promised and not active:
        _violated(
            KILL_SWITCH_DURABLE,
            f"activation was reported persisted, but engine process #{restarts + 1} reports "
            "the kill switch inactive",
        )


def check_converged(local: dict[str, float], world: ProcessWorld, circumstance: str) -> None:
    broker = world.broker_positions()
    if not _same_book(local, broker):
        _violated(
            CONVERGENCE,
            f"the engine's book {local} differs from the broker's {broker} {circumstance}",
        )


def _same_book(local: dict[str, float], broker: dict[str, float]) -> bool:
    return local.keys() == broker.keys() and all(
        abs(local[d] - broker[d]) <= SIZE_EPSILON for d in local
    )


# -- after a kill, from the files left on disk ----------------------------------------------------


def check_files_after_kill(world: ProcessWorld, outside: Outside) -> None:
    """AUDIT_BEFORE_BROKER: every deal reference the broker received has an INTENT in the
    ledger file. KILL_SWITCH_DURABLE: the kill switch state file is a whole state (the last
    persisted one or the one being written), never torn — unless the harness rotted it."""
    adapter = world.adapter
    ledger = adapter.ledger()
    if ledger is not None:
        missing = sorted(
            r for r in world.sim.received_deal_references() - _intents(ledger) if adapter.owns(r)
        )
        if missing:
            _violated(
                AUDIT_BEFORE_BROKER,
                f"after the kill, the broker holds orders {missing} with no INTENT in the "
                "engine's ledger file",
            )
    state = adapter.kill_switch_file()
    if state is not None and not state.whole and not outside.kill_switch_file_rotted:
        _violated(
            KILL_SWITCH_DURABLE,
            f"after the kill, the kill switch state file {state.path} is torn "
            f"({state.problem}): whatever state was last persisted is lost, and a restart "
            "can only fail closed",
        )


def check_fail_closed(active: bool, outside: Outside) -> None:
    if outside.kill_switch_file_rotted and not active:
        _violated(
            FAIL_CLOSED,
            "the kill switch state file was corrupted while the engine was down, and the "
            "engine started with the switch inactive",
        )


# -- after the heal -----------------------------------------------------------------------------


def check_liveness(local: dict[str, float], world: ProcessWorld, health, kill_switch: bool) -> None:
    broker = world.broker_positions()
    if not _same_book(local, broker):
        _violated(LIVENESS, f"after healing the engine's book {local} is not the broker's {broker}")
    if health.outcomes_pending:
        _violated(LIVENESS, f"{health.outcomes_pending} outcome(s) still pending after healing")
    if health.in_doubt:
        _violated(LIVENESS, f"{health.in_doubt} order(s) still in doubt after healing")
    expected = healed_trading_state(kill_switch)
    if health.trading_state is not None and health.trading_state != expected:
        because = f" ({'; '.join(health.reasons)})" if health.reasons else ""
        _violated(
            LIVENESS,
            f"after healing the engine is {health.trading_state}, expected {expected}{because}",
        )


# The opening order a healed engine is asked to fill: the smallest size the machines trade.
PROBE_SIZE = 0.5


def room_for_a_probe(world: ProcessWorld, kill_switch: bool) -> str | None:
    """Why a healed engine may rightly refuse an opening order of PROBE_SIZE, or None when
    nothing does: its kill switch off, its limits known and clear of the broker's truth plus
    the probe, the broker's account able to carry it."""
    if kill_switch:
        return "the kill switch is on"
    limits = world.adapter.risk_limits()
    if limits is None:
        return "the adapter states no risk limits"
    if breaches := _limits_breached(world, limits, PROBE_SIZE):
        return breaches[0]
    orders = sum(1 for r in world.sim.requests if r.kind in ORDER_METHODS)
    if orders + 1 > limits.max_orders_per_hour:
        return f"{orders} orders sent, limit {limits.max_orders_per_hour} an hour"
    if world.sim.snapshot_account().available < PROBE_SIZE * limits.margin_per_unit:
        return "the account cannot carry it"
    return None


def check_a_healed_engine_trades(answer: OrderAnswer | None) -> None:
    """After the heal, with nothing in the way (`room_for_a_probe`), an opening order fills:
    an engine that refuses it refuses for no reason the world gave it."""
    if answer is None:
        _violated(LIVENESS, "after healing, the engine did not answer an opening order")
    if answer.status == REJECTED:
        _violated(
            REJECTED_JUSTIFIED,
            f"after healing, with its kill switch off and room under every limit, the engine "
            f"refused an opening order of {PROBE_SIZE}: {answer.reason}",
        )
    if answer.status not in FILLED:
        _violated(
            LIVENESS,
            f"after healing, an opening order of {PROBE_SIZE} was answered {answer.status}: "
            f"{answer.reason}",
        )


def healed_trading_state(kill_switch: bool) -> str:
    """What a healed engine trades as: only reducing orders while its kill switch is on."""
    return "REDUCING" if kill_switch else "ACTIVE"


def _violated(invariant: str, evidence: str) -> None:
    raise InvariantViolation(invariant, evidence)
