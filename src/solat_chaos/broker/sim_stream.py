"""SimTradeStream: the SimBroker's trade events over a simulated Lightstreamer connection.

It implements the engine's `TradeStream` port. Every change the SimBroker makes (its
`events`: own fills, partial closes, dashboard opens and closes) becomes a CONFIRMS and an
OPU, in that order, as IG sends them; OPU's size is the position's size after the change.
Nothing is delivered until `pump()` (the server's and the network's work: new events out,
then one keepalive), so a test decides when the stream speaks; `advance(seconds)` moves the
clock with a keepalive every `keepalive` seconds, as a healthy connection does.

Faults, each as IG's stream really fails (DESIGN.md, "Trade stream (tier 3)"):

- `silent_disconnect()`: the socket dies without a close: no event, no keepalive, no status;
- `stall()` / `recover(redeliver=0)`: the session stalls (a STALLED status) and comes back
  on the same session, delivering what the server retained (and re-sending the last
  `redeliver` updates already delivered, as a recovery may);
- `new_session(replay)`: the connection drops and a new session starts; the server replays
  only its `replay` most recent updates, which may be fewer than were missed (a gap) or
  more (duplicates); what was waiting for the old session is gone;
- `drop_next_update(count)`: the next updates are lost while keepalives continue;
- `duplicate_updates(count)`: the next updates arrive twice;
- `delay()` / `release()`: updates wait, keepalives continue, then arrive late;
- `reorder_next()`: the next change's OPU arrives before its CONFIRMS;
- `resubscribe()`: the TRADE subscription is confirmed again on the same session;
- `heal()`: every fault lifted; a dead connection comes back as a new session.
"""

from __future__ import annotations

from collections import deque

from solat_chaos.broker.sim import CLOSED, OPENED, BrokerEvent, SimBroker
from solat_chaos.engine.broker import ACCEPTED, opposite
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.stream import (
    CONFIRMS,
    OPU,
    POSITION_DELETED,
    POSITION_OPEN,
    POSITION_UPDATED,
    StreamListener,
    StreamState,
    StreamStatus,
    TradeUpdate,
)


def updates_of(event: BrokerEvent) -> tuple[TradeUpdate, TradeUpdate]:
    """The CONFIRMS and the OPU IG sends for one change of a position."""
    opened = event.kind == OPENED
    confirm = TradeUpdate(
        channel=CONFIRMS,
        deal_reference=event.deal_reference,
        deal_id=event.deal_id,
        deal_status=ACCEPTED,
        epic=event.epic,
        direction=event.direction if opened else opposite(event.direction),
        size=event.size,
        level=event.level,
        timestamp=event.at,
        reason="SUCCESS",
    )
    status = POSITION_OPEN if opened else POSITION_DELETED if event.kind == CLOSED else None
    position = TradeUpdate(
        channel=OPU,
        deal_reference=event.deal_reference,
        deal_id=event.deal_id,
        deal_status=ACCEPTED,
        epic=event.epic,
        direction=event.direction,
        size=event.remaining,
        status=status or POSITION_UPDATED,
        deal_id_origin=event.deal_id,
        level=event.level,
        timestamp=event.at,
    )
    return confirm, position


