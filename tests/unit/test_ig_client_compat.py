"""The sim's IG REST dialect, driven over a loopback socket by the real `trading_ig` client.

Whatever trading_ig needs from IG's API, the server must provide: a failure here is fixed in
`solat_chaos.broker.ig_http`, never by bending the client.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from trading_ig import IGService
from trading_ig.rest import IGException, TokenInvalidException

from solat_chaos.broker.ig_http import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    DEFAULT_IDENTIFIER,
    DEFAULT_PASSWORD,
    IGHttpState,
    LoopbackServer,
    create_app,
)
from solat_chaos.broker.sim import CLOSE_POSITION, CLOSED, OPEN_POSITION, OPENED, SimBroker
from solat_chaos.engine.broker import ACCEPTED

EURUSD = "CS.D.EURUSD.TODAY.IP"


@pytest.fixture
def sim() -> SimBroker:
    return SimBroker()


@pytest.fixture
def server(sim: SimBroker) -> Iterator[LoopbackServer]:
    with LoopbackServer(create_app(sim), "127.0.0.1", 0) as running:
        yield running


@pytest.fixture
def ig_state(server: LoopbackServer) -> IGHttpState:
    return server.app.state.ig


def make_client(server: LoopbackServer, **kwargs: object) -> IGService:
    ig = IGService(
        DEFAULT_IDENTIFIER,
        kwargs.pop("password", DEFAULT_PASSWORD),
        DEFAULT_API_KEY,
        "DEMO",
        **kwargs,
    )
    # trading_ig builds every URL from BASE_URL; point it at the loopback server.
    ig.BASE_URL = server.base_url + "/gateway/deal"
    ig.crud_session.BASE_URL = ig.BASE_URL
    return ig


def open_market(ig: IGService, epic: str, direction: str, size: float) -> dict:
    return ig.create_open_position(
        currency_code="GBP",
        direction=direction,
        epic=epic,
        expiry="DFB",
        force_open=True,
        guaranteed_stop=False,
        level=None,
        limit_distance=None,
        limit_level=None,
        order_type="MARKET",
        quote_id=None,
        size=size,
        stop_distance=None,
        stop_level=None,
        trailing_stop=False,
        trailing_stop_increment=None,
    )


def close_by_deal_id(ig, deal_id: str, size: float) -> dict:
    """A market close of `size`, as trading_ig sends it with only the deal id given."""
    return ig.close_open_position(
        deal_id=deal_id,
        direction="SELL",
        epic=None,
        expiry=None,
        level=None,
        order_type="MARKET",
        quote_id=None,
        size=size,
    )


def test_server_binds_a_free_loopback_port(server: LoopbackServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.port > 0


def test_trading_ig_full_cycle_matches_sim_ground_truth(
    sim: SimBroker, server: LoopbackServer
) -> None:
    ig = make_client(server)

    session = ig.create_session()
    assert session["currentAccountId"] == DEFAULT_ACCOUNT_ID
    assert "CST" in ig.session.headers and "X-SECURITY-TOKEN" in ig.session.headers

    [account] = ig.fetch_accounts()["accounts"]
    assert account["accountId"] == DEFAULT_ACCOUNT_ID
    assert account["balance"]["available"] == sim.snapshot_account().available == 10_000.0

    opened = open_market(ig, EURUSD, "BUY", 3)
    ref = opened["dealReference"]
    truth = sim.lookup_confirm(ref)
    assert opened["dealStatus"] == ACCEPTED and truth.status == ACCEPTED
    assert opened["dealId"] == truth.deal_id
    assert (opened["size"], opened["level"], opened["status"]) == (3, 1.1, "OPEN")
    assert opened["affectedDeals"] == [{"dealId": truth.deal_id, "status": OPENED}]
    assert sim.requests[-1].kind == OPEN_POSITION
    assert sim.requests[-1].deal_reference == ref

    assert ig.fetch_deal_by_deal_reference(ref) == opened

    positions = ig.fetch_open_positions()["positions"]
    [(position, market)] = [(p["position"], p["market"]) for p in positions]
    [sim_position] = sim.snapshot_positions()
    assert position["dealId"] == sim_position.deal_id
    assert position["dealReference"] == sim_position.deal_reference == ref
    assert (position["size"], position["direction"], position["level"]) == (3, "BUY", 1.1)
    assert market["epic"] == EURUSD
    assert ig.fetch_open_position_by_deal_id(truth.deal_id)["position"]["size"] == 3

    balance = ig.fetch_accounts()["accounts"][0]["balance"]
    assert balance["available"] == sim.snapshot_account().available
    assert balance["deposit"] == pytest.approx(sim.margin())

    partial = close_by_deal_id(ig, truth.deal_id, 1)
    assert (partial["dealStatus"], partial["status"], partial["size"]) == (
        ACCEPTED,
        "PARTIALLY_CLOSED",
        1,
    )
    assert [p.size for p in sim.snapshot_positions()] == [2]
    assert sim.requests[-1].kind == CLOSE_POSITION
    assert sim.lookup_confirm(partial["dealReference"]).size == 1

    rest = close_by_deal_id(ig, truth.deal_id, 2)
    assert (rest["status"], rest["affectedDeals"]) == (
        "CLOSED",
        [{"dealId": truth.deal_id, "status": "FULLY_CLOSED"}],
    )
    assert sim.snapshot_positions() == []
    assert ig.fetch_open_positions()["positions"] == []
    assert sim.events[-1].kind == CLOSED
    assert ig.fetch_accounts()["accounts"][0]["balance"]["available"] == 10_000.0

    ig.logout()


def test_trading_ig_sees_a_rejection_in_the_confirm(sim: SimBroker, server: LoopbackServer) -> None:
    ig = make_client(server)
    ig.create_session()
    confirm = open_market(ig, "XX.D.UNKNOWN.IP", "BUY", 1)
    assert (confirm["dealStatus"], confirm["reason"], confirm["dealId"]) == (
        "REJECTED",
        "INSTRUMENT_NOT_FOUND",
        None,
    )
    assert sim.snapshot_positions() == []


def test_trading_ig_version_3_session(sim: SimBroker, server: LoopbackServer) -> None:
    ig = make_client(server, acc_number=DEFAULT_ACCOUNT_ID)
    session = ig.create_session(version="3")
    assert session["accountId"] == DEFAULT_ACCOUNT_ID
    assert ig.session.headers["Authorization"].startswith("Bearer ")
    assert ig.fetch_accounts()["accounts"][0]["accountId"] == DEFAULT_ACCOUNT_ID
    assert ig.refresh_session() == 200
    assert ig.fetch_open_positions()["positions"] == []


def test_trading_ig_read_and_switch_session(server: LoopbackServer) -> None:
    ig = make_client(server)
    ig.create_session()
    assert ig.read_session()["accountId"] == DEFAULT_ACCOUNT_ID
    with pytest.raises(Exception, match="error.switch.accountId-must-be-different"):
        ig.switch_account(DEFAULT_ACCOUNT_ID, False)


def test_trading_ig_bad_credentials_are_refused(server: LoopbackServer) -> None:
    ig = make_client(server, password="wrong")
    with pytest.raises(IGException, match="error.security.invalid-details"):
        ig.create_session()


def test_trading_ig_detects_an_expired_token(server: LoopbackServer, ig_state: IGHttpState) -> None:
    ig = make_client(server)
    ig.create_session()
    ig_state.expire_sessions()
    with pytest.raises(TokenInvalidException):
        ig.fetch_accounts()
    ig.create_session()  # a fresh login works again
    assert ig.fetch_accounts()["accounts"][0]["accountId"] == DEFAULT_ACCOUNT_ID
