"""IGRestBroker: the Broker port over IG's REST API, against the SimBroker served in-process,
plus its strict failure mapping and answer parsing."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solat_chaos.broker.ig_http import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_IDENTIFIER,
    DEFAULT_PASSWORD,
    SIM_BASE_URL,
    LoopbackServer,
    SimASGITransport,
    create_app,
    keep_sim_route_last,
    sim_router,
)
from solat_chaos.broker.ig_rest import (
    IGRestBroker,
    map_transport_error,
    parse_account,
    parse_confirm,
    parse_positions,
)
from solat_chaos.broker.sim import OPEN_POSITION, POSITIONS, SimBroker
from solat_chaos.engine.broker import (
    ACCEPTED,
    REJECTED,
    Account,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    CloseOrder,
    OpenOrder,
)

EURUSD = "CS.D.EURUSD.TODAY.IP"
OTC = f"{SIM_BASE_URL}/positions/otc"
POSITIONS_URL = f"{SIM_BASE_URL}/positions"


def make_broker(transport: httpx.AsyncBaseTransport, **kwargs: Any) -> IGRestBroker:
    options: dict[str, Any] = {"confirm_retry_delay": 0.0} | kwargs
    return IGRestBroker(
        SIM_BASE_URL,
        api_key=DEFAULT_API_KEY,
        identifier=kwargs.pop("identifier", DEFAULT_IDENTIFIER),
        password=options.pop("password", DEFAULT_PASSWORD),
        transport=transport,
        **options,
    )


@pytest.fixture
def sim() -> SimBroker:
    return SimBroker()


@pytest.fixture
def app(sim: SimBroker) -> Any:
    return create_app(sim)


@pytest.fixture
async def broker(app: Any) -> AsyncIterator[IGRestBroker]:
    async with make_broker(SimASGITransport(app)) as rest:
        yield rest


@pytest.fixture
def router(app: Any) -> respx.MockRouter:
    return sim_router(base_url=SIM_BASE_URL, app=app)


@pytest.fixture
async def routed(router: respx.MockRouter) -> AsyncIterator[IGRestBroker]:
    """IGRestBroker through a respx router: fault routes first, then the sim."""
    async with make_broker(httpx.MockTransport(router.async_handler)) as rest:
        yield rest


def fault(router: respx.MockRouter, method: str, url: str, effect: Any) -> respx.Route:
    route = router.request(method, url).mock(side_effect=effect)
    keep_sim_route_last(router)
    return route


# --------------------------------------------------------------------------- every method


async def test_open_sends_the_client_reference_and_returns_the_confirm(
    sim: SimBroker, broker: IGRestBroker
) -> None:
    confirm = await broker.open_position(OpenOrder("REF1", EURUSD, "BUY", 2.0))
    assert confirm == sim.lookup_confirm("REF1")
    assert confirm.status == ACCEPTED and confirm.size == 2.0
    assert [p.deal_reference for p in sim.snapshot_positions()] == ["REF1"]


async def test_open_rejected_by_the_broker_is_a_rejected_confirm(
    sim: SimBroker, broker: IGRestBroker
) -> None:
    confirm = await broker.open_position(OpenOrder("REF1", "XX.NO.SUCH.IP", "BUY", 2.0))
    assert (confirm.status, confirm.reason, confirm.deal_id, confirm.size) == (
        REJECTED,
        "INSTRUMENT_NOT_FOUND",
        None,
        0.0,
    )
    assert confirm == sim.lookup_confirm("REF1")


async def test_close_partial_and_full(sim: SimBroker, broker: IGRestBroker) -> None:
    opened = await broker.open_position(OpenOrder("REF1", EURUSD, "BUY", 3.0))
    partial = await broker.close_position(CloseOrder("C1", opened.deal_id, "SELL", 1.0))
    assert (partial.deal_reference, partial.deal_id, partial.size) == ("C1", opened.deal_id, 1.0)
    assert [p.size for p in sim.snapshot_positions()] == [2.0]
    full = await broker.close_position(CloseOrder("C2", opened.deal_id, "SELL", 2.0))
    assert full == sim.lookup_confirm("C2")
    assert sim.snapshot_positions() == []


async def test_confirm_lookup_and_unknown_reference(sim: SimBroker, broker: IGRestBroker) -> None:
    opened = await sim.open_position(OpenOrder("REF1", EURUSD, "SELL", 1.0))
    assert await broker.confirm("REF1") == opened
    assert await broker.confirm("UNKNOWN") is None


async def test_positions_and_account_match_the_sim(sim: SimBroker, broker: IGRestBroker) -> None:
    await sim.open_position(OpenOrder("REF1", EURUSD, "BUY", 2.0))
    await sim.open_position(OpenOrder("REF2", "IX.D.FTSE.DAILY.IP", "SELL", 1.0))
    sim.set_price(EURUSD, 1.1025)
    assert await broker.positions() == sim.snapshot_positions()
    assert await broker.account() == sim.snapshot_account()
    assert broker.account_id == DEFAULT_ACCOUNT_ID


# --------------------------------------------------------------------------- session


async def test_logs_in_lazily_once(app: Any, broker: IGRestBroker) -> None:
    assert app.state.ig.logins == 0
    await broker.positions()
    await broker.account()
    assert app.state.ig.logins == 1


async def test_expired_token_triggers_one_relogin_and_retry(
    sim: SimBroker, app: Any, broker: IGRestBroker
) -> None:
    await broker.positions()
    app.state.ig.expire_sessions()
    confirm = await broker.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert confirm.status == ACCEPTED
    assert app.state.ig.logins == 2
    assert [r.deal_reference for r in sim.requests if r.kind == OPEN_POSITION] == ["REF1"]


async def test_a_second_401_after_relogin_is_a_refusal(
    router: respx.MockRouter, routed: IGRestBroker
) -> None:
    always_401 = fault(
        router,
        "GET",
        POSITIONS_URL,
        httpx.Response(401, json={"errorCode": "error.security.client-token-invalid"}),
    )
    with pytest.raises(BrokerRejected, match="client-token-invalid"):
        await routed.positions()
    assert always_401.call_count == 2


async def test_wrong_credentials_refuse_the_call_without_sending_it(
    sim: SimBroker, app: Any
) -> None:
    async with make_broker(SimASGITransport(app), password="wrong") as rest:
        with pytest.raises(BrokerRejected, match="error.security.invalid-details"):
            await rest.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert sim.requests == ()


async def test_login_connection_refused_is_unavailable(router: respx.MockRouter) -> None:
    fault(router, "POST", f"{SIM_BASE_URL}/session", httpx.ConnectError)
    async with make_broker(httpx.MockTransport(router.async_handler)) as rest:
        with pytest.raises(BrokerUnavailable):
            await rest.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))


async def test_switches_to_a_configured_account(app: Any) -> None:
    async with make_broker(SimASGITransport(app), account_id="OTHER") as rest:
        with pytest.raises(BrokerRejected, match="error.switch.invalid-accountId"):
            await rest.positions()  # the sim has one account: the switch is refused
    async with make_broker(SimASGITransport(app), account_id=DEFAULT_ACCOUNT_ID) as rest:
        assert await rest.positions() == []


# --------------------------------------------------------------------------- failure mapping


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError, BrokerUnavailable),
        (httpx.ConnectTimeout, BrokerUnavailable),
        (httpx.PoolTimeout, BrokerUnavailable),
        (httpx.ReadTimeout, BrokerTimeout),
        (httpx.WriteTimeout, BrokerTimeout),
        (httpx.ReadError, BrokerTimeout),
        (httpx.WriteError, BrokerTimeout),
        (httpx.RemoteProtocolError, BrokerTimeout),
    ],
)
async def test_transport_failures_on_open(
    sim: SimBroker,
    router: respx.MockRouter,
    routed: IGRestBroker,
    error: type[Exception],
    expected: type[Exception],
) -> None:
    fault(router, "POST", OTC, error)
    with pytest.raises(expected):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert sim.snapshot_positions() == []


async def test_executed_but_response_lost_is_a_timeout_and_the_deal_exists(
    sim: SimBroker, router: respx.MockRouter, routed: IGRestBroker, app: Any
) -> None:
    transport = SimASGITransport(app)

    async def execute_then_lose(request: httpx.Request) -> httpx.Response:
        await transport.handle_async_request(request)
        raise httpx.ReadTimeout("response lost", request=request)

    fault(router, "POST", OTC, execute_then_lose)
    with pytest.raises(BrokerTimeout):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert [p.deal_reference for p in sim.snapshot_positions()] == ["REF1"]
    assert (await routed.confirm("REF1")).status == ACCEPTED  # resolved by reference


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
async def test_failure_reading_the_confirm_after_the_order_is_a_timeout(
    sim: SimBroker, router: respx.MockRouter, routed: IGRestBroker, error: type[Exception]
) -> None:
    fault(router, "GET", f"{SIM_BASE_URL}/confirms/REF1", error)
    with pytest.raises(BrokerTimeout):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert [p.deal_reference for p in sim.snapshot_positions()] == ["REF1"]


async def test_rate_limit_on_the_confirm_after_the_order_is_a_timeout(
    router: respx.MockRouter, routed: IGRestBroker
) -> None:
    fault(router, "GET", f"{SIM_BASE_URL}/confirms/REF1", httpx.Response(429))
    with pytest.raises(BrokerTimeout):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))


async def test_missing_confirm_after_the_order_is_retried_then_a_timeout(
    router: respx.MockRouter, routed: IGRestBroker
) -> None:
    not_found = httpx.Response(404, json={"errorCode": "error.confirms.deal-not-found"})
    route = fault(router, "GET", f"{SIM_BASE_URL}/confirms/REF1", not_found)
    with pytest.raises(BrokerTimeout):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert route.call_count == 3


@pytest.mark.parametrize(
    ("response", "retry_after"),
    [
        (httpx.Response(429, headers={"Retry-After": "7"}), 7.0),
        (httpx.Response(429), 5.0),
        (httpx.Response(429, headers={"Retry-After": "soon"}), 5.0),
        (
            httpx.Response(
                403, json={"errorCode": "error.public-api.exceeded-account-trading-allowance"}
            ),
            5.0,
        ),
        (
            httpx.Response(
                403,
                json={"errorCode": "error.public-api.exceeded-api-key-allowance"},
                headers={"Retry-After": "2.5"},
            ),
            2.5,
        ),
    ],
)
async def test_rate_limits_on_open(
    sim: SimBroker,
    router: respx.MockRouter,
    routed: IGRestBroker,
    response: httpx.Response,
    retry_after: float,
) -> None:
    fault(router, "POST", OTC, response)
    with pytest.raises(BrokerRateLimited) as caught:
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert caught.value.retry_after == retry_after
    assert sim.snapshot_positions() == []


async def test_rate_limit_on_a_read(router: respx.MockRouter, routed: IGRestBroker) -> None:
    answer = httpx.Response(403, json={"errorCode": "error.public-api.exceeded-account-allowance"})
    fault(router, "GET", POSITIONS_URL, answer)
    with pytest.raises(BrokerRateLimited):
        await routed.positions()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_on_an_order_is_outcome_unknown(
    router: respx.MockRouter, routed: IGRestBroker, status: int
) -> None:
    fault(router, "POST", OTC, httpx.Response(status, json={"errorCode": "system.error"}))
    with pytest.raises(BrokerTimeout):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (500, BrokerUnavailable),
        (502, BrokerUnavailable),
        (503, BrokerUnavailable),
        (504, BrokerTimeout),
    ],
)
async def test_5xx_on_a_read(
    router: respx.MockRouter, routed: IGRestBroker, status: int, expected: type[Exception]
) -> None:
    fault(router, "GET", POSITIONS_URL, httpx.Response(status))
    with pytest.raises(expected):
        await routed.positions()


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(400, json={"errorCode": "invalid.input"}), "invalid.input"),
        (
            httpx.Response(404, json={"errorCode": "error.trading.otc.instrument-not-found"}),
            "error.trading.otc.instrument-not-found",
        ),
        (httpx.Response(400, text="<html>bad</html>"), "HTTP 400"),
    ],
)
async def test_4xx_on_an_order_is_rejected(
    router: respx.MockRouter, routed: IGRestBroker, response: httpx.Response, reason: str
) -> None:
    fault(router, "POST", OTC, response)
    with pytest.raises(BrokerRejected) as caught:
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert caught.value.reason == reason


async def test_a_404_other_than_deal_not_found_is_not_none(
    router: respx.MockRouter, routed: IGRestBroker
) -> None:
    fault(
        router,
        "GET",
        f"{SIM_BASE_URL}/confirms/X",
        httpx.Response(404, json={"errorCode": "invalid.url"}),
    )
    with pytest.raises(BrokerRejected):
        await routed.confirm("X")


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"dealReference": 12}', b'{"dealReference": "SOMEONE-ELSE"}', b"[]"],
)
async def test_unreadable_order_answer_is_a_protocol_error(
    router: respx.MockRouter, routed: IGRestBroker, body: bytes
) -> None:
    fault(router, "POST", OTC, httpx.Response(200, content=body))
    with pytest.raises(BrokerProtocolError) as caught:
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
    assert caught.value.field in (None, "dealReference")


async def test_a_3xx_on_an_order_is_a_protocol_error(
    router: respx.MockRouter, routed: IGRestBroker
) -> None:
    fault(router, "POST", OTC, httpx.Response(302, headers={"Location": "/elsewhere"}))
    with pytest.raises(BrokerProtocolError):
        await routed.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))


def test_map_transport_error_covers_invalid_urls_and_decoding() -> None:
    assert isinstance(map_transport_error(httpx.InvalidURL("x")), BrokerUnavailable)
    assert isinstance(map_transport_error(httpx.DecodingError("x")), BrokerProtocolError)
    assert isinstance(map_transport_error(httpx.CloseError("x")), BrokerTimeout)


# --------------------------------------------------------------------------- sim seams over HTTP


async def test_injected_port_errors_arrive_as_the_same_port_errors(
    sim: SimBroker, broker: IGRestBroker
) -> None:
    order = OpenOrder("REF1", EURUSD, "BUY", 1.0)
    sim.fail_next(OPEN_POSITION, BrokerUnavailable("down"))
    with pytest.raises(BrokerUnavailable):
        await broker.open_position(order)
    sim.fail_next(OPEN_POSITION, BrokerRateLimited("slow", retry_after=4.0))
    with pytest.raises(BrokerRateLimited) as limited:
        await broker.open_position(order)
    assert limited.value.retry_after == 4.0
    sim.fail_next(OPEN_POSITION, BrokerRejected("MARKET_CLOSED"))
    with pytest.raises(BrokerRejected, match="MARKET_CLOSED"):
        await broker.open_position(order)
    sim.fail_next(OPEN_POSITION, BrokerTimeout("lost"), after_execute=True)
    with pytest.raises(BrokerTimeout):
        await broker.open_position(order)
    assert [p.deal_reference for p in sim.snapshot_positions()] == ["REF1"]
    sim.fail_next(OPEN_POSITION, BrokerProtocolError("garbled", field="size"))
    with pytest.raises(BrokerProtocolError):
        await broker.open_position(OpenOrder("REF2", EURUSD, "BUY", 1.0))


async def test_held_order_over_http_waits_for_release(sim: SimBroker, broker: IGRestBroker) -> None:
    await broker.positions()  # log in first, so only the order is in flight
    sim.hold(OPEN_POSITION)
    task = asyncio.create_task(broker.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0)))
    for _ in range(50):
        if sim.pending:
            break
        await asyncio.sleep(0)
    assert [p.deal_reference for p in sim.pending] == ["REF1"]
    assert not task.done()
    sim.release(0)
    assert (await task).status == ACCEPTED


# --------------------------------------------------------------------------- strict parsing


def confirm_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "date": "2026-01-01T00:00:00.000",
        "dealId": "DIAAAA000000001",
        "dealReference": "REF1",
        "dealStatus": "ACCEPTED",
        "direction": "BUY",
        "epic": EURUSD,
        "expiry": "DFB",
        "level": 1.1,
        "reason": "SUCCESS",
        "size": 2.0,
        "status": "OPEN",
        "affectedDeals": [{"dealId": "DIAAAA000000001", "status": "OPENED"}],
    }
    body.update(overrides)
    return body


def position_item(i: int) -> dict[str, Any]:
    return {
        "position": {
            "dealId": f"DIAAAA00000000{i}",
            "dealReference": f"REF{i}",
            "direction": "BUY" if i % 2 else "SELL",
            "size": 1.0 + i,
            "level": 1.1,
        },
        "market": {"epic": EURUSD},
    }


def test_valid_bodies_parse() -> None:
    confirm = parse_confirm(confirm_body(), deal_reference="REF1")
    assert (confirm.deal_id, confirm.size, confirm.level) == ("DIAAAA000000001", 2.0, 1.1)
    rejected = parse_confirm(
        confirm_body(dealStatus="REJECTED", reason="MARKET_CLOSED", dealId=None, size=2.0),
        deal_reference="REF1",
    )
    assert (rejected.status, rejected.deal_id, rejected.size) == (REJECTED, None, 0.0)
    positions = parse_positions({"positions": [position_item(1), position_item(2)]})
    assert [p.deal_id for p in positions] == ["DIAAAA000000001", "DIAAAA000000002"]
    account = parse_account(
        {
            "accounts": [
                {
                    "accountId": "A",
                    "preferred": True,
                    "currency": "GBP",
                    "balance": {"balance": 10.0, "available": 5.0, "profitLoss": -1.0},
                }
            ]
        },
        account_id=None,
    )
    assert account == Account(balance=10.0, available=5.0, profit_loss=-1.0, currency="GBP")


BAD_NUMBERS = st.sampled_from([-1.0, 0.0, math.nan, math.inf, -math.inf, "2.0", True, None, [2]])
WRONG_TYPES = st.sampled_from([12, 1.5, True, [], {}, ""])


@st.composite
def malformed_confirms(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A confirm body with exactly one defect, and the field that defect is in."""
    kind = draw(
        st.sampled_from(
            ["missing", "wrong_type", "size", "status", "direction", "level", "affected", "ref"]
        )
    )
    body = confirm_body()
    if kind == "missing":
        field = draw(
            st.sampled_from(["dealReference", "dealStatus", "dealId", "epic", "direction", "size"])
        )
        del body[field]
    elif kind == "wrong_type":
        field = draw(st.sampled_from(["dealReference", "dealId", "epic", "reason"]))
        value = draw(WRONG_TYPES)
        if field == "reason" and value == "":
            value = 12
        body[field] = value
    elif kind == "size":
        field, body["size"] = "size", draw(BAD_NUMBERS)
    elif kind == "status":
        field = draw(st.sampled_from(["dealStatus", "status"]))
        body[field] = draw(
            st.text(max_size=12).filter(
                lambda s: (
                    s
                    not in (
                        "ACCEPTED",
                        "REJECTED",
                        "OPEN",
                        "CLOSED",
                        "PARTIALLY_CLOSED",
                        "AMENDED",
                        "DELETED",
                    )
                )
            )
        )
    elif kind == "direction":
        field, body["direction"] = "direction", draw(st.sampled_from(["LONG", "buy", "", 1]))
    elif kind == "level":
        field, body["level"] = "level", draw(st.sampled_from([math.nan, math.inf, "1.1", True]))
    elif kind == "affected":
        choice = draw(st.sampled_from(["not_list", "not_object", "no_id"]))
        if choice == "not_list":
            field, body["affectedDeals"] = "affectedDeals", "DIAAAA000000001"
        elif choice == "not_object":
            field, body["affectedDeals"] = "affectedDeals[0]", ["DIAAAA000000001"]
        else:
            field, body["affectedDeals"] = "affectedDeals[0].dealId", [{"status": "OPENED"}]
    else:
        field, body["dealReference"] = "dealReference", "SOMEONE-ELSE"
    return body, field