class SimTradeStream:
    # The faults `armed_faults` names (for the model's coverage counts).
    FAULT_KINDS = (
        "stream:silent",
        "stream:stalled",
        "stream:drop",
        "stream:duplicate",
        "stream:delayed",
        "stream:reorder",
    )

    def __init__(self, sim: SimBroker, clock: SimClock, *, keepalive: float = 5.0) -> None:
        self.sim = sim
        self.clock = clock
        self.keepalive = keepalive
        self._listener: StreamListener | None = None
        self.last_spoke: float | None = None  # monotonic: the listener's last call
        self._cursor = sim.events[-1].seq if sim.events else 0
        self.history: list[TradeUpdate] = []  # every update the server produced
        self.delivered: list[TradeUpdate] = []  # every update a listener received
        self._waiting: deque[TradeUpdate] = deque()
        self._sessions = 0
        self.session_id: str | None = None
        self.state = StreamState.DISCONNECTED
        self.silent = False
        self.delayed = False
        self._drop = 0
        self._duplicate = 0
        self._reorder = 0

    # -- the port ------------------------------------------------------------------------

    def start(self, listener: StreamListener) -> None:
        self._listener = listener
        self._connect_new_session(replay=0)

    def stop(self) -> None:
        self._listener = None
        self.state = StreamState.DISCONNECTED

    # -- a healthy connection --------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """Connected and speaking: what a healthy stream is."""
        return self.state is StreamState.CONNECTED and not self.silent

    def pump(self) -> None:
        """The broker's new changes go out; if the connection is alive, what is waiting is
        delivered (unless delayed) and a keepalive follows."""
        self._collect()
        if not self.alive or self._listener is None:
            return
        if not self.delayed:
            while self._waiting:
                self._deliver(self._waiting.popleft())
        self._spoke()
        self._listener.on_keepalive()

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass on the clock, pumping every `keepalive` seconds."""
        remaining, keepalive, sim = seconds, self.keepalive, self.sim
        advance, monotonic = self.clock.advance, self.clock.monotonic
        while remaining > 0:
            step = min(keepalive, remaining)
            advance(step)
            remaining -= step
            listener = self._listener
            if (
                listener is not None
                and sim.last_event_seq == self._cursor
                and not self._waiting
                and self.alive
            ):
                # What `pump` does with nothing to deliver, inline: an hour is 720 keepalives.
                self.last_spoke = monotonic()
                listener.on_keepalive()
            else:
                self.pump()

    # -- faults ------------------------------------------------------------------------------

    def armed_faults(self) -> set[str]:
        """The faults armed now (names from FAULT_KINDS)."""
        armed = set()
        if self.silent:
            armed.add("stream:silent")
        if self.state is StreamState.STALLED:
            armed.add("stream:stalled")
        if self._drop > 0:
            armed.add("stream:drop")
        if self._duplicate > 0:
            armed.add("stream:duplicate")
        if self.delayed:
            armed.add("stream:delayed")
        if self._reorder > 0:
            armed.add("stream:reorder")
        return armed

    def silent_disconnect(self) -> None:
        self.pump()
        self.silent = True

    def stall(self) -> None:
        self.pump()
        self.state = StreamState.STALLED
        self._status(StreamStatus(StreamState.STALLED, self.session_id, "no data from server"))

    def recover(self, redeliver: int = 0) -> None:
        """The stalled (or silent) session comes back: the same session, and what it retained."""
        self.silent = False
        self.state = StreamState.CONNECTED
        self._status(StreamStatus(StreamState.CONNECTED, self.session_id))
        if redeliver:
            self._waiting.extendleft(reversed(self.delivered[-redeliver:]))
        self.pump()

    def new_session(self, replay: int = 0) -> None:
        self.pump()
        self._status(StreamStatus(StreamState.DISCONNECTED, self.session_id, "session lost"))
        self._connect_new_session(replay)

    def drop_next_update(self, count: int = 1) -> None:
        self._drop += count

    def duplicate_updates(self, count: int = 1) -> None:
        self._duplicate += count

    def delay(self) -> None:
        self.delayed = True

    def release(self) -> None:
        self.delayed = False
        self.pump()

    def reorder_next(self, count: int = 1) -> None:
        self._reorder += count

    def resubscribe(self) -> None:
        if self._listener is not None and self.alive:
            self._spoke()
            self._listener.on_subscribed()

    def heal(self) -> None:
        self._drop = self._duplicate = self._reorder = 0
        self.delayed = False
        if self.silent:
            self.new_session(replay=0)
        elif self.state is not StreamState.CONNECTED:
            self.recover()
        else:
            self.pump()

    # -- delivery ----------------------------------------------------------------------------

    def _connect_new_session(self, replay: int) -> None:
        self._collect()
        self._sessions += 1
        self.session_id = f"SIMSESSION{self._sessions}"
        self.silent = False
        self.state = StreamState.CONNECTED
        self._waiting.clear()  # what waited for the old session died with it
        self._status(StreamStatus(StreamState.CONNECTED, self.session_id))
        if self._listener is not None:
            self._spoke()
            self._listener.on_subscribed()
        if replay:
            self._waiting.extend(self.history[-replay:])
        self.pump()

    def _collect(self) -> None:
        """The broker's new changes reach the server's queue; nothing is delivered."""
        if self.sim.last_event_seq == self._cursor:
            return  # no change since the last pump: most pumps, keepalives while time passes
        for event in self.sim.events_since(self._cursor):
            self._cursor = event.seq
            confirm, position = updates_of(event)
            pair = (position, confirm) if self._reorder else (confirm, position)
            if self._reorder:
                self._reorder -= 1
            self.history.extend(pair)
            self._waiting.extend(pair)

    def _spoke(self) -> None:
        self.last_spoke = self.clock.monotonic()

    def _status(self, status: StreamStatus) -> None:
        if self._listener is not None:
            self._spoke()
            self._listener.on_status(status)

    def _deliver(self, update: TradeUpdate) -> None:
        if self._drop:
            self._drop -= 1
            return
        copies = 1
        if self._duplicate:
            self._duplicate -= 1
            copies = 2
        for _ in range(copies):
            self.delivered.append(update)
            if self._listener is not None:
                self._spoke()
                self._listener.on_update(update)
