"""The order router: turns an order intent into a broker order, write-ahead.

Order of work for an opening order (DESIGN.md, Router):
validate → trading state and kill switch → fresh balance and risk limits → durable INTENT →
broker, once → durable outcome (or pending, with the engine halted, if the disk refuses).
"""

from __future__ import annotations

import bisect
import enum
import errno
from collections.abc import Callable

import attrs

from solat_chaos.engine.balance import BalanceCache
from solat_chaos.engine.broker import (
    ACCEPTED,
    DIRECTIONS,
    BrokerError,
    BrokerProtocolError,
    BrokerTimeout,
    CloseOrder,
    DealConfirm,
    OpenOrder,
    opposite,
    valid_size,
)
from solat_chaos.engine.broker_link import BrokerLink
from solat_chaos.engine.clock import Clock
from solat_chaos.engine.journal import Journal
from solat_chaos.engine.ledger import LedgerWriteError
from solat_chaos.engine.positions import normal_size
from solat_chaos.engine.records import CLOSE, OPEN, Confirmed, InDoubt, Intent, Refusal, Rejected
from solat_chaos.engine.risk import Commitments, RiskLimits, check_opening
from solat_chaos.engine.trading_state import TradingStatus

HOUR = 3600.0
# A balance can go stale again while it is being refreshed (a fill lands meanwhile); after
# this many refreshes in a row the order is rejected rather than approved on old numbers.
BALANCE_ATTEMPTS = 3

# What the router itself refuses for, by the stable names its refusals record (the trading
# state's causes are trading_state's, the limits' risk's).
INVALID_EPIC = "invalid_epic"
INVALID_DIRECTION = "invalid_direction"
INVALID_SIZE = "invalid_size"
UNKNOWN_DEAL = "unknown_deal"
EXCEEDS_CLOSABLE = "exceeds_closable"
BALANCE_REFRESH_FAILED = "balance_refresh_failed"
BALANCE_STALE = "balance_stale"
INTENT_NOT_WRITTEN = "intent_not_written"


@attrs.frozen
class OrderIntent:
    """What the strategy wants. Not validated on construction: the router rejects bad
    intents with a reason, so a malformed one is never an exception."""

    epic: str
    direction: str
    size: float


