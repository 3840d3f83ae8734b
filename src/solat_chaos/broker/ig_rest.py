"""IGRestBroker: the engine's `Broker` adapter for IG's REST trading API, over httpx.

Calls
-----
- session: `POST /session` Version 2 (identifier, password, X-IG-API-KEY) → CST and
  X-SECURITY-TOKEN headers; `PUT /session` if a configured account differs from the current one.
  Logged in lazily on the first call. A 401 whose errorCode says a token is missing or invalid
  (`error.security.client-token-*`, `account-token-*`, `oauth-token-invalid`) triggers one fresh
  login and exactly one retry of the call; IG checks tokens before dealing, so a 401 order did
  not execute and re-sending it is safe. A second 401 is a refusal (BrokerRejected).
- open: `POST /positions/otc` Version 2 with the client's deal reference (`forceOpen: true`, so
  opposite positions never net), then `GET /confirms/{ref}` (retried a few times on IG's
  transient `error.confirms.deal-not-found`).
- close: `POST /positions/otc` with `_method: DELETE`, Version 1 (dealId, direction, size,
  orderType MARKET, plus the client's `dealReference`, which IG's close request does not
  document: the reference the broker answers with is the one confirmed), then the confirm.
- confirm: `GET /confirms/{ref}`; 404 `error.confirms.deal-not-found` → None.
- positions: `GET /positions` Version 2. account: `GET /accounts`, the session's current account
  (else the preferred one).
- activity: `GET /history/activity` Version 3, `detailed=true`, one page of at most
  `ACTIVITY_PAGE_SIZE`; a further page (`metadata.paging.next`) is a BrokerProtocolError rather
  than a silently short history. Only accepted POSITION activities with a position action are
  returned, oldest first; `deal_id` is the position's (the action's `affectedDealId`).

Failure mapping (what the engine may conclude)
----------------------------------------------
- Transport, before the request left: httpx.ConnectError, ConnectTimeout, PoolTimeout,
  UnsupportedProtocol, ProxyError, InvalidURL → BrokerUnavailable (not sent).
- Transport, after the connection was made (ReadTimeout, WriteTimeout, ReadError, WriteError,
  RemoteProtocolError, LocalProtocolError, ...) → BrokerTimeout (outcome unknown). For reads the
  distinction is moot; they are mapped the same way for one rule.
- 429, or errorCode `error.public-api.exceeded-{account,api-key,account-trading}-allowance`
  (IG sends these with 403) → BrokerRateLimited, `retry_after` from a numeric Retry-After header,
  else `default_retry_after`.
- 5xx on an order call → BrokerTimeout: IG may have booked the deal before failing (a 500
  `system.error` or a gateway 502/503/504 after forwarding), so the outcome is unknown and must
  be resolved by the deal reference, never by resending. 5xx on a read → BrokerUnavailable,
  except 504 → BrokerTimeout (the gateway gave up waiting).
- other 4xx → BrokerRejected(errorCode, or "HTTP <status>" without one): refused, not executed.
- any failure after an order's POST succeeded (reading its confirm) → BrokerTimeout: the order
  was sent, so "not sent" or "rate limited" would be false. BrokerProtocolError stays as is.
- a 2xx whose body is not JSON, misses a field, has a wrong type, a negative / NaN / infinite
  size, an unknown dealStatus, a deal reference other than the one asked for, ... →
  BrokerProtocolError naming the field (`size`, `positions[2].position.dealId`, ...). Every
  field is validated before any record is built, so a bad answer never yields partial state.
- login failures during a call: transport errors, 5xx and unreadable login answers →
  BrokerUnavailable (the call itself was not sent); 4xx → BrokerRejected; allowance →
  BrokerRateLimited.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import attrs
import httpx

from solat_chaos.engine.broker import (
    ACCEPTED,
    ACTIVITY_ACTIONS,
    DEAL_STATUSES,
    DIRECTIONS,
    REJECTED,
    Account,
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
    valid_size,
)

IG_DEMO_URL = "https://demo-api.ig.com/gateway/deal"
IG_LIVE_URL = "https://api.ig.com/gateway/deal"

RATE_LIMIT_CODES = frozenset(
    {
        "error.public-api.exceeded-account-allowance",
        "error.public-api.exceeded-api-key-allowance",
        "error.public-api.exceeded-account-trading-allowance",
    }
)
SESSION_ERROR_CODES = frozenset(
    {
        "error.security.client-token-invalid",
        "error.security.client-token-missing",
        "error.security.account-token-invalid",
        "error.security.account-token-missing",
        "error.security.oauth-token-invalid",
    }
)
DEAL_NOT_FOUND = "error.confirms.deal-not-found"
POSITION_STATUSES = ("OPEN", "CLOSED", "PARTIALLY_CLOSED", "AMENDED", "DELETED")
ACTIVITY_PAGE_SIZE = 500
IG_DATE = "%Y-%m-%dT%H:%M:%S"

_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
)

Sleep = Callable[[float], Awaitable[None]]


# ---------------------------------------------------------------------- strict parsing


def parse_ig_date(text: str) -> float:
    """IG's activity date (`2026-01-01T12:00:00`, UTC) as epoch seconds; ValueError if not."""
    return datetime.strptime(text, IG_DATE).replace(tzinfo=UTC).timestamp()


