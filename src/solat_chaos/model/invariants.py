"""The named invariants of DESIGN.md. Tests, reports and failure artifacts use these names."""

from __future__ import annotations

import functools
import json
import os
import traceback

from solat_chaos.engine.broker import ACCEPTED
from solat_chaos.engine.ledger import Entry, unframe
from solat_chaos.engine.records import OPEN, Adopted, Confirmed, Rejected, Resized

AUDIT_BEFORE_BROKER = "AUDIT_BEFORE_BROKER"
NO_SILENT_LOSS = "NO_SILENT_LOSS"
CONVERGENCE = "CONVERGENCE"
EXACTLY_ONCE_FILLS = "EXACTLY_ONCE_FILLS"
KILL_SWITCH_DURABLE = "KILL_SWITCH_DURABLE"
FAIL_CLOSED = "FAIL_CLOSED"
FRESH_BALANCE = "FRESH_BALANCE"
LEDGER_READABLE = "LEDGER_READABLE"
SNAPSHOT_BOUNDED = "SNAPSHOT_BOUNDED"
HEALTH_TRUTHFUL = "HEALTH_TRUTHFUL"
STREAM_GAPLESS = "STREAM_GAPLESS"
RISK_LIMITS = "RISK_LIMITS"
AUDIT_COMPLETE = "AUDIT_COMPLETE"
LIVENESS = "LIVENESS"
HALT_DURABLE = "HALT_DURABLE"
OPERATOR_ACTION_PERSISTED = "OPERATOR_ACTION_PERSISTED"
OUTCOME_TRUTHFUL = "OUTCOME_TRUTHFUL"
REPAIR_TRUTHFUL = "REPAIR_TRUTHFUL"
REJECTED_JUSTIFIED = "REJECTED_JUSTIFIED"
# Not invariants of the design, but failures all the same: the core raised, or the model's
# own rules did (a bug in the checker, not in the engine).
ENGINE_RAISED = "ENGINE_RAISED"
MODEL_ERROR = "MODEL_ERROR"

ALL = (
    AUDIT_BEFORE_BROKER,
    NO_SILENT_LOSS,
    CONVERGENCE,
    EXACTLY_ONCE_FILLS,
    KILL_SWITCH_DURABLE,
    FAIL_CLOSED,
    FRESH_BALANCE,
    LEDGER_READABLE,
    SNAPSHOT_BOUNDED,
    HEALTH_TRUTHFUL,
    STREAM_GAPLESS,
    RISK_LIMITS,
    AUDIT_COMPLETE,
    LIVENESS,
    HALT_DURABLE,
    OPERATOR_ACTION_PERSISTED,
    OUTCOME_TRUTHFUL,
    REPAIR_TRUTHFUL,
    REJECTED_JUSTIFIED,
)


class InvariantViolation(AssertionError):
    """A named invariant failed. The message starts with the name, then the evidence."""

    def __init__(self, invariant: str, evidence: str) -> None:
        super().__init__(f"{invariant}: {evidence}")
        self.invariant = invariant
        self.evidence = evidence


def invariant_of(error: BaseException) -> str:
    """The invariant an exception reports; for any other exception, ENGINE_RAISED when it
    came out of the core, MODEL_ERROR when only the model's own code raised it."""
    if isinstance(error, InvariantViolation):
        return error.invariant
    for name in (*ALL, ENGINE_RAISED, MODEL_ERROR):
        if str(error).startswith(f"{name}:"):
            return name
    return ENGINE_RAISED if raised_by_engine(error) else MODEL_ERROR


_ENGINE_PACKAGE = f"{os.sep}solat_chaos{os.sep}engine{os.sep}"


def raised_by_engine(error: BaseException) -> bool:
    """Whether the exception passed through the core's code on its way out."""
    return any(
        _ENGINE_PACKAGE in frame.f_code.co_filename
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )


# -- the checks ----------------------------------------------------------------------------
# Each takes the World and raises InvariantViolation with the evidence. The machines run the
# safety checks after every step, the restart checks after every crash, CONVERGENCE after
# every reconcile that ran alone, and LIVENESS once, after the heal phase.


def _violated(invariant: str, evidence: str) -> None:
    raise InvariantViolation(invariant, evidence)


