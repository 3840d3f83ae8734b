"""Tier 2 — the broker fails while the engine reconciles: at the port (SimBroker seams), at the
HTTP level (respx in front of IG's dialect) and at the TCP level (a fault proxy between
IGRestBroker and the SimBroker served on loopback).

The rule under test: a failed or doubtful answer changes nothing locally — a missing report is
not a flat position — and once the broker answers cleanly the book converges on its truth.
"""

from __future__ import annotations

import pytest

from solat_chaos.broker.sim import CONFIRM, POSITIONS
from solat_chaos.chaos.engine_env import EURUSD, FTSE, GBPUSD, EngineEnv, position_sizes
from solat_chaos.chaos.network import sim_ig_rest_broker
from solat_chaos.engine.broker import BUY, SELL
from solat_chaos.engine.engine import Engine
from solat_chaos.engine.records import Adopted, ClosedExternally, Confirmed
from solat_chaos.engine.router import OrderIntent, OrderStatus

pytestmark = [pytest.mark.chaos, pytest.mark.tier2]

# Short enough that a silent connection costs little real time, long enough for loopback.
HTTP_TIMEOUT = 0.15


async def engine_with_one_position(env: EngineEnv) -> tuple[Engine, str]:
    engine = await env.ready_engine()
    opened = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 1.0))
    assert opened.status is OrderStatus.ACCEPTED
    return engine, opened.deal_id


async def assert_failed_and_nothing_changed(env: EngineEnv, engine: Engine) -> None:
    """A reconcile under fault: reported as failed, and not one byte or position moved."""
    ledger, book = env.fs.read(env.ledger_path), position_sizes(engine.positions())
    report = await engine.reconcile()
    assert not report.ok and report.records == ()
    assert env.fs.read(env.ledger_path) == ledger
    assert position_sizes(engine.positions()) == book
    assert not any(isinstance(r, ClosedExternally) for r in env.durable_records())


# --------------------------------------------------------------------------- at the port


async def test_positions_call_times_out__no_position_closed(engine_env, broker_chaos) -> None:
    """
    SCENARIO: Every attempt to read the broker's positions times out during a reconcile
    EXPECTED: Reconcile reports the failure; the local position stays, as it does at the broker
    FAILURE MODE: The timeout is read as "no positions" and a live position is closed in the book
    """
    # SETUP
    engine, deal_id = await engine_with_one_position(engine_env)

    # INJECT CHAOS
    broker_chaos.timeout(method=POSITIONS, count=engine_env.config.read_attempts)

    # VERIFICATION
    await assert_failed_and_nothing_changed(engine_env, engine)
    assert engine_env.broker_sizes() == {deal_id: 1.0}
    assert position_sizes(engine.positions()) == {deal_id: 1.0}


async def test_intermittent_timeouts__each_failure_harmless_then_converges(
    engine_env, broker_chaos, seed_random
) -> None:
    """
    SCENARIO: Positions and confirm reads time out at random (seeded) while the broker has drifted
    EXPECTED: Every failed reconcile changes nothing; the first clean one repairs the drift exactly
    FAILURE MODE: A half-read broker state is written down (repairs on partial evidence)
    """
    # SETUP: drift on both sides (closed and opened on the dashboard), and an order in doubt
    engine, deal_id = await engine_with_one_position(engine_env)
    engine_env.sim.close_externally(deal_id)
    outsider = engine_env.sim.open_externally(GBPUSD, SELL, 2.0)
    broker_chaos.executed_but_response_lost()
    in_doubt = await engine.submit_order_intent(OrderIntent(EURUSD, SELL, 1.0))
    assert in_doubt.status is OrderStatus.IN_DOUBT

    # INJECT CHAOS
    broker_chaos.intermittent_timeout(seed_random, method=POSITIONS, probability=0.6)
    broker_chaos.intermittent_timeout(seed_random, method=CONFIRM, probability=0.6)

    # VERIFICATION
    for _ in range(40):
        ledger = engine_env.fs.read(engine_env.ledger_path)
        report = await engine.reconcile()
        if report.ok:
            break
        assert engine_env.fs.read(engine_env.ledger_path) == ledger
        assert position_sizes(engine.positions()) == {deal_id: 1.0}
    assert report.ok, "no clean reconcile in 40 attempts"
    assert {type(r) for r in report.records} == {Confirmed, ClosedExternally, Adopted}
    assert position_sizes(engine.positions()) == engine_env.broker_sizes()
    assert outsider.deal_id in engine_env.broker_sizes() and len(engine_env.broker_sizes()) == 2


