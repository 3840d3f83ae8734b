"""The account balance, cached with an age. Risk decisions use it only while it is younger
than its TTL and newer than the last fill."""

from __future__ import annotations

import math

import attrs

from solat_chaos.engine.broker import Account
from solat_chaos.engine.broker_link import BrokerLink
from solat_chaos.engine.clock import Clock


@attrs.frozen
class BalanceView:
    account: Account
    fetched_at: float  # monotonic
    age: float


class BalanceCache:
    def __init__(self, link: BrokerLink, clock: Clock, ttl: float) -> None:
        self._link = link
        self._clock = clock
        self.ttl = ttl
        self._account: Account | None = None
        self._fetched_at = -math.inf
        # Fills are counted; a balance fetched before the latest fill is stale whatever its age.
        self._fills = 0
        self._fills_at_fetch = -1

    @property
    def age(self) -> float:
        return self._clock.monotonic() - self._fetched_at

    def is_fresh(self) -> bool:
        return (
            self._account is not None
            and self.age < self.ttl
            and self._fills_at_fetch == self._fills
        )

    @property
    def fetched(self) -> bool:
        """Whether a balance was ever fetched (`view()` is not None), without building a view."""
        return self._account is not None

    def view(self) -> BalanceView | None:
        if self._account is None:
            return None
        return BalanceView(self._account, self._fetched_at, self.age)

    async def fresh(self) -> BalanceView:
        """The balance, refreshed first if stale. Raises BrokerError if the refresh fails."""
        if not self.is_fresh():
            await self.refresh()
        view = self.view()
        assert view is not None
        return view

    async def refresh(self) -> None:
        fills_before = self._fills
        account = await self._link.account()
        self._account = account
        self._fetched_at = self._clock.monotonic()
        self._fills_at_fetch = fills_before

    def fill_happened(self) -> None:
        self._fills += 1
