"""Network faults at the HTTP level: respx routes in front of the SimBroker's IG dialect.

`NetworkChaos` owns a respx router whose last route forwards to the SimBroker's HTTP app
(`sim_router`); each fault is a route put in front of it, for one method and path of IG's
API, that answers instead of the broker (or after it, for a lost response) and falls
through to the broker once its count is used up. No fault waits for real: a timeout is an
`httpx.ReadTimeout` raised at once, the delay it stands for is added to a SimClock.

What respx cannot show — resets, half-open connections, trickled or cut bodies — is the
job of the TCP fault proxy (`solat_chaos.chaos.tcp_proxy`).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import attrs
import httpx

from solat_chaos.broker.ig_http import (
    ACCOUNT_ALLOWANCE,
    DEFAULT_API_KEY,
    DEFAULT_IDENTIFIER,
    DEFAULT_PASSWORD,
    SIM_BASE_URL,
    SIM_ROUTE,
    keep_sim_route_last,
    sim_router,
)
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.broker.sim import SimBroker
from solat_chaos.chaos.injected import InjectedFault
from solat_chaos.engine.clock import SimClock

# IG's endpoints, relative to the base URL.
POSITIONS_PATH = "/positions"
ORDERS_PATH = "/positions/otc"
ACCOUNTS_PATH = "/accounts"

Forward = Callable[[httpx.Request], Awaitable[httpx.Response]]
Effect = Callable[[httpx.Request], Awaitable[httpx.Response | None]]


def sim_ig_rest_broker(
    base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 5.0
) -> IGRestBroker:
    """An IGRestBroker that logs in with the SimBroker app's credentials at `base_url`.
    Confirms are not waited for (the sim confirms at once). Close it with `aclose()`."""
    return IGRestBroker(
        base_url,
        api_key=DEFAULT_API_KEY,
        identifier=DEFAULT_IDENTIFIER,
        password=DEFAULT_PASSWORD,
        transport=transport,
        timeout=timeout,
        confirm_retry_delay=0.0,
    )


@attrs.frozen
class _Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    content: bytes

    def replay(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            self.status, headers=list(self.headers), content=self.content, request=request
        )


class NetworkChaos:
    """The seed's network failures between an IGRestBroker and the SimBroker.

    Use `transport` (or `broker()`) as the IGRestBroker's way out. `clock`, if given, is
    advanced by the delay a timeout stands for.
    """

    def __init__(
        self, sim: SimBroker, *, base_url: str = SIM_BASE_URL, clock: SimClock | None = None
    ) -> None:
        self.sim = sim
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.router = sim_router(sim, self.base_url)
        sim_route = self.router[SIM_ROUTE]
        self._forward: Forward = sim_route.side_effect  # type: ignore[assignment]
        sim_route.side_effect = self._remembered
        self._last_answers: dict[tuple[str, str], _Answer] = {}
        self._names = (f"chaos-{n}" for n in itertools.count(1))
        self._faults: list[InjectedFault] = []

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.router.async_handler)

    def broker(self, timeout: float = 5.0) -> IGRestBroker:
        """An IGRestBroker whose every request goes through these faults to the sim."""
        return sim_ig_rest_broker(self.base_url, transport=self.transport, timeout=timeout)

    # -- the seed's failures -----------------------------------------------------------------

    def connection_refused(
        self, method: str = "GET", path: str = POSITIONS_PATH, *, count: int | None = None
    ) -> InjectedFault:
        """Requests to `method path` cannot connect: certainly not sent."""

        async def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("chaos: connection refused", request=request)

        return self._route(method, path, refuse, count, "connection refused")

    def timeout_after_delay(
        self,
        method: str = "GET",
        path: str = POSITIONS_PATH,
        *,
        delay: float = 30.0,
        reached_broker: bool = False,
        count: int | None = 1,
    ) -> InjectedFault:
        """Requests to `method path` end in `httpx.ReadTimeout` after `delay` seconds of sim
        time (none of real time). With `reached_broker` the broker got the request and acted
        on it first: the answer is what was lost."""

        async def time_out(request: httpx.Request) -> httpx.Response:
            if reached_broker:
                await self._forward(request)
            if self.clock is not None:
                self.clock.advance(delay)
            raise httpx.ReadTimeout(f"chaos: no answer within {delay}s", request=request)

        return self._route(method, path, time_out, count, f"read timeout after {delay}s")

    def rate_limit_429(
        self,
        retry_after: float = 2.0,
        method: str = "GET",
        path: str = POSITIONS_PATH,
        *,
        count: int | None = 1,
    ) -> InjectedFault:
        """Requests to `method path` get HTTP 429 with `Retry-After: retry_after`."""

        async def limit(request: httpx.Request) -> httpx.Response:
            return httpx.Response(
                429,
                headers={"Retry-After": f"{retry_after:g}"},
                json={"errorCode": ACCOUNT_ALLOWANCE},
                request=request,
            )

        return self._route(method, path, limit, count, f"429 Retry-After {retry_after:g}")

    def intermittent_500(
        self,
        rng: random.Random,
        probability: float = 0.3,
        method: str = "GET",
        path: str = POSITIONS_PATH,
    ) -> InjectedFault:
        """Each request to `method path` gets HTTP 500 with `probability`, drawn from `rng`
        as it arrives; the others reach the broker. The 500 comes from in front of the
        broker: the broker never saw those requests."""

        async def flaky(request: httpx.Request) -> httpx.Response | None:
            if rng.random() >= probability:
                return None
            return httpx.Response(500, json={"errorCode": "system.error"}, request=request)

        return self._route(method, path, flaky, None, f"intermittent 500 (p={probability})")

    def stale_data_response(
        self, method: str = "GET", path: str = POSITIONS_PATH, *, count: int | None = 1
    ) -> InjectedFault:
        """The broker's last answer to `method path` is served again to the next `count`
        requests, whatever changed since: a cache in the way that stopped revalidating.
        LookupError if the broker has not answered that request yet."""
        key = (method.upper(), self._url_path(path))
        stale = self._last_answers.get(key)
        if stale is None:
            raise LookupError(f"no answer to {method} {path} seen yet: nothing to serve stale")

        async def serve_stale(request: httpx.Request) -> httpx.Response:
            return stale.replay(request)

        return self._route(method, path, serve_stale, count, "stale answer")

    def heal(self) -> None:
        """Remove every fault route: the network is clean again."""
        for fault in reversed(self._faults):
            fault.lift()
        self._faults.clear()

    # -- internals ---------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, effect: Effect, count: int | None, what: str
    ) -> InjectedFault:
        name = next(self._names)
        remaining = [count]

        async def limited(request: httpx.Request) -> httpx.Response | None:
            if remaining[0] is not None:
                if remaining[0] <= 0:
                    return None  # used up: fall through to the broker
                remaining[0] -= 1
            return await effect(request)

        self.router.route(method=method.upper(), url=self.base_url + path, name=name).mock(
            side_effect=limited
        )
        keep_sim_route_last(self.router)
        fault = InjectedFault(
            f"{what} on {method.upper()} {path}", lambda: self.router.pop(name, None)
        )
        self._faults.append(fault)
        return fault

    async def _remembered(self, request: httpx.Request) -> httpx.Response:
        """Forward to the broker, keeping its last good answer per endpoint (for staleness)."""
        response = await self._forward(request)
        content = await response.aread()
        if 200 <= response.status_code < 300:
            self._last_answers[(request.method, request.url.path)] = _Answer(
                response.status_code, tuple(response.headers.multi_items()), content
            )
        return response

    def _url_path(self, path: str) -> str:
        return urlsplit(self.base_url + path).path