async def test_rate_limited_positions_read__waits_retry_after_then_succeeds(
    engine_env, broker_chaos
) -> None:
    """
    SCENARIO: The positions read is refused with a 429 asking to retry after 7 seconds
    EXPECTED: The read waits at least 7 s (sim time) and succeeds; the reconcile converges
    FAILURE MODE: The client hammers the broker at once, or gives up and reports drift
    """
    # SETUP
    engine, deal_id = await engine_with_one_position(engine_env)
    engine_env.sim.close_externally(deal_id, 0.25)
    started = engine_env.clock.monotonic()

    # INJECT CHAOS
    broker_chaos.rate_limit_429(method=POSITIONS, retry_after=7.0)

    # VERIFICATION
    report = await engine.reconcile()
    assert report.ok
    assert engine_env.clock.monotonic() - started >= 7.0
    assert position_sizes(engine.positions()) == engine_env.broker_sizes() == {deal_id: 0.75}


async def test_stale_positions_list_served_once__live_position_kept(
    engine_env, broker_chaos
) -> None:
    """
    SCENARIO: A lagging cache serves a positions list from before the engine's latest fill
    EXPECTED: The two reads disagree; reconcile fails and changes nothing; the next one is clean
    FAILURE MODE: The outdated list closes the position the engine has just opened
    """
    # SETUP: the list is captured while the account is flat
    engine = await engine_env.ready_engine()
    broker_chaos.stale_position_list()

    # INJECT CHAOS: the engine opens a position the stale list does not have
    opened = await engine.submit_order_intent(OrderIntent(FTSE, BUY, 1.0))

    # VERIFICATION
    await assert_failed_and_nothing_changed(engine_env, engine)
    assert (await engine.reconcile()).ok
    assert position_sizes(engine.positions()) == engine_env.broker_sizes() == {opened.deal_id: 1.0}


# --------------------------------------------------------------------------- over HTTP (respx)


async def test_http_connection_refused__reconcile_fails_safely(engine_env, network_chaos) -> None:
    """
    SCENARIO: IGRestBroker cannot connect for the positions read (connection refused)
    EXPECTED: Reconcile fails, nothing changes; after the network heals it converges
    FAILURE MODE: A refused connection is taken as an empty account
    """
    async with network_chaos.broker() as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)
        env.sim.close_externally(deal_id)

        # INJECT CHAOS
        fault = network_chaos.connection_refused("GET", "/positions")

        # VERIFICATION
        await assert_failed_and_nothing_changed(env, engine)
        fault.lift()
        assert (await engine.reconcile()).ok
        assert engine.positions() == {} and env.broker_sizes() == {}


async def test_http_read_timeout__no_real_wait_nothing_changed(engine_env, network_chaos) -> None:
    """
    SCENARIO: Every positions read ends in a ReadTimeout after 30 s (sim time)
    EXPECTED: Reconcile fails without waiting for real; sim time moved on; nothing changed
    FAILURE MODE: The timeout is swallowed and an empty list is reconciled against the book
    """
    async with network_chaos.broker() as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)
        started = env.clock.monotonic()

        # INJECT CHAOS
        network_chaos.timeout_after_delay("GET", "/positions", delay=30.0, count=None)

        # VERIFICATION
        await assert_failed_and_nothing_changed(env, engine)
        assert env.clock.monotonic() - started >= 30.0 * env.config.read_attempts
        assert env.broker_sizes() == {deal_id: 1.0}


