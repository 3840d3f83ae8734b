"""Tier 3 on the wire: the blindness scenarios again, through the real Lightstreamer client.

The engine runs with IGRestBroker and IGTradeStream (lightstreamer-client-lib) against the
SimBroker's IG app on a loopback socket: REST for orders and backfill, TLCP for the trade
stream. The faults are the TLCP server's own seams (`TlcpState`): a socket gone silent with
no close, a stall that resumes, a session the server lost, one update dropped while the
keepalives go on. What the engine learns of them is only what the real client reports.

The engine's Clock is a SimClock: the tests move it to make a reconcile due; the client's
timers are real (tens of milliseconds here, `tests.stream_wire.FAST`), so the tests poll,
with a deadline, for what the client reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

from solat_chaos.chaos.engine_env import EURUSD, GBPUSD, EngineEnv, position_sizes
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.records import Adopted
from solat_chaos.engine.router import OrderIntent, OrderStatus
from solat_chaos.engine.stream import StreamState
from solat_chaos.engine.trading_state import TradingState
from tests.stream_wire import LIBRARY_WARNINGS, Wire, open_wire, until

pytestmark = [pytest.mark.chaos, pytest.mark.tier3, pytest.mark.filterwarnings(LIBRARY_WARNINGS)]


@attrs.define
class WireEngine:
    env: EngineEnv
    wire: Wire
    engine: Engine

    async def settle(self) -> None:
        """Let the stream come live and a reconcile end the blindness."""
        watch = self.engine.watch
        assert watch is not None
        await until(lambda: watch.live, "the stream to be connected and subscribed")
        self.env.clock.advance(self.engine.config.blind_reconcile_interval)
        report = await self.engine.tick()
        assert report is not None and report.ok
        assert self.engine.health().blind is None

    async def blind(self) -> str:
        await until(lambda: self.engine.health().status == "blind", "the engine to go blind")
        assert self.engine.state is TradingState.REDUCING
        return self.engine.health().blind or ""

    async def new_session(self, old: str | None) -> None:
        watch = self.engine.watch
        assert watch is not None
        await until(lambda: watch.live and watch.session_id != old, "a new session")

    async def backfill(self) -> None:
        """The short-interval reconcile of a blind engine, which ends the blindness."""
        assert self.engine.health().status == "blind"
        self.env.clock.advance(self.engine.config.blind_reconcile_interval)
        assert (await self.engine.tick()).ok
        assert self.engine.health().blind is None

    def book_is_the_brokers(self) -> None:
        assert position_sizes(self.engine.positions()) == self.env.broker_sizes()


@pytest.fixture
async def wire_engine(engine_env: EngineEnv, request) -> AsyncIterator[WireEngine]:
    replay = getattr(request, "param", 0)
    async with open_wire(engine_env.sim, replay=replay) as wire:
        env = engine_env.with_broker(wire.rest)
        engine = await env.ready_engine(stream=wire.stream)
        wired = WireEngine(env, wire, engine)
        await wired.settle()
        yield wired


def _adoptions(env: EngineEnv) -> list[str]:
    return [r.deal_id for r in env.durable_records() if isinstance(r, Adopted)]


async def test_silent_socket__the_client_notices_and_the_dashboard_fill_is_backfilled_once(
    wire_engine: WireEngine,
) -> None:
    """
    SCENARIO: The stream's socket goes silent with no close and the server loses the session;
              meanwhile a position is opened on the IG dashboard
    EXPECTED: The client's keepalive check makes the engine blind (STALLED); a new session
              comes, replaying nothing; the backfill reconcile adopts the fill, once
    FAILURE MODE: The open socket is taken for a live stream and the fill never reaches the book
    """
    # SETUP
    engine, env, tlcp = wire_engine.engine, wire_engine.env, wire_engine.wire.tlcp
    first_session = engine.watch.session_id

    # INJECT CHAOS
    tlcp.silence(recoverable=False)
    confirm = env.sim.open_externally(GBPUSD, BUY, 2.0)

    # VERIFICATION: blind first, then a new session, then the backfill
    assert "stall" in await wire_engine.blind()
    refused = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert refused.status is OrderStatus.REJECTED and "stream blind" in refused.reason
    await wire_engine.new_session(first_session)
    await wire_engine.backfill()
    assert engine.state is TradingState.ACTIVE
    wire_engine.book_is_the_brokers()
    assert position_sizes(engine.positions())[confirm.deal_id] == 2.0
    assert _adoptions(env) == [confirm.deal_id]


async def test_stall_that_resumes__same_session_blind_until_a_reconcile_after_it(
    wire_engine: WireEngine,
) -> None:
    """
    SCENARIO: The server stops sending on the open stream, then resumes the same session; a
              dashboard partial close happened during the stall
    EXPECTED: Blind from the (adapter-reported) STALLED until a reconcile started after the
              resume; the held events arrive once and the book equals the broker's
    FAILURE MODE: The same session id is taken as "nothing missed" and blindness never starts,
                  or the held events are applied on top of the reconcile
    """
    # SETUP
    engine, env, tlcp = wire_engine.engine, wire_engine.env, wire_engine.wire.tlcp
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    await until(lambda: engine.watch.events >= 2, "the open's own events")
    session = engine.watch.session_id

    # INJECT CHAOS
    tlcp.pause()
    env.sim.close_externally(mine.deal_id, 0.5)
    assert "stalled" in await wire_engine.blind()
    tlcp.resume()

    # VERIFICATION
    await until(lambda: engine.watch.state is StreamState.CONNECTED, "the stall to end")
    assert engine.watch.session_id == session
    await wire_engine.backfill()  # connected again, but blind until a reconcile since
    wire_engine.book_is_the_brokers()
    assert position_sizes(engine.positions()) == {mine.deal_id: 1.5}
    assert _adoptions(env) == []


@pytest.mark.parametrize("wire_engine", [1], indirect=True)
async def test_new_session_replaying_less_than_the_gap__backfilled_by_rest(
    wire_engine: WireEngine,
) -> None:
    """
    SCENARIO: Two dashboard changes happen while the socket is silent; the server lost the
              session, and the new one replays only the last change (its CONFIRMS and OPU)
    EXPECTED: Blind on the new session until the backfill; then the book holds both changes,
              and the replayed change is not applied twice
    FAILURE MODE: The replay is trusted as complete and the first change never reaches the book
    """
    # SETUP
    engine, env, tlcp = wire_engine.engine, wire_engine.env, wire_engine.wire.tlcp
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    await until(lambda: engine.watch.events >= 2, "the open's own events")
    first_session = engine.watch.session_id

    # INJECT CHAOS
    tlcp.silence(recoverable=False)
    env.sim.close_externally(mine.deal_id, 1.0)
    other = env.sim.open_externally(GBPUSD, SELL, 1.0)

    # VERIFICATION
    await wire_engine.blind()
    await wire_engine.new_session(first_session)
    await until(lambda: engine.watch.events >= 4, "the replayed change")
    await wire_engine.backfill()
    wire_engine.book_is_the_brokers()
    assert position_sizes(engine.positions()) == {mine.deal_id: 1.0, other.deal_id: 1.0}
    assert _adoptions(env) == [other.deal_id]


async def test_dropped_update_with_live_keepalives__repaired_by_the_periodic_reconcile(
    wire_engine: WireEngine,
) -> None:
    """
    SCENARIO: A dashboard partial close's CONFIRMS and OPU are dropped by the server while the
              stream keeps proving it is alive
    EXPECTED: Not blind (nothing on the wire shows the gap); the periodic reconcile repairs
              the book
    FAILURE MODE: The engine trusts the stream alone and keeps the old size forever
    """
    # SETUP
    engine, env, tlcp = wire_engine.engine, wire_engine.env, wire_engine.wire.tlcp
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    await until(lambda: engine.watch.events >= 2, "the open's own events")

    # INJECT CHAOS
    tlcp.drop_next_update()
    tlcp.drop_next_update()
    env.sim.close_externally(mine.deal_id, 0.5)
    await until(lambda: len(tlcp.dropped) == 2, "both updates dropped")
    keepalives = wire_engine.wire.stream.keepalives
    await until(lambda: wire_engine.wire.stream.keepalives > keepalives, "a keepalive")

    # VERIFICATION
    assert engine.health().status == "ok"
    assert position_sizes(engine.positions())[mine.deal_id] == 2.0
    env.clock.advance(engine.config.reconcile_interval)
    assert (await engine.tick()).ok
    wire_engine.book_is_the_brokers()
    assert position_sizes(engine.positions()) == {mine.deal_id: 1.5}


@pytest.mark.parametrize("wire_engine", [3], indirect=True)
async def test_new_session_replaying_more_than_the_gap__duplicates_change_nothing(
    wire_engine: WireEngine,
) -> None:
    """
    SCENARIO: The server ends the session; the new one replays the last three changes, two of
              which the engine had already applied from the old session
    EXPECTED: Blind until the reconcile; the book equals the broker's, nothing applied twice
    FAILURE MODE: A replayed event applied as a delta: a position grows or shrinks twice
    """
    # SETUP
    engine, env, tlcp = wire_engine.engine, wire_engine.env, wire_engine.wire.tlcp
    mine = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))
    outside = env.sim.open_externally(GBPUSD, SELL, 1.0)
    await until(lambda: engine.watch.events >= 4, "both changes' events")
    assert (await engine.reconcile()).ok  # the dashboard open adopted before the fault
    first_session = engine.watch.session_id
    records = len(env.durable_records())

    # INJECT CHAOS
    tlcp.new_session()
    env.sim.close_externally(mine.deal_id, 0.5)

    # VERIFICATION
    await wire_engine.new_session(first_session)
    await until(lambda: engine.watch.events >= 10, "the replay of three changes")
    await wire_engine.backfill()
    wire_engine.book_is_the_brokers()
    assert position_sizes(engine.positions()) == {mine.deal_id: 1.5, outside.deal_id: 1.0}
    assert _adoptions(env) == [outside.deal_id]
    # One record for the one real change; none for the two replayed ones.
    assert [type(r).__name__ for r in env.durable_records()[records:]] == ["Resized"]
