"""The HTTP API of one engine (DESIGN.md, "API"): Starlette routes over `Engine`.

Who may call what: reads and kill-switch activation from loopback need no token (stopping
must never be hard); deactivation, orders, closes and reconcile need `Authorization: Bearer
<token>`; with `reads_need_token` (a service that allows remote clients) every endpoint does.
Every bad request is answered 4xx with `{"error": ..., "field": ...}` naming what is wrong;
nothing a client sends reaches the engine unvalidated.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from solat_chaos.api.openapi import DEAL_ID_PATTERN, openapi_document, request_schemas
from solat_chaos.api.panel import PANEL_HTML
from solat_chaos.api.token import bearer_matches
from solat_chaos.engine.durable_switch import SwitchStatus
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.records import encode
from solat_chaos.engine.router import OrderIntent, OrderResult

log = logging.getLogger("solat_chaos.api")

READ, ACTIVATE, MUTATE = "read", "activate", "mutate"
_DEAL_ID = re.compile(DEAL_ID_PATTERN)

Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """A request the API refuses: its status, what is wrong, and the field it is about."""

    def __init__(self, status: int, error: str, field: str | None) -> None:
        super().__init__(error)
        self.status, self.error, self.field = status, error, field

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "field": self.field}, status_code=self.status)


# ---------------------------------------------------------------------------- request bodies


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


async def read_body(request: Request, schema: dict[str, Any], *, required: bool) -> dict:
    """The request's JSON object, checked against `schema` (one of `request_schemas`)."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest(422, "a JSON object body is required", "body")
        return {}
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:
        raise BadRequest(400, f"the body is not valid JSON: {e}", "body") from None
    if not isinstance(data, dict):
        raise BadRequest(400, f"the body must be a JSON object, not {type(data).__name__}", "body")
    return _validate(data, schema)


def _validate(data: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, dict[str, Any]] = schema["properties"]
    for name in data:
        if name not in properties:
            raise BadRequest(422, f"unknown field {name!r}", name)
    for name in schema.get("required", ()):
        if name not in data:
            raise BadRequest(422, f"{name} is required", name)
    for name, value in data.items():
        _check_field(name, value, properties[name])
    return data


def _check_field(name: str, value: Any, rule: dict[str, Any]) -> None:
    if rule["type"] == "string":
        if not isinstance(value, str):
            raise BadRequest(422, f"{name} must be a string", name)
        if len(value) > rule.get("maxLength", len(value)):
            raise BadRequest(422, f"{name} is longer than {rule['maxLength']} characters", name)
    elif rule["type"] == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(422, f"{name} must be a number", name)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            raise BadRequest(422, f"{name} must be a finite number", name)
        if "exclusiveMinimum" in rule and not value > rule["exclusiveMinimum"]:
            raise BadRequest(422, f"{name} must be more than {rule['exclusiveMinimum']}", name)
    if "enum" in rule and value not in rule["enum"]:
        raise BadRequest(422, f"{name} must be one of {', '.join(rule['enum'])}", name)


# ---------------------------------------------------------------------------- answers


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def switch_json(status: SwitchStatus) -> dict[str, Any]:
    return attrs.asdict(status)


def order_json(result: OrderResult) -> dict[str, Any]:
    return {**attrs.asdict(result), "status": str(result.status)}


def health_json(engine: Engine) -> dict[str, Any]:
    health = engine.health().to_json()
    health["ages"] = {name: _finite_or_none(age) for name, age in health["ages"].items()}
    return health


def positions_json(engine: Engine) -> dict[str, Any]:
    return {"positions": [attrs.asdict(p) for p in engine.positions().values()]}


# ---------------------------------------------------------------------------- the app


def _from_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _tick_forever(engine: Engine, interval: float) -> None:
    while True:
        try:
            await engine.tick()
        except Exception:  # a bug in one tick must not stop the next reconcile
            log.exception("engine tick failed")
        await asyncio.sleep(interval)