def check_at_arrival(world) -> None:
    """AUDIT_BEFORE_BROKER, KILL_SWITCH_DURABLE (openings while active), HALT_DURABLE (any
    order while halted) and FRESH_BALANCE, as the reference model saw them the instant each
    order reached the broker, and OPERATOR_ACTION_PERSISTED and REJECTED_JUSTIFIED as it saw
    each operator action and each refusal."""
    if world.reference.violations:
        raise world.reference.violations[0]


def check_engine_did_not_raise(world) -> None:
    """No task the model started raised: ENGINE_RAISED when the exception came out of the
    core, MODEL_ERROR when the model's own code around it raised."""
    for error in world.engine_errors():
        name = ENGINE_RAISED if raised_by_engine(error) else MODEL_ERROR
        raise InvariantViolation(name, f"{type(error).__name__}: {error}") from error


def check_no_silent_loss(world) -> None:
    """Every order the caller was told filled is durable, or pending with the engine halted
    and health saying so, or (after a crash lost it) an unresolved INTENT the engine knows."""
    durable = world.durable_index()
    confirmed, intents = durable.confirmed, durable.intents
    engine = world.engine
    rotted = world.reference.rotted
    pending = unresolved = None  # read once, and only for an order not durably confirmed
    for reference, result in world.reference.acknowledged.items():
        if reference in confirmed or reference in rotted:
            continue
        if pending is None or unresolved is None:
            pending = {getattr(r, "deal_reference", None) for r in engine.journal.pending}
            unresolved = {i.deal_reference for i in engine.journal.audit.unresolved()}
        if reference in pending:
            health = engine.health()
            if engine.state == "HALTED" and health.outcomes_pending:
                continue
            _violated(
                NO_SILENT_LOSS,
                f"{reference} ({result.status}) is pending but the engine is {engine.state} "
                f"and health reports {health.outcomes_pending} pending",
            )
        if reference in intents and reference in unresolved:
            continue
        _violated(
            NO_SILENT_LOSS,
            f"{reference} was answered {result.status} (deal {result.deal_id}, filled "
            f"{result.filled_size}) but has no durable CONFIRMED record and is not pending",
        )


def _book_differs(world, invariant: str, circumstance: str) -> None:
    """Raise `invariant` if the local book is not the broker's, saying in what circumstance."""
    local, broker = world.local_positions(), world.broker_positions()
    if local != broker:
        _violated(
            invariant, f"local book {local} differs from the broker's {broker} {circumstance}"
        )


def _quiet(world, besides=None) -> bool:
    """Nothing in flight: no task running (but `besides`), no request held at the broker."""
    running = [t for t in world.running() if t.task is not besides]
    return not running and not world.sim.pending


def check_book_matches_broker(world) -> None:
    """CONVERGENCE, continuously: while nothing is in flight and nothing happened at the
    broker that the engine could not see, the local book is the broker's."""
    if _quiet(world) and not world.reference.book_may_lag:
        _book_differs(world, CONVERGENCE, "with nothing in flight and no unseen broker event")


def check_converged_after_reconcile(world, report, task) -> None:
    """CONVERGENCE: the instant a reconcile (`task`) returns success, having deferred
    nothing, with nothing else in flight, local positions equal the broker's."""
    if not report.ok or report.deferred or not _quiet(world, besides=task):
        return
    written = [type(r).__name__ for r in report.records]
    _book_differs(world, CONVERGENCE, f"after a reconcile reported success (it wrote {written})")
    world.reference.book_converged()


def check_exactly_once_fills(world) -> None:
    """Each piece of evidence affects the book once: no position is larger than the largest
    fill, adoption or resize recorded for its deal id. (Positions only shrink after they
    open, so a larger one has had a fill applied twice — whatever the broker answered.)"""
    journal = world.engine.journal
    # The ledger's part folded as it grows (it only appends), then the outcomes pending.
    largest = dict(world.ledger_fills(journal.ledger))
    fold_fills(largest, journal.pending)
    for deal_id, size in world.local_positions().items():
        if size > largest.get(deal_id, 0.0) + 1e-9:
            _violated(
                EXACTLY_ONCE_FILLS,
                f"deal {deal_id} is {size} in the local book but no fill, adoption or resize "
                f"recorded for it was larger than {largest.get(deal_id, 0.0)}: "
                "a fill was applied more than once",
            )


def fold_fills(largest: dict[str, float], records) -> None:
    """Fold into `largest` the size of every fill, adoption or resize among `records`, the
    largest by deal id."""
    for record in records:
        if isinstance(record, Confirmed) and record.action == OPEN:
            size = record.filled_size
        elif isinstance(record, Adopted | Resized):
            size = record.size
        else:
            continue
        largest[record.deal_id] = max(largest.get(record.deal_id, 0.0), size)


def check_kill_switch_durable(world) -> None:
    if world.reference.kill_switch_promised and not world.engine.kill_switch.active:
        _violated(
            KILL_SWITCH_DURABLE,
            f"activation was reported persisted, but engine instance #{world.restarts} "
            f"reports the kill switch inactive ({world.engine.kill_switch.status.reason})",
        )


def check_halt_durable(world) -> None:
    """The engine is halted whenever the model says it must be: in the process that halted,
    and after every restart once the halt was reported persisted."""
    reference, engine = world.reference, world.engine
    if reference.halted is True and not engine.halt_switch.active:
        _violated(
            HALT_DURABLE,
            f"{reference.halt_story} but engine instance #{world.restarts} reports the halt "
            f"inactive ({engine.halt_switch.status.reason})",
        )


def check_outcome_truthful(world) -> None:
    """Every terminal outcome recorded (in the ledger or among the outcomes pending) agrees
    with the broker's truth for its deal reference, whatever a later repair does to the book:
    no reference the broker executed is recorded REJECTED (never executed), and no reference
    the broker never executed (no confirm, or a rejected one) is recorded CONFIRMED. A
    reference whose confirm the broker misattributed to another deal is exempt (the engine
    could not know), and so is one whose ledger line rotted."""
    journal, reference = world.engine.journal, world.reference
    exempt = reference.rotted | reference.misattributed
    for record in [*journal.ledger.records(), *journal.pending]:
        if not isinstance(record, Rejected | Confirmed):
            continue
        if record.deal_reference in exempt:
            continue
        truth = world.sim.lookup_confirm(record.deal_reference)
        executed = truth is not None and truth.status == ACCEPTED
        if isinstance(record, Rejected) and executed:
            _violated(
                OUTCOME_TRUTHFUL,
                f"{record.deal_reference} is recorded REJECTED at stage {record.stage} "
                f"({record.reason}) but the broker executed it (deal {truth.deal_id}, "
                f"size {truth.size})",
            )
        if isinstance(record, Confirmed) and not executed:
            broker = "has no record of it" if truth is None else f"rejected it ({truth.reason})"
            _violated(
                OUTCOME_TRUTHFUL,
                f"{record.deal_reference} is recorded CONFIRMED ({record.action} deal "
                f"{record.deal_id}, filled {record.filled_size}) but the broker {broker}",
            )


def check_repairs_truthful(world, report) -> None:
    """Every CLOSED_EXTERNALLY a reconcile (just returned with `report`) recorded names a
    deal the broker no longer holds: positions never reappear, so one the broker holds now
    never left it while the reconcile ran, whatever list it was served."""
    from solat_chaos.engine.records import ClosedExternally

    held = {p.deal_id for p in world.sim.snapshot_positions()}
    for record in report.records:
        if isinstance(record, ClosedExternally) and record.deal_id in held:
            _violated(
                REPAIR_TRUTHFUL,
                f"a reconcile recorded {record.record_id} but the broker still holds deal "
                f"{record.deal_id}: it never left the broker",
            )


def check_snapshot_bounded(world) -> None:
    snapshots = world.engine.snapshots
    if len(snapshots.pending) > snapshots.max_pending:
        _violated(
            SNAPSHOT_BOUNDED,
            f"{len(snapshots.pending)} snapshots pending, bound {snapshots.max_pending}",
        )
    if not world.snapshot_file_ok():
        _violated(SNAPSHOT_BOUNDED, "the durable snapshot file is torn or unreadable")


