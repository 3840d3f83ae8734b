"""One SimBroker seen as the `Broker` port in two ways, for contract suites.

- "sim": the SimBroker itself;
- "ig_rest": IGRestBroker → a respx router (the seam where network faults are added) → IG's
  REST dialect served in-process by an app around the same SimBroker.

Both consume the same seams (the HTTP layer calls the sim's port methods), so a contract test
that arms a seam, calls the port and checks the sim's ground truth gets the same answer from
both. Known differences: an injected BrokerProtocolError keeps its type but not its `field` over
HTTP, and error messages differ.

A pytest fixture in a test suite (no pytest here):

    @pytest.fixture(params=VIEW_NAMES)
    async def broker(request, sim):
        async with open_broker_view(sim, request.param) as view:
            yield view
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from solat_chaos.broker.ig_http import (
    DEFAULT_API_KEY,
    DEFAULT_IDENTIFIER,
    DEFAULT_PASSWORD,
    SIM_BASE_URL,
    sim_router,
)
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.broker.sim import SimBroker
from solat_chaos.engine.broker import Broker

SIM_VIEW = "sim"
IG_REST_VIEW = "ig_rest"
VIEW_NAMES = (SIM_VIEW, IG_REST_VIEW)


def ig_rest_view(sim: SimBroker, *, app: Any = None, **broker_kwargs: Any) -> IGRestBroker:
    """IGRestBroker talking to `sim` through respx and the in-process HTTP app (`app`, an app
    of `ig_http.create_app(sim)` to share its sessions; default a fresh one). Close it with
    `aclose()`."""
    options: dict[str, Any] = {"confirm_retry_delay": 0.0} | broker_kwargs
    return IGRestBroker(
        SIM_BASE_URL,
        api_key=DEFAULT_API_KEY,
        identifier=DEFAULT_IDENTIFIER,
        password=DEFAULT_PASSWORD,
        transport=httpx.MockTransport(sim_router(sim, app=app).async_handler),
        **options,
    )


def broker_view(sim: SimBroker, name: str) -> Broker:
    """The view `name` (one of VIEW_NAMES) of `sim`."""
    if name == SIM_VIEW:
        return sim
    if name == IG_REST_VIEW:
        return ig_rest_view(sim)
    raise ValueError(f"unknown broker view {name!r}; one of {VIEW_NAMES}")


@asynccontextmanager
async def open_broker_view(sim: SimBroker, name: str) -> AsyncIterator[Broker]:
    view = broker_view(sim, name)
    try:
        yield view
    finally:
        if isinstance(view, IGRestBroker):
            await view.aclose()


@asynccontextmanager
async def broker_views(sim: SimBroker) -> AsyncIterator[dict[str, Broker]]:
    """Every view of `sim`, by name."""
    views = {name: broker_view(sim, name) for name in VIEW_NAMES}
    try:
        yield views
    finally:
        for view in views.values():
            if isinstance(view, IGRestBroker):
                await view.aclose()


__all__ = [
    "IG_REST_VIEW",
    "SIM_VIEW",
    "VIEW_NAMES",
    "broker_view",
    "broker_views",
    "ig_rest_view",
    "open_broker_view",
]
