"""IGTradeStream: the engine's `TradeStream` adapter on IG's Lightstreamer stream.

It subscribes to `TRADE:{accountId}` (fields CONFIRMS, OPU, WOU; mode DISTINCT, snapshot
asked for: a new session's snapshot is IG's replay of recent history) with the real
`lightstreamer-client-lib`, logging in with the IG session of the REST adapter: the
`credentials` callable (e.g. `IGRestBroker.streaming_credentials`) gives the
`lightstreamerEndpoint`, the account id and the CST / X-SECURITY-TOKEN pair, sent as
Lightstreamer user and password (`CST-{cst}|XST-{token}`), as IG documents.

Threads: the library calls its listeners on its own threads. Every call is moved to the
engine's event loop (the loop `start` runs on) with `loop.call_soon_threadsafe`, and dropped
there once `stop()` has run, so the port's listener only ever runs on the engine's thread.
What must be read at the moment of the call (the session id of a status) is read on the
library's thread before crossing.

The client's events onto the port:

| library                                   | port                                         |
|-------------------------------------------|----------------------------------------------|
| `CONNECTED:{WS,HTTP}-{STREAMING,POLLING}` | `on_status(CONNECTED, session_id)`           |
| `CONNECTED:STREAM-SENSING`, `CONNECTING`  | `on_status(DISCONNECTED)`: nothing can flow  |
| `STALLED`                                 | `on_status(STALLED)`                         |
| `DISCONNECTED:TRYING-RECOVERY`,           | `on_status(DISCONNECTED, detail=status)`     |
| `DISCONNECTED:WILL-RETRY`, `DISCONNECTED` |                                              |
| `onServerError(code, message)`            | `on_status(DISCONNECTED, "server error ...")`|
|                                           | then a reconnect with fresh credentials      |
|                                           | after `server_error_retry` seconds           |
| `onSubscription` (every one, also again)  | `on_subscribed()`                            |
| `onClearSnapshot`                         | `on_subscribed()`: the server says what it   |
|                                           | sent so far may not stand; like a re-sent    |
|                                           | subscription, events may have been missed    |
| `onItemLostUpdates`                       | `on_protocol_error` (updates were lost)      |
| `onSubscriptionError`, `onUnsubscription` | `on_status(DISCONNECTED, detail)`            |
|   (not asked for)                         |                                              |
| `onItemUpdate`: CONFIRMS / OPU value      | `on_update(TradeUpdate)`, or                 |
|                                           | `on_protocol_error` if it does not parse     |
| keepalive state "arrived" / "stalled"     | `on_keepalive()` / `on_status(STALLED)`      |

Keepalives and STALLED: the library reads the server's PROBEs but tells the application
nothing about them (its `ClientListener` has only onStatusChange, onServerError,
onPropertyChange, onListenStart/End), and version 1.0.3 never reports the STALLED status its
documentation describes: `notifyStatus("STALLED")` appears nowhere in
`ls_python_client_haxe.py`; its stalled timer only arms the reconnect timer, so a stall shows
as CONNECTED until DISCONNECTED:TRYING-RECOVERY. What the library does keep is its keepalive
state per streaming connection (`machine.state.s_hs.k` for HTTP streaming, `s_ws.k` /
`s_w.k` for WebSocket: 820/520/310 "something arrived within the keepalive interval",
821/521/311 "late", 822/522/312 "stalled"), restarted by every PROBE and every update. Every
`keepalive` seconds the adapter reads it: "arrived" is an `on_keepalive`, "stalled" is a
`STALLED` status (and "arrived" after it is CONNECTED again, same session). This reads the
library's internals; `keepalive_state` checks they are there (lightstreamer-client-lib 1.0.3,
the version trading-ig pins) and refuses to start otherwise. A polling transport has no
keepalive state: it is never reported alive (the engine then sees silence, i.e. blind).

Parsing is strict (`parse_confirms`, `parse_opu`): every field is checked before a
`TradeUpdate` is built; a payload that is not JSON, misses a field or has a wrong type or
value is one `StreamProtocolError` naming the field, never a partial update. WOU (working
orders, which the engine does not place) is ignored. Only values the update changed are read:
in DISTINCT mode an unchanged field still holds the previous update's value.

Timings (`StreamTimings`): the library's timers are in milliseconds and settable (keepalive
requested of the server, stalledTimeout 2000 ms, reconnectTimeout 3000 ms, retryDelay 4000 ms,
firstRetryMaxDelay 100 ms, sessionRecoveryTimeout 15000 ms by default); tests set them to
tens of milliseconds. The library's threads (`LS_IO` and two executors) are created when it is
imported and live for the process; `stop()` disconnects and leaves no other thread behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from lightstreamer.client import LightstreamerClient, Subscription

from solat_chaos.broker.ig_rest import StreamingCredentials
from solat_chaos.engine.broker import ACCEPTED, DEAL_STATUSES, DIRECTIONS, valid_size
from solat_chaos.engine.stream import (
    CONFIRMS,
    OPU,
    POSITION_DELETED,
    POSITION_STATUSES,
    StreamListener,
    StreamProtocolError,
    StreamState,
    StreamStatus,
    TradeUpdate,
)

TRADE_FIELDS = ("CONFIRMS", "OPU", "WOU")


@attrs.frozen
class StreamTimings:
    """The client's timers in milliseconds (None: the library's default) and the adapter's
    own pauses in seconds."""

    keepalive_ms: int | None = None
    stalled_ms: int | None = None
    reconnect_ms: int | None = None
    retry_delay_ms: int | None = None
    first_retry_max_delay_ms: int | None = None
    session_recovery_ms: int | None = None
    keepalive: float = 1.0  # how often a connected stream reports itself alive
    server_error_retry: float = 5.0


# Called with `refresh=True` after the server refused or ended a session: log in again.
Credentials = Callable[[bool], Awaitable[StreamingCredentials]]


# ---------------------------------------------------------------------- strict parsing


def _fail(channel: str, field: str | None, problem: str) -> StreamProtocolError:
    where = f"field {field!r}" if field else "payload"
    return StreamProtocolError(f"{channel}: {where} {problem}", field=field)


def _str(channel: str, obj: dict[str, Any], key: str, *, nullable: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if nullable:
            return None
        raise _fail(channel, key, "is missing")
    if not isinstance(value, str) or (not nullable and not value):
        raise _fail(channel, key, f"is not a non-empty string: {value!r}")
    return value


def _enum(channel: str, obj: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = obj.get(key)
    if value not in allowed:
        raise _fail(channel, key, f"is not one of {allowed}: {value!r}")
    return value


def _number(channel: str, obj: dict[str, Any], key: str, *, nullable: bool) -> float | None:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise _fail(channel, key, f"is not a finite number: {value!r}")
    return float(value)


def _timestamp(channel: str, obj: dict[str, Any], key: str) -> float | None:
    value = _str(channel, obj, key, nullable=True)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _fail(channel, key, f"is not an ISO timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # IG's stream timestamps are UTC
    return moment.timestamp()


def _payload(channel: str, raw: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _fail(channel, None, f"is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _fail(channel, None, f"is not an object: {type(body).__name__}")
    return body


def parse_confirms(raw: str) -> TradeUpdate:
    """A CONFIRMS value → TradeUpdate. ACCEPTED needs a deal id and a size > 0; REJECTED
    keeps its reason and has filled nothing."""
    obj = _payload(CONFIRMS, raw)
    reference = _str(CONFIRMS, obj, "dealReference")
    status = _enum(CONFIRMS, obj, "dealStatus", DEAL_STATUSES)
    epic = _str(CONFIRMS, obj, "epic")
    direction = _enum(CONFIRMS, obj, "direction", DIRECTIONS)
    reason = _str(CONFIRMS, obj, "reason", nullable=True) or ""
    level = _number(CONFIRMS, obj, "level", nullable=True)
    timestamp = _timestamp(CONFIRMS, obj, "date")
    if status == ACCEPTED:
        deal_id = _str(CONFIRMS, obj, "dealId")
        size = obj.get("size")
        if not valid_size(size):
            raise _fail(CONFIRMS, "size", f"is not a finite size > 0: {size!r}")
        filled = float(size)
    else:
        deal_id = _str(CONFIRMS, obj, "dealId", nullable=True)
        filled = 0.0
    return TradeUpdate(
        channel=CONFIRMS,
        deal_reference=reference,  # type: ignore[arg-type]
        deal_id=deal_id,
        deal_status=status,
        epic=epic,  # type: ignore[arg-type]
        direction=direction,
        size=filled,
        level=level,
        timestamp=timestamp,
        reason=reason,
    )


def parse_opu(raw: str) -> TradeUpdate:
    """An OPU value → TradeUpdate: the position's status and size after the change (a
    DELETED position has size 0; OPEN and UPDATED need a size > 0)."""
    obj = _payload(OPU, raw)
    reference = _str(OPU, obj, "dealReference")
    deal_id = _str(OPU, obj, "dealId")
    origin = _str(OPU, obj, "dealIdOrigin", nullable=True)
    deal_status = _enum(OPU, obj, "dealStatus", DEAL_STATUSES)
    status = _enum(OPU, obj, "status", POSITION_STATUSES)
    epic = _str(OPU, obj, "epic")
    direction = _enum(OPU, obj, "direction", DIRECTIONS)
    size = _number(OPU, obj, "size", nullable=False)
    assert size is not None
    if status == POSITION_DELETED:
        if size < 0:
            raise _fail(OPU, "size", f"is negative: {size!r}")
    elif not valid_size(size):
        raise _fail(OPU, "size", f"is not a finite size > 0 for {status}: {size!r}")
    level = _number(OPU, obj, "level", nullable=True)
    timestamp = _timestamp(OPU, obj, "timestamp")
    return TradeUpdate(
        channel=OPU,
        deal_reference=reference,  # type: ignore[arg-type]
        deal_id=deal_id,
        deal_status=deal_status,
        epic=epic,  # type: ignore[arg-type]
        direction=direction,
        size=0.0 if status == POSITION_DELETED else size,
        status=status,
        deal_id_origin=origin,
        level=level,
        timestamp=timestamp,
    )


_PARSERS = {CONFIRMS: parse_confirms, OPU: parse_opu}


def status_of(status: str, session_id: str | None) -> StreamStatus:
    """The port's view of one client status (raises StreamProtocolError if unknown)."""
    if status.startswith("CONNECTED:") and status.endswith(("-STREAMING", "-POLLING")):
        return StreamStatus(StreamState.CONNECTED, session_id=session_id, detail=status)
    if status == "STALLED":
        return StreamStatus(StreamState.STALLED, session_id=session_id, detail=status)
    if status in (
        "CONNECTING",
        "CONNECTED:STREAM-SENSING",
        "DISCONNECTED",
        "DISCONNECTED:WILL-RETRY",
        "DISCONNECTED:TRYING-RECOVERY",
    ):
        return StreamStatus(StreamState.DISCONNECTED, detail=status)
    raise StreamProtocolError(f"unknown client status {status!r}", field="status")


# ---------------------------------------------------------------------- keepalive state

ARRIVED, LATE, STALLED = "arrived", "late", "stalled"
_KEEPALIVE_STATES = {
    310: ARRIVED, 311: LATE, 312: STALLED,  # WS streaming, created over WS
    520: ARRIVED, 521: LATE, 522: STALLED,  # WS streaming, bound
    820: ARRIVED, 821: LATE, 822: STALLED,  # HTTP streaming
}  # fmt: skip


class UnsupportedClient(Exception):
    """The installed lightstreamer-client-lib does not keep the state the adapter reads."""


def keepalive_state(client: LightstreamerClient) -> str | None:
    """ARRIVED, LATE or STALLED for the client's streaming connection; None when it has none
    (not connected, or polling)."""
    try:
        state = client.delegate.machine.state
        variables = (state.s_hs, state.s_ws, state.s_w)
    except AttributeError as exc:
        raise UnsupportedClient(
            "IGTradeStream reads the keepalive state of lightstreamer-client-lib 1.0.3 "
            f"(machine.state.s_hs/s_ws/s_w); this one has none: {exc}"
        ) from exc
    for variable in variables:
        found = _KEEPALIVE_STATES.get(getattr(variable, "k", None))
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------- the adapter


class IGTradeStream:
    """The `TradeStream` port on `lightstreamer-client-lib`. Every listener call happens on
    the engine's event loop: the one running at `start`, or at `attach` if none was."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        timings: StreamTimings | None = None,
        forced_transport: str | None = None,
    ) -> None:
        self._credentials = credentials
        self.timings = timings or StreamTimings()
        self._forced_transport = forced_transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: StreamListener | None = None
        self._client: LightstreamerClient | None = None
        self._subscription: Subscription | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._connected = False
        self._stalled = False
        self._session_id: str | None = None
        self._stopped = True
        self.statuses: list[str] = []  # every client status, in order (for diagnosis)
        self.server_errors: list[tuple[int, str]] = []
        self.keepalives = 0  # how many on_keepalive calls the listener had
        # Updates the listener has had from the current session (a test harness waits on it).
        self._session_updates = 0
        self._generation = 0  # which client is current: a replaced one's late calls are dropped

    # ------------------------------------------------------------------ the port

    def start(self, listener: StreamListener) -> None:
        """Begin delivery to `listener` on the running loop. Called where no loop runs yet
        (an engine opened before its host's loop starts), delivery begins at `attach()`."""
        self._listener = listener
        self._stopped = False
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.attach()

    def attach(self) -> None:
        """Connect, delivering on the running loop (the engine's)."""
        if self._listener is None or self._stopped or self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._connecting = self._loop.create_task(self._connect(refresh=False))

    def stop(self) -> None:
        self._stopped = True
        for handle in (self._keepalive, self._retry):
            if handle is not None:
                handle.cancel()
        self._keepalive = self._retry = None
        self._loop = None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self._close_client()

    @property
    def session_id(self) -> str | None:
        return None if self._client is None else self._client.connectionDetails.getSessionId()

    @property
    def progress(self) -> tuple[str | None, int]:
        """The session the listener reads now, and how many of its updates it has had (on
        the engine's loop): what a test harness waits on before it looks at the engine."""
        return (self._session_id if self._connected else None, self._session_updates)

    def prove_alive(self) -> None:
        """Tell the listener, once, what the library's keepalive state says now: a keepalive,
        a stall, or a stall that ended. The keepalive timer does this every `keepalive`
        seconds; a host whose clock jumps (a held test clock) does it at every step of the
        jump, since a live stream keeps speaking while time passes."""
        assert self._listener is not None
        if self._stopped or not self._connected or self._client is None:
            return
        state = keepalive_state(self._client)
        if state == ARRIVED:
            self._stall_ended()
            self.keepalives += 1
            self._listener.on_keepalive()
        elif state == STALLED and not self._stalled:
            self._stalled = True
            self._listener.on_status(StreamStatus(StreamState.STALLED, self._session_id, "STALLED"))

    # ------------------------------------------------------------------ connecting

    async def _connect(self, *, refresh: bool) -> None:
        try:
            credentials = await self._credentials(refresh)
        except Exception as exc:  # a failed login: report, retry like a server error
            self._deliver_status(
                StreamStatus(StreamState.DISCONNECTED, detail=f"login for the stream failed: {exc}")
            )
            self._schedule_retry()
            return
        if self._stopped:
            return
        self._client = self._new_client(credentials)
        try:
            keepalive_state(self._client)  # refuse a library without the state it reads
        except UnsupportedClient as exc:  # fail closed: never connected, so always blind
            self._deliver_status(StreamStatus(StreamState.DISCONNECTED, detail=str(exc)))
            return
        self._client.connect()

    def _new_client(self, credentials: StreamingCredentials) -> LightstreamerClient:
        client = LightstreamerClient(credentials.endpoint, None)
        client.connectionDetails.setUser(credentials.account_id)
        client.connectionDetails.setPassword(credentials.password)
        options, timings = client.connectionOptions, self.timings
        for setter, value in (
            (options.setKeepaliveInterval, timings.keepalive_ms),
            (options.setStalledTimeout, timings.stalled_ms),
            (options.setReconnectTimeout, timings.reconnect_ms),
            (options.setRetryDelay, timings.retry_delay_ms),
            (options.setFirstRetryMaxDelay, timings.first_retry_max_delay_ms),
            (options.setSessionRecoveryTimeout, timings.session_recovery_ms),
        ):
            if value is not None:
                setter(value)
        if self._forced_transport is not None:
            options.setForcedTransport(self._forced_transport)
        self._generation += 1
        client.addListener(_ClientEvents(self, client, self._generation))
        subscription = Subscription("DISTINCT", [f"TRADE:{credentials.account_id}"], TRADE_FIELDS)
        subscription.setRequestedSnapshot("yes")
        subscription.addListener(_SubscriptionEvents(self, self._generation))
        client.subscribe(subscription)
        self._subscription = subscription
        return client

    def _close_client(self) -> None:
        client, self._client = self._client, None
        subscription, self._subscription = self._subscription, None
        self._connected = False
        if client is None:
            return
        for listener in client.getListeners():
            client.removeListener(listener)
        if subscription is not None:
            for listener in subscription.getListeners():
                subscription.removeListener(listener)
            client.unsubscribe(subscription)
        client.disconnect()

    def _schedule_retry(self) -> None:
        if self._stopped or self._loop is None:
            return
        if self._retry is not None:
            self._retry.cancel()
        self._retry = self._loop.call_later(self.timings.server_error_retry, self._reconnect)

    def _reconnect(self) -> None:
        self._retry = None
        if self._stopped:
            return
        self._close_client()
        self._connecting = asyncio.get_running_loop().create_task(self._connect(refresh=True))

    # ------------------------------------------------------------------ crossing threads

    def _cross(self, call: Callable[[], None], generation: int) -> None:
        """Run `call` on the engine's loop (from a library thread), unless stopped or the
        client of `generation` has been replaced meanwhile."""
        loop = self._loop
        if loop is None or self._stopped or loop.is_closed():
            return

        def on_loop() -> None:
            if not self._stopped and generation == self._generation and self._client:
                call()

        with contextlib.suppress(RuntimeError):  # the loop closed since the check
            loop.call_soon_threadsafe(on_loop)

    # ------------------------------------------------------------------ on the engine's loop

    def _deliver_status(self, status: StreamStatus) -> None:
        assert self._listener is not None and self._loop is not None
        self._connected = status.state is StreamState.CONNECTED
        self._stalled = False
        if self._connected:
            if status.session_id != self._session_id:
                self._session_updates = 0
            self._session_id = status.session_id
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        self._listener.on_status(status)
        if self._connected:
            self._keepalive = self._loop.call_later(self.timings.keepalive, self._check_alive)

    def _check_alive(self) -> None:
        assert self._loop is not None
        self._keepalive = None
        if self._stopped or not self._connected or self._client is None:
            return
        self.prove_alive()
        self._keepalive = self._loop.call_later(self.timings.keepalive, self._check_alive)

    def _stall_ended(self) -> None:
        """Something arrived after a stall: the same session is CONNECTED again."""
        assert self._listener is not None
        if self._stalled:
            self._stalled = False
            self._listener.on_status(
                StreamStatus(StreamState.CONNECTED, self._session_id, "stall ended")
            )

    def _client_status(self, status: str, session_id: str | None) -> None:
        self.statuses.append(status)
        try:
            mapped = status_of(status, session_id)
        except StreamProtocolError as error:
            assert self._listener is not None
            self._listener.on_protocol_error(error)
            mapped = StreamStatus(StreamState.DISCONNECTED, detail=status)
        self._deliver_status(mapped)

    def _server_error(self, code: int, message: str) -> None:
        self.server_errors.append((code, message))
        self._deliver_status(
            StreamStatus(StreamState.DISCONNECTED, detail=f"server error {code}: {message}")
        )
        self._schedule_retry()

    def _update(self, values: dict[str, str]) -> None:
        assert self._listener is not None
        self._session_updates += 1
        self._stall_ended()
        for channel in (CONFIRMS, OPU):
            raw = values.get(channel)
            if raw is None:
                continue
            try:
                update = _PARSERS[channel](raw)
            except StreamProtocolError as error:
                self._listener.on_protocol_error(error)
                continue
            self._listener.on_update(update)

    def _listener_call(self, name: str, *args: Any) -> None:
        assert self._listener is not None
        getattr(self._listener, name)(*args)


class _Events:
    """A listener of the library's, on its thread, for the client of one generation."""

    def __init__(self, stream: IGTradeStream, generation: int) -> None:
        self._stream = stream
        self._generation = generation

    def _send(self, call: Callable[[], None]) -> None:
        self._stream._cross(call, self._generation)

    def onListenStart(self) -> None:  # noqa: N802 (the library's names)
        pass

    def onListenEnd(self) -> None:  # noqa: N802
        pass


class _ClientEvents(_Events):
    """`ClientListener`: reads what it needs on the library's thread, then crosses."""

    def __init__(self, stream: IGTradeStream, client: LightstreamerClient, generation: int) -> None:
        super().__init__(stream, generation)
        self._client = client

    def onStatusChange(self, status: str) -> None:  # noqa: N802 (the library's names)
        session_id = self._client.connectionDetails.getSessionId()
        self._send(lambda: self._stream._client_status(status, session_id))

    def onServerError(self, code: int, message: str) -> None:  # noqa: N802
        self._send(lambda: self._stream._server_error(code, message))

    def onPropertyChange(self, property: str) -> None:  # noqa: N802, A002
        pass


class _SubscriptionEvents(_Events):
    """`SubscriptionListener`: reads the update on the library's thread, then crosses."""

    def onSubscription(self) -> None:  # noqa: N802
        self._send(lambda: self._stream._listener_call("on_subscribed"))

    def onClearSnapshot(self, item_name: str, item_pos: int) -> None:  # noqa: N802
        self._send(lambda: self._stream._listener_call("on_subscribed"))

    def onItemUpdate(self, update: Any) -> None:  # noqa: N802
        values = {
            field: update.getValue(field)
            for field in (CONFIRMS, OPU)
            if update.isValueChanged(field)
        }
        self._send(lambda: self._stream._update(values))

    def onItemLostUpdates(self, item_name: str, item_pos: int, lost: int) -> None:  # noqa: N802
        error = StreamProtocolError(f"the server lost {lost} updates of {item_name}")
        self._send(lambda: self._stream._listener_call("on_protocol_error", error))

    def onSubscriptionError(self, code: int, message: str) -> None:  # noqa: N802
        status = StreamStatus(
            StreamState.DISCONNECTED, detail=f"subscription refused {code}: {message}"
        )
        self._send(lambda: self._stream._deliver_status(status))

    def onUnsubscription(self) -> None:  # noqa: N802
        status = StreamStatus(StreamState.DISCONNECTED, detail="unsubscribed")
        self._send(lambda: self._stream._deliver_status(status))

    def onEndOfSnapshot(self, item_name: str, item_pos: int) -> None:  # noqa: N802
        pass

    def onRealMaxFrequency(self, frequency: str | None) -> None:  # noqa: N802
        pass

    def onCommandSecondLevelItemLostUpdates(self, lost: int, key: str) -> None:  # noqa: N802
        pass

    def onCommandSecondLevelSubscriptionError(  # noqa: N802
        self, code: int, message: str, key: str
    ) -> None:
        pass


__all__ = [
    "TRADE_FIELDS",
    "IGTradeStream",
    "StreamTimings",
    "UnsupportedClient",
    "keepalive_state",
    "parse_confirms",
    "parse_opu",
    "status_of",
]
