"""Tier 3 — health that tells the truth about the stream: its age, its state, its blindness."""

from __future__ import annotations

import pytest

from solat_chaos.engine.stream import StreamProtocolError, StreamState, StreamStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier3]


async def healthy_engine(engine_env, sim_stream):
    """An engine past its startup reconcile with a fresh balance: health says "ok"."""
    engine = await engine_env.ready_engine(stream=sim_stream)
    await engine.balance.fresh()
    return engine


async def test_keepalives_stop_on_a_connected_session__health_is_not_ok(
    engine_env, sim_stream, stream_chaos
) -> None:
    """
    SCENARIO: The connection still reports CONNECTED but no keepalive arrives past the threshold
    EXPECTED: Health says "blind", the stream's age is past the threshold and marked stale
    FAILURE MODE: Health judges the stream by its connection flag and says "ok" on a dead socket
    """
    # SETUP
    engine = await healthy_engine(engine_env, sim_stream)
    sim_stream.advance(20.0)  # healthy: keepalives keep the age small
    healthy = engine.health()
    assert healthy.status == "ok" and healthy.ages["stream"] <= sim_stream.keepalive

    # INJECT CHAOS
    stream_chaos.silent_disconnect()
    sim_stream.advance(engine.config.health.stream + 5)

    # VERIFICATION
    health = engine.health()
    assert health.stream == "CONNECTED"
    assert health.status == "blind" and "silent" in health.blind
    assert health.ages["stream"] > engine.config.health.stream and health.stale["stream"]


@pytest.mark.parametrize(
    "fault",
    ["silent_disconnect", "stall", "new_session", "repeated_subscription", "protocol_error"],
)
async def test_health_never_says_ok_while_blind(engine_env, sim_stream, stream_chaos, fault):
    """
    SCENARIO: Each status change that could hide a gap, then time passes with health polled
    EXPECTED: "blind" on every poll until a reconcile that started after reconnection succeeds
    FAILURE MODE: Health says "ok" while events may be missing from the book
    """
    # SETUP
    engine = await healthy_engine(engine_env, sim_stream)
    assert engine.health().status == "ok"

    # INJECT CHAOS
    if fault == "protocol_error":
        engine.watch.on_protocol_error(StreamProtocolError("OPU: size is 'abc'", field="size"))
    else:
        getattr(stream_chaos, fault)()
    polls = []
    for _ in range(8):
        sim_stream.advance(5.0)
        health = engine.health()
        # Silence is a gap only past the threshold; every other fault is one at once.
        silent_too_long = health.ages["stream"] > engine.config.health.stream
        polls.append((health.status, fault != "silent_disconnect" or silent_too_long))

    # VERIFICATION
    assert any(must_be_blind for _, must_be_blind in polls)
    assert all(status == "blind" for status, must_be_blind in polls if must_be_blind)
    stream_chaos.heal()
    assert engine.health().status == "blind"
    assert (await engine.tick()).ok
    await engine.balance.fresh()
    assert engine.health().status == "ok"


async def test_a_stalled_stream_reports_its_state_and_age(engine_env, sim_stream) -> None:
    """
    SCENARIO: The adapter reports STALLED and then nothing for a minute
    EXPECTED: Health names the state and an age that grows on the clock
    FAILURE MODE: A cached verdict: the age frozen at the last poll
    """
    # SETUP
    engine = await engine_env.ready_engine(stream=sim_stream)

    # INJECT CHAOS
    engine.watch.on_status(StreamStatus(StreamState.STALLED, sim_stream.session_id))
    engine_env.clock.advance(20.0)
    first = engine.health()
    engine_env.clock.advance(40.0)
    second = engine.health()

    # VERIFICATION
    assert first.stream == second.stream == "STALLED"
    assert second.ages["stream"] - first.ages["stream"] == 40.0
    assert first.status == second.status == "blind"