class OrderStatus(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    REJECTED = "REJECTED"
    IN_DOUBT = "IN_DOUBT"


@attrs.frozen
class OrderResult:
    """`outcome_durable` is False when the broker acted but the ledger could not record it
    yet: the outcome is pending in memory and the engine is halted until it is written."""

    status: OrderStatus
    reason: str
    deal_reference: str
    deal_id: str | None = None
    filled_size: float = 0.0
    outcome_durable: bool = True


class DealReferences:
    """Client deal references, unique across restarts even when ledger records are lost:
    `<prefix><epoch><n>`, the epoch being this process's start in milliseconds (base 36),
    moved past any epoch the ledger still shows, and n counting this process's orders. The
    broker answers a reused reference with the first order's confirm, so a reference must
    never come round again."""

    EPOCH_DIGITS = 9
    COUNT_DIGITS = 6

    def __init__(self, prefix: str, started_at: float, known: set[str]) -> None:
        self._prefix = prefix
        seen = max((self._epoch_of(reference) for reference in known), default=-1)
        self._epoch = max(int(started_at * 1000), seen + 1)
        self._count = 0

    def next(self) -> str:
        self._count += 1
        if self._count >= 10**self.COUNT_DIGITS:
            self._epoch, self._count = self._epoch + 1, 1
        epoch = _base36(self._epoch).rjust(self.EPOCH_DIGITS, "0")
        return f"{self._prefix}{epoch}{self._count:0{self.COUNT_DIGITS}d}"

    def _epoch_of(self, reference: str) -> int:
        if not reference.startswith(self._prefix):
            return -1
        digits = reference[len(self._prefix) :][: self.EPOCH_DIGITS]
        try:
            return int(digits, 36)
        except ValueError:
            return -1


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, remainder = divmod(number, 36)
        text = digits[remainder] + text
        if number == 0:
            return text


def describe_disk_error(error: OSError) -> str:
    cause = error.__cause__ if isinstance(error.__cause__, OSError) else error
    if cause.errno == errno.ENOSPC:
        return "out of disk space (No space left on device)"
    return f"disk error ({cause.strerror or cause})"


class Router:
    def __init__(
        self,
        journal: Journal,
        link: BrokerLink,
        balance: BalanceCache,
        clock: Clock,
        *,
        epics: frozenset[str],
        limits: RiskLimits,
        reference_prefix: str,
        trading_status: Callable[[], TradingStatus],
        on_fill: Callable[[], None] = lambda: None,
    ) -> None:
        self._journal = journal
        self._link = link
        self._balance = balance
        self._clock = clock
        self.epics = epics
        self.limits = limits
        self._trading_status = trading_status
        self._on_fill = on_fill
        self.in_flight: set[str] = set()
        self._references = DealReferences(reference_prefix, clock.now(), journal.audit.references)
        self._opening_times = sorted(
            i.at for i in journal.audit.intents.values() if i.action == OPEN
        )

    # -- opening -----------------------------------------------------------------------

    async def submit_order_intent(self, intent: OrderIntent) -> OrderResult:
        reference = self._references.next()
        if problem := self._invalid(intent):
            return self._reject(reference, "validation", problem)
        if refusal := self._trading_status().refuses_opening():
            return self._reject(reference, "state", refusal)
        balance = None
        for _ in range(BALANCE_ATTEMPTS):
            try:
                balance = await self._balance.fresh()
            except BrokerError as e:
                return self._reject(
                    reference,
                    "risk",
                    Refusal(f"stale balance: refresh failed ({e})", (BALANCE_REFRESH_FAILED,)),
                )
            if self._balance.is_fresh():
                break
        else:
            return self._reject(
                reference,
                "risk",
                Refusal("stale balance: a fill landed during every refresh", (BALANCE_STALE,)),
            )
        if refused := self._judge_state_again(reference):
            return refused
        if breach := check_opening(intent.size, self.limits, balance, self.commitments()):
            return self._reject(reference, "risk", breach)
        record = Intent(
            deal_reference=reference,
            action=OPEN,
            epic=intent.epic,
            direction=intent.direction,
            size=float(intent.size),
            at=self._clock.now(),
            balance_age=balance.age,
            balance_fetched_at=balance.fetched_at,
        )
        if failed := self._write_intent(record):
            return failed
        self._opening_times.append(record.at)
        order = OpenOrder(reference, intent.epic, intent.direction, float(intent.size))
        return await self._send(record, lambda: self._link.open_position(order))

    # -- closing -----------------------------------------------------------------------

    async def close_position(self, deal_id: str, size: float | None = None) -> OrderResult:
        """Close `size` of a position (all of it when None). Reduces risk, so it is allowed
        while the kill switch is on or the engine is REDUCING, but not while HALTED."""
        reference = self._references.next()
        position = self._journal.book.get(deal_id) if isinstance(deal_id, str) else None
        if position is None:
            return self._reject(
                reference,
                "validation",
                Refusal(f"invalid deal_id: no open position {deal_id!r}", (UNKNOWN_DEAL,)),
            )
        closable = normal_size(position.size - self._closing(deal_id))
        size = closable if size is None else size
        if not valid_size(size):
            return self._reject(
                reference,
                "validation",
                Refusal(
                    f"invalid size: must be a finite number > 0, got {size!r}", (INVALID_SIZE,)
                ),
            )
        if size > closable:
            return self._reject(
                reference,
                "validation",
                Refusal(
                    f"invalid size: {size} exceeds the closable {closable}", (EXCEEDS_CLOSABLE,)
                ),
            )
        if refusal := self._trading_status().refuses_reducing():
            return self._reject(reference, "state", refusal)
        direction = opposite(position.direction)
        record = Intent(
            deal_reference=reference,
            action=CLOSE,
            epic=position.epic,
            direction=direction,
            size=float(size),
            at=self._clock.now(),
            deal_id=deal_id,
        )
        if failed := self._write_intent(record):
            return failed
        order = CloseOrder(reference, deal_id, direction, float(size))
        return await self._send(record, lambda: self._link.close_position(order))

    # -- what is committed ---------------------------------------------------------------

    def commitments(self) -> Commitments:
        """Open positions plus every opening order whose outcome is not known yet."""
        book = self._journal.book
        unresolved_opens = [i for i in self._journal.audit.unresolved() if i.action == OPEN]
        now = self._clock.now()
        return Commitments(
            positions=len(book) + len(unresolved_opens),
            exposure=sum(p.size for p in book.positions().values())
            + sum(i.size for i in unresolved_opens),
            orders_last_hour=len(self._opening_times)
            - bisect.bisect_right(self._opening_times, now - HOUR),
        )

    # -- the steps ---------------------------------------------------------------------

    def _invalid(self, intent: object) -> Refusal | None:
        epic = getattr(intent, "epic", None)
        direction = getattr(intent, "direction", None)
        size = getattr(intent, "size", None)
        if not isinstance(epic, str) or epic not in self.epics:
            return Refusal(f"invalid epic: unknown epic {epic!r}", (INVALID_EPIC,))
        if direction not in DIRECTIONS:
            return Refusal(
                f"invalid direction: must be one of {', '.join(DIRECTIONS)}, got {direction!r}",
                (INVALID_DIRECTION,),
            )
        if not valid_size(size):
            return Refusal(
                f"invalid size: must be a finite number > 0, got {size!r}", (INVALID_SIZE,)
            )
        return None

    def _judge_state_again(self, reference: str) -> OrderResult | None:
        """The balance refresh awaited the broker: the kill switch or the trading state may
        have changed meanwhile. From this check on there is no await until the order is
        sent, so what is judged here is what the broker call runs under."""
        if refusal := self._trading_status().refuses_opening():
            return self._reject(reference, "state", refusal)
        return None

    def _write_intent(self, record: Intent) -> OrderResult | None:
        """Write-ahead: the INTENT is durable before the broker sees the deal reference."""
        try:
            self._journal.record(record)
        except LedgerWriteError as e:
            return self._reject(
                record.deal_reference,
                "disk",
                Refusal(
                    f"INTENT not written: {describe_disk_error(e)}; order not sent to the broker",
                    (INTENT_NOT_WRITTEN,),
                ),
            )
        return None

    async def _send(self, intent: Intent, call) -> OrderResult:
        reference = intent.deal_reference
        self.in_flight.add(reference)
        try:
            confirm = await call()
        except (BrokerTimeout, BrokerProtocolError) as e:
            # It may have executed: only the reconciler may decide, by deal reference.
            return self._outcome(
                InDoubt(reference, f"outcome unknown: {e}", self._clock.now()),
                OrderStatus.IN_DOUBT,
                f"outcome unknown, reconcile will resolve it by deal reference: {e}",
            )
        except BrokerError as e:
            return self._outcome(
                Rejected(reference, "broker", f"{type(e).__name__}: {e}", self._clock.now()),
                OrderStatus.REJECTED,
                f"broker refused: {e}",
            )
        finally:
            self.in_flight.discard(reference)
        return self._confirmed(intent, confirm)

    def _confirmed(self, intent: Intent, confirm: DealConfirm) -> OrderResult:
        reference = intent.deal_reference
        now = self._clock.now()
        if confirm.status != ACCEPTED:
            return self._outcome(
                Rejected(reference, "broker", confirm.reason or "rejected", now),
                OrderStatus.REJECTED,
                f"broker rejected: {confirm.reason or 'no reason given'}",
            )
        if (
            confirm.deal_reference != reference
            or not confirm.deal_id
            or confirm.size > intent.size
            or (intent.action == CLOSE and confirm.deal_id != intent.deal_id)
        ):
            return self._outcome(
                InDoubt(reference, f"confirm does not match the order: {confirm}", now),
                OrderStatus.IN_DOUBT,
                "the broker's confirm does not match the order; reconcile will resolve it",
            )
        if intent.action == OPEN and self._journal.book.has_filled(confirm.deal_id):
            return self._outcome(
                InDoubt(reference, f"confirm names deal {confirm.deal_id}, already filled", now),
                OrderStatus.IN_DOUBT,
                f"the broker confirmed deal id {confirm.deal_id}, which an earlier order "
                "already opened; reconcile will resolve it by deal reference",
            )
        if confirm.size <= 0:
            return self._outcome(
                Rejected(reference, "broker", "accepted but nothing filled", now),
                OrderStatus.REJECTED,
                "broker accepted but filled nothing",
            )
        fill = Confirmed(
            deal_reference=reference,
            action=intent.action,
            deal_id=confirm.deal_id,
            epic=intent.epic,
            direction=intent.direction,
            filled_size=confirm.size,
            at=now,
            level=confirm.level,
        )
        partial = confirm.size < intent.size
        result = self._outcome(
            fill,
            OrderStatus.PARTIALLY_FILLED if partial else OrderStatus.ACCEPTED,
            f"filled {confirm.size} of {intent.size}" if partial else "filled",
            deal_id=confirm.deal_id,
            filled_size=confirm.size,
        )
        self._balance.fill_happened()
        self._on_fill()
        return result

    def _outcome(self, record, status: OrderStatus, reason: str, **fields) -> OrderResult:
        durable = self._journal.record_outcome(record)
        if not durable:
            reason += "; outcome pending: the ledger refused it, engine halted until it is written"
        return OrderResult(status, reason, record.deal_reference, outcome_durable=durable, **fields)

    def _reject(self, reference: str, stage: str, refusal: Refusal) -> OrderResult:
        self._journal.record_decision(
            Rejected(reference, stage, refusal.reason, self._clock.now(), refusal.causes)
        )
        return OrderResult(OrderStatus.REJECTED, refusal.reason, reference)

    def _closing(self, deal_id: str) -> float:
        return sum(
            i.size
            for i in self._journal.audit.unresolved()
            if i.action == CLOSE and i.deal_id == deal_id
        )
