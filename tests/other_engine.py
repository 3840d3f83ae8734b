"""Another team's engine, for the worked adapter of docs/engine-contract.md.

The SOLAT core (OsFileSystem on `--state`, IGRestBroker at $MYENGINE_IG_URL with IG_API_KEY,
IG_IDENTIFIER, IG_PASSWORD, the system clock, no test clock) behind a different HTTP API:
it trades only after `POST /connect` and `POST /arm`, calls its kill switch reset
`/execution/kill-switch/reset`, and exposes no ledger.

    python -m tests.other_engine --listen 127.0.0.1:PORT --state DIR

With MYENGINE_FORGETS_KILL_SWITCH=1 it has a real defect: it clears its kill switch at every
start, so an activation it reported persisted does not survive a restart.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from solat_chaos.api.serve import broker_credentials
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.engine.durable_switch import SwitchStatus
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.router import OrderIntent, OrderResult

FORGETS_KILL_SWITCH = "MYENGINE_FORGETS_KILL_SWITCH"


def _refused(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"result": "REJECTED", "client_ref": None, "reason": reason}, status)


def _order(result: OrderResult) -> JSONResponse:
    return JSONResponse(
        {
            "result": str(result.status),
            "client_ref": result.deal_reference,
            "deal_id": result.deal_id,
            "filled": result.filled_size,
            "reason": result.reason,
        }
    )


def _switch(status: SwitchStatus) -> JSONResponse:
    return JSONResponse(
        {"active": status.active, "persisted": status.persisted, "reason": status.reason}
    )


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def create_app(engine: Engine) -> Starlette:
    steps: set[str] = set()  # /connect and /arm, once each per process

    def step(name: str):
        async def endpoint(request: Request) -> JSONResponse:
            steps.add(name)
            return JSONResponse({name: True})

        return endpoint

    async def status(request: Request) -> JSONResponse:
        health = engine.health()
        return JSONResponse(
            {
                "state": health.status,
                "mode": health.trading_state,
                "unknown_orders": health.in_doubt,
            }
        )

    async def orders(request: Request) -> JSONResponse:
        if steps != {"connect", "arm"}:
            return _refused(409, "not connected and armed: POST /connect, then /arm")
        body = await _body(request)
        try:
            intent = OrderIntent(str(body["instrument"]), str(body["side"]), float(body["qty"]))
        except (KeyError, TypeError, ValueError) as e:
            return _refused(422, f"an order needs instrument, side and a numeric qty: {e!r}")
        return _order(await engine.submit_order_intent(intent))

    async def close(request: Request) -> JSONResponse:
        deal_id = request.path_params["deal_id"]
        if deal_id not in engine.positions():
            return _refused(404, f"no open position {deal_id!r}")
        qty = (await _body(request)).get("qty")
        if qty is not None and not isinstance(qty, (int, float)):
            return _refused(422, "qty must be a number or null")
        return _order(await engine.close_position(deal_id, qty))

    async def positions(request: Request) -> JSONResponse:
        book = engine.positions().values()
        return JSONResponse([{"deal_id": p.deal_id, "qty": p.size} for p in book])

    async def reconcile(request: Request) -> JSONResponse:
        report = await engine.reconcile()
        return JSONResponse({"ok": report.ok, "pending": len(report.deferred)})

    async def activate(request: Request) -> JSONResponse:
        return _switch(engine.activate_kill_switch("activated over the API"))

    async def reset(request: Request) -> JSONResponse:
        return _switch(engine.deactivate_kill_switch("reset over the API"))

    async def switch(request: Request) -> JSONResponse:
        return _switch(engine.kill_switch.status)

    return Starlette(
        routes=[
            Route("/connect", step("connect"), methods=["POST"]),
            Route("/arm", step("arm"), methods=["POST"]),
            Route("/status", status, methods=["GET"]),
            Route("/orders", orders, methods=["POST"]),
            Route("/positions/{deal_id}/close", close, methods=["POST"]),
            Route("/positions", positions, methods=["GET"]),
            Route("/reconcile", reconcile, methods=["POST"]),
            Route("/execution/kill-switch/activate", activate, methods=["POST"]),
            Route("/execution/kill-switch/reset", reset, methods=["POST"]),
            Route("/execution/kill-switch", switch, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="myengine")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT")
    parser.add_argument("--state", required=True, metavar="DIR")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    os.makedirs(args.state, exist_ok=True)
    broker = IGRestBroker(os.environ["MYENGINE_IG_URL"], **broker_credentials(os.environ))
    engine = Engine.open(args.state, broker)
    if os.environ.get(FORGETS_KILL_SWITCH):
        engine.deactivate_kill_switch("a fresh start")  # the planted defect
    uvicorn.run(create_app(engine), host=host, port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
