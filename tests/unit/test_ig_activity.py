"""The activity history (IG `GET /history/activity` Version 3, detailed): the backfill call of
the Broker port, in the SimBroker, in IG's REST dialect and in IGRestBroker, with the same
strict parsing as every other answer."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solat_chaos.broker.ig_http import SimASGITransport, create_app
from solat_chaos.broker.ig_rest import format_ig_date, parse_activity
from solat_chaos.broker.sim import ACTIVITY, SimBroker
from solat_chaos.engine.broker import (
    POSITION_CLOSED,
    POSITION_OPENED,
    POSITION_PARTIALLY_CLOSED,
    BrokerProtocolError,
    BrokerTimeout,
    OpenOrder,
)
from solat_chaos.engine.clock import SimClock

from .test_ig_rest_broker import assert_no_partial_answer, make_broker

EURUSD = "CS.D.EURUSD.TODAY.IP"
FTSE = "IX.D.FTSE.DAILY.IP"


def trade(sim: SimBroker, clock: SimClock) -> tuple[str, str]:
    """An API open, a dashboard open, a dashboard partial close then a full close."""
    mine = sim.execute_open(OpenOrder("REF1", EURUSD, "BUY", 2.0))
    clock.advance(10)
    theirs = sim.open_externally(FTSE, "SELL", 1.0)
    clock.advance(10)
    sim.close_externally(mine.deal_id, 0.5)
    clock.advance(10)
    sim.close_externally(mine.deal_id)
    return mine.deal_id, theirs.deal_id


async def test_sim_activity_is_every_change_since(sim_broker, sim_clock) -> None:
    sim, clock = sim_broker, sim_clock
    start = clock.now()
    mine, theirs = trade(sim, clock)
    every = await sim.activity(start)
    assert [(a.deal_id, a.action, a.size) for a in every] == [
        (mine, POSITION_OPENED, 2.0),
        (theirs, POSITION_OPENED, 1.0),
        (mine, POSITION_PARTIALLY_CLOSED, 0.5),
        (mine, POSITION_CLOSED, 1.5),
    ]
    assert [a.deal_reference for a in every][0] == "REF1"
    assert [a.action for a in await sim.activity(start + 15)] == [
        POSITION_PARTIALLY_CLOSED,
        POSITION_CLOSED,
    ]
    sim.fail_next(ACTIVITY, BrokerTimeout("sim: timed out"))
    with pytest.raises(BrokerTimeout):
        await sim.activity(start)


async def test_activity_over_http_is_the_sims(sim_broker, sim_clock) -> None:
    sim, clock = sim_broker, sim_clock
    start = clock.now()
    trade(sim, clock)
    async with make_broker(SimASGITransport(create_app(sim))) as rest:
        assert await rest.activity(start) == await sim.activity(start)
        assert await rest.activity(start + 25) == await sim.activity(start + 25)


def activity_item(i: int) -> dict[str, Any]:
    return {
        "date": format_ig_date(1_767_225_600.0 + i),
        "epic": EURUSD,
        "period": "DFB",
        "dealId": f"DIAAAA00000000{i}",
        "channel": "PUBLIC_WEB_API",
        "type": "POSITION",
        "status": "ACCEPTED",
        "description": "Position opened",
        "details": {
            "dealReference": f"REF{i}",
            "actions": [{"actionType": POSITION_OPENED, "affectedDealId": f"DIAAAA00000000{i}"}],
            "size": 1.0 + i,
            "direction": "BUY",
            "level": 1.1,
        },
    }


def test_activity_that_is_no_fill_is_left_out() -> None:
    working = activity_item(2) | {"type": "WORKING_ORDER"}
    rejected = activity_item(3) | {"status": "REJECTED"}
    amended = activity_item(4)
    amended["details"]["actions"] = [{"actionType": "STOP_LIMIT_AMENDED", "affectedDealId": "X"}]
    body = {"activities": [amended, rejected, working, activity_item(1)], "metadata": {}}
    assert [a.deal_reference for a in parse_activity(body)] == ["REF1"]


@st.composite
def malformed_activity(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An activity body with 1-3 entries, exactly one defect, and the field it is in."""
    count = draw(st.integers(1, 3))
    items = [activity_item(i + 1) for i in range(count)]
    i = draw(st.integers(0, count - 1))
    at = f"activities[{i}]"
    kind = draw(
        st.sampled_from(["list", "entry", "missing", "wrong_type", "date", "size", "direction"])
        | st.sampled_from(["level", "actions", "action", "paging"])
    )
    body: dict[str, Any] = {"activities": items, "metadata": {"paging": {"next": None}}}
    if kind == "list":
        body["activities"] = draw(st.sampled_from([None, {}, "x", 3]))
        return body, "activities"
    if kind == "paging":
        body["metadata"]["paging"]["next"] = "/history/activity?page=2"
        return body, "metadata.paging.next"
    if kind == "entry":
        items[i] = draw(st.sampled_from([None, "x", [1], 3]))
        return body, at
    if kind == "missing":
        key = draw(st.sampled_from(["date", "dealId", "epic", "details"]))
        del items[i][key]
        return body, f"{at}.{key}"
    if kind == "wrong_type":
        key = draw(st.sampled_from(["dealId", "epic", "type", "status"]))
        items[i][key] = draw(st.sampled_from([12, 1.5, True, [], {}]))
        return body, f"{at}.{key}"
    details = items[i]["details"]
    if kind == "date":
        items[i]["date"] = draw(st.sampled_from(["yesterday", "2026-13-01T00:00:00", "1.5"]))
        return body, f"{at}.date"
    if kind == "size":
        details["size"] = draw(st.sampled_from([-1.0, 0.0, math.nan, math.inf, "2.0", True]))
        return body, f"{at}.details.size"
    if kind == "direction":
        details["direction"] = draw(st.sampled_from(["LONG", "", None, 0]))
        return body, f"{at}.details.direction"
    if kind == "level":
        details["level"] = draw(st.sampled_from([math.nan, -math.inf, "1.1", False]))
        return body, f"{at}.details.level"
    if kind == "actions":
        details["actions"] = draw(st.sampled_from([None, "x", {}]))
        return body, f"{at}.details.actions"
    key = draw(st.sampled_from(["actionType", "affectedDealId"]))
    details["actions"][0][key] = draw(st.sampled_from([None, 3, [], ""]))
    return body, f"{at}.details.actions[0].{key}"


@given(malformed_activity())
def test_malformed_activity_is_a_protocol_error_naming_the_field(
    case: tuple[dict[str, Any], str],
) -> None:
    body, field = case
    with pytest.raises(BrokerProtocolError) as caught:
        parse_activity(body)
    assert caught.value.field == field


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_activity())
def test_malformed_activity_over_http_returns_no_partial_history(
    case: tuple[dict[str, Any], str],
) -> None:
    body, field = case
    assert_no_partial_answer(body, field, lambda rest: rest.activity(0.0))
