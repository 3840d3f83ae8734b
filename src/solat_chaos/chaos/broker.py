"""Broker faults, named as the seed names them, on the SimBroker's seams.

Each method arms one seam of `SimBroker` (or, for the per-call random ones, a hook on the
engine's `HookedBroker` port that arms the seam for the call about to arrive) and returns an
`InjectedFault`: a plain call arms it, a `with` block also lifts it on exit. Randomness comes
only from the `random.Random` handed in, so a fault pattern replays from its seed.

The broker's ground truth stays in the sim: a test asserts on `sim.snapshot_positions()`,
`sim.requests` and `sim.confirms`, never on this object.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from solat_chaos.broker.sim import (
    CLOSE_POSITION,
    OPEN_POSITION,
    POSITIONS,
    SimBroker,
)
from solat_chaos.chaos.engine_env import HookedBroker
from solat_chaos.chaos.injected import InjectedFault
from solat_chaos.engine.broker import (
    BrokerError,
    BrokerRateLimited,
    BrokerTimeout,
    BrokerUnavailable,
)


class BrokerChaos:
    """The seed's broker failures, plus the one that matters most: the broker executes the
    order and the answer is lost (`executed_but_response_lost`).

    `port` is the HookedBroker the engine calls; only `intermittent_timeout` needs it, to
    decide call by call.
    """

    def __init__(self, sim: SimBroker, port: HookedBroker | None = None) -> None:
        self.sim = sim
        self.port = port
        self._lifts: list[InjectedFault] = []

    # -- the seed's failures -----------------------------------------------------------------

    def intermittent_timeout(
        self,
        rng: random.Random,
        *,
        method: str = POSITIONS,
        probability: float = 0.3,
        executed_probability: float = 0.5,
    ) -> InjectedFault:
        """Each call of `method` times out with `probability`, drawn from `rng` when the call
        arrives. An order that times out executed first with `executed_probability` (the
        broker acted, the answer was lost) — the engine cannot tell which."""
        if self.port is None:
            raise ValueError("intermittent_timeout needs the engine's HookedBroker port")
        if not 0 <= probability <= 1 or not 0 <= executed_probability <= 1:
            raise ValueError("probabilities must be within [0, 1]")

        def maybe_time_out(arg: object) -> None:
            if rng.random() < probability:
                executed = method in (OPEN_POSITION, CLOSE_POSITION) and (
                    rng.random() < executed_probability
                )
                self.sim.fail_next(
                    method,
                    BrokerTimeout(f"chaos: intermittent timeout of {method}"),
                    after_execute=executed,
                )

        remove = self.port.before(method, maybe_time_out)
        return self._armed(f"intermittent timeouts of {method} (p={probability})", remove)

    def partial_fill(
        self, fraction: float = 0.5, *, method: str = OPEN_POSITION, count: int = 1
    ) -> InjectedFault:
        """The next `count` executions of `method` (open or close) fill only `fraction` of
        the size asked; the confirm says so."""
        self.sim.fill_fraction(fraction, count=count, method=method)
        return self._armed(f"partial fills ({fraction}) of {method}", self.sim.heal)

    def duplicate_confirmation(
        self, *, method: str = OPEN_POSITION, deal_id: str | None = None, count: int = 1
    ) -> InjectedFault:
        """The next `count` accepted confirms answered by `method` name `deal_id` (default:
        the most recent other deal) instead of their own: the same deal id for different
        orders. Only the answer is wrong; the broker's book keeps the real ids."""
        self.sim.duplicate_deal_id(method, deal_id, count=count)
        return self._armed(f"duplicate deal id in {method} confirms", self.sim.heal)

    def stale_position_list(self, count: int = 1) -> InjectedFault:
        """The positions as they are now are served again by the next `count` positions
        calls, whatever happens meanwhile: arm it, then change the world."""
        self.sim.stale_positions(count)
        return self._armed(f"stale positions list x{count}", self.sim.heal)

    def rate_limit_429(
        self, *, method: str = POSITIONS, retry_after: float = 2.0, count: int = 1
    ) -> InjectedFault:
        """The next `count` calls of `method` are refused as over the allowance, asking the
        client to come back after `retry_after` seconds. Nothing executes."""
        error = BrokerRateLimited(f"chaos: 429 on {method}", retry_after)
        self.sim.fail_next(method, error, count=count)
        return self._armed(f"429 on {method} x{count}", self.sim.heal)

    # -- beyond the seed ---------------------------------------------------------------------

    def executed_but_response_lost(
        self, *, method: str = OPEN_POSITION, count: int = 1
    ) -> InjectedFault:
        """The broker executes the next `count` calls of `method` and the answer never
        arrives (a timeout): only a lookup by deal reference can tell it happened."""
        error = BrokerTimeout(f"chaos: {method} executed, response lost")
        self.sim.fail_next(method, error, after_execute=True, count=count)
        return self._armed(f"{method} executed, response lost x{count}", self.sim.heal)

    def timeout(self, *, method: str = POSITIONS, count: int = 1) -> InjectedFault:
        """The next `count` calls of `method` time out without executing."""
        return self._fail(method, BrokerTimeout(f"chaos: {method} timed out"), count)

    def unavailable(self, *, method: str = POSITIONS, count: int = 1) -> InjectedFault:
        """The next `count` calls of `method` are refused before they are sent."""
        return self._fail(method, BrokerUnavailable(f"chaos: {method} unreachable"), count)

    def heal(self) -> None:
        """Lift every fault armed here and every seam of the sim; held calls are answered."""
        for fault in reversed(self._lifts):
            fault.lift()
        self._lifts.clear()
        self.sim.heal()

    def _fail(self, method: str, error: BrokerError, count: int) -> InjectedFault:
        self.sim.fail_next(method, error, count=count)
        return self._armed(f"{type(error).__name__} on {method} x{count}", self.sim.heal)

    def _armed(self, description: str, lift: Callable[[], None]) -> InjectedFault:
        fault = InjectedFault(description, lift)
        self._lifts.append(fault)
        return fault