def format_ig_date(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime(IG_DATE)


def _fail(field: str | None, problem: str) -> BrokerProtocolError:
    where = f"field {field!r}" if field else "body"
    return BrokerProtocolError(f"IG answer: {where} {problem}", field=field)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _object(value: Any, field: str | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(field, f"is not an object: {type(value).__name__}")
    return value


def _str(obj: dict[str, Any], key: str, field: str, *, nullable: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if nullable:
            return None
        raise _fail(field, "is missing")
    if not isinstance(value, str):
        raise _fail(field, f"is not a string: {value!r}")
    if not nullable and not value:
        raise _fail(field, "is empty")
    return value


def _enum(
    obj: dict[str, Any], key: str, field: str, allowed: tuple[str, ...], *, nullable: bool = False
) -> str | None:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if value not in allowed:
        raise _fail(field, f"is not one of {allowed}: {value!r}")
    return value


def _finite(obj: dict[str, Any], key: str, field: str, *, nullable: bool = False) -> float | None:
    value = obj.get(key)
    if value is None:
        if nullable:
            return None
        raise _fail(field, "is missing")
    if not _is_number(value) or not math.isfinite(value):
        raise _fail(field, f"is not a finite number: {value!r}")
    return float(value)


def _size(obj: dict[str, Any], key: str, field: str) -> float:
    value = obj.get(key)
    if value is None:
        raise _fail(field, "is missing")
    if not valid_size(value):
        raise _fail(field, f"is not a finite size > 0: {value!r}")
    return float(value)


def decode_json(content: bytes) -> Any:
    """JSON of an answer body, or BrokerProtocolError (field None) if it is not JSON."""
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BrokerProtocolError(f"IG answer is not JSON: {exc}", field=None) from exc


def parse_confirm_details(body: Any, *, deal_reference: str) -> tuple[DealConfirm, tuple[str, ...]]:
    """A `GET /confirms/{ref}` body → (DealConfirm, affected deal ids), validated in full.

    ACCEPTED needs dealId, epic, direction and a size > 0; REJECTED keeps its reason and has
    no deal id and a filled size of 0. The answer must be about `deal_reference`.
    """
    obj = _object(body, None)
    ref = _str(obj, "dealReference", "dealReference")
    if ref != deal_reference:
        raise _fail("dealReference", f"is {ref!r}, asked for {deal_reference!r}")
    status = _enum(obj, "dealStatus", "dealStatus", DEAL_STATUSES)
    reason = _str(obj, "reason", "reason", nullable=True) or ""
    _enum(obj, "status", "status", POSITION_STATUSES, nullable=True)
    affected = _affected(obj.get("affectedDeals"))
    if status == ACCEPTED:
        deal_id = _str(obj, "dealId", "dealId")
        epic = _str(obj, "epic", "epic")
        direction = _enum(obj, "direction", "direction", DIRECTIONS)
        size = _size(obj, "size", "size")
        level = _finite(obj, "level", "level", nullable=True)
    else:
        _str(obj, "dealId", "dealId", nullable=True)
        epic = _str(obj, "epic", "epic", nullable=True) or ""
        direction = _enum(obj, "direction", "direction", DIRECTIONS, nullable=True) or ""
        requested = _finite(obj, "size", "size", nullable=True)
        if requested is not None and requested < 0:
            raise _fail("size", f"is negative: {requested!r}")
        _finite(obj, "level", "level", nullable=True)
        deal_id, size, level = None, 0.0, None
    confirm = DealConfirm(
        deal_reference=ref,
        status=status if status == ACCEPTED else REJECTED,
        deal_id=deal_id,
        epic=epic or "",
        direction=direction or "",
        size=size,
        level=level,
        reason=reason,
    )
    return confirm, affected


def parse_confirm(body: Any, *, deal_reference: str) -> DealConfirm:
    return parse_confirm_details(body, deal_reference=deal_reference)[0]


def _affected(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail("affectedDeals", f"is not a list: {value!r}")
    ids = []
    for i, item in enumerate(value):
        entry = _object(item, f"affectedDeals[{i}]")
        ids.append(_str(entry, "dealId", f"affectedDeals[{i}].dealId"))
        _str(entry, "status", f"affectedDeals[{i}].status")
    return tuple(ids)  # type: ignore[arg-type]


def parse_positions(body: Any) -> list[BrokerPosition]:
    """A `GET /positions` Version 2 body → positions, validated in full before any is built.

    A null `dealReference` (positions opened outside the API) becomes ""; a deal id listed twice
    is an error.
    """
    obj = _object(body, None)
    items = obj.get("positions")
    if not isinstance(items, list):
        raise _fail("positions", f"is not a list: {items!r}")
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        at = f"positions[{i}]"
        entry = _object(item, at)
        position = _object(entry.get("position"), f"{at}.position")
        market = _object(entry.get("market"), f"{at}.market")
        deal_id = _str(position, "dealId", f"{at}.position.dealId")
        if deal_id in seen:
            raise _fail(f"{at}.position.dealId", f"is listed twice: {deal_id!r}")
        seen.add(deal_id)  # type: ignore[arg-type]
        rows.append(
            {
                "deal_id": deal_id,
                "deal_reference": _str(
                    position, "dealReference", f"{at}.position.dealReference", nullable=True
                )
                or "",
                "epic": _str(market, "epic", f"{at}.market.epic"),
                "direction": _enum(position, "direction", f"{at}.position.direction", DIRECTIONS),
                "size": _size(position, "size", f"{at}.position.size"),
                "level": _finite(position, "level", f"{at}.position.level"),
            }
        )
    return [BrokerPosition(**row) for row in rows]


def parse_activity(body: Any) -> list[BrokerActivity]:
    """A `GET /history/activity` Version 3 detailed body → the position deals in it, oldest
    first, validated in full before any is built."""
    obj = _object(body, None)
    items = obj.get("activities")
    if not isinstance(items, list):
        raise _fail("activities", f"is not a list: {items!r}")
    metadata = _object(obj.get("metadata", {}), "metadata")
    paging = _object(metadata.get("paging", {}), "metadata.paging")
    if paging.get("next"):
        raise _fail("metadata.paging.next", f"more than one page of activity: {paging['next']!r}")
    deals: list[BrokerActivity] = []
    for i, item in enumerate(items):
        at = f"activities[{i}]"
        entry = _object(item, at)
        date = _str(entry, "date", f"{at}.date")
        try:
            when = parse_ig_date(date[:19])  # type: ignore[index]
        except ValueError:
            raise _fail(f"{at}.date", f"is not a date: {date!r}") from None
        _str(entry, "dealId", f"{at}.dealId")
        epic = _str(entry, "epic", f"{at}.epic")
        kind = _str(entry, "type", f"{at}.type")
        status = _str(entry, "status", f"{at}.status")
        details = _object(entry.get("details"), f"{at}.details")
        actions = details.get("actions")
        if not isinstance(actions, list):
            raise _fail(f"{at}.details.actions", f"is not a list: {actions!r}")
        moves = []
        for j, action in enumerate(actions):
            where = f"{at}.details.actions[{j}]"
            action = _object(action, where)
            action_type = _str(action, "actionType", f"{where}.actionType")
            affected = _str(action, "affectedDealId", f"{where}.affectedDealId")
            if action_type in ACTIVITY_ACTIONS:
                moves.append((action_type, affected))
        if kind != "POSITION" or status != ACCEPTED or not moves:
            continue  # a working order, an amendment, a rejection: no fill
        reference = _str(details, "dealReference", f"{at}.details.dealReference", nullable=True)
        direction = _enum(details, "direction", f"{at}.details.direction", DIRECTIONS)
        size = _size(details, "size", f"{at}.details.size")
        level = _finite(details, "level", f"{at}.details.level", nullable=True)
        for action_type, affected in moves:
            deals.append(
                BrokerActivity(
                    deal_id=affected,  # type: ignore[arg-type]
                    deal_reference=reference or "",
                    action=action_type,
                    epic=epic,  # type: ignore[arg-type]
                    direction=direction,  # type: ignore[arg-type]
                    size=size,
                    at=when,
                    level=level,
                )
            )
    return sorted(deals, key=lambda d: d.at)


def parse_account(body: Any, *, account_id: str | None) -> Account:
    """A `GET /accounts` body → the account `account_id` (else the preferred one)."""
    obj = _object(body, None)
    items = obj.get("accounts")
    if not isinstance(items, list) or not items:
        raise _fail("accounts", f"is not a non-empty list: {items!r}")
    chosen: tuple[int, dict[str, Any]] | None = None
    for i, item in enumerate(items):
        entry = _object(item, f"accounts[{i}]")
        found = _str(entry, "accountId", f"accounts[{i}].accountId")
        if account_id is not None and found == account_id:
            chosen = (i, entry)
            break
        if account_id is None and entry.get("preferred") is True and chosen is None:
            chosen = (i, entry)
    if chosen is None:
        wanted = account_id or "the preferred account"
        raise _fail("accounts", f"does not contain {wanted}")
    i, entry = chosen
    balance = _object(entry.get("balance"), f"accounts[{i}].balance")
    values = {
        key: _finite(balance, key, f"accounts[{i}].balance.{key}")
        for key in ("balance", "available", "profitLoss")
    }
    currency = _str(entry, "currency", f"accounts[{i}].currency")
    return Account(
        balance=values["balance"],  # type: ignore[arg-type]
        available=values["available"],  # type: ignore[arg-type]
        profit_loss=values["profitLoss"],  # type: ignore[arg-type]
        currency=currency,  # type: ignore[arg-type]
    )


def _reference_of(response: httpx.Response) -> str:
    body = _object(decode_json(response.content), None)
    return _str(body, "dealReference", "dealReference")  # type: ignore[return-value]


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    code = body.get("errorCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code else None


def map_transport_error(exc: Exception) -> BrokerError:
    """An httpx failure → the port error saying whether the request may have been sent."""
    if isinstance(exc, (*_NOT_SENT, httpx.InvalidURL)):
        return BrokerUnavailable(f"not sent: {type(exc).__name__}: {exc}")
    if isinstance(exc, (httpx.DecodingError, httpx.TooManyRedirects)):
        return BrokerProtocolError(f"unreadable answer: {type(exc).__name__}: {exc}")
    return BrokerTimeout(f"outcome unknown: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------- the adapter


@attrs.frozen
class StreamingCredentials:
    """What `POST /session` gives the trade stream: its endpoint, the account and the
    tokens, sent to Lightstreamer as user and password (`CST-{cst}|XST-{token}`)."""

    endpoint: str
    account_id: str
    cst: str
    security_token: str

    @property
    def password(self) -> str:
        return f"CST-{self.cst}|XST-{self.security_token}"


@attrs.define
class _Session:
    cst: str
    security_token: str
    account_id: str | None
    generation: int
    lightstreamer_endpoint: str | None = None


class IGRestBroker:
    """The `Broker` port over IG's REST API. Pass `transport` (or a whole `client`) to run it
    against the sim in-process or through fault-injecting transports."""

    def __init__(
        self,
        base_url: str = IG_DEMO_URL,
        *,
        api_key: str,
        identifier: str,
        password: str,
        account_id: str | None = None,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        currency: str = "GBP",
        expiry: str = "DFB",
        default_retry_after: float = 5.0,
        confirm_attempts: int = 3,
        confirm_retry_delay: float = 0.5,
        sleep: Sleep | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._identifier = identifier
        self._password = password
        self._wanted_account = account_id
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(transport=transport, timeout=timeout)
        self._currency = currency
        self._expiry = expiry
        self._default_retry_after = default_retry_after
        self._confirm_attempts = max(1, confirm_attempts)
        self._confirm_retry_delay = confirm_retry_delay
        self._sleep: Sleep = sleep or asyncio.sleep
        self._session: _Session | None = None
        self._generation = 0
        self._login_lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> IGRestBroker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def account_id(self) -> str | None:
        return self._session.account_id if self._session else self._wanted_account

    # ------------------------------------------------------------------ the port

    async def open_position(self, order: OpenOrder) -> DealConfirm:
        body = {
            "dealReference": order.deal_reference,
            "epic": order.epic,
            "expiry": self._expiry,
            "direction": order.direction,
            "size": order.size,
            "orderType": "MARKET",
            "currencyCode": self._currency,
            "forceOpen": True,
            "guaranteedStop": False,
        }
        response = await self._call("POST", "/positions/otc", version="2", body=body, order=True)
        ref = _reference_of(response)
        if ref != order.deal_reference:
            raise _fail("dealReference", f"is {ref!r}, sent {order.deal_reference!r}")
        confirm, _ = await self._confirm_after_order(ref)
        return confirm

    async def close_position(self, order: CloseOrder) -> DealConfirm:
        body = {
            "dealId": order.deal_id,
            "direction": order.direction,
            "size": order.size,
            "orderType": "MARKET",
            "dealReference": order.deal_reference,
        }
        response = await self._call(
            "POST",
            "/positions/otc",
            version="1",
            body=body,
            order=True,
            headers={"_method": "DELETE"},
        )
        ref = _reference_of(response)
        confirm, affected = await self._confirm_after_order(ref)
        if confirm.deal_id != order.deal_id and order.deal_id in affected:
            confirm = attrs.evolve(confirm, deal_id=order.deal_id)
        return confirm

    async def confirm(self, deal_reference: str) -> DealConfirm | None:
        response = await self._get_confirm(deal_reference)
        if response.status_code == 404 and _error_code(response) == DEAL_NOT_FOUND:
            return None
        self._raise_for_status(response, order=False)
        return parse_confirm(decode_json(response.content), deal_reference=deal_reference)

    async def positions(self) -> list[BrokerPosition]:
        response = await self._call("GET", "/positions", version="2", order=False)
        self._raise_for_status(response, order=False)
        return parse_positions(decode_json(response.content))

    async def account(self) -> Account:
        response = await self._call("GET", "/accounts", version="1", order=False)
        self._raise_for_status(response, order=False)
        return parse_account(decode_json(response.content), account_id=self.account_id)

    async def activity(self, since: float) -> list[BrokerActivity]:
        query = f"from={format_ig_date(since)}&detailed=true&pageSize={ACTIVITY_PAGE_SIZE}"
        response = await self._call("GET", f"/history/activity?{query}", version="3", order=False)
        self._raise_for_status(response, order=False)
        return parse_activity(decode_json(response.content))

    # ------------------------------------------------------------------ confirms

    async def _get_confirm(self, ref: str) -> httpx.Response:
        return await self._call("GET", f"/confirms/{quote(ref, safe='')}", version="1", order=False)

    async def _confirm_after_order(self, ref: str) -> tuple[DealConfirm, tuple[str, ...]]:
        """The confirm of an order that was sent: any failure now means "outcome unknown"."""
        for attempt in range(self._confirm_attempts):
            try:
                response = await self._get_confirm(ref)
                if response.status_code == 404 and _error_code(response) == DEAL_NOT_FOUND:
                    if attempt + 1 < self._confirm_attempts:
                        await self._sleep(self._confirm_retry_delay)
                        continue
                    raise BrokerTimeout(f"order {ref} was sent but IG has no confirm for it")
                self._raise_for_status(response, order=False)
            except BrokerProtocolError:
                raise
            except BrokerTimeout:
                raise
            except BrokerError as exc:
                raise BrokerTimeout(f"order {ref} was sent; its confirm failed: {exc}") from exc
            return parse_confirm_details(decode_json(response.content), deal_reference=ref)
        raise BrokerTimeout(f"order {ref} was sent but IG has no confirm for it")  # unreachable

    # ------------------------------------------------------------------ HTTP

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _headers(self, version: str) -> dict[str, str]:
        return {
            "X-IG-API-KEY": self._api_key,
            "Content-Type": "application/json; charset=UTF-8",
            "Accept": "application/json; charset=UTF-8",
            "Version": version,
        }

    async def _call(
        self,
        method: str,
        path: str,
        *,
        version: str,
        order: bool,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request with the session's tokens; one re-login and retry on a token 401.

        Order calls come back only with a 2xx (anything else is raised); reads come back with
        their status for the caller to judge.
        """
        content = None if body is None else json.dumps(body).encode()
        response: httpx.Response | None = None
        for attempt in range(2):
            session = await self._ensure_session()
            request_headers = self._headers(version)
            request_headers["CST"] = session.cst
            request_headers["X-SECURITY-TOKEN"] = session.security_token
            request_headers.update(headers or {})
            try:
                response = await self._client.request(
                    method, self._url(path), headers=request_headers, content=content
                )
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise map_transport_error(exc) from exc
            if (
                attempt == 0
                and response.status_code == 401
                and _error_code(response) in SESSION_ERROR_CODES
            ):
                await self._relogin(session.generation)
                continue
            break
        assert response is not None
        if order:
            self._raise_for_status(response, order=True)
        return response

    def _raise_for_status(self, response: httpx.Response, *, order: bool) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        code = _error_code(response)
        what = f"{response.request.method} {response.request.url.path}: HTTP {status} {code or ''}"
        if status == 429 or code in RATE_LIMIT_CODES:
            raise BrokerRateLimited(what, self._retry_after(response))
        if status >= 500:
            if order or status == 504:
                raise BrokerTimeout(f"outcome unknown: {what}")
            raise BrokerUnavailable(what)
        if 400 <= status < 500:
            raise BrokerRejected(code or f"HTTP {status}")
        raise BrokerProtocolError(f"unexpected status: {what}", field=None)

    def _retry_after(self, response: httpx.Response) -> float:
        raw = response.headers.get("retry-after")
        try:
            value = float(raw) if raw is not None else math.nan
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
        return self._default_retry_after

    # ------------------------------------------------------------------ session

    async def login(self) -> None:
        """Log in now (otherwise the first call does)."""
        async with self._login_lock:
            await self._login()

    async def streaming_credentials(self, refresh: bool = False) -> StreamingCredentials:
        """The stream's login from this session (logging in if needed): IG's
        `lightstreamerEndpoint`, the account id, CST and X-SECURITY-TOKEN. `refresh` logs in
        again first (the stream server refused the tokens)."""
        session = await self._ensure_session()
        if refresh:
            await self._relogin(session.generation)
            session = await self._ensure_session()
        if not session.lightstreamer_endpoint:
            raise _fail("lightstreamerEndpoint", "is missing from the login answer")
        if session.account_id is None:
            raise _fail("currentAccountId", "is missing from the login answer")
        return StreamingCredentials(
            endpoint=session.lightstreamer_endpoint,
            account_id=session.account_id,
            cst=session.cst,
            security_token=session.security_token,
        )

    async def _ensure_session(self) -> _Session:
        if self._session is not None:
            return self._session
        async with self._login_lock:
            if self._session is None:
                await self._login()
        assert self._session is not None
        return self._session

    async def _relogin(self, failed_generation: int) -> None:
        async with self._login_lock:
            if self._session is not None and self._session.generation != failed_generation:
                return  # another call already logged in again
            self._session = None
            await self._login()

    async def _login(self) -> None:
        try:
            await self._login_unchecked()
        except (BrokerRateLimited, BrokerRejected):
            raise
        except BrokerError as exc:
            raise BrokerUnavailable(f"not sent: IG login failed: {exc}") from exc

    async def _login_unchecked(self) -> None:
        body = json.dumps({"identifier": self._identifier, "password": self._password}).encode()
        try:
            response = await self._client.post(
                self._url("/session"), headers=self._headers("2"), content=body
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise map_transport_error(exc) from exc
        self._raise_for_status(response, order=False)
        cst = response.headers.get("CST")
        token = response.headers.get("X-SECURITY-TOKEN")
        if not cst:
            raise _fail("CST", "header is missing from the login answer")
        if not token:
            raise _fail("X-SECURITY-TOKEN", "header is missing from the login answer")
        answer = _object(decode_json(response.content), None)
        current = _str(answer, "currentAccountId", "currentAccountId")
        endpoint = _str(answer, "lightstreamerEndpoint", "lightstreamerEndpoint", nullable=True)
        wanted = self._wanted_account
        if wanted is not None and wanted != current:
            token = await self._switch_account(cst, token, wanted)
            current = wanted
        self._generation += 1
        self._session = _Session(cst, token, current, self._generation, endpoint)

    async def _switch_account(self, cst: str, token: str, account_id: str) -> str:
        headers = self._headers("1") | {"CST": cst, "X-SECURITY-TOKEN": token}
        body = json.dumps({"accountId": account_id, "defaultAccount": False}).encode()
        try:
            response = await self._client.put(self._url("/session"), headers=headers, content=body)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise map_transport_error(exc) from exc
        if _error_code(response) == "error.switch.accountId-must-be-different":
            return token
        self._raise_for_status(response, order=False)
        return response.headers.get("X-SECURITY-TOKEN") or token


__all__ = [
    "IG_DEMO_URL",
    "IG_LIVE_URL",
    "RATE_LIMIT_CODES",
    "SESSION_ERROR_CODES",
    "IGRestBroker",
    "StreamingCredentials",
    "decode_json",
    "map_transport_error",
    "parse_account",
    "parse_confirm",
    "parse_confirm_details",
    "parse_positions",
]