def check_health_truthful(world) -> None:
    """Every age the model measured past its threshold (the broker's, the balance's, the
    trade stream's since it last spoke) is reported stale."""
    reference, engine = world.reference, world.engine
    now = world.clock.monotonic()
    ages = {
        "broker": None if reference.broker_last_ok is None else now - reference.broker_last_ok,
        "balance": None if reference.latest_balance is None else now - reference.latest_balance.at,
    }
    if world.stream is not None:
        ages["stream"] = world.stream_age()
    thresholds, health = engine.config.health, None
    for name, age in ages.items():
        threshold = getattr(thresholds, name)
        if age is not None and age <= threshold:
            continue
        if health is None:  # built only now: every step, it was 1 % of a stream step
            health = engine.health()
        if not health.stale.get(name, False):
            _violated(
                HEALTH_TRUTHFUL,
                f"{name} age {age} is past its threshold {threshold}s but health says "
                f"{health.status} with stale={health.stale}",
            )


def check_stream_gapless(world) -> None:
    """STREAM_GAPLESS, the part judged after every step: while the stream may hide a gap
    (a stall, a disconnect, a new session, a repeated subscription, silence past the
    threshold, a restart) and no reconcile started live since has succeeded, health says
    "blind" and the engine sends no opening order (judged at arrival). The rest — every
    change known after the first reconcile once healthy, no event applied twice — is judged
    by CONVERGENCE after every reconcile and by EXACTLY_ONCE_FILLS."""
    if world.stream is None:
        return
    reference = world.reference
    if world.stream_silent():
        reference.stream_may_hide_a_gap("the stream is silent past its keepalive threshold")
    if reference.stream_gap is None:
        return
    health = world.engine.health()
    if health.status != "blind" or world.engine.state == "ACTIVE":
        _violated(
            STREAM_GAPLESS,
            f"the stream may hide a gap ({reference.stream_gap}) but health says "
            f"{health.status!r} and the engine is {world.engine.state}",
        )


def check_audit_complete(world, *, final: bool = False) -> None:
    """No deal reference has two different terminal outcomes; every rejection made while
    the disk was sound left a decision record; finally, every INTENT has its outcome."""
    durable = world.durable_index()
    outcomes, intents = durable.outcomes, durable.intents
    rotted = world.reference.rotted
    for reference, records in outcomes.items():
        if len(records) > 1 and reference not in rotted:
            _violated(
                AUDIT_COMPLETE,
                f"{reference} has {len(records)} different terminal outcomes: "
                f"{sorted(type(r).__name__ for r in records)}",
            )
    for reference in world.reference.rejected_on_a_sound_disk - rotted:
        if not any(isinstance(r, Rejected) for r in outcomes.get(reference, ())):
            _violated(
                AUDIT_COMPLETE,
                f"{reference} was rejected while the disk accepted writes, "
                "but no REJECTED decision record is durable",
            )
    if final:
        for reference in sorted(intents - set(outcomes) - rotted):
            _violated(AUDIT_COMPLETE, f"INTENT {reference} has no terminal outcome after healing")


def check_fail_closed(world) -> None:
    if world.reference.kill_switch_file_garbled and not world.engine.kill_switch.active:
        _violated(
            FAIL_CLOSED,
            "the kill switch state file was unreadable at start, but the engine opened with "
            f"the switch inactive ({world.engine.kill_switch.status.reason})",
        )


def check_ledger_readable(world, ledger_bytes: bytes) -> None:
    """Every line that verifies was recovered; every other line was quarantined (or the
    recovery reported why it could not quarantine it)."""
    recovered = {entry.seq for entry in world.engine.journal.ledger.entries}
    quarantine = world.disk.durable_bytes(world.quarantine_path) or b""
    quarantined = set()
    for line in quarantine.split(b"\n"):
        try:
            quarantined.add(json.loads(line)["offset"])
        except (ValueError, KeyError, TypeError):
            continue
    report = world.engine.recovery
    offset = 0
    for line in ledger_bytes.split(b"\n"):
        if line.strip():
            entry = verified_entry(line)
            if entry is None:
                if offset not in quarantined and report.quarantine_error is None:
                    _violated(
                        LEDGER_READABLE,
                        f"the bad line at offset {offset} was neither recovered nor quarantined",
                    )
            else:
                if entry.seq not in recovered:
                    _violated(
                        LEDGER_READABLE,
                        f"record seq {entry.seq} at offset {offset} verifies but was not recovered",
                    )
        offset += len(line) + 1


