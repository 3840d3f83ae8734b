"""SimBroker: an in-memory IG-like broker, the ground truth in every test.

It implements the `Broker` port directly and is deterministic: deal ids come from a counter
(`DIAAAA000000001`, ...), prices only move when a test calls `set_price`, and nothing is random.

State
-----
- the account: `balance` (cash; closes realise P&L into it), `profit_loss` (unrealised P&L of the
  open positions at the current price levels), margin (size × level × scaling factor × margin
  factor per position) and `available = balance + profit_loss − margin` (IG's "available to
  deal"; equal to balance − margin while prices have not moved);
- open positions keyed by deal id;
- confirms keyed by deal reference. The client chooses the deal reference (as on IG); a reused
  reference answers the first confirm again without executing a second time (idempotent);
- `requests`: append-only log of every request that reached a port method (what the
  AUDIT_BEFORE_BROKER invariant reads), logged on arrival before any fault or hold;
- `events`: append-only OPENED / CLOSED / PARTIALLY_CLOSED history with sequence numbers, for a
  trade stream and its backfill (`events_since`).

Layers
------
The plain (synchronous) methods — `execute_open`, `execute_close`, `lookup_confirm`,
`snapshot_positions`, `snapshot_account`, `snapshot_activity` — are the broker's matching
engine: they change or read state, write no request log and apply no seam except partial fills.
The async port methods (`open_position`, `close_position`, `confirm`, `positions`, `account`,
`activity`) log the request, apply the seams and call the plain methods. Broker-side actions a
test may take outside the API: `set_price`, `open_externally`, `close_externally` (a close done
on the IG dashboard).

Seams (for the chaos layer; each is consumed by the calls it names, in order)
-----------------------------------------------------------------------------
Port methods are named by `OPEN_POSITION`, `CLOSE_POSITION`, `CONFIRM`, `POSITIONS`, `ACCOUNT`,
`ACTIVITY`.

- `fill_fraction(fraction, count=1, method=OPEN_POSITION)`: the next `count` executions of opens
  (or closes) fill only `fraction` of the requested size; the confirm carries the filled size.
- `fail_next(method, error, after_execute=False, count=1)`: the next `count` calls of `method`
  raise `error` (a port error). `after_execute=True` executes first and then raises: "executed
  but the response was lost". Bound to a call when it arrives.
- `fail_next(CONFIRM, error, after_order=True, count=1)`: the confirm poll that follows each of
  the next `count` orders (open or close, bound to an order that arrives with no other fault
  armed) fails with `error`, after the order executed. Called directly, the order's port method
  raises what a correct adapter reports then: `error` if a BrokerTimeout or
  BrokerProtocolError, else BrokerTimeout (the order was sent: its outcome is unknown). Over
  HTTP (`ig_http`) the order's POST is answered and the GET /confirms after it fails with
  `error`: the app asks `take_lost_confirm(ref)` when the order raises.
- `hold(method, count=None)` / `unhold(method)`: calls of `method` that arrive while a hold is
  armed wait unanswered and appear in `pending`. `release(i)` executes the i-th pending request
  now and answers it; `time_out(i, executed=...)` answers it with BrokerTimeout, having executed
  it or not. Execution happens at release time, so the release order is the broker's execution
  order. A held call whose caller was cancelled stays pending; releasing it still executes it
  (the broker does not know the client gave up). Holds use asyncio futures: release from the
  event loop the held calls run on.
- `stale_positions(count=1)`: snapshots the positions now; the next `count` answers of
  `positions()` return that snapshot instead of the truth ("arm, then change state").
- `duplicate_deal_id(method=OPEN_POSITION, deal_id=None, count=1)`: the next ACCEPTED confirm
  answered by `method` names `deal_id` (default: the most recent other deal id) instead of its
  own. Only the answer is wrong; the ground truth and later `confirm` lookups keep the real id.
- `heal()`: disarm every seam and release every pending request in arrival order.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from solat_chaos.engine.broker import (
    ACCEPTED,
    BUY,
    DIRECTIONS,
    POSITION_CLOSED,
    POSITION_OPENED,
    POSITION_PARTIALLY_CLOSED,
    REJECTED,
    Account,
    BrokerActivity,
    BrokerError,
    BrokerPosition,
    BrokerProtocolError,
    BrokerRejected,
    BrokerTimeout,
    CloseOrder,
    DealConfirm,
    OpenOrder,
    valid_size,
)

# Port method names: request kinds in the log, and the keys of every seam.
OPEN_POSITION = "open_position"
CLOSE_POSITION = "close_position"
CONFIRM = "confirm"
POSITIONS = "positions"
ACCOUNT = "account"
ACTIVITY = "activity"
PORT_METHODS = (OPEN_POSITION, CLOSE_POSITION, CONFIRM, POSITIONS, ACCOUNT, ACTIVITY)
ORDER_METHODS = (OPEN_POSITION, CLOSE_POSITION)
DUPLICATE_METHODS = (OPEN_POSITION, CLOSE_POSITION, CONFIRM)

# Event kinds.
OPENED = "OPENED"
CLOSED = "CLOSED"
PARTIALLY_CLOSED = "PARTIALLY_CLOSED"

ACTIVITY_ACTION = {
    OPENED: POSITION_OPENED,
    CLOSED: POSITION_CLOSED,
    PARTIALLY_CLOSED: POSITION_PARTIALLY_CLOSED,
}

# IG confirm reasons the sim uses (values of IG's `reason` enum).
SUCCESS = "SUCCESS"
INSTRUMENT_NOT_FOUND = "INSTRUMENT_NOT_FOUND"
MINIMUM_ORDER_SIZE_ERROR = "MINIMUM_ORDER_SIZE_ERROR"
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
POSITION_NOT_AVAILABLE_TO_CLOSE = "POSITION_NOT_AVAILABLE_TO_CLOSE"
WRONG_SIDE_OF_MARKET = "WRONG_SIDE_OF_MARKET"

# IG's constraint on a client-chosen deal reference.
DEAL_REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,30}")

# Sizes closer than this are equal (a close of the whole remaining size is a full close).
SIZE_EPSILON = 1e-9


class _HasNow(Protocol):
    def now(self) -> float: ...


@attrs.frozen
class Market:
    """A tradeable epic: its price level and how margin and P&L are computed.

    P&L of a position = (level now − open level) × size × scaling_factor (× −1 for SELL);
    margin = size × level now × scaling_factor × margin_factor. With IG's spread-bet epics
    `size` is £ per point and `scaling_factor` is points per unit of level.
    """

    epic: str
    name: str
    level: float
    margin_factor: float
    scaling_factor: float = 1.0
    instrument_type: str = "CURRENCIES"
    min_size: float = 0.0


DEFAULT_MARKETS = (
    Market("CS.D.EURUSD.TODAY.IP", "EUR/USD", 1.1, 0.0333, 10_000.0, "CURRENCIES"),
    Market("CS.D.GBPUSD.TODAY.IP", "GBP/USD", 1.25, 0.0333, 10_000.0, "CURRENCIES"),
    Market("IX.D.FTSE.DAILY.IP", "FTSE 100", 8000.0, 0.05, 1.0, "INDICES"),
)
DEFAULT_EPICS = tuple(m.epic for m in DEFAULT_MARKETS)


@attrs.frozen
class BrokerRequest:
    """One request that reached a port method, logged on arrival.

    `fault` names what was bound to it on arrival ("held", "BrokerTimeout after execute", ...).
    """

    seq: int
    kind: str
    deal_reference: str | None = None
    deal_id: str | None = None
    epic: str | None = None
    direction: str | None = None
    size: float | None = None
    at: float | None = None
    fault: str | None = None


@attrs.frozen
class BrokerEvent:
    """One change of a position. `size` is the amount opened or closed, `remaining` what is
    left of the position afterwards, `source` is "api" or "external" (dashboard)."""

    seq: int
    kind: str
    deal_id: str
    deal_reference: str
    epic: str
    direction: str
    size: float
    remaining: float
    level: float
    profit: float = 0.0
    source: str = "api"
    at: float | None = None


@attrs.frozen
class ConfirmRecord:
    """The stored confirm of a deal reference plus the IG details the HTTP dialect shows."""

    confirm: DealConfirm
    kind: str  # "open" or "close"
    requested_size: float | None
    status: str | None  # IG position status: OPEN, CLOSED, PARTIALLY_CLOSED; None if rejected
    affected_status: str | None  # OPENED, FULLY_CLOSED, PARTIALLY_CLOSED; None if rejected
    profit: float | None = None
    at: float | None = None


@attrs.frozen
class PendingRequest:
    """A held request waiting for `release` or `time_out`. `seq` is its request log number."""

    seq: int
    kind: str
    deal_reference: str | None
    deal_id: str | None
    epic: str | None
    size: float | None


@attrs.define
class _Position:
    deal_id: str
    deal_reference: str
    epic: str
    direction: str
    size: float
    level: float

    def frozen(self) -> BrokerPosition:
        return BrokerPosition(
            deal_id=self.deal_id,
            deal_reference=self.deal_reference,
            epic=self.epic,
            direction=self.direction,
            size=self.size,
            level=self.level,
        )


@attrs.frozen
class _Fault:
    error: BrokerError
    after_execute: bool


@attrs.define
class _Call:
    request: BrokerRequest
    arg: Any
    fault: _Fault | None
    confirm_fault: BrokerError | None = None  # the confirm poll after this order fails


@attrs.frozen
class _Outcome:
    value: Any = None
    error: BaseException | None = None

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error.with_traceback(None)
        return self.value


@attrs.define
class _Held:
    pending: PendingRequest
    call: _Call
    future: asyncio.Future[_Outcome]


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _money(value: float) -> float:
    return round(value, 2)


class SimBroker:
    """An in-memory IG-like broker. See the module docstring for state, layers and seams.

    `markets` are `Market`s or epics (a default market spec is used for an epic, a generic one
    — level 100, margin factor 5% — for an epic it does not know); default `DEFAULT_MARKETS`.
    `clock` (anything with `now()`, e.g. the engine's SimClock) stamps requests, events and
    confirms with sim time; without one those stamps are None.
    """

    def __init__(
        self,
        markets: Iterable[Market | str] | None = None,
        *,
        balance: float = 10_000.0,
        currency: str = "GBP",
        clock: _HasNow | None = None,
    ) -> None:
        self._markets: dict[str, Market] = {}
        defaults = {m.epic: m for m in DEFAULT_MARKETS}
        for item in DEFAULT_MARKETS if markets is None else markets:
            market = item if isinstance(item, Market) else defaults.get(item)
            if market is None:
                market = Market(epic=str(item), name=str(item), level=100.0, margin_factor=0.05)
            self._markets[market.epic] = market
        self.currency = currency
        self.clock = clock
        self._lock = threading.RLock()
        self._balance = float(balance)
        self._positions: dict[str, _Position] = {}
        self._confirms: dict[str, ConfirmRecord] = {}
        self._requests: list[BrokerRequest] = []
        self._events: list[BrokerEvent] = []
        self._deal_ids: list[str] = []  # every deal id ever opened, in order
        self._deal_counter = 0
        self._reference_counter = 0
        # seams
        self._faults: dict[str, deque[_Fault]] = {m: deque() for m in PORT_METHODS}
        self._holds: dict[str, int | None] = {}
        self._fractions: dict[str, deque[float]] = {m: deque() for m in ORDER_METHODS}
        self._stale: deque[tuple[BrokerPosition, ...]] = deque()
        self._duplicates: dict[str, deque[str | None]] = {m: deque() for m in PORT_METHODS}
        self._held: list[_Held] = []
        self._confirm_poll_faults: deque[BrokerError] = deque()
        # Orders that executed but whose confirm poll failed, by deal reference, until the
        # HTTP app takes them (a direct caller never does: it had the error raised).
        self._lost_confirms: dict[str, BrokerError] = {}

    # ------------------------------------------------------------------ reading the truth

    @property
    def markets(self) -> dict[str, Market]:
        with self._lock:
            return dict(self._markets)

    @property
    def requests(self) -> tuple[BrokerRequest, ...]:
        with self._lock:
            return tuple(self._requests)

    @property
    def events(self) -> tuple[BrokerEvent, ...]:
        with self._lock:
            return tuple(self._events)

    def events_since(self, seq: int) -> tuple[BrokerEvent, ...]:
        """Events with a sequence number greater than `seq` (`events_since(0)` is all)."""
        with self._lock:
            # Sequence numbers count the events from 1: those after `seq` are a tail (a trade
            # stream asks at every pump, and scanning the whole history each time was most
            # of a pump's cost).
            return tuple(self._events[max(seq, 0) :])

    @property
    def last_event_seq(self) -> int:
        """The sequence number of the latest event (0 before the first)."""
        return len(self._events)

    @property
    def confirms(self) -> dict[str, DealConfirm]:
        with self._lock:
            return {ref: rec.confirm for ref, rec in self._confirms.items()}

    def confirm_record(self, deal_reference: str) -> ConfirmRecord | None:
        with self._lock:
            return self._confirms.get(deal_reference)

    def received_deal_references(self) -> set[str]:
        """Every deal reference that reached `open_position` or `close_position`."""
        with self._lock:
            return {
                r.deal_reference
                for r in self._requests
                if r.kind in ORDER_METHODS and isinstance(r.deal_reference, str)
            }

    def level(self, epic: str) -> float:
        with self._lock:
            return self._markets[epic].level

    def margin(self) -> float:
        with self._lock:
            return sum(self._margin_of(p) for p in self._positions.values())

    def snapshot_positions(self) -> list[BrokerPosition]:
        """The open positions now, in the order they were opened."""
        with self._lock:
            return [p.frozen() for p in self._positions.values()]

    def position_sizes(self) -> dict[str, float]:
        """The open positions' sizes by deal id, in the order they were opened (what
        `snapshot_positions` says of them, without making a BrokerPosition of each)."""
        with self._lock:
            return {deal_id: p.size for deal_id, p in self._positions.items()}

    def snapshot_account(self) -> Account:
        with self._lock:
            pnl = sum(self._pnl_of(p, p.size) for p in self._positions.values())
            return Account(
                balance=_money(self._balance),
                available=_money(self._balance + pnl - self.margin()),
                profit_loss=_money(pnl),
                currency=self.currency,
            )

    def snapshot_activity(self, since: float) -> list[BrokerActivity]:
        """Every event at or after `since` as IG's activity history shows it, oldest first
        (events without a time stamp, from a sim without a clock, are always shown)."""
        with self._lock:
            return [
                BrokerActivity(
                    deal_id=e.deal_id,
                    deal_reference=e.deal_reference,
                    action=ACTIVITY_ACTION[e.kind],
                    epic=e.epic,
                    direction=e.direction if e.kind == OPENED else _opposite(e.direction),
                    size=e.size,
                    at=0.0 if e.at is None else e.at,
                    level=e.level,
                )
                for e in self._events
                if e.at is None or e.at >= since
            ]

    def lookup_confirm(self, deal_reference: str) -> DealConfirm | None:
        with self._lock:
            record = self._confirms.get(deal_reference)
            return None if record is None else record.confirm

    def now(self) -> float | None:
        return None if self.clock is None else self.clock.now()

    # ------------------------------------------------------------------ broker-side actions

    def set_price(self, epic: str, level: float) -> None:
        if not (_is_number(level) and math.isfinite(level) and level > 0):
            raise ValueError(f"a price level must be finite and > 0, not {level!r}")
        with self._lock:
            self._markets[epic] = attrs.evolve(self._markets[epic], level=float(level))

    def new_deal_reference(self) -> str:
        """A fresh broker-generated deal reference (used when a client sends none)."""
        with self._lock:
            while True:
                self._reference_counter += 1
                ref = f"SIMREF{self._reference_counter:09d}"
                if ref not in self._confirms:
                    return ref

    def open_externally(
        self, epic: str, direction: str, size: float, deal_reference: str | None = None
    ) -> DealConfirm:
        """A position opened outside the API (IG dashboard): no request log entry."""
        order = OpenOrder(deal_reference or self.new_deal_reference(), epic, direction, size)
        confirm = self._execute_open(order, source="external", fraction=1.0)
        if confirm.status != ACCEPTED:
            raise ValueError(f"open_externally refused: {confirm.reason}")
        return confirm

    def close_externally(self, deal_id: str, size: float | None = None) -> DealConfirm:
        """Close all or `size` of a position outside the API (IG dashboard): the position
        shrinks or goes, an event is recorded, no request log entry is written."""
        with self._lock:
            position = self._positions.get(deal_id)
            if position is None:
                raise KeyError(f"no open position {deal_id}")
            size = position.size if size is None else size
            if not valid_size(size) or size > position.size + SIZE_EPSILON:
                raise ValueError(f"cannot close {size!r} of {deal_id} (size {position.size})")
            order = CloseOrder(
                self.new_deal_reference(), deal_id, _opposite(position.direction), size
            )
            return self._execute_close(order, source="external", fraction=1.0)

    # ------------------------------------------------------------------ matching engine

    def execute_open(self, order: OpenOrder) -> DealConfirm:
        """Execute an open now (idempotent by deal reference). Consumes a partial-fill seam.

        Raises BrokerRejected("validation...") for a structurally invalid order (what IG answers
        with HTTP 400); an unknown epic, a bad size or missing funds give a REJECTED confirm.
        """
        with self._lock:
            return self._execute_open(order, source="api", fraction=None)

    def execute_close(self, order: CloseOrder) -> DealConfirm:
        """Execute a close now (idempotent by deal reference). Consumes a partial-fill seam.

        A close of more than the position holds, of an unknown deal or in the position's own
        direction gives a REJECTED confirm, as on IG.
        """
        with self._lock:
            return self._execute_close(order, source="api", fraction=None)

    def _earlier_confirm(
        self, order: OpenOrder | CloseOrder, target_field: str, target: object
    ) -> DealConfirm | None:
        """The confirm of a reused deal reference (IG's idempotency), else None once the
        order's fields pass IG's request validation (BrokerRejected, like its HTTP 400)."""
        _check_reference(order.deal_reference)
        existing = self._confirms.get(order.deal_reference)
        if existing is not None:
            return existing.confirm
        if not isinstance(target, str) or not target:
            raise BrokerRejected(f"validation.null-not-allowed.request.{target_field}")
        if order.direction not in DIRECTIONS:
            raise BrokerRejected("validation.pattern.invalid.request.direction")
        if not _is_number(order.size):
            raise BrokerRejected("validation.null-not-allowed.request.size")
        return None

    def _execute_open(
        self, order: OpenOrder, *, source: str, fraction: float | None
    ) -> DealConfirm:
        with self._lock:
            if (existing := self._earlier_confirm(order, "epic", order.epic)) is not None:
                return existing
            market = self._markets.get(order.epic)
            reason = None
            if market is None:
                reason = INSTRUMENT_NOT_FOUND
            elif not valid_size(order.size) or order.size < market.min_size:
                reason = MINIMUM_ORDER_SIZE_ERROR
            if reason is not None or market is None:
                return self._reject(order.deal_reference, "open", order.epic, order, reason)
            if fraction is None:
                fraction = self._take_fraction(OPEN_POSITION)
            filled = _fill(order.size, fraction)
            required = filled * market.level * market.scaling_factor * market.margin_factor
            if required > self.snapshot_account().available + SIZE_EPSILON:
                return self._reject(
                    order.deal_reference, "open", order.epic, order, INSUFFICIENT_FUNDS
                )
            self._deal_counter += 1
            deal_id = f"DIAAAA{self._deal_counter:09d}"
            position = _Position(
                deal_id, order.deal_reference, order.epic, order.direction, filled, market.level
            )
            self._positions[deal_id] = position
            self._deal_ids.append(deal_id)
            confirm = DealConfirm(
                deal_reference=order.deal_reference,
                status=ACCEPTED,
                deal_id=deal_id,
                epic=order.epic,
                direction=order.direction,
                size=filled,
                level=market.level,
                reason=SUCCESS,
            )
            at = self.now()
            self._confirms[order.deal_reference] = ConfirmRecord(
                confirm, "open", order.size, "OPEN", OPENED, at=at
            )
            self._event(OPENED, position, order.deal_reference, filled, market.level, 0.0, source)
            return confirm

    def _execute_close(
        self, order: CloseOrder, *, source: str, fraction: float | None
    ) -> DealConfirm:
        with self._lock:
            if (existing := self._earlier_confirm(order, "dealId", order.deal_id)) is not None:
                return existing
            position = self._positions.get(order.deal_id)
            epic = position.epic if position is not None else ""
            reason = None
            if position is None:
                reason = POSITION_NOT_AVAILABLE_TO_CLOSE
            elif order.direction == position.direction:
                reason = WRONG_SIDE_OF_MARKET
            elif not valid_size(order.size):
                reason = MINIMUM_ORDER_SIZE_ERROR
            elif order.size > position.size + SIZE_EPSILON:
                reason = POSITION_NOT_AVAILABLE_TO_CLOSE
            if reason is not None or position is None:
                return self._reject(order.deal_reference, "close", epic, order, reason)
            if fraction is None:
                fraction = self._take_fraction(CLOSE_POSITION)
            closed = min(_fill(order.size, fraction), position.size)
            if position.size - closed <= SIZE_EPSILON:
                closed = position.size
            level = self._markets[position.epic].level
            profit = _money(self._pnl_of(position, closed))
            self._balance += profit
            remaining = position.size - closed
            full = remaining <= SIZE_EPSILON
            if full:
                del self._positions[position.deal_id]
                remaining = 0.0
            else:
                position.size = remaining
            confirm = DealConfirm(
                deal_reference=order.deal_reference,
                status=ACCEPTED,
                deal_id=position.deal_id,
                epic=position.epic,
                direction=order.direction,
                size=closed,
                level=level,
                reason=SUCCESS,
            )
            self._confirms[order.deal_reference] = ConfirmRecord(
                confirm,
                "close",
                order.size,
                "CLOSED" if full else "PARTIALLY_CLOSED",
                "FULLY_CLOSED" if full else "PARTIALLY_CLOSED",
                profit=profit,
                at=self.now(),
            )
            self._event(
                CLOSED if full else PARTIALLY_CLOSED,
                position,
                order.deal_reference,
                closed,
                level,
                profit,
                source,
                remaining=remaining,
            )
            return confirm

    def _reject(
        self, ref: str, kind: str, epic: str, order: OpenOrder | CloseOrder, reason: str | None
    ) -> DealConfirm:
        confirm = DealConfirm(
            deal_reference=ref,
            status=REJECTED,
            deal_id=None,
            epic=epic,
            direction=order.direction,
            size=0.0,
            level=None,
            reason=reason or "UNKNOWN",
        )
        self._confirms[ref] = ConfirmRecord(
            confirm, kind, float(order.size), None, None, at=self.now()
        )
        return confirm

    def _event(
        self,
        kind: str,
        position: _Position,
        ref: str,
        size: float,
        level: float,
        profit: float,
        source: str,
        *,
        remaining: float | None = None,
    ) -> None:
        self._events.append(
            BrokerEvent(
                seq=len(self._events) + 1,
                kind=kind,
                deal_id=position.deal_id,
                deal_reference=ref,
                epic=position.epic,
                direction=position.direction,
                size=size,
                remaining=position.size if remaining is None else remaining,
                level=level,
                profit=profit,
                source=source,
                at=self.now(),
            )
        )

    def _pnl_of(self, position: _Position, size: float) -> float:
        market = self._markets[position.epic]
        sign = 1.0 if position.direction == BUY else -1.0
        return sign * (market.level - position.level) * size * market.scaling_factor

    def _margin_of(self, position: _Position) -> float:
        market = self._markets[position.epic]
        return position.size * market.level * market.scaling_factor * market.margin_factor

    # ------------------------------------------------------------------ the Broker port

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        return await self._port(
            OPEN_POSITION,
            order,
            deal_reference=order.deal_reference,
            epic=order.epic,
            direction=order.direction,
            size=order.size,
        )

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        return await self._port(
            CLOSE_POSITION,
            order,
            deal_reference=order.deal_reference,
            deal_id=order.deal_id,
            direction=order.direction,
            size=order.size,
        )

    async def confirm(self, deal_reference: str) -> DealConfirm | None:
        return await self._port(CONFIRM, deal_reference, deal_reference=deal_reference)

    async def positions(self) -> list[BrokerPosition]:
        return await self._port(POSITIONS, None)

    async def account(self) -> Account:
        return await self._port(ACCOUNT, None)

    async def activity(self, since: float) -> list[BrokerActivity]:
        return await self._port(ACTIVITY, since)

    async def _port(self, kind: str, arg: Any, **fields: Any) -> Any:
        call, held = self._arrive(kind, arg, fields)
        if held is None:
            return self._process(call).unwrap()
        outcome = await held.future
        return outcome.unwrap()

    def _arrive(self, kind: str, arg: Any, fields: dict[str, Any]) -> tuple[_Call, _Held | None]:
        with self._lock:
            faults = self._faults[kind]
            fault = faults.popleft() if faults else None
            confirm_fault = None
            if fault is None and kind in ORDER_METHODS and self._confirm_poll_faults:
                confirm_fault = self._confirm_poll_faults.popleft()
            held = self._take_hold(kind)
            notes = []
            if held:
                notes.append("held")
            if fault is not None:
                when = "after execute" if fault.after_execute else "before execute"
                notes.append(f"{type(fault.error).__name__} {when}")
            if confirm_fault is not None:
                notes.append(f"{type(confirm_fault).__name__} in the confirm poll")
            request = BrokerRequest(
                seq=len(self._requests) + 1,
                kind=kind,
                at=self.now(),
                fault=", ".join(notes) or None,
                **fields,
            )
            self._requests.append(request)
            call = _Call(request, arg, fault, confirm_fault)
            if not held:
                return call, None
            pending = PendingRequest(
                seq=request.seq,
                kind=kind,
                deal_reference=request.deal_reference,
                deal_id=request.deal_id,
                epic=request.epic,
                size=request.size,
            )
            entry = _Held(pending, call, asyncio.get_running_loop().create_future())
            self._held.append(entry)
            return call, entry

    def _process(self, call: _Call) -> _Outcome:
        with self._lock:
            fault = call.fault
            if fault is not None and not fault.after_execute:
                return _Outcome(error=fault.error)
            try:
                value = self._answer(call)
            except BrokerError as error:
                return _Outcome(error=error)
            if fault is not None:
                return _Outcome(error=fault.error)
            if call.confirm_fault is not None:
                self._lost_confirms[value.deal_reference] = call.confirm_fault
                return _Outcome(error=_as_reported_after_order(call.confirm_fault))
            return _Outcome(value=value)

    def _answer(self, call: _Call) -> Any:
        kind = call.request.kind
        if kind == OPEN_POSITION:
            return self._duplicate(kind, self.execute_open(call.arg))
        if kind == CLOSE_POSITION:
            return self._duplicate(kind, self.execute_close(call.arg))
        if kind == CONFIRM:
            found = self.lookup_confirm(call.arg)
            return None if found is None else self._duplicate(kind, found)
        if kind == POSITIONS:
            if self._stale:
                return list(self._stale.popleft())
            return self.snapshot_positions()
        if kind == ACTIVITY:
            return self.snapshot_activity(call.arg)
        return self.snapshot_account()

    def _execute_only(self, call: _Call) -> None:
        """Execute a held order without answering (time_out with executed=True)."""
        kind = call.request.kind
        try:
            if kind == OPEN_POSITION:
                self.execute_open(call.arg)
            elif kind == CLOSE_POSITION:
                self.execute_close(call.arg)
        except BrokerError:
            pass

    # ------------------------------------------------------------------ seams

    def fill_fraction(
        self, fraction: float, *, count: int = 1, method: str = OPEN_POSITION
    ) -> None:
        """The next `count` executions of `method` (open or close) fill `fraction` (0 < f ≤ 1)
        of the requested size."""
        if method not in ORDER_METHODS:
            raise ValueError(f"partial fills apply to {ORDER_METHODS}, not {method!r}")
        if not (_is_number(fraction) and 0 < fraction <= 1):
            raise ValueError(f"fraction must be in (0, 1], not {fraction!r}")
        with self._lock:
            self._fractions[method].extend([float(fraction)] * _count(count))

    def fail_next(
        self,
        method: str,
        error: BrokerError,
        *,
        after_execute: bool = False,
        after_order: bool = False,
        count: int = 1,
    ) -> None:
        """The next `count` calls of `method` raise `error`; with `after_execute=True` the
        request executes first ("executed but the response was lost"). With
        `after_order=True` (method CONFIRM only) the confirm polls that follow the next
        `count` orders fail instead (see the module docstring)."""
        _check_method(method)
        if not isinstance(error, BrokerError):
            raise TypeError(f"fail_next takes a port error (BrokerError), not {error!r}")
        if after_order and (method != CONFIRM or after_execute):
            raise ValueError(
                f"after_order fails the confirm poll after an order: method {CONFIRM!r} "
                f"without after_execute, not {method!r}"
                + (" with after_execute" if after_execute else "")
            )
        with self._lock:
            if after_order:
                self._confirm_poll_faults.extend([error] * _count(count))
            else:
                self._faults[method].extend([_Fault(error, after_execute)] * _count(count))

    def take_lost_confirm(self, deal_reference: str) -> BrokerError | None:
        """The error the confirm poll after order `deal_reference` is to fail with, if that
        order executed under `fail_next(CONFIRM, ..., after_order=True)`; once."""
        with self._lock:
            return self._lost_confirms.pop(deal_reference, None)

    def hold(self, method: str, count: int | None = None) -> None:
        """Hold the next `count` calls of `method` (all of them until `unhold` if None)."""
        _check_method(method)
        with self._lock:
            self._holds[method] = None if count is None else _count(count)

    def unhold(self, method: str) -> None:
        """Stop holding new calls of `method`; calls already held stay pending."""
        with self._lock:
            self._holds.pop(method, None)

    @property
    def pending(self) -> tuple[PendingRequest, ...]:
        """Held requests not yet answered, in arrival order; `release(i)` indexes this."""
        with self._lock:
            return tuple([h.pending for h in self._held])

    def release(self, i: int = 0) -> None:
        """Execute the i-th pending request now and deliver its answer (or its injected
        error) to the caller."""
        with self._lock:
            held = self._held.pop(i)
            outcome = self._process(held.call)
        _deliver(held.future, outcome)

    def time_out(self, i: int = 0, *, executed: bool) -> None:
        """Answer the i-th pending request with BrokerTimeout, after executing it or not."""
        with self._lock:
            held = self._held.pop(i)
            if executed:
                self._execute_only(held.call)
        ref = held.pending.deal_reference
        _deliver(
            held.future,
            _Outcome(error=BrokerTimeout(f"sim: {held.pending.kind} {ref or ''} timed out")),
        )

    def release_all(self) -> None:
        while True:
            with self._lock:
                if not self._held:
                    return
            self.release(0)

    def stale_positions(self, count: int = 1) -> None:
        """The next `count` answers of `positions()` return the positions as they are now."""
        with self._lock:
            snapshot = tuple(self.snapshot_positions())
            self._stale.extend([snapshot] * _count(count))

    @property
    def stale_answers_armed(self) -> int:
        """How many `positions()` answers will still be stale."""
        with self._lock:
            return len(self._stale)

    def duplicate_deal_id(
        self, method: str = OPEN_POSITION, deal_id: str | None = None, *, count: int = 1
    ) -> None:
        """The next `count` ACCEPTED confirms answered by `method` name `deal_id` (default:
        the most recent other deal id) instead of their own."""
        if method not in DUPLICATE_METHODS:
            raise ValueError(f"duplicate deal ids apply to confirms, not {method!r}")
        with self._lock:
            self._duplicates[method].extend([deal_id] * _count(count))

    # Every seam that can be armed, by the name `armed_faults` gives it.
    FAULT_KINDS = (
        *(f"broker:fail_next:{m}" for m in PORT_METHODS),
        *(f"broker:answer_lost:{m}" for m in ORDER_METHODS),
        *(f"broker:hold:{m}" for m in PORT_METHODS),
        *(f"broker:partial_fill:{m}" for m in ORDER_METHODS),
        "broker:stale_positions",
        *(f"broker:duplicate_deal_id:{m}" for m in DUPLICATE_METHODS),
        "broker:confirm_poll_fails",
    )

    def armed_faults(self) -> set[str]:
        """The seams armed now (names from FAULT_KINDS): each would change the next answer of
        its method. A held request still pending counts as its method's hold."""
        # Plain loops, no generators: the model asks before every step, mostly of a broker
        # with nothing armed.
        with self._lock:
            armed = set()
            for method in self._holds:
                armed.add(f"broker:hold:{method}")
            for held in self._held:
                armed.add(f"broker:hold:{held.pending.kind}")
            for method, faults in self._faults.items():
                for fault in faults:
                    # A read has nothing to execute: its lost answer is a plain failure.
                    lost = fault.after_execute and method in ORDER_METHODS
                    armed.add(f"broker:{'answer_lost' if lost else 'fail_next'}:{method}")
            for method, fractions in self._fractions.items():
                if fractions:
                    armed.add(f"broker:partial_fill:{method}")
            for method, duplicates in self._duplicates.items():
                if duplicates:
                    armed.add(f"broker:duplicate_deal_id:{method}")
            if self._stale:
                armed.add("broker:stale_positions")
            if self._confirm_poll_faults:
                armed.add("broker:confirm_poll_fails")
            return armed

    def heal(self) -> None:
        """Disarm every seam and release every pending request, in arrival order."""
        with self._lock:
            for queue in (*self._faults.values(), *self._fractions.values()):
                queue.clear()
            self._confirm_poll_faults.clear()
            for queue in self._duplicates.values():
                queue.clear()
            self._holds.clear()
            self._stale.clear()
        self.release_all()

    def _take_hold(self, kind: str) -> bool:
        if kind not in self._holds:
            return False
        remaining = self._holds[kind]
        if remaining is not None:
            if remaining <= 1:
                del self._holds[kind]
            else:
                self._holds[kind] = remaining - 1
        return True

    def _take_fraction(self, method: str) -> float:
        queue = self._fractions[method]
        return queue.popleft() if queue else 1.0

    def _duplicate(self, kind: str, confirm: DealConfirm) -> DealConfirm:
        queue = self._duplicates[kind]
        if not queue or confirm.status != ACCEPTED:
            return confirm
        wanted = queue[0]
        if wanted is None:
            others = [d for d in self._deal_ids if d != confirm.deal_id]
            if not others:
                return confirm
            wanted = others[-1]
        queue.popleft()
        return attrs.evolve(confirm, deal_id=wanted)


def _as_reported_after_order(error: BrokerError) -> BrokerError:
    """What the port reports when an order executed and its confirm poll failed with
    `error`: the order was sent, so only "outcome unknown" or "unreadable" is true."""
    if isinstance(error, (BrokerTimeout, BrokerProtocolError)):
        return error
    return BrokerTimeout(f"sim: the order executed; its confirm poll failed: {error}")


def _opposite(direction: str) -> str:
    return "SELL" if direction == BUY else BUY


def _fill(size: float, fraction: float) -> float:
    if fraction >= 1.0:
        return float(size)
    return round(size * fraction, 12)


def _count(count: int) -> int:
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive int, not {count!r}")
    return count


def _check_method(method: str) -> None:
    if method not in PORT_METHODS:
        raise ValueError(f"unknown port method {method!r}; one of {PORT_METHODS}")


def _check_reference(ref: object) -> None:
    if not isinstance(ref, str) or not ref:
        raise BrokerRejected("validation.null-not-allowed.request.dealReference")
    if not DEAL_REFERENCE_PATTERN.fullmatch(ref):
        raise BrokerRejected("validation.pattern.invalid.request.dealReference")


def _deliver(future: asyncio.Future[_Outcome], outcome: _Outcome) -> None:
    if not future.done():
        future.set_result(outcome)


__all__ = [
    "ACCOUNT",
    "ACTIVITY",
    "CLOSE_POSITION",
    "CLOSED",
    "CONFIRM",
    "DEFAULT_EPICS",
    "DEFAULT_MARKETS",
    "OPENED",
    "OPEN_POSITION",
    "ORDER_METHODS",
    "PARTIALLY_CLOSED",
    "PORT_METHODS",
    "POSITIONS",
    "BrokerEvent",
    "BrokerRequest",
    "ConfirmRecord",
    "Market",
    "PendingRequest",
    "SimBroker",
]