async def test_http_429_with_retry_after__honoured(engine_env, network_chaos) -> None:
    """
    SCENARIO: The positions endpoint answers HTTP 429 with Retry-After: 4
    EXPECTED: The engine waits 4 s (sim time) before asking again, then converges
    FAILURE MODE: Retry-After is ignored (more 429s, a locked account) or the read gives up
    """
    async with network_chaos.broker() as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)
        env.sim.close_externally(deal_id)
        started = env.clock.monotonic()

        # INJECT CHAOS
        network_chaos.rate_limit_429(retry_after=4.0)

        # VERIFICATION
        assert (await engine.reconcile()).ok
        assert env.clock.monotonic() - started >= 4.0
        assert engine.positions() == {} and env.broker_sizes() == {}


async def test_http_intermittent_500__converges_without_false_repairs(
    engine_env, network_chaos, seed_random
) -> None:
    """
    SCENARIO: The positions endpoint answers 500 at random (seeded), the broker has drifted
    EXPECTED: Failed reconciles change nothing; a clean one repairs the drift exactly once
    FAILURE MODE: A 500 body is parsed as an answer, or a repair is written twice
    """
    async with network_chaos.broker() as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)
        env.sim.close_externally(deal_id, 0.5)

        # INJECT CHAOS
        network_chaos.intermittent_500(seed_random, probability=0.5)

        # VERIFICATION
        for _ in range(40):
            if (await engine.reconcile()).ok:
                break
            assert position_sizes(engine.positions()) == {deal_id: 1.0}
        assert position_sizes(engine.positions()) == env.broker_sizes() == {deal_id: 0.5}
        network_chaos.heal()
        assert (await engine.reconcile()).records == ()


async def test_http_stale_answer_once__live_position_kept(engine_env, network_chaos) -> None:
    """
    SCENARIO: A cache in front of IG serves the positions answer from before the latest fill
    EXPECTED: The stale and the fresh read disagree; nothing is closed; the next reconcile is clean
    FAILURE MODE: The stale answer closes a position that is open at the broker
    """
    async with network_chaos.broker() as rest:
        # SETUP: the start-up reconcile saw a flat account
        env = engine_env.with_broker(rest)
        engine = await env.ready_engine()
        opened = await engine.submit_order_intent(OrderIntent(GBPUSD, BUY, 1.0))

        # INJECT CHAOS
        network_chaos.stale_data_response("GET", "/positions")

        # VERIFICATION
        await assert_failed_and_nothing_changed(env, engine)
        assert (await engine.reconcile()).ok
        assert position_sizes(engine.positions()) == env.broker_sizes() == {opened.deal_id: 1.0}


# --------------------------------------------------------------------------- at the TCP level


async def test_tcp_reset_on_every_positions_read__nothing_closed(
    engine_env, tcp_fault_proxy
) -> None:
    """
    SCENARIO: The connection is reset (RST) on every positions request
    EXPECTED: Reconcile fails, nothing changes; once resets stop it converges
    FAILURE MODE: A reset connection is read as an empty positions list
    """
    async with sim_ig_rest_broker(
        tcp_fault_proxy.base_url + "/gateway/deal", timeout=HTTP_TIMEOUT
    ) as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)
        env.sim.close_externally(deal_id, 0.5)

        # INJECT CHAOS
        fault = tcp_fault_proxy.reset("GET", "/positions", count=None)

        # VERIFICATION
        await assert_failed_and_nothing_changed(env, engine)
        fault.lift()
        assert (await engine.reconcile()).ok
        assert position_sizes(engine.positions()) == env.broker_sizes() == {deal_id: 0.5}


