"""The engine's one way to its broker. Orders go out exactly once — an unknown outcome is
resolved by deal reference, never by sending again. Reads retry with bounded backoff and
honour Retry-After. The link remembers when the broker last answered, for health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from solat_chaos.engine.broker import (
    Account,
    Broker,
    BrokerActivity,
    BrokerError,
    BrokerPosition,
    BrokerRateLimited,
    BrokerRejected,
    CloseOrder,
    DealConfirm,
    OpenOrder,
)
from solat_chaos.engine.clock import Clock

T = TypeVar("T")


class BrokerLink:
    def __init__(
        self,
        broker: Broker,
        clock: Clock,
        *,
        read_attempts: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self.broker = broker
        self._clock = clock
        self._read_attempts = read_attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        self.last_ok: float | None = None

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        return self._answered(await self.broker.open_position(order))

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        return self._answered(await self.broker.close_position(order))

    async def confirm(self, deal_reference: str) -> DealConfirm | None:
        return await self._read(lambda: self.broker.confirm(deal_reference))

    async def positions(self) -> list[BrokerPosition]:
        return await self._read(self.broker.positions)

    async def account(self) -> Account:
        return await self._read(self.broker.account)

    async def activity(self, since: float) -> list[BrokerActivity]:
        return await self._read(lambda: self.broker.activity(since))

    def _answered(self, answer: T) -> T:
        self.last_ok = self._clock.monotonic()
        return answer

    async def _read(self, call: Callable[[], Awaitable[T]]) -> T:
        delay = self._backoff
        for attempt in range(1, self._read_attempts + 1):
            try:
                return self._answered(await call())
            except BrokerRejected:
                raise  # asking again gets the same refusal
            except BrokerError as e:
                if attempt == self._read_attempts:
                    raise
                wait = max(e.retry_after, delay) if isinstance(e, BrokerRateLimited) else delay
                await self._clock.sleep(wait)
                delay = min(delay * 2, self._max_backoff)
        raise AssertionError("unreachable: the last attempt returns or raises")
