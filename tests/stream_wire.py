"""The trade stream over the wire, for tests: the SimBroker's IG app (REST and TLCP) on a
loopback socket, IGRestBroker logged in over it, and IGTradeStream on the real
`lightstreamer-client-lib`, with timers short enough that a fault plays out in a second or
two. `open_wire` stops the client, the REST client and the server, and checks that no
thread outlived them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs

from solat_chaos.broker.ig_http import (
    DEFAULT_API_KEY,
    DEFAULT_IDENTIFIER,
    DEFAULT_PASSWORD,
    LoopbackServer,
    create_app,
)
from solat_chaos.broker.ig_rest import IGRestBroker
from solat_chaos.broker.ig_stream import IGTradeStream, StreamTimings
from solat_chaos.broker.ig_tlcp import TlcpState
from solat_chaos.broker.sim import SimBroker
from solat_chaos.engine.stream import StreamProtocolError, StreamState, StreamStatus, TradeUpdate

# The library accepts any positive number of milliseconds; these are as low as they can go
# while a healthy loopback stream (probes every 50 ms) on a loaded 2-core machine never looks
# stalled: half a second of silence is a stall.
FAST = StreamTimings(
    keepalive_ms=50,
    stalled_ms=500,
    reconnect_ms=1000,
    retry_delay_ms=100,
    first_retry_max_delay_ms=10,
    session_recovery_ms=5000,
    keepalive=0.05,
    server_error_retry=0.1,
)
# lightstreamer-client-lib passes ssl=None to aiohttp on every request.
LIBRARY_WARNINGS = "ignore:ssl=None is deprecated:DeprecationWarning"
WAIT = 10.0  # seconds any one condition may take before a test fails


async def until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> None:
    """Poll `condition` on the loop until it holds; fail with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


@attrs.define
class RecordingListener:
    """A StreamListener that records every call and the thread it came on."""

    calls: list[tuple[str, Any]] = attrs.Factory(list)
    threads: set[int] = attrs.Factory(set)

    def _record(self, kind: str, value: Any) -> None:
        self.threads.add(threading.get_ident())
        self.calls.append((kind, value))

    def on_update(self, update: TradeUpdate) -> None:
        self._record("update", update)

    def on_status(self, status: StreamStatus) -> None:
        self._record("status", status)

    def on_subscribed(self) -> None:
        self._record("subscribed", None)

    def on_keepalive(self) -> None:
        self._record("keepalive", None)

    def on_protocol_error(self, error: StreamProtocolError) -> None:
        self._record("protocol_error", error)

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.calls if k == kind]

    @property
    def updates(self) -> list[TradeUpdate]:
        return self.of("update")

    @property
    def statuses(self) -> list[StreamStatus]:
        return self.of("status")

    def connected_sessions(self) -> list[str | None]:
        return [s.session_id for s in self.statuses if s.state is StreamState.CONNECTED]

    def count(self, kind: str) -> int:
        return len(self.of(kind))


@attrs.define
class Wire:
    sim: SimBroker
    server: LoopbackServer
    rest: IGRestBroker
    stream: IGTradeStream

    @property
    def tlcp(self) -> TlcpState:
        return self.server.app.state.tlcp


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


@asynccontextmanager
async def open_wire(
    sim: SimBroker | None = None,
    *,
    replay: int = 3,
    timings: StreamTimings = FAST,
    start: bool = True,
) -> AsyncIterator[Wire]:
    """Serve `sim` on loopback; yield the REST adapter and the stream adapter on it. The
    stream is not started: `wire.stream.start(listener)` on the test's loop."""
    sim = sim if sim is not None else SimBroker()
    before = _threads()
    server = LoopbackServer(create_app(sim, stream_keepalive_ms=50, stream_replay=replay))
    server.start()
    rest = IGRestBroker(
        server.base_url,
        api_key=DEFAULT_API_KEY,
        identifier=DEFAULT_IDENTIFIER,
        password=DEFAULT_PASSWORD,
        confirm_retry_delay=0.0,
    )
    stream = IGTradeStream(rest.streaming_credentials, timings=timings)
    try:
        yield Wire(sim, server, rest, stream)
    finally:
        stream.stop()
        await rest.aclose()
        # The client closes its stream connection from a thread other than its I/O loop's
        # (`HttpClientPy.dispose`), so the close can lag; the server ends what is left.
        server.app.state.tlcp.shutdown()
        await until(lambda: server.app.state.tlcp.open_streams == 0, "the streams to close")
        server.stop()
        # The library's own threads (LS_IO and two executors) start when it is imported,
        # before `before` was taken; nothing started since may outlive the wire.
        await until(lambda: _threads() <= before, "the server's and the client's threads to end")