async def test_tcp_half_open_positions_read__times_out_nothing_closed(
    engine_env, tcp_fault_proxy
) -> None:
    """
    SCENARIO: The broker's side goes silent: connections stay open and no answer ever comes
    EXPECTED: Each read gives up at the client's timeout; reconcile fails and changes nothing
    FAILURE MODE: The engine hangs forever, or treats the silence as an empty account
    """
    engine_env.configure(read_attempts=2)
    async with sim_ig_rest_broker(
        tcp_fault_proxy.base_url + "/gateway/deal", timeout=HTTP_TIMEOUT
    ) as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)

        # INJECT CHAOS
        tcp_fault_proxy.hang("GET", "/positions", count=2)

        # VERIFICATION
        await assert_failed_and_nothing_changed(env, engine)
        assert env.broker_sizes() == {deal_id: 1.0}
        assert (await engine.reconcile()).ok


async def test_tcp_answer_cut_mid_body__nothing_closed(engine_env, tcp_fault_proxy) -> None:
    """
    SCENARIO: The positions answer stops halfway through its body and the connection closes
    EXPECTED: The truncated answer is not parsed; reconcile fails and changes nothing
    FAILURE MODE: Half a JSON list is read as the whole list (positions dropped from it are closed)
    """
    async with sim_ig_rest_broker(
        tcp_fault_proxy.base_url + "/gateway/deal", timeout=HTTP_TIMEOUT
    ) as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)

        # INJECT CHAOS
        tcp_fault_proxy.close_mid_body("GET", "/positions", count=None)

        # VERIFICATION
        await assert_failed_and_nothing_changed(env, engine)
        assert env.broker_sizes() == {deal_id: 1.0}


async def test_tcp_trickled_answers__reconcile_still_converges(engine_env, tcp_fault_proxy) -> None:
    """
    SCENARIO: Every answer arrives a few bytes at a time (a congested link)
    EXPECTED: Fragmented answers are read whole; reconcile repairs the drift exactly
    FAILURE MODE: A partial read is parsed early, or fragmentation is mistaken for a failure
    """
    async with sim_ig_rest_broker(
        tcp_fault_proxy.base_url + "/gateway/deal", timeout=HTTP_TIMEOUT
    ) as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine, deal_id = await engine_with_one_position(env)
        env.sim.close_externally(deal_id)
        outsider = env.sim.open_externally(FTSE, SELL, 1.0)

        # INJECT CHAOS
        tcp_fault_proxy.trickle(count=None, chunk=7, pause=0.0005)

        # VERIFICATION
        assert (await engine.reconcile()).ok
        assert position_sizes(engine.positions()) == env.broker_sizes() == {outsider.deal_id: 1.0}
        assert {f.fault for f in tcp_fault_proxy.faulted} == {"trickle"}


async def test_tcp_reset_after_the_order_reached_the_broker__resolved_once(
    engine_env, tcp_fault_proxy
) -> None:
    """
    SCENARIO: The order reaches the broker and executes; the connection is reset before the answer
    EXPECTED: IN_DOUBT, not re-sent; reconcile finds the deal by reference; one position, once
    FAILURE MODE: The order is re-sent (two positions) or dropped (an untracked position)
    """
    async with sim_ig_rest_broker(
        tcp_fault_proxy.base_url + "/gateway/deal", timeout=HTTP_TIMEOUT
    ) as rest:
        # SETUP
        env = engine_env.with_broker(rest)
        engine = await env.ready_engine()

        # INJECT CHAOS
        tcp_fault_proxy.reset("POST", "/positions/otc", after=True)
        result = await engine.submit_order_intent(OrderIntent(EURUSD, BUY, 2.0))

        # VERIFICATION
        assert result.status is OrderStatus.IN_DOUBT
        assert (await engine.reconcile()).ok
        resolved = env.durable_records_of(result.deal_reference)[-1]
        assert isinstance(resolved, Confirmed) and resolved.resolved_by == "reconcile"
        assert position_sizes(engine.positions()) == env.broker_sizes() == {resolved.deal_id: 2.0}
        assert [r.deal_reference for r in env.sim_order_requests()] == [result.deal_reference]
