"""The broker harness: one SimBroker seen directly and through IGRestBroker → HTTP gives the
same answers, seams included, so the engine's contract suite can run against both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from solat_chaos.broker.harness import (
    IG_REST_VIEW,
    SIM_VIEW,
    VIEW_NAMES,
    broker_view,
    broker_views,
    open_broker_view,
)
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.broker.sim import CLOSE_POSITION, CONFIRM, OPEN_POSITION, POSITIONS, SimBroker
from solat_chaos.engine.broker import (
    Broker,
    BrokerError,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    CloseOrder,
    OpenOrder,
)

EURUSD = "CS.D.EURUSD.TODAY.IP"
FTSE = "IX.D.FTSE.DAILY.IP"

Scenario = Callable[[SimBroker, Broker], Awaitable[list[Any]]]


async def attempt(call: Awaitable[Any]) -> Any:
    """The answer of a port call, or the port error it raised (type, retry hint, reason)."""
    try:
        return await call
    except BrokerError as error:
        hint = getattr(error, "retry_after", None)
        return (type(error).__name__, hint, getattr(error, "reason", None))


async def plain_trading(sim: SimBroker, broker: Broker) -> list[Any]:
    log: list[Any] = []
    opened = await broker.open_position(OpenOrder("R1", EURUSD, "BUY", 3.0))
    log.append(opened)
    log.append(await broker.open_position(OpenOrder("R1", EURUSD, "BUY", 3.0)))
    log.append(await broker.open_position(OpenOrder("R2", "XX.NOPE.IP", "BUY", 1.0)))
    log.append(await broker.open_position(OpenOrder("R3", FTSE, "SELL", 0.0)))
    log.append(await attempt(broker.open_position(OpenOrder("R4", EURUSD, "LONG", 1.0))))
    log.append(await broker.confirm("R1"))
    log.append(await broker.confirm("NEVER"))
    sim.set_price(EURUSD, 1.1020)
    log.append(await broker.positions())
    log.append(await broker.account())
    log.append(await broker.close_position(CloseOrder("C1", opened.deal_id, "SELL", 1.0)))
    log.append(await broker.close_position(CloseOrder("C2", opened.deal_id, "SELL", 5.0)))
    log.append(await broker.close_position(CloseOrder("C3", opened.deal_id, "SELL", 2.0)))
    log.append(await broker.positions())
    log.append(await broker.account())
    return log


async def with_seams(sim: SimBroker, broker: Broker) -> list[Any]:
    log: list[Any] = []
    sim.fill_fraction(0.5)
    opened = await broker.open_position(OpenOrder("R1", EURUSD, "BUY", 3.0))
    log.append(opened)
    sim.fail_next(OPEN_POSITION, BrokerTimeout("lost"), after_execute=True)
    log.append(await attempt(broker.open_position(OpenOrder("R2", EURUSD, "BUY", 1.0))))
    log.append(await broker.confirm("R2"))
    sim.fail_next(OPEN_POSITION, BrokerUnavailable("down"))
    log.append(await attempt(broker.open_position(OpenOrder("R3", EURUSD, "BUY", 1.0))))
    log.append(await broker.confirm("R3"))
    sim.fail_next(OPEN_POSITION, BrokerRateLimited("slow", retry_after=3.5))
    log.append(await attempt(broker.open_position(OpenOrder("R3", EURUSD, "BUY", 1.0))))
    sim.fail_next(CLOSE_POSITION, BrokerRejected("MARKET_CLOSED"))
    log.append(await attempt(broker.close_position(CloseOrder("C1", opened.deal_id, "SELL", 1.0))))
    sim.fail_next(POSITIONS, BrokerTimeout("slow read"))
    log.append(await attempt(broker.positions()))
    sim.fail_next(CONFIRM, BrokerUnavailable("down"))
    log.append(await attempt(broker.confirm("R1")))
    sim.duplicate_deal_id(OPEN_POSITION)
    log.append(await broker.open_position(OpenOrder("R4", FTSE, "SELL", 1.0)))
    sim.stale_positions()
    sim.fill_fraction(0.5, method=CLOSE_POSITION)
    log.append(await broker.close_position(CloseOrder("C2", opened.deal_id, "SELL", 1.5)))
    log.append(await broker.positions())  # stale
    log.append(await broker.positions())  # fresh
    log.append(sim.snapshot_positions())
    return log


async def held_orders(sim: SimBroker, broker: Broker) -> list[Any]:
    await broker.account()  # log in first, if there is a session to make
    sim.hold(OPEN_POSITION)
    first = asyncio.create_task(attempt(broker.open_position(OpenOrder("A", EURUSD, "BUY", 1.0))))
    second = asyncio.create_task(attempt(broker.open_position(OpenOrder("B", EURUSD, "BUY", 1.0))))
    for _ in range(100):
        if len(sim.pending) == 2:
            break
        await asyncio.sleep(0)
    arrived = [p.deal_reference for p in sim.pending]
    sim.time_out(1, executed=True)
    sim.release(0)
    return [arrived, await first, await second, sim.snapshot_positions()]


async def confirm_polls_fail(sim: SimBroker, broker: Broker) -> list[Any]:
    """The order executes and the confirm poll after it fails: over HTTP the POST is
    answered and the GET /confirms fails; every failure reads "outcome unknown", except an
    unreadable answer, which stays one. A held order keeps the fault bound on arrival."""
    log: list[Any] = []
    errors = [
        BrokerTimeout("504"),
        BrokerUnavailable("refused"),
        BrokerRateLimited("slow", retry_after=1.0),
        BrokerRejected("error.service.unavailable"),
        BrokerProtocolError("garbage", field="dealStatus"),
    ]
    for i, error in enumerate(errors):
        sim.fail_next(CONFIRM, error, after_order=True)
        log.append(await attempt(broker.open_position(OpenOrder(f"P{i}", EURUSD, "BUY", 1.0))))
        log.append(await broker.confirm(f"P{i}"))
    sim.fail_next(CONFIRM, BrokerTimeout("504"), after_order=True)
    opened = log[1]
    log.append(await attempt(broker.close_position(CloseOrder("C1", opened.deal_id, "SELL", 1.0))))
    log.append(await broker.confirm("C1"))
    sim.fail_next(CONFIRM, BrokerUnavailable("refused"), after_order=True)
    sim.hold(OPEN_POSITION, 1)
    held = asyncio.create_task(attempt(broker.open_position(OpenOrder("H", EURUSD, "BUY", 1.0))))
    for _ in range(100):
        if sim.pending:
            break
        await asyncio.sleep(0)
    sim.release(0)
    log.append(await held)
    log.append(sim.snapshot_positions())
    return log


SCENARIOS = [plain_trading, with_seams, held_orders, confirm_polls_fail]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_every_view_answers_the_same(scenario: Scenario) -> None:
    transcripts = {}
    requests = {}
    for name in VIEW_NAMES:
        sim = SimBroker()
        async with open_broker_view(sim, name) as broker:
            transcripts[name] = await scenario(sim, broker)
        requests[name] = [
            (r.kind, r.deal_reference, r.deal_id, r.fault)
            for r in sim.requests
            if r.kind != "account"
        ]
    assert transcripts[SIM_VIEW] == transcripts[IG_REST_VIEW]
    assert requests[SIM_VIEW] == requests[IG_REST_VIEW]


async def test_held_orders_scenario_really_interleaves() -> None:
    sim = SimBroker()
    async with open_broker_view(sim, IG_REST_VIEW) as broker:
        arrived, first, second, positions = await held_orders(sim, broker)
    assert arrived == ["A", "B"]
    assert first.deal_id == "DIAAAA000000002"  # A was released after B executed
    assert second == ("BrokerTimeout", None, None)
    assert [p.deal_reference for p in positions] == ["B", "A"]


async def test_broker_views_gives_both_views_of_one_sim() -> None:
    sim = SimBroker()
    async with broker_views(sim) as views:
        assert set(views) == set(VIEW_NAMES)
        assert views[SIM_VIEW] is sim
        assert isinstance(views[IG_REST_VIEW], IGRestBroker)
        await views[IG_REST_VIEW].open_position(OpenOrder("R1", EURUSD, "BUY", 1.0))
        assert [p.deal_reference for p in await views[SIM_VIEW].positions()] == ["R1"]


def test_unknown_view_name_is_refused() -> None:
    with pytest.raises(ValueError):
        broker_view(SimBroker(), "fix")


@pytest.fixture(params=VIEW_NAMES)
async def port(request: pytest.FixtureRequest) -> AsyncIterator[tuple[SimBroker, Broker]]:
    sim = SimBroker()
    async with open_broker_view(sim, request.param) as view:
        yield sim, view


async def test_parametrised_fixture_pattern_runs_against_each_view(
    port: tuple[SimBroker, Broker],
) -> None:
    sim, broker = port
    confirm = await broker.open_position(OpenOrder("R1", EURUSD, "BUY", 1.0))
    assert sim.lookup_confirm("R1") == confirm


def test_a_confirm_poll_fault_is_bound_to_the_confirm_after_an_order_only() -> None:
    sim = SimBroker()
    with pytest.raises(ValueError, match="after_order"):
        sim.fail_next(OPEN_POSITION, BrokerTimeout("x"), after_order=True)
    with pytest.raises(ValueError, match="after_execute"):
        sim.fail_next(CONFIRM, BrokerTimeout("x"), after_order=True, after_execute=True)
    sim.fail_next(CONFIRM, BrokerTimeout("x"), after_order=True)
    assert sim.armed_faults() == {"broker:confirm_poll_fails"}
    sim.heal()
    assert sim.armed_faults() == set()