# Each line is verified once per process: a line is the same record in every world (after a
# rot or a crash a world reads its whole ledger again, and LEDGER_READABLE checks every line
# of it; examples write the same lines), and verifying lines again was most of the cost of
# reading the durable ledger. (The bound is one the loaded source has already: Hypothesis
# draws constants of the local source, and a new one would change every derandomized example.)
@functools.lru_cache(maxsize=1024)
def verified_entry(line: bytes) -> Entry | None:
    """The record a ledger line verifies as, as recovery reads it; None if it does not."""
    try:
        return unframe(line)
    except ValueError:
        return None


def check_liveness(world) -> None:
    """After the heal phase: local equals broker, nothing pending or in doubt, every INTENT
    has one terminal outcome, halt cleared unless the kill switch is on (or an operator
    halted it), the ledger recovers cleanly, and a trade stream is live with no blindness
    left."""
    engine = world.engine
    _book_differs(world, LIVENESS, "after healing")
    if engine.journal.pending:
        _violated(LIVENESS, f"{len(engine.journal.pending)} outcome(s) still pending after healing")
    unresolved = [i.deal_reference for i in engine.journal.audit.unresolved()]
    if unresolved:
        _violated(LIVENESS, f"still in doubt after healing: {unresolved}")
    check_audit_complete(world, final=True)
    # The halt the model predicts; only when it cannot know (a restart after a halt or resume
    # that failed to persist, or on a faulty disk) does the engine's own word stand.
    halted = world.reference.halted
    if halted is None:
        halted = engine.halt_switch.active
    expected = "ACTIVE"
    if halted:
        expected = "HALTED"
    elif engine.kill_switch.active:
        expected = "REDUCING"
    if engine.state != expected:
        _violated(
            LIVENESS,
            f"after healing the engine is {engine.state}, expected {expected}: "
            f"{engine.trading_status().reasons}",
        )
    if engine.recovery.unreadable:
        _violated(LIVENESS, engine.recovery.unreadable)
    if world.stream is not None and not world.stream.alive:
        _violated(LIVENESS, f"after healing the trade stream is not live ({world.stream.state})")
    if engine.watch is not None and engine.watch.blind() is not None:
        _violated(LIVENESS, f"after healing the engine is still blind: {engine.watch.blind()}")


# A recorded outcome that contradicts the broker is judged before the book it shaped: the
# lie is the cause, the book differing from the broker its consequence.
SAFETY_CHECKS = (
    check_at_arrival,
    check_engine_did_not_raise,
    check_no_silent_loss,
    check_outcome_truthful,
    check_book_matches_broker,
    check_exactly_once_fills,
    check_kill_switch_durable,
    check_halt_durable,
    check_snapshot_bounded,
    check_health_truthful,
    check_stream_gapless,
    check_audit_complete,
)

# The invariants each check guards, for reports counting how often an invariant was checked
# (a check the table does not name counts under its own name).
INVARIANTS_CHECKED_BY = {
    check_at_arrival.__name__: (
        AUDIT_BEFORE_BROKER,
        KILL_SWITCH_DURABLE,
        FRESH_BALANCE,
        RISK_LIMITS,
        OPERATOR_ACTION_PERSISTED,
        REJECTED_JUSTIFIED,
    ),
    check_engine_did_not_raise.__name__: (ENGINE_RAISED, MODEL_ERROR),
    check_no_silent_loss.__name__: (NO_SILENT_LOSS,),
    check_book_matches_broker.__name__: (CONVERGENCE,),
    check_converged_after_reconcile.__name__: (CONVERGENCE,),
    check_exactly_once_fills.__name__: (EXACTLY_ONCE_FILLS,),
    check_kill_switch_durable.__name__: (KILL_SWITCH_DURABLE,),
    check_halt_durable.__name__: (HALT_DURABLE,),
    check_outcome_truthful.__name__: (OUTCOME_TRUTHFUL,),
    check_repairs_truthful.__name__: (REPAIR_TRUTHFUL,),
    check_snapshot_bounded.__name__: (SNAPSHOT_BOUNDED,),
    check_health_truthful.__name__: (HEALTH_TRUTHFUL,),
    check_audit_complete.__name__: (AUDIT_COMPLETE,),
    check_fail_closed.__name__: (FAIL_CLOSED,),
    check_ledger_readable.__name__: (LEDGER_READABLE,),
    check_liveness.__name__: (LIVENESS, AUDIT_COMPLETE),
    # The process machine's order after the heal (model.process_checks).
    "check_a_healed_engine_trades": (REJECTED_JUSTIFIED, LIVENESS),
}
