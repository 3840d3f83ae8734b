"""SimTradeStream and StreamChaos: what each fault does to what a listener receives."""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import SimBroker
from solat_chaos.broker.sim_stream import SimTradeStream
from solat_chaos.chaos.stream import StreamChaos
from solat_chaos.engine.broker import BUY
from solat_chaos.engine.clock import SimClock
from solat_chaos.engine.stream import (
    CONFIRMS,
    OPU,
    POSITION_DELETED,
    POSITION_OPEN,
    POSITION_UPDATED,
    StreamState,
)

EURUSD = "CS.D.EURUSD.TODAY.IP"


class Recorder:
    """A StreamListener writing down every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_update(self, update) -> None:
        self.calls.append(("update", update))

    def on_status(self, status) -> None:
        self.calls.append(("status", status))

    def on_subscribed(self) -> None:
        self.calls.append(("subscribed", None))

    def on_keepalive(self) -> None:
        self.calls.append(("keepalive", None))

    def on_protocol_error(self, error) -> None:
        self.calls.append(("error", error))

    def updates(self) -> list:
        return [(u.channel, u.status, u.size) for kind, u in self.calls if kind == "update"]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


@pytest.fixture
def world():
    clock = SimClock()
    sim = SimBroker(clock=clock)
    stream = SimTradeStream(sim, clock)
    listener = Recorder()
    stream.start(listener)
    return sim, stream, listener, StreamChaos(stream)


def test_every_change_is_a_confirms_then_an_opu_with_the_size_after_it(world) -> None:
    sim, stream, listener, _ = world
    deal = sim.open_externally(EURUSD, BUY, 2.0).deal_id
    sim.close_externally(deal, 0.5)
    sim.close_externally(deal)
    stream.pump()
    assert listener.kinds()[:2] == ["status", "subscribed"]
    assert listener.updates() == [
        (CONFIRMS, None, 2.0),
        (OPU, POSITION_OPEN, 2.0),
        (CONFIRMS, None, 0.5),
        (OPU, POSITION_UPDATED, 1.5),
        (CONFIRMS, None, 1.5),
        (OPU, POSITION_DELETED, 0.0),
    ]


def test_a_silent_disconnect_sends_nothing_at_all(world) -> None:
    sim, stream, listener, chaos = world
    chaos.silent_disconnect()
    before = len(listener.calls)
    sim.open_externally(EURUSD, BUY, 1.0)
    stream.advance(60.0)
    assert len(listener.calls) == before and stream.state is StreamState.CONNECTED


def test_a_stall_recovers_the_same_session_with_what_was_retained(world) -> None:
    sim, stream, listener, chaos = world
    session = stream.session_id
    sim.open_externally(EURUSD, BUY, 1.0)
    stream.pump()
    with chaos.stall(redeliver=2):
        sim.open_externally(EURUSD, BUY, 3.0)
        stream.advance(20.0)
    statuses = [s.state for kind, s in listener.calls if kind == "status"]
    assert statuses == [StreamState.CONNECTED, StreamState.STALLED, StreamState.CONNECTED]
    assert stream.session_id == session
    # the two updates already delivered are sent again, then the retained two
    assert [size for _, _, size in listener.updates()] == [1.0, 1.0, 1.0, 1.0, 3.0, 3.0]


def test_a_new_session_replays_only_its_recent_history(world) -> None:
    sim, stream, listener, chaos = world
    chaos.stall()
    sim.open_externally(EURUSD, BUY, 1.0)
    sim.open_externally(EURUSD, BUY, 2.0)
    chaos.replay_recent_history(2)
    assert stream.session_id == "SIMSESSION2"
    assert listener.updates() == [(CONFIRMS, None, 2.0), (OPU, POSITION_OPEN, 2.0)]


def test_drop_duplicate_and_reorder(world) -> None:
    sim, stream, listener, chaos = world
    chaos.drop_next_update(1)
    chaos.duplicate_updates(1)
    chaos.reorder_next()
    sim.open_externally(EURUSD, BUY, 1.0)
    stream.pump()
    # reordered: OPU first, dropped; then CONFIRMS twice
    assert listener.updates() == [(CONFIRMS, None, 1.0), (CONFIRMS, None, 1.0)]
    assert listener.kinds()[-1] == "keepalive"


def test_delayed_updates_arrive_late_while_keepalives_continue(world) -> None:
    sim, stream, listener, chaos = world
    with chaos.delay_updates():
        sim.open_externally(EURUSD, BUY, 1.0)
        stream.advance(10.0)
        assert listener.updates() == [] and listener.kinds()[-1] == "keepalive"
    assert len(listener.updates()) == 2
