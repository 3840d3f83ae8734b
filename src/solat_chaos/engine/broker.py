"""The `Broker` port: the records that cross it and the errors an adapter may raise.

The errors say what the engine may conclude about an order, not which transport failed:
`BrokerTimeout` means the request may have executed, `BrokerUnavailable` means it was
certainly not sent, and so on. Adapters map their transport's failures onto these.
"""

from __future__ import annotations

import math
from typing import Protocol

import attrs

BUY = "BUY"
SELL = "SELL"
DIRECTIONS = (BUY, SELL)

ACCEPTED = "ACCEPTED"
REJECTED = "REJECTED"
DEAL_STATUSES = (ACCEPTED, REJECTED)


def opposite(direction: str) -> str:
    return SELL if direction == BUY else BUY


@attrs.frozen
class OpenOrder:
    """A market order that opens a position, sent under a client-chosen deal reference."""

    deal_reference: str
    epic: str
    direction: str
    size: float


@attrs.frozen
class CloseOrder:
    """Close `size` of position `deal_id`; `direction` is the opposite of the position's."""

    deal_reference: str
    deal_id: str
    direction: str
    size: float


@attrs.frozen
class DealConfirm:
    """The broker's verdict on one deal reference. `size` is what was actually filled
    (opened or closed), which may be less than was asked for."""

    deal_reference: str
    status: str
    deal_id: str | None
    epic: str
    direction: str
    size: float
    level: float | None = None
    reason: str = ""


@attrs.frozen
class BrokerPosition:
    deal_id: str
    deal_reference: str
    epic: str
    direction: str
    size: float
    level: float


# IG's activity action types (GET /history/activity, detailed): what a deal did to a position.
POSITION_OPENED = "POSITION_OPENED"
POSITION_CLOSED = "POSITION_CLOSED"
POSITION_PARTIALLY_CLOSED = "POSITION_PARTIALLY_CLOSED"
ACTIVITY_ACTIONS = (POSITION_OPENED, POSITION_CLOSED, POSITION_PARTIALLY_CLOSED)


@attrs.frozen
class BrokerActivity:
    """One deal in the account's activity history: `deal_reference` made it, `action` is
    what it did to position `deal_id`, `size` the amount opened or closed, `at` when
    (epoch seconds). Positions opened outside the API may carry no deal reference ("")."""

    deal_id: str
    deal_reference: str
    action: str
    epic: str
    direction: str
    size: float
    at: float
    level: float | None = None


@attrs.frozen
class Account:
    balance: float
    available: float
    profit_loss: float = 0.0
    currency: str = "GBP"


class BrokerError(Exception):
    """Base of every failure an adapter reports."""


class BrokerTimeout(BrokerError):
    """The request may have reached the broker and executed: the outcome is unknown."""


class BrokerUnavailable(BrokerError):
    """The request was certainly not sent (connection refused, DNS failure, ...)."""


class BrokerRateLimited(BrokerError):
    """The broker refused the request for now; it did not execute."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerRejected(BrokerError):
    """The broker refused the request with a reason; it did not execute."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BrokerProtocolError(BrokerError):
    """The broker answered something the adapter cannot read. The request may have executed."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class Broker(Protocol):
    async def open_position(self, order: OpenOrder) -> DealConfirm: ...

    async def close_position(self, order: CloseOrder) -> DealConfirm: ...

    async def confirm(self, deal_reference: str) -> DealConfirm | None:
        """The confirm for a deal reference, or None if the broker never saw it."""

    async def positions(self) -> list[BrokerPosition]: ...

    async def account(self) -> Account: ...

    async def activity(self, since: float) -> list[BrokerActivity]:
        """Every deal since `since` (epoch seconds), oldest first: the backfill of what a
        trade stream may have missed."""


def valid_size(value: object) -> bool:
    """A size is a finite real number greater than zero (bools are not numbers here)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