@st.composite
def malformed_positions(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A positions body with 1-4 entries, exactly one of them defective."""
    count = draw(st.integers(1, 4))
    items = [position_item(i + 1) for i in range(count)]
    i = draw(st.integers(0, count - 1))
    at = f"positions[{i}]"
    kind = draw(
        st.sampled_from(["entry", "missing", "wrong_type", "size", "level", "direction", "dup"])
    )
    if kind == "entry":
        part = draw(st.sampled_from(["", "position", "market"]))
        if part:
            items[i][part] = draw(st.sampled_from([None, "x", [1]]))
            field = f"{at}.{part}"
        else:
            items[i] = draw(st.sampled_from([None, "x", [1], 3]))
            field = at
    elif kind == "missing":
        key = draw(st.sampled_from(["dealId", "direction", "size", "level", "epic"]))
        where = "market" if key == "epic" else "position"
        del items[i][where][key]
        field = f"{at}.{where}.{key}"
    elif kind == "wrong_type":
        key = draw(st.sampled_from(["dealId", "dealReference", "epic"]))
        where = "market" if key == "epic" else "position"
        items[i][where][key] = draw(st.sampled_from([12, 1.5, True, [], {}]))
        field = f"{at}.{where}.{key}"
    elif kind == "size":
        items[i]["position"]["size"] = draw(BAD_NUMBERS.filter(lambda v: v is not None))
        field = f"{at}.position.size"
    elif kind == "level":
        items[i]["position"]["level"] = draw(st.sampled_from([math.nan, -math.inf, "1.1", False]))
        field = f"{at}.position.level"
    elif kind == "direction":
        items[i]["position"]["direction"] = draw(st.sampled_from(["LONG", "", None, 0]))
        field = f"{at}.position.direction"
    else:
        if count == 1:
            items.append(position_item(1))
            i = 1
        else:
            items[i]["position"]["dealId"] = items[0 if i else 1]["position"]["dealId"]
            i = max(i, 0 if i else 1)
        field = f"positions[{i}].position.dealId"
    return {"positions": items}, field


@given(malformed_confirms())
def test_malformed_confirm_is_a_protocol_error_naming_the_field(
    case: tuple[dict[str, Any], str],
) -> None:
    body, field = case
    with pytest.raises(BrokerProtocolError) as caught:
        parse_confirm(body, deal_reference="REF1")
    assert caught.value.field == field


@given(malformed_positions())
def test_malformed_positions_is_a_protocol_error_naming_the_field(
    case: tuple[dict[str, Any], str],
) -> None:
    body, field = case
    with pytest.raises(BrokerProtocolError) as caught:
        parse_positions(body)
    assert caught.value.field == field


def fixed_ig(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """A fake IG that logs in and answers everything else with `answer`."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/session"):
            return httpx.Response(
                200,
                json={"currentAccountId": DEFAULT_ACCOUNT_ID},
                headers={"CST": "c", "X-SECURITY-TOKEN": "x"},
            )
        return answer(request)

    return httpx.MockTransport(handler)


def as_json(body: Any) -> bytes:
    return json.dumps(body).encode()  # NaN and Infinity go over the wire as IG would never


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_positions())
def test_malformed_positions_over_http_return_no_partial_list(
    case: tuple[dict[str, Any], str],
) -> None:
    body, field = case

    assert_no_partial_answer(body, field, IGRestBroker.positions)


def assert_no_partial_answer(body: Any, field: str, call: Callable[[IGRestBroker], Any]) -> None:
    """`call` on a broker whose every read answers `body` raises BrokerProtocolError naming
    `field`, and returns nothing."""

    async def run() -> None:
        transport = fixed_ig(lambda request: httpx.Response(200, content=as_json(body)))
        async with make_broker(transport) as rest:
            result: list[Any] | None = None
            with pytest.raises(BrokerProtocolError) as caught:
                result = await call(rest)
            assert result is None
            assert caught.value.field == field

    asyncio.run(run())


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_confirms())
def test_malformed_confirm_over_http_after_an_order(case: tuple[dict[str, Any], str]) -> None:
    body, field = case

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"dealReference": "REF1"})
        return httpx.Response(200, content=as_json(body))

    async def run() -> None:
        async with make_broker(fixed_ig(answer)) as rest:
            with pytest.raises(BrokerProtocolError) as caught:
                await rest.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
            assert caught.value.field == field

    asyncio.run(run())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"accounts": []}, "accounts"),
        ({"accounts": [{"accountId": "OTHER", "preferred": True}]}, "accounts"),
        (
            {"accounts": [{"accountId": DEFAULT_ACCOUNT_ID, "currency": "GBP", "balance": {}}]},
            "accounts[0].balance.balance",
        ),
        (
            {
                "accounts": [
                    {
                        "accountId": DEFAULT_ACCOUNT_ID,
                        "currency": "GBP",
                        "balance": {"balance": 1.0, "available": math.nan, "profitLoss": 0.0},
                    }
                ]
            },
            "accounts[0].balance.available",
        ),
        (
            {
                "accounts": [
                    {
                        "accountId": DEFAULT_ACCOUNT_ID,
                        "currency": None,
                        "balance": {"balance": 1.0, "available": 1.0, "profitLoss": 0.0},
                    }
                ]
            },
            "accounts[0].currency",
        ),
    ],
)
def test_malformed_account_is_a_protocol_error_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(BrokerProtocolError) as caught:
        parse_account(body, account_id=DEFAULT_ACCOUNT_ID)
    assert caught.value.field == field


# --------------------------------------------------------------------------- over a real socket


async def test_over_a_loopback_socket(sim: SimBroker) -> None:
    with LoopbackServer(create_app(sim)) as server:
        async with IGRestBroker(
            server.base_url + "/gateway/deal",
            api_key=DEFAULT_API_KEY,
            identifier=DEFAULT_IDENTIFIER,
            password=DEFAULT_PASSWORD,
            timeout=5.0,
        ) as rest:
            confirm = await rest.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
            assert confirm == sim.lookup_confirm("REF1")
            assert await rest.positions() == sim.snapshot_positions()
            # Without an in-process transport a refusal can only be a 503: a read is then
            # unavailable, an order conservatively outcome-unknown.
            sim.fail_next(POSITIONS, BrokerUnavailable("down"))
            with pytest.raises(BrokerUnavailable):
                await rest.positions()
            sim.fail_next(OPEN_POSITION, BrokerUnavailable("down"))
            with pytest.raises(BrokerTimeout):
                await rest.open_position(OpenOrder("REF2", EURUSD, "BUY", 1.0))


async def test_a_refused_connection_on_a_real_port_is_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # nothing listens on `port` any more
    async with IGRestBroker(
        f"http://127.0.0.1:{port}/gateway/deal",
        api_key=DEFAULT_API_KEY,
        identifier=DEFAULT_IDENTIFIER,
        password=DEFAULT_PASSWORD,
        timeout=5.0,
    ) as rest:
        with pytest.raises(BrokerUnavailable):
            await rest.open_position(OpenOrder("REF1", EURUSD, "BUY", 1.0))