def create_app(
    engine: Engine,
    token: str,
    *,
    reads_need_token: bool = False,
    tick_interval: float | None = 1.0,
    started: Callable[[], None] | None = None,
    stopping: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """The API over `engine`. With `tick_interval` the app calls `engine.tick()` that often
    while it runs (its lifespan); `started` and `stopping` are the host's hooks around it."""
    schemas = request_schemas(engine.config.epics)
    document = openapi_document(engine.config.epics, reads_need_token=reads_need_token)

    def guarded(access: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            open_to_caller = not reads_need_token and (
                access == READ or (access == ACTIVATE and _from_loopback(request))
            )
            if not open_to_caller and not bearer_matches(
                request.headers.get("authorization"), token
            ):
                return BadRequest(
                    401, "this call needs Authorization: Bearer <token>", "Authorization"
                ).response()
            try:
                return await handler(request)
            except BadRequest as refused:
                return refused.response()

        return endpoint

    async def activate(request: Request) -> Response:
        body = await read_body(request, schemas["SwitchRequest"], required=False)
        reason = body.get("reason") or "activated over the API"
        return JSONResponse(switch_json(engine.activate_kill_switch(reason)))

    async def deactivate(request: Request) -> Response:
        body = await read_body(request, schemas["SwitchRequest"], required=False)
        reason = body.get("reason") or "deactivated over the API"
        return JSONResponse(switch_json(engine.deactivate_kill_switch(reason)))

    async def kill_switch_status(request: Request) -> Response:
        return JSONResponse(switch_json(engine.kill_switch.status))

    async def health(request: Request) -> Response:
        return JSONResponse(health_json(engine))

    async def positions(request: Request) -> Response:
        return JSONResponse(positions_json(engine))

    async def submit(request: Request) -> Response:
        body = await read_body(request, schemas["OrderIntent"], required=True)
        intent = OrderIntent(body["epic"], body["direction"], float(body["size"]))
        return JSONResponse(order_json(await engine.submit_order_intent(intent)))

    async def close(request: Request) -> Response:
        deal_id = request.path_params["deal_id"]
        if not _DEAL_ID.fullmatch(deal_id):
            raise BadRequest(422, "deal_id must be 1-64 of A-Z a-z 0-9 . _ : -", "deal_id")
        body = await read_body(request, schemas["CloseRequest"], required=False)
        if deal_id not in engine.positions():
            raise BadRequest(404, f"no open position {deal_id!r}", "deal_id")
        size = float(body["size"]) if "size" in body else None
        return JSONResponse(order_json(await engine.close_position(deal_id, size)))

    async def reconcile(request: Request) -> Response:
        report = await engine.reconcile()
        return JSONResponse(
            {
                "ok": report.ok,
                "error": report.error,
                "records": [encode(record) for record in report.records],
                "deferred": list(report.deferred),
            }
        )

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    async def panel(request: Request) -> Response:
        return HTMLResponse(PANEL_HTML)

    async def not_found(request: Request, exc: Exception) -> Response:
        return BadRequest(404, f"no such path: {request.url.path}", None).response()

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return BadRequest(405, f"{request.method} is not allowed here", None).response()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticking = None
        if tick_interval:
            ticking = asyncio.create_task(_tick_forever(engine, tick_interval))
        try:
            if started is not None:
                started()
            yield
        finally:
            if ticking is not None:
                ticking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticking
            if stopping is not None:
                await stopping()

    routes = [
        ("/execution/kill-switch/activate", "POST", ACTIVATE, activate),
        ("/execution/kill-switch/deactivate", "POST", MUTATE, deactivate),
        ("/execution/kill-switch/status", "GET", READ, kill_switch_status),
        ("/health", "GET", READ, health),
        ("/execution/positions", "GET", READ, positions),
        ("/execution/orders", "POST", MUTATE, submit),
        ("/execution/positions/{deal_id}/close", "POST", MUTATE, close),
        ("/execution/reconcile", "POST", MUTATE, reconcile),
        ("/openapi.json", "GET", READ, openapi),
        ("/", "GET", READ, panel),
    ]
    return Starlette(
        routes=[
            Route(path, guarded(access, handler), methods=[method])
            for path, method, access, handler in routes
        ],
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )
