"""The SimBroker's trade stream on the wire: the subset of Lightstreamer's TLCP that
`lightstreamer-client-lib` (1.0.x, TLCP-2.4.0) needs for IG's `TRADE:{accountId}` item.

The client tries WS-STREAMING first; this server has no WebSocket endpoint (uvicorn here has
no WebSocket library), so the upgrade is refused and the client falls back to HTTP-STREAMING
on its own. Its session recovery is HTTP in every transport (`sendRecovery` posts
`bind_session.txt` with `LS_recovery_from`), so HTTP is the one transport the client needs.
Served, under `/lightstreamer/`:

- `create_session.txt` (the client asks `LS_polling=true&LS_polling_millis=0`): checks
  `LS_user` (the account id) and `LS_password` (`CST-{cst}|XST-{xst}` of a live REST
  session) and answers `CONOK,<session>,50000,<keepalive>,*`, `CONS,unlimited`, `LOOP,0`;
  bad credentials answer `CONERR,1,...`.
- `bind_session.txt`, streaming: `CONOK`, then every data notification not yet delivered,
  `PROBE` after `keepalive` ms without one, and `END,<code>,<msg>` when the session is ended.
  `LS_content_length` is not enforced (the stream never sends `LOOP` to rebind).
- `bind_session.txt` with `LS_recovery_from=N`: `CONOK`, `PROG,N`, the data notifications
  from N on, `LOOP,0`; an unknown session answers `CONERR,4`.
- `control.txt`, one or more requests a body: `add` (DISTINCT, the item `TRADE:{accountId}`,
  fields CONFIRMS OPU WOU; `REQOK`, then `SUBOK,<sub>,1,3` on the stream, the snapshot when
  asked, `EOS`), `delete` (`REQOK`, `UNSUB`), `destroy` (`REQOK`, the stream ends). Anything
  else answers `REQERR`.

Data notifications (`U`, `SUBOK`, `EOS`, `CS`, `OV`, `UNSUB`) are numbered per session, which
is what recovery replays from. Updates come from `SimBroker.events_since`: every
`BrokerEvent` becomes a CONFIRMS update and an OPU update, in IG's JSON as the REST dialect
renders it (`IGHttpState.streamed_confirm_json`, `streamed_opu_json`). A new session's
snapshot is the last `replay` events (server-chosen, like IG's recent history: shorter or
longer than what was missed).

Seams (`TlcpState`, thread-safe; the server runs on uvicorn's thread):
- `silence(recoverable=True)`: the stream connections open now stop sending anything, with
  no close; the client's own keepalive check (STALLED, then recovery) is what notices. Not
  recoverable, the server has also lost the session: the recovery is refused (`CONERR,4`)
  and the client starts a new one;
- `pause()` / `resume()`: every stream holds its output, then sends what it held on the same
  connection and session;
- `new_session(replay=None)`: ends the session with `END,48` (maximum duration reached: the
  client creates a new one); `replay` changes the snapshot length;
- `drop_next_update()`: the next update is never sent, while probes continue;
- `end_with_error(code, message)`: `END,<code>,<message>` (31: closed by the administrator);
  the client gives up and reports a server error;
- `clear_snapshot()`: `CS` on the subscription (the client's `onClearSnapshot`);
- `lose_updates(count)`: `OV` on the subscription (the client's `onItemLostUpdates`);
- `send_raw(fields)`: one update with these raw field values (for malformed payloads).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl, quote

import attrs
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from solat_chaos.broker.sim import BrokerEvent, SimBroker

TRADE_FIELDS = ("CONFIRMS", "OPU", "WOU")
PROTOCOL = "TLCP-2.4.0"
MAX_DURATION = 48  # END code: the client retries with a new session
CLOSED_BY_ADMIN = 31  # END code: the client gives up
_TEXT = "text/enriched; charset=UTF-8"


def _field_value(value: str | None) -> str:
    """A TLCP field value: `#` null, `$` empty, else percent-encoded."""
    if value is None:
        return "#"
    if value == "":
        return "$"
    return quote(value, safe="")


@attrs.define
class _Session:
    id: str
    keepalive_ms: int
    notifications: list[str] = attrs.Factory(list)
    delivered: int = 0
    sub_id: int | None = None
    broker_seq: int = 0
    end: str | None = None  # the END line the stream sends, then closes
    silenced: set[int] = attrs.Factory(set)  # stream connections that say nothing more


class TlcpState:
    """The sessions of the TLCP endpoint and its fault seams. `app.state.tlcp` is this."""

    def __init__(
        self,
        sim: SimBroker,
        *,
        account_id: str,
        credentials_valid: Callable[[str, str], bool],
        confirm_json: Callable[[str], dict[str, Any] | None],
        opu_json: Callable[[BrokerEvent], dict[str, Any]],
        keepalive_ms: int = 1000,
        replay: int = 3,
        tick: float = 0.005,
    ) -> None:
        self.sim = sim
        self.account_id = account_id
        self.item = f"TRADE:{account_id}"
        self.credentials_valid = credentials_valid
        self.confirm_json = confirm_json
        self.opu_json = opu_json
        self.keepalive_ms = keepalive_ms
        self.replay = replay
        self.tick = tick
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._counter = itertools.count(1)
        self._connections = itertools.count(1)
        self._live: dict[int, str] = {}  # open stream connection -> session id
        self._paused = False
        self._closing = False
        self._drops = 0
        self.sessions_created = 0
        self.recoveries = 0
        self.dropped: list[str] = []  # the update lines never sent

    # -------------------------------------------------------------- seams

    def silence(self, *, recoverable: bool = True) -> None:
        with self._lock:
            for connection, session_id in self._live.items():
                self._sessions[session_id].silenced.add(connection)
                if not recoverable:
                    self._sessions[session_id].end = f"END,{MAX_DURATION},Session%20lost"

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def drop_next_update(self) -> None:
        with self._lock:
            self._drops += 1

    def new_session(self, replay: int | None = None) -> None:
        self._end_all(f"END,{MAX_DURATION},Maximum session duration reached")
        if replay is not None:
            self.replay = replay

    def end_with_error(self, code: int = CLOSED_BY_ADMIN, message: str = "closed") -> None:
        self._end_all(f"END,{code},{quote(message, safe='')}")

    def clear_snapshot(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                if session.sub_id is not None and session.end is None:
                    session.notifications.append(f"CS,{session.sub_id},1")

    def lose_updates(self, count: int) -> None:
        """`OV`: the server tells the client it lost `count` updates of the item."""
        with self._lock:
            for session in self._sessions.values():
                if session.sub_id is not None and session.end is None:
                    session.notifications.append(f"OV,{session.sub_id},1,{count}")

    def send_raw(self, fields: dict[str, str | None]) -> None:
        values = "|".join(_field_value(fields.get(name)) for name in TRADE_FIELDS)
        with self._lock:
            for session in self._sessions.values():
                if session.sub_id is not None and session.end is None:
                    session.notifications.append(f"U,{session.sub_id},1,{values}")

    def shutdown(self) -> None:
        """End every stream connection now (silenced ones too), so the server can stop."""
        with self._lock:
            self._closing = True

    def _end_all(self, line: str) -> None:
        with self._lock:
            for session in self._sessions.values():
                if session.end is None:
                    session.end = line

    @property
    def session_ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    @property
    def open_streams(self) -> int:
        with self._lock:
            return len(self._live)

    def updates_sent(self, session_id: str | None) -> int | None:
        """How many updates the session's stream has sent, once it has sent every broker
        event so far (its subscription confirmed, nothing held back); None until then, and
        for a session that is unknown, ended, paused or silenced."""
        with self._lock:
            session = self._sessions.get(session_id or "")
            if session is None or session.sub_id is None or session.end is not None:
                return None
            if self._paused or session.silenced or session.id not in self._live.values():
                return None
            self._pump()
            if session.delivered < len(session.notifications):
                return None
            return sum(1 for line in session.notifications if line.startswith("U,"))

    # -------------------------------------------------------------- updates

    def _updates(self, event: BrokerEvent) -> list[str]:
        confirm = self.confirm_json(event.deal_reference)
        lines = []
        if confirm is not None:
            lines.append([json.dumps(confirm, separators=(",", ":")), None, None])
        lines.append([None, json.dumps(self.opu_json(event), separators=(",", ":")), None])
        return ["|".join(_field_value(v) for v in values) for values in lines]

    def _pump(self) -> None:
        """Turn new broker events into updates of every subscribed session (lock held)."""
        for session in self._sessions.values():
            if session.sub_id is None or session.end is not None:
                continue
            for event in self.sim.events_since(session.broker_seq):
                session.broker_seq = event.seq
                for values in self._updates(event):
                    line = f"U,{session.sub_id},1,{values}"
                    if self._drops:
                        self._drops -= 1
                        self.dropped.append(line)
                        continue
                    session.notifications.append(line)

    def _subscribe(self, session: _Session, sub_id: int, snapshot: bool) -> None:
        session.sub_id = sub_id
        events = self.sim.events
        session.broker_seq = events[-1].seq if events else 0
        session.notifications.append(f"SUBOK,{sub_id},1,{len(TRADE_FIELDS)}")
        if snapshot:
            recent = events[-self.replay :] if self.replay > 0 else ()
            for event in recent:
                for values in self._updates(event):
                    session.notifications.append(f"U,{sub_id},1,{values}")
            session.notifications.append(f"EOS,{sub_id},1")

    # -------------------------------------------------------------- handlers

    @staticmethod
    async def _params(request: Request) -> list[dict[str, str]]:
        body = (await request.body()).decode("utf-8", "replace")
        query = dict(request.query_params)
        lines = [line for line in body.split("\r\n") if line] or [""]
        return [query | dict(parse_qsl(line, keep_blank_values=True)) for line in lines]

    async def create_session(self, request: Request) -> Response:
        params = (await self._params(request))[0]
        user, password = params.get("LS_user", ""), params.get("LS_password", "")
        cst, _, xst = password.partition("|")
        if (
            user != self.account_id
            or not cst.startswith("CST-")
            or not xst.startswith("XST-")
            or not self.credentials_valid(cst[4:], xst[4:])
        ):
            return self._text("CONERR,1,User%2Fpassword%20check%20failed\r\n")
        with self._lock:
            session = _Session(f"S{next(self._counter):06d}sim", self.keepalive_ms)
            self._sessions[session.id] = session
            self.sessions_created += 1
        return self._text(
            f"CONOK,{session.id},50000,{session.keepalive_ms},*\r\nCONS,unlimited\r\nLOOP,0\r\n"
        )

    async def bind_session(self, request: Request) -> Response:
        params = (await self._params(request))[0]
        with self._lock:
            session = self._sessions.get(params.get("LS_session", ""))
            if session is None or session.end is not None:
                return self._text("CONERR,4,Session%20not%20found\r\n")
            if "LS_keepalive_millis" in params and params["LS_keepalive_millis"].isdigit():
                session.keepalive_ms = max(1, int(params["LS_keepalive_millis"]))
            head = f"CONOK,{session.id},50000,{session.keepalive_ms},*\r\n"
            if "LS_recovery_from" in params:
                start = int(params["LS_recovery_from"])
                self._pump()
                replay = session.notifications[start:]
                session.delivered = len(session.notifications)
                self.recoveries += 1
                body = head + f"PROG,{start}\r\n" + "".join(f"{n}\r\n" for n in replay)
                return self._text(body + "LOOP,0\r\n")
            connection = next(self._connections)
            self._live[connection] = session.id
        return StreamingResponse(self._stream(request, session, connection, head), media_type=_TEXT)

    async def _stream(
        self, request: Request, session: _Session, connection: int, head: str
    ) -> AsyncIterator[bytes]:
        try:
            yield head.encode()
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while True:
                await asyncio.sleep(self.tick)
                if await request.is_disconnected():
                    return
                with self._lock:
                    if self._closing:
                        return
                    if connection in session.silenced or self._paused:
                        continue
                    self._pump()
                    lines = session.notifications[session.delivered :]
                    session.delivered = len(session.notifications)
                    end = session.end
                if end is not None:
                    yield "".join(f"{n}\r\n" for n in lines).encode() + f"{end}\r\n".encode()
                    return
                if lines:
                    quiet_since = loop.time()
                    yield "".join(f"{n}\r\n" for n in lines).encode()
                elif loop.time() - quiet_since >= session.keepalive_ms / 1000:
                    quiet_since = loop.time()
                    yield b"PROBE\r\n"
        finally:
            with self._lock:
                self._live.pop(connection, None)

    async def control(self, request: Request) -> Response:
        answers = []
        for params in await self._params(request):
            answers.append(self._control_one(params))
        return self._text("".join(f"{a}\r\n" for a in answers))

    def _control_one(self, params: dict[str, str]) -> str:
        req_id = params.get("LS_reqId", "0")
        with self._lock:
            session = self._sessions.get(params.get("LS_session", ""))
            if session is None or session.end is not None:
                return f"REQERR,{req_id},20,Session%20not%20found"
            op = params.get("LS_op")
            if op == "add":
                if params.get("LS_group") != self.item:
                    return f"REQERR,{req_id},21,Bad%20item"
                if params.get("LS_mode") != "DISTINCT":
                    return f"REQERR,{req_id},24,Mode%20not%20allowed"
                if params.get("LS_schema", "").split(" ") != list(TRADE_FIELDS):
                    return f"REQERR,{req_id},23,Bad%20field%20schema"
                sub_id = int(params.get("LS_subId", "0"))
                self._subscribe(session, sub_id, params.get("LS_snapshot") == "true")
                return f"REQOK,{req_id}"
            if op == "delete":
                if session.sub_id is not None:
                    session.notifications.append(f"UNSUB,{session.sub_id}")
                    session.sub_id = None
                return f"REQOK,{req_id}"
            if op == "destroy":
                session.end = f"END,{CLOSED_BY_ADMIN},Destroyed%20by%20the%20client"
                del self._sessions[session.id]
                return f"REQOK,{req_id}"
            return f"REQERR,{req_id},32,Unsupported%20operation%20{quote(str(op), safe='')}"

    @staticmethod
    def _text(body: str) -> Response:
        return Response(body.encode(), media_type=_TEXT)

    def routes(self) -> list[Route]:
        return [
            Route("/lightstreamer/create_session.txt", self.create_session, methods=["POST"]),
            Route("/lightstreamer/bind_session.txt", self.bind_session, methods=["POST"]),
            Route("/lightstreamer/control.txt", self.control, methods=["POST"]),
        ]


__all__ = [
    "CLOSED_BY_ADMIN",
    "MAX_DURATION",
    "PROTOCOL",
    "TRADE_FIELDS",
    "TlcpState",
]
