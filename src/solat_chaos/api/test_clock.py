"""A clock a test harness holds: `solat-chaos serve --test-clock EPOCH` (for tests only).

With it the engine's time starts at EPOCH and moves only when the harness says so, through
`POST /test/clock/advance` (token required): `{"seconds": S}` moves it S seconds,
`{"next_timer": true}` to the engine's next timer (a reconcile due, the balance or the broker
going stale, an order's in-doubt grace ending). Either way the engine then does its periodic
work once (`Engine.tick`), as its own timer would, and the answer says how far time moved.
The background tick is off: nothing happens on the engine's clock that the harness did not
start, so a black-box run replays.

Waiting does not move this clock either (`sleep` only yields): a Retry-After or a read's
backoff passes at once, and the harness's copy of the time stays exact.

The trade stream keeps speaking while time passes: a jump moves the clock in steps no longer
than the stream's keepalive interval and, at each, the stream reports what its connection
really says (alive, or stalled). So a jump over a live stream is not silence, and one over a
dead stream is, whatever real time the request happened to take.

`GET /test/stream` (token required) answers `{"session": ID or null, "updates": N}`: the
trade stream session the engine reads and how many of its updates the engine has handled.
A harness compares it with what the broker sent on that session, and looks at the engine
only once the engine has caught up: the stream's real-time delivery then never decides what
a step sees.
"""

from __future__ import annotations

import asyncio
import json
import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from solat_chaos.api.token import bearer_matches
from solat_chaos.broker.ig_stream import IGTradeStream
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.engine import Engine

ADVANCE_PATH = "/test/clock/advance"
STREAM_PATH = "/test/stream"
# Past a timer's threshold, not on it: ages are compared with `>`.
PAST = 0.001


class HeldClock(SimClock):
    """A SimClock on which waiting takes no time."""

    def __init__(self, start: float) -> None:
        super().__init__(start)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def seconds_to_next_timer(engine: Engine) -> float:
    """How far the engine's clock must move for its next timer to fire."""
    config, clock = engine.config, engine.clock
    now, monotonic = clock.now(), clock.monotonic()
    timers = [engine.reconcile_due_in() or config.reconcile_interval]
    view = engine.balance.view()
    if view is not None:
        timers.append(min(config.balance_ttl, config.health.balance) - engine.balance.age)
    if engine.link.last_ok is not None:
        timers.append(config.health.broker - (monotonic - engine.link.last_ok))
    for intent in engine.journal.audit.unresolved():
        timers.append(intent.at + config.in_doubt_grace - now)
    return min(t for t in timers if t > 0) + PAST if any(t > 0 for t in timers) else PAST


def clock_routes(
    engine: Engine, clock: HeldClock, token: str, stream: IGTradeStream | None = None
) -> list[Route]:
    """The test-only routes; `stream` is the engine's trade stream, if it has one."""

    def move(seconds: float) -> None:
        if stream is None:
            clock.advance(seconds)
            return
        step = stream.timings.keepalive
        while seconds > 0:
            clock.advance(min(step, seconds))
            seconds -= step
            stream.prove_alive()

    async def advance(request: Request) -> Response:
        if not bearer_matches(request.headers.get("authorization"), token):
            return _unauthorized()
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as e:
            return _refused(400, f"the body is not valid JSON: {e}", "body")
        if not isinstance(body, dict) or set(body) - {"seconds", "next_timer"}:
            return _refused(422, 'send {"seconds": S} or {"next_timer": true}', "body")
        if body.get("next_timer") is True:
            seconds = seconds_to_next_timer(engine)
        else:
            seconds = body.get("seconds")
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                return _refused(422, "seconds must be a number", "seconds")
            if not (math.isfinite(seconds) and seconds >= 0):
                return _refused(422, "seconds must be finite and >= 0", "seconds")
        move(float(seconds))
        report = await engine.tick()
        return JSONResponse(
            {
                "advanced": seconds,
                "now": clock.now(),
                "reconciled": None if report is None else report.ok,
            }
        )

    async def stream_progress(request: Request) -> Response:
        if not bearer_matches(request.headers.get("authorization"), token):
            return _unauthorized()
        session, updates = (None, 0) if stream is None else stream.progress
        return JSONResponse({"session": session, "updates": updates})

    return [
        Route(ADVANCE_PATH, advance, methods=["POST"]),
        Route(STREAM_PATH, stream_progress, methods=["GET"]),
    ]


def _unauthorized() -> JSONResponse:
    return _refused(401, "this call needs Authorization: Bearer <token>", "Authorization")


def _refused(status: int, error: str, field: str) -> JSONResponse:
    return JSONResponse({"error": error, "field": field}, status_code=status)
