"""The SimBroker served over HTTP in IG's REST dialect.

`create_app(sim)` builds a Starlette app that answers like IG's REST trading API (served both at
the root and under `/gateway/deal`, so an IG base URL can point at it unchanged):

- `POST /session` (Version 1, 2: CST and X-SECURITY-TOKEN headers; Version 3: an OAuth token
  body), `POST /session` with `_method: DELETE` (log out), `GET /session`, `PUT /session`
  (switch account), `POST /session/refresh-token` (Version 3 refresh);
- `GET /accounts`, `GET /markets/{epic}`;
- `POST /positions/otc` (open; the client may send its own `dealReference`), closes by
  `DELETE /positions/otc` or by `POST` with the `_method: DELETE` header (dealId, direction,
  size, orderType MARKET; `dealReference` is accepted as a sim extension, IG's close request
  has no such field), `GET /positions` (Version 1 and 2 shapes), `GET /positions/{dealId}`,
  `GET /confirms/{dealReference}`;
- `GET /history/activity` Version 3 (`from`, `detailed=true`, `pageSize`): the SimBroker's
  events as IG's activity history, one page.

Authentication is checked like IG: X-IG-API-KEY (400 `error.security.api-key-missing`, 403
`error.security.api-key-invalid`), then CST / X-SECURITY-TOKEN (401
`error.security.client-token-missing|invalid`, `error.security.account-token-missing|invalid`)
or, for Version 3 sessions, `Authorization: Bearer` + `IG-ACCOUNT-ID` (401
`error.security.oauth-token-invalid`). `app.state.ig` (an `IGHttpState`) lets a test expire
every session (`expire_sessions()`) and count logins.

The HTTP handlers call the SimBroker's async port methods, so every seam works over HTTP too.
Port errors become IG-style answers:

| port error          | HTTP answer                                                         |
|---------------------|---------------------------------------------------------------------|
| BrokerRejected(r)   | 400 {"errorCode": r}                                                |
| BrokerRateLimited   | 403 {"errorCode": "error.public-api.exceeded-account[-trading]-     |
|                     | allowance"} with a Retry-After header                               |
| BrokerTimeout       | 504 {"errorCode": "system.error"}                                   |
| BrokerUnavailable   | in-process (`SimASGITransport`, `sim_router`): httpx.ConnectError;  |
|                     | over a real socket: 503 {"errorCode": "system.error"}               |
| BrokerProtocolError | 200 with a body that is not JSON                                    |

An open over HTTP is two requests (POST, then GET /confirms). The confirm that
`open_position`/`close_position` produced is handed to the first GET /confirms for that
reference as is; later GETs go through the `confirm` port method and its seams. So the HTTP view
consumes exactly the seams the direct view does. An order that executed under
`sim.fail_next(CONFIRM, error, after_order=True)` has its POST answered and that first GET
answered with `error` (as in the table below).

In-process seams: `SimASGITransport(app)` (an `httpx.ASGITransport`, the seam the harness uses)
and `sim_router(sim, base_url)` (a `respx.MockRouter` whose catch-all route "ig-sim" forwards to
the app; add fault routes and then `keep_sim_route_last(router)`). On a socket:
`LoopbackServer(app)` runs uvicorn on 127.0.0.1 in a background thread; `serve_broker(host,
port)` runs it in the foreground. Holds (`sim.hold`) need the release to happen on the loop
that runs the held call: fine in-process, not across the loopback server's thread.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import respx
import uvicorn
from respx.handlers import AsyncTransportHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from solat_chaos.broker.ig_rest import format_ig_date, parse_ig_date
from solat_chaos.broker.ig_tlcp import TlcpState
from solat_chaos.broker.sim import CLOSED, OPENED, BrokerEvent, Market, SimBroker
from solat_chaos.engine.broker import (
    ACCEPTED,
    BrokerActivity,
    BrokerError,
    BrokerPosition,
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    CloseOrder,
    DealConfirm,
    OpenOrder,
)

DEFAULT_API_KEY = "SIM-API-KEY"
DEFAULT_IDENTIFIER = "sim-user"
DEFAULT_PASSWORD = "sim-password"
DEFAULT_ACCOUNT_ID = "SIMACC01"
SIM_BASE_URL = "http://ig-sim.test/gateway/deal"
SIM_ROUTE = "ig-sim"

# Marks a request as coming through an in-process transport (refusals become ConnectError).
_IN_PROCESS = "solat_chaos.in_process"

TRADING_ALLOWANCE = "error.public-api.exceeded-account-trading-allowance"
ACCOUNT_ALLOWANCE = "error.public-api.exceeded-account-allowance"
_JSON = "application/json; charset=UTF-8"
_PROTOCOL_GARBAGE = b"<html>sim: injected protocol error</html>"


class SimConnectionRefused(Exception):
    """Raised by the app for an injected BrokerUnavailable; `SimASGITransport` turns it into
    `httpx.ConnectError` (the request "was never sent")."""


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, allow_nan=False, separators=(",", ":")).encode(),
        status_code=status,
        headers=headers,
        media_type=_JSON,
    )


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"errorCode": code}, headers)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _iso(at: float | None) -> str:
    moment = datetime.fromtimestamp(at or 0.0, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


class IGHttpState:
    """Sessions and the handlers of one app. `app.state.ig` is this object."""

    def __init__(
        self,
        sim: SimBroker,
        *,
        api_key: str,
        identifier: str,
        password: str,
        account_id: str,
        account_name: str,
        account_type: str,
        client_id: str,
        expiry: str,
    ) -> None:
        self.sim = sim
        self.api_key = api_key
        self.identifier = identifier
        self.password = password
        self.account_id = account_id
        self.account_name = account_name
        self.account_type = account_type
        self.client_id = client_id
        self.expiry = expiry
        self.sessions: dict[str, str] = {}  # CST -> X-SECURITY-TOKEN
        self.oauth: dict[str, str] = {}  # access token -> account id
        self.refresh_tokens: set[str] = set()
        self.logins = 0
        self._token_counter = 0
        self._undelivered: dict[str, DealConfirm] = {}
        self._lost_confirms: dict[str, BrokerError] = {}  # ref -> what its GET /confirms gets

    # -------------------------------------------------------------- test hooks

    def expire_sessions(self) -> None:
        """Invalidate every token: the next call answers 401 ...client-token-invalid."""
        self.sessions.clear()
        self.oauth.clear()
        self.refresh_tokens.clear()

    # -------------------------------------------------------------- auth

    @staticmethod
    def _lightstreamer_endpoint(request: Request) -> str:
        """The trade stream is served by this same app (`ig_tlcp`), at the address asked."""
        return f"{request.url.scheme}://{request.url.netloc}"

    def streaming_credentials_valid(self, cst: str, security_token: str) -> bool:
        return self.sessions.get(cst) == security_token

    def _token(self, prefix: str) -> str:
        self._token_counter += 1
        return f"{prefix}{self._token_counter:08d}sim"

    def _check_api_key(self, request: Request) -> Response | None:
        key = request.headers.get("x-ig-api-key")
        if not key:
            return _error(400, "error.security.api-key-missing")
        if key != self.api_key:
            return _error(403, "error.security.api-key-invalid")
        return None

    def _check_auth(self, request: Request) -> Response | None:
        refused = self._check_api_key(request)
        if refused is not None:
            return refused
        authorization = request.headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            account = self.oauth.get(token) if scheme.lower() == "bearer" else None
            if account is None or request.headers.get("ig-account-id") != account:
                return _error(401, "error.security.oauth-token-invalid")
            return None
        cst = request.headers.get("cst")
        if not cst:
            return _error(401, "error.security.client-token-missing")
        if cst not in self.sessions:
            return _error(401, "error.security.client-token-invalid")
        xst = request.headers.get("x-security-token")
        if not xst:
            return _error(401, "error.security.account-token-missing")
        if self.sessions[cst] != xst:
            return _error(401, "error.security.account-token-invalid")
        return None

    @staticmethod
    def _version(request: Request) -> str:
        return request.headers.get("version", "1").strip() or "1"

    @staticmethod
    async def _body(request: Request) -> dict[str, Any] | None:
        raw = await request.body()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _new_session(self) -> dict[str, str]:
        cst, xst = self._token("CST"), self._token("XST")
        self.sessions[cst] = xst
        return {"CST": cst, "X-SECURITY-TOKEN": xst}

    def _new_oauth(self) -> dict[str, str]:
        access, refresh = self._token("ACCESS"), self._token("REFRESH")
        self.oauth[access] = self.account_id
        self.refresh_tokens.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "scope": "profile",
            "token_type": "Bearer",
            "expires_in": "60",
        }

    # -------------------------------------------------------------- rendering

    def _account_info(self) -> dict[str, float]:
        account = self.sim.snapshot_account()
        return {
            "balance": account.balance,
            "deposit": round(account.balance + account.profit_loss - account.available, 2),
            "profitLoss": account.profit_loss,
            "available": account.available,
        }

    def _market_json(self, market: Market | None, epic: str) -> dict[str, Any]:
        level = market.level if market is not None else None
        return {
            "instrumentName": market.name if market is not None else epic,
            "expiry": self.expiry,
            "epic": epic,
            "instrumentType": market.instrument_type if market is not None else "UNKNOWN",
            "lotSize": 1.0,
            "high": level,
            "low": level,
            "percentageChange": 0.0,
            "netChange": 0.0,
            "bid": level,
            "offer": level,
            "updateTime": "00:00:00",
            "updateTimeUTC": "00:00:00",
            "delayTime": 0,
            "streamingPricesAvailable": True,
            "marketStatus": "TRADEABLE",
            "scalingFactor": market.scaling_factor if market is not None else 1.0,
        }

    def _position_json(self, position: BrokerPosition, version: str) -> dict[str, Any]:
        market = self.sim.markets.get(position.epic)
        common = {
            "contractSize": 1.0,
            "createdDate": "1970/01/01 00:00:00:000",
            "dealId": position.deal_id,
            "direction": position.direction,
            "limitLevel": None,
            "currency": self.sim.currency,
            "controlledRisk": False,
            "stopLevel": None,
            "trailingStep": None,
            "trailingStopDistance": None,
        }
        if version == "1":
            body = {**common, "dealSize": position.size, "openLevel": position.level}
            market_json = self._market_json(market, position.epic)
            market_json.pop("updateTimeUTC")
        else:
            body = {
                **common,
                "createdDateUTC": "1970-01-01T00:00:00",
                "dealReference": position.deal_reference,
                "size": position.size,
                "level": position.level,
                "limitedRiskPremium": None,
            }
            market_json = self._market_json(market, position.epic)
        return {"position": body, "market": market_json}

    def _confirm_json(self, confirm: DealConfirm) -> dict[str, Any]:
        record = self.sim.confirm_record(confirm.deal_reference)
        accepted = confirm.status == ACCEPTED
        requested = record.requested_size if record is not None else confirm.size
        body: dict[str, Any] = {
            "date": _iso(record.at if record is not None else None),
            "dealId": confirm.deal_id,
            "dealReference": confirm.deal_reference,
            "dealStatus": confirm.status,
            "direction": confirm.direction,
            "epic": confirm.epic,
            "expiry": self.expiry,
            "guaranteedStop": False,
            "level": confirm.level,
            "limitDistance": None,
            "limitLevel": None,
            "profit": record.profit if record is not None else None,
            "profitCurrency": self.sim.currency,
            "reason": confirm.reason,
            "size": confirm.size if accepted else _finite_or_none(requested),
            "status": record.status if record is not None else None,
            "stopDistance": None,
            "stopLevel": None,
            "trailingStop": False,
            "affectedDeals": [],
        }
        if accepted and record is not None and record.affected_status is not None:
            body["affectedDeals"] = [{"dealId": confirm.deal_id, "status": record.affected_status}]
        return body

    def streamed_confirm_json(self, deal_reference: str) -> dict[str, Any] | None:
        """The confirm of `deal_reference` as the stream's CONFIRMS field carries it."""
        record = self.sim.confirm_record(deal_reference)
        return None if record is None else self._confirm_json(record.confirm)

    def streamed_opu_json(self, event: BrokerEvent) -> dict[str, Any]:
        """IG's OPU for one position change: the position's status and size after it."""
        status = {OPENED: "OPEN", CLOSED: "DELETED"}.get(event.kind, "UPDATED")
        return {
            "dealReference": event.deal_reference,
            "dealId": event.deal_id,
            "dealIdOrigin": event.deal_id,
            "dealStatus": ACCEPTED,
            "status": status,
            "size": 0 if status == "DELETED" else event.remaining,
            "level": event.level,
            "epic": event.epic,
            "direction": event.direction,
            "timestamp": None if event.at is None else _iso(event.at),
            "expiry": self.expiry,
            "currency": self.sim.currency,
            "stopLevel": None,
            "limitLevel": None,
            "guaranteedStop": False,
            "channel": "PublicRestOTC" if event.source == "api" else "WEB",
        }

    def _activity_json(self, deal: BrokerActivity) -> dict[str, Any]:
        market = self.sim.markets.get(deal.epic)
        return {
            "date": format_ig_date(deal.at),
            "epic": deal.epic,
            "period": self.expiry,
            "dealId": deal.deal_id,
            "channel": "PUBLIC_WEB_API" if deal.deal_reference else "WEB",
            "type": "POSITION",
            "status": "ACCEPTED",
            "description": f"{deal.action.replace('_', ' ').title()}: {deal.deal_id}",
            "details": {
                "dealReference": deal.deal_reference or None,
                "actions": [{"actionType": deal.action, "affectedDealId": deal.deal_id}],
                "marketName": market.name if market is not None else deal.epic,
                "goodTillDate": None,
                "currency": self.sim.currency,
                "size": deal.size,
                "direction": deal.direction,
                "level": deal.level,
                "stopLevel": None,
                "stopDistance": None,
                "guaranteedStop": False,
                "trailingStopDistance": None,
                "trailingStep": None,
                "limitLevel": None,
                "limitDistance": None,
            },
        }

    def _port_error(self, request: Request, error: BrokerError, *, trading: bool) -> Response:
        if isinstance(error, BrokerRejected):
            return _error(400, error.reason)
        if isinstance(error, BrokerRateLimited):
            code = TRADING_ALLOWANCE if trading else ACCOUNT_ALLOWANCE
            return _error(403, code, {"Retry-After": repr(float(error.retry_after))})
        if isinstance(error, BrokerTimeout):
            return _error(504, "system.error")
        if isinstance(error, BrokerUnavailable):
            if request.scope.get(_IN_PROCESS):
                raise SimConnectionRefused(str(error))
            return _error(503, "system.error")
        if isinstance(error, BrokerProtocolError):
            return Response(_PROTOCOL_GARBAGE, status_code=200, media_type=_JSON)
        return _error(500, "system.error")

    # -------------------------------------------------------------- session

    async def session(self, request: Request) -> Response:
        if request.method == "POST" and request.headers.get("_method", "").upper() == "DELETE":
            return await self.logout(request)
        if request.method == "POST":
            return await self.login(request)
        if request.method == "DELETE":
            return await self.logout(request)
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        if request.method == "PUT":
            return await self.switch_account(request)
        headers = None
        if request.query_params.get("fetchSessionTokens", "false").lower() == "true":
            headers = self._new_session()
        return _json(
            200,
            {
                "clientId": self.client_id,
                "accountId": self.account_id,
                "timezoneOffset": 0,
                "locale": "en_GB",
                "currency": self.sim.currency,
                "lightstreamerEndpoint": self._lightstreamer_endpoint(request),
            },
            headers,
        )

    async def login(self, request: Request) -> Response:
        refused = self._check_api_key(request)
        if refused is not None:
            return refused
        body = await self._body(request)
        if body is None:
            return _error(400, "invalid.input")
        identifier, password = body.get("identifier"), body.get("password")
        if not isinstance(identifier, str) or not identifier:
            return _error(400, "validation.null-not-allowed.request.identifier")
        if not isinstance(password, str) or not password:
            return _error(400, "validation.null-not-allowed.request.password")
        if body.get("encryptedPassword"):
            return _error(400, "invalid.input")
        if identifier != self.identifier or password != self.password:
            return _error(401, "error.security.invalid-details")
        self.logins += 1
        version = self._version(request)
        if version == "3":
            return _json(
                200,
                {
                    "clientId": self.client_id,
                    "accountId": self.account_id,
                    "timezoneOffset": 0,
                    "lightstreamerEndpoint": self._lightstreamer_endpoint(request),
                    "oauthToken": self._new_oauth(),
                },
            )
        body = {
            "accountType": self.account_type,
            "accountInfo": self._account_info(),
            "currencyIsoCode": self.sim.currency,
            "currencySymbol": "£" if self.sim.currency == "GBP" else self.sim.currency,
            "currentAccountId": self.account_id,
            "lightstreamerEndpoint": self._lightstreamer_endpoint(request),
            "accounts": [
                {
                    "accountId": self.account_id,
                    "accountName": self.account_name,
                    "preferred": True,
                    "accountType": self.account_type,
                }
            ],
            "clientId": self.client_id,
            "timezoneOffset": 0,
            "hasActiveDemoAccounts": True,
            "hasActiveLiveAccounts": False,
            "trailingStopsEnabled": False,
            "reroutingEnvironment": None,
            "dealingEnabled": True,
        }
        return _json(200, body, self._new_session())

    async def logout(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        self.sessions.pop(request.headers.get("cst", ""), None)
        authorization = request.headers.get("authorization", "")
        self.oauth.pop(authorization.partition(" ")[2], None)
        return Response(status_code=204)

    async def switch_account(self, request: Request) -> Response:
        body = await self._body(request)
        if body is None:
            return _error(400, "invalid.input")
        account_id = body.get("accountId")
        if account_id == self.account_id:
            return _error(412, "error.switch.accountId-must-be-different")
        return _error(400, "error.switch.invalid-accountId")

    async def refresh_token(self, request: Request) -> Response:
        refused = self._check_api_key(request)
        if refused is not None:
            return refused
        body = await self._body(request)
        token = body.get("refresh_token") if body else None
        if not isinstance(token, str) or token not in self.refresh_tokens:
            return _error(401, "error.security.oauth-token-invalid")
        self.refresh_tokens.discard(token)
        return _json(200, self._new_oauth())

    # -------------------------------------------------------------- accounts and markets

    async def accounts(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        try:
            account = await self.sim.account()
        except BrokerError as error:
            return self._port_error(request, error, trading=False)
        return _json(
            200,
            {
                "accounts": [
                    {
                        "accountId": self.account_id,
                        "accountName": self.account_name,
                        "accountAlias": None,
                        "status": "ENABLED",
                        "accountType": self.account_type,
                        "preferred": True,
                        "balance": {
                            "balance": account.balance,
                            "deposit": round(
                                account.balance + account.profit_loss - account.available, 2
                            ),
                            "profitLoss": account.profit_loss,
                            "available": account.available,
                        },
                        "currency": account.currency,
                        "canTransferFrom": True,
                        "canTransferTo": True,
                    }
                ]
            },
        )

    async def market(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        epic = request.path_params["epic"]
        market = self.sim.markets.get(epic)
        if market is None:
            return _error(404, "error.service.marketdata.instrument.epic.unavailable")
        snapshot = self._market_json(market, epic)
        return _json(
            200,
            {
                "instrument": {
                    "epic": epic,
                    "name": market.name,
                    "expiry": self.expiry,
                    "type": market.instrument_type,
                    "lotSize": 1.0,
                    "currencies": [{"code": self.sim.currency, "isDefault": True}],
                    "marginFactor": market.margin_factor * 100,
                    "marginFactorUnit": "PERCENTAGE",
                    "streamingPricesAvailable": True,
                },
                "dealingRules": {
                    "minDealSize": {"unit": "POINTS", "value": market.min_size},
                    "marketOrderPreference": "AVAILABLE_DEFAULT_ON",
                },
                "snapshot": {
                    key: snapshot[key]
                    for key in (
                        "marketStatus",
                        "netChange",
                        "percentageChange",
                        "updateTime",
                        "delayTime",
                        "bid",
                        "offer",
                        "high",
                        "low",
                        "scalingFactor",
                    )
                },
            },
        )

    # -------------------------------------------------------------- dealing

    async def positions_otc(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        body = await self._body(request)
        if body is None:
            return _error(400, "invalid.input")
        closing = request.method == "DELETE" or (
            request.headers.get("_method", "").upper() == "DELETE"
        )
        ref = body.get("dealReference")
        if ref is None:
            ref = self.sim.new_deal_reference()
        try:
            if closing:
                if body.get("dealId") is None:
                    return _error(400, "invalid.input")  # closing by epic is not simulated
                order = CloseOrder(ref, body.get("dealId"), body.get("direction"), body.get("size"))
                confirm = await self.sim.close_position(order)
            else:
                opening = OpenOrder(ref, body.get("epic"), body.get("direction"), body.get("size"))
                confirm = await self.sim.open_position(opening)
        except BrokerError as error:
            lost = self.sim.take_lost_confirm(ref) if isinstance(ref, str) else None
            if lost is None:
                return self._port_error(request, error, trading=True)
            # The order executed; the confirm poll that follows is the request that fails.
            self._lost_confirms[ref] = lost
            return _json(200, {"dealReference": ref})
        self._undelivered[confirm.deal_reference] = confirm
        return _json(200, {"dealReference": confirm.deal_reference})

    async def confirms(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        ref = request.path_params["deal_reference"]
        lost = self._lost_confirms.pop(ref, None)
        if lost is not None:
            return self._port_error(request, lost, trading=False)
        confirm = self._undelivered.pop(ref, None)
        if confirm is None:
            try:
                confirm = await self.sim.confirm(ref)
            except BrokerError as error:
                return self._port_error(request, error, trading=False)
        if confirm is None:
            return _error(404, "error.confirms.deal-not-found")
        return _json(200, self._confirm_json(confirm))

    async def positions(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        try:
            positions = await self.sim.positions()
        except BrokerError as error:
            return self._port_error(request, error, trading=False)
        version = self._version(request)
        return _json(200, {"positions": [self._position_json(p, version) for p in positions]})

    async def activity(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        try:
            since = parse_ig_date(request.query_params.get("from", ""))
        except ValueError:
            return _error(400, "invalid.input.from")
        try:
            deals = await self.sim.activity(since)
        except BrokerError as error:
            return self._port_error(request, error, trading=False)
        body = {
            "activities": [self._activity_json(d) for d in reversed(deals)],  # newest first
            "metadata": {"paging": {"size": len(deals), "next": None}},
        }
        return _json(200, body)

    async def position(self, request: Request) -> Response:
        refused = self._check_auth(request)
        if refused is not None:
            return refused
        deal_id = request.path_params["deal_id"]
        for position in self.sim.snapshot_positions():
            if position.deal_id == deal_id:
                return _json(200, self._position_json(position, self._version(request)))
        return _error(404, "error.position.notfound")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, "invalid.url")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, "invalid.url")


def create_app(
    sim: SimBroker,
    *,
    api_key: str = DEFAULT_API_KEY,
    identifier: str = DEFAULT_IDENTIFIER,
    password: str = DEFAULT_PASSWORD,
    account_id: str = DEFAULT_ACCOUNT_ID,
    account_name: str = "Sim spread bet",
    account_type: str = "SPREADBET",
    client_id: str = "100000001",
    expiry: str = "DFB",
    stream_keepalive_ms: int = 1000,
    stream_replay: int = 3,
) -> Starlette:
    """A Starlette app answering IG's REST dialect from `sim`, and its trade stream over
    Lightstreamer's TLCP (`ig_tlcp`). `app.state.ig` is the `IGHttpState` (sessions,
    `expire_sessions()`, `logins`), `app.state.tlcp` the `TlcpState` (stream seams)."""
    state = IGHttpState(
        sim,
        api_key=api_key,
        identifier=identifier,
        password=password,
        account_id=account_id,
        account_name=account_name,
        account_type=account_type,
        client_id=client_id,
        expiry=expiry,
    )
    routes = [
        Route("/session", state.session, methods=["GET", "POST", "PUT", "DELETE"]),
        Route("/session/refresh-token", state.refresh_token, methods=["POST"]),
        Route("/accounts", state.accounts, methods=["GET"]),
        Route("/markets/{epic}", state.market, methods=["GET"]),
        Route("/positions", state.positions, methods=["GET"]),
        Route("/positions/otc", state.positions_otc, methods=["POST", "DELETE"]),
        Route("/positions/{deal_id}", state.position, methods=["GET"]),
        Route("/confirms/{deal_reference}", state.confirms, methods=["GET"]),
        Route("/history/activity", state.activity, methods=["GET"]),
    ]
    tlcp = TlcpState(
        sim,
        account_id=account_id,
        credentials_valid=state.streaming_credentials_valid,
        confirm_json=state.streamed_confirm_json,
        opu_json=state.streamed_opu_json,
        keepalive_ms=stream_keepalive_ms,
        replay=stream_replay,
    )
    app = Starlette(
        routes=[*routes, Mount("/gateway/deal", routes=routes), *tlcp.routes()],
        exception_handlers={404: _not_found, 405: _method_not_allowed},
    )
    app.state.ig = state
    app.state.tlcp = tlcp
    return app


# ---------------------------------------------------------------------- in-process seams


class _InProcess:
    """ASGI wrapper marking requests as in-process, so refusals raise instead of answering."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.app({**scope, _IN_PROCESS: True}, receive, send)


class SimASGITransport(httpx.ASGITransport):
    """`httpx.ASGITransport` for the sim app: an injected BrokerUnavailable arrives as
    `httpx.ConnectError`, exactly as a refused connection would."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app=_InProcess(app), **kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except SimConnectionRefused as exc:
            raise httpx.ConnectError(f"sim: connection refused ({exc})", request=request) from exc


def sim_transport(sim: SimBroker, **app_kwargs: Any) -> SimASGITransport:
    return SimASGITransport(create_app(sim, **app_kwargs))


def sim_router(
    sim: SimBroker | None = None,
    base_url: str = SIM_BASE_URL,
    *,
    app: Any = None,
    **app_kwargs: Any,
) -> respx.MockRouter:
    """A respx router whose catch-all route (named `SIM_ROUTE`) forwards every request under
    `base_url` to the sim app in-process. Use it with
    `httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler))`, or as a context
    manager to patch httpx globally. Add fault routes, then `keep_sim_route_last(router)`."""
    if app is None:
        if sim is None:
            raise ValueError("sim_router needs a sim or an app")
        app = create_app(sim, **app_kwargs)
    router = respx.MockRouter(base_url=base_url, assert_all_called=False)
    router.route(name=SIM_ROUTE).mock(side_effect=AsyncTransportHandler(SimASGITransport(app)))
    return router


def keep_sim_route_last(router: respx.Router) -> None:
    """Move the sim's catch-all route behind the routes added after it (first match wins)."""
    router.add(router.pop(SIM_ROUTE), name=SIM_ROUTE)


# ---------------------------------------------------------------------- on a socket


class LoopbackServer:
    """uvicorn serving `app` on `host` in a background thread.

    `port=0` binds a free port; `base_url` is then e.g. "http://127.0.0.1:49152". Start waits
    (polling, bounded by `start_timeout`) until uvicorn reports it is serving.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, *, start_timeout: float = 10.0
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        # proto named explicitly: asyncio sets TCP_NODELAY on accepted connections only when
        # it is, and without it every kept-alive answer waits on a delayed ACK (~40 ms).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, http="h11", lifespan="off", log_level="warning", access_log=False
        )
        server = _server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sim-ig-http", daemon=True
        )
        self._server, self._thread, self._socket = server, thread, sock
        thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not server.started:
            if not thread.is_alive():
                self.stop()
                raise RuntimeError("the loopback server exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the loopback server did not start in {self.start_timeout}s")
            time.sleep(0.01)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the loopback server did not stop in {timeout}s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> LoopbackServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ExpectedUpgradeRefusal(logging.Filter):
    """Drops uvicorn's warnings about a refused WebSocket upgrade: the Lightstreamer client
    asks for WebSocket first by design and falls back to HTTP streaming, which is all this
    server speaks, so the refusal is the expected path and not worth a line per session."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not message.startswith(("Unsupported upgrade", "No supported WebSocket"))


def _server(config: uvicorn.Config) -> uvicorn.Server:
    server = uvicorn.Server(config)  # Config has set up uvicorn's loggers by now
    logging.getLogger("uvicorn.error").addFilter(_ExpectedUpgradeRefusal())
    return server


def serve_broker(
    host: str = "127.0.0.1",
    port: int = 8766,
    *,
    fd: int | None = None,
    sim: SimBroker | None = None,
    **app_kwargs: Any,
) -> None:
    """Serve a SimBroker (a fresh one by default) in IG's REST dialect, in the foreground.
    With `fd`, on that inherited listening socket instead of host and port (so the parent
    that bound it knows the port before this process starts)."""
    app = create_app(sim if sim is not None else SimBroker(), **app_kwargs)
    config = uvicorn.Config(app, host=host, port=port, http="h11", lifespan="off", log_level="info")
    _server(config).run(sockets=None if fd is None else [socket.socket(fileno=fd)])


__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_API_KEY",
    "DEFAULT_IDENTIFIER",
    "DEFAULT_PASSWORD",
    "SIM_BASE_URL",
    "SIM_ROUTE",
    "IGHttpState",
    "LoopbackServer",
    "SimASGITransport",
    "SimConnectionRefused",
    "create_app",
    "keep_sim_route_last",
    "serve_broker",
    "sim_router",
    "sim_transport",
]
