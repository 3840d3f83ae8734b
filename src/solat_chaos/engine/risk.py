"""Risk limits for opening orders, checked against everything the engine has committed:
open positions, orders awaiting the broker, and orders whose outcome is in doubt."""

from __future__ import annotations

import attrs

from solat_chaos.engine.balance import BalanceView
from solat_chaos.engine.records import Refusal

# The limits an opening order can break, by the stable names its refusal records.
MAX_ORDER_SIZE = "max_order_size"
MAX_OPEN_POSITIONS = "max_open_positions"
MAX_EXPOSURE = "max_exposure"
MAX_ORDERS_PER_HOUR = "max_orders_per_hour"
INSUFFICIENT_FUNDS = "insufficient_funds"


@attrs.frozen
class RiskLimits:
    max_order_size: float = 10.0
    max_open_positions: int = 5
    max_exposure: float = 25.0  # sum of sizes over every committed position
    max_orders_per_hour: int = 100
    margin_per_unit: float = 100.0  # available balance an order needs per unit of size


@attrs.frozen
class Commitments:
    """What the engine is on the hook for. In-flight and in-doubt orders count as filled in
    full: they may be, and a limit must hold whatever the broker did."""

    positions: int
    exposure: float
    orders_last_hour: int


def check_opening(
    size: float, limits: RiskLimits, balance: BalanceView, committed: Commitments
) -> Refusal | None:
    """The first limit an opening order of `size` breaks, named, or None."""
    if size > limits.max_order_size:
        return Refusal(
            f"size {size} above the maximum order size {limits.max_order_size}", (MAX_ORDER_SIZE,)
        )
    if committed.positions + 1 > limits.max_open_positions:
        return Refusal(
            f"open positions limit: {committed.positions} committed, "
            f"maximum {limits.max_open_positions}",
            (MAX_OPEN_POSITIONS,),
        )
    if committed.exposure + size > limits.max_exposure:
        return Refusal(
            f"exposure limit: {committed.exposure} committed + {size} above {limits.max_exposure}",
            (MAX_EXPOSURE,),
        )
    if committed.orders_last_hour + 1 > limits.max_orders_per_hour:
        return Refusal(
            f"orders per hour limit {limits.max_orders_per_hour} reached", (MAX_ORDERS_PER_HOUR,)
        )
    needed = size * limits.margin_per_unit
    if balance.account.available < needed:
        return Refusal(
            f"insufficient funds: {needed} needed, {balance.account.available} available",
            (INSUFFICIENT_FUNDS,),
        )
    return None
